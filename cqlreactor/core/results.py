"""RESULT messages (opcode 0x08) and the ``Message`` base class every message shares.

The base lives here rather than in ``messages.py`` so that this module needs nothing from
``messages.py``: ``messages`` imports ``results`` and re-exports everything, never the reverse.

Rows decoding is the hot path of the whole driver.  Column metadata is cached by its exact bytes,
so a result page whose metadata we have seen before skips both the metadata parse and the
construction of its row decoder (``types.make_row_decoder``), and the rows are then decoded by
that one callable with no per-cell work here.

Encoding serves the server role (the simulated cluster and the self check answer with these
classes): ``rows_body`` writes a Rows body from cells that are already serialized, with column
specs the caller may have encoded once (``write_column_specs``), so a server that keeps its data
as bytes pays no per-value work.
"""

import struct

from .errors import ProtocolError, UnsupportedOperation
from .types import make_row_decoder, read_type_option, write_type_option
from .wire import (read_bytes, read_int, read_short, read_short_bytes, read_string,
                   read_string_list, write_bytes, write_int, write_short, write_short_bytes,
                   write_string, write_string_list)

__all__ = [
    "Message", "ResultMessage", "VoidResult", "RowsResult", "SetKeyspaceResult",
    "PreparedResult", "SchemaChangeResult", "rows_body", "write_column_specs",
    "RESULT_KIND_VOID", "RESULT_KIND_ROWS", "RESULT_KIND_SET_KEYSPACE", "RESULT_KIND_PREPARED",
    "RESULT_KIND_SCHEMA_CHANGE",
]

class Message(object):
    """Base of every message.

    Class attributes: ``opcode``, ``opname`` (spec name, e.g. 'QUERY'), ``is_response``.
    Instance attributes every message has (frame-level extras, see ``messages.decode_message``):
    ``tracing_id`` (uuid.UUID on a traced response), ``warnings`` (list of str),
    ``custom_payload`` (dict str -> bytes) and ``tracing`` (a request asking to be traced).
    Subclasses list their own fields in ``_fields`` (used by ``__eq__`` and ``__repr__``).
    """

    __slots__ = ("tracing_id", "warnings", "custom_payload", "tracing")
    opcode = None
    opname = None
    is_response = False
    _fields = ()

    def __init__(self):
        self.tracing_id = None
        self.warnings = None
        self.custom_payload = None
        self.tracing = False

    def encode_body(self, protocol_version):
        """Return the message body (without frame-level extras) for ``protocol_version``."""
        return b""

    @classmethod
    def decode_body(cls, body, protocol_version):
        """Decode a body (no frame-level extras in front). Raises ProtocolError when malformed."""
        return cls._decode(body, 0, protocol_version)

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        return cls()

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        for field in self._fields + ("tracing_id", "warnings", "custom_payload", "tracing"):
            if getattr(self, field) != getattr(other, field):
                return False
        return True

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._fields))


# --- RESULT ------------------------------------------------------------------------------------------

RESULT_KIND_VOID = 0x0001
RESULT_KIND_ROWS = 0x0002
RESULT_KIND_SET_KEYSPACE = 0x0003
RESULT_KIND_PREPARED = 0x0004
RESULT_KIND_SCHEMA_CHANGE = 0x0005

_GLOBAL_TABLES_SPEC = 0x0001
_HAS_MORE_PAGES = 0x0002
_NO_METADATA = 0x0004
_METADATA_CHANGED = 0x0008

_KIND_BYTES = {}
_ROWS_KIND = b"\x00\x00\x00\x02"
_TWO_INTS = struct.Struct(">ii")
_unpack_two_ints = _TWO_INTS.unpack_from
_unpack_int = struct.Struct(">i").unpack_from


