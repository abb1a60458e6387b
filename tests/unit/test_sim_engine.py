"""The simulated cluster's CQL engine (cqlreactor.testing.engine), driven directly: no sockets.

Values cross the engine's interface serialized, so these tests encode with core.types and
decode the rows the engine returns.
"""

import datetime
import decimal
import hashlib
import ipaddress
import uuid

import pytest

from cqlreactor.core import types as T
from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.testing.engine import Engine, NodeInfo, Rows, SchemaChange, SetKeyspace, Void

from _engine_helpers import Clock


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


# --- types ---------------------------------------------------------------------------------------

ALL_TYPES = [
    ("a", "ascii", "'asc'", "asc"),
    ("b", "bigint", "-5", -5),
    ("bl", "blob", "0xcafe", b"\xca\xfe"),
    ("bo", "boolean", "true", True),
    ("d", "date", "'2020-02-03'", T.Date(datetime.date(2020, 2, 3))),
    ("de", "decimal", "1.25", decimal.Decimal("1.25")),
    ("do", "double", "2.5", 2.5),
    ("du", "duration", "1h30m", T.Duration(0, 0, 5400 * 10 ** 9)),
    ("f", "float", "1.5", 1.5),
    ("i", "inet", "'10.0.0.1'", ipaddress.ip_address("10.0.0.1")),
    ("it", "int", "7", 7),
    ("sm", "smallint", "3", 3),
    ("te", "text", "'h\u00e9llo it''s'", "h\u00e9llo it's"),
    ("ti", "time", "'10:11:12.5'", T.Time(datetime.time(10, 11, 12, 500000))),
    ("ts", "timestamp", "'2020-01-02 03:04:05.678+0000'",
     datetime.datetime(2020, 1, 2, 3, 4, 5, 678000)),
    ("tu", "timeuuid", "a8098c1a-f86e-11da-bd1a-00112444be1e",
     uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e")),
    ("ty", "tinyint", "-1", -1),
    ("uu", "uuid", "5d1a6a4e-2f0b-4c38-9f61-1a2b3c4d5e6f",
     uuid.UUID("5d1a6a4e-2f0b-4c38-9f61-1a2b3c4d5e6f")),
    ("vc", "varchar", "'vc'", "vc"),
    ("vi", "varint", "12345678901234567890", 12345678901234567890),
    ("li", "list<int>", "[3, 1, 2]", [3, 1, 2]),
    ("se", "set<text>", "{'b', 'a', 'b'}", set(["a", "b"])),
    ("ma", "map<int, text>", "{2: 'x', 1: 'y'}", {1: "y", 2: "x"}),
    ("fl", "frozen<list<frozen<set<int>>>>", "[{2, 1}, {3}]", [set([1, 2]), set([3])]),
    ("tp", "tuple<int, text>", "(1, 'x')", (1, "x")),
    ("ud", "frozen<u>", "{a: 1, b: 'z'}", None),      # checked by field below
]


def _udt_fields(value):
    return (value.a, value.b)


def test_every_type_round_trips_literals_and_bound_values(engine):
    run(engine, "CREATE TYPE ks.u (a int, b text)")
    run(engine, "CREATE TABLE ks.all (k int PRIMARY KEY, %s)"
        % ", ".join("%s %s" % (n, t) for n, t, _, _ in ALL_TYPES))
    run(engine, "INSERT INTO ks.all (k, %s) VALUES (1, %s)"
        % (", ".join(n for n, _, _, _ in ALL_TYPES), ", ".join(l for _, _, l, _ in ALL_TYPES)))
    result = run(engine, "SELECT * FROM ks.all WHERE k = 1")
    row = dict(zip(names(result), decode(result)[0]))
    types = dict((c.name, c.cql_type.name) for c in result.columns)
    assert types["vc"] == "text" and types["tp"] == "frozen<tuple<int, text>>"
    for name, _, _, expected in ALL_TYPES:
        if name == "ud":
            assert _udt_fields(row[name]) == (1, "z")
        else:
            assert row[name] == expected, name
    # the same bytes bound through a prepared INSERT come back unchanged
    cols = names(result)[1:]
    prepared = engine.prepare("INSERT INTO ks.all (k, %s) VALUES (?, %s)"
                              % (", ".join(cols), ", ".join("?" for _ in cols)), None)
    assert [c.name for c in prepared.bind_columns] == ["k"] + cols
    assert prepared.pk_indexes == [0]
    engine.execute_prepared(prepared.query_id, [T.INT.serialize(2)] + list(result.rows[0][1:]))
    again = run(engine, "SELECT * FROM ks.all WHERE k = 2")
    assert again.rows[0][1:] == result.rows[0][1:]


def test_collection_updates(engine):
    run(engine, "CREATE TABLE ks.c (k int PRIMARY KEY, l list<int>, s set<text>, "
                "m map<text, int>)")
    run(engine, "INSERT INTO ks.c (k, l, s, m) VALUES (1, [1, 2], {'a', 'b'}, {'x': 1})")
    run(engine, "UPDATE ks.c SET l = l + [3], s = s + {'c'}, m['y'] = 2 WHERE k = 1")
    run(engine, "UPDATE ks.c SET l = [0] + l, s = s - {'a'}, m = m - {'x'} WHERE k = 1")
    run(engine, "UPDATE ks.c SET l[1] = 10 WHERE k = 1")
    assert decode(run(engine, "SELECT l, s, m FROM ks.c WHERE k = 1")) == [
        ([0, 10, 2, 3], set(["b", "c"]), {"y": 2})]
    run(engine, "DELETE m['y'], s FROM ks.c WHERE k = 1")
    assert decode(run(engine, "SELECT l, s, m FROM ks.c WHERE k = 1")) == [
        ([0, 10, 2, 3], None, None)]
    with pytest.raises(EngineError) as info:
        run(engine, "UPDATE ks.c SET l[9] = 1 WHERE k = 1")
    assert info.value.code == 0x2200 and "out of bound" in info.value.message


def test_counters(engine):
    run(engine, "CREATE TABLE ks.cnt (k text PRIMARY KEY, hits counter)")
    for _ in range(3):
        run(engine, "UPDATE ks.cnt SET hits = hits + ? WHERE k = 'a'", [T.BIGINT.serialize(2)])
    run(engine, "UPDATE ks.cnt SET hits = hits - 1 WHERE k = 'a'")
    assert decode(run(engine, "SELECT hits FROM ks.cnt WHERE k = 'a'")) == [(5,)]
    for bad in ("INSERT INTO ks.cnt (k, hits) VALUES ('b', 1)",
                "UPDATE ks.cnt SET hits = 3 WHERE k = 'a'"):
        with pytest.raises(EngineError) as info:
            run(engine, bad)
        assert info.value.code == 0x2200


# --- clustering, ranges, IN, ORDER BY, paging ----------------------------------------------------

@pytest.fixture
def clustered(engine):
    run(engine, "CREATE TABLE ks.ts (p text, b int, c int, v text, PRIMARY KEY ((p, b), c)) "
                "WITH CLUSTERING ORDER BY (c DESC)")
    insert = engine.prepare("INSERT INTO ks.ts (p, b, c, v) VALUES (?, ?, ?, ?)", None)
    for p in ("x", "y"):
        for c in range(10):
            engine.execute_prepared(insert.query_id, [T.TEXT.serialize(p), T.INT.serialize(0),
                                                      T.INT.serialize(c),
                                                      T.TEXT.serialize("%s%d" % (p, c))])
    return engine


def cs(result):
    return [r[names(result).index("c")] for r in decode(result)]


def test_clustering_order_and_ranges(clustered):
    e = clustered
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0")) == list(range(9, -1, -1))
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 ORDER BY c ASC")) == \
        list(range(10))
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 AND c > 2 AND c <= 5")) == \
        [5, 4, 3]
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 AND c >= 7 LIMIT 2")) == [9, 8]
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 AND c < 2")) == [1, 0]
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 AND c = 4")) == [4]
    assert cs(run(e, "SELECT * FROM ks.ts WHERE p = 'x' AND b = 0 AND c IN (1, 8, 3)")) == \
        [8, 3, 1]


def test_in_on_partition_key(clustered):
    e = clustered
    result = run(e, "SELECT p, c FROM ks.ts WHERE p IN ('y', 'x', 'zz') AND b = 0 AND c = 1")
    assert decode(result) == [("x", 1), ("y", 1)]
    result = run(e, "SELECT p, c FROM ks.ts WHERE p IN ? AND b = ? AND c = 2",
                 [T.parse_cql_type("list<text>").serialize(["y"]), T.INT.serialize(0)])
    assert decode(result) == [("y", 2)]
    prepared = e.prepare("SELECT p FROM ks.ts WHERE p IN ? AND b = ?", None)
    assert [(c.name, c.cql_type.name) for c in prepared.bind_columns] == [
        ("in(p)", "list<text>"), ("b", "int")]
    assert prepared.pk_indexes == []


def _pages(e, query, page_size, values=None, node_cycle=(0,)):
    pages = []
    state = None
    nodes = iter(node_cycle * 100)
    while True:
        result, _ = e.execute(query, values, page_size=page_size, paging_state=state,
                              node=next(nodes))
        pages.append(decode(result))
        state = result.paging_state
        if state is None:
            return pages


@pytest.mark.parametrize("page_size", [1, 3, 7, 10, 19, 20, 21, 100])
def test_paging_resumes_exactly_across_pages_partitions_and_nodes(clustered, page_size):
    e = clustered
    query = "SELECT p, c FROM ks.ts"
    everything = decode(run(e, query))
    assert len(everything) == 20
    pages = _pages(e, query, page_size, node_cycle=(0, 1, 2))
    assert [r for page in pages for r in page] == everything
    assert all(len(page) == page_size for page in pages[:-1])
    assert 0 < len(pages[-1]) <= page_size


def test_paging_with_limit_reverse_order_and_in(clustered):
    e = clustered
    query = "SELECT p, c FROM ks.ts WHERE p IN ('x', 'y') AND b = 0 LIMIT 13"
    everything = decode(run(e, query))
    assert everything == [("x", c) for c in range(9, -1, -1)] + [("y", c) for c in (9, 8, 7)]
    pages = _pages(e, query, 4)
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert [r for page in pages for r in page] == everything
    query = "SELECT c FROM ks.ts WHERE p = 'y' AND b = 0 AND c < 8 ORDER BY c ASC LIMIT 5"
    pages = _pages(e, query, 2)
    assert [r for page in pages for r in page] == [(c,) for c in range(5)]


def test_in_with_order_by_merges_partitions_without_paging(clustered):
    e = clustered
    query = "SELECT p, c FROM ks.ts WHERE p IN ('y', 'x') AND b = 0 AND c < 3 ORDER BY c ASC"
    assert decode(run(e, query)) == [("x", 0), ("y", 0), ("x", 1), ("y", 1), ("x", 2),
                                     ("y", 2)]
    assert decode(run(e, query + " LIMIT 3")) == [("x", 0), ("y", 0), ("x", 1)]
    with pytest.raises(EngineError) as info:
        e.execute(query, page_size=100)
    assert info.value.code == 0x2200 and "Cannot page queries" in info.value.message


def test_paging_state_survives_deleted_resume_row(clustered):
    e = clustered
    result, _ = e.execute("SELECT c FROM ks.ts WHERE p = 'x' AND b = 0", page_size=3)
    assert decode(result) == [(9,), (8,), (7,)]
    run(e, "DELETE FROM ks.ts WHERE p = 'x' AND b = 0 AND c = 7")
    result, _ = e.execute("SELECT c FROM ks.ts WHERE p = 'x' AND b = 0", page_size=3,
                          paging_state=result.paging_state)
    assert decode(result) == [(6,), (5,), (4,)]


def test_bad_paging_state_is_a_protocol_error(clustered):
    with pytest.raises(EngineError) as info:
        clustered.execute("SELECT * FROM ks.ts", page_size=3, paging_state=b"garbage")
    assert info.value.code == 0x000A


def test_count(clustered):
    e = clustered
    assert decode(run(e, "SELECT COUNT(*) FROM ks.ts")) == [(20,)]
    result = run(e, "SELECT count(1) AS n FROM ks.ts WHERE p = 'x' AND b = 0 AND c > 4")
    assert names(result) == ["n"] and decode(result) == [(5,)]
    result, _ = e.execute("SELECT count(*) FROM ks.ts", page_size=3)
    assert decode(result) == [(20,)] and result.paging_state is None
    assert names(run(e, "SELECT count(*) FROM ks.ts")) == ["count"]


def test_filtering_rules(clustered):
    e = clustered
    for query in ("SELECT * FROM ks.ts WHERE v = 'x1'",
                  "SELECT * FROM ks.ts WHERE p = 'x'",
                  "SELECT * FROM ks.ts WHERE c = 1"):
        with pytest.raises(EngineError) as info:
            run(e, query)
        assert info.value.code == 0x2200 and "ALLOW FILTERING" in info.value.message
    assert cs(run(e, "SELECT * FROM ks.ts WHERE v = 'x1' ALLOW FILTERING")) == [1]
    assert sorted(cs(run(e, "SELECT * FROM ks.ts WHERE c = 1 ALLOW FILTERING"))) == [1, 1]


# --- LWT, TTL, timestamps ------------------------------------------------------------------------

def test_insert_if_not_exists(engine):
    run(engine, "CREATE TABLE ks.l (k int PRIMARY KEY, v text)")
    result = run(engine, "INSERT INTO ks.l (k, v) VALUES (1, 'a') IF NOT EXISTS")
    assert names(result) == ["[applied]"] and decode(result) == [(True,)]
    result = run(engine, "INSERT INTO ks.l (k, v) VALUES (1, 'b') IF NOT EXISTS")
    assert names(result) == ["[applied]", "k", "v"]
    assert decode(result) == [(False, 1, "a")]
    assert decode(run(engine, "SELECT v FROM ks.l WHERE k = 1")) == [("a",)]


def test_conditional_update_and_delete(engine):
    run(engine, "CREATE TABLE ks.l (k int PRIMARY KEY, v text, n int)")
    run(engine, "INSERT INTO ks.l (k, v, n) VALUES (1, 'a', 1)")
    result = run(engine, "UPDATE ks.l SET v = 'b' WHERE k = 1 IF v = 'z'")
    assert names(result) == ["[applied]", "v"] and decode(result) == [(False, "a")]
    result = run(engine, "UPDATE ks.l SET v = 'b' WHERE k = 1 IF v = 'a' AND n < 2")
    assert decode(result) == [(True,)]
    assert decode(run(engine, "UPDATE ks.l SET v = 'c' WHERE k = 2 IF EXISTS")) == [(False,)]
    assert decode(run(engine, "DELETE FROM ks.l WHERE k = 1 IF EXISTS")) == [(True,)]
    assert decode(run(engine, "SELECT * FROM ks.l")) == []


def test_ttl_expiry_with_injected_clock():
    clock = Clock()
    e = make_engine(1, clock=clock)
    run(e, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
           "'replication_factor': 1}")
    run(e, "CREATE TABLE ks.t (k int PRIMARY KEY, v text, w text)")
    run(e, "INSERT INTO ks.t (k, v) VALUES (1, 'a') USING TTL 10")
    run(e, "UPDATE ks.t USING TTL 100 SET w = 'long' WHERE k = 1")
    assert decode(run(e, "SELECT ttl(v), ttl(w) FROM ks.t WHERE k = 1")) == [(10, 100)]
    clock.now += 9.5
    assert decode(run(e, "SELECT v, w FROM ks.t WHERE k = 1")) == [("a", "long")]
    clock.now += 1
    assert decode(run(e, "SELECT v, w FROM ks.t WHERE k = 1")) == [(None, "long")]
    clock.now += 100
    assert decode(run(e, "SELECT * FROM ks.t WHERE k = 1")) == []
    run(e, "CREATE TABLE ks.d (k int PRIMARY KEY, v text) WITH default_time_to_live = 5")
    run(e, "INSERT INTO ks.d (k, v) VALUES (1, 'a')")
    clock.now += 6
    assert decode(run(e, "SELECT * FROM ks.d")) == []


def test_using_timestamp_last_write_wins(engine):
    run(engine, "CREATE TABLE ks.w (k int PRIMARY KEY, v text)")
    run(engine, "INSERT INTO ks.w (k, v) VALUES (1, 'new') USING TIMESTAMP 2000")
    run(engine, "INSERT INTO ks.w (k, v) VALUES (1, 'old') USING TIMESTAMP 1000")
    assert decode(run(engine, "SELECT v, writetime(v) FROM ks.w WHERE k = 1")) == [("new", 2000)]


# --- availability --------------------------------------------------------------------------------

def test_unavailable_with_rf3_and_two_nodes_down(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v int)")
    engine.set_node_up(1, False)
    engine.set_node_up(2, False)
    key = T.INT.serialize(1)
    assert sorted(engine.replicas_for("ks", key)) == [0, 1, 2]
    # ONE works
    run(engine, "INSERT INTO ks.t (k, v) VALUES (1, 1)", consistency=1)
    assert decode(run(engine, "SELECT v FROM ks.t WHERE k = 1", consistency=1)) == [(1,)]
    for cl, required in ((4, 2), (5, 3), (2, 2), (6, 2)):
        for query in ("SELECT v FROM ks.t WHERE k = 1", "INSERT INTO ks.t (k, v) VALUES (1, 2)"):
            with pytest.raises(EngineError) as info:
                run(engine, query, consistency=cl)
            assert info.value.code == 0x1000
            assert info.value.fields == {"consistency": cl, "required": required, "alive": 1}
    engine.set_node_up(1, True)
    run(engine, "SELECT v FROM ks.t WHERE k = 1", consistency=4)


def test_replicas_follow_the_token_ring():
    e = make_engine(4)
    run(e, "CREATE KEYSPACE one WITH replication = {'class': 'SimpleStrategy', "
           "'replication_factor': 1}")
    from cqlreactor.core.murmur3 import murmur3_token
    for k in range(50):
        key = T.INT.serialize(k)
        token = murmur3_token(key)
        owners = e.replicas_for("one", key)
        assert len(owners) == 1
        # the owner is the first node whose token is >= the key's token (wrapping)
        ring = sorted((n.tokens[0], n.index) for n in e.nodes)
        expected = next((i for t, i in ring if t >= token), ring[0][1])
        assert owners == [expected]


def test_network_topology_local_quorum():
    nodes = [NodeInfo(i, "127.0.0.%d" % (i + 1), data_center="dc1" if i < 3 else "dc2")
             for i in range(6)]
    e = Engine(nodes, clock=Clock())
    run(e, "CREATE KEYSPACE nts WITH replication = {'class': 'NetworkTopologyStrategy', "
           "'dc1': 3, 'dc2': 3}")
    run(e, "CREATE TABLE nts.t (k int PRIMARY KEY, v int)")
    key = T.INT.serialize(5)
    assert sorted(e.replicas_for("nts", key)) == list(range(6))
    for i in (3, 4, 5):
        e.set_node_up(i, False)
    run(e, "SELECT * FROM nts.t WHERE k = 5", consistency=6, node=0)     # LOCAL_QUORUM in dc1
    run(e, "SELECT * FROM nts.t WHERE k = 5", consistency=10, node=0)    # LOCAL_ONE
    for cl, required in ((4, 4), (5, 6), (7, 2)):      # QUORUM, ALL, EACH_QUORUM
        with pytest.raises(EngineError) as info:
            run(e, "SELECT * FROM nts.t WHERE k = 5", consistency=cl)
        assert info.value.fields == {"consistency": cl, "required": required, "alive":
                                     0 if cl == 7 else 3}
    with pytest.raises(EngineError) as info:
        run(e, "SELECT * FROM nts.t WHERE k = 5", consistency=6, node=3)
    assert info.value.fields["required"] == 2 and info.value.fields["alive"] == 0


# --- prepared statements -------------------------------------------------------------------------

def test_prepared_ids_are_per_node_and_forgotten_on_restart(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    p = engine.prepare("SELECT v FROM t WHERE k = :key", "ks", node=1)
    assert p.query_id == hashlib.md5(b"ksSELECT v FROM t WHERE k = :key").digest()
    assert [(c.keyspace, c.table, c.name, c.cql_type.name) for c in p.bind_columns] == [
        ("ks", "t", "key", "int")]
    assert [(c.name, c.cql_type.name) for c in p.result_columns] == [("v", "text")]
    assert p.pk_indexes == [0]
    engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=1)
    # named values
    engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=1, names=["key"])
    with pytest.raises(EngineError) as info:
        engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=0)
    assert info.value.code == 0x2500 and info.value.fields["statement_id"] == p.query_id
    engine.prepare("SELECT v FROM t WHERE k = :key", "ks")          # every node
    engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=0)
    engine.forget_prepared(0)
    with pytest.raises(EngineError) as info:
        engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=0)
    assert info.value.code == 0x2500
    engine.execute_prepared(p.query_id, [T.INT.serialize(1)], node=1)
    with pytest.raises(EngineError) as info:
        engine.execute_prepared(b"\x00" * 16, [], node=1)
    assert info.value.code == 0x2500


