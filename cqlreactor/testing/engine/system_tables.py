"""The system keyspaces of the simulated cluster, shaped as Cassandra 4.0 shapes them.

cassandra-driver reads ``system.local``, ``system.peers``, ``system.peers_v2`` and the
``system_schema`` / ``system_virtual_schema`` tables at connect; their column names and types
here follow Cassandra 4.0's own definitions (SystemKeyspace, SchemaKeyspace,
VirtualSchemaKeyspace), so ``SELECT *`` answers with the same columns, in the same order.

Tables are declared once (:data:`SYSTEM_TABLES`); their rows are generated on read, per
coordinating node, from the engine's nodes and schema (:func:`generate_rows`).
"""

from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import schema_objects as O

__all__ = ["SYSTEM_KEYSPACES", "SYSTEM_TABLES", "generate_rows", "table_option_defaults",
           "LOCAL_STRATEGY", "SIMPLE_STRATEGY", "NTS"]

LOCAL_STRATEGY = "org.apache.cassandra.locator.LocalStrategy"
SIMPLE_STRATEGY = "org.apache.cassandra.locator.SimpleStrategy"
NTS = "org.apache.cassandra.locator.NetworkTopologyStrategy"

# keyspace -> replication, as Cassandra 4.0 creates them
SYSTEM_KEYSPACES = [
    ("system", {"class": LOCAL_STRATEGY}),
    ("system_schema", {"class": LOCAL_STRATEGY}),
    ("system_auth", {"class": SIMPLE_STRATEGY, "replication_factor": "1"}),
    ("system_distributed", {"class": SIMPLE_STRATEGY, "replication_factor": "3"}),
    ("system_traces", {"class": SIMPLE_STRATEGY, "replication_factor": "2"}),
]
VIRTUAL_KEYSPACES = ["system_virtual_schema", "system_views"]

_OPTION_COLUMNS = [
    ("additional_write_policy", "text"), ("bloom_filter_fp_chance", "double"),
    ("caching", "frozen<map<text, text>>"), ("cdc", "boolean"), ("comment", "text"),
    ("compaction", "frozen<map<text, text>>"), ("compression", "frozen<map<text, text>>"),
    ("crc_check_chance", "double"),
    ("default_time_to_live", "int"), ("extensions", "frozen<map<text, blob>>"),
    ("gc_grace_seconds", "int"), ("id", "uuid"), ("max_index_interval", "int"),
    ("memtable_flush_period_in_ms", "int"), ("min_index_interval", "int"),
    ("read_repair", "text"), ("speculative_retry", "text"),
]

# (keyspace, table) -> (partition key [(name, type)], clustering [(name, type)], regular [...])
SYSTEM_TABLES = {
    ("system", "local"): ([("key", "text")], [], [
        ("bootstrapped", "text"), ("broadcast_address", "inet"), ("broadcast_port", "int"),
        ("cluster_name", "text"), ("cql_version", "text"), ("data_center", "text"),
        ("gossip_generation", "int"), ("host_id", "uuid"), ("listen_address", "inet"),
        ("listen_port", "int"), ("native_protocol_version", "text"), ("partitioner", "text"),
        ("rack", "text"), ("release_version", "text"), ("rpc_address", "inet"),
        ("rpc_port", "int"), ("schema_version", "uuid"), ("tokens", "set<text>"),
        ("truncated_at", "map<uuid, blob>")]),
    ("system", "peers"): ([("peer", "inet")], [], [
        ("data_center", "text"), ("host_id", "uuid"), ("preferred_ip", "inet"),
        ("rack", "text"), ("release_version", "text"), ("rpc_address", "inet"),
        ("schema_version", "uuid"), ("tokens", "set<text>")]),
    ("system", "peers_v2"): ([("peer", "inet")], [("peer_port", "int")], [
        ("data_center", "text"), ("host_id", "uuid"), ("native_address", "inet"),
        ("native_port", "int"), ("preferred_ip", "inet"), ("preferred_port", "int"),
        ("rack", "text"), ("release_version", "text"), ("schema_version", "uuid"),
        ("tokens", "set<text>")]),
    ("system_schema", "keyspaces"): ([("keyspace_name", "text")], [], [
        ("durable_writes", "boolean"), ("replication", "frozen<map<text, text>>")]),
    ("system_schema", "tables"): ([("keyspace_name", "text")], [("table_name", "text")],
                                  list(_OPTION_COLUMNS) + [("flags", "frozen<set<text>>")]),
    ("system_schema", "columns"): (
        [("keyspace_name", "text")], [("table_name", "text"), ("column_name", "text")], [
            ("clustering_order", "text"), ("column_name_bytes", "blob"), ("kind", "text"),
            ("position", "int"), ("type", "text")]),
    ("system_schema", "dropped_columns"): (
        [("keyspace_name", "text")], [("table_name", "text"), ("column_name", "text")], [
            ("dropped_time", "timestamp"), ("kind", "text"), ("type", "text")]),
    ("system_schema", "triggers"): (
        [("keyspace_name", "text")], [("table_name", "text"), ("trigger_name", "text")], [
            ("options", "frozen<map<text, text>>")]),
    ("system_schema", "views"): ([("keyspace_name", "text")], [("view_name", "text")],
                                 [c for c in _OPTION_COLUMNS if c[0] != "flags"] + [
        ("base_table_id", "uuid"), ("base_table_name", "text"),
        ("include_all_columns", "boolean"), ("where_clause", "text")]),
    ("system_schema", "types"): ([("keyspace_name", "text")], [("type_name", "text")], [
        ("field_names", "frozen<list<text>>"), ("field_types", "frozen<list<text>>")]),
    ("system_schema", "functions"): (
        [("keyspace_name", "text")],
        [("function_name", "text"), ("argument_types", "frozen<list<text>>")], [
            ("argument_names", "frozen<list<text>>"), ("body", "text"),
            ("called_on_null_input", "boolean"), ("language", "text"),
            ("return_type", "text")]),
    ("system_schema", "aggregates"): (
        [("keyspace_name", "text")],
        [("aggregate_name", "text"), ("argument_types", "frozen<list<text>>")], [
            ("final_func", "text"), ("initcond", "text"), ("return_type", "text"),
            ("state_func", "text"), ("state_type", "text")]),
    ("system_schema", "indexes"): (
        [("keyspace_name", "text")], [("table_name", "text"), ("index_name", "text")], [
            ("kind", "text"), ("options", "frozen<map<text, text>>")]),
    ("system_traces", "sessions"): ([("session_id", "uuid")], [], [
        ("client", "inet"), ("command", "text"), ("coordinator", "inet"),
        ("coordinator_port", "int"), ("duration", "int"),
        ("parameters", "map<text, text>"), ("request", "text"), ("started_at", "timestamp")]),
    ("system_traces", "events"): ([("session_id", "uuid")], [("event_id", "timeuuid")], [
        ("activity", "text"), ("source", "inet"), ("source_elapsed", "int"),
        ("source_port", "int"), ("thread", "text")]),
    ("system_virtual_schema", "keyspaces"): ([("keyspace_name", "text")], [], []),
    ("system_virtual_schema", "tables"): (
        [("keyspace_name", "text")], [("table_name", "text")], [("comment", "text")]),
    ("system_virtual_schema", "columns"): (
        [("keyspace_name", "text")], [("table_name", "text"), ("column_name", "text")], [
            ("clustering_order", "text"), ("column_name_bytes", "blob"), ("kind", "text"),
            ("position", "int"), ("type", "text")]),
}