class ResultMessage(Message):
    """RESULT.  ``ResultMessage.decode_body`` returns the subclass for the kind in the body."""

    __slots__ = ()
    opcode = 0x08
    opname = "RESULT"
    is_response = True
    kind = None

    @classmethod
    def decode_body(cls, body, protocol_version, result_metadata=None):
        """Decode a RESULT body.

        Args:
            result_metadata: column metadata (list of (keyspace, table, name, CqlType)) to decode
                Rows with when the server skipped it (NO_METADATA, e.g. EXECUTE with
                skip_metadata); usually ``PreparedResult.result_metadata``.
        """
        return cls._decode(body, 0, protocol_version, result_metadata)

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        if cls is ResultMessage and buf[pos:pos + 4] == _ROWS_KIND:
            return RowsResult._decode_kind(buf, pos + 4, protocol_version, result_metadata)
        kind, pos = read_int(buf, pos)
        result_class = _RESULT_CLASSES.get(kind)
        if result_class is None:
            raise ProtocolError("unknown RESULT kind 0x%04X" % (kind & 0xFFFFFFFF,))
        if cls is not ResultMessage and result_class is not cls:
            raise ProtocolError("RESULT kind 0x%04X is not a %s" % (kind, cls.__name__))
        return result_class._decode_kind(buf, pos, protocol_version, result_metadata)

    def encode_body(self, protocol_version):
        return _KIND_BYTES[self.kind] + self._encode_kind(protocol_version)

    def _encode_kind(self, protocol_version):
        return b""


class VoidResult(ResultMessage):
    __slots__ = ()
    kind = RESULT_KIND_VOID

    @classmethod
    def _decode_kind(cls, buf, pos, protocol_version, result_metadata):
        return cls()


class SetKeyspaceResult(ResultMessage):
    """The answer to ``USE ks``: ``keyspace`` is the new current keyspace."""

    __slots__ = ("keyspace",)
    kind = RESULT_KIND_SET_KEYSPACE
    _fields = ("keyspace",)

    def __init__(self, keyspace):
        ResultMessage.__init__(self)
        self.keyspace = keyspace

    @classmethod
    def _decode_kind(cls, buf, pos, protocol_version, result_metadata):
        keyspace, pos = read_string(buf, pos)
        return cls(keyspace)

    def _encode_kind(self, protocol_version):
        return write_string(self.keyspace)


# --- schema changes (shared with EVENT SCHEMA_CHANGE) ------------------------------------------------

SCHEMA_TARGETS = ("KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE")


def read_schema_change(buf, pos):
    """<change_type><target><options> -> ((change_type, target, keyspace, name, arg_types), pos).

    ``name`` is None for KEYSPACE; ``arg_types`` is a list for FUNCTION/AGGREGATE, else None.
    """
    change_type, pos = read_string(buf, pos)
    target, pos = read_string(buf, pos)
    keyspace, pos = read_string(buf, pos)
    name = arg_types = None
    if target in ("TABLE", "TYPE"):
        name, pos = read_string(buf, pos)
    elif target in ("FUNCTION", "AGGREGATE"):
        name, pos = read_string(buf, pos)
        arg_types, pos = read_string_list(buf, pos)
    elif target != "KEYSPACE":
        raise ProtocolError("unknown schema change target %r" % (target,))
    return (change_type, target, keyspace, name, arg_types), pos


def write_schema_change(change_type, target, keyspace, name=None, arg_types=None):
    parts = [write_string(change_type), write_string(target), write_string(keyspace)]
    if target in ("TABLE", "TYPE", "FUNCTION", "AGGREGATE"):
        parts.append(write_string(name or ""))
        if target in ("FUNCTION", "AGGREGATE"):
            parts.append(write_string_list(arg_types or ()))
    elif target != "KEYSPACE":
        raise ValueError("unknown schema change target %r" % (target,))
    return b"".join(parts)


class SchemaChangeResult(ResultMessage):
    """The answer to a DDL statement.

    Attributes: ``change_type`` ('CREATED'/'UPDATED'/'DROPPED'), ``target`` ('KEYSPACE', 'TABLE',
    'TYPE', 'FUNCTION', 'AGGREGATE'), ``keyspace``, ``name`` (table/type/function/aggregate name,
    None for KEYSPACE), ``arg_types`` (list of CQL type strings for FUNCTION/AGGREGATE).
    """

    __slots__ = ("change_type", "target", "keyspace", "name", "arg_types")
    kind = RESULT_KIND_SCHEMA_CHANGE
    _fields = __slots__

    def __init__(self, change_type, target, keyspace, name=None, arg_types=None):
        ResultMessage.__init__(self)
        self.change_type = change_type
        self.target = target
        self.keyspace = keyspace
        self.name = name
        self.arg_types = arg_types

    @classmethod
    def _decode_kind(cls, buf, pos, protocol_version, result_metadata):
        fields, pos = read_schema_change(buf, pos)
        return cls(*fields)

    def _encode_kind(self, protocol_version):
        return write_schema_change(self.change_type, self.target, self.keyspace, self.name,
                                   self.arg_types)


