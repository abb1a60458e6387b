"""Cluster and Session, the same scenarios on every reactor available here (issue 5).

Everything runs against the simulated cluster's real server process over real sockets: three
nodes on 127.0.0.1-3, an RF=3 keyspace.  Scenarios that stop nodes use their own cluster so the
others see a healthy one.
"""

import datetime
import decimal
import ipaddress
import threading
import time
import uuid

import pytest
from _cluster_helpers import live_objects, tls_simulated_cluster, wait_until

from cqlreactor import (BatchStatement, BatchType, Cluster, ConsistencyLevel, ExecutionProfile,
                        EXEC_PROFILE_DEFAULT, NoHostAvailable, OperationTimedOut,
                        PlainTextAuthProvider, SimpleStatement, Unavailable, dict_factory)
from cqlreactor.core.errors import AuthenticationFailed, InvalidRequest, SyntaxException
from cqlreactor.policies import ConstantReconnectionPolicy
from cqlreactor.testing.cluster import SimulatedCluster


@pytest.fixture(scope="module")
def sim():
    with SimulatedCluster(nodes=3) as sim:
        yield sim


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


def _make_keyspace(session, name):
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}" % name)


def test_discovers_every_host_and_negotiates_v5(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        hosts = cluster.metadata.all_hosts()
        assert sorted(h.address for h in hosts) == sorted(sim.contact_points)
        assert all(h.is_up and h.datacenter and h.tokens for h in hosts)
        assert cluster.protocol_version == 5
        row = session.execute("SELECT release_version FROM system.local").one()
        assert row.release_version.startswith("4.")
        assert len(session.get_pools()) == 3


def test_explicit_protocol_v4_is_respected(sim, reactor):
    with _cluster(sim, reactor, protocol_version=4) as cluster:
        session = cluster.connect()
        assert cluster.protocol_version == 4
        assert session.execute("SELECT key FROM system.local").one().key == "local"


def test_crud_with_every_type(sim, reactor):
    ks = "crud_%s" % reactor
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        _make_keyspace(session, ks)
        session.set_keyspace(ks)
        session.execute("""CREATE TABLE IF NOT EXISTS everything (
            k int PRIMARY KEY, a ascii, b bigint, bl blob, bo boolean, d date, de decimal,
            do double, f float, i inet, sm smallint, t text, ti time, ts timestamp,
            tu timeuuid, tiny tinyint, u uuid, vi varint, l list<int>, s set<text>,
            m map<text, int>, tup tuple<int, text>)""")
        insert = session.prepare(
            "INSERT INTO everything (k, a, b, bl, bo, d, de, do, f, i, sm, t, ti, ts, tu, tiny,"
            " u, vi, l, s, m, tup) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?, ?, ?, ?)")
        ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
        u = uuid.uuid4()
        tu = uuid.uuid1()
        values = (1, "ascii", 2 ** 40, b"\x00\x01", True, datetime.date(2020, 2, 29),
                  decimal.Decimal("3.14159"), 2.5, 1.5, ipaddress.ip_address("10.1.2.3"),
                  123, "text ☃", datetime.time(12, 34, 56, 789), ts, tu, -5, u, 10 ** 30,
                  [1, 2, 3], {"x", "y"}, {"one": 1}, (7, "seven"))
        session.execute(insert, values)
        row = session.execute("SELECT * FROM everything WHERE k = 1").one()
        assert row.a == "ascii" and row.b == 2 ** 40 and row.bl == b"\x00\x01"
        assert row.bo is True and row.de == decimal.Decimal("3.14159")
        assert str(row.d) == "2020-02-29"
        assert row.do == 2.5 and row.f == 1.5 and str(row.i) == "10.1.2.3"
        assert row.sm == 123 and row.t == "text ☃" and row.ts == ts
        assert row.tu == tu and row.tiny == -5 and row.u == u and row.vi == 10 ** 30
        assert list(row.l) == [1, 2, 3] and set(row.s) == {"x", "y"}
        assert dict(row.m) == {"one": 1} and tuple(row.tup) == (7, "seven")
        # update, simple statement with client-side parameters, delete
        session.execute("UPDATE everything SET t = %s WHERE k = %s", ("changed", 1))
        assert session.execute("SELECT t FROM everything WHERE k = 1").one().t == "changed"
        session.execute("DELETE FROM everything WHERE k = %s", (1,))
        assert session.execute("SELECT * FROM everything WHERE k = 1").one() is None


def test_ten_thousand_prepared_inserts_async_then_paging(sim, reactor):
    ks = "bulk_%s" % reactor
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        _make_keyspace(session, ks)
        session.execute("CREATE TABLE IF NOT EXISTS %s.t (p int, c int, v text, "
                        "PRIMARY KEY (p, c))" % ks)
        insert = session.prepare("INSERT INTO %s.t (p, c, v) VALUES (?, ?, ?)" % ks)
        futures = [session.execute_async(insert, (i % 10, i, "v%d" % i)) for i in range(10000)]
        for f in futures:
            f.result()
        # paging through 1,000 rows of one partition, 100 a page
        stmt = SimpleStatement("SELECT c FROM %s.t WHERE p = 3" % ks, fetch_size=100)
        result = session.execute(stmt)
        assert result.has_more_pages
        assert len(result.current_rows) == 100
        seen = [row.c for row in result]
        assert seen == sorted(i for i in range(10000) if i % 10 == 3)
        # manual paging with paging_state
        first = session.execute(stmt)
        second = session.execute(stmt, paging_state=first.paging_state)
        assert [r.c for r in second.current_rows] == seen[100:200]


def test_batches_and_dict_rows(sim, reactor):
    ks = "batch_%s" % reactor
    profile = ExecutionProfile(row_factory=dict_factory)
    with _cluster(sim, reactor, execution_profiles={"dicts": profile}) as cluster:
        session = cluster.connect()
        _make_keyspace(session, ks)
        session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k int PRIMARY KEY, v text)" % ks)
        insert = session.prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)" % ks)
        batch = BatchStatement(BatchType.UNLOGGED)
        for i in range(20):
            batch.add(insert, (i, "b%d" % i))
        batch.add("INSERT INTO %s.kv (k, v) VALUES (%%s, %%s)" % ks, (100, "simple"))
        session.execute(batch)
        rows = session.execute("SELECT * FROM %s.kv WHERE k IN (0, 19, 100)" % ks,
                               execution_profile="dicts").all()
        assert sorted((r["k"], r["v"]) for r in rows) == [(0, "b0"), (19, "b19"),
                                                          (100, "simple")]


