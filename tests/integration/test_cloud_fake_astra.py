"""The whole fake Astra: simulated TLS nodes behind the SNI proxy, the CLI, and the independent
check with cassandra-driver's own cloud support.

Connections here are plain ``ssl`` sockets speaking raw CQL frames (OPTIONS -> SUPPORTED), so
these tests need only the simulated server's handshake, not our session layer.
"""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

pytest.importorskip("cryptography")

from cqlreactor.cloud import cloud_config_from, open_bundle, verify_peer_hostname  # noqa: E402
from cqlreactor.testing.astra import FakeAstra                          # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTIONS_V4 = bytes([0x04, 0x00, 0x00, 0x01, 0x05, 0, 0, 0, 0])   # stream 1, OPTIONS, no body
SUPPORTED = 0x06


@pytest.fixture(scope="module")
def astra():
    with FakeAstra(nodes=3, username="astra", password="pw", keyspace="ks",
                   credentials_in_bundle=True) as fake:
        yield fake


@pytest.fixture(scope="module")
def cloud(astra):
    cfg = cloud_config_from({"secure_connect_bundle": astra.bundle_path, "connect_timeout": 10})
    yield cfg
    cfg.cleanup()


def _recv_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def _options(tls):
    tls.sendall(OPTIONS_V4)
    header = _recv_exactly(tls, 9)
    body = _recv_exactly(tls, int.from_bytes(header[5:9], "big"))
    return header, body


def _open(cfg, endpoint):
    raw = socket.create_connection(endpoint.resolve(), timeout=10)
    tls = cfg.ssl_context.wrap_socket(raw, server_hostname=endpoint.server_hostname)
    verify_peer_hostname(tls, endpoint.tls_hostname, host=str(endpoint))
    return tls


def test_metadata_names_the_simulated_nodes(astra, cloud):
    nodes = astra.cluster.node_info()
    assert sorted(n["host_id"] for n in nodes) == sorted(e.host_id for e in cloud.endpoints)
    assert cloud.local_dc == nodes[0]["datacenter"]
    assert (cloud.username, cloud.password, cloud.keyspace) == ("astra", "pw", "ks")


def test_each_endpoint_reaches_its_own_node_over_tls(astra, cloud):
    index_of = {n["host_id"]: n["index"] for n in astra.cluster.node_info()}
    for endpoint in cloud.endpoints:
        before = astra.cluster.connection_count(index_of[endpoint.host_id])
        tls = _open(cloud, endpoint)
        try:
            header, body = _options(tls)
            assert header[0] == 0x84 and header[4] == SUPPORTED
            assert b"CQL_VERSION" in body
            assert astra.cluster.wait_for(
                lambda: astra.cluster.connection_count(index_of[endpoint.host_id]) == before + 1)
        finally:
            tls.close()


def test_nodes_demand_the_bundle_client_certificate(astra, cloud):
    # same CA trust and SNI, but no client certificate: the node refuses the connection
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile=cloud.bundle.ca_cert_path)
    endpoint = cloud.endpoints[0]
    raw = socket.create_connection(endpoint.resolve(), timeout=10)
    with pytest.raises((ssl.SSLError, OSError, EOFError)):
        tls = ctx.wrap_socket(raw, server_hostname=endpoint.server_hostname)
        try:
            _options(tls)
        finally:
            tls.close()
    raw.close()


def test_cli_prints_one_ready_line_and_stops_on_sigterm(tmp_path):
    bundle = str(tmp_path / "scb.zip")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "cqlreactor.testing", "astra", "--nodes",
                             "2", "--bundle", bundle, "--username", "u", "--password", "p",
                             "--credentials-in-bundle"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode()[-2000:]
        info = json.loads(line.decode())
        assert info["bundle"] == bundle and os.path.isfile(bundle)
        assert (info["username"], info["password"]) == ("u", "p")
        assert info["metadata_url"].startswith("https://localhost:")
        assert info["proxy_address"].startswith("localhost:")
        assert len(info["host_ids"]) == 2
        cfg = cloud_config_from({"secure_connect_bundle": bundle})
        try:
            assert sorted(cfg.metadata.host_ids) == sorted(info["host_ids"])
            assert "%s:%d" % (cfg.metadata.sni_host, cfg.metadata.sni_port) == \
                info["proxy_address"]
        finally:
            cfg.cleanup()
        b = open_bundle(bundle)
        b.cleanup()
        assert (b.username, b.password) == ("u", "p")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0
    assert sorted(os.listdir(str(tmp_path))) == ["scb.zip"]


def _engine_available():
    try:
        import cqlreactor.testing.engine  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.oracle
@pytest.mark.skipif(not _engine_available(), reason="the simulated cluster's CQL engine has "
                                                    "not landed yet")
