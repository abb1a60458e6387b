"""SELECT JSON / INSERT JSON in the simulated cluster's engine, with Cassandra 4's JSON
encoding of each type (Cassandra's toJSONString / fromJSONObject)."""

import json

import pytest

from cqlreactor.testing.engine import Engine, NodeInfo
from cqlreactor.testing.engine.errors import EngineError

DOC = {"k": 1, '"Name"': "x", "ts": "2021-03-04 05:06:07.123Z", "d": "2020-02-03",
       "ti": "01:02:03.5", "b": "0x0102", "du": "1h30m", "m": {"1": "one"}, "s": ["b", "a"],
       "l": [1.5, 2], "tu": [1, "t"], "a": {"street": "main", '"Zip"': 5},
       "u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "i": "10.0.0.1", "bo": True, "v": 7}


@pytest.fixture
def engine():
    e = Engine([NodeInfo(0, "127.0.0.1")])
    e.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    e.execute('CREATE TYPE ks.addr (street text, "Zip" int)')
    e.execute('CREATE TABLE ks.t (k int PRIMARY KEY, "Name" text, ts timestamp, d date, '
              'ti time, b blob, du duration, de decimal, m map<int, text>, s set<text>, '
              'l list<double>, tu frozen<tuple<int, text>>, a frozen<addr>, u uuid, i inet, '
              'bo boolean, v varint)')
    return e


def _insert(engine, doc, extra=""):
    text = doc if isinstance(doc, str) else json.dumps(doc)
    engine.execute("INSERT INTO ks.t JSON '%s'%s" % (text.replace("'", "''"), extra))


def _select(engine, query="SELECT JSON * FROM ks.t WHERE k = 1"):
    result, _ = engine.execute(query)
    assert [c.name for c in result.columns] == ["[json]"]
    return [row[0].decode("utf-8") for row in result.rows]


def test_every_type_round_trips_in_cassandra_encoding(engine):
    _insert(engine, dict(DOC))
    engine.execute("UPDATE ks.t SET de = 1.50 WHERE k = 1")
    (text,) = _select(engine)
    assert text == (
        '{"k": 1, "\\"Name\\"": "x", "a": {"street": "main", "\\"Zip\\"": 5}, '
        '"b": "0x0102", "bo": true, "d": "2020-02-03", "de": 1.50, "du": "1h30m", '
        '"i": "10.0.0.1", "l": [1.5, 2.0], "m": {"1": "one"}, "s": ["a", "b"], '
        '"ti": "01:02:03.500000000", "ts": "2021-03-04 05:06:07.123Z", "tu": [1, "t"], '
        '"u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "v": 7}')


def test_selected_columns_and_aliases(engine):
    _insert(engine, {"k": 1, '"Name"': "n"})
    assert _select(engine, 'SELECT JSON k, "Name" AS alias FROM ks.t') == \
        ['{"k": 1, "alias": "n"}']


def test_decimal_keeps_precision_and_default_unset(engine):
    _insert(engine, '{"k": 1, "de": 3.14159265358979323846264338327950288, "bo": false}')
    _insert(engine, {"k": 1, "de": "2.5"}, " DEFAULT UNSET")      # bo stays false
    assert json.loads(_select(engine, "SELECT JSON de, bo FROM ks.t")[0]) == \
        {"de": 2.5, "bo": False}
    _insert(engine, {"k": 1, "de": 1})                              # DEFAULT NULL: bo null
    assert json.loads(_select(engine, "SELECT JSON de, bo FROM ks.t")[0]) == \
        {"de": 1, "bo": None}


def test_prepared_insert_json_with_a_bind_marker(engine):
    prepared = engine.prepare("INSERT INTO ks.t JSON ?")
    assert [c.name for c in prepared.bind_columns] == ["[json]"]
    engine.execute_prepared(prepared.query_id, [json.dumps({"k": 2, "v": 3}).encode()])
    assert _select(engine, "SELECT JSON k, v FROM ks.t WHERE k = 2") == ['{"k": 2, "v": 3}']


@pytest.mark.parametrize("doc, message", [
    ('{"k": 1, "nope": 2}', "JSON values map contains unrecognized column: nope"),
    ('[1, 2]', "Could not decode JSON string as a map"),
    ('{"k": 1, "b": "0102"}', "missing 0x prefix"),
    ('{"k": 1.5}', "Error decoding JSON value for k"),
])
def test_bad_documents(engine, doc, message):
    with pytest.raises(EngineError) as info:
        _insert(engine, doc)
    assert message in info.value.message


# --- toJson() / fromJson(): the same encoding, one value at a time -----------------------------

def _one(engine, query):
    result, _ = engine.execute(query)
    return [None if cell is None else cell.decode("utf-8") for cell in result.rows[0]], \
        [c.name for c in result.columns]


def test_to_json_renders_each_column_as_select_json_does(engine):
    _insert(engine, dict(DOC))
    engine.execute("UPDATE ks.t SET de = 1.50 WHERE k = 1")
    (whole,) = _select(engine)
    names = ["k", '"Name"', "a", "b", "bo", "d", "de", "du", "i", "l", "m", "s", "ti", "ts",
             "tu", "u", "v"]
    values, columns = _one(engine, "SELECT %s FROM ks.t WHERE k = 1" % ", ".join(
        "toJson(%s)" % n for n in names))
    assert columns[:2] == ["system.tojson(k)", "system.tojson(Name)"]
    # value for value, the text SELECT JSON wrote for that column (one renderer)
    assert "{%s}" % ", ".join("%s: %s" % (json.dumps(n), v)
                              for n, v in zip(names, values)) == whole


def test_to_json_of_null_is_the_text_null_and_aliases_name_it(engine):
    _insert(engine, {"k": 1})
    assert _one(engine, "SELECT toJson(v) AS j, toJson(k) FROM ks.t WHERE k = 1") == (
        ["null", "1"], ["j", "system.tojson(k)"])


def test_from_json_in_insert_update_and_where(engine):
    engine.execute("INSERT INTO ks.t (k, ts, b, m, a, de, u) VALUES (fromJson('1'), "
                   "fromJson('\"2021-03-04 05:06:07.123Z\"'), fromJson('\"0xcafe\"'), "
                   "fromJson('{\"2\": \"two\"}'), fromJson('{\"street\": \"s\", \"\\\"Zip\\\"\": 9}'), "
                   "fromJson('3.14159265358979323846'), "
                   "fromJson('\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\"'))")
    engine.execute("UPDATE ks.t SET v = fromJson('123456789012345678901234567890'), "
                   "s = fromJson('[\"y\", \"x\"]') WHERE k = fromJson('1')")
    (text,) = _select(engine, "SELECT JSON k, ts, b, m, a, de, u, v, s FROM ks.t "
                      "WHERE k = fromJson('1')")
    assert text == ('{"k": 1, "ts": "2021-03-04 05:06:07.123Z", "b": "0xcafe", '
                    '"m": {"2": "two"}, "a": {"street": "s", "\\"Zip\\"": 9}, '
                    '"de": 3.14159265358979323846, '
                    '"u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", '
                    '"v": 123456789012345678901234567890, "s": ["x", "y"]}')


def test_from_json_with_a_bind_marker_is_typed_text(engine):
    engine.execute("INSERT INTO ks.t (k) VALUES (4)")
    prepared = engine.prepare("UPDATE ks.t SET l = fromJson(?) WHERE k = fromJson(?)")
    assert [(c.name, c.cql_type.name) for c in prepared.bind_columns] == [
        ("arg0(system.fromjson)", "text"), ("arg0(system.fromjson)", "text")]
    engine.execute_prepared(prepared.query_id, [b"[1.5, 2]", b"4"])
    assert _select(engine, "SELECT JSON k, l FROM ks.t WHERE k = 4") == \
        ['{"k": 4, "l": [1.5, 2.0]}']
    engine.execute_prepared(prepared.query_id, [None, b"4"])      # fromJson(null) is null
    assert _select(engine, "SELECT JSON l FROM ks.t WHERE k = 4") == ['{"l": null}']


@pytest.mark.parametrize("query, message", [
    ("INSERT INTO ks.t (k) VALUES (fromJson('{x'))", "Could not decode JSON string '{x'"),
    ("INSERT INTO ks.t (k, b) VALUES (1, fromJson('\"cafe\"'))", "missing 0x prefix"),
    ("INSERT INTO ks.t (k) VALUES (fromJson(1))", "cannot be passed as argument 0"),
    ("INSERT INTO ks.t (k) VALUES (fromJson('1', '2'))", "1 required but 2 provided"),
    ("SELECT fromJson(v) FROM ks.t", "cannot be used in the selection clause"),
    ("SELECT toJson(k, v) FROM ks.t", "1 required but 2 provided"),
])
def test_json_function_errors_are_invalid_requests(engine, query, message):
    with pytest.raises(EngineError) as info:
        engine.execute(query)
    assert info.value.code == 0x2200 and message in info.value.message