def test_result_metadata_id_changes_with_the_columns(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    a = engine.prepare("SELECT * FROM ks.t", None)
    run(engine, "ALTER TABLE ks.t ADD w int")
    b = engine.prepare("SELECT * FROM ks.t", None)
    assert a.query_id == b.query_id and a.result_metadata_id != b.result_metadata_id
    assert [c.name for c in b.result_columns] == ["k", "v", "w"]


def test_wrong_number_of_values(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    with pytest.raises(EngineError) as info:
        run(engine, "SELECT * FROM ks.t WHERE k = ?", [])
    assert info.value.code == 0x2200
    with pytest.raises(EngineError) as info:
        run(engine, "SELECT * FROM ks.t WHERE k = ?", [b"\x00"])
    assert info.value.code == 0x2200


# --- batches -------------------------------------------------------------------------------------

def test_batch_message_and_batch_in_a_query(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    p = engine.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)", None)
    result = engine.batch([(p.query_id, True, [T.INT.serialize(1), T.TEXT.serialize("a")]),
                           ("INSERT INTO ks.t (k, v) VALUES (2, 'b')", False, []),
                           ("UPDATE ks.t SET v = ? WHERE k = ?", False,
                            [T.TEXT.serialize("c"), T.INT.serialize(3)])])
    assert isinstance(result, Void)
    result = run(engine, "BEGIN UNLOGGED BATCH INSERT INTO ks.t (k, v) VALUES (?, 'd'); "
                         "DELETE FROM ks.t WHERE k = ? APPLY BATCH",
                 [T.INT.serialize(4), T.INT.serialize(1)])
    assert isinstance(result, Void)
    assert sorted(decode(run(engine, "SELECT k, v FROM ks.t"))) == [
        (2, "b"), (3, "c"), (4, "d")]
    with pytest.raises(EngineError) as info:
        engine.batch([("SELECT * FROM ks.t", False, [])])
    assert info.value.code == 0x2200
    # a failing statement leaves the whole batch unapplied
    with pytest.raises(EngineError):
        engine.batch([("INSERT INTO ks.t (k, v) VALUES (9, 'z')", False, []),
                       ("INSERT INTO ks.t (k, v) VALUES (null, 'z')", False, [])])
    assert decode(run(engine, "SELECT * FROM ks.t WHERE k = 9")) == []


# --- schema --------------------------------------------------------------------------------------

def test_schema_changed_flag_and_if_not_exists(engine):
    result, changed = engine.execute("CREATE KEYSPACE ks WITH replication = "
                                     "{'class': 'SimpleStrategy', 'replication_factor': 1}"
                                     .replace("KEYSPACE", "KEYSPACE IF NOT EXISTS"))
    assert isinstance(result, Void) and not changed
    with pytest.raises(EngineError) as info:
        engine.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
                       "'replication_factor': 1}")
    assert info.value.code == 0x2400 and info.value.fields["keyspace"] == "ks"
    result, changed = engine.execute("CREATE TABLE ks.t (k int PRIMARY KEY)")
    assert changed
    with pytest.raises(EngineError) as info:
        engine.execute("CREATE TABLE ks.t (k int PRIMARY KEY)")
    assert info.value.code == 0x2400 and info.value.fields == {"keyspace": "ks", "table": "t"}
    result, changed = engine.execute("CREATE TABLE IF NOT EXISTS ks.t (k int PRIMARY KEY)")
    assert isinstance(result, Void) and not changed
    result, changed = engine.execute("CREATE TYPE ks.ty (a int)")
    assert changed and (result.target, result.name) == ("TYPE", "ty")
    result, changed = engine.execute("DROP TABLE ks.t")
    assert changed and (result.change_type, result.target) == ("DROPPED", "TABLE")
    result, changed = engine.execute("DROP TABLE IF EXISTS ks.t")
    assert not changed
    result, changed = engine.execute("DROP KEYSPACE ks")
    assert changed and (result.change_type, result.target, result.keyspace) == (
        "DROPPED", "KEYSPACE", "ks")


def test_schema_version_changes_with_ddl(engine):
    before = engine.nodes[0].schema_version
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY)")
    after = engine.nodes[0].schema_version
    assert before != after and all(n.schema_version == after for n in engine.nodes)
    local = run(engine, "SELECT schema_version FROM system.local WHERE key = 'local'")
    assert decode(local) == [(after,)]


