"""System tables of the simulated cluster's CQL engine, shaped as Cassandra 4.0 shapes them.

Two checks: the column names and types Cassandra 4.0 declares (SystemKeyspace,
SchemaKeyspace), and cassandra-driver's own schema parser (SchemaParserV4, test oracle only)
building keyspace/table/type metadata from the engine's rows, decoded with the driver's types.
"""

import pytest

from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.testing.engine import Engine, NodeInfo

EXPECTED = {
    "system.local": [
        ("key", "text"), ("bootstrapped", "text"), ("broadcast_address", "inet"),
        ("broadcast_port", "int"), ("cluster_name", "text"), ("cql_version", "text"),
        ("data_center", "text"), ("gossip_generation", "int"), ("host_id", "uuid"),
        ("listen_address", "inet"), ("listen_port", "int"), ("native_protocol_version", "text"),
        ("partitioner", "text"), ("rack", "text"), ("release_version", "text"),
        ("rpc_address", "inet"), ("rpc_port", "int"), ("schema_version", "uuid"),
        ("tokens", "set<text>"), ("truncated_at", "map<uuid, blob>")],
    "system.peers": [
        ("peer", "inet"), ("data_center", "text"), ("host_id", "uuid"), ("preferred_ip", "inet"),
        ("rack", "text"), ("release_version", "text"), ("rpc_address", "inet"),
        ("schema_version", "uuid"), ("tokens", "set<text>")],
    "system.peers_v2": [
        ("peer", "inet"), ("peer_port", "int"), ("data_center", "text"), ("host_id", "uuid"),
        ("native_address", "inet"), ("native_port", "int"), ("preferred_ip", "inet"),
        ("preferred_port", "int"), ("rack", "text"), ("release_version", "text"),
        ("schema_version", "uuid"), ("tokens", "set<text>")],
    "system_schema.keyspaces": [
        ("keyspace_name", "text"), ("durable_writes", "boolean"),
        ("replication", "frozen<map<text, text>>")],
    "system_schema.tables": [
        ("keyspace_name", "text"), ("table_name", "text"), ("additional_write_policy", "text"),
        ("bloom_filter_fp_chance", "double"), ("caching", "frozen<map<text, text>>"),
        ("cdc", "boolean"), ("comment", "text"), ("compaction", "frozen<map<text, text>>"),
        ("compression", "frozen<map<text, text>>"), ("crc_check_chance", "double"),
        ("dclocal_read_repair_chance", "double"), ("default_time_to_live", "int"),
        ("extensions", "frozen<map<text, blob>>"), ("flags", "frozen<set<text>>"),
        ("gc_grace_seconds", "int"), ("id", "uuid"), ("max_index_interval", "int"),
        ("memtable_flush_period_in_ms", "int"), ("min_index_interval", "int"),
        ("read_repair", "text"), ("read_repair_chance", "double"),
        ("speculative_retry", "text")],
    "system_schema.columns": [
        ("keyspace_name", "text"), ("table_name", "text"), ("column_name", "text"),
        ("clustering_order", "text"), ("column_name_bytes", "blob"), ("kind", "text"),
        ("position", "int"), ("type", "text")],
    "system_schema.types": [
        ("keyspace_name", "text"), ("type_name", "text"),
        ("field_names", "frozen<list<text>>"), ("field_types", "frozen<list<text>>")],
    "system_schema.functions": [
        ("keyspace_name", "text"), ("function_name", "text"),
        ("argument_types", "frozen<list<text>>"), ("argument_names", "frozen<list<text>>"),
        ("body", "text"), ("called_on_null_input", "boolean"), ("language", "text"),
        ("return_type", "text")],
    "system_schema.aggregates": [
        ("keyspace_name", "text"), ("aggregate_name", "text"),
        ("argument_types", "frozen<list<text>>"), ("final_func", "text"), ("initcond", "text"),
        ("return_type", "text"), ("state_func", "text"), ("state_type", "text")],
    "system_schema.indexes": [
        ("keyspace_name", "text"), ("table_name", "text"), ("index_name", "text"),
        ("kind", "text"), ("options", "frozen<map<text, text>>")],
    "system_schema.triggers": [
        ("keyspace_name", "text"), ("table_name", "text"), ("trigger_name", "text"),
        ("options", "frozen<map<text, text>>")],
    "system_schema.dropped_columns": [
        ("keyspace_name", "text"), ("table_name", "text"), ("column_name", "text"),
        ("dropped_time", "timestamp"), ("kind", "text"), ("type", "text")],
}


