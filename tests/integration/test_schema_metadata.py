"""The schema metadata model against the simulated cluster (issue 11).

* Oracle: cassandra-driver's own metadata parser reads the same simulated schema; both
  drivers' ``export_as_string()`` must be the same CQL (whitespace aside: cassandra-driver
  writes two spaces before ``AND durable_writes``), on protocol v4 and v5.
* Round trip: the exported CQL, run on a fresh simulated cluster, gives the same metadata.
* Refreshes: SCHEMA_CHANGE events from another client refresh just the table they name
  (debounced), ``refresh_table_metadata`` works with events off, and the
  ``schema_metadata_enabled`` / ``token_metadata_enabled`` switches are honoured.
"""

import re
import uuid

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import DriverException

pytest.importorskip("cqlreactor.testing.engine")
cassandra_cluster = pytest.importorskip("cassandra.cluster")

SCHEMA = [
    "CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', "
    "'datacenter1': 2}} AND durable_writes = false",
    "CREATE TYPE {ks}.addr (street text, nums frozen<list<int>>)",
    "CREATE TYPE {ks}.person (name text, home frozen<addr>, tags set<text>)",
    "CREATE TABLE {ks}.events (k int, c text, d timeuuid, v map<text, int>, s int static, "
    "p frozen<person>, PRIMARY KEY ((k, c), d)) WITH CLUSTERING ORDER BY (d DESC) "
    "AND comment = 'it''s here' AND gc_grace_seconds = 10 "
    "AND caching = {{'keys': 'NONE', 'rows_per_partition': '10'}}",
    "CREATE TABLE {ks}.\"Mixed\" (\"Key\" int PRIMARY KEY, \"select\" text, l list<bigint>, "
    "t tuple<int, text>, u frozen<addr>)",
    "CREATE TABLE {ks}.counts (a text, b int, n counter, PRIMARY KEY (a, b)) "
    "WITH CLUSTERING ORDER BY (b ASC) AND default_time_to_live = 0",
]


def _normalized(cql):
    return re.sub(r"\s+", " ", cql).strip()


def _create(session, keyspace):
    for statement in SCHEMA:
        session.execute(statement.format(ks=keyspace))


def _statements(cql):
    return [s for s in (part.strip() for part in re.split(r";\s*\n", cql.strip() + "\n"))
            if s]


@pytest.mark.parametrize("protocol_version", [4, 5])
def test_both_drivers_export_the_same_schema(cql_cluster, protocol_version):
    keyspace = "oracle_%s" % uuid.uuid4().hex[:8]
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      protocol_version=protocol_version)
    theirs = None
    try:
        session = cluster.connect()
        _create(session, keyspace)
        ours = cluster.metadata.keyspaces[keyspace]
        assert [c.name for c in ours.tables["events"].partition_key] == ["k", "c"]
        assert [(c.name, c.is_reversed) for c in ours.tables["events"].clustering_key] == [
            ("d", True)]
        assert ours.tables["events"].columns["s"].is_static
        assert ours.tables["events"].columns["p"].cql_type == "frozen<person>"
        assert ours.tables["events"].options["gc_grace_seconds"] == 10
        assert ours.durable_writes is False and ours.replication_strategy.dc_replication_factors \
            == {"datacenter1": 2}
        assert sorted(ours.user_types) == ["addr", "person"]
        theirs = cassandra_cluster.Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                                           protocol_version=protocol_version)
        theirs.connect()
        expected = theirs.metadata.keyspaces[keyspace].export_as_string()
        assert _normalized(ours.export_as_string()) == _normalized(expected)
        for name in ("system_views", "system_virtual_schema"):
            assert cluster.metadata.keyspaces[name].virtual
            assert sorted(cluster.metadata.keyspaces[name].tables) == sorted(
                theirs.metadata.keyspaces[name].tables)
    finally:
        if theirs is not None:
            theirs.shutdown()
        cluster.shutdown()