def test_truncate(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY)")
    run(engine, "INSERT INTO ks.t (k) VALUES (1)")
    assert decode(run(engine, "SELECT * FROM ks.t")) == [(1,)]
    run(engine, "TRUNCATE ks.t")
    assert decode(run(engine, "SELECT * FROM ks.t")) == []


def test_quoted_identifiers_and_case(engine):
    run(engine, 'CREATE TABLE ks."MyTable" ("Key" int PRIMARY KEY, Value text)')
    run(engine, 'insert into ks."MyTable" ("Key", VALUE) values (1, \'v\')')
    result = run(engine, 'SELECT "Key", value FROM ks."MyTable"')
    assert names(result) == ["Key", "value"] and decode(result) == [(1, "v")]
    with pytest.raises(EngineError):
        run(engine, "SELECT * FROM ks.mytable")


# --- static columns, DISTINCT, PER PARTITION LIMIT, deletes, unset -------------------------------

def test_static_columns_and_distinct(engine):
    run(engine, "CREATE TABLE ks.s (k int, c int, s text static, v int, PRIMARY KEY (k, c))")
    run(engine, "INSERT INTO ks.s (k, s) VALUES (1, 'st')")
    assert decode(run(engine, "SELECT * FROM ks.s")) == [(1, None, "st", None)]
    run(engine, "INSERT INTO ks.s (k, c, v) VALUES (1, 1, 10)")
    run(engine, "INSERT INTO ks.s (k, c, v) VALUES (1, 2, 20)")
    run(engine, "INSERT INTO ks.s (k, c) VALUES (2, 1)")
    assert decode(run(engine, "SELECT * FROM ks.s WHERE k = 1")) == [
        (1, 1, "st", 10), (1, 2, "st", 20)]
    assert sorted(decode(run(engine, "SELECT DISTINCT k, s FROM ks.s"))) == [
        (1, "st"), (2, None)]
    assert sorted(decode(run(engine, "SELECT k, c FROM ks.s PER PARTITION LIMIT 1"))) == [
        (1, 1), (2, 1)]
    first, _ = engine.execute("SELECT DISTINCT k FROM ks.s", page_size=1)
    second, _ = engine.execute("SELECT DISTINCT k FROM ks.s", page_size=1,
                               paging_state=first.paging_state)
    assert sorted(decode(first) + decode(second)) == [(1,), (2,)]
    assert second.paging_state is None
    with pytest.raises(EngineError):
        run(engine, "SELECT DISTINCT v FROM ks.s")


