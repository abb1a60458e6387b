"""cassandra-driver's own Cluster on cqlreactor's reactors (cqlreactor.compat.cassandra_driver).

Every reactor the compat matrix allows here runs the driver's session layer against the
simulated cluster: connect, prepared statements, paging, batches, schema metadata, cqlengine
models, a node stopped and restarted, a client timeout, dropped connections, idle heartbeats
detecting a stalled node, TLS, and Astra through the fake's secure connect bundle.  gevent and
eventlet run here without monkey-patching (their hub in a thread of its own); the patched runs
(and 200 greenlets sharing one connection) are child interpreters: patching cannot be undone.
"""

import os
import ssl

import pytest

pytest.importorskip("cassandra")

from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster, NoHostAvailable  # noqa: E402

import _compat_scenarios as scenarios  # noqa: E402
from _cluster_helpers import tls_simulated_cluster  # noqa: E402
from cqlreactor.compat import cassandra_driver as compat  # noqa: E402
from cqlreactor.core.errors import UnsupportedReactorError  # noqa: E402
from cqlreactor.reactors import matrix  # noqa: E402
from cqlreactor.testing import SimulatedCluster  # noqa: E402
from cqlreactor.testing.conformance import run_script  # noqa: E402
from cqlreactor.testing.pytest_plugin import reactor_params  # noqa: E402

pytestmark = pytest.mark.oracle

CLASSES = {"gevent": compat.GeventConnection, "eventlet": compat.EventletConnection,
           "libev": compat.LibevConnection, "asyncio": compat.AsyncioConnection,
           "asyncore": compat.AsyncoreConnection}
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def sim():
    with SimulatedCluster(nodes=3) as cluster:
        yield cluster


@pytest.fixture
def clean_sim(sim):
    sim.clear()
    yield sim
    sim.clear()
    for index, info in enumerate(sim.node_info()):
        if not info["up"]:
            sim.start_node(index)


def _reactors(default=None):
    """reactor_params(), the ones not in ``default`` marked slow (``tox -m slow`` runs every
    reactor; the default run stays within its time budget).  None: every reactor by default."""
    params = []
    for param in reactor_params():
        marks = list(param.marks)
        if default is not None and param.values[0] not in default:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(param.values[0], id=param.id, marks=marks))
    return params


def _connection_class(name):
    cls = CLASSES[name]
    cls.initialize_reactor()            # the gate (opt-in honoured), as Cluster.connect does
    return cls


@pytest.fixture(params=_reactors())
def connection_class(request):
    return _connection_class(request.param)


# the scenarios that wait on the cluster (stops, stalls, timeouts): by default on the gevent
# class (its hub in a thread of its own: the mechanism the others do not need), the rest slow
@pytest.fixture(params=_reactors(default=("gevent",)))
def waiting_connection_class(request):
    return _connection_class(request.param)


def _keyspace(cls, suffix=""):
    return "compat_%s%s_%d" % (cls.reactor_name, suffix, os.getpid())


def test_session_layer_runs_on_every_reactor(clean_sim, connection_class):
    sim = clean_sim
    cluster, session = scenarios.connect(sim, connection_class)
    try:
        conns = [c for p in session.get_pools() for c in scenarios.pool_connections(p)]
        assert conns and all(isinstance(c, connection_class) for c in conns)
        assert isinstance(cluster.control_connection._connection, connection_class)
        ks = _keyspace(connection_class)
        scenarios.crud_paging_batch_metadata(cluster, session, ks)
        scenarios.cqlengine_models(session, ks)     # last: unregistering shuts the cluster down
    finally:
        cluster.shutdown()


def test_timeout_node_stop_restart_and_dropped_connections(clean_sim, waiting_connection_class):
    sim = clean_sim
    cluster, session = scenarios.connect(sim, waiting_connection_class)
    try:
        scenarios.timeout_then_recovery(sim, session)
        scenarios.node_stop_restart(sim, cluster, session)
        scenarios.dropped_connections(sim, cluster, session)
    finally:
        cluster.shutdown()


def test_idle_heartbeat_defuncts_the_connections_of_a_stalled_node(clean_sim,
                                                                   waiting_connection_class):
    sim = clean_sim
    connection_class = waiting_connection_class
    cluster, session = scenarios.connect(sim, connection_class, idle_heartbeat_interval=1,
                                         idle_heartbeat_timeout=1)
    try:
        control = cluster.control_connection._connection.endpoint.address
        index = [i for i, a in enumerate(sim.contact_points) if a != control][-1]
        address = sim.contact_points[index]
        host = [h for h in cluster.metadata.all_hosts() if h.endpoint.address == address][0]
        scenarios.wait_until(lambda: any(p.host == host and p.open_count
                                         for p in session.get_pools()), what="its pool")
        sim.stall(index, 8)
        scenarios.wait_until(lambda: not host.is_up, what="the heartbeat marking %s down"
                             % address)
        assert all(h.is_up for h in cluster.metadata.all_hosts() if h is not host)
        assert session.execute("SELECT release_version FROM system.local").one()
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    pytest.importorskip("cqlreactor.testing.astra.certs")
    with tls_simulated_cluster(tmp_path_factory.mktemp("compat-tls"), nodes=2) as (sim, ca):
        sim.ca_path = ca.cert_path
        yield sim


