"""The schema model: keyspaces, tables, columns, indexes, views, user types, functions and
aggregates, built from system_schema rows, and the CQL that re-creates them.

The names and attributes are cassandra-driver's (``cassandra.metadata``), so code that walks
``cluster.metadata.keyspaces[ks].tables[t].columns`` moves over unchanged.  Rows come as dicts
(column name -> decoded value) of Cassandra 3.0+'s system_schema tables and, from 4.0,
system_virtual_schema's; a column a release lacks is simply absent from its rows.

:func:`build_keyspaces` never raises for a bad row: an element it cannot make sense of (an
unknown column type, a missing column) is kept with ``unparsed`` set to the reason, its
``export_as_string()`` is a CQL comment saying so, and a warning is logged.

Formatting of ``export_as_string()``: one statement per element, separated by a blank line:
the keyspace, its user types (dependencies first), functions, aggregates, then each table with
its indexes and materialized views.  Table options are sorted by name after CLUSTERING ORDER
BY; map options keep the server's order.  cassandra-driver's output has the same statements;
it differs in spacing (it writes two spaces before ``AND durable_writes``) and, for options
newer than it knows, in content: every option column the server has is exported here (so
Cassandra 5.0's ``allow_auto_snapshot``, ``incremental_backups``, ``memtable`` are), where
cassandra-driver 3.x writes only the options of its own list.
"""

import logging
import re
from collections import OrderedDict

__all__ = ["KeyspaceMetadata", "TableMetadata", "ColumnMetadata", "IndexMetadata",
           "MaterializedViewMetadata", "UserType", "Function", "Aggregate",
           "TriggerMetadata", "ReplicationStrategy", "build_keyspaces", "protect_name",
           "protect_value", "is_valid_name", "SCHEMA_TABLES"]

log = logging.getLogger(__name__)

#: system_schema tables the parser reads (keyspace-scoped refreshes filter each of them)
SCHEMA_TABLES = ("keyspaces", "tables", "columns", "types", "functions", "aggregates",
                 "indexes", "views", "triggers")

# CQL's reserved keywords (an identifier equal to one must be quoted)
_RESERVED = frozenset("""add allow alter and apply asc authorize batch begin by columnfamily create
delete desc describe drop entries execute from full grant if in index infinity insert into is
keyspace limit materialized modify nan norecursive not null of on or order primary rename replace
revoke schema select set table to token truncate unlogged unset update use using view where
with""".split())
_PLAIN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_NATIVE_TYPES = frozenset("""ascii bigint blob boolean counter date decimal double duration
float inet int smallint text time timestamp timeuuid tinyint uuid varchar varint empty""".split())
_TYPE_TOKEN = re.compile(r"\s*(?:(<)|(>)|(,)|('(?:[^']|'')*')|(\"(?:[^\"]|\"\")*\")|"
                         r"([A-Za-z_][A-Za-z0-9_.]*)|(\d+))")
_STRUCTURAL_TABLE_COLUMNS = frozenset(["keyspace_name", "table_name", "id", "flags",
                                       "extensions", "view_name", "base_table_id",
                                       "base_table_name", "include_all_columns",
                                       "where_clause", "virtual"])


def is_valid_name(name):
    """True when ``name`` can be written unquoted in CQL."""
    return bool(name) and _PLAIN_NAME.match(name) is not None and name not in _RESERVED


def protect_name(name):
    """``name`` as a CQL identifier: unquoted when it can be, else double-quoted."""
    if is_valid_name(name):
        return name
    return '"%s"' % name.replace('"', '""')


def protect_value(value):
    """A scalar option value as CQL: numbers and booleans bare (lower case), text quoted."""
    if value is None:
        return "NULL"
    if isinstance(value, (bool, int, float)):
        return str(value).lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return "'%s'" % str(value).replace("'", "''")


def _map_literal(value):
    return "{%s}" % ", ".join("'%s': '%s'" % (str(k).replace("'", "''"),
                                              str(v).replace("'", "''"))
                              for k, v in value.items())