# --- column metadata ---------------------------------------------------------------------------------

def _read_column_specs(buf, pos, flags, count):
    """(<global_table_spec>?<col_spec_1>...<col_spec_n>) -> (list of 4-tuples, pos)."""
    if count < 0:
        raise ProtocolError("negative column count %d" % (count,))
    # Each column spec takes at least a [string] name and a [short] type id.
    if count * 4 > len(buf) - pos:
        raise ProtocolError("%d column specs cannot fit in the %d bytes left"
                            % (count, len(buf) - pos))
    columns = []
    if flags & _GLOBAL_TABLES_SPEC:
        keyspace, pos = read_string(buf, pos)
        table, pos = read_string(buf, pos)
        for _ in range(count):
            name, pos = read_string(buf, pos)
            ctype, pos = read_type_option(buf, pos)
            columns.append((keyspace, table, name, ctype))
    else:
        for _ in range(count):
            keyspace, pos = read_string(buf, pos)
            table, pos = read_string(buf, pos)
            name, pos = read_string(buf, pos)
            ctype, pos = read_type_option(buf, pos)
            columns.append((keyspace, table, name, ctype))
    return columns, pos


def write_column_specs(columns, protocol_version, flags_out=0):
    """Column specs of (keyspace, table, name, CqlType) columns ->
    (flags with GLOBAL_TABLES_SPEC set when every column shares one table, bytes)."""
    parts = []
    tables = set((c[0], c[1]) for c in columns)
    if len(tables) == 1:
        flags_out |= _GLOBAL_TABLES_SPEC
        keyspace, table = tables.pop()
        parts.append(write_string(keyspace))
        parts.append(write_string(table))
        for column in columns:
            parts.append(write_string(column[2]))
            parts.append(write_type_option(column[3], protocol_version))
    else:
        for column in columns:
            parts.append(write_string(column[0]))
            parts.append(write_string(column[1]))
            parts.append(write_string(column[2]))
            parts.append(write_type_option(column[3], protocol_version))
    return flags_out, b"".join(parts)


# Cache of parsed result metadata, keyed by a cheap prefix of its bytes; an entry is used only when
# the body really holds the entry's whole metadata bytes at that position (``startswith``), so a
# hit is exact (parsing is deterministic: equal bytes always mean equal metadata).  The cached
# column list is shared by every result decoded from it.
_METADATA_CACHE = {}
_METADATA_CACHE_MAX = 512
_KEY_PREFIX = 48
_ENTRIES_PER_KEY = 4   # different metadata sharing a key prefix (same table, other columns)
# Row decoders for caller-supplied metadata (NO_METADATA results), keyed by id(); the entry keeps
# the metadata list alive so its id cannot be reused while cached.
_DECODER_CACHE = {}


def forget_decoders():
    """Drop the cached metadata and row decoders (the decoder choice changed:
    ``cqlreactor.compiled_rows``)."""
    _METADATA_CACHE.clear()
    _DECODER_CACHE.clear()


def _metadata_and_decoder(buf, pos, flags, count, protocol_version):
    # The key prefix must lie inside the metadata: its shortest form is 4 bytes per column (a
    # one-byte name and a type id) plus 4 for the global table spec, or 8 per column without it.
    is_global = flags & _GLOBAL_TABLES_SPEC
    shortest = count * 4 + 4 if is_global else count * 8
    key = (protocol_version, is_global, count,
           buf[pos:pos + (shortest if shortest < _KEY_PREFIX else _KEY_PREFIX)])
    entries = _METADATA_CACHE.get(key)
    if entries is not None:
        for entry in entries:
            if buf.startswith(entry[0], pos):
                return entry[1], entry[2], pos + len(entry[0])
    columns, end = _read_column_specs(buf, pos, flags, count)
    decoder = make_row_decoder([c[3] for c in columns], protocol_version)
    if entries is None:
        if len(_METADATA_CACHE) >= _METADATA_CACHE_MAX:
            _METADATA_CACHE.clear()
        entries = _METADATA_CACHE[key] = []
    elif len(entries) >= _ENTRIES_PER_KEY:
        del entries[0]
    entries.append((bytes(buf[pos:end]), columns, decoder))
    return columns, decoder, end


