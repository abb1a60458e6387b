"""cqlreactor.schema against cassandra-driver's own schema parser, on the same rows.

The simulated cluster has no indexes, views, functions, aggregates, triggers or COMPACT
STORAGE tables, so these rows are written here, shaped as Cassandra 3.11, 4.0 and 5.0 store
them (each release's system_schema.tables columns), and fed to both parsers: cassandra-driver's
SchemaParserV3/V4 is given the rows instead of querying (no connection: the parser's row
handling is what we compare with).  Both ``export_as_string()`` results must be the same CQL,
whitespace aside.  Bad rows must give an unparsed element and a warning, never an exception.
"""

import logging
import re
import uuid

import pytest

from cqlreactor import metadata as ours_metadata
from cqlreactor.schema import build_keyspaces, protect_name

theirs_metadata = pytest.importorskip("cassandra.metadata")

KS = "shop"
TABLE_ID = uuid.UUID("5a1c395e-b41f-11e5-9f22-ba0be0483c18")

OPTIONS_30 = {
    "bloom_filter_fp_chance": 0.01, "caching": {"keys": "ALL", "rows_per_partition": "NONE"},
    "comment": "", "compaction": {
        "class": "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
        "max_threshold": "32", "min_threshold": "4"},
    "compression": {"chunk_length_in_kb": "64",
                    "class": "org.apache.cassandra.io.compress.LZ4Compressor"},
    "crc_check_chance": 1.0, "dclocal_read_repair_chance": 0.1, "default_time_to_live": 0,
    "extensions": {}, "gc_grace_seconds": 864000, "max_index_interval": 2048,
    "memtable_flush_period_in_ms": 0, "min_index_interval": 128, "read_repair_chance": 0.0,
    "speculative_retry": "99PERCENTILE"}
OPTIONS_40 = dict((k, v) for k, v in OPTIONS_30.items()
                  if k not in ("dclocal_read_repair_chance", "read_repair_chance"))
OPTIONS_40.update({"additional_write_policy": "99p", "cdc": False, "read_repair": "BLOCKING",
                   "speculative_retry": "99p"})
OPTIONS_50 = dict(OPTIONS_40)
OPTIONS_50.update({"allow_auto_snapshot": True, "incremental_backups": True,
                   "memtable": "default"})