def _type_names(text):
    """The identifiers of a CQL type text such as ``frozen<map<text, address>>``; raises
    ValueError when it is not one."""
    names = []
    pos = 0
    depth = 0
    text = text or ""
    if not text.strip():
        raise ValueError("empty type")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TYPE_TOKEN.match(text, pos)
        if m is None:
            raise ValueError("cannot read the type %r at %r" % (text, text[pos:]))
        pos = m.end()
        if m.group(1):
            depth += 1
        elif m.group(2):
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced '>' in type %r" % (text,))
        elif m.group(6):
            names.append(m.group(6))
        elif m.group(5):
            names.append(m.group(5)[1:-1].replace('""', '"'))
    if depth:
        raise ValueError("unbalanced '<' in type %r" % (text,))
    return names


def _check_type(text, user_types):
    """Raise ValueError unless ``text`` is a type made of native types, collections and the
    keyspace's user types (``user_types``: names)."""
    for name in _type_names(text):
        lower = name.lower()
        if lower in _NATIVE_TYPES or lower in ("frozen", "list", "set", "map", "tuple",
                                               "vector") or name in user_types:
            continue
        raise ValueError("unknown type %r in %r" % (name, text))


def _strip_frozen(text):
    """``frozen<x>`` -> ``x`` at the top level (function signatures are written without it)."""
    text = text.strip()
    if text.lower().startswith("frozen<") and text.endswith(">"):
        return text[7:-1].strip()
    return text


def _unparsed_comment(kind, name, reason, cql):
    return ("/*\nWarning: %s %s is incomplete because of an error processing metadata: %s\n"
            "Approximate structure, for reference (not to re-create it):\n\n%s\n*/"
            % (kind, name, reason, cql))


# --- replication --------------------------------------------------------------------------------

class ReplicationStrategy(object):
    """A keyspace's replication: ``name`` (the class without its package), ``options`` (the
    rest of the map), ``replication_factor`` (SimpleStrategy) or ``dc_replication_factors``
    (NetworkTopologyStrategy: {dc: int})."""

    def __init__(self, replication):
        self.replication = dict(replication or {})
        cls = self.replication.get("class", "")
        self.name = cls.rsplit(".", 1)[-1]
        self.options = dict((k, v) for k, v in self.replication.items() if k != "class")
        self.replication_factor = None
        self.dc_replication_factors = {}
        if self.name == "SimpleStrategy":
            self.replication_factor = _int_prefix(self.options.get("replication_factor"))
        elif self.name == "NetworkTopologyStrategy":
            self.dc_replication_factors = dict((dc, _int_prefix(rf))
                                               for dc, rf in self.options.items())

    def export_for_schema(self):
        """The replication map as CQL."""
        if self.name in ("SimpleStrategy", "NetworkTopologyStrategy"):
            items = [("class", self.name)] + sorted(self.options.items())
        else:
            items = [("class", self.replication.get("class", ""))] + sorted(
                self.options.items())
        return "{%s}" % ", ".join("'%s': '%s'" % (k, v) for k, v in items)

    def __repr__(self):
        return "<ReplicationStrategy %s %s>" % (self.name, self.options)


def _int_prefix(value):
    try:
        return int(str(value).split("/")[0])
    except (TypeError, ValueError):
        return 0


# --- the model ----------------------------------------------------------------------------------

