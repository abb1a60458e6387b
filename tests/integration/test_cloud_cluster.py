"""Cluster(cloud=...) end to end against the fake Astra, on every reactor available here (issue 6).

Everything is real: the simulated nodes (a server process, TLS, password auth, client
certificates required), the HTTPS metadata service (mutual TLS) and the SNI proxy that routes by
the ClientHello's server name.  The client is our public API only: ``Cluster(cloud=...)``,
``connect()``, ``execute()``, ``shutdown()``.

Each test copies the bundle into its own directory and checks afterwards that nothing was left
next to it; ``use_default_tempdir`` is pointed at a private "system temp dir" (``tempfile.tempdir``
patched for the test) so that leftovers can be checked there too without racing other tests.
"""

import json
import os
import shutil
import socket
import ssl
import stat
import tempfile
import threading
import time
import zipfile

import pytest
from _cluster_helpers import wait_until

pytest.importorskip("cryptography")

from cqlreactor import (Cluster, ConsistencyLevel, DCAwareRoundRobinPolicy,  # noqa: E402
                        ExecutionProfile, NoHostAvailable,
                        PlainTextAuthProvider, SimpleStatement)
from cqlreactor.cloud import SniEndpoint, cloud_config_from                  # noqa: E402
from cqlreactor.core.errors import (BadCredentials, CloudConfigError,        # noqa: E402
                                    ConnectionException, TLSError)
from cqlreactor.reactors import get_reactor_class                            # noqa: E402
from cqlreactor.testing.astra import certs                                         # noqa: E402
from cqlreactor.testing.astra import FakeAstra                               # noqa: E402
from cqlreactor.testing.pytest_plugin import reactor_params                  # noqa: E402

USER, PASSWORD = "astra", "s3cret"


@pytest.fixture(scope="module")
def astra():
    # the IP-named layout with credentials in config.json (bundles of old); the DNS-named
    # default is covered by test_fake_astra_as_astra.py
    with FakeAstra(nodes=3, username=USER, password=PASSWORD, host="127.0.0.1",
                   credentials_in_bundle=True) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset_fake(request):
    yield
    if "astra" in request.fixturenames:
        fake = request.getfixturevalue("astra")
        fake.metadata.mode = "ok"
        fake.proxy.mode = "ok"


@pytest.fixture
def systmp(tmp_path, monkeypatch):
    """A private system temp dir for ``use_default_tempdir``; must be empty after the test."""
    d = tmp_path / "systmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield str(d)
    assert os.listdir(str(d)) == [], "files left in the temp dir"


@pytest.fixture
def scb(astra, tmp_path, systmp):
    """The fake's bundle copied into a directory of its own; only the zip may remain there."""
    d = tmp_path / "bundle"
    d.mkdir()
    path = str(d / "secure-connect-test.zip")
    shutil.copy(astra.bundle_path, path)
    yield path
    assert sorted(os.listdir(str(d))) == ["secure-connect-test.zip"], \
        "extracted files left next to the bundle"


def _cloud_cluster(bundle, reactor=None, use_default_tempdir=None, **kwargs):
    cloud = {"secure_connect_bundle": bundle}
    if use_default_tempdir is not None:
        cloud["use_default_tempdir"] = use_default_tempdir
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(cloud=cloud, connection_class=reactor, **kwargs)


def _served(astra, marker):
    """Requests the nodes received whose query text mentions ``marker`` (cleared after)."""
    entries = []
    for i in range(astra.nodes):
        entries += [e for e in astra.cluster.served(i, clear=True)
                    if marker in (e.get("query") or "")]
    return entries


