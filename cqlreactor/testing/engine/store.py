"""In-memory schema and data for the simulated cluster's CQL engine.

Pure data structures, no CQL parsing and no protocol: keyspaces hold tables and user types;
a table holds partitions keyed by their serialized routing key; a partition holds rows sorted
by clustering key. Every value is kept serialized (bytes, as on the wire); ordering uses
comparable keys computed from those bytes (:func:`sort_key_for`).

One store is shared by every simulated node (data replication is instantaneous); which nodes own
a partition only matters for the engine's availability checks.  Schema is per node by
generation: keyspaces, tables and user types carry ``created_gen``, the engine's schema
generation that created them, and a node sees only those its own applied generation has reached
(``Engine.node_schema``).

Simplifications (documented, deliberate): deletions remove data at once (no tombstones, so a
write with an older ``USING TIMESTAMP`` than a delete is not shadowed); cells keep last-write-wins
by write timestamp; TTLs expire lazily against the engine's injected clock.
"""

import bisect
import decimal
import struct
import uuid
from collections import OrderedDict

from cqlreactor.core.murmur3 import murmur3_token

__all__ = [
    "token_of", "ColumnDef", "UserTypeDef", "Keyspace", "Table", "Partition", "Row",
    "sort_key_for", "routing_key", "split_routing_key",
]

_TOKENS = {}
_MAX_TOKENS = 200000


def token_of(key):
    """The Murmur3 token of a routing key, memoised (hashing in pure Python is slow)."""
    token = _TOKENS.get(key)
    if token is None:
        if len(_TOKENS) >= _MAX_TOKENS:
            _TOKENS.clear()
        token = _TOKENS[key] = murmur3_token(key)
    return token


_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class ColumnDef(object):
    """One column of a table.

    Attributes:
        name: the column name (case as created; quoted names keep their case).
        type_expr: the parsed type (parser.TypeExpr).
        cql_type: the codec (cqlreactor.core.types.CqlType) used on the wire.
        kind: 'partition_key', 'clustering', 'regular' or 'static'.
        position: index within the partition key / clustering key, -1 otherwise.
        order: 'asc', 'desc' (clustering columns) or 'none'.
        sort_key: bytes -> comparable (clustering columns; see sort_key_for).
    """

    __slots__ = ("name", "type_expr", "cql_type", "kind", "position", "order", "sort_key",
                 "type_text")

    def __init__(self, name, type_expr, cql_type, kind, position=-1, order="none",
                 type_text=None):
        self.name = name
        self.type_expr = type_expr
        self.cql_type = cql_type
        self.kind = kind
        self.position = position
        self.order = order
        self.type_text = type_text
        self.sort_key = (sort_key_for(type_expr, order == "desc") if kind == "clustering"
                         else None)

    @property
    def is_counter(self):
        return self.type_expr.name == "counter"

    @property
    def is_multicell(self):
        """Non-frozen collections (list/set/map) accept element updates."""
        return self.type_expr.name in ("list", "set", "map")


class UserTypeDef(object):
    """A user-defined type: field names and parsed field types."""

    __slots__ = ("keyspace", "name", "field_names", "field_types", "field_texts",
                 "created_gen")

    def __init__(self, keyspace, name, field_names, field_types, field_texts):
        self.keyspace = keyspace
        self.name = name
        self.field_names = list(field_names)
        self.field_types = list(field_types)
        self.field_texts = list(field_texts)
        self.created_gen = 0


class Keyspace(object):
    """A keyspace: replication options (strings, as Cassandra stores them), tables, types."""

    __slots__ = ("name", "replication", "durable_writes", "tables", "types", "system",
                 "virtual", "created_gen", "schema_objects")

    def __init__(self, name, replication, durable_writes=True, system=False, virtual=False):
        self.name = name
        self.replication = dict(replication)
        self.durable_writes = durable_writes
        self.tables = OrderedDict()
        self.types = OrderedDict()
        self.system = system
        self.virtual = virtual
        self.created_gen = 0
        self.schema_objects = None   # indexes, views, functions, aggregates (schema_objects)


class Row(object):
    """A clustering row: cells maps column name -> [value bytes, write timestamp, expires_at, ttl].

    ``marker`` is the row marker an INSERT writes (timestamp, expires_at, ttl) — it keeps a
    row alive with every regular column null; UPDATE does not write one.
    """

    __slots__ = ("clustering", "key", "cells", "marker")

    def __init__(self, clustering, key):
        self.clustering = clustering
        self.key = key
        self.cells = {}
        self.marker = None

    def is_live(self, now):
        m = self.marker
        if m is not None and (m[1] is None or m[1] > now):
            return True
        for cell in self.cells.values():
            if cell[2] is None or cell[2] > now:
                return True
        return False

    def value(self, name, now):
        cell = self.cells.get(name)
        if cell is None:
            return None
        if cell[2] is not None and cell[2] <= now:
            return None
        return cell[0]


