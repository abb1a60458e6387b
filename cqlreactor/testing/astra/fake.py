"""A fake DataStax Astra: TLS nodes behind an SNI proxy, a metadata service, a bundle.

    with FakeAstra(nodes=3, username="u", password="p") as astra:
        Cluster(cloud={"secure_connect_bundle": astra.bundle_path}, ...)

or from a shell (prints one JSON line when ready, runs until interrupted)::

    python -m cqlreactor.testing astra --nodes 3 --bundle /tmp/b.zip --username u --password p

What it is made of, as on Astra:

- a CA (``cqlreactor.testing.certs``) that signs the nodes' certificate, the metadata service's
  certificate and the client certificate of the bundle.  The nodes' certificate names the
  proxy's host (``localhost`` / ``127.0.0.1``), not the host ids;
- the simulated cluster (``cluster.SimulatedCluster``) with TLS on its nodes;
- :class:`MetadataServer`: ``GET /metadata`` over HTTPS, client certificate required, answering
  local DC, host ids and the proxy address;
- :class:`SniProxy`: reads the ClientHello's server name without terminating TLS and pipes the
  connection to the node whose host id it names;
- the secure connect bundle (config.json, ca.crt, cert, key and the Java keystore names as
  placeholders) written to ``bundle_path``.

Fault knobs for tests: ``astra.metadata.mode`` = "ok" | "down" | "slow" | "bad_json" |
"missing_fields" | "http_error" (``astra.metadata.delay`` for "slow"), and
``astra.proxy.mode`` = "ok" | "refuse" (not listening: connection refused) | "close" (accepts,
then closes).
"""

import argparse
import inspect
import json
import os
import select
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import zipfile

from cqlreactor.testing import certs

__all__ = ["FakeAstra", "MetadataServer", "SniProxy", "sni_from_client_hello", "NeedMoreData",
           "write_bundle", "main"]

_READ = 65536
PRODUCT_TYPE = "DATASTAX_APOLLO"


# --- ClientHello SNI parsing ----------------------------------------------------------------

class NeedMoreData(Exception):
    """The bytes so far are a valid prefix of a ClientHello; read more."""


def _u16(b, i):
    return (b[i] << 8) | b[i + 1]


def sni_from_client_hello(data):
    """The server name from the TLS ClientHello at the start of ``data``.

    Handles a ClientHello split over several TLS records.  Does not consume anything: the
    caller forwards ``data`` unchanged.

    Returns:
        the host name (str), or None when the ClientHello has no server_name extension.

    Raises:
        NeedMoreData: ``data`` is an incomplete ClientHello.
        ValueError: ``data`` is not a TLS ClientHello.
    """
    data = bytes(data)
    handshake = b""
    pos = 0
    # gather handshake-record payloads until the whole handshake message is there
    while True:
        if len(data) < pos + 5:
            raise NeedMoreData()
        ctype, major, length = data[pos], data[pos + 1], _u16(data, pos + 3)
        if ctype != 0x16 or major != 3:
            raise ValueError("not a TLS handshake record (first bytes %r)" % data[pos:pos + 5])
        if length == 0 or length > 16384 + 2048:
            raise ValueError("bad TLS record length %d" % length)
        if len(data) < pos + 5 + length:
            raise NeedMoreData()
        handshake += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != 0x01:
                raise ValueError("first handshake message is not a ClientHello (type %d)"
                                 % handshake[0])
            hs_len = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3]
            if len(handshake) >= 4 + hs_len:
                body = handshake[4:4 + hs_len]
                break
    try:
        return _sni_from_hello_body(body)
    except IndexError:
        raise ValueError("truncated ClientHello")