# --- the happy path ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("use_default_tempdir", [False, True], ids=["next-to-zip", "tempdir"])
def test_connect_discover_crud_at_local_quorum(astra, scb, systmp, reactor, use_default_tempdir):
    cluster = _cloud_cluster(scb, reactor, use_default_tempdir,
                             auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    extracted = cluster._cloud_config.bundle.directory
    try:
        expected_parent = systmp if use_default_tempdir else os.path.dirname(scb)
        assert os.path.dirname(extracted) == expected_parent
        assert sorted(os.listdir(extracted)) == ["ca.crt", "cert", "key"]
        assert stat.S_IMODE(os.stat(os.path.join(extracted, "key")).st_mode) == 0o600

        session = cluster.connect()
        # every node discovered, each through the proxy with its host id as SNI name
        hosts = cluster.metadata.all_hosts()
        assert sorted(str(h.host_id) for h in hosts) == astra.host_ids
        for host in hosts:
            endpoint = host.endpoint
            assert isinstance(endpoint, SniEndpoint)
            assert endpoint.host_id == endpoint.server_hostname == str(host.host_id)
            assert (endpoint.address, endpoint.port) == ("127.0.0.1", astra.proxy.port)
            assert endpoint.tls_hostname == "127.0.0.1"
            assert host.datacenter == astra.local_dc
        assert wait_until(cluster, lambda: len(session.get_pools()) == 3
                     and all(p.open_count for p in session.get_pools()), 10)
        assert all(astra.proxy.routed.get(h) for h in astra.host_ids), astra.proxy.routed
        assert cluster.load_balancing_policy.child_policy.local_dc == astra.local_dc

        ks = "cloud_%s_%s" % (reactor, "tmp" if use_default_tempdir else "zip")
        astra.create_keyspace(ks)              # Astra refuses CREATE KEYSPACE over CQL
        session.execute("CREATE TABLE IF NOT EXISTS %s.items (k int PRIMARY KEY, v text)" % ks)
        _served(astra, ks)                              # start counting from here
        insert = session.prepare("INSERT INTO %s.items (k, v) VALUES (?, ?)" % ks)
        for k in range(12):
            session.execute(insert, (k, "v%d" % k))
        session.execute("UPDATE %s.items SET v = %%s WHERE k = %%s" % ks, ("changed", 3))
        assert session.execute("SELECT v FROM %s.items WHERE k = 3" % ks).one().v == "changed"
        session.execute("DELETE FROM %s.items WHERE k = %%s" % ks, (4,))
        assert session.execute("SELECT v FROM %s.items WHERE k = 4" % ks).one() is None
        rows = session.execute(SimpleStatement("SELECT k FROM %s.items" % ks, fetch_size=5))
        assert sorted(r.k for r in rows) == [k for k in range(12) if k != 4]

        served = [e for e in _served(astra, ks) if e["opcode"] in ("QUERY", "EXECUTE")]
        assert len([e for e in served if e["opcode"] == "EXECUTE"]) == 12
        assert len(served) >= 12 + 5
        assert {e["consistency"] for e in served} == {"LOCAL_QUORUM"}, served
    finally:
        cluster.shutdown()
    assert not os.path.exists(extracted)


def test_shutdown_without_connect_removes_the_extracted_files(astra, scb):
    cluster = Cluster(cloud={"secure_connect_bundle": scb})
    extracted = cluster._cloud_config.bundle.directory
    assert os.path.isfile(os.path.join(extracted, "key"))
    cluster.shutdown()
    assert not os.path.exists(extracted)
    cluster.shutdown()                                  # idempotent


@pytest.mark.timeout(60)
def test_nodes_missing_from_the_metadata_are_found_in_system_peers(astra, scb, reactor):
    """The metadata service names one node; the other two come from system.peers and get the
    same kind of endpoint (proxy + their host id as SNI), and pools through the proxy."""
    only = astra.host_ids[1]
    full = astra.metadata.document
    astra.metadata.document = lambda: dict(full(), contact_info=dict(
        full()["contact_info"], contact_points=[only]))
    try:
        cluster = _cloud_cluster(scb, reactor, auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    finally:
        astra.metadata.document = full
    with cluster:
        assert [e.host_id for e in cluster._cloud_config.endpoints] == [only]
        before = dict(astra.proxy.routed)
        session = cluster.connect()
        hosts = cluster.metadata.all_hosts()
        assert sorted(str(h.host_id) for h in hosts) == astra.host_ids
        for host in hosts:
            assert isinstance(host.endpoint, SniEndpoint)
            assert host.endpoint.server_hostname == str(host.host_id)
            assert (host.endpoint.address, host.endpoint.port) == ("127.0.0.1", astra.proxy.port)
        assert wait_until(cluster, lambda: all(p.open_count for p in session.get_pools())
                     and len(session.get_pools()) == 3, 10)
        assert all(astra.proxy.routed.get(h, 0) > before.get(h, 0) for h in astra.host_ids)


@pytest.mark.timeout(60)
def test_statement_and_profile_consistency_win_over_the_cloud_default(astra, scb):
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.QUORUM)
    with _cloud_cluster(scb, auth_provider=PlainTextAuthProvider(USER, PASSWORD),
                        execution_profiles={"q": profile}) as cluster:
        session = cluster.connect()
        marker = "cloud_cl_marker"
        query = "SELECT key FROM system.local WHERE key = 'local' /* %s */" % marker
        _served(astra, marker)
        session.execute(query)
        session.execute(query, execution_profile="q")
        session.execute(SimpleStatement(query, consistency_level=ConsistencyLevel.ONE))
        session.execute(SimpleStatement(query, consistency_level=ConsistencyLevel.ONE),
                        execution_profile="q")
        served = [e["consistency"] for e in _served(astra, marker) if e["opcode"] == "QUERY"]
        # (the nodes' logs are gathered node by node: compare without order)
        assert sorted(served) == sorted(["LOCAL_QUORUM", "QUORUM", "ONE", "ONE"])


@pytest.mark.timeout(60)
def test_an_explicit_dc_aware_policy_learns_the_metadata_local_dc(astra, scb):
    policy = DCAwareRoundRobinPolicy()
    with _cloud_cluster(scb, auth_provider=PlainTextAuthProvider(USER, PASSWORD),
                        load_balancing_policy=policy) as cluster:
        cluster.connect()
        assert policy.local_dc == astra.local_dc == cluster._cloud_config.local_dc


# --- credentials ---------------------------------------------------------------------------

def _rewrite(src, dst, config_changes=None, members=None, drop=(), symlinks=()):
    """Copy bundle ``src`` to ``dst`` changing config.json fields / members."""
    with zipfile.ZipFile(src) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    if config_changes is not None:
        config = json.loads(contents["config.json"].decode())
        for key, value in config_changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        contents["config.json"] = json.dumps(config).encode()
    contents.update(members or {})
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            if name not in drop:
                zf.writestr(name, data)
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return dst


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reactor_name", reactor_params())
def test_credentials_from_config_json_when_no_auth_provider(astra, scb, reactor_name):
    with _cloud_cluster(scb, reactor_name) as cluster:
        assert cluster.auth_provider is not None
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"


@pytest.mark.timeout(60)
def test_an_explicit_auth_provider_wins_over_config_json(astra, scb):
    _rewrite(scb, scb, config_changes={"password": "wrong"})
    with _cloud_cluster(scb, auth_provider=PlainTextAuthProvider(USER, PASSWORD)) as cluster:
        cluster.connect()
    with _cloud_cluster(scb) as cluster:
        with pytest.raises(NoHostAvailable) as info:
            cluster.connect()
        assert info.value.errors
        assert all(isinstance(e, BadCredentials) for e in info.value.errors.values())


@pytest.mark.timeout(60)
def test_without_any_credentials_the_nodes_refuse(astra, scb):
    _rewrite(scb, scb, config_changes={"username": None, "password": None})
    with _cloud_cluster(scb) as cluster:
        assert cluster.auth_provider is None
        with pytest.raises(NoHostAvailable) as info:
            cluster.connect()
        assert len(info.value.errors) == 3


# --- configuration conflicts ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs,names", [
    ({"contact_points": ["127.0.0.1"]}, ["contact_points"]),
    ({"ssl_context": ssl.create_default_context()}, ["ssl_context"]),
    ({"ssl_options": {"ca_certs": "ca.pem"}}, ["ssl_options"]),
    ({"contact_points": [], "ssl_options": {"ca_certs": "ca.pem"}},
     ["contact_points", "ssl_options"]),
], ids=["contact_points", "ssl_context", "ssl_options", "two"])
def test_cloud_with_contact_points_or_tls_settings_is_a_value_error(scb, kwargs, names):
    with pytest.raises(ValueError) as info:
        Cluster(cloud={"secure_connect_bundle": scb}, **kwargs)
    text = str(info.value)
    for name in names:
        assert name in text
    assert "cloud" in text