def _decoder_for(result_metadata, protocol_version):
    key = (id(result_metadata), protocol_version)
    entry = _DECODER_CACHE.get(key)
    if entry is not None and entry[0] is result_metadata:
        return entry[1]
    decoder = make_row_decoder([c[3] for c in result_metadata], protocol_version)
    if len(_DECODER_CACHE) >= _METADATA_CACHE_MAX:
        _DECODER_CACHE.clear()
    _DECODER_CACHE[key] = (result_metadata, decoder)
    return decoder


def _decode_rows(decoder, buf, pos, count, row_count):
    if row_count < 0:
        raise ProtocolError("negative row count %d" % (row_count,))
    left = len(buf) - pos
    # Every cell is at least a 4-byte [bytes] length; rows without columns are capped by the body.
    if row_count * count * 4 > left or (count == 0 and row_count > left):
        raise ProtocolError("%d rows of %d columns cannot fit in the %d bytes left"
                            % (row_count, count, left))
    try:
        return decoder(buf, pos, row_count)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError("malformed rows: %s: %s" % (type(exc).__name__, exc))


class RowsResult(ResultMessage):
    """A page of rows.

    Attributes:
        column_metadata: list of (keyspace, table, name, CqlType); when the server skipped the
            metadata (``no_metadata``) this is the ``result_metadata`` the decoder was given
            (or None if none was given: the rows then wait for ``decode_rows``).
        rows: list of tuples (None until decoded when no metadata was available).
        paging_state: bytes to fetch the next page with, or None on the last page.
        no_metadata: the server sent (or is to send) no column specs.
        result_metadata_id: v5 only: the new result metadata id when the server says the
            metadata changed (METADATA_CHANGED); resend it with the next EXECUTE.
    """

    __slots__ = ("column_metadata", "rows", "paging_state", "no_metadata", "result_metadata_id",
                 "_pending")
    kind = RESULT_KIND_ROWS
    _fields = ("column_metadata", "rows", "paging_state", "no_metadata", "result_metadata_id")

    def __init__(self, column_metadata, rows, paging_state=None, no_metadata=False,
                 result_metadata_id=None):
        ResultMessage.__init__(self)
        self.column_metadata = column_metadata
        self.rows = rows
        self.paging_state = paging_state
        self.no_metadata = no_metadata
        self.result_metadata_id = result_metadata_id
        self._pending = None

    @property
    def has_more_pages(self):
        return self.paging_state is not None

    @property
    def column_names(self):
        return [c[2] for c in self.column_metadata] if self.column_metadata is not None else None

    @property
    def column_types(self):
        return [c[3] for c in self.column_metadata] if self.column_metadata is not None else None

    @classmethod
    def _decode_kind(cls, buf, pos, protocol_version, result_metadata):
        if type(buf) is not bytes:
            buf = bytes(buf)
        if len(buf) - pos >= 12:
            flags, count = _unpack_two_ints(buf, pos)
            if not flags & (_HAS_MORE_PAGES | _METADATA_CHANGED) and count >= 0:
                # The common page, without the general path's calls: the metadata (cached by
                # its bytes) or the caller's (skip_metadata), then the rows.
                pos += 8
                no_metadata = bool(flags & _NO_METADATA)
                if not no_metadata:
                    columns, decoder, pos = _metadata_and_decoder(buf, pos, flags, count,
                                                                  protocol_version)
                elif result_metadata is not None and len(result_metadata) == count:
                    columns = result_metadata
                    decoder = _decoder_for(result_metadata, protocol_version)
                else:
                    return cls._decode_kind_general(buf, pos - 8, protocol_version,
                                                    result_metadata)
                if len(buf) - pos < 4:
                    raise ProtocolError("truncated row count at offset %d" % (pos,))
                # the decoder checks that row_count rows can fit; it raises ProtocolError for
                # bad cells itself, anything else is translated as _decode_rows does
                try:
                    rows = decoder(buf, pos + 4, _unpack_int(buf, pos)[0])[0]
                except ProtocolError:
                    raise
                except Exception as exc:
                    raise ProtocolError("malformed rows: %s: %s" % (type(exc).__name__, exc))
                message = cls.__new__(cls)
                message.tracing_id = message.warnings = message.custom_payload = None
                message.tracing = False
                message.no_metadata = no_metadata
                message.column_metadata = columns
                message.rows = rows
                message.paging_state = message.result_metadata_id = message._pending = None
                return message
        return cls._decode_kind_general(buf, pos, protocol_version, result_metadata)

    @classmethod
    def _decode_kind_general(cls, buf, pos, protocol_version, result_metadata):
        flags, pos = read_int(buf, pos)
        count, pos = read_int(buf, pos)
        if count < 0:
            raise ProtocolError("negative column count %d" % (count,))
        paging_state = metadata_id = None
        if flags & _HAS_MORE_PAGES:
            paging_state, pos = read_bytes(buf, pos)
        if flags & _METADATA_CHANGED:
            metadata_id, pos = read_short_bytes(buf, pos)
        no_metadata = bool(flags & _NO_METADATA)
        if no_metadata:
            message = cls(result_metadata, None, paging_state, True, metadata_id)
            row_count, pos = read_int(buf, pos)
            if result_metadata is None:
                left = len(buf) - pos
                if row_count < 0 or row_count * count * 4 > left or (count == 0
                                                                      and row_count > left):
                    raise ProtocolError("%d rows of %d columns cannot fit in the %d bytes left"
                                        % (row_count, count, left))
                message._pending = (buf, pos, row_count, count, protocol_version)
                return message
            if len(result_metadata) != count:
                raise ProtocolError("result has %d columns but the given metadata has %d"
                                    % (count, len(result_metadata)))
            decoder = _decoder_for(result_metadata, protocol_version)
            message.rows = _decode_rows(decoder, buf, pos, count, row_count)[0]
            return message
        columns, decoder, pos = _metadata_and_decoder(buf, pos, flags, count, protocol_version)
        row_count, pos = read_int(buf, pos)
        rows = _decode_rows(decoder, buf, pos, count, row_count)[0]
        return cls(columns, rows, paging_state, False, metadata_id)

    def decode_rows(self, result_metadata):
        """Decode rows that arrived without metadata, using ``result_metadata``; returns rows."""
        if self._pending is None:
            return self.rows
        buf, pos, row_count, count, protocol_version = self._pending
        if len(result_metadata) != count:
            raise ProtocolError("result has %d columns but the given metadata has %d"
                                % (count, len(result_metadata)))
        decoder = _decoder_for(result_metadata, protocol_version)
        self.rows = _decode_rows(decoder, buf, pos, count, row_count)[0]
        self.column_metadata = result_metadata
        self._pending = None
        return self.rows

    def _encode_kind(self, protocol_version):
        columns = self.column_metadata or []
        types = [c[3] for c in columns]
        serialized = []
        for row in self.rows or ():
            if len(row) != len(types):
                raise ValueError("row %r does not have %d columns" % (row, len(types)))
            serialized.append([None if value is None else ctype.serialize(value, protocol_version)
                               for ctype, value in zip(types, row)])
        parts = []
        _rows_parts(parts, columns, len(columns), serialized, self.paging_state,
                    self.no_metadata, self.result_metadata_id, protocol_version, None)
        return b"".join(parts)


