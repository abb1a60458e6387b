"""The fake Astra's SNI proxy routes real TLS connections by their SNI name.

Three real TLS "nodes" (threads with listening sockets, certificates naming the proxy's host
as Astra's do) stand behind the proxy; plain ``ssl`` clients use the cloud SSLContext and
SniEndpoints built from the bundle and the metadata service, and check the certificate against
the endpoint's ``tls_hostname`` (the proxy), as the TLS layer must.
"""

import os
import socket
import ssl
import threading

import pytest

pytest.importorskip("cryptography")

from cqlreactor.cloud import cloud_config_from, verify_peer_hostname     # noqa: E402
from cqlreactor.core.errors import TLSError                             # noqa: E402
from cqlreactor.testing.astra import certs                                    # noqa: E402
from cqlreactor.testing.astra import FakeAstra                          # noqa: E402

IDS = ["aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002",
       "cccccccc-0000-4000-8000-000000000003"]


class TlsNode(object):
    """A TLS server that answers b"<name>:<line>" and records the SNI names it saw."""

    def __init__(self, name, cert):
        self.name = name
        self.sni_seen = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert_path, cert.key_path)
        # set_servername_callback: the 3.6 spelling of sni_callback
        self.ctx.set_servername_callback(lambda obj, sni, ctx: self.sni_seen.append(sni))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(1024)
                tls.sendall(self.name.encode() + b":" + data)
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nodes"))
    # the nodes get their certificates from the fake's CA once it exists: start the fake
    # first with placeholder routes, then fill them in
    fake = FakeAstra(start_cluster=False, routes={}, host="127.0.0.1").start()
    cert = certs.make_cert(fake.ca, ["localhost", "127.0.0.1"], d, "node")
    nodes = [TlsNode("node%d" % i, cert) for i in range(3)]
    for host_id, node in zip(IDS, nodes):
        fake.routes[host_id] = ("127.0.0.1", node.port)
    cfg = cloud_config_from({"secure_connect_bundle": fake.bundle_path})
    yield fake, nodes, cfg
    cfg.cleanup()
    for node in nodes:
        node.close()
    fake.stop()


@pytest.fixture(autouse=True)
def reset(setup):
    yield
    setup[0].proxy.mode = "ok"


def talk(cfg, endpoint, payload=b"hello", hostname=None):
    address = endpoint.resolve()
    raw = socket.create_connection(address, timeout=10)
    tls = cfg.ssl_context.wrap_socket(raw, server_hostname=endpoint.server_hostname)
    try:
        verify_peer_hostname(tls, hostname or endpoint.tls_hostname, host=str(endpoint))
        tls.sendall(payload)
        return tls.recv(1024)
    finally:
        tls.close()


def test_metadata_lists_every_node(setup):
    fake, nodes, cfg = setup
    assert sorted(e.host_id for e in cfg.endpoints) == IDS
    assert {(e.address, e.port) for e in cfg.endpoints} == {("127.0.0.1", fake.proxy.port)}


def test_each_sni_name_reaches_its_node(setup):
    fake, nodes, cfg = setup
    by_id = {e.host_id: e for e in cfg.endpoints}
    for i, host_id in enumerate(IDS):
        assert talk(cfg, by_id[host_id], b"ping%d" % i) == b"node%d:ping%d" % (i, i)
        assert nodes[i].sni_seen[-1] == host_id       # SNI passed through untouched
    assert all(fake.proxy.routed[h] >= 1 for h in IDS)


def test_many_connections_in_parallel(setup):
    fake, nodes, cfg = setup
    results = {}

    def worker(k):
        ep = cfg.endpoints[k % 3]
        results[k] = (ep.host_id, talk(cfg, ep, b"m%d" % k))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 12
    for k, (host_id, answer) in results.items():
        assert answer == b"node%d:m%d" % (IDS.index(host_id), k)


def test_hostname_is_checked_against_the_proxy_not_the_host_id(setup):
    fake, nodes, cfg = setup
    ep = cfg.endpoints[0]
    with pytest.raises(TLSError) as info:
        talk(cfg, ep, hostname=ep.host_id)
    assert info.value.reason == "hostname-mismatch"
    with pytest.raises(TLSError):
        talk(cfg, ep, hostname="evil.example")