def test_exported_cql_recreates_the_schema_on_a_fresh_cluster(cql_cluster, cql_cluster_factory):
    keyspace = "roundtrip_%s" % uuid.uuid4().hex[:8]
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    fresh_sim = cql_cluster_factory(nodes=1, schema_delay=0)
    fresh = Cluster(fresh_sim.contact_points, port=fresh_sim.port)
    try:
        _create(cluster.connect(), keyspace)
        exported = cluster.metadata.keyspaces[keyspace].export_as_string()
        session = fresh.connect()
        for statement in _statements(exported):
            session.execute(statement)
        again = fresh.metadata.keyspaces[keyspace]
        assert again.export_as_string() == exported
        assert list(again.tables["Mixed"].columns) == ["Key", "l", "select", "t", "u"]
    finally:
        fresh.shutdown()
        cluster.shutdown()


def _served_queries(sim):
    out = []
    for node in range(len(sim.node_info())):
        out.extend(entry.get("query") or "" for entry in sim.served(node))
    return out


def test_schema_change_events_refresh_the_named_table(cql_cluster):
    keyspace = "events_%s" % uuid.uuid4().hex[:8]
    writer = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    reader = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                     schema_event_refresh_window=0.1)
    try:
        session = writer.connect()
        session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                        "'replication_factor': 1}" % keyspace)
        session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % keyspace)
        reader.connect()
        assert cql_cluster.wait_for(lambda: "t" in reader.metadata.keyspaces.get(
            keyspace, _NoTables).tables, timeout=15)
        cql_cluster.clear()
        session.execute("ALTER TABLE %s.t ADD w text" % keyspace)
        assert cql_cluster.wait_for(
            lambda: "w" in reader.metadata.keyspaces[keyspace].tables["t"].columns, timeout=15)
        queries = [q for q in _served_queries(cql_cluster) if "system_schema.columns" in q]
        # one table's refresh: its keyspace and table named, not the whole schema read again
        assert queries and all("table_name = 't'" in q for q in queries), queries
    finally:
        reader.shutdown()
        writer.shutdown()


class _NoTables(object):
    tables = {}


def test_refresh_table_metadata_with_event_refreshes_off(cql_cluster):
    keyspace = "manual_%s" % uuid.uuid4().hex[:8]
    writer = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    reader = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                     schema_event_refresh_window=-1)
    try:
        session = writer.connect()
        session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                        "'replication_factor': 1}" % keyspace)
        reader.connect()
        session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % keyspace)
        assert "t" not in reader.metadata.keyspaces[keyspace].tables
        reader.refresh_table_metadata(keyspace, "t")
        assert list(reader.metadata.keyspaces[keyspace].tables["t"].columns) == ["k", "v"]
        session.execute("DROP TABLE %s.t" % keyspace)
        reader.refresh_table_metadata(keyspace, "t")
        assert "t" not in reader.metadata.keyspaces[keyspace].tables
        reader.refresh_keyspace_metadata(keyspace)
        reader.refresh_user_type_metadata(keyspace, "nothing")
        reader.refresh_user_function_metadata(keyspace, None)
        reader.refresh_schema_metadata(max_schema_agreement_wait=0)
        assert keyspace in reader.metadata.keyspaces
    finally:
        reader.shutdown()
        writer.shutdown()
    with pytest.raises(DriverException):
        reader.refresh_schema_metadata()         # no control connection any more


def test_schema_and_token_metadata_switches(cql_cluster):
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      schema_metadata_enabled=False)
    try:
        cluster.connect()
        system = cluster.metadata.keyspaces["system_auth"]
        assert system.replication["class"].endswith("SimpleStrategy") and not system.tables
        assert cluster.metadata.token_map is not None
        assert cluster.metadata.get_replicas("system_auth", b"\x00\x00\x00\x01")
    finally:
        cluster.shutdown()
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      token_metadata_enabled=False)
    try:
        cluster.connect()
        assert cluster.metadata.keyspaces["system_schema"].tables
        assert cluster.metadata.token_map is None
        assert cluster.metadata.get_replicas("system_auth", b"\x00\x00\x00\x01") == []
    finally:
        cluster.shutdown()
