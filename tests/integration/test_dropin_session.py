"""Arguments cassandra-driver users pass to Cluster, Session and statements: each one does what
it does there (issue 10), checked against the simulated cluster's record of what it received."""

import ssl
import time

import pytest
from _cluster_helpers import tls_simulated_cluster

from cqlreactor import Cluster, NoHostAvailable


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    with tls_simulated_cluster(tmp_path_factory.mktemp("tls")) as sim_and_ca:
        yield sim_and_ca


def test_ssl_options_builds_the_tls_context(tls_sim, cql_reactor):
    sim, ca = tls_sim
    options = {"ca_certs": ca.cert_path, "cert_reqs": ssl.CERT_REQUIRED}
    with _cluster(sim, cql_reactor, ssl_options=options) as cluster:
        assert cluster.ssl_options == options
        assert isinstance(cluster.ssl_context, ssl.SSLContext)
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"
    # without the CA the server's certificate is refused, over TLS (not plain CQL)
    refused = _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_REQUIRED})
    try:
        with pytest.raises(NoHostAvailable) as info:
            refused.connect()
        assert all("certificate" in str(e).lower() for e in info.value.errors.values())
    finally:
        refused.shutdown()
    # cassandra-driver's check_hostname=False with CERT_NONE connects without verifying
    with _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_NONE,
                                                 "check_hostname": False}) as cluster:
        assert cluster.connect().execute("SELECT key FROM system.local").one().key == "local"


def test_unknown_ssl_option_is_refused():
    with pytest.raises(ValueError, match="ssl_version_x"):
        Cluster(["127.0.0.1"], ssl_options={"ssl_version_x": 1})


def _served(sim, predicate):
    return [e for i in range(len(sim.node_info())) for e in sim.served(i) if predicate(e)]


def _clear_served(sim):
    for i in range(len(sim.node_info())):
        sim.served(i, clear=True)


def test_trace_and_custom_payload_reach_the_server(cql_cluster, cql_reactor):
    from cqlreactor import BatchStatement, SimpleStatement
    sim = cql_cluster
    with _cluster(sim, cql_reactor) as cluster:
        session = cluster.connect()
        _clear_served(sim)
        session.execute("SELECT key FROM system.local", trace=True)
        statement = SimpleStatement("SELECT key FROM system.local WHERE key = %s",
                                    custom_payload={"a": b"1", "b": b"2"})
        session.execute(statement, ["local"], custom_payload={"b": b"3"})
        prepared = session.prepare("SELECT key FROM system.local WHERE key = ?",
                                   custom_payload={"p": b"ok"})
        session.execute(prepared, ["local"], trace=True, custom_payload={"e": b"x"})
        batch = BatchStatement(custom_payload={"batch": b"1"})
        batch.add("SELECT key FROM system.local")
        try:
            session.execute(batch, trace=True)
        except Exception:
            pass        # a SELECT in a batch is refused; what was sent is what matters
        entries = _served(sim, lambda e: "system.local" in str(e.get("query")
                                                                or e.get("queries")))
        by_opcode = {}
        for entry in entries:
            by_opcode.setdefault(entry["opcode"], []).append(entry)
        queries = dict((e["query"], e) for e in by_opcode["QUERY"])
        traced = queries["SELECT key FROM system.local"]
        with_payload = queries["SELECT key FROM system.local WHERE key = 'local'"]
        assert traced.get("tracing") and "custom_payload" not in traced
        # the statement's payload updated with execute's, as cassandra-driver does
        assert with_payload["custom_payload"] == {"a": b"1".hex(), "b": b"3".hex()}
        assert not with_payload.get("tracing")
        assert all(e["custom_payload"] == {"p": b"ok".hex()} for e in by_opcode["PREPARE"])
        execute = by_opcode["EXECUTE"][-1]
        assert execute["tracing"] and execute["custom_payload"] == {"e": b"x".hex()}
        batch_entry = by_opcode["BATCH"][-1]
        assert batch_entry["tracing"] and batch_entry["custom_payload"] == {"batch": b"1".hex()}
        # the hot path's cached requests carry neither afterwards
        _clear_served(sim)
        session.execute("SELECT key FROM system.local")
        plain = _served(sim, lambda e: e.get("query") == "SELECT key FROM system.local")
        assert plain and not plain[-1].get("tracing") and "custom_payload" not in plain[-1]


def test_custom_payload_is_refused_below_v4(cql_cluster, cql_reactor):
    from cqlreactor.core.errors import UnsupportedOperation
    with _cluster(cql_cluster, cql_reactor, protocol_version=3) as cluster:
        session = cluster.connect()
        with pytest.raises(UnsupportedOperation, match="v4"):
            session.execute("SELECT key FROM system.local", custom_payload={"a": b"1"})


def _keyspace(session, name):
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}" % name)
    session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k int PRIMARY KEY, v int)" % name)