class KeyspaceMetadata(object):
    """One keyspace: replication, durability and what it contains.

    Attributes: name, durable_writes, replication (the map as stored), replication_strategy,
    virtual, tables, indexes (every table's, by name), views, user_types, functions and
    aggregates (by signature ``name(type, ...)``), unparsed (None, or why the row was bad).
    """

    def __init__(self, name, durable_writes=True, strategy_class=None, strategy_options=None,
                 replication=None, virtual=False):
        self.name = name
        self.durable_writes = durable_writes
        if replication is None:
            replication = dict(strategy_options or {})
            if strategy_class:
                replication["class"] = strategy_class
        self.replication = dict(replication)
        self.replication_strategy = ReplicationStrategy(self.replication)
        self.virtual = virtual
        self.tables = OrderedDict()
        self.indexes = OrderedDict()
        self.views = OrderedDict()
        self.user_types = OrderedDict()
        self.functions = OrderedDict()
        self.aggregates = OrderedDict()
        self.unparsed = None

    @property
    def strategy(self):
        """The replication class without its package (``SimpleStrategy`` ...)."""
        return self.replication_strategy.name

    def as_cql_query(self):
        """CREATE KEYSPACE for this keyspace alone (a comment for a virtual one)."""
        if self.virtual:
            return "// VIRTUAL KEYSPACE %s" % protect_name(self.name)
        return "CREATE KEYSPACE %s WITH replication = %s AND durable_writes = %s" % (
            protect_name(self.name), self.replication_strategy.export_for_schema(),
            "true" if self.durable_writes else "false")

    def user_type_strings(self):
        """CREATE TYPE of each user type, a type after those it uses (then by name)."""
        out = []
        done = set()

        def add(name, path):
            if name in done or name in path:
                return
            utype = self.user_types[name]
            for text in utype.field_types:
                for sub in _safe_type_names(text):
                    if sub in self.user_types:
                        add(sub, path | {name})
            done.add(name)
            out.append(utype.export_as_string())
        for name in sorted(self.user_types):
            add(name, frozenset())
        return out

    def export_as_string(self):
        """CQL that re-creates the keyspace and everything in it."""
        parts = [self.as_cql_query() + ";"] + self.user_type_strings()
        parts += [f.export_as_string() for f in self.functions.values()]
        parts += [a.export_as_string() for a in self.aggregates.values()]
        parts += [t.export_as_string() for t in self.tables.values()]
        cql = "\n\n".join(parts)
        if self.unparsed:
            return _unparsed_comment("Keyspace", self.name, self.unparsed, cql)
        if self.virtual:
            return ("/*\nWarning: Keyspace %s is a virtual keyspace and cannot be recreated "
                    "with CQL.\nStructure, for reference:*/\n%s\n" % (self.name, cql))
        return cql

    def __repr__(self):
        return "<KeyspaceMetadata %s %s>" % (self.name, self.replication)


class ColumnMetadata(object):
    """One column: ``table`` (its TableMetadata or view), name, cql_type (text), is_static,
    is_reversed (a DESC clustering column), kind ('partition_key', 'clustering', 'regular',
    'static'), position."""

    def __init__(self, table_metadata, column_name, cql_type, is_static=False,
                 is_reversed=False, kind="regular", position=-1):
        self.table = table_metadata
        self.name = column_name
        self.cql_type = cql_type
        self.is_static = is_static
        self.is_reversed = is_reversed
        self.kind = kind
        self.position = position

    def __repr__(self):
        return "<ColumnMetadata %s %s>" % (self.name, self.cql_type)


class _Structure(object):
    """What tables and views share: keys, columns, options and their CQL."""

    def _options_cql(self, formatted):
        props = []
        if getattr(self, "is_compact_storage", False):
            props.append("COMPACT STORAGE")
        if self.clustering_key:
            props.append("CLUSTERING ORDER BY (%s)" % ", ".join(
                "%s %s" % (protect_name(c.name), "DESC" if c.is_reversed else "ASC")
                for c in self.clustering_key))
        options = []
        for name, value in self.options.items():
            if value is None:
                continue
            if isinstance(value, dict):
                options.append("%s = %s" % (name, _map_literal(value)))
            else:
                options.append("%s = %s" % (name, protect_value(value)))
        props.extend(sorted(options))
        return ("\n    AND " if formatted else " AND ").join(props)

    @property
    def primary_key(self):
        return list(self.partition_key) + list(self.clustering_key)


