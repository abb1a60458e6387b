"""The one TLS layer: in memory against a real server-side SSLObject, then through every reactor
against the simulated cluster's TLS listener, with real certificates made by ``cryptography``."""

import os
import re
import ssl

import pytest

pytest.importorskip("cryptography")

from cqlreactor.core.errors import ConnectionException, TLSError  # noqa: E402
from cqlreactor.reactors import tls as tls_module  # noqa: E402
from cqlreactor.reactors.base import Endpoint  # noqa: E402
from cqlreactor.reactors.tls import TLSLayer  # noqa: E402
from cqlreactor.testing.astra.certs import make_ca, make_cert  # noqa: E402

from cqlreactor.testing.conformance import Collector, endpoint_of, query  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a node certificate for 127.0.0.1/localhost, and a second, unrelated CA."""
    base = tmp_path_factory.mktemp("pki")
    ca_dir, node_dir, other_dir = base / "ca", base / "node", base / "other"
    for d in (ca_dir, node_dir, other_dir):
        d.mkdir()
    ca = make_ca(ca_dir)
    node = make_cert(ca, ["localhost", "127.0.0.1"], node_dir, "node", usage="server")
    expired = make_cert(ca, ["localhost", "127.0.0.1"], ca_dir, "expired", usage="server",
                        expired=True)
    other = make_ca(other_dir, name="some other CA")
    return {"ca": ca, "node": node, "node_dir": node_dir, "other": other, "expired": expired}


def client_context(ca):
    context = ssl.create_default_context(cafile=ca.cert_path)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


def server_object(cert, minimum_version=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    if minimum_version is not None:
        context.minimum_version = minimum_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    return context.wrap_bio(incoming, outgoing, server_side=True), incoming, outgoing


def handshake(client, server_cert):
    """Pump bytes between the TLSLayer and an in-memory server until both are done."""
    server, s_in, s_out = server_object(server_cert)
    to_server = client.start()
    server_error = None
    for _ in range(20):
        if to_server:
            s_in.write(to_server)
        try:
            server.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:            # the server saw our alert
            server_error = exc
        to_client = s_out.read()
        if to_client:
            _, to_server = client.receive(to_client)   # raises TLSError on failure
        else:
            to_server = b""
        if client.handshake_complete and not to_server and not to_client:
            break
    return server, s_in, s_out, server_error


# --- the layer in memory ---------------------------------------------------------------------

def test_handshake_and_data_both_ways(pki):
    client = TLSLayer(client_context(pki["ca"]), "localhost", host="node1")
    server, s_in, s_out, err = handshake(client, pki["node"])
    assert err is None and client.handshake_complete
    assert client.cipher() is not None
    payload = os.urandom(1024 * 1024)
    s_in.write(client.send(payload))
    received = bytearray()
    while True:
        try:
            received += server.read(1 << 20)
        except ssl.SSLWantReadError:
            break
    assert bytes(received) == payload
    server.write(payload[::-1])
    plaintext, outgoing = client.receive(s_out.read())
    assert plaintext == payload[::-1]


def sni_sent_by(client, cert):
    """The SNI name of the ClientHello ``client`` (a TLSLayer) starts with."""
    seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    callback = lambda obj, name, ctx: seen.append(name)  # noqa: E731
    if hasattr(context, "sni_callback"):
        context.sni_callback = callback
    else:                                   # Python 3.6
        context.set_servername_callback(callback)
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(s_in, s_out, server_side=True)
    s_in.write(client.start())
    with pytest.raises(ssl.SSLWantReadError):
        server.do_handshake()
    return seen


def test_sni_carries_the_endpoint_hostname(pki):
    client = TLSLayer(client_context(pki["ca"]), "localhost")
    assert sni_sent_by(client, pki["node"]) == ["localhost"]


def test_untrusted_certificate_is_a_certificate_error(pki):
    client = TLSLayer(client_context(pki["other"]), "localhost", host="node1:9042")
    with pytest.raises(TLSError) as info:
        handshake(client, pki["node"])
    assert info.value.reason == "certificate"
    assert "node1:9042" in str(info.value)


def test_expired_certificate_is_a_certificate_error(pki):
    client = TLSLayer(client_context(pki["ca"]), "localhost")
    with pytest.raises(TLSError) as info:
        handshake(client, pki["expired"])
    assert info.value.reason == "certificate"


def test_wrong_hostname_is_a_hostname_error(pki):
    client = TLSLayer(client_context(pki["ca"]), "db.example.com")
    with pytest.raises(TLSError) as info:
        handshake(client, pki["node"])
    assert info.value.reason == "hostname"


def test_hostname_check_can_be_turned_off_by_the_context(pki):
    context = client_context(pki["ca"])
    context.check_hostname = False
    client = TLSLayer(context, "db.example.com")
    handshake(client, pki["node"])
    assert client.handshake_complete


def test_no_common_protocol_is_a_protocol_error(pki):
    if not hasattr(ssl, "TLSVersion"):
        pytest.skip("needs SSLContext.maximum_version (Python 3.7+)")
    context = client_context(pki["ca"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    server, s_in, s_out = server_object(pki["node"], ssl.TLSVersion.TLSv1_3)
    client = TLSLayer(context, "localhost")
    s_in.write(client.start())
    with pytest.raises(ssl.SSLError):
        server.do_handshake()
    with pytest.raises(TLSError) as info:
        client.receive(s_out.read())
    assert info.value.reason == "protocol"


def test_a_peer_that_does_not_speak_tls_is_a_protocol_error(pki):
    client = TLSLayer(client_context(pki["ca"]), "localhost")
    client.start()
    with pytest.raises(TLSError) as info:
        client.receive(b"\x84\x00\x00\x00\x06\x00\x00\x00\x00" * 4)  # a CQL frame, not TLS
    assert info.value.reason == "protocol"


def test_check_hostname_as_sends_one_name_and_checks_another(pki):
    client_ctx = client_context(pki["ca"])
    client_ctx.check_hostname = False       # OpenSSL would check the SNI name
    hello = TLSLayer(client_ctx, "3c7a2d51-host-id", check_hostname_as="localhost")
    assert sni_sent_by(hello, pki["node"]) == ["3c7a2d51-host-id"]     # SNI: the one name ...
    client = TLSLayer(client_ctx, "3c7a2d51-host-id", check_hostname_as="localhost")
    handshake(client, pki["node"])          # ... the certificate checked against the other
    assert client.handshake_complete
    wrong = TLSLayer(client_ctx, "localhost", host="node1:9042",
                     check_hostname_as="db.example.com")
    with pytest.raises(TLSError) as info:
        handshake(wrong, pki["node"])
    assert info.value.reason == "hostname" and "db.example.com" in str(info.value)
    assert "node1:9042" in str(info.value)


def test_check_hostname_as_refuses_a_context_that_would_not_honour_it(pki):
    with pytest.raises(ValueError, match="check_hostname"):
        TLSLayer(client_context(pki["ca"]), "x", check_hostname_as="localhost")
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="CERT_REQUIRED"):
        TLSLayer(unverified, "x", check_hostname_as="localhost")


def test_context_from_options_carries_check_hostname_as(pki):
    context = tls_module.context_from_options({"ca_certs": pki["ca"].cert_path,
                                               "check_hostname_as": "localhost"})
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert tls_module.identity_of(context) == "localhost"
    client = TLSLayer(context, "10.1.2.3")      # the layer reads the name off the context
    assert client.check_hostname_as == "localhost"
    handshake(client, pki["node"])
    assert client.handshake_complete
    with pytest.raises(ValueError, match="CERT_REQUIRED"):
        tls_module.context_from_options({"check_hostname_as": "x", "cert_reqs": ssl.CERT_NONE})
    with pytest.raises(ValueError, match="unknown ssl_options: bogus"):
        tls_module.context_from_options({"bogus": 1})


def test_default_context_verifies_chain_and_hostname():
    context = tls_module.default_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_no_reactor_wraps_a_socket():
    directory = os.path.dirname(tls_module.__file__)
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py"):
            with open(os.path.join(directory, name)) as f:
                source = f.read()
            assert not re.search(r"\.wrap_socket\(", source), name


# --- through every reactor, against the simulated cluster's TLS listener ---------------------

@pytest.fixture(scope="module")
def tls_cluster(pki):
    from cqlreactor.testing.cluster import SimulatedCluster
    with SimulatedCluster(nodes=1, tls_dir=str(pki["node_dir"])) as cluster:
        yield cluster


def test_tls_connection_works(reactor, tls_cluster, pki):
    tls_cluster.prime("SELECT v FROM tls0", rows=[[1]], columns=[("v", "int")])
    for version in (4, 5):
        conn = reactor.connect(endpoint_of(tls_cluster), protocol_version=version,
                               ssl_context=client_context(pki["ca"]))
        try:
            assert conn.tls is not None and conn.tls.cipher() is not None
            collector = Collector(reactor, 200)
            for i in range(200):
                conn.send(query("SELECT v FROM tls0"), collector.callback(i), timeout=30)
            assert collector.wait(60)
            assert all(r.rows == [(1,)] for r in collector.results.values())
        finally:
            conn.close()


def test_tls_with_ssl_options(reactor, tls_cluster, pki):
    conn = reactor.connect(Endpoint(tls_cluster.contact_points[0], tls_cluster.port,
                                    server_hostname="localhost"),
                           ssl_options={"ca_certs": pki["ca"].cert_path})
    assert conn.protocol_version == 5
    conn.close()


def test_tls_refuses_an_untrusted_server(reactor, tls_cluster, pki):
    with pytest.raises(TLSError) as info:
        reactor.connect(endpoint_of(tls_cluster), ssl_context=client_context(pki["other"]))
    assert info.value.reason == "certificate"
    assert str(endpoint_of(tls_cluster)) in str(info.value)


def test_tls_refuses_a_wrong_hostname(reactor, tls_cluster, pki):
    endpoint = endpoint_of(tls_cluster, server_hostname="node7.example.com")
    with pytest.raises(TLSError) as info:
        reactor.connect(endpoint, ssl_context=client_context(pki["ca"]))
    assert info.value.reason == "hostname"


def test_tls_client_against_a_plain_server(reactor, cluster, pki):
    with pytest.raises(TLSError) as info:
        reactor.connect(endpoint_of(cluster), ssl_context=client_context(pki["ca"]),
                        connect_timeout=5)
    assert info.value.reason == "protocol"


def test_plain_client_against_a_tls_server_fails_cleanly(reactor, tls_cluster):
    with pytest.raises(ConnectionException):
        reactor.connect(endpoint_of(tls_cluster), connect_timeout=2)


def test_tls_16_mib_value_both_ways(reactor, tls_cluster, pki):
    big = os.urandom(1024) * (16 * 1024)
    conn = reactor.connect(endpoint_of(tls_cluster), ssl_context=client_context(pki["ca"]))

    def execute(text, values=None):
        collector = Collector(reactor, 1)
        conn.send(query(text, values=values), collector.callback(0), timeout=60)
        assert collector.wait(90)
        result = collector.results[0]
        if isinstance(result, BaseException):
            raise result
        return result

    try:
        execute("CREATE KEYSPACE IF NOT EXISTS tlsks WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        execute("CREATE TABLE IF NOT EXISTS tlsks.blobs (k int PRIMARY KEY, big blob)")
        execute("INSERT INTO tlsks.blobs (k, big) VALUES (?, ?)", [b"\x00\x00\x00\x01", big])
        result = execute("SELECT big FROM tlsks.blobs WHERE k = ?", [b"\x00\x00\x00\x01"])
        assert result.rows == [(big,)]
    finally:
        conn.close()


# --- mutual TLS: the server requires a client certificate -------------------------------------

@pytest.fixture(scope="module")
def mtls_cluster(pki, tmp_path_factory):
    import shutil
    from cqlreactor.testing.cluster import SimulatedCluster
    tls_dir = tmp_path_factory.mktemp("mtls")
    for name in ("node.crt", "node.key"):
        shutil.copy(str(pki["node_dir"] / name), str(tls_dir / name))
    shutil.copy(pki["ca"].cert_path, str(tls_dir / "ca.crt"))
    with SimulatedCluster(nodes=1, tls_dir=str(tls_dir), client_auth="required") as cluster:
        yield cluster


def test_mutual_tls_refusing_a_missing_client_certificate_is_a_tls_error(reactor, mtls_cluster,
                                                                        pki, tmp_path):
    """Like every other refused handshake: TLSError, reason "certificate" -- also with TLS 1.3,
    where the server's refusal arrives after the client finished its side (it used to surface
    as ConnectionDefunct('TLS error: ... certificate required'))."""
    tls12 = getattr(ssl, "TLSVersion", None)           # 3.7+
    for version in [None] + ([tls12.TLSv1_2] if tls12 else []):
        context = client_context(pki["ca"])
        if version is not None:
            context.maximum_version = version
        with pytest.raises(TLSError) as info:
            reactor.connect(endpoint_of(mtls_cluster), ssl_context=context, connect_timeout=5)
        assert info.value.reason == "certificate", info.value
        assert "certificate" in str(info.value)
        assert str(endpoint_of(mtls_cluster)) in str(info.value)
    client = make_cert(pki["ca"], ["cqlreactor-client"], str(tmp_path), "client", usage="client")
    context = client_context(pki["ca"])
    context.load_cert_chain(client.cert_path, client.key_path)
    conn = reactor.connect(endpoint_of(mtls_cluster), ssl_context=context)
    assert conn.protocol_version == 5
    conn.close()
