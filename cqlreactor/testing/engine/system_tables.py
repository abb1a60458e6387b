"""The system keyspaces of the simulated cluster, shaped as its Cassandra release shapes them.

cassandra-driver reads ``system.local``, ``system.peers``, ``system.peers_v2`` and the
``system_schema`` / ``system_virtual_schema`` tables at connect; their column names and types
here follow Cassandra's own definitions (SystemKeyspace, SchemaKeyspace, VirtualSchemaKeyspace),
so ``SELECT *`` answers with the same columns, in the same order.  :data:`SYSTEM_TABLES` is
4.0's; :func:`system_tables` gives a release's: 3.11 has no ``peers_v2`` nor virtual keyspaces
(drivers fall back to ``peers``) and a ``thrift_version`` instead of the ports in
``system.local``; the schema tables' option columns grow with each release.

Tables are declared once; their rows are generated on read, per coordinating node, from the
engine's nodes and schema (:func:`generate_rows`).
"""

from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import schema_objects as O

__all__ = ["SYSTEM_KEYSPACES", "SYSTEM_TABLES", "system_tables", "generate_rows",
           "table_option_defaults",
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

# table options every release from 3.11 has (system_schema.tables / views columns)
_OPTION_COLUMNS = [
    ("bloom_filter_fp_chance", "double"),
    ("caching", "frozen<map<text, text>>"), ("cdc", "boolean"), ("comment", "text"),
    ("compaction", "frozen<map<text, text>>"), ("compression", "frozen<map<text, text>>"),
    ("crc_check_chance", "double"), ("dclocal_read_repair_chance", "double"),
    ("default_time_to_live", "int"), ("extensions", "frozen<map<text, blob>>"),
    ("gc_grace_seconds", "int"), ("id", "uuid"), ("max_index_interval", "int"),
    ("memtable_flush_period_in_ms", "int"), ("min_index_interval", "int"),
    ("read_repair_chance", "double"), ("speculative_retry", "text"),
]
# (first release, option columns it added): 4.0 additional_write_policy and read_repair (the
# *read_repair_chance columns stay, unused, "for drivers' sake"), 4.1 the memtable
# configuration, 5.0 allow_auto_snapshot and incremental_backups
_OPTIONS_ADDED = [
    ((4, 0), [("additional_write_policy", "text"), ("read_repair", "text")]),
    ((4, 1), [("memtable", "text")]),
    ((5, 0), [("allow_auto_snapshot", "boolean"), ("incremental_backups", "boolean")]),
]
# system.local: every release's columns, then what 3.11 alone has / what 4.0 added
_LOCAL_COLUMNS = [
    ("bootstrapped", "text"), ("broadcast_address", "inet"), ("cluster_name", "text"),
    ("cql_version", "text"), ("data_center", "text"), ("gossip_generation", "int"),
    ("host_id", "uuid"), ("listen_address", "inet"), ("native_protocol_version", "text"),
    ("partitioner", "text"), ("rack", "text"), ("release_version", "text"),
    ("rpc_address", "inet"), ("schema_version", "uuid"), ("tokens", "set<text>"),
    ("truncated_at", "map<uuid, blob>")]
_LOCAL_3_11 = [("thrift_version", "text")]
_LOCAL_4_0 = [("broadcast_port", "int"), ("listen_port", "int"), ("rpc_port", "int")]
# tables that exist only from 4.0
_FROM_4_0 = frozenset([("system", "peers_v2"), ("system_virtual_schema", "keyspaces"),
                       ("system_virtual_schema", "tables"),
                       ("system_virtual_schema", "columns")])


# tables that came after 4.0: (first release, key, definition); 5.0's dynamic data masking
_ADDED_TABLES = [
    ((5, 0), ("system_schema", "column_masks"), (
        [("keyspace_name", "text")], [("table_name", "text"), ("column_name", "text")], [
            ("function_argument_nulls", "frozen<list<boolean>>"),
            ("function_argument_types", "frozen<list<text>>"),
            ("function_argument_values", "frozen<list<text>>"),
            ("function_keyspace", "text"), ("function_name", "text")])),
]


def _options(major_minor):
    cols = list(_OPTION_COLUMNS)
    for since, added in _OPTIONS_ADDED:
        if major_minor >= since:
            cols.extend(added)
    return sorted(cols)


_VIEW_COLUMNS = [("base_table_id", "uuid"), ("base_table_name", "text"),
                 ("include_all_columns", "boolean"), ("where_clause", "text")]

# (keyspace, table) -> (partition key [(name, type)], clustering [(name, type)], regular [...])
SYSTEM_TABLES = {
    ("system", "local"): ([("key", "text")], [], sorted(_LOCAL_COLUMNS + _LOCAL_4_0)),
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
                                  sorted(_options((4, 0)) + [("flags", "frozen<set<text>>")])),
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
                                 sorted(_options((4, 0)) + _VIEW_COLUMNS)),
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