class TableMetadata(_Structure):
    """One table.

    Attributes: keyspace_name, name, partition_key and clustering_key (ColumnMetadata lists in
    key order), columns (OrderedDict: key columns first, then the rest by name), options
    (system_schema.tables' option columns present, by name), indexes, views, triggers,
    extensions, virtual, is_compact_storage, flags, id, unparsed (None, or why it is bad).
    """

    def __init__(self, keyspace_name, name, partition_key=None, clustering_key=None,
                 columns=None, triggers=None, options=None, virtual=False):
        self.keyspace_name = keyspace_name
        self.name = name
        self.partition_key = [] if partition_key is None else partition_key
        self.clustering_key = [] if clustering_key is None else clustering_key
        self.columns = OrderedDict() if columns is None else columns
        self.options = {} if options is None else options
        self.triggers = OrderedDict() if triggers is None else triggers
        self.indexes = OrderedDict()
        self.views = OrderedDict()
        self.extensions = {}
        self.virtual = virtual
        self.is_compact_storage = False
        self.flags = frozenset()
        self.id = None
        self.unparsed = None

    def as_cql_query(self, formatted=False):
        """CREATE TABLE (VIRTUAL TABLE for a virtual one), without indexes and views."""
        sep, pad = (",\n", "    ") if formatted else (", ", "")
        lines = []
        single = len(self.partition_key) == 1 and not self.clustering_key
        dense = getattr(self, "is_compact_storage", False) and "dense" in self.flags
        for col in self.columns.values():
            if dense and col.kind == "regular" and col.cql_type == "empty":
                continue
            text = "%s %s%s" % (protect_name(col.name), col.cql_type,
                                " static" if col.is_static else "")
            if single and col is self.partition_key[0]:
                text += " PRIMARY KEY"
            lines.append(pad + text)
        if not single and self.partition_key:
            pk = ", ".join(protect_name(c.name) for c in self.partition_key)
            key = "(%s)" % pk if len(self.partition_key) > 1 else pk
            if self.clustering_key:
                key += ", " + ", ".join(protect_name(c.name) for c in self.clustering_key)
            lines.append("%sPRIMARY KEY (%s)" % (pad, key))
        props = self._options_cql(formatted)
        return "%s TABLE %s.%s (%s%s%s)%s" % (
            "VIRTUAL" if self.virtual else "CREATE", protect_name(self.keyspace_name),
            protect_name(self.name), "\n" if formatted else "", sep.join(lines),
            "\n" if formatted else "", " WITH " + props if props else "")

    def _all_as_cql(self):
        cql = self.as_cql_query(formatted=True) + ";"
        for index in self.indexes.values():
            cql += "\n%s;" % index.as_cql_query()
        for trigger in self.triggers.values():
            cql += "\n%s;" % trigger.as_cql_query()
        for view in self.views.values():
            cql += "\n\n%s;" % view.as_cql_query(formatted=True)
        return cql

    def export_as_string(self):
        """CQL that re-creates the table, its indexes, triggers and views."""
        if self.unparsed:
            return _unparsed_comment("Table", "%s.%s" % (self.keyspace_name, self.name),
                                     self.unparsed, self._all_as_cql())
        if self.virtual:
            return ("/*\nWarning: Table %s.%s is a virtual table and cannot be recreated with "
                    "CQL.\nStructure, for reference:\n%s\n*/" % (
                        self.keyspace_name, self.name, self._all_as_cql()))
        return self._all_as_cql()

    def __repr__(self):
        return "<TableMetadata %s.%s>" % (self.keyspace_name, self.name)


