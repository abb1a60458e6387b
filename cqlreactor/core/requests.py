"""The request messages that carry statements: QUERY, PREPARE, EXECUTE, BATCH, and their
<query_parameters>; plus the pre-encoded forms the session's hot path sends.

Split out of ``messages.py`` (which re-exports every name here): these are the messages whose
bodies hold values, and the templates below encode a statement's fixed parts once so that each
request only splices its values in.  The session chooses what to send (statement, values,
consistency, page size, paging state, serial consistency, timestamp, keyspace); everything about
how those are laid out in bytes lives here.
"""

import struct

from .errors import ProtocolError, UnsupportedOperation
from .results import Message
from .wire import (UNSET_VALUE, read_byte, read_bytes, read_consistency, read_int, read_long,
                   read_long_string, read_short, read_short_bytes, read_string, read_value,
                   write_byte, write_bytes, write_consistency, write_int, write_long,
                   write_long_string, write_short, write_short_bytes, write_string, write_value)

__all__ = ["QueryParameters", "QueryMessage", "PrepareMessage", "ExecuteMessage", "BatchType",
           "BatchMessage", "PreEncodedRequest", "ExecuteTemplate", "StampedTemplate", "pre_encode"]


# --- QUERY / EXECUTE parameters --------------------------------------------------------

_VALUES = 0x01
_SKIP_METADATA = 0x02
_PAGE_SIZE = 0x04
_PAGING_STATE = 0x08
_SERIAL_CONSISTENCY = 0x10
_DEFAULT_TIMESTAMP = 0x20
_NAMES_FOR_VALUES = 0x40
_WITH_KEYSPACE = 0x80
_NOW_IN_SECONDS = 0x100


def _read_flags(buf, pos, protocol_version):
    if protocol_version >= 5:
        return read_int(buf, pos)
    return read_byte(buf, pos)


def _write_flags(flags, protocol_version, what):
    if protocol_version >= 5:
        return write_int(flags)
    if flags & (_WITH_KEYSPACE | _NOW_IN_SECONDS):
        raise UnsupportedOperation("%s: per-query keyspace and now_in_seconds need protocol v5"
                                   % (what,))
    return write_byte(flags)


def _read_values(buf, pos, with_names):
    n, pos = read_short(buf, pos)
    if n * (6 if with_names else 4) > len(buf) - pos:
        raise ProtocolError("%d values cannot fit in the %d bytes left" % (n, len(buf) - pos))
    values = []
    names = [] if with_names else None
    for _ in range(n):
        if with_names:
            name, pos = read_string(buf, pos)
            names.append(name)
        value, pos = read_value(buf, pos)
        values.append(value)
    return values, names, pos


def _write_values(values, names):
    parts = [write_short(len(values))]
    if names is None:
        parts.extend(write_value(v) for v in values)
    else:
        if len(names) != len(values):
            raise ValueError("%d names for %d values" % (len(names), len(values)))
        for name, value in zip(names, values):
            parts.append(write_string(name))
            parts.append(write_value(value))
    return b"".join(parts)


def _write_shared_tail(fields, flags, tail):
    """The fields <query_parameters> and BATCH end with alike (serial consistency, default
    timestamp, keyspace, now_in_seconds), appended to ``tail`` from ``fields``' attributes of
    those names; returns ``flags`` with theirs added."""
    if fields.serial_consistency is not None:
        flags |= _SERIAL_CONSISTENCY
        tail.append(write_consistency(fields.serial_consistency))
    if fields.timestamp is not None:
        flags |= _DEFAULT_TIMESTAMP
        tail.append(write_long(fields.timestamp))
    if fields.keyspace is not None:
        flags |= _WITH_KEYSPACE
        tail.append(write_string(fields.keyspace))
    if fields.now_in_seconds is not None:
        flags |= _NOW_IN_SECONDS
        tail.append(write_int(fields.now_in_seconds))
    return flags


def _read_shared_tail(fields, flags, buf, pos, protocol_version):
    """The reverse of ``_write_shared_tail``: sets ``fields``' attributes, returns the pos."""
    if flags & _SERIAL_CONSISTENCY:
        fields.serial_consistency, pos = read_consistency(buf, pos)
    if flags & _DEFAULT_TIMESTAMP:
        fields.timestamp, pos = read_long(buf, pos)
    if protocol_version >= 5:
        if flags & _WITH_KEYSPACE:
            fields.keyspace, pos = read_string(buf, pos)
        if flags & _NOW_IN_SECONDS:
            fields.now_in_seconds, pos = read_int(buf, pos)
    return pos


