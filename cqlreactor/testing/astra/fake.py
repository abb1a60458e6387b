"""A fake DataStax Astra: TLS nodes behind an SNI proxy, a metadata service, a bundle.

    with FakeAstra(nodes=3, username="u", password="p") as astra:
        Cluster(cloud={"secure_connect_bundle": astra.bundle_path}, ...)

or from a shell (prints one JSON line when ready, runs until interrupted)::

    python -m cqlreactor.testing astra --nodes 3 --bundle /tmp/b.zip --username u --password p \
        [--keyspace ks] [--credentials-in-bundle] [--host localhost]

What it is made of, as on Astra:

- a CA (``certs.py``) that signs the nodes' certificate, the metadata service's
  certificate and the client certificate of the bundle.  The nodes' certificate names the
  proxy's host, not the host ids;
- DNS names, as Astra's ``<db id>-<region>.db.astra.datastax.com``: config.json's ``host``
  and the metadata service's ``sni_proxy_address`` name ``host`` (default ``localhost``,
  which resolves to loopback everywhere without setup), and the certificates' common name
  and subjectAltName are that name, so drivers that check the proxy's or the metadata
  service's DNS name against the certificate (the Node.js driver, cpp-driver) accept them.
  Another name works when it resolves to 127.0.0.1 (an /etc/hosts line); an IP address
  (``host="127.0.0.1"``) gives the old, IP-named layout.  A client that resolves the proxy's
  name by DNS query, skipping /etc/hosts (the Node.js driver's ``dns.resolve4``), needs a DNS
  server answering for it: point its resolver at one on loopback (Node: ``dns.setServers``;
  tests/fidelity/_dns.py is such a server);
- the simulated cluster (``cluster.SimulatedCluster``) with TLS on its nodes, advertising
  ``PRODUCT_TYPE: DATASTAX_APOLLO`` in SUPPORTED as Astra does (cassandra-driver and our
  client set ``metadata.dbaas`` from it and default to LOCAL_QUORUM) and refusing
  CREATE/ALTER/DROP KEYSPACE over CQL with Unauthorized, as Astra does: keyspaces come from
  ``keyspace=`` / :meth:`FakeAstra.create_keyspace` (Astra's DevOps API or console);
- :class:`MetadataServer` (``metadata.py``): ``GET /metadata`` over HTTPS, client
  certificate required, answering local DC, host ids and the proxy address;
- :class:`SniProxy` (``proxy.py``): reads the ClientHello's server name without terminating
  TLS and pipes the connection to the node whose host id it names;
- the secure connect bundle (``bundle.py``: config.json, ca.crt, cert, key and the Java
  keystore names as placeholders) written to ``bundle_path``.

Fault knobs for tests: ``astra.metadata.mode`` = "ok" | "down" | "slow" | "bad_json" |
"missing_fields" | "http_error" (``astra.metadata.delay`` for "slow"), and
``astra.proxy.mode`` = "ok" | "refuse" (not listening: connection refused) | "close" (accepts,
then closes).
"""

import argparse
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading

from cqlreactor.testing.astra import certs
from cqlreactor.testing.astra.bundle import write_bundle
from cqlreactor.testing.astra.metadata import MetadataServer
from cqlreactor.testing.astra.proxy import SniProxy

__all__ = ["FakeAstra", "main"]

PRODUCT_TYPE = "DATASTAX_APOLLO"


# --- FakeAstra ------------------------------------------------------------------------------

