"""Garbage and fuzzed statements never crash the simulated cluster's CQL engine: every failure
is an EngineError with a protocol error code (0x2000 SyntaxError, 0x2200 Invalid, ...)."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

from cqlreactor.core import types as T  # noqa: E402
from cqlreactor.testing.engine.errors import EngineError  # noqa: E402
from cqlreactor.testing.engine import Engine, NodeInfo  # noqa: E402

KNOWN_CODES = {0x0000, 0x000A, 0x1000, 0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500}

SEED = [
    "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "CREATE TYPE ks.u (a int, b text)",
    "CREATE TABLE ks.t (k int, c text, v list<int>, m map<text, int>, u frozen<u>, "
    "s int static, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)",
    "INSERT INTO ks.t (k, c, v, m, u, s) VALUES (1, 'a', [1, 2], {'x': 1}, {a: 1, b: 'q'}, 3)",
]

STATEMENTS = [
    "SELECT * FROM ks.t WHERE k = 1",
    "SELECT k, c, writetime(v) FROM ks.t WHERE k IN (1, 2) AND c > 'a' ORDER BY c ASC LIMIT 3",
    "SELECT count(*) FROM ks.t WHERE k = ? AND c = ?",
    "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?) IF NOT EXISTS USING TTL 5",
    "UPDATE ks.t USING TIMESTAMP 5 SET v = v + [3], m['y'] = 2 WHERE k = 1 AND c = 'b' IF s = 3",
    "DELETE v[0], m FROM ks.t WHERE k = 2 AND c = 'c' IF EXISTS",
    "BEGIN BATCH INSERT INTO ks.t (k, c) VALUES (1, 'z'); DELETE FROM ks.t WHERE k = 3 "
    "APPLY BATCH",
    "SELECT DISTINCT k, s FROM ks.t",
    "ALTER TABLE ks.t ADD w int",
    "CREATE TABLE IF NOT EXISTS ks.x (a int, b int, PRIMARY KEY ((a, b)))",
    "DROP TABLE IF EXISTS ks.x",
    "TRUNCATE ks.t",
    "SELECT * FROM system_schema.columns WHERE keyspace_name = 'ks'",
    "USE ks",
]

VOCAB = ["SELECT", "INSERT", "INTO", "UPDATE", "DELETE", "FROM", "WHERE", "AND", "IN", "SET",
         "VALUES", "IF", "NOT", "EXISTS", "CREATE", "TABLE", "KEYSPACE", "TYPE", "DROP",
         "PRIMARY", "KEY", "WITH", "USING", "TTL", "TIMESTAMP", "LIMIT", "ORDER", "BY", "BEGIN",
         "BATCH", "APPLY", "ks", "t", "k", "c", "v", "m", "u", "ks.t", "*", "(", ")", "[", "]",
         "{", "}", ",", ";", "=", "<", ">=", "?", ":n", "1", "-1", "1.5", "'x'", "0x01",
         "null", "true", "frozen<", "list<int>", ">", "COUNT(*)", "token(k)", "ALLOW",
         "FILTERING", "DISTINCT", "\"Q\"", "CLUSTERING", "STATIC", "+", "-", ".", "$$x$$",
         "a8098c1a-f86e-11da-bd1a-00112444be1e", "now()", "IF EXISTS"]


def fresh_engine():
    e = Engine([NodeInfo(i, "127.0.0.%d" % (i + 1)) for i in range(2)], clock=lambda: 1e9)
    for q in SEED:
        e.execute(q)
    return e


ENGINE = fresh_engine()


def attempt(engine, query, values=None, page_size=None, paging_state=None):
    try:
        engine.execute(query, values, keyspace="ks", page_size=page_size,
                       paging_state=paging_state)
    except EngineError as exc:
        assert exc.code in KNOWN_CODES
        assert exc.code != 0x0000, "internal failure on %r: %s" % (query, exc.message)
        assert isinstance(exc.message, str) and exc.message


@pytest.mark.parametrize("query", [
    "", " ", ";", "SELECT", "SELECT * FROM", "SELEC * FROM ks.t", "'", "\"", "/*", "$$",
    "SELECT * FROM ks.t WHERE", "INSERT INTO ks.t (k) VALUES", "CREATE TABLE ks.y ()",
    "CREATE TABLE ks.y (a int)", "CREATE TABLE ks.y (a int PRIMARY KEY, PRIMARY KEY (a))",
    "CREATE TABLE ks.y (a list<int> PRIMARY KEY)", "CREATE TABLE ks.y (a int PRIMARY KEY, "
    "b list<list<int>>)", "CREATE TABLE ks.y (a int PRIMARY KEY, b nosuchtype)",
    "CREATE KEYSPACE z WITH replication = {'class': 'Nope'}", "CREATE KEYSPACE z WITH x = 1",
    "CREATE INDEX ON ks.t (nosuchcolumn)", "CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.t",
    "GRANT ALL ON ks.t TO bob", "SELECT JSON * FROM ks.nope", "INSERT INTO ks.t JSON '{}'",
    "SELECT * FROM ks.t WHERE k = 'text'", "SELECT * FROM ks.t WHERE c = 1",
    "SELECT * FROM ks.t WHERE k = 1 ORDER BY v", "UPDATE ks.t SET k = 1 WHERE k = 1",
    "INSERT INTO ks.t (k, c, nope) VALUES (1, 'a', 1)", "SELECT sum(c) FROM ks.t", "SELECT nofunc(k) FROM ks.t",
    "SELECT * FROM ks.t LIMIT 0", "SELECT * FROM ks.t LIMIT -1",
    "INSERT INTO ks.t (k, c) VALUES (1, 'a') USING TTL -1", "DROP KEYSPACE system",
    "SELECT * FROM ks.t WHERE k = 1 AND c = 'a' AND c > 'b'", "x" * 10000,
    "SELECT " + "(" * 2000, "INSERT INTO ks.t (k, c, v) VALUES (1, 'a', " + "[" * 3000 + ")",
    "\x00\x01\x02", "SELECT * FROM ks.t WHERE k = 99999999999999999999",
    "INSERT INTO ks.t (k, c) VALUES (1, 'a'); INSERT INTO ks.t (k, c) VALUES (2, 'b')",
    "SELECT * FROM ks.t WHERE token(k) > 5 AND k = 1", "DELETE FROM ks.t WHERE c = 'a'",
    "SELECT * FROM system.local WHERE key = ?", "DESCRIBE TABLE ks.nope",
])
def test_garbage_statements_answer_with_engine_errors(query):
    with pytest.raises(EngineError) as info:
        ENGINE.execute(query, keyspace="ks")
    assert info.value.code in (0x2000, 0x2100, 0x2200, 0x2300, 0x2400)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    attempt(ENGINE, text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=25))
def test_random_token_soup_never_crashes(words):
    attempt(fresh_engine() if "DROP" in words or "TRUNCATE" in words else ENGINE,
            " ".join(words))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(STATEMENTS), st.data())
def test_mutated_statements_never_crash(statement, data):
    text = statement
    for _ in range(data.draw(st.integers(0, 3))):
        op = data.draw(st.sampled_from(["delete", "insert", "swap", "dup"]))
        if not text:
            break
        i = data.draw(st.integers(0, len(text) - 1))
        if op == "delete":
            j = data.draw(st.integers(i, min(len(text), i + 8)))
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + data.draw(st.sampled_from(VOCAB + ["'", "\"", ":", "-"])) + \
                text[i:]
        elif op == "swap":
            text = text[:i] + data.draw(st.characters()) + text[i + 1:]
        else:
            text = text[:i] + text[i:i + 10] + text[i:]
    markers = text.count("?")
    values = data.draw(st.lists(st.one_of(st.none(), st.binary(max_size=12)),
                                min_size=markers, max_size=markers))
    attempt(fresh_engine(), text, values)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(1, 5))
def test_random_paging_states_never_crash(state, page_size):
    attempt(ENGINE, "SELECT * FROM ks.t", page_size=page_size, paging_state=state)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=10)), min_size=3, max_size=3))
def test_random_bound_bytes_never_crash(values):
    e = ENGINE
    attempt(e, "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)", values)
    attempt(e, "SELECT * FROM ks.t WHERE k = ? AND c = ? AND v CONTAINS ? ALLOW FILTERING",
            values)
    attempt(e, "UPDATE ks.t SET m = m + ? WHERE k = ? AND c = ?", values)


def test_engine_still_answers_after_the_fuzzing():
    rows, _ = ENGINE.execute("SELECT k, c FROM ks.t WHERE k = 1 AND c = 'a'")
    assert [tuple(r) for r in rows.rows] == [(T.INT.serialize(1), b"a")]


def test_deeply_nested_types_and_values_are_refused_not_crashed():
    e = fresh_engine()
    deep = "int"
    for _ in range(400):
        deep = "frozen<list<%s>>" % deep
    with pytest.raises(EngineError) as info:
        e.execute("CREATE TABLE ks.deep (k int PRIMARY KEY, v %s)" % deep)
    assert info.value.code in (0x2000, 0x2200)
    value = "1"
    for _ in range(400):
        value = "[%s]" % value
    with pytest.raises(EngineError) as info:
        e.execute("INSERT INTO ks.t (k, c, v) VALUES (1, 'a', %s)" % value)
    assert info.value.code in (0x2000, 0x2200)