class MaterializedViewMetadata(_Structure):
    """A materialized view: keyspace_name, name, base_table_name, partition_key,
    clustering_key, columns, include_all_columns, where_clause, options, unparsed."""

    def __init__(self, keyspace_name, view_name, base_table_name, include_all_columns,
                 where_clause, options):
        self.keyspace_name = keyspace_name
        self.name = view_name
        self.base_table_name = base_table_name
        self.partition_key = []
        self.clustering_key = []
        self.columns = OrderedDict()
        self.include_all_columns = include_all_columns
        self.where_clause = where_clause
        self.options = options or {}
        self.extensions = {}
        self.unparsed = None

    def as_cql_query(self, formatted=False):
        sep = "\n    " if formatted else " "
        selected = "*" if self.include_all_columns else ", ".join(
            protect_name(c) for c in self.columns)
        pk = ", ".join(protect_name(c.name) for c in self.partition_key)
        key = "((%s)" % pk if len(self.partition_key) > 1 else "(%s" % pk
        if self.clustering_key:
            key += ", " + ", ".join(protect_name(c.name) for c in self.clustering_key)
        key += ")"
        ks = protect_name(self.keyspace_name)
        return ("CREATE MATERIALIZED VIEW %s.%s AS%sSELECT %s%sFROM %s.%s%sWHERE %s%s"
                "PRIMARY KEY %s%sWITH %s" % (
                    ks, protect_name(self.name), sep, selected, sep, ks,
                    protect_name(self.base_table_name), sep, self.where_clause, sep, key, sep,
                    self._options_cql(formatted)))

    def export_as_string(self):
        cql = self.as_cql_query(formatted=True) + ";"
        if self.unparsed:
            return _unparsed_comment("View", "%s.%s" % (self.keyspace_name, self.name),
                                     self.unparsed, cql)
        return cql


class IndexMetadata(object):
    """A secondary index: keyspace_name, table_name, name, kind ('COMPOSITES', 'KEYS',
    'CUSTOM'), index_options (the map; 'target', 'class_name' for custom ones)."""

    def __init__(self, keyspace_name, table_name, index_name, kind, index_options):
        self.keyspace_name = keyspace_name
        self.table_name = table_name
        self.name = index_name
        self.kind = kind
        self.index_options = dict(index_options or {})

    def as_cql_query(self):
        options = dict(self.index_options)
        target = options.pop("target", "")
        on = "%s.%s (%s)" % (protect_name(self.keyspace_name), protect_name(self.table_name),
                             target)
        if self.kind != "CUSTOM":
            return "CREATE INDEX %s ON %s" % (protect_name(self.name), on)
        cql = "CREATE CUSTOM INDEX %s ON %s USING '%s'" % (
            protect_name(self.name), on, options.pop("class_name", ""))
        if options:
            cql += " WITH OPTIONS = %s" % _map_literal(options)
        return cql

    def export_as_string(self):
        return self.as_cql_query() + ";"


class TriggerMetadata(object):
    """A trigger: table (TableMetadata), name, options ('class')."""

    def __init__(self, table_metadata, trigger_name, options=None):
        self.table = table_metadata
        self.name = trigger_name
        self.options = dict(options or {})

    def as_cql_query(self):
        return "CREATE TRIGGER %s ON %s.%s USING %s" % (
            protect_name(self.name), protect_name(self.table.keyspace_name),
            protect_name(self.table.name), protect_value(self.options.get("class", "")))

    def export_as_string(self):
        return self.as_cql_query() + ";"


class UserType(object):
    """A user-defined type: keyspace, name, field_names, field_types (CQL texts)."""

    def __init__(self, keyspace, name, field_names, field_types):
        self.keyspace = keyspace
        self.name = name
        self.field_names = list(field_names or ())
        self.field_types = list(field_types or ())
        self.unparsed = None

    def as_cql_query(self, formatted=False):
        sep, pad = (",\n", "    ") if formatted else (", ", "")
        fields = sep.join("%s%s %s" % (pad, protect_name(n), t)
                          for n, t in zip(self.field_names, self.field_types))
        return "CREATE TYPE %s.%s (%s%s%s)" % (
            protect_name(self.keyspace), protect_name(self.name), "\n" if formatted else "",
            fields, "\n" if formatted else "")

    def export_as_string(self):
        cql = self.as_cql_query(formatted=True) + ";"
        if self.unparsed:
            return _unparsed_comment("Type", "%s.%s" % (self.keyspace, self.name),
                                     self.unparsed, cql)
        return cql