def test_tls_with_an_ssl_context_checking_host_names(tls_sim, connection_class):
    context = ssl.create_default_context(cafile=tls_sim.ca_path)   # check_hostname on
    cluster, session = scenarios.connect(tls_sim, connection_class, ssl_context=context)
    try:
        assert session.execute("SELECT release_version FROM system.local").one()
        conn = cluster.control_connection._connection
        assert conn.tls is not None and conn.tls.handshake_complete
        assert conn.tls.server_hostname == conn.endpoint.address
    finally:
        cluster.shutdown()


@pytest.mark.parametrize("how", ["context", "ssl_options"])
def test_a_certificate_not_naming_the_node_is_refused(tmp_path, how):
    """OpenSSL's own check (a context with check_hostname), and ssl_options' check_hostname
    with a context that does not check (cassandra-driver 3.25's post-handshake check)."""
    certs = pytest.importorskip("cqlreactor.testing.astra.certs")
    ca = certs.make_ca(str(tmp_path))
    certs.make_cert(ca, ["node.example"], str(tmp_path), "node", usage="server")
    context = ssl.create_default_context(cafile=ca.cert_path)
    options = {}
    if how == "ssl_options":
        context.check_hostname = False
        options = {"ssl_options": {"check_hostname": True}}
    with SimulatedCluster(nodes=1, tls_dir=str(tmp_path)) as sim:
        cluster = Cluster(sim.contact_points, port=sim.port, ssl_context=context,
                          connection_class=compat.AsyncioConnection, connect_timeout=5,
                          **options)
        try:
            with pytest.raises(NoHostAvailable) as info:
                cluster.connect()
            assert "hostname" in str(info.value)
        finally:
            cluster.shutdown()
        context.check_hostname = False    # the same certificate, no name check: accepted
        cluster = Cluster(sim.contact_points, port=sim.port, ssl_context=context,
                          connection_class=compat.AsyncioConnection, connect_timeout=5)
        try:
            assert cluster.connect().execute("SELECT key FROM system.local").one()
        finally:
            cluster.shutdown()


@pytest.fixture(scope="module")
def fake_astra():
    astra = pytest.importorskip("cqlreactor.testing.astra")
    with astra.FakeAstra(nodes=3, username="astra", password="pw") as fake:
        yield fake


def test_astra_bundle_through_the_fake(fake_astra, connection_class):
    fake = fake_astra
    cluster = Cluster(cloud={"secure_connect_bundle": fake.bundle_path},
                      auth_provider=PlainTextAuthProvider("astra", "pw"),
                      connection_class=connection_class, connect_timeout=10)
    try:
        session = cluster.connect()
        hosts = cluster.metadata.all_hosts()
        assert sorted(str(h.host_id) for h in hosts) == sorted(fake.host_ids)
        conn = cluster.control_connection._connection
        # SNI: the host id; the certificate checked against the proxy's name
        assert conn.tls.server_hostname == conn.endpoint.ssl_options["server_hostname"]
        assert conn.tls.check_hostname_as == conn.endpoint.address
        ks = _keyspace(connection_class, "_astra")
        fake.create_keyspace(ks)        # Astra refuses CREATE KEYSPACE over CQL
        session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
        insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
        for k in range(5):
            session.execute(insert, (k, "v%d" % k))
        assert sorted(r.k for r in session.execute("SELECT k FROM %s.t" % ks)) == \
            list(range(5))
        scenarios.wait_until(lambda: all(fake.proxy.routed.get(h) for h in fake.host_ids),
                             what="pools to every node through the proxy")
    finally:
        cluster.shutdown()


def test_refused_options_say_why():
    sim_endpoint = ("127.0.0.1", 1)
    with pytest.raises(ValueError, match="unknown ssl_options: wat"):
        compat.AsyncioConnection(sim_endpoint[0], port=sim_endpoint[1],
                                 ssl_options={"wat": 1, "ca_certs": None})
    with pytest.raises(ValueError, match="server_side"):
        compat.AsyncioConnection(sim_endpoint[0], port=sim_endpoint[1],
                                 ssl_context=ssl.create_default_context(),
                                 ssl_options={"server_side": True})
    with pytest.raises(TypeError, match="ssl.SSLContext"):
        compat.AsyncioConnection(sim_endpoint[0], port=sim_endpoint[1], ssl_context=object())
    with pytest.raises(ValueError, match="sockopts"):
        compat.AsyncioConnection(sim_endpoint[0], port=sim_endpoint[1], sockopts=[(1, 2)])


def test_a_refused_connect_names_the_address():
    with SimulatedCluster(nodes=1) as sim:
        port = sim.port
    with pytest.raises(OSError, match="refused by 127.0.0.1:%d" % port):
        compat.AsyncioConnection.factory(_endpoint("127.0.0.1", port), 5)