@pytest.mark.parametrize("cloud,fragment", [
    ({}, "secure_connect_bundle"),
    ({"secure_connect_bundle": "BUNDLE", "connect_timout": 3}, "connect_timout"),
    ({"secure_connect_bundle": "BUNDLE", "connect_timeout": -1}, "connect_timeout"),
])
def test_a_bad_cloud_dict_is_a_value_error(scb, cloud, fragment):
    cloud = {k: (scb if v == "BUNDLE" else v) for k, v in cloud.items()}
    with pytest.raises(ValueError) as info:
        Cluster(cloud=cloud)
    assert fragment in str(info.value)


def test_a_refused_reactor_is_refused_before_the_bundle_is_extracted(astra, scb):
    before = astra.metadata.requests
    with pytest.raises(ValueError) as info:
        Cluster(cloud={"secure_connect_bundle": scb}, connection_class="no-such-reactor")
    assert "no-such-reactor" in str(info.value)
    assert astra.metadata.requests == before
    # (the scb fixture checks that nothing was extracted next to the bundle)


# --- bad bundles ---------------------------------------------------------------------------

def _bad_bundle(kind, astra, scb, tmp_path):
    d = str(tmp_path)
    if kind.startswith("missing-"):
        return _rewrite(scb, scb, drop=(kind[len("missing-"):],)), kind[len("missing-"):]
    if kind == "bad-json":
        return _rewrite(scb, scb, members={"config.json": b'{"host": "127.0.0.1", '}), \
            "not valid JSON"
    if kind == "no-host":
        return _rewrite(scb, scb, config_changes={"host": None}), "'host'"
    if kind == "wrong-ca":
        other = certs.make_ca(d, basename="other-ca", name="another CA")
        return _rewrite(scb, scb, members={"ca.crt": other.cert_pem}), \
            "not accepted by 'ca.crt': unable to get local issuer certificate (cert was not " \
            "signed by the CA in ca.crt)"
    if kind == "expired-cert":
        cert = certs.make_cert(astra.ca, ["c"], d, "expired", usage="client", expired=True)
        return _rewrite(scb, scb, members={"cert": cert.cert_pem, "key": cert.key_pem}), \
            "certificate has expired"
    if kind == "mismatched-key":
        cert = certs.make_cert(astra.ca, ["c"], d, "mism", usage="client", mismatched_key=True)
        return _rewrite(scb, scb, members={"cert": cert.cert_pem, "key": cert.key_pem}), \
            "does not match"
    if kind == "path-traversal":
        return _rewrite(scb, scb, members={"../../evil.sh": b"boom"}), "path traversal"
    if kind == "symlink":
        return _rewrite(scb, scb, symlinks=[("cert.pfx.lnk", "/etc/passwd")]), "symbolic link"
    if kind == "oversized":
        return _rewrite(scb, scb, members={"cert": b"A" * (2 * 1024 * 1024)}), "allowed"
    if kind == "not-a-zip":
        with open(scb, "wb") as f:
            f.write(b"this is not a zip")
        return scb, "not a zip"
    if kind == "nonexistent":
        os.remove(scb)
        return scb, "cannot open"
    raise AssertionError(kind)


