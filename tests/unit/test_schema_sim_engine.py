"""The simulated cluster's per-node schema (issue 11), on the engine alone with an injected
clock: a DDL applies at once on its coordinator, on the others after the propagation delay
("never" for a partitioned node), and a node that lags answers from its older schema and
reports its older schema_version in system.local / system.peers / system_schema."""

import uuid

import pytest

from cqlreactor.testing.engine import EngineError, NodeInfo

from _engine_helpers import Clock, three_node_engine_with_ks


@pytest.fixture
def sim():
    clock = Clock(1000.0)
    engine = three_node_engine_with_ks(clock)
    clock.now += 1
    return engine, clock


def _version(engine, node):
    result, _ = engine.execute("SELECT schema_version FROM system.local", node=node)
    return uuid.UUID(bytes=bytes(result.rows[0][0]))


def _peer_versions(engine, node):
    result, _ = engine.execute("SELECT peer, schema_version FROM system.peers", node=node)
    return sorted(uuid.UUID(bytes=bytes(row[1])) for row in result.rows)


def _tables(engine, node):
    result, _ = engine.execute("SELECT table_name FROM system_schema.tables WHERE "
                               "keyspace_name = 'ks'", node=node)
    return [bytes(row[0]).decode() for row in result.rows]


def test_a_ddl_reaches_the_other_nodes_after_the_delay(sim):
    engine, clock = sim
    engine.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v int)", node=1)
    engine.execute("INSERT INTO ks.t (k, v) VALUES (1, 1)", node=1)
    for node in (0, 2):
        with pytest.raises(EngineError) as info:
            engine.execute("INSERT INTO ks.t (k, v) VALUES (1, 1)", node=node)
        assert info.value.code == 0x2200 and "unconfigured table t" in info.value.message
        with pytest.raises(EngineError):
            engine.prepare("SELECT * FROM ks.t", node=node)
        assert _tables(engine, node) == []
    assert _tables(engine, 1) == ["t"]
    assert _version(engine, 0) == _version(engine, 2) != _version(engine, 1)
    # every node's peers rows tell the others' versions as they are
    assert _peer_versions(engine, 0) == sorted([_version(engine, 1), _version(engine, 2)])
    clock.now += 0.6
    assert len(set(_version(engine, n) for n in range(3))) == 1
    engine.execute("INSERT INTO ks.t (k, v) VALUES (2, 2)", node=2)
    assert _tables(engine, 0) == ["t"]


def test_a_lagging_coordinator_sees_its_old_schema_for_ddl_too(sim):
    engine, clock = sim
    engine.execute("CREATE KEYSPACE other WITH replication = "
                   "{'class': 'SimpleStrategy', 'replication_factor': 1}", node=0)
    with pytest.raises(EngineError) as info:
        engine.execute("CREATE TABLE other.t (k int PRIMARY KEY)", node=2)
    assert "other" in info.value.message
    with pytest.raises(EngineError):
        engine.execute("USE other", node=2)
    clock.now += 0.6
    engine.execute("CREATE TABLE other.t (k int PRIMARY KEY)", node=2)


def test_a_partitioned_node_never_gets_it_until_healed(sim):
    engine, clock = sim
    engine.set_schema_delay("never", 2)
    engine.execute("CREATE TABLE ks.p (k int PRIMARY KEY)", node=0)
    clock.now += 3600
    assert _tables(engine, 1) == ["p"] and _tables(engine, 2) == []
    assert engine.schema_delays() == [0.5, 0.5, "never"]
    engine.set_schema_delay(0.5)              # every node back to the default: it catches up
    assert _tables(engine, 2) == ["p"]
    engine.set_schema_delay(0)
    engine.execute("CREATE TABLE ks.q (k int PRIMARY KEY)", node=0)
    assert _tables(engine, 2) == ["p", "q"]   # zero delay: at once


def test_a_new_node_bootstraps_with_the_whole_schema(sim):
    engine, clock = sim
    engine.execute("CREATE TABLE ks.n (k int PRIMARY KEY)", node=0)
    index = engine.add_node(NodeInfo(0, "127.0.0.4"))
    assert _tables(engine, index) == ["n"]
    assert _version(engine, index) == _version(engine, 0)


@pytest.mark.parametrize("bad", [-1, "soon", True, float("nan")])
def test_bad_delays_are_refused(sim, bad):
    engine, _ = sim
    with pytest.raises(ValueError) as info:
        engine.set_schema_delay(bad)
    assert "never" in str(info.value)
