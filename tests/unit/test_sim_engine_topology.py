"""The simulated cluster's engine when nodes join and leave the ring (add_node/remove_node):
pure logic, no sockets."""

import pytest

from cqlreactor.core import types as T
from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.core.murmur3 import MAX_TOKEN, MIN_TOKEN, murmur3_token
from cqlreactor.testing.engine import Engine, NodeInfo, Rows


class Clock(object):
    def __call__(self):
        return 1700000000.0


def make_engine(n=3):
    return Engine([NodeInfo(i, "127.0.0.%d" % (i + 1)) for i in range(n)], clock=Clock())


def rows(engine, query, node=0, **kw):
    result, _ = engine.execute(query, node=node, **kw)
    assert isinstance(result, Rows)
    return [tuple(c.cql_type.deserialize(v) for c, v in zip(result.columns, row))
            for row in result.rows]


def expected_owner(engine, token):
    ring = sorted((n.tokens[0], n.index) for n in engine.nodes)
    return next((i for t, i in ring if t >= token), ring[0][1])


def keyspace(engine, rf):
    engine.execute("CREATE KEYSPACE IF NOT EXISTS ks%d WITH replication = {'class': "
                   "'SimpleStrategy', 'replication_factor': %d}" % (rf, rf))
    return "ks%d" % rf


def test_added_node_splits_the_widest_range_and_owns_its_keys():
    e = make_engine(3)
    before = sorted(t for n in e.nodes for t in n.tokens)
    index = e.add_node(NodeInfo(99, "127.0.0.4"))
    assert index == 3 and e.nodes[3].index == 3 and e.nodes[3].address == "127.0.0.4"
    (token,) = e.nodes[3].tokens
    assert MIN_TOKEN < token <= MAX_TOKEN and token not in before
    # the three (nearly) equal ranges, the ring wrapping: the new token halves the widest
    lower = max([t for t in before if t < token] or [before[-1]])
    upper = min([t for t in before if t > token] or [before[0]])
    below, above = (token - lower) % (1 << 64), (upper - token) % (1 << 64)
    assert abs(below - above) <= 1 and below + above >= (1 << 64) // 3
    ks = keyspace(e, 1)
    owned = 0
    for k in range(200):
        key = T.INT.serialize(k)
        owner = expected_owner(e, murmur3_token(key))
        assert e.replicas_for(ks, key) == [owner]
        owned += owner == 3
    assert 0 < owned < 200


def test_added_node_appears_in_peers_and_local():
    e = make_engine(3)
    e.add_node(NodeInfo(0, "127.0.0.4", tokens=[42]))
    peers = rows(e, "SELECT peer, tokens FROM system.peers", node=0)
    assert ("127.0.0.4", set(["42"])) in [(str(p), set(t)) for p, t in peers]
    assert len(rows(e, "SELECT peer FROM system.peers_v2", node=1)) == 3
    assert len(rows(e, "SELECT peer FROM system.peers", node=3)) == 3
    local = rows(e, "SELECT broadcast_address, tokens FROM system.local", node=3)
    assert [(str(a), set(t)) for a, t in local] == [("127.0.0.4", set(["42"]))]


def test_token_collision_is_refused():
    e = make_engine(3)
    with pytest.raises(ValueError, match="already owned"):
        e.add_node(NodeInfo(0, "127.0.0.4", tokens=[e.nodes[1].tokens[0]]))
    assert len(e.nodes) == 3


def test_removed_node_leaves_ring_and_peers_and_indexes_move_down():
    e = make_engine(4)
    ks = keyspace(e, 1)
    e.prepare("SELECT * FROM system.local")              # on every node
    removed = e.remove_node(1)
    assert removed.address == "127.0.0.2"
    assert [n.address for n in e.nodes] == ["127.0.0.1", "127.0.0.3", "127.0.0.4"]
    assert [n.index for n in e.nodes] == [0, 1, 2]
    peers = sorted(str(p) for (p,) in rows(e, "SELECT peer FROM system.peers", node=0))
    assert peers == ["127.0.0.3", "127.0.0.4"]
    for k in range(100):
        key = T.INT.serialize(k)
        assert e.replicas_for(ks, key) == [expected_owner(e, murmur3_token(key))]
    # the renumbered nodes keep their own prepared statements
    prepared = e.prepare("SELECT peer FROM system.peers", node=2)
    e.execute_prepared(prepared.query_id, [], node=2)
    with pytest.raises(EngineError) as info:
        e.execute_prepared(prepared.query_id, [], node=1)
    assert info.value.code == 0x2500


def test_new_node_knows_no_prepared_statement_and_counts_for_availability():
    e = make_engine(3)
    ks = keyspace(e, 1)
    e.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    prepared = e.prepare("SELECT v FROM %s.t WHERE k = ?" % ks)
    index = e.add_node(NodeInfo(0, "127.0.0.4"))
    with pytest.raises(EngineError) as info:
        e.execute_prepared(prepared.query_id, [T.INT.serialize(1)], node=index)
    assert info.value.code == 0x2500
    key = next(T.INT.serialize(k) for k in range(1000)
               if e.replicas_for(ks, T.INT.serialize(k)) == [index])
    e.set_node_up(index, False)
    with pytest.raises(EngineError) as info:
        e.execute_prepared(prepared.query_id, [key], node=0)
    assert info.value.code == 0x1000
    e.remove_node(index)                  # its range passes to the next node, which is up
    e.execute_prepared(prepared.query_id, [key], node=0)


def test_last_node_cannot_leave():
    e = make_engine(1)
    with pytest.raises(ValueError, match="last node"):
        e.remove_node(0)