def test_range_and_partition_deletes(engine):
    run(engine, "CREATE TABLE ks.r (k int, c int, v int, PRIMARY KEY (k, c))")
    for c in range(6):
        run(engine, "INSERT INTO ks.r (k, c, v) VALUES (1, %d, %d)" % (c, c))
        run(engine, "INSERT INTO ks.r (k, c, v) VALUES (2, %d, %d)" % (c, c))
    run(engine, "DELETE FROM ks.r WHERE k = 1 AND c >= 2 AND c < 5")
    assert decode(run(engine, "SELECT c FROM ks.r WHERE k = 1")) == [(0,), (1,), (5,)]
    run(engine, "DELETE v FROM ks.r WHERE k = 1 AND c = 0")
    assert decode(run(engine, "SELECT c, v FROM ks.r WHERE k = 1 AND c = 0")) == [(0, None)]
    run(engine, "DELETE FROM ks.r WHERE k IN (2, 3)")
    assert decode(run(engine, "SELECT count(*) FROM ks.r WHERE k = 2")) == [(0,)]


def test_unset_and_null_values(engine):
    run(engine, "CREATE TABLE ks.u (k int PRIMARY KEY, a int, b int)")
    run(engine, "INSERT INTO ks.u (k, a, b) VALUES (1, 1, 1)")
    run(engine, "INSERT INTO ks.u (k, a, b) VALUES (?, ?, ?)",
        [T.INT.serialize(1), T.UNSET_VALUE, None])
    assert decode(run(engine, "SELECT a, b FROM ks.u WHERE k = 1")) == [(1, None)]
    for value, word in ((T.UNSET_VALUE, "unset"), (None, "null")):
        with pytest.raises(EngineError) as info:
            run(engine, "SELECT * FROM ks.u WHERE k = ?", [value])
        assert info.value.code == 0x2200 and word in info.value.message