BAD_BUNDLES = ["missing-config.json", "missing-ca.crt", "missing-cert", "missing-key",
               "bad-json", "no-host", "wrong-ca", "expired-cert", "mismatched-key",
               "path-traversal", "symlink", "oversized", "not-a-zip", "nonexistent"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("use_default_tempdir", [False, True], ids=["next-to-zip", "tempdir"])
@pytest.mark.parametrize("kind", BAD_BUNDLES)
def test_a_bad_bundle_is_a_clear_error_and_leaves_nothing(astra, scb, tmp_path, kind,
                                                          use_default_tempdir):
    before = astra.metadata.requests
    path, fragment = _bad_bundle(kind, astra, scb, tmp_path)
    with pytest.raises(CloudConfigError) as info:
        _cloud_cluster(path, use_default_tempdir=use_default_tempdir)
    text = str(info.value)
    assert path in text and fragment in text, text
    assert astra.metadata.requests == before        # refused before any network call
    if kind == "nonexistent":                       # keep the fixture's leftover check happy
        shutil.copy(astra.bundle_path, scb)
    # (the scb and systmp fixtures check that nothing was extracted or left behind)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root writes into read-only directories")
def test_a_read_only_bundle_directory_suggests_use_default_tempdir(astra, scb):
    directory = os.path.dirname(scb)
    os.chmod(directory, 0o500)
    try:
        with pytest.raises(CloudConfigError) as info:
            _cloud_cluster(scb)
        assert "use_default_tempdir" in str(info.value)
        with _cloud_cluster(scb, use_default_tempdir=True,
                            auth_provider=PlainTextAuthProvider(USER, PASSWORD)) as cluster:
            cluster.connect()
    finally:
        os.chmod(directory, 0o700)


# --- the metadata service ------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_connect_timeout_bounds_a_slow_metadata_service(astra, scb):
    astra.metadata.delay = 5        # the answer would come after 5 s (and then succeed)
    astra.metadata.mode = "slow"
    before = astra.metadata.requests
    with pytest.raises(CloudConfigError) as info:
        Cluster(cloud={"secure_connect_bundle": scb, "connect_timeout": 0.3},
                auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    text = str(info.value)
    assert astra.metadata.url in text and "no answer within 0.3 s" in text, text
    assert astra.metadata.requests - before == 2    # one attempt and one retry, both cut short


class _TricklingMetadataService(object):
    """An HTTPS metadata service (the fake's certificate, client certificate required) that
    sends a valid answer one byte every 50 ms: each read gets data long before any
    per-operation timeout, so only a deadline for the whole call stops it."""

    def __init__(self, astra):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(astra.metadata_cert.cert_path, astra.metadata_cert.key_path)
        self.ctx.load_verify_locations(cafile=astra.ca.cert_path)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        body = json.dumps(astra.metadata.document()).encode()
        self.answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
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
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                self.requests += 1
                for i in range(len(self.answer)):
                    tls.sendall(self.answer[i:i + 1])
                    time.sleep(0.05)
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.sock.close()


@pytest.mark.timeout(60)
def test_connect_timeout_bounds_a_metadata_service_that_trickles(astra, scb):
    service = _TricklingMetadataService(astra)
    try:
        _rewrite(scb, scb, config_changes={"port": service.port})
        with pytest.raises(CloudConfigError) as info:
            Cluster(cloud={"secure_connect_bundle": scb, "connect_timeout": 0.5})
        text = str(info.value)
        assert "https://127.0.0.1:%d/metadata" % service.port in text, text
        assert "no answer within 0.5 s" in text, text
        assert service.requests == 2
    finally:
        service.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode,fragment", [
    ("down", "after 2 attempts"),
    ("bad_json", "not valid JSON"),
    ("missing_fields", "contact_info"),
    ("http_error", "HTTP 500"),
])
def test_metadata_service_failures_are_clear_errors(astra, scb, mode, fragment):
    url = astra.metadata.url
    astra.metadata.mode = mode
    with pytest.raises(CloudConfigError) as info:
        _cloud_cluster(scb, auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    text = str(info.value)
    assert url in text and fragment in text, text


# --- the SNI proxy and the nodes' certificates ---------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode,error_class,fragment", [
    ("refuse", ConnectionException, "refused"),
    ("close", TLSError, "closed"),
])
def test_a_refusing_proxy_is_no_host_available_naming_every_node(astra, scb, reactor, mode,
                                                                  error_class, fragment):
    cluster = _cloud_cluster(scb, reactor, auth_provider=PlainTextAuthProvider(USER, PASSWORD),
                             connect_timeout=3)
    extracted = cluster._cloud_config.bundle.directory
    astra.proxy.mode = mode
    try:
        with pytest.raises(NoHostAvailable) as info:
            cluster.connect()
        errors = info.value.errors
        assert sorted(e.host_id for e in errors) == astra.host_ids
        for endpoint, error in errors.items():
            assert isinstance(error, error_class), error
            assert endpoint.host_id in str(error), error
            assert fragment in str(error) or _refused(error), repr(error)
    finally:
        cluster.shutdown()
    assert not os.path.exists(extracted)


