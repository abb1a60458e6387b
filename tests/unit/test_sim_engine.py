"""The simulated cluster's CQL engine (cqlreactor.testing.engine), driven directly: no sockets.

Values cross the engine's interface serialized, so these tests encode with core.types and
decode the rows the engine returns.
"""

import pytest

from cqlreactor.core import types as T
from cqlreactor.core.errors import EngineError
from cqlreactor.testing.engine import Engine, NodeInfo, Rows, SchemaChange, SetKeyspace, Void


class Clock(object):
    """An injected clock (seconds) the tests move by hand."""

    def __init__(self, now=1700000000.0):
        self.now = now

    def __call__(self):
        return self.now


def make_engine(n=3, clock=None, **kw):
    nodes = [NodeInfo(i, "127.0.0.%d" % (i + 1), **kw) for i in range(n)]
    return Engine(nodes, clock=clock or Clock())


def decode(result):
    assert isinstance(result, Rows)
    return [tuple(c.cql_type.deserialize(v) for c, v in zip(result.columns, row))
            for row in result.rows]


def names(result):
    return [c.name for c in result.columns]


def run(engine, query, values=None, **kw):
    result, _ = engine.execute(query, values, **kw)
    return result


@pytest.fixture
def engine():
    e = make_engine()
    run(e, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
           "'replication_factor': 3}")
    return e


def test_keyspace_table_insert_select_with_markers(engine):
    result, changed = engine.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    assert changed and isinstance(result, SchemaChange)
    assert (result.change_type, result.target, result.keyspace, result.name) == (
        "CREATED", "TABLE", "ks", "t")
    result, changed = engine.execute("INSERT INTO ks.t (k, v) VALUES (?, ?)",
                                     [T.INT.serialize(1), T.TEXT.serialize("one")])
    assert isinstance(result, Void) and not changed
    rows = run(engine, "SELECT * FROM ks.t WHERE k = ?", [T.INT.serialize(1)])
    assert names(rows) == ["k", "v"]
    assert decode(rows) == [(1, "one")]
    assert rows.paging_state is None
    assert decode(run(engine, "SELECT v FROM t WHERE k = 2", keyspace="ks")) == []


def test_use_returns_set_keyspace(engine):
    result, changed = engine.execute("USE ks")
    assert isinstance(result, SetKeyspace) and result.keyspace == "ks" and not changed
    with pytest.raises(EngineError) as info:
        engine.execute("USE nope")
    assert info.value.code == 0x2200


def test_system_local_and_peers_per_node():
    e = make_engine(3)
    local = run(e, "SELECT * FROM system.local WHERE key='local'", node=1)
    row = dict(zip(names(local), decode(local)[0]))
    assert str(row["broadcast_address"]) == "127.0.0.2"
    assert row["release_version"] == "4.0.11"
    assert row["host_id"] == e.nodes[1].host_id
    assert row["tokens"] == set(str(t) for t in e.nodes[1].tokens)
    peers = run(e, "SELECT * FROM system.peers", node=1)
    assert sorted(str(r[0]) for r in decode(peers)) == ["127.0.0.1", "127.0.0.3"]