class Partition(object):
    """The rows of one partition key, sorted by clustering sort key.

    Attributes:
        key: the serialized routing key.
        token: its Murmur3 token.
        components: the serialized partition key column values, in key order.
        rows: list of Row, sorted by Row.key; ``keys`` mirrors their sort keys for bisect.
        static: the static cells (same shape as Row.cells).
    """

    __slots__ = ("key", "token", "components", "rows", "keys", "static")

    def __init__(self, key, components):
        self.key = key
        self.token = token_of(key)
        self.components = components
        self.rows = []
        self.keys = []
        self.static = Row((), ())

    def get_row(self, key):
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            return self.rows[i]
        return None

    def get_or_create_row(self, clustering, key):
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            return self.rows[i]
        row = Row(clustering, key)
        self.keys.insert(i, key)
        self.rows.insert(i, row)
        return row

    def remove_row(self, key):
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
            del self.rows[i]

    def remove_range(self, lo, hi):
        """Remove rows with index in [lo, hi)."""
        del self.keys[lo:hi]
        del self.rows[lo:hi]

    def is_empty(self):
        return not self.rows and not self.static.cells and self.static.marker is None


class Table(object):
    """A table's schema and its data.

    Attributes:
        keyspace, name: the names.
        columns: OrderedDict name -> ColumnDef, in creation order.
        partition_key, clustering: lists of ColumnDef in key order.
        static, regular: lists of ColumnDef sorted by name.
        star: the ``SELECT *`` column order (partition key, clustering, static, regular).
        id: the table uuid. options: the table options (system_schema.tables values).
        partitions: dict routing key -> Partition.
        virtual: True for system tables whose rows the engine generates on read.
    """

    __slots__ = ("keyspace", "name", "columns", "partition_key", "clustering", "static",
                 "regular", "star", "id", "options", "partitions", "_ring", "virtual",
                 "is_counter", "compact", "generation", "created_gen")

    def __init__(self, keyspace, name, columns, table_id=None, options=None, virtual=False,
                 compact=False):
        self.keyspace = keyspace
        self.name = name
        self.columns = OrderedDict((c.name, c) for c in columns)
        self.id = table_id or uuid.uuid4()
        self.options = dict(options or {})
        self.virtual = virtual
        self.compact = compact
        self.partitions = {}
        self._ring = None
        self.generation = 0
        self.created_gen = 0
        self._index_columns()

    def _index_columns(self):
        cols = list(self.columns.values())
        self.partition_key = sorted((c for c in cols if c.kind == "partition_key"),
                                    key=lambda c: c.position)
        self.clustering = sorted((c for c in cols if c.kind == "clustering"),
                                 key=lambda c: c.position)
        self.static = sorted((c for c in cols if c.kind == "static"), key=lambda c: c.name)
        self.regular = sorted((c for c in cols if c.kind == "regular"), key=lambda c: c.name)
        self.star = self.partition_key + self.clustering + self.static + self.regular
        self.is_counter = any(c.is_counter for c in cols)

    def add_column(self, column):
        self.columns[column.name] = column
        self._index_columns()

    def drop_column(self, name):
        del self.columns[name]
        self._index_columns()
        for part in self.partitions.values():
            part.static.cells.pop(name, None)
            for row in part.rows:
                row.cells.pop(name, None)

    # --- data ---
    def get_partition(self, key):
        return self.partitions.get(key)

    def get_or_create_partition(self, key, components):
        part = self.partitions.get(key)
        if part is None:
            part = Partition(key, components)
            self.partitions[key] = part
            self._ring = None
        return part

    def drop_partition_if_empty(self, part):
        if part.is_empty() and self.partitions.get(part.key) is part:
            del self.partitions[part.key]
            self._ring = None

    def truncate(self):
        self.partitions = {}
        self._ring = None

    def ring(self):
        """Partitions in token order (then key bytes, for equal tokens): the scan order."""
        if self._ring is None:
            self._ring = sorted(self.partitions.values(), key=lambda p: (p.token, p.key))
        return self._ring

    def clustering_key(self, values):
        """Sort key of a full or partial clustering prefix (tuple of serialized values)."""
        cols = self.clustering
        return tuple(cols[i].sort_key(v) for i, v in enumerate(values))


# --- routing keys ------------------------------------------------------------------------------

def routing_key(components):
    """The serialized partition key: the single value, or the composite encoding
    (for each component: 2-byte length, the bytes, a 0 byte) for several columns."""
    if len(components) == 1:
        return components[0]
    out = []
    for c in components:
        out.append(struct.pack(">H", len(c)))
        out.append(c)
        out.append(b"\x00")
    return b"".join(out)


