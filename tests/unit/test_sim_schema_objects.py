"""The simulated cluster's indexes, materialized views, user-defined functions and
aggregates (issue 11), on the engine alone with an injected clock: their system_schema rows,
the SCHEMA_CHANGE each answers with, Cassandra's errors, per-node propagation, an index
serving an EQ without ALLOW FILTERING and a view's rows derived from its base table."""

import pytest

from cqlreactor.testing.engine import EngineError

from _engine_helpers import Clock, three_node_engine_with_ks


@pytest.fixture
def sim():
    clock = Clock(1000.0)
    engine = three_node_engine_with_ks(clock)
    engine.execute("CREATE TABLE ks.t (k int, c int, v int, m map<text, int>, "
                   "PRIMARY KEY (k, c))", node=0)
    clock.now += 1
    return engine, clock


def _run(engine, query, node=0):
    result, _ = engine.execute(query, node=node)
    return result


def _error(engine, query, node=0):
    with pytest.raises(EngineError) as info:
        engine.execute(query, node=node)
    return info.value


def _text_rows(engine, query, node=0):
    return [tuple(bytes(v).decode() if v is not None else None for v in row)
            for row in _run(engine, query, node).rows]


def test_index_rows_events_errors_and_filtering(sim):
    engine, clock = sim
    assert "ALLOW FILTERING" in _error(engine, "SELECT * FROM ks.t WHERE v = 1").message
    change = _run(engine, "CREATE INDEX ON ks.t (v)")
    assert (change.change_type, change.target, change.keyspace, change.name) == (
        "UPDATED", "TABLE", "ks", "t")
    _run(engine, "CREATE INDEX mk ON ks.t (keys(m))")
    assert _text_rows(engine, "SELECT index_name, kind FROM system_schema.indexes "
                              "WHERE keyspace_name = 'ks'") == [("mk", "COMPOSITES"),
                                                               ("t_v_idx", "COMPOSITES")]
    error = _error(engine, "CREATE INDEX t_v_idx ON ks.t (c)")
    assert (error.code, error.message) == (0x2200, "Index 't_v_idx' already exists")
    assert type(_run(engine, "CREATE INDEX IF NOT EXISTS t_v_idx ON ks.t (c)")).__name__ \
        == "Void"
    assert "duplicate of existing index" in _error(engine, "CREATE INDEX v2 ON ks.t (v)").message
    assert "doesn't exist" in _error(engine, "CREATE INDEX ON ks.nope (v)").message
    assert "Column 'x' doesn't exist" in _error(engine, "CREATE INDEX ON ks.t (x)").message
    _run(engine, "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 7)")
    assert len(_run(engine, "SELECT * FROM ks.t WHERE v = 7").rows) == 1
    # a node whose schema lags has no index yet: it refuses as Cassandra does without one
    assert "ALLOW FILTERING" in _error(engine, "SELECT * FROM ks.t WHERE v = 7",
                                       node=1).message
    clock.now += 1
    assert len(_run(engine, "SELECT * FROM ks.t WHERE v = 7", node=1).rows) == 1
    assert _run(engine, "DROP INDEX ks.mk").name == "t"
    assert "Index 'ks.mk' doesn't exist" in _error(engine, "DROP INDEX ks.mk").message
    assert type(_run(engine, "DROP INDEX IF EXISTS ks.mk")).__name__ == "Void"


def test_custom_and_sai_indexes(sim):
    engine, _clock = sim
    _run(engine, "CREATE CUSTOM INDEX ci ON ks.t (v) USING 'org.example.Idx' "
                 "WITH OPTIONS = {'mode': 'CONTAINS'}")
    rows = _run(engine, "SELECT kind, options FROM system_schema.indexes WHERE "
                        "keyspace_name = 'ks'").rows
    assert bytes(rows[0][0]) == b"CUSTOM" and b"org.example.Idx" in bytes(rows[0][1])
    # SAI is Cassandra 5.0's: a 4.0 cluster cannot find the class
    assert "custom indexer class" in _error(engine, "CREATE INDEX s ON ks.t (c) "
                                                    "USING 'sai'").message
    engine.set_release("5.0.2")
    _run(engine, "CREATE INDEX s ON ks.t (c) USING 'sai'")
    assert b"StorageAttachedIndex" in bytes(_run(
        engine, "SELECT options FROM system_schema.indexes WHERE keyspace_name = 'ks' "
                "AND table_name = 't' AND index_name = 's'").rows[0][0])