def make_engine(n=3):
    e = Engine([NodeInfo(i, "127.0.0.%d" % (i + 1), data_center="dc1", rack="r%d" % i)
                for i in range(n)], cluster_name="simc", clock=lambda: 1.7e9)
    e.execute("CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', "
              "'dc1': '2'} AND durable_writes = false")
    e.execute("CREATE TYPE ks.addr (street text, zip int, tags frozen<set<text>>)")
    e.execute("CREATE TABLE ks.t (p int, q text, c timeuuid, s text static, "
              "v map<text, frozen<list<int>>>, a frozen<addr>, PRIMARY KEY ((p, q), c)) "
              "WITH CLUSTERING ORDER BY (c DESC) AND comment = 'hi' AND gc_grace_seconds = 10")
    return e


def select(e, query, node=0):
    rows, _ = e.execute(query, node=node)
    return rows


def decoded(rows):
    return [dict((c.name, c.cql_type.deserialize(v)) for c, v in zip(rows.columns, r))
            for r in rows.rows]


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_select_star_columns_match_cassandra_4(table):
    rows = select(make_engine(), "SELECT * FROM %s" % table)
    assert [(c.name, c.cql_type.name) for c in rows.columns] == EXPECTED[table]
    assert all((c.keyspace, c.table) == tuple(table.split(".")) for c in rows.columns)


def test_local_and_peers_describe_each_node():
    e = make_engine(3)
    for node in range(3):
        local = decoded(select(e, "SELECT * FROM system.local WHERE key='local'", node))
        assert len(local) == 1
        row = local[0]
        me = e.nodes[node]
        assert (str(row["rpc_address"]), row["host_id"], row["data_center"], row["rack"],
                row["cluster_name"], row["partitioner"]) == (
            me.address, me.host_id, "dc1", "r%d" % node, "simc",
            "org.apache.cassandra.dht.Murmur3Partitioner")
        for table in ("system.peers", "system.peers_v2"):
            peers = decoded(select(e, "SELECT * FROM %s" % table, node))
            assert sorted(p["host_id"] for p in peers) == sorted(
                n.host_id for n in e.nodes if n.index != node)
            for p in peers:
                other = [n for n in e.nodes if n.host_id == p["host_id"]][0]
                assert p["tokens"] == set(str(t) for t in other.tokens)
                assert p["rack"] == other.rack
    # a down node is still a peer
    e.set_node_up(2, False)
    assert len(select(e, "SELECT peer FROM system.peers", 0).rows) == 2