def _endpoint(address, port):
    from cassandra.connection import DefaultEndPoint
    return DefaultEndPoint(address, port)


def test_sockopts_are_applied(clean_sim):
    import socket
    cluster, session = scenarios.connect(
        clean_sim, compat.AsyncioConnection,
        sockopts=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
    try:
        assert session.execute("SELECT release_version FROM system.local").one()
    finally:
        cluster.shutdown()
    # applied, not ignored: an option the kernel refuses fails the connection
    cluster = Cluster(clean_sim.contact_points[:1], port=clean_sim.port, connect_timeout=5,
                      connection_class=compat.AsyncioConnection,
                      sockopts=[(socket.SOL_SOCKET, 123456, 1)])
    try:
        with pytest.raises(NoHostAvailable, match="Errno|Protocol not available|option"):
            cluster.connect()
    finally:
        cluster.shutdown()


@pytest.mark.skipif(matrix.gate_problem("eventlet") is None,
                    reason="eventlet is not gated on this interpreter")
def test_the_matrix_gates_eventlet_as_our_own_reactor(monkeypatch):
    pytest.importorskip("eventlet")
    monkeypatch.delenv(matrix.ALLOW_ENV, raising=False)

    class Gated(compat.EventletConnection):
        pass
    compat._shared.pop("eventlet", None)
    with pytest.raises(UnsupportedReactorError, match="eventlet"):
        Gated.initialize_reactor()


def test_unsupported_driver_version_is_refused():
    name = compat.driver_identity()[0]
    script = ("import cassandra; cassandra.__version__ = '3.24.0'\n"
              "try:\n"
              "    import cqlreactor.compat.cassandra_driver\n"
              "except ImportError as exc:\n"
              "    assert '%s 3.24.0 is installed' in str(exc), exc\n"
              "    assert 'cassandra-driver 3.25 to 3.30' in str(exc), exc\n"
              "    assert 'scylla-driver 3.26 to 3.29' in str(exc), exc\n"
              "    print('ok')\n" % name)
    run_script(script, timeout=60)


# --- monkey-patched interpreters ---------------------------------------------------------------

PATCHED = r"""
import sys, warnings
warnings.simplefilter("ignore")
green, here, contact, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if green == "gevent":
    from gevent import monkey
    monkey.patch_all()
    import gevent
    spawn, joinall = gevent.spawn, lambda gs: gevent.joinall(gs, raise_error=True)
else:
    import eventlet
    eventlet.monkey_patch()
    spawn, joinall = eventlet.spawn, lambda gs: [g.wait() for g in gs]
sys.path.insert(0, here)
import time
from cassandra.cluster import Cluster
from cassandra.policies import WhiteListRoundRobinPolicy
from cqlreactor.compat import cassandra_driver as compat
import _compat_scenarios as scenarios

cls = compat.GeventConnection if green == "gevent" else compat.EventletConnection
cluster = Cluster([contact], port=port, connection_class=cls, connect_timeout=10,
                  load_balancing_policy=WhiteListRoundRobinPolicy([contact]))
session = cluster.connect()
ks = "patched_%s" % green
session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                "'SimpleStrategy', 'replication_factor': 1}" % ks)
session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v text)" % ks)
insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
pool, = session.get_pools()
conn, = scenarios.pool_connections(pool)
seen = []

def work(k):
    session.execute(insert, (k, "v%d" % k))
    seen.append(conn.in_flight)
    return session.execute("SELECT v FROM %s.t WHERE k = %d" % (ks, k)).one().v

greenlets = [spawn(work, k) for k in range(200)]
joinall(greenlets)
values = [g.value if green == "gevent" else None for g in greenlets]
if green == "gevent":
    assert values == ["v%d" % k for k in range(200)], values[:5]
assert sorted(r.k for r in session.execute("SELECT k FROM %s.t" % ks)) == list(range(200))
assert scenarios.pool_connections(pool) == [conn]   # one connection carried all 200
assert max(seen) > 1, seen                  # and they overlapped on it
cluster.shutdown()
print("ok")
"""


def _green_cases():
    cases = []
    for param in reactor_params():
        if param.values[0] in ("gevent", "eventlet"):
            cases.append(param)
    return cases


@pytest.mark.timeout(150)
@pytest.mark.parametrize("green", _green_cases())
def test_200_greenlets_share_one_connection_under_monkey_patching(green):
    pytest.importorskip(green)
    with SimulatedCluster(nodes=1) as sim:
        run_script(PATCHED, (green, HERE, sim.contact_points[0], sim.port), timeout=120)


PATCHED_WRONG = r"""
import sys
from gevent import monkey
monkey.patch_all()
from cqlreactor.compat import cassandra_driver as compat
from cqlreactor.core.errors import UnsupportedReactorError
try:
    compat.AsyncioConnection.initialize_reactor()
except UnsupportedReactorError as exc:
    assert "GeventConnection" in str(exc), exc
    print("ok")
"""


def test_a_thread_reactor_is_refused_under_gevent_patching():
    pytest.importorskip("gevent")
    run_script(PATCHED_WRONG, timeout=60)