def test_named_values_on_a_query(engine):
    run(engine, "CREATE TABLE ks.n (k int, c int, v text, PRIMARY KEY (k, c))")
    run(engine, "INSERT INTO ks.n (k, c, v) VALUES (:k, :c, :v)",
        [T.TEXT.serialize("x"), T.INT.serialize(2), T.INT.serialize(1)], names=["v", "c", "k"])
    result, _ = engine.execute("SELECT v FROM ks.n WHERE k = :k AND c = :c",
                               [T.INT.serialize(2), T.INT.serialize(1)], names=["c", "k"])
    assert decode(result) == [("x",)]


def test_bind_specs_of_special_markers(engine):
    run(engine, "CREATE TABLE ks.b (k int, c int, m map<text, int>, l list<text>, "
                "PRIMARY KEY (k, c))")
    p = engine.prepare("UPDATE ks.b USING TTL ? AND TIMESTAMP ? SET m[?] = ?, l[?] = ? "
                       "WHERE k = ? AND c = ?", None)
    assert [(c.name, c.cql_type.name) for c in p.bind_columns] == [
        ("[ttl]", "int"), ("[timestamp]", "bigint"), ("key(m)", "text"), ("value(m)", "int"),
        ("idx(l)", "int"), ("value(l)", "text"), ("k", "int"), ("c", "int")]
    assert p.pk_indexes == [6] and p.result_columns == []
    p = engine.prepare("SELECT * FROM ks.b WHERE k = ? AND c IN ? LIMIT ?", None)
    assert [(c.name, c.cql_type.name) for c in p.bind_columns] == [
        ("k", "int"), ("in(c)", "list<int>"), ("[limit]", "int")]