def _rows(options):
    def table(name, flags=("compound",)):
        row = dict(options)
        row.update({"keyspace_name": KS, "table_name": name, "id": TABLE_ID,
                    "flags": set(flags)})
        return row

    def col(table_name, name, kind, position, type_, order="none"):
        return {"keyspace_name": KS, "table_name": table_name, "column_name": name,
                "clustering_order": order, "column_name_bytes": name.encode(), "kind": kind,
                "position": position, "type": type_}

    view = dict(options)
    view.pop("cdc", None)
    view.update({"keyspace_name": KS, "view_name": "orders_by_total", "base_table_id": TABLE_ID,
                 "base_table_name": "orders", "include_all_columns": False,
                 "where_clause": "total IS NOT NULL AND id IS NOT NULL AND at IS NOT NULL",
                 "id": TABLE_ID})
    out = {
        "keyspaces": [{"keyspace_name": KS, "durable_writes": True, "replication": {
            "class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "3",
            "dc2": "1"}}],
        "tables": [table("orders"), table("legacy", ("dense",)), table("Odd Name")],
        "columns": [
            col("orders", "id", "partition_key", 0, "uuid"),
            col("orders", "at", "clustering", 0, "timestamp", "desc"),
            col("orders", "total", "regular", -1, "decimal"),
            col("orders", "items", "regular", -1, "map<text, frozen<item>>"),
            col("orders", "note", "static", -1, "text"),
            col("legacy", "k", "partition_key", 0, "text"),
            col("legacy", "c", "clustering", 0, "int"),
            col("legacy", "value", "regular", -1, "blob"),
            col("Odd Name", "Key", "partition_key", 0, "int"),
            col("Odd Name", "from", "regular", -1, "frozen<tuple<int, text>>"),
            col("orders_by_total", "total", "partition_key", 0, "decimal"),
            col("orders_by_total", "id", "clustering", 0, "uuid"),
            col("orders_by_total", "at", "clustering", 1, "timestamp", "desc"),
        ],
        "types": [
            {"keyspace_name": KS, "type_name": "item", "field_names": ["sku", "price"],
             "field_types": ["text", "frozen<money>"]},
            {"keyspace_name": KS, "type_name": "money", "field_names": ["units", "currency"],
             "field_types": ["bigint", "text"]},
        ],
        "functions": [{"keyspace_name": KS, "function_name": "plus",
                       "argument_types": ["int", "int"], "argument_names": ["a", "b"],
                       "body": "return a + b;", "called_on_null_input": False,
                       "language": "java", "return_type": "int"}],
        "aggregates": [{"keyspace_name": KS, "aggregate_name": "total",
                        "argument_types": ["int"], "final_func": None, "initcond": "0",
                        "return_type": "int", "state_func": "plus", "state_type": "int"}],
        "indexes": [
            {"keyspace_name": KS, "table_name": "orders", "index_name": "orders_total",
             "kind": "COMPOSITES", "options": {"target": "total"}},
            {"keyspace_name": KS, "table_name": "orders", "index_name": "orders_items",
             "kind": "CUSTOM", "options": {
                 "target": "keys(items)",
                 "class_name": "org.apache.cassandra.index.sasi.SASIIndex",
                 "mode": "CONTAINS"}},
        ],
        "views": [view],
        "triggers": [{"keyspace_name": KS, "table_name": "orders", "trigger_name": "audit",
                      "options": {"class": "org.example.Audit"}}],
    }
    # in the order a server returns them: by the clustering columns' bytes
    out["columns"].sort(key=lambda r: (r["table_name"].encode(), r["column_name"].encode()))
    out["tables"].sort(key=lambda r: r["table_name"].encode())
    return out


def _offline_parse(parser_class, rows):
    """cassandra-driver's parser given rows instead of a connection: its ``_query_all``
    (the only part that talks to a server) is replaced by handing it the rows."""
    def query_all(parser):
        for kind in ("keyspaces", "tables", "columns", "triggers", "types", "functions",
                     "aggregates", "indexes", "views"):
            setattr(parser, kind + "_result", rows[kind])
        for kind in ("virtual_keyspaces", "virtual_tables", "virtual_columns"):
            setattr(parser, kind + "_result", [])
        parser._aggregate_results()
    offline = type("Offline" + parser_class.__name__, (parser_class,),
                   {"_query_all": query_all})
    return dict((ks.name, ks) for ks in offline(None, 1.0).get_all_keyspaces())


def _normalized(cql):
    return re.sub(r"\s+", " ", cql).strip()