def _sni_from_hello_body(b):
    i = 2 + 32                                   # client_version, random
    i += 1 + b[i]                                # session id
    i += 2 + _u16(b, i)                          # cipher suites
    i += 1 + b[i]                                # compression methods
    if i >= len(b):
        return None                              # no extensions at all
    end = i + 2 + _u16(b, i)
    i += 2
    if end > len(b):
        raise ValueError("extensions overrun the ClientHello")
    while i + 4 <= end:
        ext_type, ext_len = _u16(b, i), _u16(b, i + 2)
        i += 4
        if ext_type == 0:                        # server_name
            j = i + 2
            list_end = j + _u16(b, i)
            while j + 3 <= list_end:
                name_type, name_len = b[j], _u16(b, j + 1)
                j += 3
                if name_type == 0:
                    return b[j:j + name_len].decode("ascii")
                j += name_len
            return None
        i += ext_len
    return None


# --- the SNI proxy --------------------------------------------------------------------------

class _LoopbackServer(object):
    """A listener on loopback with an accept thread and a ``mode`` knob for fault tests.

    Subclasses set ``MODES`` (the first is the normal one), ``OFF_MODE`` (the mode in which
    nothing listens: clients get connection refused), ``NAME`` (thread names) and ``BACKLOG``,
    and implement ``_serve(sock)``, which runs in its own thread per accepted connection.
    """

    MODES = ("ok",)
    OFF_MODE = None
    NAME = "fake-astra"
    BACKLOG = 32

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self._mode = self.MODES[0]
        self._listener = None
        self._thread = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def address(self):
        return (self.host, self.port)

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in self.MODES:
            raise ValueError("%s mode must be one of %s" % (self.NAME, ", ".join(self.MODES)))
        with self._lock:
            old, self._mode = self._mode, value
        if value == self.OFF_MODE and old != self.OFF_MODE:
            self._stop_listening()
        elif old == self.OFF_MODE and value != self.OFF_MODE:
            self._listen()

    def start(self):
        self._listen()
        return self

    def _listen(self):
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(self.BACKLOG)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._on_listen()
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,),
                                        name=self.NAME, daemon=True)
        self._thread.start()

    def _on_listen(self):
        """Hook: called when listening (again)."""

    def _on_stop_listening(self):
        """Hook: called before the listener closes."""

    def _stop_listening(self):
        sock, self._listener = self._listener, None
        self._on_stop_listening()
        if sock is not None:
            _shutdown_close(sock)
        if self._thread is not None:
            self._thread.join(5)

    def _accept_loop(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if self._closed or listener is not self._listener:
                conn.close()
                return
            if self._mode == "close":
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name=self.NAME + "-conn",
                             daemon=True).start()

    def _serve(self, sock):
        raise NotImplementedError

    def close(self):
        self._closed = True
        self._stop_listening()


