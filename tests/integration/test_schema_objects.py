"""Secondary indexes, materialized views, user-defined functions and aggregates created with
CQL on the simulated cluster (issue 11): the client's metadata model reads them as
cassandra-driver does (cassandra-driver, reading the same cluster, is the oracle: same names,
kinds, options and ``as_cql_query()`` / ``export_as_string()`` text, whitespace aside), and the
export re-creates them on a fresh simulated cluster, on protocol v4 and v5.
"""

import re
import uuid

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import InvalidRequest

pytest.importorskip("cqlreactor.testing.engine")
cassandra_cluster = pytest.importorskip("cassandra.cluster")

SCHEMA = [
    "CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', "
    "'replication_factor': 1}}",
    "CREATE TABLE {ks}.users (id int, day int, name text, email text, tags map<text, int>, "
    "PRIMARY KEY (id, day))",
    "CREATE INDEX users_name ON {ks}.users (name)",
    "CREATE INDEX ON {ks}.users (keys(tags))",
    "CREATE CUSTOM INDEX users_email ON {ks}.users (email) USING 'org.example.MyIndex' "
    "WITH OPTIONS = {{'mode': 'CONTAINS'}}",
    "CREATE MATERIALIZED VIEW {ks}.users_by_name AS SELECT id, day, name, email "
    "FROM {ks}.users WHERE name IS NOT NULL AND id IS NOT NULL AND day IS NOT NULL "
    "PRIMARY KEY (name, id, day) WITH CLUSTERING ORDER BY (id DESC, day ASC) "
    "AND comment = 'by name'",
    "CREATE FUNCTION {ks}.plus(s int, v int) CALLED ON NULL INPUT RETURNS int "
    "LANGUAGE java AS 'return s + v;'",
    "CREATE FUNCTION {ks}.as_text(s int) RETURNS NULL ON NULL INPUT RETURNS text "
    "LANGUAGE java AS $$ return String.valueOf(s); $$",
    "CREATE AGGREGATE {ks}.total(int) SFUNC plus STYPE int FINALFUNC as_text INITCOND 0",
]


def _normalized(cql):
    return re.sub(r"\s+", " ", cql).strip()


def _statements(cql):
    return [s for s in (part.strip() for part in re.split(r";\s*\n", cql.strip() + "\n"))
            if s]


def _create(session, keyspace):
    for statement in SCHEMA:
        session.execute(statement.format(ks=keyspace))


@pytest.mark.parametrize("protocol_version", [4, 5])
def test_both_drivers_read_indexes_views_functions_aggregates(cql_cluster, protocol_version):
    keyspace = "objects_%s" % uuid.uuid4().hex[:8]
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      protocol_version=protocol_version)
    theirs = None
    try:
        _create(cluster.connect(), keyspace)
        ours = cluster.metadata.keyspaces[keyspace]
        theirs = cassandra_cluster.Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                                           protocol_version=protocol_version)
        theirs.connect()
        expected = theirs.metadata.keyspaces[keyspace]
        assert sorted(ours.indexes) == sorted(expected.indexes) == [
            "users_email", "users_name", "users_tags_idx"]
        for name, index in expected.indexes.items():
            mine = ours.indexes[name]
            assert (mine.kind, mine.index_options, mine.table_name) == (
                index.kind, index.index_options, index.table_name)
            assert mine.as_cql_query() == index.as_cql_query()
        assert sorted(ours.views) == sorted(expected.views) == ["users_by_name"]
        view, their_view = ours.views["users_by_name"], expected.views["users_by_name"]
        assert view.base_table_name == their_view.base_table_name == "users"
        assert view.where_clause == their_view.where_clause
        assert [c.name for c in view.partition_key] == ["name"]
        assert _normalized(view.as_cql_query()) == _normalized(their_view.as_cql_query())
        assert sorted(ours.functions) == sorted(expected.functions)
        for signature, function in expected.functions.items():
            mine = ours.functions[signature]
            assert (mine.return_type, mine.language, mine.called_on_null_input) == (
                function.return_type, function.language, function.called_on_null_input)
            assert _normalized(mine.as_cql_query()) == _normalized(function.as_cql_query())
        assert sorted(ours.aggregates) == sorted(expected.aggregates) == ["total(int)"]
        aggregate = ours.aggregates["total(int)"]
        assert (aggregate.state_func, aggregate.final_func, aggregate.initial_condition) == (
            "plus", "as_text", "0")
        assert _normalized(aggregate.as_cql_query()) == _normalized(
            expected.aggregates["total(int)"].as_cql_query())
        assert _normalized(ours.export_as_string()) == _normalized(
            expected.export_as_string())
    finally:
        if theirs is not None:
            theirs.shutdown()
        cluster.shutdown()