def split_routing_key(key, count):
    """Inverse of routing_key for ``count`` components; None when malformed."""
    if count == 1:
        return (key,)
    out = []
    pos = 0
    for _ in range(count):
        if pos + 2 > len(key):
            return None
        n = struct.unpack_from(">H", key, pos)[0]
        pos += 2
        out.append(key[pos:pos + n])
        pos += n + 1
    if pos != len(key):
        return None
    return tuple(out)


# --- comparable sort keys ----------------------------------------------------------------------

class _Desc(object):
    """Reverses the order of a wrapped sort key (for CLUSTERING ORDER BY ... DESC)."""

    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return other.v < self.v

    def __gt__(self, other):
        return other.v > self.v

    def __le__(self, other):
        return other.v <= self.v

    def __ge__(self, other):
        return other.v >= self.v

    def __eq__(self, other):
        return self.v == other.v

    def __ne__(self, other):
        return self.v != other.v

    def __hash__(self):
        return hash(self.v)

    def __repr__(self):
        return "Desc(%r)" % (self.v,)


def _fixed(st):
    def key(b):
        if len(b) != st.size:
            return (0, b)
        return (1, st.unpack(b)[0])
    return key


def _varint(b):
    return int.from_bytes(b, "big", signed=True) if b else 0


def _decimal(b):
    if len(b) < 4:
        return (0, b)
    scale = _I32.unpack_from(b)[0]
    unscaled = int.from_bytes(b[4:], "big", signed=True)
    return decimal.Decimal(unscaled).scaleb(-scale)


def _timeuuid(b):
    # TimeUUIDType orders by timestamp, then by the raw bytes
    if len(b) != 16:
        return (0, 0, b)
    u = uuid.UUID(bytes=b)
    if u.version == 1:
        return (1, u.time, b)
    return (1, 0, b)


def _uuid(b):
    # UUIDType orders by version first; version 1 ids by time; others by bytes
    if len(b) != 16:
        return (0, 0, 0, b)
    version = b[6] >> 4
    if version == 1:
        return (1, version, uuid.UUID(bytes=b).time, b)
    return (1, version, 0, b)


def _bytes(b):
    return b


_NATIVE_KEYS = {
    "tinyint": _fixed(_I8), "smallint": _fixed(_I16), "int": _fixed(_I32),
    "bigint": _fixed(_I64), "counter": _fixed(_I64), "timestamp": _fixed(_I64),
    "time": _fixed(_I64), "float": _fixed(_F32), "double": _fixed(_F64),
    "varint": _varint, "decimal": _decimal, "timeuuid": _timeuuid, "uuid": _uuid,
    # unsigned big-endian / lexicographic byte order
    "date": _bytes, "text": _bytes, "varchar": _bytes, "ascii": _bytes, "blob": _bytes,
    "inet": _bytes, "boolean": _bytes, "duration": _bytes,
}


def _cells(data, count=None):
    """Cells of a serialized collection (count read from the data) or tuple (count None):
    list of bytes or None (null)."""
    pos = 0
    out = []
    n = len(data)
    if count is not None:
        if n < 4:
            raise ValueError("truncated")
        count = _I32.unpack_from(data, 0)[0] * count
        pos = 4
    while (pos < n) if count is None else (len(out) < count):
        if pos + 4 > n:
            raise ValueError("truncated")
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if size < 0:
            out.append(None)
            continue
        out.append(data[pos:pos + size])
        pos += size
    return out


def _composite_key(fns, per):
    """Element-wise order of frozen collections (per = 1 or 2 cells per item) or tuples
    (per None: a fixed field list; a null field sorts first)."""
    def key(b):
        try:
            cells = _cells(b, per)
        except (ValueError, struct.error):
            return ((2, b),)
        out = []
        for i, c in enumerate(cells):
            fn = fns[i % len(fns)] if per is not None else (fns[i] if i < len(fns) else _bytes)
            out.append((0,) if c is None else (1, fn(c)))
        return tuple(out)
    return key


def sort_key_for(type_expr, descending=False):
    """A function serialized bytes -> comparable value ordering like Cassandra's comparator.

    Native types and frozen lists, sets, maps and tuples are exact; UDTs compare by their bytes.
    """
    base = type_expr
    while base.name == "frozen" and base.params:
        base = base.params[0]
    name = base.name
    if name in ("list", "set"):
        fn = _composite_key([sort_key_for(base.params[0])], 1)
    elif name == "map":
        fn = _composite_key([sort_key_for(base.params[0]), sort_key_for(base.params[1])], 2)
    elif name == "tuple":
        fn = _composite_key([sort_key_for(p) for p in base.params], None)
    else:
        fn = _NATIVE_KEYS.get(name, _bytes)
    if descending:
        def desc(b, fn=fn):
            return _Desc(fn(b))
        return desc
    return fn