class QueryParameters(object):
    """<query_parameters> shared by QUERY and EXECUTE.

    Args:
        consistency: consistency level code (int).
        values: list of serialized values (bytes, None for null, UNSET_VALUE), or None.
        names: names for ``values`` (named bind markers), or None.
        skip_metadata: ask for Rows without metadata (EXECUTE with known result metadata).
        page_size: rows per page (int), or None.
        paging_state: bytes from a previous page, or None.
        serial_consistency: serial consistency code, or None.
        timestamp: default timestamp in microseconds, or None.
        keyspace: v5: the keyspace to run in, or None.
        now_in_seconds: v5: the server's "now" for TTL/expiry (testing), or None.
    """

    __slots__ = ("consistency", "values", "names", "skip_metadata", "page_size", "paging_state",
                 "serial_consistency", "timestamp", "keyspace", "now_in_seconds")

    def __init__(self, consistency, values=None, names=None, skip_metadata=False, page_size=None,
                 paging_state=None, serial_consistency=None, timestamp=None, keyspace=None,
                 now_in_seconds=None):
        self.consistency = consistency
        self.values = values
        self.names = names
        self.skip_metadata = skip_metadata
        self.page_size = page_size
        self.paging_state = paging_state
        self.serial_consistency = serial_consistency
        self.timestamp = timestamp
        self.keyspace = keyspace
        self.now_in_seconds = now_in_seconds

    def encode(self, protocol_version):
        flags = 0
        tail = []
        if self.values is not None:
            flags |= _VALUES
            if self.names is not None:
                flags |= _NAMES_FOR_VALUES
            tail.append(_write_values(self.values, self.names))
        if self.skip_metadata:
            flags |= _SKIP_METADATA
        if self.page_size is not None:
            flags |= _PAGE_SIZE
            tail.append(write_int(self.page_size))
        if self.paging_state is not None:
            flags |= _PAGING_STATE
            tail.append(write_bytes(self.paging_state))
        flags = _write_shared_tail(self, flags, tail)
        return (write_consistency(self.consistency) + _write_flags(flags, protocol_version, "QUERY")
                + b"".join(tail))

    @classmethod
    def decode(cls, buf, pos, protocol_version):
        """-> (QueryParameters, pos)."""
        consistency, pos = read_consistency(buf, pos)
        flags, pos = _read_flags(buf, pos, protocol_version)
        params = cls(consistency, skip_metadata=bool(flags & _SKIP_METADATA))
        if flags & _VALUES:
            params.values, params.names, pos = _read_values(buf, pos,
                                                            bool(flags & _NAMES_FOR_VALUES))
        if flags & _PAGE_SIZE:
            params.page_size, pos = read_int(buf, pos)
        if flags & _PAGING_STATE:
            params.paging_state, pos = read_bytes(buf, pos)
        return params, _read_shared_tail(params, flags, buf, pos, protocol_version)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return "QueryParameters(%s)" % ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self.__slots__
            if getattr(self, f) not in (None, False) or f == "consistency")


class QueryMessage(Message):
    """QUERY: ``query`` (CQL text) and ``parameters`` (QueryParameters)."""

    __slots__ = ("query", "parameters")
    opcode = 0x07
    opname = "QUERY"
    _fields = __slots__

    def __init__(self, query, parameters):
        Message.__init__(self)
        self.query = query
        self.parameters = parameters

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        query, pos = read_long_string(buf, pos)
        parameters, pos = QueryParameters.decode(buf, pos, protocol_version)
        return cls(query, parameters)

    def encode_body(self, protocol_version):
        return write_long_string(self.query) + self.parameters.encode(protocol_version)


class PrepareMessage(Message):
    """PREPARE: ``query`` and (v5) ``keyspace`` to prepare it in."""

    __slots__ = ("query", "keyspace")
    opcode = 0x09
    opname = "PREPARE"
    _fields = __slots__

    def __init__(self, query, keyspace=None):
        Message.__init__(self)
        self.query = query
        self.keyspace = keyspace

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        query, pos = read_long_string(buf, pos)
        keyspace = None
        if protocol_version >= 5:
            flags, pos = read_int(buf, pos)
            if flags & 0x01:
                keyspace, pos = read_string(buf, pos)
        return cls(query, keyspace)

    def encode_body(self, protocol_version):
        body = write_long_string(self.query)
        if protocol_version >= 5:
            if self.keyspace is not None:
                return body + write_int(0x01) + write_string(self.keyspace)
            return body + write_int(0)
        if self.keyspace is not None:
            raise UnsupportedOperation("PREPARE with a keyspace needs protocol v5")
        return body