def test_the_export_recreates_them_on_a_fresh_cluster(cql_cluster, cql_cluster_factory):
    keyspace = "objects_rt_%s" % uuid.uuid4().hex[:8]
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    fresh_sim = cql_cluster_factory(nodes=1, schema_delay=0)
    fresh = Cluster(fresh_sim.contact_points, port=fresh_sim.port)
    try:
        _create(cluster.connect(), keyspace)
        exported = cluster.metadata.keyspaces[keyspace].export_as_string()
        assert "CREATE MATERIALIZED VIEW" in exported and "CREATE AGGREGATE" in exported
        session = fresh.connect()
        for statement in _statements(exported):
            session.execute(statement)
        again = fresh.metadata.keyspaces[keyspace]
        assert again.export_as_string() == exported
        assert sorted(again.indexes) == sorted(cluster.metadata.keyspaces[keyspace].indexes)
    finally:
        fresh.shutdown()
        cluster.shutdown()


def test_index_and_view_queries_on_every_reactor(cql_cluster, cql_reactor):
    keyspace = "objects_q_%s" % uuid.uuid4().hex[:8]
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      connection_class=cql_reactor)
    try:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                        "'replication_factor': 3}" % keyspace)
        session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int, w int)" % keyspace)
        session.execute("INSERT INTO %s.t (k, v, w) VALUES (1, 10, 100)" % keyspace)
        session.execute("INSERT INTO %s.t (k, v, w) VALUES (2, 20, 200)" % keyspace)
        with pytest.raises(InvalidRequest) as info:
            session.execute("SELECT k FROM %s.t WHERE v = 20" % keyspace)
        assert "ALLOW FILTERING" in str(info.value)
        session.execute("CREATE INDEX ON %s.t (v)" % keyspace)
        assert "t_v_idx" in cluster.metadata.keyspaces[keyspace].indexes
        assert [r.k for r in session.execute("SELECT k FROM %s.t WHERE v = 20" % keyspace)] \
            == [2]
        with pytest.raises(InvalidRequest) as info:
            session.execute("CREATE INDEX t_v_idx ON %s.t (w)" % keyspace)
        assert "Index 't_v_idx' already exists" in str(info.value)
        with pytest.raises(InvalidRequest) as info:
            session.execute("CREATE MATERIALIZED VIEW %s.mv AS SELECT * FROM %s.nope WHERE k "
                            "IS NOT NULL PRIMARY KEY (k)" % (keyspace, keyspace))
        assert "Base table 'nope' doesn't exist" in str(info.value)
        future = session.execute_async(
            "CREATE MATERIALIZED VIEW %s.by_w AS SELECT * FROM %s.t WHERE w IS NOT NULL AND "
            "k IS NOT NULL PRIMARY KEY (w, k)" % (keyspace, keyspace))
        future.result()
        assert future.is_schema_agreed
        assert "by_w" in cluster.metadata.keyspaces[keyspace].views
        rows = session.execute("SELECT w, k, v FROM %s.by_w WHERE w = 200" % keyspace)
        assert [(r.w, r.k, r.v) for r in rows] == [(200, 2, 20)]
        with pytest.raises(InvalidRequest):
            session.execute("INSERT INTO %s.by_w (w, k) VALUES (1, 1)" % keyspace)
    finally:
        cluster.shutdown()