def table_option_defaults(table_id, is_counter=False):
    """The option values Cassandra 4.0 gives a table created without options."""
    return {
        "additional_write_policy": "99p",
        "bloom_filter_fp_chance": 0.01,
        "caching": {"keys": "ALL", "rows_per_partition": "NONE"},
        "cdc": False,
        "comment": "",
        "compaction": {
            "class": "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
            "max_threshold": "32", "min_threshold": "4"},
        "compression": {"chunk_length_in_kb": "16",
                        "class": "org.apache.cassandra.io.compress.LZ4Compressor"},
        "crc_check_chance": 1.0,
        "default_time_to_live": 0,
        "extensions": {},
        "gc_grace_seconds": 864000,
        "id": table_id,
        "max_index_interval": 2048,
        "memtable_flush_period_in_ms": 0,
        "min_index_interval": 128,
        "read_repair": "BLOCKING",
        "speculative_retry": "99p",
        "flags": ["compound", "counter"] if is_counter else ["compound"],
    }


def _tokens(node):
    return [str(t) for t in node.tokens]


def _local(engine, node):
    n = engine.nodes[node]
    return [{
        "key": "local", "bootstrapped": "COMPLETED", "broadcast_address": n.address,
        "broadcast_port": 7000, "cluster_name": engine.cluster_name, "cql_version": "3.4.5",
        "data_center": n.data_center, "gossip_generation": engine.gossip_generation,
        "host_id": n.host_id, "listen_address": n.address, "listen_port": 7000,
        "native_protocol_version": "5", "partitioner": engine.partitioner, "rack": n.rack,
        "release_version": n.release_version, "rpc_address": n.address,
        "rpc_port": n.rpc_port, "schema_version": engine.node_schema_version(node),
        "tokens": _tokens(n), "truncated_at": None,
    }]


def _peers(engine, node):
    out = []
    for n in engine.nodes:
        if n.index == node:
            continue
        out.append({
            "peer": n.address, "data_center": n.data_center, "host_id": n.host_id,
            "preferred_ip": None, "rack": n.rack, "release_version": n.release_version,
            "rpc_address": n.address, "schema_version": engine.node_schema_version(n.index),
            "tokens": _tokens(n)})
    return out


def _peers_v2(engine, node):
    out = []
    for n in engine.nodes:
        if n.index == node:
            continue
        out.append({
            "peer": n.address, "peer_port": 7000, "data_center": n.data_center,
            "host_id": n.host_id, "native_address": n.address, "native_port": n.rpc_port,
            "preferred_ip": None, "preferred_port": None, "rack": n.rack,
            "release_version": n.release_version,
            "schema_version": engine.node_schema_version(n.index),
            "tokens": _tokens(n)})
    return out