def _refused(error):
    """The error says the connection was refused (every reactor words it the same way)."""
    return "connection refused" in str(error)


class _TlsNode(object):
    """A TLS server (CA-signed certificate naming only ``names``) that accepts and closes."""

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert_path, cert.key_path)
        self.handshakes = 0
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
            try:
                conn.settimeout(5)
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def misnamed_astra(tmp_path_factory):
    """A fake Astra whose only node presents a certificate (signed by the right CA) that names
    "node.elsewhere.example", not the proxy's host."""
    fake = FakeAstra(start_cluster=False, routes={}, host="127.0.0.1").start()
    node = None
    try:
        cert = certs.make_cert(fake.ca, ["node.elsewhere.example"],
                               str(tmp_path_factory.mktemp("misnamed")), "node")
        node = _TlsNode(cert)
        fake.routes["dddddddd-0000-4000-8000-000000000004"] = ("127.0.0.1", node.port)
        yield fake, node
    finally:
        if node is not None:
            node.close()
        fake.stop()


@pytest.mark.timeout(60)
def test_a_node_certificate_not_naming_the_proxy_is_refused(misnamed_astra, tmp_path, reactor):
    fake, node = misnamed_astra
    host_id = fake.host_ids[0]
    path = str(tmp_path / "scb.zip")
    shutil.copy(fake.bundle_path, path)
    cluster = _cloud_cluster(path, reactor, auth_provider=PlainTextAuthProvider("u", "p"))
    try:
        with pytest.raises(NoHostAvailable) as info:
            cluster.connect()
        (endpoint, error), = info.value.errors.items()
        assert endpoint.host_id == host_id
        assert isinstance(error, TLSError) and error.reason == "hostname", repr(error)
        assert "127.0.0.1" in str(error) and "node.elsewhere.example" in str(error)
        assert fake.proxy.routed.get(host_id)      # it got through the proxy to the node
    finally:
        cluster.shutdown()
    assert sorted(os.listdir(str(tmp_path))) == ["scb.zip"]