def test_client_timestamps_order_rapid_writes(cql_cluster, cql_reactor):
    from cqlreactor import BatchStatement, SimpleStatement
    sim = cql_cluster
    with _cluster(sim, cql_reactor) as cluster:
        session = cluster.connect()
        _keyspace(session, "dropin_ts")
        insert = session.prepare("INSERT INTO dropin_ts.kv (k, v) VALUES (?, ?)")
        _clear_served(sim)
        for i in range(30):       # round robin: every coordinator in turn
            session.execute(insert, [1, i])
            session.execute("INSERT INTO dropin_ts.kv (k, v) VALUES (2, %d)" % i)
            session.execute("INSERT INTO dropin_ts.kv (k, v) VALUES (3, %s)", [i])
        for k in (1, 2, 3):
            assert session.execute("SELECT v FROM dropin_ts.kv WHERE k = %s", [k]).one().v == 29
        writes = [e for e in _served(sim, lambda e: "INSERT" in (e.get("query") or ""))]
        assert len(writes) == 90 and all(e.get("timestamp") for e in writes)
        stamps = sorted(e["timestamp"] for e in writes)
        assert len(set(stamps)) == 90       # one generator: never the same twice
        assert abs(stamps[-1] / 1e6 - time.time()) < 60      # microseconds since the epoch

        # a statement's own timestamp is sent instead; an older one loses
        old = SimpleStatement("INSERT INTO dropin_ts.kv (k, v) VALUES (1, -1)", timestamp=1000)
        session.execute(old)
        assert session.execute("SELECT v FROM dropin_ts.kv WHERE k = 1").one().v == 29
        assert any(e.get("timestamp") == 1000 for e in _served(
            sim, lambda e: e.get("query") == old.query_string))
        bound = insert.bind([1, -2])
        bound.timestamp = 2000
        session.execute(bound)
        assert session.execute("SELECT v FROM dropin_ts.kv WHERE k = 1").one().v == 29
        batch = BatchStatement(timestamp=3000)
        batch.add(insert, [1, -3])
        session.execute(batch)
        assert session.execute("SELECT v FROM dropin_ts.kv WHERE k = 1").one().v == 29
        assert [e["timestamp"] for e in _served(sim, lambda e: e["opcode"] == "BATCH")] == [3000]

        # USING TIMESTAMP in the query wins over the default timestamp
        far = int(time.time() * 1e6) + 3600 * 10 ** 6
        session.execute("INSERT INTO dropin_ts.kv (k, v) VALUES (4, 1) USING TIMESTAMP %d" % far)
        session.execute("INSERT INTO dropin_ts.kv (k, v) VALUES (4, 2)")
        assert session.execute("SELECT v FROM dropin_ts.kv WHERE k = 4").one().v == 1

        # without client timestamps nothing is sent (the server stamps the write)
        session.use_client_timestamp = False
        _clear_served(sim)
        session.execute("INSERT INTO dropin_ts.kv (k, v) VALUES (5, 1)")
        session.execute(insert, [5, 2])
        sent = _served(sim, lambda e: "INSERT" in (e.get("query") or ""))
        assert len(sent) == 2 and not any("timestamp" in e for e in sent)


def test_cluster_timestamp_generator_is_called_per_request(cql_cluster, cql_reactor):
    stamps = iter(range(10 ** 6, 10 ** 7))
    with _cluster(cql_cluster, cql_reactor, timestamp_generator=lambda: next(stamps)) as cluster:
        session = cluster.connect()
        _clear_served(cql_cluster)
        for _ in range(3):
            session.execute("SELECT key FROM system.local")
        sent = _served(cql_cluster, lambda e: e.get("query") == "SELECT key FROM system.local")
        assert sorted(e["timestamp"] for e in sent) == [10 ** 6 + i for i in range(3)]