def test_views_rows_events_and_errors(sim):
    engine, clock = sim
    error = _error(engine, "CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.nope "
                           "WHERE k IS NOT NULL PRIMARY KEY (k)")
    assert (error.code, error.message) == (0x2200, "Base table 'nope' doesn't exist")
    assert "must be restricted" in _error(
        engine, "CREATE MATERIALIZED VIEW ks.mv AS SELECT * FROM ks.t WHERE v IS NOT NULL "
                "PRIMARY KEY (v, k, c)").message
    change = _run(engine, "CREATE MATERIALIZED VIEW ks.mv AS SELECT k, c, v FROM ks.t "
                          "WHERE v IS NOT NULL AND k IS NOT NULL AND c IS NOT NULL "
                          "PRIMARY KEY (v, k, c)")
    assert (change.change_type, change.target, change.name) == ("CREATED", "TABLE", "mv")
    assert engine.take_warnings()    # Cassandra 4 warns: views are experimental
    assert _text_rows(engine, "SELECT view_name, base_table_name, where_clause FROM "
                              "system_schema.views WHERE keyspace_name = 'ks'") == [
        ("mv", "t", "v IS NOT NULL AND k IS NOT NULL AND c IS NOT NULL")]
    assert [r[0] for r in _text_rows(engine, "SELECT column_name FROM system_schema.columns "
                                             "WHERE keyspace_name = 'ks' AND table_name = 'mv'")
            ] == ["c", "k", "v"]
    _run(engine, "INSERT INTO ks.t (k, c, v) VALUES (1, 2, 30)")
    _run(engine, "INSERT INTO ks.t (k, c) VALUES (5, 5)")        # v null: not in the view
    assert [tuple(bytes(x)[-1] for x in row) for row in _run(
        engine, "SELECT v, k, c FROM ks.mv").rows] == [(30, 1, 2)]
    assert "unconfigured table mv" in _error(engine, "SELECT * FROM ks.mv", node=2).message
    assert "Cannot directly modify" in _error(
        engine, "INSERT INTO ks.mv (v, k, c) VALUES (1, 1, 1)").message
    assert "materialized views still depend" in _error(engine, "DROP TABLE ks.t").message
    assert _run(engine, "ALTER MATERIALIZED VIEW ks.mv WITH comment = 'x'").change_type \
        == "UPDATED"
    assert _run(engine, "DROP MATERIALIZED VIEW ks.mv").change_type == "DROPPED"
    assert "doesn't exist" in _error(engine, "DROP MATERIALIZED VIEW ks.mv").message
    clock.now += 1
    _run(engine, "DROP TABLE ks.t")


def test_functions_and_aggregates(sim):
    engine, _clock = sim
    change = _run(engine, "CREATE FUNCTION ks.plus(s int, v int) CALLED ON NULL INPUT "
                          "RETURNS int LANGUAGE java AS 'return s + v;'")
    assert (change.change_type, change.target, change.name, change.arg_types) == (
        "CREATED", "FUNCTION", "plus", ["int", "int"])
    _run(engine, "CREATE FUNCTION ks.txt(s int) RETURNS NULL ON NULL INPUT RETURNS text "
                 "LANGUAGE java AS $$ return String.valueOf(s); $$")
    assert _error(engine, "CREATE FUNCTION ks.txt(s int) RETURNS NULL ON NULL INPUT RETURNS "
                          "text LANGUAGE java AS 'x'").code == 0x2400
    assert _run(engine, "CREATE OR REPLACE FUNCTION ks.txt(s int) RETURNS NULL ON NULL INPUT "
                        "RETURNS text LANGUAGE java AS 'return \"\";'").change_type == "UPDATED"
    assert "does not exist" in _error(engine, "CREATE AGGREGATE ks.a(int) SFUNC nope "
                                              "STYPE int").message
    change = _run(engine, "CREATE AGGREGATE ks.total(int) SFUNC plus STYPE int "
                          "FINALFUNC txt INITCOND 0")
    assert (change.target, change.arg_types) == ("AGGREGATE", ["int"])
    assert _text_rows(engine, "SELECT aggregate_name, final_func, initcond, return_type, "
                              "state_func FROM system_schema.aggregates") == [
        ("total", "txt", "0", "text", "plus")]
    rows = _text_rows(engine, "SELECT function_name, language, body FROM "
                              "system_schema.functions WHERE keyspace_name = 'ks'")
    assert ("plus", "java", "return s + v;") in rows
    error = _error(engine, "SELECT plus(k, v) FROM ks.t")
    assert "cannot run it" in error.message and "user-defined function" in error.message
    assert "still referenced by aggregate" in _error(engine, "DROP FUNCTION ks.plus").message
    assert _run(engine, "DROP AGGREGATE ks.total").arg_types == ["int"]
    assert _run(engine, "DROP FUNCTION ks.plus(int, int)").change_type == "DROPPED"
    assert "Unconfigured function" in _error(engine, "DROP FUNCTION ks.plus").message