class Function(object):
    """A user-defined function: keyspace, name, argument_types, argument_names, return_type,
    language, body, called_on_null_input, deterministic, monotonic, monotonic_on."""

    def __init__(self, keyspace, name, argument_types, argument_names, return_type, language,
                 body, called_on_null_input, deterministic=False, monotonic=False,
                 monotonic_on=()):
        self.keyspace = keyspace
        self.name = name
        self.argument_types = list(argument_types or ())
        self.argument_names = list(argument_names or ())
        self.return_type = return_type
        self.language = language
        self.body = body
        self.called_on_null_input = called_on_null_input
        self.deterministic = deterministic
        self.monotonic = monotonic
        self.monotonic_on = list(monotonic_on or ())
        self.unparsed = None

    @property
    def signature(self):
        """``name(type,type)``: the key in ``KeyspaceMetadata.functions`` / ``aggregates``."""
        return "%s(%s)" % (protect_name(self.name), ",".join(
            _strip_frozen(t) for t in self.argument_types))

    def as_cql_query(self, formatted=False):
        sep = "\n    " if formatted else " "
        args = ", ".join("%s %s" % (protect_name(n), _strip_frozen(t))
                         for n, t in zip(self.argument_names, self.argument_types))
        extra = ""
        if self.deterministic:
            extra += "DETERMINISTIC" + sep
        if self.monotonic:
            extra += "MONOTONIC" + sep
        elif self.monotonic_on:
            extra += "MONOTONIC ON %s%s" % (self.monotonic_on[0], sep)
        return "CREATE FUNCTION %s.%s(%s)%s%s ON NULL INPUT%sRETURNS %s%s%sLANGUAGE %s%s" \
               "AS $$%s$$" % (
                   protect_name(self.keyspace), protect_name(self.name), args, sep,
                   "CALLED" if self.called_on_null_input else "RETURNS NULL", sep,
                   self.return_type, sep, extra, self.language, sep, self.body)

    def export_as_string(self):
        return self.as_cql_query(formatted=True) + ";"


class Aggregate(object):
    """A user-defined aggregate: keyspace, name, argument_types, state_func, state_type,
    final_func, initial_condition (CQL literal text), return_type, deterministic."""

    def __init__(self, keyspace, name, argument_types, state_func, state_type, final_func,
                 initial_condition, return_type, deterministic=False):
        self.keyspace = keyspace
        self.name = name
        self.argument_types = list(argument_types or ())
        self.state_func = state_func
        self.state_type = state_type
        self.final_func = final_func
        self.initial_condition = initial_condition
        self.return_type = return_type
        self.deterministic = deterministic
        self.unparsed = None

    @property
    def signature(self):
        """``name(type,type)``: the key in ``KeyspaceMetadata.functions`` / ``aggregates``."""
        return "%s(%s)" % (protect_name(self.name), ",".join(
            _strip_frozen(t) for t in self.argument_types))

    def as_cql_query(self, formatted=False):
        sep = "\n    " if formatted else " "
        cql = "CREATE AGGREGATE %s.%s(%s)%sSFUNC %s%sSTYPE %s" % (
            protect_name(self.keyspace), protect_name(self.name),
            ", ".join(_strip_frozen(t) for t in self.argument_types), sep,
            protect_name(self.state_func), sep, _strip_frozen(self.state_type or ""))
        if self.final_func:
            cql += "%sFINALFUNC %s" % (sep, protect_name(self.final_func))
        if self.initial_condition is not None:
            cql += "%sINITCOND %s" % (sep, self.initial_condition)
        if self.deterministic:
            cql += sep + "DETERMINISTIC"
        return cql

    def export_as_string(self):
        return self.as_cql_query(formatted=True) + ";"


# --- building the model from rows ---------------------------------------------------------------

def _safe_type_names(text):
    try:
        return _type_names(text)
    except ValueError:
        return []


def _group(rows, *keys):
    out = OrderedDict()
    for row in rows or ():
        out.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return out