def test_counter_batch_rules(engine):
    run(engine, "CREATE TABLE ks.cn (k int PRIMARY KEY, n counter)")
    run(engine, "CREATE TABLE ks.plain (k int PRIMARY KEY, v int)")
    up = "UPDATE ks.cn SET n = n + 1 WHERE k = 1"
    ins = "INSERT INTO ks.plain (k, v) VALUES (1, 1)"
    for query in ("BEGIN BATCH %s APPLY BATCH" % up,
                  "BEGIN COUNTER BATCH %s; %s APPLY BATCH" % (up, ins),
                  "BEGIN UNLOGGED BATCH %s; %s APPLY BATCH" % (up, ins)):
        with pytest.raises(EngineError) as info:
            run(engine, query)
        assert info.value.code == 0x2200
    run(engine, "BEGIN COUNTER BATCH %s; %s APPLY BATCH" % (up, up))
    engine.batch([(up, False, [])], batch_type=2)
    assert decode(run(engine, "SELECT n FROM ks.cn WHERE k = 1")) == [(3,)]


def test_alter_keyspace_changes_replication(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY)")
    result, changed = engine.execute("ALTER KEYSPACE ks WITH replication = "
                                     "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert changed and (result.change_type, result.target, result.keyspace) == (
        "UPDATED", "KEYSPACE", "ks")
    assert len(engine.replicas_for("ks", T.INT.serialize(1))) == 1
    engine.set_node_up(engine.replicas_for("ks", T.INT.serialize(1))[0], False)
    with pytest.raises(EngineError) as info:
        run(engine, "SELECT * FROM ks.t WHERE k = 1")
    assert info.value.fields == {"consistency": 1, "required": 1, "alive": 0}