def test_statement_keyspace_is_sent_on_v5_only(cql_cluster, cql_reactor):
    from cqlreactor import BatchStatement, SimpleStatement
    sim = cql_cluster
    with _cluster(sim, cql_reactor) as cluster:
        session = cluster.connect()
        assert cluster.protocol_version == 5
        _keyspace(session, "dropin_ks")
        session.execute("INSERT INTO dropin_ks.kv (k, v) VALUES (1, 10)")
        _clear_served(sim)
        # no session keyspace: the statement's runs the unqualified table
        statement = SimpleStatement("SELECT v FROM kv WHERE k = 1", keyspace="dropin_ks")
        assert session.execute(statement).one().v == 10
        with_params = SimpleStatement("SELECT v FROM kv WHERE k = %s", keyspace="dropin_ks")
        assert session.execute(with_params, [1]).one().v == 10
        insert = session.prepare("INSERT INTO dropin_ks.kv (k, v) VALUES (?, ?)")
        batch = BatchStatement()
        batch.add(insert, [2, 20])
        batch.add("INSERT INTO kv (k, v) VALUES (3, 30)")
        session.execute(batch)
        assert session.execute("SELECT v FROM dropin_ks.kv WHERE k = 3").one().v == 30
        sent = _served(sim, lambda e: e["opcode"] in ("QUERY", "BATCH")
                       and "kv" in str(e.get("query") or e.get("queries")))
        assert [e.get("keyspace") for e in sent if "dropin_ks.kv" not in str(
            e.get("query") or "")] == ["dropin_ks"] * 3
        # EXECUTE names no keyspace: the prepared statement's is fixed (as cassandra-driver)
        session.execute(insert, [4, 40])
        assert not any("keyspace" in e for e in _served(sim, lambda e: e["opcode"] == "EXECUTE"))
    with _cluster(sim, cql_reactor, protocol_version=4) as cluster:
        session = cluster.connect()
        _clear_served(sim)
        statement = SimpleStatement("SELECT v FROM dropin_ks.kv WHERE k = 1",
                                    keyspace="dropin_ks")
        assert session.execute(statement).one().v == 10
        sent = _served(sim, lambda e: e.get("query") == statement.query_string)
        assert sent and not any("keyspace" in e for e in sent)


def test_lwt_rows_have_applied(cql_cluster, cql_reactor):
    with _cluster(cql_cluster, cql_reactor) as cluster:
        session = cluster.connect()
        _keyspace(session, "dropin_lwt")
        session.execute("DELETE FROM dropin_lwt.kv WHERE k = 1")
        first = session.execute("INSERT INTO dropin_lwt.kv (k, v) VALUES (1, 1) IF NOT EXISTS")
        assert first.one().applied is True
        again = session.execute("INSERT INTO dropin_lwt.kv (k, v) VALUES (1, 2) IF NOT EXISTS")
        row = again.one()
        assert row.applied is False and row.v == 1


def test_default_consistency_can_be_read(cql_cluster, cql_reactor):
    from cqlreactor import ConsistencyLevel, ExecutionProfile, EXEC_PROFILE_DEFAULT
    from cqlreactor.cluster import ProfileManager
    mine = ExecutionProfile()
    assert mine.consistency_level == ConsistencyLevel.LOCAL_ONE     # as cassandra-driver's
    with _cluster(cql_cluster, cql_reactor, execution_profiles={"mine": mine}) as cluster:
        assert isinstance(cluster.profile_manager, ProfileManager)
        default = cluster.profile_manager.default
        assert default is cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
        assert cluster.profile_manager.profiles["mine"] is mine
        session = cluster.connect()
        assert session.default_consistency_level == ConsistencyLevel.LOCAL_ONE
        assert default.consistency_level == ConsistencyLevel.LOCAL_ONE
        _clear_served(cql_cluster)
        session.execute("SELECT key FROM system.local")
        session.default_consistency_level = ConsistencyLevel.TWO
        assert default.consistency_level == ConsistencyLevel.TWO
        session.execute("SELECT key FROM system.local")
        sent = _served(cql_cluster, lambda e: e.get("query") == "SELECT key FROM system.local")
        assert sorted(e["consistency"] for e in sent) == ["LOCAL_ONE", "TWO"]


def test_default_consistency_on_astra_is_local_quorum():
    pytest.importorskip("cryptography")
    from cqlreactor import ConsistencyLevel, ExecutionProfile
    from cqlreactor.testing.astra import FakeAstra
    with FakeAstra(nodes=1) as astra:
        chosen = ExecutionProfile(consistency_level=ConsistencyLevel.ONE)
        left = ExecutionProfile()
        with Cluster(cloud={"secure_connect_bundle": astra.bundle_path},
                     execution_profiles={"chosen": chosen, "left": left}) as cluster:
            manager = cluster.profile_manager
            assert manager.default.consistency_level == ConsistencyLevel.LOCAL_QUORUM
            assert left.consistency_level == ConsistencyLevel.LOCAL_QUORUM
            assert chosen.consistency_level == ConsistencyLevel.ONE


def test_unknown_local_dc_names_the_data_centers(cql_cluster, cql_reactor):
    from cqlreactor import DCAwareRoundRobinPolicy, TokenAwarePolicy
    dcs = sorted(set(info["datacenter"] for info in cql_cluster.node_info()))
    for policy in (DCAwareRoundRobinPolicy(local_dc="nowhere"),
                   TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc="nowhere"))):
        cluster = _cluster(cql_cluster, cql_reactor, load_balancing_policy=policy)
        try:
            with pytest.raises(NoHostAvailable) as info:
                cluster.connect()
            message = str(info.value)
            assert "local_dc='nowhere'" in message
            assert all(repr(dc) in message for dc in dcs), message
        finally:
            cluster.shutdown()