class ExecuteMessage(Message):
    """EXECUTE: ``query_id``, ``parameters`` and (v5) ``result_metadata_id``."""

    __slots__ = ("query_id", "parameters", "result_metadata_id")
    opcode = 0x0A
    opname = "EXECUTE"
    _fields = __slots__

    def __init__(self, query_id, parameters, result_metadata_id=None):
        Message.__init__(self)
        self.query_id = query_id
        self.parameters = parameters
        self.result_metadata_id = result_metadata_id

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        query_id, pos = read_short_bytes(buf, pos)
        metadata_id = None
        if protocol_version >= 5:
            metadata_id, pos = read_short_bytes(buf, pos)
        parameters, pos = QueryParameters.decode(buf, pos, protocol_version)
        return cls(query_id, parameters, metadata_id)

    def encode_body(self, protocol_version):
        head = write_short_bytes(self.query_id)
        if protocol_version >= 5:
            head += write_short_bytes(self.result_metadata_id or b"")
        return head + self.parameters.encode(protocol_version)


class BatchType(object):
    LOGGED = 0
    UNLOGGED = 1
    COUNTER = 2


class BatchMessage(Message):
    """BATCH.

    Args:
        batch_type: BatchType.LOGGED / UNLOGGED / COUNTER.
        statements: list of ``(query_or_id, values)`` -- a ``str`` is a query string, ``bytes``
            a prepared statement id; ``values`` a list of serialized values.  When the batch uses
            named values (flag 0x40, which servers reject) each tuple has a third item, the names.
        consistency, serial_consistency, timestamp, keyspace (v5), now_in_seconds (v5).
    """

    __slots__ = ("batch_type", "statements", "consistency", "serial_consistency", "timestamp",
                 "keyspace", "now_in_seconds")
    opcode = 0x0D
    opname = "BATCH"
    _fields = __slots__

    def __init__(self, batch_type, statements, consistency, serial_consistency=None,
                 timestamp=None, keyspace=None, now_in_seconds=None):
        Message.__init__(self)
        self.batch_type = batch_type
        self.statements = statements
        self.consistency = consistency
        self.serial_consistency = serial_consistency
        self.timestamp = timestamp
        self.keyspace = keyspace
        self.now_in_seconds = now_in_seconds

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        batch_type, pos = read_byte(buf, pos)
        n, pos = read_short(buf, pos)
        # each statement is at least: kind byte, a [short bytes] id, a value count
        if n * 5 > len(buf) - pos:
            raise ProtocolError("%d batch statements cannot fit in the %d bytes left"
                                % (n, len(buf) - pos))
        # Whether values carry names (flag 0x40) is only known from the flags after the
        # statements: parse without names, and only in the rare named case parse again.
        start = pos
        try:
            statements, pos = _read_batch_statements(buf, start, n, False)
            consistency, pos = read_consistency(buf, pos)
            flags, pos = _read_flags(buf, pos, protocol_version)
            named = bool(flags & _NAMES_FOR_VALUES)
        except ProtocolError:
            named = True
        if named:
            statements, pos = _read_batch_statements(buf, start, n, True)
            consistency, pos = read_consistency(buf, pos)
            flags, pos = _read_flags(buf, pos, protocol_version)
            if not flags & _NAMES_FOR_VALUES:
                raise ProtocolError("malformed BATCH statements")
        message = cls(batch_type, statements, consistency)
        _read_shared_tail(message, flags, buf, pos, protocol_version)
        return message

    def encode_body(self, protocol_version):
        parts = [write_byte(self.batch_type), write_short(len(self.statements))]
        with_names = any(len(s) > 2 and s[2] is not None for s in self.statements)
        for statement in self.statements:
            query_or_id, values = statement[0], statement[1]
            if isinstance(query_or_id, str):
                parts.append(b"\x00" + write_long_string(query_or_id))
            else:
                parts.append(b"\x01" + write_short_bytes(query_or_id))
            names = statement[2] if with_names else None
            if with_names and names is None:
                raise ValueError("named batch values: every statement needs names")
            parts.append(_write_values(values or (), names))
        flags = _NAMES_FOR_VALUES if with_names else 0
        tail = []
        flags = _write_shared_tail(self, flags, tail)
        parts.append(write_consistency(self.consistency))
        parts.append(_write_flags(flags, protocol_version, "BATCH"))
        parts.extend(tail)
        return b"".join(parts)


def _read_batch_statements(buf, pos, n, with_names):
    statements = []
    for _ in range(n):
        kind, pos = read_byte(buf, pos)
        if kind == 0:
            query_or_id, pos = read_long_string(buf, pos)
        elif kind == 1:
            query_or_id, pos = read_short_bytes(buf, pos)
        else:
            raise ProtocolError("unknown batch statement kind %d" % (kind,))
        values, names, pos = _read_values(buf, pos, with_names)
        statements.append((query_or_id, values, names) if with_names else (query_or_id, values))
    return statements, pos


# --- pre-encoded requests --------------------------------------------------------------