def _warn(kind, name, exc):
    log.warning("schema metadata: %s %s could not be parsed (%s); it is marked unparsed",
                kind, name, exc)
    return "%s: %s" % (type(exc).__name__, exc)


def _table_options(row):
    return OrderedDict((k, v) for k, v in sorted(row.items())
                       if k not in _STRUCTURAL_TABLE_COLUMNS and v is not None)


def _build_columns(structure, col_rows, user_types):
    """Fill partition_key / clustering_key / columns from system_schema.columns rows."""
    pk, ck, rest = [], [], []
    for row in col_rows:
        name = row["column_name"]
        kind = row["kind"]
        cql_type = row["type"]
        _check_type(cql_type, user_types)
        position = row.get("position", -1)
        position = -1 if position is None else position
        col = ColumnMetadata(structure, name, cql_type, kind == "static",
                             (row.get("clustering_order") or "none").lower() == "desc",
                             kind, position)
        if kind == "partition_key":
            pk.append(col)
        elif kind == "clustering":
            ck.append(col)
        elif kind in ("regular", "static"):
            rest.append(col)
        else:
            raise ValueError("column %s has the unknown kind %r" % (name, kind))
    pk.sort(key=lambda c: c.position)
    ck.sort(key=lambda c: c.position)
    rest.sort(key=lambda c: c.name)
    if not pk:
        raise ValueError("no partition key column")
    structure.partition_key = pk
    structure.clustering_key = ck
    structure.columns = OrderedDict((c.name, c) for c in pk + ck + rest)


def _build_table(ks, row, col_rows, index_rows, trigger_rows, virtual=False):
    name = row.get("table_name")
    table = TableMetadata(ks.name, name, virtual=virtual)
    try:
        if not virtual:
            table.options = _table_options(row)
            table.id = row.get("id")
            table.extensions = dict(row.get("extensions") or {})
            flags = frozenset(row.get("flags") or ("compound",))
            table.flags = flags
            table.is_compact_storage = ("dense" in flags or "super" in flags or
                                        "compound" not in flags)
        else:
            table.options = OrderedDict()
        _build_columns(table, col_rows, ks.user_types)
        for irow in index_rows:
            index = IndexMetadata(ks.name, name, irow["index_name"], irow.get("kind"),
                                  irow.get("options") or {})
            table.indexes[index.name] = index
        for trow in trigger_rows:
            table.triggers[trow["trigger_name"]] = TriggerMetadata(
                table, trow["trigger_name"], trow.get("options") or {})
    except Exception as exc:     # noqa: BLE001 - a bad row is reported, never raised
        table.unparsed = _warn("table", "%s.%s" % (ks.name, name), exc)
    return table


def _build_view(ks, row, col_rows):
    name = row.get("view_name")
    view = MaterializedViewMetadata(ks.name, name, row.get("base_table_name"),
                                    bool(row.get("include_all_columns")),
                                    row.get("where_clause"), None)
    try:
        view.options = _table_options(row)
        view.extensions = dict(row.get("extensions") or {})
        _build_columns(view, col_rows, ks.user_types)
    except Exception as exc:     # noqa: BLE001 - a bad row is reported, never raised
        view.unparsed = _warn("view", "%s.%s" % (ks.name, name), exc)
    return view


def _build_type(ks, row):
    utype = UserType(ks.name, row.get("type_name"), row.get("field_names"),
                     row.get("field_types"))
    return utype


def _build_function(ks, row):
    return Function(ks.name, row["function_name"], row.get("argument_types"),
                    row.get("argument_names"), row.get("return_type"), row.get("language"),
                    row.get("body"), bool(row.get("called_on_null_input")),
                    bool(row.get("deterministic")), bool(row.get("monotonic")),
                    row.get("monotonic_on"))


def _build_aggregate(ks, row):
    return Aggregate(ks.name, row["aggregate_name"], row.get("argument_types"),
                     row.get("state_func"), row.get("state_type"), row.get("final_func"),
                     row.get("initcond"), row.get("return_type"),
                     bool(row.get("deterministic")))