class SniProxy(_LoopbackServer):
    """A loopback TCP proxy that routes each TLS connection by its SNI name.

    Args:
        route: callable(server_name) -> (address, port) or None (unknown name: closed).
        host: the address to listen on.
        port: 0 for any free port.

    ``mode``: "ok", "refuse" (stop listening: clients get connection refused) or "close"
    (accept and close at once).  ``routed`` counts connections per server name.
    """

    MODES = ("ok", "refuse", "close")
    OFF_MODE = "refuse"
    NAME = "fake-astra-sni-proxy"
    BACKLOG = 128

    def __init__(self, route, host="127.0.0.1", port=0):
        super(SniProxy, self).__init__(host, port)
        self.route = route
        self.routed = {}
        self.unroutable = []
        self._conns = set()

    def _serve(self, client):
        upstream = None
        with self._lock:
            self._conns.add(client)
        try:
            client.settimeout(10)
            data = b""
            name = None
            while True:
                chunk = client.recv(_READ)
                if not chunk:
                    return
                data += chunk
                try:
                    name = sni_from_client_hello(data)
                    break
                except NeedMoreData:
                    continue
                except ValueError:
                    self.unroutable.append(None)
                    return
            target = self.route(name) if name else None
            if target is None:
                self.unroutable.append(name)
                return
            upstream = socket.create_connection(target, timeout=10)
            with self._lock:
                self._conns.add(upstream)
                self.routed[name] = self.routed.get(name, 0) + 1
            upstream.sendall(data)
            _pipe(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            for s in (client, upstream):
                if s is not None:
                    _shutdown_close(s)

    def close(self):
        super(SniProxy, self).close()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            _shutdown_close(s)


def _shutdown_close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _pipe(a, b):
    """Copy bytes both ways until both sides are done (half-closes propagated)."""
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    open_reads = [a, b]
    while open_reads:
        try:
            readable, _, _ = select.select(open_reads, [], [], 1.0)
        except (OSError, ValueError):
            return
        for s in readable:
            try:
                chunk = s.recv(_READ)
            except OSError:
                chunk = b""
            if chunk:
                try:
                    peers[s].sendall(chunk)
                except OSError:
                    return
            else:
                open_reads.remove(s)
                try:
                    peers[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass


# --- the metadata service -------------------------------------------------------------------

class MetadataServer(_LoopbackServer):
    """``GET /metadata`` over HTTPS with a required client certificate.

    Args:
        ssl_context: server context (its cert, CA for client certs, CERT_REQUIRED).
        document: callable() -> the JSON-able answer.
        host, port: where to listen (port 0: any).

    ``mode``: "ok", "down" (not listening), "slow" (answers after ``delay`` s), "bad_json",
    "missing_fields" (no contact_info), "http_error" (HTTP 500).  ``requests`` counts GETs
    answered (any mode but down).
    """

    MODES = ("ok", "down", "slow", "bad_json", "missing_fields", "http_error")
    OFF_MODE = "down"
    NAME = "fake-astra-metadata"

    def __init__(self, ssl_context, document, host="127.0.0.1", port=0):
        super(MetadataServer, self).__init__(host, port)
        self.ssl_context = ssl_context
        self.document = document
        self.delay = 3.0
        self.requests = 0
        self._wake = threading.Event()

    @property
    def url(self):
        return "https://%s:%d/metadata" % (self.host, self.port)

    def _on_listen(self):
        self._wake.clear()

    def _on_stop_listening(self):
        self._wake.set()                      # cut short any "slow" answer in progress

    def _serve(self, raw):
        try:
            raw.settimeout(10)
            conn = self.ssl_context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].split()
            self.requests += 1
            mode = self._mode
            if mode == "slow":
                self._wake.wait(self.delay)
            if len(line) < 2 or line[0] != b"GET" or line[1].split(b"?")[0] != b"/metadata":
                status, body = "404 Not Found", b'{"error": "not found"}'
            elif mode == "http_error":
                status, body = "500 Internal Server Error", b'{"error": "boom"}'
            elif mode == "bad_json":
                status, body = "200 OK", b'{"contact_info": {"local_dc": '
            elif mode == "missing_fields":
                status, body = "200 OK", json.dumps({"version": 1}).encode()
            else:
                status, body = "200 OK", json.dumps(self.document()).encode()
            conn.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n"
                          % (status, len(body))).encode() + body)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --- the bundle -----------------------------------------------------------------------------

def write_bundle(path, host, port, ca_pem, cert_pem, key_pem, keyspace=None, local_dc="dc1",
                 username=None, password=None, extra_members=None):
    """Write a secure connect bundle zip as Astra lays it out.

    ``extra_members``: {name: bytes} added as is (negative tests: traversal names, …).
    """
    config = {
        "host": host, "port": port, "cql_port": 9042, "localDC": local_dc,
        "caCertLocation": "./ca.crt", "keyLocation": "./key", "certLocation": "./cert",
        "keyStoreLocation": "./identity.jks", "trustStoreLocation": "./trustStore.jks",
        "pfxCertPassword": "fake", "keyStorePassword": "fake", "trustStorePassword": "fake",
    }
    if keyspace:
        config["keyspace"] = keyspace
    if username is not None:
        config["username"] = username
        config["password"] = password
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps(config, indent=2))
        zf.writestr("ca.crt", ca_pem)
        zf.writestr("cert", cert_pem)
        zf.writestr("key", key_pem)
        # the Java driver's members; unused by Python clients, present in real bundles
        zf.writestr("cert.pfx", b"placeholder")
        zf.writestr("identity.jks", b"placeholder")
        zf.writestr("trustStore.jks", b"placeholder")
        for name, data in (extra_members or {}).items():
            zf.writestr(name, data)
    os.replace(tmp, path)
    return config