def system_tables(release):
    """:data:`SYSTEM_TABLES` (Cassandra 4.0's) as ``release`` (a ``releases.Release``) has
    them: 3.11 has no peers_v2 nor virtual keyspaces and its own system.local; the schema
    tables carry each release's table options."""
    mm = release.major_minor
    out = {}
    for key, (pk, ck, regular) in SYSTEM_TABLES.items():
        if mm < (4, 0) and key in _FROM_4_0:
            continue
        if key == ("system", "local") and mm < (4, 0):
            regular = sorted(_LOCAL_COLUMNS + _LOCAL_3_11)
        elif key == ("system_schema", "tables"):
            regular = sorted(_options(mm) + [("flags", "frozen<set<text>>")])
        elif key == ("system_schema", "views"):
            regular = sorted(_options(mm) + _VIEW_COLUMNS)
        out[key] = (pk, ck, regular)
    for since, key, definition in _ADDED_TABLES:
        if mm >= since:
            out[key] = definition
    return out


def table_option_defaults(table_id, is_counter=False, release=None):
    """The option values Cassandra (``release``, a ``releases.Release``; None: 4.0) gives a
    table created without options: only the options that release has."""
    mm = release.major_minor if release is not None else (4, 0)
    opts = {
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
        "memtable": "default",
        "allow_auto_snapshot": True,
        "incremental_backups": True,
    }
    if mm < (4, 0):
        # 3.11's defaults: read repair chances still used, larger compression chunks
        opts["dclocal_read_repair_chance"] = 0.1     # (4.0 on: columns kept, never written)
        opts["read_repair_chance"] = 0.0
        opts["speculative_retry"] = "99PERCENTILE"
        opts["compression"] = {"chunk_length_in_kb": "64",
                               "class": "org.apache.cassandra.io.compress.LZ4Compressor"}
    names = set(name for name, _ in _options(mm)) | {"flags"}
    return dict((k, v) for k, v in opts.items() if k in names)


def _tokens(node):
    return [str(t) for t in node.tokens]


def _local(engine, node):
    n = engine.nodes[node]
    release = engine.release
    row = {
        "key": "local", "bootstrapped": "COMPLETED", "broadcast_address": n.address,
        "cluster_name": engine.cluster_name, "cql_version": release.cql_version,
        "data_center": n.data_center, "gossip_generation": engine.gossip_generation,
        "host_id": n.host_id, "listen_address": n.address,
        "native_protocol_version": release.native_protocol_version,
        "partitioner": engine.partitioner, "rack": n.rack,
        "release_version": n.release_version, "rpc_address": n.address,
        "schema_version": engine.node_schema_version(node),
        "tokens": _tokens(n), "truncated_at": None,
    }
    if release.has_peers_v2:
        row.update(broadcast_port=7000, listen_port=7000, rpc_port=n.rpc_port)
    else:
        row["thrift_version"] = "20.1.0"
    return [row]


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