def rows_body(column_metadata, rows, paging_state=None, no_metadata=False,
              result_metadata_id=None, protocol_version=4, column_specs=None):
    """A whole Rows RESULT body (kind included) from rows of serialized cells.

    Args:
        column_metadata: list of (keyspace, table, name, CqlType).
        rows: sequences of cells, each bytes (the serialized value) or None (null).
        column_specs: (flags, bytes) that ``write_column_specs`` returned for these columns,
            when the caller keeps it (a server answering the same columns again and again).
    """
    parts = [_ROWS_KIND]
    _rows_parts(parts, column_metadata, len(column_metadata), rows, paging_state, no_metadata,
                result_metadata_id, protocol_version, column_specs)
    return b"".join(parts)


_NULL_CELL = b"\xff\xff\xff\xff"
_pack_int = struct.Struct(">i").pack


def _rows_parts(parts, columns, count, rows, paging_state, no_metadata, result_metadata_id,
                protocol_version, column_specs):
    """<metadata><rows_count><rows> of a Rows body, appended to ``parts``."""
    head = []
    flags = 0
    if paging_state is not None:
        flags |= _HAS_MORE_PAGES
        head.append(write_bytes(paging_state))
    if result_metadata_id is not None:
        if protocol_version < 5:
            raise UnsupportedOperation("result metadata ids need protocol v5")
        flags |= _METADATA_CHANGED
        head.append(write_short_bytes(result_metadata_id))
    if no_metadata:
        flags |= _NO_METADATA
        specs = b""
    elif column_specs is not None:
        flags |= column_specs[0]
        specs = column_specs[1]
    else:
        flags, specs = write_column_specs(columns, protocol_version, flags)
    parts.append(_TWO_INTS.pack(flags, count))
    parts.extend(head)
    parts.append(specs)
    parts.append(_pack_int(len(rows)))
    append = parts.append
    pack = _pack_int
    for row in rows:
        for value in row:
            if value is None:
                append(_NULL_CELL)
            else:
                append(pack(len(value)))
                append(value)


