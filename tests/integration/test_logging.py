"""Logging: the ``cqlreactor`` loggers are silent unless configured, tell the story at DEBUG
(connects, handshakes, hosts down and up, defunct connections with their cause, retries), and
never show a password or token: a full session with each kind of credential (plain auth, an
Astra bundle with a token, SASL) runs at DEBUG, and its log output, the reprs of its objects and
the text of its errors are searched for the secrets."""

import io
import logging
import subprocess
import sys
import textwrap
import uuid

import pytest
from _cluster_helpers import poll

from cqlreactor import Cluster, PlainTextAuthProvider, SimpleStatement
from cqlreactor.core.errors import AuthenticationFailed, InvalidRequest, NoHostAvailable


class _Capture(object):
    """Every record of every logger at DEBUG, formatted with its arguments and tracebacks."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.root = logging.getLogger()

    def __enter__(self):
        self.level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.level)

    @property
    def text(self):
        return self.stream.getvalue()


def _exercise(cluster, texts):
    """A session's life: connect, queries, an error, a prepared statement, reprs."""
    session = cluster.connect()
    session.execute("SELECT release_version FROM system.local")
    prepared = session.prepare("SELECT peer FROM system.peers WHERE peer = ?")
    texts.append(repr(prepared))
    future = session.execute_async(SimpleStatement("SELECT * FROM system.local"))
    future.result()
    try:
        session.execute("SELECT * FROM no_such_keyspace.t")
    except InvalidRequest as exc:
        texts.extend([str(exc), repr(exc)])
    texts.extend(repr(x) for x in (cluster, session, cluster.auth_provider, future,
                                   cluster.metadata.all_hosts()))
    for pool in session.get_pools():
        for conn in pool.get_connections():
            texts.append(repr(conn))
            authenticator = getattr(conn, "authenticator", None)
            texts.append(repr(authenticator))
    texts.append(repr(session.get_pool_state()))
    cluster.shutdown()


def _refused(make_cluster, texts):
    """The same credentials, one character off: the error must not echo the password."""
    with pytest.raises((AuthenticationFailed, NoHostAvailable)) as info:
        with make_cluster() as cluster:
            cluster.connect()
    exc = info.value
    texts.extend([str(exc), repr(exc), repr(getattr(exc, "errors", None))])
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        texts.extend([str(cause), repr(cause)])


def _assert_secret_free(secrets, log_text, texts):
    everything = log_text + "\n".join(texts)
    for secret in secrets:
        assert secret not in everything, "secret %r found" % (secret,)
        assert secret.encode("utf-8").hex() not in everything
    return everything


def test_plain_auth_session_at_debug_shows_no_password(cql_cluster_factory, cql_reactor):
    password = "pw-%s" % uuid.uuid4().hex
    wrong = "wrong-%s" % uuid.uuid4().hex
    sim = cql_cluster_factory(nodes=1, auth=("cassandra", password))
    texts = []
    with _Capture() as log:
        _exercise(Cluster(sim.contact_points, port=sim.port, connection_class=cql_reactor,
                          auth_provider=PlainTextAuthProvider("cassandra", password)), texts)
        _refused(lambda: Cluster(sim.contact_points, port=sim.port,
                                 connection_class=cql_reactor,
                                 auth_provider=PlainTextAuthProvider("cassandra", wrong)), texts)
    everything = _assert_secret_free([password, wrong], log.text, texts)
    assert "TCP connected" in everything and "ready: protocol v" in everything
    assert "PlainTextAuthProvider(username='cassandra')" in everything


def test_astra_token_session_at_debug_shows_no_token():
    # secrets handling is the session layer's: the default reactor only (plain auth runs on
    # every reactor above)
    cql_reactor = None
    pytest.importorskip("cryptography")
    from cqlreactor.testing.astra import FakeAstra
    token = "AstraCS:%s" % uuid.uuid4().hex
    texts = []
    with FakeAstra(nodes=1, username="token", password=token,
                   credentials_in_bundle=True) as astra:   # an old-style bundle with them
        with _Capture() as log:
            cloud = {"secure_connect_bundle": astra.bundle_path}
            # the bundle carries the credentials too: both ways of passing the token
            _exercise(Cluster(cloud=cloud, connection_class=cql_reactor), texts)
            cluster = Cluster(cloud=cloud, connection_class=cql_reactor,
                              auth_provider=PlainTextAuthProvider("token", token))
            texts.append(repr(cluster._cloud_config))
            _exercise(cluster, texts)
            _refused(lambda: Cluster(cloud=cloud, connection_class=cql_reactor,
                                     auth_provider=PlainTextAuthProvider("token", token + "x")),
                     texts)
    everything = _assert_secret_free([token, token[len("AstraCS:"):]], log.text, texts)
    assert "TLSv1" in everything


def test_sasl_session_at_debug_shows_no_password(cql_cluster_factory):
    cql_reactor = None          # the default reactor, as for the Astra token
    pytest.importorskip("puresasl")
    from cqlreactor import SaslAuthProvider
    password = "sasl-%s" % uuid.uuid4().hex
    sim = cql_cluster_factory(nodes=1, auth=("cassandra", password))
    texts = []

    def provider(pw):
        return SaslAuthProvider(service="cassandra", mechanism="PLAIN", username="cassandra",
                                password=pw)

    with _Capture() as log:
        auth = provider(password)
        texts.append(repr(auth))
        _exercise(Cluster(sim.contact_points, port=sim.port, connection_class=cql_reactor,
                          auth_provider=auth), texts)
        _refused(lambda: Cluster(sim.contact_points, port=sim.port,
                                 connection_class=cql_reactor,
                                 auth_provider=provider(password + "x")), texts)
    _assert_secret_free([password], log.text, texts)


def test_debug_tells_hosts_down_and_up_defunct_and_retries(cql_cluster_factory):
    sim = cql_cluster_factory(nodes=2)
    query = "SELECT v FROM ks.unavailable"
    sim.prime(query, error={"code": "unavailable", "message": "no", "consistency": "ONE",
                            "required": 2, "alive": 1}, node=0)
    with _Capture() as log:
        with Cluster(sim.contact_points, port=sim.port) as cluster:
            session = cluster.connect()
            for _ in range(4):      # the round robin reaches node 0 and is retried on node 1
                _try(session, query)
            sim.stop_node(1)
            assert poll(lambda: "is down" in log.text, timeout=20.0)
            sim.start_node(1)
            assert poll(lambda: "is up" in log.text, timeout=20.0)
    text = log.text
    assert "retry 1 (next host) after Unavailable from" in text
    assert "connection ended in the" in text and "ConnectionDefunct" in text
    assert "host %s" % sim.contact_points[1] in text


def _try(session, query):
    try:
        session.execute(query)
    except Exception:
        pass


def test_quiet_unless_logging_is_configured(cql_cluster):
    # a warning-worthy event (a contact point that does not resolve) with no logging set up
    script = textwrap.dedent("""
        from cqlreactor import Cluster
        with Cluster(["no-such-host.invalid", %r], port=%d) as cluster:
            cluster.connect().execute("SELECT * FROM system.local")
        import logging
        logging.basicConfig(level=logging.WARNING)    # configured: now the warning shows
        with Cluster(["no-such-host.invalid", %r], port=%d) as cluster:
            cluster.connect()
    """) % (cql_cluster.contact_points[0], cql_cluster.port, cql_cluster.contact_points[0],
            cql_cluster.port)
    proc = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no-such-host.invalid" in lines[0], proc.stderr
