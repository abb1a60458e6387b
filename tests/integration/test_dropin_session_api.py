"""Session and Cluster calls as cassandra-driver users make them (issue 10): execute(host=...),
execute_as (proxy execution), default_serial_consistency_level, get_execution_profile,
add_execution_profile with pool warm-up, ResponseFuture callbacks, prepare(keyspace=...),
ssl_options' ssl_version and control_connection_timeout.  What reached the server is read back
from the simulated cluster's log of what it received; cassandra-driver is the oracle for names,
messages and orders."""

import inspect
import logging
import ssl

import pytest
from _cluster_helpers import tls_simulated_cluster, wait_until

import cassandra.cluster as theirs

from cqlreactor import (Cluster, ConsistencyLevel, EXEC_PROFILE_DEFAULT, ExecutionProfile,
                        NoHostAvailable, OperationTimedOut, SimpleStatement)
from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import InvalidRequest, UnsupportedOperation
from cqlreactor.metadata import Host
from cqlreactor.policies import RoundRobinPolicy, WhiteListRoundRobinPolicy
from cqlreactor.session import Session


def _cluster(sim, reactor=None, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("contact_points", sim.contact_points)
    return Cluster(port=sim.port, connection_class=reactor, **kwargs)


def _entries(sim, marker):
    return [(i, e) for i in range(len(sim.node_info())) for e in sim.served(i)
            if marker in (e.get("query") or "")]


def _parameters(fn):
    return [(p.name, p.default if p.default is not inspect.Parameter.empty else "-")
            for p in inspect.signature(fn).parameters.values()]


def test_signatures_match_cassandra_driver():
    for name in ("execute", "execute_async", "get_execution_profile", "prepare",
                 "execution_profile_clone_update"):
        ours = [n for n, _ in _parameters(getattr(Session, name))]
        assert ours == [n for n, _ in _parameters(getattr(theirs.Session, name))], name
    assert _parameters(Cluster.add_execution_profile) == \
        _parameters(theirs.Cluster.add_execution_profile)
    names = [n for n, _ in _parameters(theirs.ExecutionProfile.__init__)]
    ours = [n for n, _ in _parameters(ExecutionProfile.__init__)]
    # continuous_paging_options is DSE-only (out of scope)
    assert ours == [n for n in names if n != "continuous_paging_options"]


def test_execute_on_one_host(clean_sim):
    sim = clean_sim
    with _cluster(sim) as cluster:
        session = cluster.connect()
        target = cluster.metadata.get_host_by_address(sim.contact_points[1])
        for _ in range(5):
            future = session.execute_async("SELECT key FROM system.local -- on host",
                                           host=target)
            future.result()
            assert future.coordinator_host is target and future.attempted_hosts == [target]
        assert sorted(set(i for i, _ in _entries(sim, "-- on host"))) == [1]
        with pytest.raises(TypeError, match="Host"):
            session.execute("SELECT key FROM system.local", host=sim.contact_points[1])
        # a host the session has no pool for: NoHostAvailable naming it (as theirs)
        stranger = Host(Endpoint("127.0.0.66", sim.port))
        with pytest.raises(NoHostAvailable) as info:
            session.execute("SELECT key FROM system.local", host=stranger)
        assert list(info.value.errors) == [stranger]
        assert "no connection pool" in str(info.value.errors[stranger])


def test_execute_as_sends_proxy_execute(clean_sim):
    sim = clean_sim
    assert theirs._proxy_execute_key == "ProxyExecute"
    with _cluster(sim) as cluster:
        session = cluster.connect()
        mine = {"app": b"1"}
        session.execute("SELECT key FROM system.local -- as alice", custom_payload=mine,
                        execute_as="alice")
        assert mine == {"app": b"1"}                 # the caller's dict is not changed
        prepared = session.prepare("SELECT key FROM system.local WHERE key = ? -- as bob")
        session.execute(prepared, ["local"], execute_as="bob")
        payloads = dict((e["opcode"], e.get("custom_payload")) for _, e in _entries(sim, "-- as ")
                        if e["opcode"] in ("QUERY", "EXECUTE"))
        assert payloads == {"QUERY": {"app": b"1".hex(), "ProxyExecute": b"alice".hex()},
                            "EXECUTE": {"ProxyExecute": b"bob".hex()}}


def test_default_serial_consistency_level(clean_sim):
    sim = clean_sim
    with _cluster(sim) as cluster:
        session = cluster.connect()
        assert session.default_serial_consistency_level is None
        session.default_serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        assert cluster.profile_manager.default.serial_consistency_level == \
            ConsistencyLevel.LOCAL_SERIAL
        session.execute("SELECT key FROM system.local -- serial")
        statement = SimpleStatement("SELECT key FROM system.local -- serial own",
                                    serial_consistency_level=ConsistencyLevel.SERIAL)
        session.execute(statement)
        sent = dict((e["query"], e.get("serial_consistency")) for _, e in _entries(sim, "serial"))
        assert sent == {"SELECT key FROM system.local -- serial": "LOCAL_SERIAL",
                        "SELECT key FROM system.local -- serial own": "SERIAL"}
        with pytest.raises(ValueError, match="SERIAL"):
            session.default_serial_consistency_level = ConsistencyLevel.QUORUM


def test_get_execution_profile_and_clone(clean_sim):
    sim = clean_sim
    fast = ExecutionProfile(request_timeout=1.5)
    with _cluster(sim, execution_profiles={"fast": fast}) as cluster:
        session = cluster.connect()
        assert session.get_execution_profile("fast") is fast
        assert session.get_execution_profile(EXEC_PROFILE_DEFAULT) is \
            cluster.profile_manager.default
        with pytest.raises(ValueError, match="Invalid execution_profile.*'fast'"):
            session.get_execution_profile("slow")
        clone = session.execution_profile_clone_update("fast", request_timeout=0.5)
        assert clone is not fast and clone.request_timeout == 0.5 and fast.request_timeout == 1.5
        assert clone.load_balancing_policy is fast.load_balancing_policy
        assert session.execute("SELECT key FROM system.local",
                               execution_profile=clone).one().key == "local"


def test_add_execution_profile_opens_its_pools_before_returning(clean_sim, reactor):
    sim = clean_sim
    first = sim.contact_points[0]
    with _cluster(sim, reactor,
                  load_balancing_policy=WhiteListRoundRobinPolicy([first])) as cluster:
        session = cluster.connect()
        assert [h.endpoint.address for h in session.pools] == [first]
        cluster.add_execution_profile("all", ExecutionProfile(
            load_balancing_policy=RoundRobinPolicy()))
        # warm: every pool is open on return, no waiting
        assert sorted(h.endpoint.address for h, p in session.pools.items() if p.open_count) \
            == sorted(sim.contact_points)
        for _ in range(9):
            session.execute("SELECT key FROM system.local -- all", execution_profile="all")
        assert sorted(set(i for i, _ in _entries(sim, "-- all"))) == [0, 1, 2]
        with pytest.raises(ValueError, match="exists"):
            cluster.add_execution_profile("all", ExecutionProfile())
        with pytest.raises(TypeError, match="ExecutionProfile"):
            cluster.add_execution_profile("dict", {"request_timeout": 1})


def test_add_execution_profile_times_out_waiting_for_a_stalled_node(clean_sim):
    sim = clean_sim
    first = sim.contact_points[0]
    with _cluster(sim, load_balancing_policy=WhiteListRoundRobinPolicy([first])) as cluster:
        session = cluster.connect()
        sim.stall(2, 1.5)               # its handshakes get no answer meanwhile
        with pytest.raises(OperationTimedOut, match="pool_wait_timeout"):
            cluster.add_execution_profile("all", ExecutionProfile(
                load_balancing_policy=RoundRobinPolicy()), pool_wait_timeout=0.3)
        # the pool keeps opening in the background and is used once the node answers
        stalled = cluster.metadata.get_host_by_address(sim.contact_points[2])
        assert wait_until(cluster, lambda: stalled in session.pools
                          and session.pools[stalled].open_count, 15)


def test_callbacks_order_and_exceptions(clean_sim, reactor, caplog):
    sim = clean_sim
    slow, failing = "SELECT key FROM system.local -- cb slow", "SELECT v FROM cb_failing"
    sim.prime(slow, delay=0.3)
    sim.prime(failing, error={"code": "server_error", "message": "primed"})
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        calls = []
        future = session.execute_async(slow)
        future.add_callback(lambda rows, tag: calls.append(("ok", tag)), "A")
        future.add_errback(lambda exc: calls.append(("err", "X")))
        future.add_callbacks(lambda rows, tag: calls.append(("ok", tag)),
                             lambda exc: calls.append(("err", "Y")), callback_args=("B",))

        def broken(rows):
            calls.append(("ok", "broken"))
            raise RuntimeError("a broken callback")
        future.add_callback(broken)
        future.add_callback(lambda rows, tag=None: calls.append(("ok", tag)), tag="C")
        with caplog.at_level(logging.ERROR):
            future.result()
            assert wait_until(cluster, lambda: len(calls) == 4, 10)
        # registration order; the broken one is logged and the rest still run
        assert calls == [("ok", "A"), ("ok", "B"), ("ok", "broken"), ("ok", "C")]
        assert "callback failed" in caplog.text
        # already settled: runs at once, before returning, and its exception is the caller's
        now = []
        future.add_callback(lambda rows: now.append(list(rows)))
        assert now and now[0][0].key == "local"
        with pytest.raises(RuntimeError):
            future.add_callback(broken)
        future.add_errback(lambda exc: now.append("never"))
        assert now[1:] == []

        errors = []
        failed = session.execute_async(failing)
        failed.add_callbacks(lambda rows: errors.append("ok"),
                             lambda exc, tag: errors.append((tag, type(exc).__name__)),
                             errback_args=("X",))
        failed.add_errback(lambda exc: errors.append(("Y", type(exc).__name__)))
        with pytest.raises(Exception):
            failed.result()
        assert wait_until(cluster, lambda: len(errors) == 2, 10)
        assert [e[0] for e in errors] == ["X", "Y"]
        late = []
        failed.add_errback(late.append)
        assert len(late) == 1 and isinstance(late[0], Exception)


@pytest.mark.parametrize("version", [5, 4])
def test_prepare_with_keyspace(clean_sim, version):
    sim = clean_sim
    with _cluster(sim, protocol_version=version) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS dropin_prep WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE IF NOT EXISTS dropin_prep.t (k int PRIMARY KEY, v int)")
        session.execute("INSERT INTO dropin_prep.t (k, v) VALUES (1, 10)")
        query = "SELECT v FROM t WHERE k = ?"            # unqualified
        if version >= 5:
            # the keyspace travels with the PREPARE: the session has none set
            prepared = session.prepare(query, keyspace="dropin_prep")
            assert prepared.keyspace == "dropin_prep"
            assert session.execute(prepared, [1]).one().v == 10
            # without it the server cannot resolve the table
            with pytest.raises(InvalidRequest):
                session.prepare(query)
        else:
            with pytest.raises(UnsupportedOperation, match="protocol v5.*set_keyspace"):
                session.prepare(query, keyspace="dropin_prep")
            session.set_keyspace("dropin_prep")
            # naming the session's own keyspace needs nothing on the wire
            assert session.execute(session.prepare(query, keyspace="dropin_prep"),
                                   [1]).one().v == 10


def test_ssl_version_is_honoured(tls_sim):
    sim, ca = tls_sim
    if not hasattr(ssl, "TLSVersion"):
        pytest.skip("this Python cannot pin a TLS version (ssl.TLSVersion)")
    options = {"ca_certs": ca.cert_path, "ssl_version": ssl.PROTOCOL_TLSv1_2}
    with _cluster(sim, ssl_options=options) as cluster:
        session = cluster.connect()
        conn = next(iter(session.pools.values())).get_connections()[0]
        assert conn.tls.cipher()[1] == "TLSv1.2"
    with _cluster(sim, ssl_options={"ca_certs": ca.cert_path}) as cluster:
        conn = next(iter(cluster.connect().pools.values())).get_connections()[0]
        assert conn.tls.cipher()[1] == "TLSv1.3"        # what it negotiates unpinned
    with pytest.raises(ValueError, match="check_hostname_as"):
        Cluster(["127.0.0.1"], ssl_options={"server_hostname": "node"})
    with pytest.raises(ValueError, match="PROTOCOL_TLS_CLIENT"):
        Cluster(["127.0.0.1"], ssl_options={"ssl_version": ssl.PROTOCOL_TLS_SERVER})


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    with tls_simulated_cluster(tmp_path_factory.mktemp("tls")) as sim_and_ca:
        yield sim_and_ca


def test_control_connection_timeout(clean_sim):
    sim = clean_sim
    from cqlreactor.control import SELECT_LOCAL
    sim.prime(SELECT_LOCAL, delay=3.0)
    cluster = _cluster(sim, contact_points=[sim.contact_points[0]],
                       control_connection_timeout=0.3)
    try:
        with pytest.raises(NoHostAvailable) as info:
            cluster.connect()
    finally:
        cluster.shutdown()
    # (with the default 5 s the answer, 3 s late, would have arrived and connect() succeeded)
    assert any(isinstance(e, OperationTimedOut) for e in info.value.errors.values()), \
        info.value.errors
    assert cluster.control_connection_timeout == 0.3


def test_reprepare_after_a_restart_sends_the_keyspace_again(clean_sim):
    from cqlreactor.policies import ConstantReconnectionPolicy
    sim = clean_sim
    with _cluster(sim, protocol_version=5,
                  reconnection_policy=ConstantReconnectionPolicy(0.2, None)) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS dropin_reprep WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE IF NOT EXISTS dropin_reprep.t (k int PRIMARY KEY, v int)")
        session.execute("INSERT INTO dropin_reprep.t (k, v) VALUES (2, 20)")
        select = session.prepare("SELECT v FROM t WHERE k = ?", keyspace="dropin_reprep")
        control = cluster.control_connection.connection.endpoint.address
        node = [i for i, a in enumerate(sim.contact_points) if a != control][0]
        host = cluster.metadata.get_host_by_address(sim.contact_points[node])
        sim.stop_node(node)                 # a restarted node forgets its prepared statements
        assert wait_until(cluster, lambda: not host.is_up, 15)
        sim.start_node(node)
        assert wait_until(cluster, lambda: host.is_up and session.pools.get(host) is not None
                          and session.pools[host].open_count > 0, 20)
        sim.served(node, clear=True)
        # UNPREPARED there: the PREPARE sent again names the keyspace, or it would fail
        assert session.execute(select, [2], host=host).one().v == 20
        assert "PREPARE" in [e["opcode"] for e in sim.served(node)]