def test_client_timestamp_and_consistency_rules(engine):
    run(engine, "CREATE TABLE ks.t (k int PRIMARY KEY, v int)")
    engine.execute("INSERT INTO ks.t (k, v) VALUES (1, 1)", timestamp=5000)
    engine.execute("INSERT INTO ks.t (k, v) VALUES (1, 2)", timestamp=4000)
    assert decode(run(engine, "SELECT v, writetime(v) FROM ks.t WHERE k = 1")) == [(1, 5000)]
    p = engine.prepare("UPDATE ks.t SET v = ? WHERE k = 1", None)
    engine.execute_prepared(p.query_id, [T.INT.serialize(3)], timestamp=6000)
    assert decode(run(engine, "SELECT v, writetime(v) FROM ks.t WHERE k = 1")) == [(3, 6000)]
    engine.execute("INSERT INTO ks.t (k, v) VALUES (2, 2)", consistency=0)   # ANY: writes only
    for query, cl in (("SELECT * FROM ks.t WHERE k = 1", 0),
                      ("INSERT INTO ks.t (k, v) VALUES (1, 1)", 8),
                      ("INSERT INTO ks.t (k, v) VALUES (1, 1) IF NOT EXISTS", 9)):
        with pytest.raises(EngineError) as info:
            engine.execute(query, consistency=cl)
        assert info.value.code == 0x2200
    # a SERIAL read is a quorum read
    assert decode(run(engine, "SELECT v FROM ks.t WHERE k = 1", consistency=8)) == [(3,)]