def test_the_context_never_skips_certificate_verification(setup):
    fake, nodes, cfg = setup
    assert cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED
    # a node with a certificate from another CA is rejected even though the proxy routes to it
    d = os.path.dirname(fake.ca.cert_path)
    rogue_ca = certs.make_ca(d, basename="rogue")
    rogue = TlsNode("rogue", certs.make_cert(rogue_ca, ["127.0.0.1"], d, "rogue-node"))
    fake.routes["rogue-id"] = ("127.0.0.1", rogue.port)
    try:
        with pytest.raises(ssl.SSLError):
            talk(cfg, cfg.endpoint_factory.create("rogue-id"))
    finally:
        del fake.routes["rogue-id"]
        rogue.close()


def test_unknown_sni_name_is_closed(setup):
    fake, nodes, cfg = setup
    with pytest.raises((ssl.SSLError, OSError)):
        talk(cfg, cfg.endpoint_factory.create("no-such-host-id"))
    assert "no-such-host-id" in fake.proxy.unroutable


def test_no_sni_is_closed(setup):
    fake, nodes, cfg = setup
    raw = socket.create_connection(("127.0.0.1", fake.proxy.port), timeout=10)
    with pytest.raises((ssl.SSLError, OSError)):
        cfg.ssl_context.wrap_socket(raw, server_hostname=None).recv(10)
    raw.close()


def test_proxy_refusing(setup):
    fake, nodes, cfg = setup
    fake.proxy.mode = "refuse"
    with pytest.raises(ConnectionRefusedError):
        talk(cfg, cfg.endpoints[0])
    fake.proxy.mode = "ok"
    assert talk(cfg, cfg.endpoints[0]).endswith(b":hello")


def test_proxy_closing_at_once(setup):
    fake, nodes, cfg = setup
    fake.proxy.mode = "close"
    with pytest.raises((ssl.SSLError, OSError)):
        talk(cfg, cfg.endpoints[0])


def _context_checking(cfg, name):
    from cqlreactor.cloud import make_ssl_context
    b = cfg.bundle
    return make_ssl_context(b.ca_cert_path, b.cert_path, b.key_path, tls_hostname=name)


def test_cloud_context_checks_the_proxy_name_by_itself(setup):
    fake, nodes, cfg = setup
    ep = cfg.endpoints[1]
    from cqlreactor.cloud import is_cloud_context
    assert is_cloud_context(cfg.ssl_context) and not cfg.ssl_context.check_hostname
    assert cfg.ssl_context.tls_hostname == "127.0.0.1"
    wrong = _context_checking(cfg, "proxy.elsewhere.example")
    raw = socket.create_connection(ep.resolve(), timeout=10)
    with pytest.raises(ssl.CertificateError) as info:
        wrong.wrap_socket(raw, server_hostname=ep.server_hostname)
    raw.close()
    assert "proxy.elsewhere.example" in str(info.value)
    assert nodes[1].sni_seen[-1] == ep.host_id        # the SNI still carried the host id


def _tls_over_socket(context, endpoint):
    """Drive the reactors' sans-IO TLSLayer by hand over a blocking socket."""
    tls_mod = pytest.importorskip("cqlreactor.reactors.tls")
    layer = tls_mod.TLSLayer(context, endpoint.server_hostname, host=str(endpoint))
    sock = socket.create_connection(endpoint.resolve(), timeout=10)
    try:
        sock.sendall(layer.start())
        while not layer.handshake_complete:
            data = sock.recv(65536)
            if not data:
                raise EOFError("closed during the handshake")
            _, outgoing = layer.receive(data)
            if outgoing:
                sock.sendall(outgoing)
        sock.sendall(layer.send(b"via-tls-layer"))
        answer = b""
        while not answer.endswith(b"via-tls-layer"):
            data = sock.recv(65536)
            if not data:
                break
            plaintext, _ = layer.receive(data)
            answer += plaintext
        return answer
    finally:
        sock.close()


def test_the_shared_tls_layer_sends_sni_and_checks_the_proxy_name(setup):
    fake, nodes, cfg = setup
    from cqlreactor.core.errors import TLSError as CoreTLSError
    ep = cfg.endpoints[2]
    assert _tls_over_socket(cfg.ssl_context, ep) == b"node2:via-tls-layer"
    assert nodes[2].sni_seen[-1] == ep.host_id
    with pytest.raises(CoreTLSError) as info:
        _tls_over_socket(_context_checking(cfg, "proxy.elsewhere.example"), ep)
    assert info.value.reason == "hostname"