def _read_result_metadata(buf, pos, protocol_version):
    """Rows-style <metadata> (no rows), as found in a Prepared result -> (columns|None, pos)."""
    flags, pos = read_int(buf, pos)
    count, pos = read_int(buf, pos)
    if flags & _HAS_MORE_PAGES:
        _, pos = read_bytes(buf, pos)
    if flags & _METADATA_CHANGED:
        _, pos = read_short_bytes(buf, pos)
    if flags & _NO_METADATA:
        return None, pos
    return _read_column_specs(buf, pos, flags, count)


class PreparedResult(ResultMessage):
    """The answer to PREPARE.

    Attributes:
        query_id: the prepared statement id (bytes) for EXECUTE and BATCH.
        result_metadata_id: v5: the id of ``result_metadata`` (send it with EXECUTE).
        bind_metadata: list of (keyspace, table, name, CqlType) of the bind markers.
        pk_indexes: bind marker index of each partition key column, in key order (may be empty).
        result_metadata: columns the statement returns, or None (no metadata: not a SELECT).
    """

    __slots__ = ("query_id", "result_metadata_id", "bind_metadata", "pk_indexes",
                 "result_metadata")
    kind = RESULT_KIND_PREPARED
    _fields = __slots__

    def __init__(self, query_id, bind_metadata, pk_indexes=(), result_metadata=None,
                 result_metadata_id=None):
        ResultMessage.__init__(self)
        self.query_id = query_id
        self.bind_metadata = bind_metadata
        self.pk_indexes = list(pk_indexes)
        self.result_metadata = result_metadata
        self.result_metadata_id = result_metadata_id

    @classmethod
    def _decode_kind(cls, buf, pos, protocol_version, result_metadata):
        query_id, pos = read_short_bytes(buf, pos)
        metadata_id = None
        if protocol_version >= 5:
            metadata_id, pos = read_short_bytes(buf, pos)
        flags, pos = read_int(buf, pos)
        count, pos = read_int(buf, pos)
        pk_count = 0
        if protocol_version >= 4:       # v3 has no partition key indexes
            pk_count, pos = read_int(buf, pos)
        if pk_count < 0 or pk_count * 2 > len(buf) - pos:
            raise ProtocolError("%d partition key indexes cannot fit in the %d bytes left"
                                % (pk_count, len(buf) - pos))
        pk_indexes = []
        for _ in range(pk_count):
            index, pos = read_short(buf, pos)
            pk_indexes.append(index)
        bind_metadata, pos = _read_column_specs(buf, pos, flags, count)
        columns, pos = _read_result_metadata(buf, pos, protocol_version)
        return cls(query_id, bind_metadata, pk_indexes, columns, metadata_id)

    def _encode_kind(self, protocol_version):
        parts = [write_short_bytes(self.query_id)]
        if protocol_version >= 5:
            parts.append(write_short_bytes(self.result_metadata_id or b""))
        flags, specs = write_column_specs(self.bind_metadata, protocol_version)
        parts.append(write_int(flags))
        parts.append(write_int(len(self.bind_metadata)))
        if protocol_version >= 4:       # v3 has no partition key indexes
            parts.append(write_int(len(self.pk_indexes)))
            parts.extend(write_short(i) for i in self.pk_indexes)
        parts.append(specs)
        if self.result_metadata is None:
            parts.append(write_int(_NO_METADATA) + write_int(0))
        else:
            flags, specs = write_column_specs(self.result_metadata, protocol_version)
            parts.append(write_int(flags) + write_int(len(self.result_metadata)) + specs)
        return b"".join(parts)


_RESULT_CLASSES = {
    RESULT_KIND_VOID: VoidResult,
    RESULT_KIND_ROWS: RowsResult,
    RESULT_KIND_SET_KEYSPACE: SetKeyspaceResult,
    RESULT_KIND_PREPARED: PreparedResult,
    RESULT_KIND_SCHEMA_CHANGE: SchemaChangeResult,
}
for _kind in _RESULT_CLASSES:
    _KIND_BYTES[_kind] = write_int(_kind)
