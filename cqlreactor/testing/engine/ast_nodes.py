"""Statement nodes of the simulated cluster's CQL parser (``parser``), and type rendering.

Small slotted classes naming what a statement says; they hold no schema knowledge.
"""

import re

__all__ = [
    "TypeExpr", "Const", "Bind", "Collection", "FuncCall", "Relation", "Selector",
    "Use", "CreateKeyspace", "AlterKeyspace", "DropKeyspace", "CreateTable", "DropTable",
    "AlterTable", "CreateType", "DropType", "Insert", "Update", "Delete", "Select", "Truncate",
    "Batch", "Unsupported", "render_type", "NATIVE_TYPES", "RESERVED",
]


class _Node(object):
    __slots__ = ()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (s, getattr(self, s, None)) for s in self.__slots__))

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, s, None) == getattr(other, s, None) for s in self.__slots__)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


def _node(name, fields, doc):
    def __init__(self, *args, **kwargs):
        if len(args) > len(fields):
            raise TypeError("too many arguments")
        for f, a in zip(fields, args):
            setattr(self, f, a)
        for f in fields[len(args):]:
            setattr(self, f, kwargs.pop(f, None))
        if kwargs:
            raise TypeError("unknown fields %r" % (sorted(kwargs),))
    return type(name, (_Node,), {"__slots__": tuple(fields), "__init__": __init__,
                                 "__doc__": doc})


TypeExpr = _node("TypeExpr", ["name", "params", "keyspace"], """A CQL type as written.

    name: lowercased native name ('int', 'text', ...), 'list', 'set', 'map', 'tuple', 'frozen',
    'vector' (params = [element, dimension]), 'custom' (params = [class name]) or 'udt'
    (params = [type name], keyspace = the keyspace written before a dot, or None)""")

Const = _node("Const", ["kind", "value", "text"],
              "A literal: kind in 'int' 'float' 'str' 'uuid' 'bool' 'null' 'blob' 'nan' 'inf' "
              "'duration'; text: the literal as written, for the kinds whose value would lose "
              "it (a float's digits, for decimal columns; a duration's units)")
Bind = _node("Bind", ["index", "name"], "A bind marker: ``?`` (name None) or ``:name``")
Collection = _node("Collection", ["kind", "items"],
                   "A collection literal: kind 'list' 'set' 'map' (items are (k, v)) 'tuple' "
                   "or 'udt' (items are (field, term))")
FuncCall = _node("FuncCall", ["name", "args"], "A function call term such as now() or uuid()")
Relation = _node("Relation", ["column", "op", "term"],
                 "WHERE column op term; op in = < <= > >= != IN CONTAINS 'CONTAINS KEY'; "
                 "column may be ('token', [cols]); for IN, term is a Bind or a list of terms")
Selector = _node("Selector", ["kind", "column", "alias", "args"],
                 "kind: 'column', 'count', 'writetime', 'ttl', 'func'")

Use = _node("Use", ["keyspace"], "USE keyspace")
CreateKeyspace = _node("CreateKeyspace", ["name", "if_not_exists", "options"], "")
DropKeyspace = _node("DropKeyspace", ["name", "if_exists"], "")
CreateTable = _node("CreateTable", ["keyspace", "name", "if_not_exists", "columns",
                                    "partition_key", "clustering", "clustering_order",
                                    "options", "compact"], "")
DropTable = _node("DropTable", ["keyspace", "name", "if_exists"], "")
AlterKeyspace = _node("AlterKeyspace", ["name", "if_exists", "options"], "")
AlterTable = _node("AlterTable", ["keyspace", "name", "action", "payload"], "")
CreateType = _node("CreateType", ["keyspace", "name", "if_not_exists", "fields"], "")
DropType = _node("DropType", ["keyspace", "name", "if_exists"], "")
Insert = _node("Insert", ["keyspace", "table", "columns", "values", "if_not_exists",
                          "ttl", "timestamp", "bind_count"], "")
InsertJson = _node("InsertJson", ["keyspace", "table", "json", "default_unset",
                                  "if_not_exists", "ttl", "timestamp", "bind_count"],
                   "INSERT INTO t JSON <string or bind marker> [DEFAULT NULL|UNSET] ...")
Update = _node("Update", ["keyspace", "table", "assignments", "where", "ttl", "timestamp",
                          "if_exists", "conditions", "bind_count"],
               "assignments: (column, op, term, key) with op '=' '+=' '-=' 'prepend'")
Delete = _node("Delete", ["keyspace", "table", "columns", "where", "timestamp", "if_exists",
                          "conditions", "bind_count"], "columns: list of (column, key_term)")
Select = _node("Select", ["keyspace", "table", "selectors", "where", "order_by", "limit",
                          "per_partition_limit", "allow_filtering", "distinct", "json",
                          "bind_count"], "selectors None means *")
Truncate = _node("Truncate", ["keyspace", "table"], "")
Batch = _node("Batch", ["kind", "statements", "timestamp", "bind_count"],
              "kind: 'LOGGED' 'UNLOGGED' 'COUNTER'")
Unsupported = _node("Unsupported", ["what"], "Recognised CQL that the simulator does not run")
Describe = _node("Describe", ["kind", "keyspace", "name", "only", "full", "internals"],
                 "DESCRIBE: kind 'keyspaces' 'tables' 'types' 'functions' 'aggregates' "
                 "'schema' 'keyspace' 'table' 'type' 'cluster' or 'name' (DESCRIBE x, "
                 "resolved when it runs)")

NATIVE_TYPES = frozenset([
    "ascii", "bigint", "blob", "boolean", "counter", "date", "decimal", "double", "duration",
    "float", "inet", "int", "smallint", "text", "time", "timestamp", "timeuuid", "tinyint",
    "uuid", "varchar", "varint",
])

# Words that cannot be unquoted identifiers (a subset of Cassandra's reserved keywords).
RESERVED = frozenset([
    "add", "allow", "alter", "and", "apply", "asc", "authorize", "batch", "begin", "by",
    "columnfamily", "create", "delete", "desc", "describe", "drop", "entries", "execute", "from",
    "full", "grant", "if", "in", "index", "infinity", "insert", "into", "keyspace", "limit",
    "modify", "nan", "norecursive", "not", "null", "of", "on", "or", "order", "primary",
    "rename", "revoke", "schema", "select", "set", "table", "to", "token", "truncate",
    "unlogged", "update", "use", "using", "where", "with",
])


def render_type(t):
    """CQL text of a TypeExpr, as Cassandra prints it in system_schema (UDT names bare)."""
    name = t.name
    if name == "udt":
        return _quote_if_needed(t.params[0])
    if name == "custom":
        return "'%s'" % (t.params[0],)
    if name == "vector":
        return "vector<%s, %d>" % (render_type(t.params[0]), t.params[1])
    if t.params:
        return "%s<%s>" % (name, ", ".join(render_type(p) for p in t.params))
    return name


_PLAIN_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def _quote_if_needed(name):
    if _PLAIN_ID.match(name) and name not in RESERVED:
        return name
    return '"%s"' % name.replace('"', '""')


#: an identifier as CQL text: bare when it can be, double-quoted otherwise
quote_identifier = _quote_if_needed