class PreEncodedRequest(Message):
    """A request whose body the caller built once (e.g. a bound statement sent many times)."""

    __slots__ = ("opcode", "body")
    opname = "PRE_ENCODED"
    _fields = __slots__

    def __init__(self, opcode, body):
        Message.__init__(self)
        self.opcode = opcode
        self.body = body

    def encode_body(self, protocol_version):
        return self.body


def pre_encode(message, protocol_version):
    """``message`` as a PreEncodedRequest: its body encoded now, once, for sending many times.

    Only a request without frame-level extras (custom payload, tracing) keeps its meaning: those
    live on the message object, not in the body."""
    return PreEncodedRequest(message.opcode, message.encode_body(protocol_version))


def _after_timestamp(fields):
    """How many bytes follow the default timestamp in a body with ``fields``' shared tail."""
    size = 0
    if fields.keyspace is not None:
        size += len(write_string(fields.keyspace))
    if fields.now_in_seconds is not None:
        size += 4
    return size


class StampedTemplate(object):
    """A QUERY or BATCH encoded once around the place of its default timestamp:
    ``request(timestamp)`` is the PreEncodedRequest with that timestamp (byte for byte what the
    message with it encodes to).  ``message`` must have a timestamp (any value) set."""

    __slots__ = ("opcode", "head", "tail")

    def __init__(self, message, protocol_version):
        fields = getattr(message, "parameters", message)
        if fields.timestamp is None:
            raise ValueError("a StampedTemplate needs a message with a timestamp")
        body = message.encode_body(protocol_version)
        at = len(body) - _after_timestamp(fields) - 8
        self.opcode = message.opcode
        self.head = body[:at]
        self.tail = body[at + 8:]

    def request(self, timestamp):
        return PreEncodedRequest(self.opcode, self.head + _pack_int64(timestamp) + self.tail)


_pack_int64 = struct.Struct(">q").pack
_pack_int32 = struct.Struct(">i").pack
_pack_uint16 = struct.Struct(">H").pack
_NULL = _pack_int32(-1)
_UNSET = _pack_int32(-2)
_EXECUTE = ExecuteMessage.opcode


class ExecuteTemplate(object):
    """The EXECUTE of one prepared statement with fixed parameters, encoded once around the
    place of its values: ``request(values)`` splices the values in and returns the
    PreEncodedRequest (byte for byte what ``ExecuteMessage(...).encode_body`` gives).

    Args:
        query_id, result_metadata_id (v5): the prepared statement's ids.
        protocol_version: the connection's version.
        consistency, page_size, serial_consistency, skip_metadata, timestamp, keyspace (v5):
            as QueryParameters; fixed for every request of the template.  The values and a
            paging state vary per request: values are spliced in, and an EXECUTE with a paging
            state is a plain ExecuteMessage.
        stamped: every request carries its own default timestamp (``request(values,
            timestamp)``); ``timestamp`` is then ignored.
    """

    __slots__ = ("head", "tail", "after")

    def __init__(self, query_id, result_metadata_id, protocol_version, consistency,
                 page_size=None, serial_consistency=None, skip_metadata=False, timestamp=None,
                 keyspace=None, stamped=False):
        if stamped:
            timestamp = 0
        parameters = QueryParameters(consistency, values=[], skip_metadata=skip_metadata,
                                     page_size=page_size, serial_consistency=serial_consistency,
                                     timestamp=timestamp, keyspace=keyspace)
        body = ExecuteMessage(query_id, parameters, result_metadata_id
                              ).encode_body(protocol_version)
        # <id> [<result metadata id>] <consistency> <flags>, then the values: a fixed layout
        at = len(write_short_bytes(query_id)) + 2 + (4 if protocol_version >= 5 else 1)
        if protocol_version >= 5:
            at += len(write_short_bytes(result_metadata_id or b""))
        if body[at:at + 2] != b"\x00\x00":    # the empty value count; never expected to fail
            raise AssertionError("cannot locate the values of an EXECUTE body")
        self.head = body[:at]
        self.tail = body[at + 2:]
        self.after = None
        if stamped:
            cut = len(self.tail) - _after_timestamp(parameters)
            self.tail, self.after = self.tail[:cut - 8], self.tail[cut:]

    def request(self, values, timestamp=None):
        """The EXECUTE with ``values`` (serialized: bytes, None for null, UNSET_VALUE) and, for
        a stamped template, ``timestamp``."""
        chunks = [self.head, _pack_uint16(len(values))]
        append = chunks.append
        for value in values:
            if value.__class__ is bytes:     # the usual case, without write_value's checks
                append(_pack_int32(len(value)))
                append(value)
            elif value is None:
                append(_NULL)
            elif value is UNSET_VALUE:
                append(_UNSET)
            else:
                append(write_value(value))
        append(self.tail)
        if self.after is not None:
            append(_pack_int64(timestamp))
            append(self.after)
        return PreEncodedRequest(_EXECUTE, b"".join(chunks))