@pytest.mark.parametrize("protocol_version", [4, 5])
def test_cassandra_driver_connects_to_the_fake_astra(astra, protocol_version):
    cluster_mod = pytest.importorskip("cassandra.cluster")
    from cassandra.auth import PlainTextAuthProvider

    cluster = cluster_mod.Cluster(cloud={"secure_connect_bundle": astra.bundle_path},
                                  auth_provider=PlainTextAuthProvider("astra", "pw"),
                                  protocol_version=protocol_version, connect_timeout=10)
    try:
        session = cluster.connect()
        hosts = cluster.metadata.all_hosts()
        assert sorted(str(h.host_id) for h in hosts) == sorted(astra.host_ids)
        ks = "oracle_v%d" % protocol_version
        astra.create_keyspace(ks)              # Astra refuses CREATE KEYSPACE over CQL
        session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v text)" % ks)
        insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
        for k in range(10):
            session.execute(insert, (k, "v%d" % k))
        rows = session.execute("SELECT k, v FROM %s.t WHERE k = 3" % ks)
        assert [(r.k, r.v) for r in rows] == [(3, "v3")]
        # the driver spread its pools over every node, all through the proxy
        deadline = time.monotonic() + 10
        while (time.monotonic() < deadline
               and not all(astra.proxy.routed.get(h) for h in astra.host_ids)):
            time.sleep(0.05)
        assert all(astra.proxy.routed.get(h) for h in astra.host_ids), astra.proxy.routed
        assert cluster.metadata.dbaas            # the driver recognised Astra
    finally:
        cluster.shutdown()


@pytest.mark.oracle
@pytest.mark.skipif(not _engine_available(), reason="the simulated cluster's CQL engine has "
                                                    "not landed yet")
def test_cassandra_driver_v5_without_auth():
    """v5 segments through the proxy (no auth, so the framing switch is right after READY)."""
    cluster_mod = pytest.importorskip("cassandra.cluster")
    with FakeAstra(nodes=2) as fake:
        cluster = cluster_mod.Cluster(cloud={"secure_connect_bundle": fake.bundle_path},
                                      protocol_version=5, connect_timeout=10)
        try:
            session = cluster.connect()
            row = session.execute("SELECT host_id FROM system.local").one()
            assert str(row.host_id) in fake.host_ids
            assert len(cluster.metadata.all_hosts()) == 2
        finally:
            cluster.shutdown()


def _reactor_params():
    try:
        from cqlreactor.reactors import matrix
    except ImportError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="reactors not available"))]
    params = []
    for name in matrix.reactor_names():
        status = matrix.reactor_status(name, load=True)
        marks = []
        if status.state != "available":
            marks.append(pytest.mark.skip(reason="%s %s: %s" % (name, status.state,
                                                                status.reason)))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("protocol_version", [4, 5])
@pytest.mark.parametrize("reactor_name", _reactor_params())
def test_our_reactors_reach_every_node_through_the_proxy(astra, cloud, reactor_name,
                                                         protocol_version):
    """The reactor layer (TCP + shared TLS layer + CQL handshake with auth) over SniEndpoints:
    SNI = host id, certificate checked against the proxy's name by the CloudSSLContext."""
    from cqlreactor.core.auth import PlainTextAuthenticator
    from cqlreactor.core.messages import OptionsMessage, SupportedMessage
    from cqlreactor.reactors import matrix

    reactor = matrix.get_reactor_class(reactor_name)()
    index_of = {n["host_id"]: n["index"] for n in astra.cluster.node_info()}
    try:
        for endpoint in cloud.endpoints:
            before = astra.cluster.connection_count(index_of[endpoint.host_id])
            conn = reactor.connect(endpoint, ssl_context=cloud.ssl_context, connect_timeout=10,
                                   protocol_version=protocol_version,
                                   authenticator=PlainTextAuthenticator("astra", "pw"))
            try:
                assert conn.protocol_version == protocol_version
                assert astra.cluster.connection_count(index_of[endpoint.host_id]) == before + 1
                done = reactor.make_event()
                result = []
                conn.send(OptionsMessage(), lambda r: (result.append(r), done.set()))
                assert done.wait(10)
                assert isinstance(result[0], SupportedMessage), result
            finally:
                conn.close()
    finally:
        reactor.stop()


def test_our_default_reactor_refuses_a_certificate_not_naming_the_proxy(astra, cloud):
    pytest.importorskip("cqlreactor.reactors.driver")
    from cqlreactor.cloud import make_ssl_context
    from cqlreactor.core.auth import PlainTextAuthenticator
    from cqlreactor.core.errors import TLSError
    from cqlreactor.reactors import get_reactor_class

    b = cloud.bundle
    wrong = make_ssl_context(b.ca_cert_path, b.cert_path, b.key_path,
                             tls_hostname="proxy.elsewhere.example")
    reactor = get_reactor_class(None)()
    try:
        with pytest.raises(TLSError) as info:
            reactor.connect(cloud.endpoints[0], ssl_context=wrong, connect_timeout=10,
                            authenticator=PlainTextAuthenticator("astra", "pw"))
        assert info.value.reason == "hostname"
        assert "proxy.elsewhere.example" in str(info.value)
    finally:
        reactor.stop()


@pytest.mark.parametrize("mode", ["refuse", "close"])
def test_our_default_reactor_fails_clearly_when_the_proxy_refuses(astra, cloud, mode):
    pytest.importorskip("cqlreactor.reactors.driver")
    from cqlreactor.core.auth import PlainTextAuthenticator
    from cqlreactor.core.errors import ConnectionException
    from cqlreactor.reactors import get_reactor_class

    reactor = get_reactor_class(None)()
    astra.proxy.mode = mode
    try:
        with pytest.raises(ConnectionException) as info:   # TLSError is one too
            reactor.connect(cloud.endpoints[0], ssl_context=cloud.ssl_context, connect_timeout=5,
                            authenticator=PlainTextAuthenticator("astra", "pw"))
        assert cloud.endpoints[0].host_id in str(info.value)
    finally:
        astra.proxy.mode = "ok"
        reactor.stop()