def _keyspaces(engine, node):
    return [{"keyspace_name": ks.name, "durable_writes": ks.durable_writes,
             "replication": ks.replication}
            for ks in engine.keyspaces.values() if not ks.virtual and engine.visible(ks, node)]


def _tables(engine, node):
    out = []
    for ks in _visible_keyspaces(engine, node):
        for t in _visible(engine, ks.tables, node):
            row = dict(t.options)
            row["keyspace_name"] = ks.name
            row["table_name"] = t.name
            row["id"] = t.id
            out.append(row)
    return out


def _visible_keyspaces(engine, node):
    return [ks for ks in engine.keyspaces.values() if not ks.virtual and engine.visible(ks, node)]


def _visible(engine, objects, node):
    return [o for o in objects.values() if node is None or engine.visible(o, node)]


def _columns_rows(keyspaces, engine=None, node=None, extra=()):
    """system_schema.columns rows of the keyspaces' tables (and of ``extra``: (keyspace,
    view) pairs, whose columns Cassandra lists there too)."""
    tables = [(ks, t) for ks in keyspaces for t in _visible(engine, ks.tables, node)]
    out = []
    for ks, t in tables + list(extra):
        for c in t.columns.values():
            out.append({
                "keyspace_name": ks.name, "table_name": t.name, "column_name": c.name,
                "clustering_order": c.order, "column_name_bytes": c.name.encode("utf-8"),
                "kind": c.kind, "position": c.position, "type": c.type_text})
    return out


def _columns(engine, node):
    return _columns_rows(_visible_keyspaces(engine, node), engine, node,
                         O.view_tables(engine, node, _visible_keyspaces))


def _indexes(engine, node):
    return O.index_rows(engine, node, _visible_keyspaces)


def _views(engine, node):
    return O.view_rows(engine, node, _visible_keyspaces)


def _functions(engine, node):
    return O.routine_rows(engine, node, _visible_keyspaces, "functions")


def _aggregates(engine, node):
    return O.routine_rows(engine, node, _visible_keyspaces, "aggregates")


def _types(engine, node):
    out = []
    for ks in _visible_keyspaces(engine, node):
        for u in _visible(engine, ks.types, node):
            out.append({"keyspace_name": ks.name, "type_name": u.name,
                        "field_names": u.field_names, "field_types": u.field_texts})
    return out


def _empty(engine, node):
    return []


def _trace_sessions(engine, node):
    """A traced request's session row shows up a moment after the request (without its
    duration at first), as Cassandra writes traces asynchronously: Engine.TRACE_DELAY."""
    now = engine.clock()
    out = []
    for trace in engine.traces.values():
        if now < trace["visible_at"]:
            continue
        row = dict(trace["session"])
        if now < trace["complete_at"]:
            row["duration"] = None
        out.append(row)
    return out


def _trace_events(engine, node):
    now = engine.clock()
    out = []
    for trace in engine.traces.values():
        if now >= trace["complete_at"]:
            out.extend(trace["events"])
    return out


def _virtual_keyspaces(engine, node):
    return [{"keyspace_name": ks.name} for ks in engine.keyspaces.values() if ks.virtual]


def _virtual_tables(engine, node):
    return [{"keyspace_name": ks.name, "table_name": t.name, "comment": ""}
            for ks in engine.keyspaces.values() if ks.virtual for t in ks.tables.values()]


def _virtual_columns(engine, node):
    return _columns_rows(ks for ks in engine.keyspaces.values() if ks.virtual)


_GENERATORS = {
    ("system", "local"): _local,
    ("system", "peers"): _peers,
    ("system", "peers_v2"): _peers_v2,
    ("system_schema", "keyspaces"): _keyspaces,
    ("system_schema", "tables"): _tables,
    ("system_schema", "columns"): _columns,
    ("system_schema", "types"): _types,
    ("system_schema", "indexes"): _indexes,
    ("system_schema", "views"): _views,
    ("system_schema", "functions"): _functions,
    ("system_schema", "aggregates"): _aggregates,
    ("system_traces", "sessions"): _trace_sessions,
    ("system_traces", "events"): _trace_events,
    ("system_virtual_schema", "keyspaces"): _virtual_keyspaces,
    ("system_virtual_schema", "tables"): _virtual_tables,
    ("system_virtual_schema", "columns"): _virtual_columns,
}

# tables whose content differs by coordinator (besides system_schema's, which show the schema
# generation each node has applied; the rest are cluster-wide)
PER_NODE = frozenset([("system", "local"), ("system", "peers"), ("system", "peers_v2")])


def generate_rows(engine, keyspace, table, node):
    """Rows (dicts column name -> Python value) of a system table as ``node`` answers it."""
    return _GENERATORS.get((keyspace, table), _empty)(engine, node)


def parse_types(spec):
    """[(name, type text)] -> [(name, TypeExpr, type text)]."""
    return [(name, P.parse_type(text), text) for name, text in spec]