class FakeAstra(object):
    """The whole fake: certificates, cluster, metadata service, SNI proxy and bundle.

    Args:
        nodes: number of simulated nodes.
        bundle_path: where to write the bundle (default: inside ``directory``).
        username, password: enable password auth on the cluster (Astra: "token" and the
            application token).  Bundles Astra issues today carry no credentials, so neither
            do ours unless ``credentials_in_bundle=True`` (as bundles of old did).
        keyspace: created on the cluster (as when the database is made) and written to
            config.json.
        local_dc: the data center the metadata service reports (default: the nodes' one).
        host: the DNS name of the proxy and the metadata service (default ``localhost``; it
            must resolve to a loopback address); the certificates name it (plus
            ``localhost`` and 127.0.0.1 in their subjectAltName).
        directory: scratch directory for certificates (a temp dir by default, removed at stop).
        start_cluster: False runs only the CA, bundle, metadata service and proxy, routing to
            ``routes`` ({host_id: (address, port)}) — for tests of the cloud pieces alone.
        cluster_options: extra keyword arguments for SimulatedCluster.

    Attributes once started: bundle_path, metadata_url, proxy_address ("host:port"), username,
    password, host_ids, cluster (the SimulatedCluster), metadata (MetadataServer), proxy
    (SniProxy), ca / node_cert / client_cert (certs.CertFiles), directory.
    """

    def __init__(self, nodes=3, bundle_path=None, username=None, password=None, keyspace=None,
                 local_dc=None, host="localhost", directory=None, start_cluster=True,
                 routes=None, credentials_in_bundle=False, cluster_options=None):
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
        names = [self.host, "localhost", "127.0.0.1"]
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
        options.setdefault("product_type", PRODUCT_TYPE)     # what drivers detect Astra by
        options.setdefault("keyspace_ddl", False)            # keyspaces come from the API
        if self.username is not None:
            options.setdefault("auth", (self.username, self.password))
        self.cluster = SimulatedCluster(**options)
        self.cluster.start()
        for node in self.cluster.node_info():
            self.routes[str(node["host_id"])] = (node["address"], node["port"])
            if self.local_dc is None:
                self.local_dc = node.get("datacenter")
        if self.keyspace:
            self.create_keyspace(self.keyspace)

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

    def create_keyspace(self, name):
        """Create keyspace ``name`` as Astra's DevOps API does (NetworkTopologyStrategy, three
        replicas capped at the node count, in the local DC); CQL cannot (Unauthorized)."""
        if self.cluster is None:
            raise RuntimeError("create_keyspace needs the cluster (start_cluster=True, started)")
        dc = self.local_dc or "datacenter1"
        self.cluster.admin_execute(
            "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
            "'NetworkTopologyStrategy', '%s': %d}" % (name, dc, min(3, self.nodes)))

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
                "local_dc": self.local_dc,
                "control": self.cluster.control_address if self.cluster else None}


# --- command line ---------------------------------------------------------------------------

def main(argv=None):
    """``python -m cqlreactor.testing astra ...``: run a fake Astra until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m cqlreactor.testing astra",
        description="Run a fake DataStax Astra on loopback: TLS nodes behind an SNI proxy, an "
                    "HTTPS metadata service and a secure connect bundle. When ready it prints "
                    "one JSON line (bundle, metadata_url, proxy_address, control, username, "
                    "password, host_ids, local_dc) and serves until SIGINT or SIGTERM. "
                    "'control' is the simulated cluster's control channel (host:port): "
                    "cqlreactor.testing.server.control.ControlClient(control).call(op, ...) "
                    "injects faults (stall, stop_node, drop_connections, prime, ...).",
        epilog="Needs the 'testing' extra (pip install 'cqlreactor[testing]') for the "
               "certificates (cryptography).")
    parser.add_argument("--nodes", type=int, default=3,
                        help="number of simulated nodes behind the proxy (default 3)")
    parser.add_argument("--bundle", required=True, metavar="PATH",
                        help="where to write the secure connect bundle zip (required)")
    parser.add_argument("--username", help="require password auth with this user (with "
                                           "--password); also written to the bundle")
    parser.add_argument("--password", help="the password for --username")
    parser.add_argument("--keyspace", help="keyspace named in the bundle's config.json "
                                           "(created on the cluster)")
    parser.add_argument("--local-dc", help="the data center the metadata service reports "
                                           "(default: the simulated nodes' one)")
    parser.add_argument("--credentials-in-bundle", action="store_true",
                        help="write --username/--password into config.json (as old bundles "
                             "did; today's carry none)")
    parser.add_argument("--host", default="localhost",
                        help="DNS name of the proxy and metadata service, resolving to "
                             "loopback (default localhost; the certificates name it)")
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
                   host=args.host, credentials_in_bundle=args.credentials_in_bundle) as astra:
        sys.stdout.write(json.dumps(astra.describe()) + "\n")
        sys.stdout.flush()
        while not stop.is_set():
            stop.wait(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