def test_frozen_collection_and_tuple_clustering_order(engine):
    run(engine, "CREATE TABLE ks.f (k int, c frozen<list<int>>, t tuple<int, text>, "
                "PRIMARY KEY (k, c, t))")
    for c in ("[2]", "[1, 1]", "[1]", "[]", "[-5, 3]"):
        for t in ("(2, 'a')", "(1, 'b')", "(1, null)"):
            run(engine, "INSERT INTO ks.f (k, c, t) VALUES (1, %s, %s)" % (c, t))
    rows = decode(run(engine, "SELECT c, t FROM ks.f WHERE k = 1"))
    assert [r[0] for r in rows[::3]] == [[], [-5, 3], [1], [1, 1], [2]]
    assert [r[1] for r in rows[:3]] == [(1, None), (1, "b"), (2, "a")]
    ranged = decode(run(engine, "SELECT c FROM ks.f WHERE k = 1 AND c > [1] AND c <= [2]"))
    assert [r[0] for r in ranged] == [[1, 1]] * 3 + [[2]] * 3


def test_native_aggregates(engine):
    run(engine, "CREATE TABLE ks.a (k int, c int, v int, d double, t text, PRIMARY KEY (k, c))")
    for c in range(5):
        run(engine, "INSERT INTO ks.a (k, c, v, d, t) VALUES (1, %d, %d, %s, '%s')"
            % (c, c * 7 - 10, c / 2.0, "abcde"[4 - c]))
    run(engine, "INSERT INTO ks.a (k, c) VALUES (1, 9)")
    result = run(engine, "SELECT min(v), max(v), sum(v), avg(v), avg(d), min(t), count(v), "
                         "count(*), k FROM ks.a WHERE k = 1")
    assert names(result) == ["system.min(v)", "system.max(v)", "system.sum(v)",
                             "system.avg(v)", "system.avg(d)", "system.min(t)",
                             "system.count(v)", "count", "k"]
    assert decode(result) == [(-10, 18, 20, 4, 1.0, "a", 5, 6, 1)]
    assert decode(run(engine, "SELECT max(v), count(*) FROM ks.a WHERE k = 7")) == [(None, 0)]
    with pytest.raises(EngineError):
        run(engine, "SELECT sum(t) FROM ks.a")