@pytest.mark.parametrize("release,options,parser", [
    ("3.11", OPTIONS_30, "SchemaParserV3"),
    ("4.0", OPTIONS_40, "SchemaParserV4"),
    ("5.0", OPTIONS_50, "SchemaParserV4"),
])
def test_export_agrees_with_cassandra_driver(release, options, parser):
    rows = _rows(options)
    ours = build_keyspaces(rows)[KS]
    theirs = _offline_parse(getattr(theirs_metadata, parser), rows)[KS]
    exported = ours.export_as_string()
    if release == "5.0":
        # documented in cqlreactor/schema.py: the 5.0 options cassandra-driver 3.x does not
        # know are exported here, and only here
        for option in ("allow_auto_snapshot = true", "incremental_backups = true",
                       "memtable = 'default'"):
            assert exported.count("AND " + option) == 4     # three tables and the view
            exported = exported.replace("\n    AND " + option, "")
    assert _normalized(exported) == _normalized(theirs.export_as_string())
    # the model itself, beyond its CQL
    orders = ours.tables["orders"]
    assert [c.name for c in orders.partition_key] == ["id"]
    assert [(c.name, c.is_reversed) for c in orders.clustering_key] == [("at", True)]
    assert list(orders.columns) == ["id", "at", "items", "note", "total"]
    assert orders.columns["note"].is_static
    assert sorted(orders.indexes) == sorted(ours.indexes) == ["orders_items", "orders_total"]
    assert list(orders.views) == ["orders_by_total"] == list(ours.views)
    assert ours.tables["legacy"].is_compact_storage
    assert not orders.is_compact_storage
    assert list(ours.functions) == ["plus(int,int)"] == list(theirs.functions)
    assert list(ours.aggregates) == ["total(int)"] == list(theirs.aggregates)
    assert ours.replication_strategy.dc_replication_factors == {"dc1": 3, "dc2": 1}
    assert type(ours) is ours_metadata.KeyspaceMetadata
    # user types come after the types they use
    assert ours.export_as_string().index("CREATE TYPE shop.money") < \
        ours.export_as_string().index("CREATE TYPE shop.item")


def test_names_are_quoted_as_cql_needs():
    assert protect_name("plain_name1") == "plain_name1"
    for name in ("Mixed", "select", "two words", 'a"b', "1st"):
        assert protect_name(name) == theirs_metadata.protect_name(name)


def test_bad_rows_give_unparsed_elements_and_a_warning(caplog):
    rows = _rows(OPTIONS_40)
    rows["columns"].append({"keyspace_name": KS, "table_name": "broken", "column_name": "x",
                            "kind": "partition_key", "position": 0,
                            "type": "org.apache.cassandra.db.marshal.NoSuchType"})
    rows["tables"].append(dict(rows["tables"][0], table_name="broken"))
    # an older release's row without the columns of the views table's structure
    rows["columns"].append({"keyspace_name": KS, "table_name": "nokind", "column_name": "x",
                            "type": "int"})
    rows["tables"].append(dict(rows["tables"][0], table_name="nokind"))
    rows["types"].append({"keyspace_name": KS, "type_name": "bad", "field_names": ["f"],
                          "field_types": ["frozen<nowhere>"]})
    rows["keyspaces"].append({"keyspace_name": "noclass", "durable_writes": True,
                              "replication": {}})
    rows["keyspaces"].append({"keyspace_name": "weird", "durable_writes": True,
                              "replication": 42})
    with caplog.at_level(logging.WARNING, logger="cqlreactor.schema"):
        keyspaces = build_keyspaces(rows)
    shop = keyspaces[KS]
    assert "NoSuchType" in shop.tables["broken"].unparsed
    assert shop.tables["nokind"].unparsed
    assert shop.user_types["bad"].unparsed
    assert keyspaces["noclass"].unparsed and keyspaces["weird"].unparsed
    assert shop.tables["orders"].unparsed is None
    exported = shop.export_as_string()
    assert "Warning: Table shop.broken is incomplete" in exported
    assert len([r for r in caplog.records if "unparsed" in r.getMessage()]) == 5


def test_constructors_take_cassandra_drivers_arguments():
    ours = ours_metadata.KeyspaceMetadata("ks", False, "SimpleStrategy",
                                          {"replication_factor": "2"})
    theirs = theirs_metadata.KeyspaceMetadata("ks", False, "SimpleStrategy",
                                              {"replication_factor": "2"})
    assert ours.as_cql_query() == _normalized(theirs.as_cql_query())
    assert ours.replication_strategy.replication_factor == 2
    for cls in ("TableMetadata", "ColumnMetadata", "IndexMetadata", "UserType", "Function",
                "Aggregate", "MaterializedViewMetadata", "TriggerMetadata"):
        assert hasattr(ours_metadata, cls) and hasattr(theirs_metadata, cls)