# --- the proxy name is resolved on every connect -------------------------------------------

@pytest.mark.timeout(60)
def test_each_connect_resolves_the_proxy_again_and_rotates(astra, scb, reactor):
    """The reactor opens the address ``SniEndpoint.resolve()`` gives, not ``endpoint.address``:
    the proxy's name here resolves only through our stub, to two addresses, of which only the
    first has the proxy listening (127.0.0.2 refuses)."""
    from cqlreactor.core.auth import PlainTextAuthenticator
    from cqlreactor.core.messages import OptionsMessage, SupportedMessage

    cfg = cloud_config_from({"secure_connect_bundle": scb})
    lookups = []

    def getaddrinfo(host, port, family=0, type=0, *rest):
        lookups.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in ("127.0.0.2", "127.0.0.1")]

    endpoint = SniEndpoint("proxy.astra.invalid", astra.proxy.port, astra.host_ids[0],
                           getaddrinfo=getaddrinfo)
    rx = get_reactor_class(reactor)()
    outcomes = []
    try:
        for _ in range(3):
            try:
                conn = rx.connect(endpoint, ssl_context=cfg.ssl_context, connect_timeout=5,
                                  authenticator=PlainTextAuthenticator(USER, PASSWORD))
            except ConnectionException as exc:
                outcomes.append(exc)
                continue
            done = rx.make_event()
            answer = []
            conn.send(OptionsMessage(), lambda r: (answer.append(r), done.set()))
            assert done.wait(10)
            outcomes.append(answer[0])
            conn.close()
    finally:
        rx.stop()
        cfg.cleanup()
    assert lookups == [("proxy.astra.invalid", astra.proxy.port)] * 3
    assert isinstance(outcomes[0], SupportedMessage)
    assert isinstance(outcomes[1], ConnectionException) and _refused(outcomes[1]), outcomes[1]
    assert endpoint.host_id in str(outcomes[1])
    assert isinstance(outcomes[2], SupportedMessage)