def test_schema_rows_reflect_what_was_created():
    e = make_engine()
    ks = decoded(select(e, "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'ks'"))
    assert ks == [{"keyspace_name": "ks", "durable_writes": False, "replication": {
        "class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "2"}}]
    names = [r["keyspace_name"] for r in decoded(select(e, "SELECT keyspace_name FROM "
                                                           "system_schema.keyspaces"))]
    for name in ("system", "system_schema", "system_auth", "system_distributed",
                 "system_traces", "ks"):
        assert name in names
    cols = decoded(select(e, "SELECT * FROM system_schema.columns WHERE keyspace_name = 'ks' "
                             "AND table_name = 't'"))
    got = dict((c["column_name"], (c["kind"], c["position"], c["clustering_order"], c["type"]))
               for c in cols)
    assert got == {
        "p": ("partition_key", 0, "none", "int"), "q": ("partition_key", 1, "none", "text"),
        "c": ("clustering", 0, "desc", "timeuuid"), "s": ("static", -1, "none", "text"),
        "v": ("regular", -1, "none", "map<text, frozen<list<int>>>"),
        "a": ("regular", -1, "none", "frozen<addr>")}
    table = decoded(select(e, "SELECT * FROM system_schema.tables WHERE keyspace_name = 'ks'"))
    assert len(table) == 1
    assert (table[0]["comment"], table[0]["gc_grace_seconds"], table[0]["flags"]) == (
        "hi", 10, set(["compound"]))
    types = decoded(select(e, "SELECT * FROM system_schema.types WHERE keyspace_name = 'ks'"))
    assert types == [{"keyspace_name": "ks", "type_name": "addr",
                      "field_names": ["street", "zip", "tags"],
                      "field_types": ["text", "int", "frozen<set<text>>"]}]


def test_system_tables_are_read_only():
    e = make_engine()
    for query in ("INSERT INTO system.local (key) VALUES ('x')",
                  "DELETE FROM system.peers WHERE peer = '127.0.0.9'",
                  "DROP TABLE system.local", "TRUNCATE system.local"):
        with pytest.raises(EngineError) as info:
            e.execute(query)
        assert info.value.code == 0x2100


# --- cassandra-driver's schema parser as the oracle ---------------------------------------------

class _Result(object):
    def __init__(self, column_names, parsed_rows):
        self.column_names = column_names
        self.parsed_rows = parsed_rows


class _EngineConnection(object):
    """What SchemaParserV4 needs of a connection: wait_for_responses over the engine."""

    def __init__(self, engine):
        self.engine = engine
        self.queries = []

    def wait_for_responses(self, *messages, **kwargs):
        from cassandra import InvalidRequest
        from cassandra.cqltypes import lookup_casstype
        out = []
        for m in messages:
            self.queries.append(m.query)
            try:
                rows, _ = self.engine.execute(m.query)
            except EngineError as exc:
                out.append((False, InvalidRequest(exc.message)))
                continue
            types = [lookup_casstype(c.cql_type.cass_name) for c in rows.columns]
            parsed = [tuple(None if v is None else t.from_binary(v, 4)
                            for t, v in zip(types, r)) for r in rows.rows]
            out.append((True, _Result([c.name for c in rows.columns], parsed)))
        return out


def test_cassandra_driver_schema_parser_builds_the_metadata():
    metadata = pytest.importorskip("cassandra.metadata")
    e = make_engine()
    conn = _EngineConnection(e)
    parser = metadata.SchemaParserV4(conn, timeout=1)
    keyspaces = dict((k.name, k) for k in parser.get_all_keyspaces())
    assert keyspaces["system_virtual_schema"].virtual
    assert "columns" in keyspaces["system_virtual_schema"].tables
    for name in ("system", "system_schema", "system_auth", "system_distributed",
                 "system_traces", "ks"):
        assert name in keyspaces
    ks = keyspaces["ks"]
    assert ks.durable_writes is False
    assert ks.replication_strategy.dc_replication_factors == {"dc1": 2}
    table = ks.tables["t"]
    assert [c.name for c in table.partition_key] == ["p", "q"]
    assert [c.name for c in table.clustering_key] == ["c"]
    assert table.columns["s"].is_static
    assert table.columns["c"].is_reversed
    assert table.columns["v"].cql_type == "map<text, frozen<list<int>>>"
    assert table.columns["a"].cql_type == "frozen<addr>"
    assert table.options["comment"] == "hi"
    assert ks.user_types["addr"].field_names == ["street", "zip", "tags"]
    cql = table.export_as_string()
    assert "PRIMARY KEY ((p, q), c)" in cql and "CLUSTERING ORDER BY (c DESC)" in cql
    local = keyspaces["system"].tables["local"]
    assert local.columns["tokens"].cql_type == "set<text>"
    assert [c.name for c in local.partition_key] == ["key"]
    # every query the parser sent was answered by the engine
    assert any("system_schema.tables" in q for q in conn.queries)


# --- replica placement, checked against cassandra-driver's strategies -------------------------

def _driver_replicas(e, keyspace_options, key):
    from cassandra.metadata import Murmur3Token, ReplicationStrategy
    from cassandra.policies import SimpleConvictionPolicy
    from cassandra.pool import Host
    import bisect
    hosts = {}
    owner = {}
    for n in e.nodes:
        h = Host(n.address, SimpleConvictionPolicy, datacenter=n.data_center, rack=n.rack)
        hosts[h] = n.index
        for t in n.tokens:
            owner[Murmur3Token(t)] = h
    ring = sorted(owner)
    options = dict(keyspace_options)
    strategy = ReplicationStrategy.create(options.pop("class"), options)
    replica_map = strategy.make_token_replica_map(owner, ring)
    token = Murmur3Token.from_key(key)
    i = bisect.bisect_left(ring, token) % len(ring)
    return [hosts[h] for h in replica_map[ring[i]]]


@pytest.mark.parametrize("layout,replication", [
    ([("dc1", "r1")] * 5, {"class": "SimpleStrategy", "replication_factor": "3"}),
    ([("dc1", "r1")] * 3 + [("dc2", "r1")] * 3,
     {"class": "NetworkTopologyStrategy", "dc1": "2", "dc2": "3"}),
    ([("dc1", "r%d" % (i % 2)) for i in range(6)],
     {"class": "NetworkTopologyStrategy", "dc1": "3"}),
])
def test_replicas_match_cassandra_driver(layout, replication):
    pytest.importorskip("cassandra.metadata")
    from cqlreactor.core import types as T
    nodes = [NodeInfo(i, "127.0.0.%d" % (i + 1), data_center=dc, rack=rack)
             for i, (dc, rack) in enumerate(layout)]
    e = Engine(nodes, clock=lambda: 1.7e9)
    e.execute("CREATE KEYSPACE r WITH replication = {%s}" % ", ".join(
        "'%s': '%s'" % kv for kv in replication.items()))
    full = dict(replication)
    full["class"] = "org.apache.cassandra.locator." + full["class"]
    for k in range(200):
        key = T.INT.serialize(k)
        assert sorted(e.replicas_for("r", key)) == sorted(_driver_replicas(e, full, key)), k