def build_keyspaces(rows, virtual_rows=None):
    """The schema model from system_schema rows.

    Args:
        rows: {system_schema table name (see SCHEMA_TABLES): [row dict, ...]}; a table
            missing from the dict (an older Cassandra) is taken as empty.
        virtual_rows: {"keyspaces"/"tables"/"columns": rows} of system_virtual_schema, or None.

    Returns:
        OrderedDict keyspace name -> KeyspaceMetadata.  Never raises for a bad row: the
        element is marked ``unparsed`` and a warning logged.
    """
    out = OrderedDict()
    columns = _group(rows.get("columns"), "keyspace_name", "table_name")
    indexes = _group(rows.get("indexes"), "keyspace_name", "table_name")
    triggers = _group(rows.get("triggers"), "keyspace_name", "table_name")
    for krow in rows.get("keyspaces") or ():
        name = krow.get("keyspace_name")
        try:
            ks = KeyspaceMetadata(name, bool(krow.get("durable_writes", True)),
                                  replication=dict(krow.get("replication") or {}))
            if not ks.replication.get("class"):
                raise ValueError("no replication class")
        except Exception as exc:     # noqa: BLE001 - a bad row is reported, never raised
            reason = _warn("keyspace", name, exc)
            ks = KeyspaceMetadata(name, bool(krow.get("durable_writes", True)),
                                  replication={})
            ks.unparsed = reason
        out[name] = ks
    for kind, builder, attr, key in (
            ("types", _build_type, "user_types", None),
            ("functions", _build_function, "functions", "signature"),
            ("aggregates", _build_aggregate, "aggregates", "signature")):
        for row in rows.get(kind) or ():
            ks = out.get(row.get("keyspace_name"))
            if ks is None:
                continue
            try:
                element = builder(ks, row)
            except Exception as exc:     # noqa: BLE001 - a bad row is reported, never raised
                _warn(kind[:-1], "%s.%s" % (ks.name, row), exc)
                continue
            getattr(ks, attr)[getattr(element, key) if key else element.name] = element
    for ks in out.values():          # a field of an unknown type: the type is unparsed
        for utype in ks.user_types.values():
            try:
                if len(utype.field_names) != len(utype.field_types):
                    raise ValueError("field names and types differ in number")
                for text in utype.field_types:
                    _check_type(text, ks.user_types)
            except Exception as exc:     # noqa: BLE001 - a bad row is reported, never raised
                utype.unparsed = _warn("type", "%s.%s" % (ks.name, utype.name), exc)
    for row in rows.get("tables") or ():
        ks = out.get(row.get("keyspace_name"))
        if ks is None:
            continue
        key = (ks.name, row.get("table_name"))
        table = _build_table(ks, row, columns.get(key, ()), indexes.get(key, ()),
                             triggers.get(key, ()))
        ks.tables[table.name] = table
        for index in table.indexes.values():
            ks.indexes[index.name] = index
    for row in rows.get("views") or ():
        ks = out.get(row.get("keyspace_name"))
        if ks is None:
            continue
        view = _build_view(ks, row, columns.get((ks.name, row.get("view_name")), ()))
        ks.views[view.name] = view
        base = ks.tables.get(view.base_table_name)
        if base is not None:
            base.views[view.name] = view
    if virtual_rows:
        vcolumns = _group(virtual_rows.get("columns"), "keyspace_name", "table_name")
        for krow in virtual_rows.get("keyspaces") or ():
            name = krow.get("keyspace_name")
            out[name] = KeyspaceMetadata(name, False, replication={}, virtual=True)
        for row in virtual_rows.get("tables") or ():
            ks = out.get(row.get("keyspace_name"))
            if ks is None or not ks.virtual:
                continue
            table = _build_table(ks, row, vcolumns.get((ks.name, row.get("table_name")), ()),
                                 (), (), virtual=True)
            if row.get("comment"):
                table.options["comment"] = row["comment"]
            ks.tables[table.name] = table
    return out
