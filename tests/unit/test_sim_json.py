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