def test_sasl_auth_provider_with_pure_sasl(cql_cluster_factory, cql_reactor):
    pytest.importorskip("puresasl")
    from cqlreactor import SaslAuthProvider
    sim = cql_cluster_factory(nodes=1, auth=("alice", "s3cret"))
    provider = SaslAuthProvider(service="cassandra", mechanism="PLAIN", username="alice",
                                password="s3cret")
    with _cluster(sim, cql_reactor, auth_provider=provider) as cluster:
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"
    wrong = SaslAuthProvider(service="cassandra", mechanism="PLAIN", username="alice",
                             password="nope")
    refused = _cluster(sim, cql_reactor, auth_provider=wrong)
    try:
        with pytest.raises(NoHostAvailable):
            refused.connect()
    finally:
        refused.shutdown()


def test_default_retry_policy_decides(cql_cluster, cql_reactor):
    from cqlreactor import Unavailable
    from cqlreactor.policies import RetryPolicy

    class Counting(RetryPolicy):
        calls = []

        def on_unavailable(self, query, consistency, required, alive, retry_num):
            self.calls.append((required, alive, retry_num))
            return self.RETHROW, None

    query = "SELECT v FROM dropin_retry.t"
    cql_cluster.prime(query, error={"code": "unavailable", "message": "no", "consistency": "ONE",
                                    "required": 2, "alive": 1})
    with _cluster(cql_cluster, cql_reactor, default_retry_policy=Counting()) as cluster:
        session = cluster.connect()
        _clear_served(cql_cluster)
        with pytest.raises(Unavailable):
            session.execute(query)
        assert Counting.calls == [(2, 1, 0)]
        # RETHROW: no other coordinator was tried (the default policy tries the next host)
        assert len(_served(cql_cluster, lambda e: e.get("query") == query)) == 1


def test_idle_heartbeat_interval(cql_cluster_factory, cql_reactor):
    # an idle connection whose node stops answering is found out by its heartbeat only
    sim = cql_cluster_factory(nodes=1)
    for interval, found_out in ((0.2, True), (0, False)):
        with _cluster(sim, cql_reactor, idle_heartbeat_interval=interval) as cluster:
            session = cluster.connect()
            host = cluster.metadata.all_hosts()[0]
            sim.stall(0, 30.0)
            # five heartbeat intervals: found out in about two with 0.2, never without
            deadline = time.time() + 1.0
            pause = cluster.reactor.make_event()     # a wait that lets green loops run
            while time.time() < deadline and host.is_up:
                pause.wait(0.05)
            assert (not host.is_up) is found_out, interval
            session.shutdown()
            sim.clear()           # the stall ends here, before the next round


def test_max_requests_per_connection(cql_cluster, cql_reactor):
    from cqlreactor.core.errors import ConnectionBusy
    query = "SELECT v FROM dropin_busy.t"
    cql_cluster.prime(query, rows=[{"v": 1}], columns=[("v", "int")], delay=0.5)
    with _cluster(cql_cluster, cql_reactor, max_requests_per_connection=1,
                  connections_per_host=1) as cluster:
        session = cluster.connect()
        futures = [session.execute_async(query) for _ in range(len(cluster.metadata.all_hosts()))]
        with pytest.raises(NoHostAvailable) as info:
            session.execute(query)       # one request per connection is in flight everywhere
        assert info.value.errors and all(isinstance(e, ConnectionBusy)
                                         for e in info.value.errors.values())
        assert [f.result().one().v for f in futures] == [1] * len(futures)


def test_cql_version_is_sent_in_startup(cql_cluster, cql_reactor):
    # (the simulated server does not log STARTUP: the handshake's state shows what it sent)
    with _cluster(cql_cluster, cql_reactor, cql_version="3.4.5") as cluster:
        session = cluster.connect()
        conns = [c for pool in session.get_pools() for c in pool.get_connections()]
        assert conns and all(c._core.cql_version == "3.4.5" for c in conns)


def test_connect_wait_for_all_pools(cql_cluster, cql_reactor):
    with _cluster(cql_cluster, cql_reactor) as cluster:
        session = cluster.connect(wait_for_all_pools=True)
        assert len(session.get_pools()) == len(cql_cluster.node_info())
        assert all(pool.open_count for pool in session.get_pools())


@pytest.mark.parametrize("compression,expected", [("lz4", "lz4"), (False, None)])
def test_compression_is_negotiated_as_asked(cql_cluster, cql_reactor, compression, expected):
    if compression == "lz4":
        pytest.importorskip("lz4")
    with _cluster(cql_cluster, cql_reactor, compression=compression) as cluster:
        session = cluster.connect()
        conns = [c for pool in session.get_pools() for c in pool.get_connections()]
        assert conns and all(c._core.compression == expected for c in conns)
        assert session.execute("SELECT key FROM system.local").one().key == "local"
