"""Server-side DESCRIBE of the simulated cluster (Cassandra 4.0+): the result columns, and
create statements that re-create the schema (run them on a fresh engine, DESCRIBE again, get
the same text)."""

import pytest

from cqlreactor.testing.engine import Engine, NodeInfo
from cqlreactor.testing.engine.errors import EngineError

SCHEMA = [
    "CREATE KEYSPACE app WITH replication = {'class': 'NetworkTopologyStrategy', "
    "'datacenter1': 3} AND durable_writes = false",
    "CREATE TYPE app.address (street text, \"Zip\" int, tags frozen<set<text>>)",
    "CREATE TABLE app.users (id uuid PRIMARY KEY, name text, home frozen<address>, "
    "scores map<text, int>) WITH comment = 'people' AND default_time_to_live = 60",
    "CREATE TABLE app.events (day date, at timestamp, seq int, kind text static, "
    "body blob, PRIMARY KEY ((day, kind2), at, seq)) WITH CLUSTERING ORDER BY (at DESC, seq ASC)"
    .replace(", kind2", ""),
    "CREATE TABLE app.\"Quoted\" (\"Key\" int, c int, v duration, PRIMARY KEY (\"Key\", c))",
]


def _engine(statements=SCHEMA):
    e = Engine([NodeInfo(0, "127.0.0.1")])
    for q in statements:
        e.execute(q)
    return e


def _rows(engine, query, keyspace=None):
    result, _ = engine.execute(query, keyspace=keyspace)
    names = [c.name for c in result.columns]
    return names, [tuple(v.decode("utf-8") for v in row) for row in result.rows]


def test_listings_have_cassandra_columns():
    e = _engine()
    names, rows = _rows(e, "DESCRIBE KEYSPACES")
    assert names == ["keyspace_name", "type", "name"]
    assert ("app", "keyspace", "app") in rows and ("system", "keyspace", "system") in rows
    names, rows = _rows(e, "DESC TABLES", keyspace="app")
    assert rows == [("app", "table", "Quoted"), ("app", "table", "events"),
                    ("app", "table", "users")]
    _, rows = _rows(e, "DESCRIBE TYPES", keyspace="app")
    assert rows == [("app", "type", "address")]
    assert _rows(e, "DESCRIBE FUNCTIONS")[1] == []


def test_elements_round_trip_on_a_fresh_cluster():
    first = _engine()
    names, rows = _rows(first, "DESCRIBE KEYSPACE app")
    assert names == ["keyspace_name", "type", "name", "create_statement"]
    assert [(r[1], r[2]) for r in rows] == [("keyspace", "app"), ("type", "address"),
                                           ("table", "Quoted"), ("table", "events"),
                                           ("table", "users")]
    second = _engine([r[3] for r in rows])
    assert _rows(second, "DESCRIBE KEYSPACE app")[1] == rows
    assert _rows(second, "DESCRIBE SCHEMA")[1] == rows       # user keyspaces only


def test_table_layout_as_cassandra_prints_it():
    _, rows = _rows(_engine(), "DESCRIBE TABLE app.events")
    text = rows[0][3]
    assert text.startswith("CREATE TABLE app.events (\n    day date,\n    at timestamp,\n"
                           "    seq int,\n    body blob,\n    kind text static,\n"
                           "    PRIMARY KEY (day, at, seq)\n"
                           ") WITH CLUSTERING ORDER BY (at DESC, seq ASC)\n"
                           "    AND additional_write_policy = '99p'\n")
    assert text.endswith("    AND speculative_retry = '99p';")
    _, rows = _rows(_engine(), "DESCRIBE KEYSPACE app")
    assert rows[0][3] == ("CREATE KEYSPACE app WITH replication = {'class': "
                          "'org.apache.cassandra.locator.NetworkTopologyStrategy', "
                          "'datacenter1': '3'}  AND durable_writes = false;")


def test_only_keyspace_bare_names_and_full_schema():
    e = _engine()
    assert len(_rows(e, "DESCRIBE ONLY KEYSPACE app")[1]) == 1
    assert _rows(e, "DESC app.address")[1][0][1] == "type"
    assert _rows(e, "DESC users", keyspace="app")[1][0][2] == "users"
    assert len(_rows(e, "DESC app")[1]) == 5
    full = [r[0] for r in _rows(e, "DESCRIBE FULL SCHEMA")[1]]
    assert "system_schema" in full and "app" in full


@pytest.mark.parametrize("query, message", [
    ("DESCRIBE TABLE app.nope", "Table 'nope' not found in keyspace 'app'"),
    ("DESCRIBE KEYSPACE nope", "'nope' not found in keyspaces"),
    ("DESCRIBE TABLE nope", "No keyspace specified and no current keyspace"),
    ("DESCRIBE CLUSTER", "DESCRIBE CLUSTER is not supported"),
    ("DESCRIBE KEYSPACE app WITH INTERNALS", "WITH INTERNALS is not supported"),
])
def test_clear_errors(query, message):
    with pytest.raises(EngineError) as info:
        _engine().execute(query)
    assert message in info.value.message