def test_token_aware_routing_hits_a_replica(sim, reactor):
    ks = "routing_%s" % reactor
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
        session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v int)" % ks)
        cluster.control_connection.refresh_keyspaces()
        insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
        for i in range(3):
            sim.served(i, clear=True)
        for k in range(60):
            session.execute(insert, (k, k))
        served_by = {}   # k -> the node address that executed the insert of k
        for i, address in enumerate(sim.contact_points):
            for entry in sim.served(i):
                if entry.get("opcode") == "EXECUTE":
                    served_by[int(entry["values"][0], 16)] = address
        assert sorted(served_by) == list(range(60))
        # RF=1: every execute must reach the single owner of its key, by our token map...
        for k in range(60):
            replicas = cluster.metadata.get_replicas(ks, insert.bind((k, k)).routing_key)
            assert [h.address for h in replicas] == [served_by[k]]
        # ...and the keys spread over every node (the ring really was used)
        assert len(set(served_by.values())) == 3


def test_consistency_errors_are_surfaced(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        with pytest.raises(SyntaxException):
            session.execute("THIS IS NOT CQL")
        with pytest.raises(InvalidRequest):
            session.execute("SELECT * FROM no_such_keyspace.t")
        sim.prime("SELECT v FROM primed_unavailable",
                  error={"code": 0x1000, "message": "primed", "consistency": 4,
                         "required_replicas": 2, "alive_replicas": 1})
        try:
            with pytest.raises((Unavailable, NoHostAvailable)) as info:
                session.execute("SELECT v FROM primed_unavailable")
            exc = info.value
            if isinstance(exc, NoHostAvailable):   # tried the next host once, then gave up
                assert any(isinstance(e, Unavailable) for e in exc.errors.values())
        finally:
            sim.clear()


def test_request_timeout_is_operation_timed_out(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        sim.prime("SELECT v FROM slow_table", rows=[], delay=2.0)
        try:
            with pytest.raises(OperationTimedOut):
                session.execute("SELECT v FROM slow_table", timeout=0.3)
            # the connection stays usable
            assert session.execute("SELECT key FROM system.local").one().key == "local"
        finally:
            sim.clear()


def test_blocking_execute_from_many_threads(sim, reactor):
    if reactor in ("gevent", "eventlet"):
        pytest.skip("green reactors run in the hub of the thread that uses them; "
                    "see tests/reactors for their greenlet concurrency")
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        errors = []

        def worker():
            try:
                for _ in range(50):
                    assert session.execute("SELECT key FROM system.local").one().key == "local"
            except Exception as exc:   # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors


def test_node_stopped_mid_load_and_restarted(reactor):
    policy = ConstantReconnectionPolicy(0.2, max_attempts=None)
    with SimulatedCluster(nodes=3) as sim, \
            _cluster(sim, reactor, reconnection_policy=policy) as cluster:
        session = cluster.connect()
        _make_keyspace(session, "faults")
        session.execute("CREATE TABLE IF NOT EXISTS faults.t (k int PRIMARY KEY, v int)")
        insert = session.prepare("INSERT INTO faults.t (k, v) VALUES (?, ?)")
        insert.is_idempotent = True
        futures = [session.execute_async(insert, (i, i)) for i in range(300)]
        sim.stop_node(1)
        futures += [session.execute_async(insert, (i, i)) for i in range(300, 600)]
        for f in futures:
            f.result()   # none lost: ONE is satisfiable with two of three replicas
        assert session.execute("SELECT COUNT(*) FROM faults.t").one()[0] == 600
        stopped = [h for h in cluster.metadata.all_hosts() if h.address == sim.contact_points[1]]
        assert wait_until(cluster, lambda: not stopped[0].is_up, timeout=10)
        sim.start_node(1)   # it forgets prepared statements: UNPREPARED must be handled
        assert wait_until(cluster, lambda: stopped[0].is_up, timeout=15)
        pool = session.pools[stopped[0]]
        assert wait_until(cluster, lambda: pool.open_count > 0, timeout=10)
        for i in range(60):   # some land on the restarted node and get re-prepared there
            session.execute(insert, (i, i + 1))
        assert any(e.get("opcode") == "PREPARE" for e in sim.served(1))   # PREPARE again


def test_quorum_unavailable_with_two_nodes_down(reactor):
    with SimulatedCluster(nodes=3) as sim, _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        _make_keyspace(session, "cl")
        session.execute("CREATE TABLE IF NOT EXISTS cl.t (k int PRIMARY KEY, v int)")
        session.execute("INSERT INTO cl.t (k, v) VALUES (1, 1)")
        sim.stop_node(1)
        sim.stop_node(2)
        quorum = SimpleStatement("SELECT v FROM cl.t WHERE k = 1",
                                 consistency_level=ConsistencyLevel.QUORUM)
        with pytest.raises((Unavailable, NoHostAvailable)):
            session.execute(quorum)
        one = SimpleStatement("SELECT v FROM cl.t WHERE k = 1",
                              consistency_level=ConsistencyLevel.ONE)
        assert session.execute(one).one().v == 1


def test_wrong_password_is_authentication_failed(reactor):
    with SimulatedCluster(nodes=1, auth=("cassandra", "cassandra")) as sim:
        bad = _cluster(sim, reactor, auth_provider=PlainTextAuthProvider("cassandra", "nope"))
        with pytest.raises(NoHostAvailable) as info:
            bad.connect()
        bad.shutdown()
        assert any(isinstance(e, AuthenticationFailed) for e in info.value.errors.values())
        good = _cluster(sim, reactor,
                        auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
        with good:
            assert good.connect().execute("SELECT key FROM system.local").one().key == "local"


def test_default_profile_consistency_is_sent(sim, reactor):
    profile = ExecutionProfile(consistency_level=ConsistencyLevel.TWO)
    with _cluster(sim, reactor, execution_profiles={EXEC_PROFILE_DEFAULT: profile}) as cluster:
        session = cluster.connect()
        for i in range(3):
            sim.served(i, clear=True)
        session.execute("SELECT key FROM system.local")
        entries = [e for i in range(3) for e in sim.served(i)
                   if "system.local" in (e.get("query") or "")]
        assert entries and entries[-1]["consistency"] == "TWO"


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    with tls_simulated_cluster(tmp_path_factory.mktemp("tls"), nodes=3) as sim_and_ca:
        yield sim_and_ca


def test_tls_cluster_via_ssl_context(tls_sim, reactor):
    import ssl
    sim, ca = tls_sim
    context = ssl.create_default_context(cafile=ca.cert_path)
    with _cluster(sim, reactor, ssl_context=context) as cluster:
        session = cluster.connect()
        assert len(cluster.metadata.all_hosts()) == 3
        for _ in range(6):   # round robin reaches every node over TLS
            assert session.execute("SELECT key FROM system.local").one().key == "local"
    # a context that does not trust the cluster's CA is refused, naming TLS
    untrusting = ssl.create_default_context()
    refused = _cluster(sim, reactor, ssl_context=untrusting)
    try:
        with pytest.raises(NoHostAvailable) as info:
            refused.connect()
        assert all("certificate" in str(e).lower() or "tls" in str(e).lower()
                   for e in info.value.errors.values())
    finally:
        refused.shutdown()


def _sockets_and_threads():
    import gc
    import socket as socket_module
    gc.collect()
    sockets = [o for o in live_objects(socket_module.socket) if o.fileno() != -1]
    threads = [t for t in threading.enumerate() if t.name.startswith("cqlreactor")]
    return len(sockets), sorted(t.name for t in threads)


def test_shutdown_leaves_no_thread_timer_or_socket(sim, reactor):
    before_sockets, before_threads = _sockets_and_threads()
    cluster = _cluster(sim, reactor)
    session = cluster.connect()
    futures = [session.execute_async("SELECT key FROM system.local") for _ in range(50)]
    for f in futures:
        f.result()
    cluster.shutdown()
    deadline = time.monotonic() + 5
    while _sockets_and_threads() != (before_sockets, before_threads) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sockets_and_threads() == (before_sockets, before_threads)
    assert all(not s.pools for s in cluster.sessions) and not cluster._reconnectors
    if reactor == "gevent":
        import gc
        import gevent
        gc.collect()
        alive = [g for g in live_objects(gevent.Greenlet) if not g.dead]
        assert not alive


def test_await_execute_async_inside_asyncio(sim, reactor):
    import asyncio
    from cqlreactor.core.errors import IncompatibleEventLoops
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()

        async def main():
            results = await asyncio.gather(*[
                session.execute_async("SELECT key FROM system.local") for _ in range(20)])
            return [r.one().key for r in results]

        loop = asyncio.new_event_loop()
        try:
            if reactor in ("gevent", "eventlet"):
                # the green hub is this thread, which the unpatched asyncio loop blocks: refused
                # at once, naming the mix (it used to hang for ever)
                with pytest.raises(IncompatibleEventLoops, match=reactor):
                    loop.run_until_complete(main())
            else:
                assert loop.run_until_complete(main()) == ["local"] * 20
        finally:
            loop.close()


def test_control_connection_moves_to_another_host(reactor):
    policy = ConstantReconnectionPolicy(0.2, max_attempts=None)
    with SimulatedCluster(nodes=3) as sim, \
            _cluster(sim, reactor, reconnection_policy=policy) as cluster:
        session = cluster.connect()
        first = cluster.control_connection.connection.endpoint
        sim.stop_node(sim.contact_points.index(first.address))
        assert wait_until(cluster, lambda: cluster.control_connection.connection is not None and
                     cluster.control_connection.connection.endpoint != first, timeout=15)
        # the new control connection still follows the cluster: it sees the node come back
        sim.start_node(sim.contact_points.index(first.address))
        host = [h for h in cluster.metadata.all_hosts() if h.address == first.address][0]
        assert wait_until(cluster, lambda: host.is_up, timeout=15)
        assert session.execute("SELECT key FROM system.local").one().key == "local"


def test_falls_back_to_v4_when_the_cluster_lacks_v5(reactor):
    with SimulatedCluster(nodes=2, protocol_versions=(3, 4)) as sim, \
            _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        assert cluster.protocol_version == 4
        # every pooled connection uses the negotiated version, none retries v5 again
        for pool in session.get_pools():
            assert [c.protocol_version for c in pool.get_connections()] == [4]
        assert session.execute("SELECT key FROM system.local").one().key == "local"


def test_requests_spread_over_the_least_busy_connections(sim, reactor):
    with _cluster(sim, reactor, connections_per_host=3) as cluster:
        session = cluster.connect()
        assert all(pool.open_count == 3 for pool in session.get_pools())
        sim.prime("SELECT v FROM held_rows", rows=[], delay=0.5)
        try:
            futures = [session.execute_async("SELECT v FROM held_rows") for _ in range(60)]
            # while the answers are held, the 60 requests sit spread over all 9 connections
            in_flight = [c.in_flight for p in session.get_pools() for c in p.get_connections()]
            assert sum(in_flight) == 60 and max(in_flight) - min(in_flight) <= 1
            for f in futures:
                f.result()
        finally:
            sim.clear()


def test_a_failed_connection_is_replaced_while_the_host_stays_up(reactor):
    with SimulatedCluster(nodes=1) as sim, \
            _cluster(sim, reactor, connections_per_host=2) as cluster:
        session = cluster.connect()
        [pool] = session.get_pools()
        assert pool.open_count == 2
        before = set(id(c) for c in pool.get_connections())
        sim.close_after(0, 0)          # the connection of the next request is closed
        with pytest.raises(NoHostAvailable):   # that read has no other host to move to
            session.execute("SELECT key FROM system.local")
        for _ in range(20):            # the other connection serves meanwhile
            assert session.execute("SELECT key FROM system.local").one().key == "local"
        assert wait_until(cluster, lambda: pool.open_count == 2 and
                     set(id(c) for c in pool.get_connections()) != before, timeout=10)
        assert pool.host.is_up