# --- FakeAstra ------------------------------------------------------------------------------

class FakeAstra(object):
    """The whole fake: certificates, cluster, metadata service, SNI proxy and bundle.

    Args:
        nodes: number of simulated nodes.
        bundle_path: where to write the bundle (default: inside ``directory``).
        username, password: enable password auth on the cluster and put them in config.json
            (``credentials_in_bundle=False`` leaves them out of the bundle).
        keyspace: written to config.json (created on the cluster when it lands).
        local_dc: the data center the metadata service reports (default: the nodes' one).
        host: the proxy's and the metadata service's host (certificates name it; ``localhost``
            and 127.0.0.1 are always in their subjectAltName).
        directory: scratch directory for certificates (a temp dir by default, removed at stop).
        start_cluster: False runs only the CA, bundle, metadata service and proxy, routing to
            ``routes`` ({host_id: (address, port)}) — for tests of the cloud pieces alone.
        cluster_options: extra keyword arguments for SimulatedCluster.

    Attributes once started: bundle_path, metadata_url, proxy_address ("host:port"), username,
    password, host_ids, cluster (the SimulatedCluster), metadata (MetadataServer), proxy
    (SniProxy), ca / node_cert / client_cert (certs.CertFiles), directory.
    """

    def __init__(self, nodes=3, bundle_path=None, username=None, password=None, keyspace=None,
                 local_dc=None, host="127.0.0.1", directory=None, start_cluster=True,
                 routes=None, credentials_in_bundle=True, cluster_options=None):
        self.nodes = nodes
        self.bundle_path = bundle_path
        self.username = username
        self.password = password
        self.keyspace = keyspace
        self.local_dc = local_dc
        self.host = host
        self.directory = directory
        self.start_cluster = start_cluster
        self.routes = dict(routes or {})
        self.credentials_in_bundle = credentials_in_bundle
        self.cluster_options = dict(cluster_options or {})
        self.cluster = None
        self.metadata = None
        self.proxy = None
        self.product_type_advertised = False
        self._own_directory = False

    # -- lifecycle --
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="fake-astra-")
            self._own_directory = True
        tls_dir = os.path.join(self.directory, "tls")
        os.makedirs(tls_dir, exist_ok=True)
        names = ["localhost", "127.0.0.1", self.host]
        names = [n for i, n in enumerate(names) if n not in names[:i]]
        self.ca = certs.make_ca(tls_dir, name="fake Astra CA")
        self.node_cert = certs.make_cert(self.ca, names, tls_dir, "node", usage="both")
        self.metadata_cert = certs.make_cert(self.ca, names, tls_dir, "metadata",
                                             usage="server")
        self.client_cert = certs.make_cert(self.ca, ["fake-astra-client"], tls_dir, "client",
                                           usage="client")
        if self.start_cluster:
            self._start_cluster(tls_dir)
        if self.local_dc is None:
            self.local_dc = "datacenter1"

        self.proxy = SniProxy(self._route, host=self.host).start()

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.metadata_cert.cert_path, self.metadata_cert.key_path)
        ctx.load_verify_locations(cafile=self.ca.cert_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.metadata = MetadataServer(ctx, self._metadata_document, host=self.host).start()

        if self.bundle_path is None:
            self.bundle_path = os.path.join(self.directory, "secure-connect-fake.zip")
        self.bundle_path = os.path.abspath(self.bundle_path)
        with_creds = self.credentials_in_bundle and self.username is not None
        write_bundle(self.bundle_path, self.host, self.metadata.port, self.ca.cert_pem,
                     self.client_cert.cert_pem, self.client_cert.key_pem,
                     keyspace=self.keyspace, local_dc=self.local_dc,
                     username=self.username if with_creds else None,
                     password=self.password if with_creds else None)

    def _start_cluster(self, tls_dir):
        # SimulatedCluster reads tls_dir/node.crt, node.key and ca.crt: the names used above.
        from cqlreactor.testing.cluster import SimulatedCluster
        options = dict(self.cluster_options)
        options.setdefault("nodes", self.nodes)
        options.setdefault("tls_dir", tls_dir)
        options.setdefault("client_auth", "required")       # Astra demands the bundle's cert
        # Astra's SUPPORTED carries PRODUCT_TYPE: DATASTAX_APOLLO; pass it if the cluster can
        accepted = inspect.signature(SimulatedCluster.__init__).parameters
        if "product_type" in accepted:
            options.setdefault("product_type", PRODUCT_TYPE)
            self.product_type_advertised = True
        elif "supported_extra" in accepted:
            options.setdefault("supported_extra", {"PRODUCT_TYPE": [PRODUCT_TYPE]})
            self.product_type_advertised = True
        if self.username is not None:
            options.setdefault("auth", (self.username, self.password))
        self.cluster = SimulatedCluster(**options)
        self.cluster.start()
        for node in self.cluster.node_info():
            self.routes[str(node["host_id"])] = (node["address"], node["port"])
            if self.local_dc is None:
                self.local_dc = node.get("datacenter")

    def stop(self):
        for part in (self.proxy, self.metadata):
            if part is not None:
                part.close()
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        if self._own_directory and self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    # -- pieces --
    def _route(self, server_name):
        return self.routes.get(server_name)

    def _metadata_document(self):
        return {
            "version": 1,
            "region": "local",
            "contact_info": {
                "type": "sni_proxy",
                "local_dc": self.local_dc,
                "contact_points": sorted(self.routes),
                "sni_proxy_address": self.proxy_address,
            },
        }

    @property
    def host_ids(self):
        return sorted(self.routes)

    @property
    def metadata_url(self):
        return self.metadata.url if self.metadata else None

    @property
    def proxy_address(self):
        if self.proxy is None:
            return None
        host = self.host if ":" not in self.host else "[%s]" % self.host
        return "%s:%d" % (host, self.proxy.port)

    def describe(self):
        """The JSON-able summary the CLI prints."""
        return {"bundle": self.bundle_path, "metadata_url": self.metadata_url,
                "proxy_address": self.proxy_address, "username": self.username,
                "password": self.password, "host_ids": self.host_ids,
                "local_dc": self.local_dc}


# --- command line ---------------------------------------------------------------------------

def main(argv=None):
    """``python -m cqlreactor.testing astra ...``: run a fake Astra until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m cqlreactor.testing astra",
                                     description="Run a fake DataStax Astra on loopback.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--bundle", required=True, help="where to write the secure connect "
                                                        "bundle zip")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--keyspace")
    parser.add_argument("--local-dc", help="the data center the metadata service reports "
                                           "(default: the simulated nodes' one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address of the proxy and metadata service")
    args = parser.parse_args(argv)
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")

    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    with FakeAstra(nodes=args.nodes, bundle_path=args.bundle, username=args.username,
                   password=args.password, keyspace=args.keyspace, local_dc=args.local_dc,
                   host=args.host) as astra:
        sys.stdout.write(json.dumps(astra.describe()) + "\n")
        sys.stdout.flush()
        while not stop.is_set():
            stop.wait(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
