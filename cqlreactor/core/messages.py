"""Every native protocol message (v4 and v5), in both directions.

Each message class has ``opcode``, ``encode_body(protocol_version) -> bytes`` and the classmethod
``decode_body(body, protocol_version) -> message``: the client encodes requests and decodes
responses, and the simulated cluster (``cqlreactor.testing``) does the reverse with the same code.
``decode_message`` / ``encode_message`` add the frame-level extras (tracing id, warnings, custom
payload).  RESULT and its kinds live in ``results.py``, the statement-carrying requests (QUERY,
PREPARE, EXECUTE, BATCH, their parameters and pre-encoded forms) in ``requests.py``; both are
re-exported here.
"""

from .errors import SERVER_ERROR_CLASSES, ProtocolError, ServerError, UnsupportedOperation
from .frames import (FLAG_CUSTOM_PAYLOAD, FLAG_TRACING, FLAG_WARNING, encode_frame)
from .requests import (BatchMessage, BatchType, ExecuteMessage, PreEncodedRequest,
                       PrepareMessage, QueryMessage, QueryParameters)
from .results import (RESULT_KIND_PREPARED, RESULT_KIND_ROWS, RESULT_KIND_SCHEMA_CHANGE,
                      RESULT_KIND_SET_KEYSPACE, RESULT_KIND_VOID, SCHEMA_TARGETS, Message,
                      PreparedResult, ResultMessage, RowsResult, SchemaChangeResult,
                      SetKeyspaceResult, VoidResult, read_schema_change, write_schema_change)
from .wire import UNSET_VALUE  # noqa: F401  (callers write values with messages.UNSET_VALUE)
from .wire import (read_byte, read_bytes, read_bytes_map, read_consistency, read_inet,
                   read_inetaddr, read_int, read_short, read_short_bytes, read_string,
                   read_string_list, read_string_map, read_string_multimap, read_uuid,
                   write_byte, write_bytes, write_bytes_map, write_consistency, write_inet,
                   write_inetaddr, write_int, write_short, write_short_bytes, write_string,
                   write_string_list, write_string_map, write_string_multimap, write_uuid)

__all__ = [
    "Message", "ErrorMessage", "StartupMessage", "ReadyMessage", "AuthenticateMessage",
    "OptionsMessage", "SupportedMessage", "QueryMessage", "ResultMessage", "VoidResult",
    "RowsResult", "SetKeyspaceResult", "PreparedResult", "SchemaChangeResult", "PrepareMessage",
    "ExecuteMessage", "BatchMessage", "RegisterMessage", "EventMessage", "AuthChallengeMessage",
    "AuthResponseMessage", "AuthSuccessMessage", "PreEncodedRequest", "QueryParameters",
    "BatchType", "OPCODES", "decode_message", "encode_message",
    "RESULT_KIND_VOID", "RESULT_KIND_ROWS", "RESULT_KIND_SET_KEYSPACE", "RESULT_KIND_PREPARED",
    "RESULT_KIND_SCHEMA_CHANGE", "SCHEMA_TARGETS",
]


# --- ERROR -------------------------------------------------------------------------------------------

def _read_failure_map(buf, pos, protocol_version):
    """v5 <reasonmap> ([int] n, n x <inetaddr><short>) or v4 <numfailures> -> (failures, map)."""
    if protocol_version < 5:
        failures, pos = read_int(buf, pos)
        return failures, None, pos
    n, pos = read_int(buf, pos)
    if n < 0 or n * 7 > len(buf) - pos:
        raise ProtocolError("failure reason map of %d entries cannot fit in the %d bytes left"
                            % (n, len(buf) - pos))
    reasons = {}
    for _ in range(n):
        address, pos = read_inetaddr(buf, pos)
        reasons[address], pos = read_short(buf, pos)
    return len(reasons), reasons, pos


def _write_failure_map(info, protocol_version):
    reasons = info.get("error_code_map")
    if protocol_version < 5:
        failures = info.get("failures")
        if failures is None:
            failures = len(reasons or ())
        return write_int(failures)
    reasons = reasons or {}
    parts = [write_int(len(reasons))]
    for address, code in reasons.items():
        parts.append(write_inetaddr(address))
        parts.append(write_short(code))
    return b"".join(parts)


def _read_error_info(code, buf, pos, protocol_version):
    """The code-specific fields after <code><message>, as a dict named like cassandra-driver."""
    if code == 0x1000:   # Unavailable
        cl, pos = read_consistency(buf, pos)
        required, pos = read_int(buf, pos)
        alive, pos = read_int(buf, pos)
        return {"consistency": cl, "required_replicas": required, "alive_replicas": alive}
    if code in (0x1100, 0x1200, 0x1300, 0x1500, 0x1700):
        cl, pos = read_consistency(buf, pos)
        received, pos = read_int(buf, pos)
        blockfor, pos = read_int(buf, pos)
        info = {"consistency": cl, "received_responses": received, "required_responses": blockfor}
        if code == 0x1100:   # WriteTimeout
            info["write_type"], pos = read_string(buf, pos)
            if protocol_version >= 5 and info["write_type"] == "CAS":
                info["contentions"], pos = read_short(buf, pos)
        elif code == 0x1200:   # ReadTimeout
            present, pos = read_byte(buf, pos)
            info["data_retrieved"] = bool(present)
        elif code == 0x1300:   # ReadFailure
            info["failures"], info["error_code_map"], pos = _read_failure_map(
                buf, pos, protocol_version)
            present, pos = read_byte(buf, pos)
            info["data_retrieved"] = bool(present)
        elif code == 0x1500:   # WriteFailure
            info["failures"], info["error_code_map"], pos = _read_failure_map(
                buf, pos, protocol_version)
            info["write_type"], pos = read_string(buf, pos)
        return info   # 0x1700 CAS write unknown: <cl><received><blockfor> only
    if code == 0x1400:   # FunctionFailure
        keyspace, pos = read_string(buf, pos)
        function, pos = read_string(buf, pos)
        arg_types, pos = read_string_list(buf, pos)
        return {"keyspace": keyspace, "function": function, "arg_types": arg_types}
    if code == 0x2400:   # AlreadyExists
        keyspace, pos = read_string(buf, pos)
        table, pos = read_string(buf, pos)
        return {"keyspace": keyspace, "table": table}
    if code == 0x2500:   # Unprepared
        query_id, pos = read_short_bytes(buf, pos)
        return {"query_id": query_id}
    return {}


def _write_error_info(code, info, protocol_version):
    if code == 0x1000:
        return (write_consistency(info["consistency"]) + write_int(info["required_replicas"])
                + write_int(info["alive_replicas"]))
    if code in (0x1100, 0x1200, 0x1300, 0x1500, 0x1700):
        parts = [write_consistency(info["consistency"]), write_int(info["received_responses"]),
                 write_int(info["required_responses"])]
        if code == 0x1100:
            parts.append(write_string(info["write_type"]))
            if protocol_version >= 5 and info["write_type"] == "CAS":
                parts.append(write_short(info.get("contentions") or 0))
        elif code == 0x1200:
            parts.append(write_byte(1 if info["data_retrieved"] else 0))
        elif code == 0x1300:
            parts.append(_write_failure_map(info, protocol_version))
            parts.append(write_byte(1 if info["data_retrieved"] else 0))
        elif code == 0x1500:
            parts.append(_write_failure_map(info, protocol_version))
            parts.append(write_string(info["write_type"]))
        return b"".join(parts)
    if code == 0x1400:
        return (write_string(info["keyspace"]) + write_string(info["function"])
                + write_string_list(info["arg_types"]))
    if code == 0x2400:
        return write_string(info["keyspace"]) + write_string(info["table"])
    if code == 0x2500:
        return write_short_bytes(info["query_id"])
    return b""


class ErrorMessage(Message):
    """ERROR: ``code``, ``message`` (server text) and ``info`` (the code's extra fields).

    ``info`` keys, named as cassandra-driver names them:
      Unavailable (0x1000): consistency, required_replicas, alive_replicas
      WriteTimeout (0x1100): consistency, received_responses, required_responses, write_type
          (str, e.g. 'SIMPLE', 'CAS'), plus contentions on v5 when write_type is 'CAS'
      ReadTimeout (0x1200): consistency, received_responses, required_responses, data_retrieved
      ReadFailure (0x1300): ... , failures, error_code_map ({address: reason code}, v5; None on
          v4 where only the number of failures is sent), data_retrieved
      FunctionFailure (0x1400): keyspace, function, arg_types
      WriteFailure (0x1500): consistency, received_responses, required_responses, failures,
          error_code_map, write_type
      CASWriteUnknown (0x1700): consistency, received_responses, required_responses
      AlreadyExists (0x2400): keyspace, table ('' for a keyspace)
      Unprepared (0x2500): query_id
    Other codes (including unknown ones) have no extra fields.
    """

    __slots__ = ("code", "message", "info")
    opcode = 0x00
    opname = "ERROR"
    is_response = True
    _fields = __slots__

    def __init__(self, code, message, info=None):
        Message.__init__(self)
        self.code = code
        self.message = message
        self.info = info if info is not None else {}

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        code, pos = read_int(buf, pos)
        message, pos = read_string(buf, pos)
        info = _read_error_info(code, buf, pos, protocol_version)
        return cls(code, message, info)

    def encode_body(self, protocol_version):
        return (write_int(self.code) + write_string(self.message)
                + _write_error_info(self.code, self.info, protocol_version))

    def to_exception(self, host=None):
        """The exception from errors.py for this code, with ``info`` as attributes.

        An unknown code gives a ``ServerError`` whose ``code`` attribute is the code received.
        """
        exc_class = SERVER_ERROR_CLASSES.get(self.code)
        if exc_class is None:
            exc = ServerError(self.message, host=host, **self.info)
            exc.code = self.code
            return exc
        return exc_class.from_server(self.message, host, self.info)


# --- handshake and auth ------------------------------------------------------------------------------

class StartupMessage(Message):
    """STARTUP: ``options`` is the [string map] (CQL_VERSION, COMPRESSION, DRIVER_NAME, ...)."""

    __slots__ = ("options",)
    opcode = 0x01
    opname = "STARTUP"
    _fields = __slots__

    def __init__(self, options):
        Message.__init__(self)
        self.options = dict(options)

    @property
    def cql_version(self):
        return self.options.get("CQL_VERSION")

    @property
    def compression(self):
        return self.options.get("COMPRESSION")

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        options, pos = read_string_map(buf, pos)
        return cls(options)

    def encode_body(self, protocol_version):
        return write_string_map(self.options)


class ReadyMessage(Message):
    __slots__ = ()
    opcode = 0x02
    opname = "READY"
    is_response = True


class AuthenticateMessage(Message):
    """AUTHENTICATE: ``authenticator`` is the server's IAuthenticator class name."""

    __slots__ = ("authenticator",)
    opcode = 0x03
    opname = "AUTHENTICATE"
    is_response = True
    _fields = __slots__

    def __init__(self, authenticator):
        Message.__init__(self)
        self.authenticator = authenticator

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        authenticator, pos = read_string(buf, pos)
        return cls(authenticator)

    def encode_body(self, protocol_version):
        return write_string(self.authenticator)


class OptionsMessage(Message):
    __slots__ = ()
    opcode = 0x05
    opname = "OPTIONS"


class SupportedMessage(Message):
    """SUPPORTED: ``options`` maps each option (CQL_VERSION, COMPRESSION, PROTOCOL_VERSIONS,
    PRODUCT_TYPE, ...) to its list of values."""

    __slots__ = ("options",)
    opcode = 0x06
    opname = "SUPPORTED"
    is_response = True
    _fields = __slots__

    def __init__(self, options):
        Message.__init__(self)
        self.options = dict(options)

    @property
    def cql_versions(self):
        return self.options.get("CQL_VERSION", [])

    @property
    def compression(self):
        return self.options.get("COMPRESSION", [])

    @property
    def protocol_versions(self):
        return self.options.get("PROTOCOL_VERSIONS", [])

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        options, pos = read_string_multimap(buf, pos)
        return cls(options)

    def encode_body(self, protocol_version):
        return write_string_multimap(self.options)


class _TokenMessage(Message):
    """A message whose body is one [bytes] SASL token (None is allowed)."""

    __slots__ = ("token",)
    _fields = __slots__

    def __init__(self, token):
        Message.__init__(self)
        self.token = token

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        token, pos = read_bytes(buf, pos)
        return cls(token)

    def encode_body(self, protocol_version):
        return write_bytes(self.token)


class AuthChallengeMessage(_TokenMessage):
    __slots__ = ()
    opcode = 0x0E
    opname = "AUTH_CHALLENGE"
    is_response = True


class AuthResponseMessage(_TokenMessage):
    __slots__ = ()
    opcode = 0x0F
    opname = "AUTH_RESPONSE"

    def __repr__(self):
        # the token holds the credentials (PLAIN: the password), and reprs reach logs
        token = self.token
        return "AuthResponseMessage(token=%s)" % (
            "None" if token is None else "<%d bytes hidden>" % (len(token),))


class AuthSuccessMessage(_TokenMessage):
    __slots__ = ()
    opcode = 0x10
    opname = "AUTH_SUCCESS"
    is_response = True


class RegisterMessage(Message):
    """REGISTER: ``event_types`` e.g. ['TOPOLOGY_CHANGE', 'STATUS_CHANGE', 'SCHEMA_CHANGE']."""

    __slots__ = ("event_types",)
    opcode = 0x0B
    opname = "REGISTER"
    _fields = __slots__

    def __init__(self, event_types):
        Message.__init__(self)
        self.event_types = list(event_types)

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        event_types, pos = read_string_list(buf, pos)
        return cls(event_types)

    def encode_body(self, protocol_version):
        return write_string_list(self.event_types)


# --- EVENT -------------------------------------------------------------------------------------------

class EventMessage(Message):
    """EVENT (stream -1).

    Attributes:
        event_type: 'TOPOLOGY_CHANGE', 'STATUS_CHANGE' or 'SCHEMA_CHANGE'.
        change_type: 'NEW_NODE'/'REMOVED_NODE', 'UP'/'DOWN', or 'CREATED'/'UPDATED'/'DROPPED'.
        address: (host, port) for topology and status changes.
        target, keyspace, name, arg_types: for schema changes (see SchemaChangeResult).
    """

    __slots__ = ("event_type", "change_type", "address", "target", "keyspace", "name",
                 "arg_types")
    opcode = 0x0C
    opname = "EVENT"
    is_response = True
    _fields = __slots__

    def __init__(self, event_type, change_type, address=None, target=None, keyspace=None,
                 name=None, arg_types=None):
        Message.__init__(self)
        self.event_type = event_type
        self.change_type = change_type
        self.address = address
        self.target = target
        self.keyspace = keyspace
        self.name = name
        self.arg_types = arg_types

    @property
    def event_args(self):
        """The event as cassandra-driver's ``event_args`` dict."""
        if self.event_type != "SCHEMA_CHANGE":
            return {"change_type": self.change_type, "address": self.address}
        args = {"change_type": self.change_type, "target_type": self.target,
                "keyspace": self.keyspace}
        if self.target in ("TABLE", "TYPE"):
            args[self.target.lower()] = self.name
        elif self.target in ("FUNCTION", "AGGREGATE"):
            args[self.target.lower()] = (self.name, self.arg_types)
        return args

    @classmethod
    def _decode(cls, buf, pos, protocol_version, result_metadata=None):
        event_type, pos = read_string(buf, pos)
        if event_type in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
            change_type, pos = read_string(buf, pos)
            address, pos = read_inet(buf, pos)
            return cls(event_type, change_type, address)
        if event_type == "SCHEMA_CHANGE":
            fields, pos = read_schema_change(buf, pos)
            change_type, target, keyspace, name, arg_types = fields
            return cls(event_type, change_type, None, target, keyspace, name, arg_types)
        raise ProtocolError("unknown event type %r" % (event_type,))

    def encode_body(self, protocol_version):
        if self.event_type == "SCHEMA_CHANGE":
            return write_string(self.event_type) + write_schema_change(
                self.change_type, self.target, self.keyspace, self.name, self.arg_types)
        if self.event_type in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
            return (write_string(self.event_type) + write_string(self.change_type)
                    + write_inet(self.address[0], self.address[1]))
        raise ValueError("unknown event type %r" % (self.event_type,))


# --- framing -----------------------------------------------------------------------------------------

OPCODES = dict((cls.opcode, cls) for cls in (
    ErrorMessage, StartupMessage, ReadyMessage, AuthenticateMessage, OptionsMessage,
    SupportedMessage, QueryMessage, ResultMessage, PrepareMessage, ExecuteMessage, RegisterMessage,
    EventMessage, BatchMessage, AuthChallengeMessage, AuthResponseMessage, AuthSuccessMessage))

_EXTRA_FLAGS = FLAG_WARNING | FLAG_CUSTOM_PAYLOAD


def decode_message(frame, protocol_version, result_metadata=None):
    """Decode a frame's body into a message.

    The frame-level extras are read into ``message.tracing_id`` (a traced response),
    ``message.warnings`` (response), ``message.custom_payload``, and ``message.tracing`` (a
    request asking to be traced).

    Args:
        frame: a ``frames.Frame`` (body already decompressed).
        protocol_version: the connection's version.
        result_metadata: for a RESULT Rows sent without metadata (skip_metadata): the column
            metadata to decode the rows with (``PreparedResult.result_metadata``).

    Raises:
        ProtocolError: unknown opcode, malformed or truncated body (with stream and opcode).
    """
    opcode = frame.opcode
    message_class = OPCODES.get(opcode)
    if message_class is None:
        raise ProtocolError("unknown opcode", stream_id=frame.stream, opcode=opcode)
    buf = frame.body
    flags = frame.flags
    try:
        if flags & (FLAG_TRACING | _EXTRA_FLAGS):
            tracing_id = warnings = custom_payload = None
            pos = 0
            if flags & FLAG_TRACING and frame.is_response:
                tracing_id, pos = read_uuid(buf, pos)
            if flags & FLAG_WARNING and frame.is_response:
                warnings, pos = read_string_list(buf, pos)
            if flags & FLAG_CUSTOM_PAYLOAD:
                custom_payload, pos = read_bytes_map(buf, pos)
            message = message_class._decode(buf, pos, protocol_version, result_metadata)
            message.tracing_id = tracing_id
            message.warnings = warnings
            message.custom_payload = custom_payload
            message.tracing = bool(flags & FLAG_TRACING) and not frame.is_response
            return message
        return message_class._decode(buf, 0, protocol_version, result_metadata)
    except ProtocolError as exc:
        raise exc.with_context(stream_id=frame.stream, opcode=opcode)
    except Exception as exc:   # a bug-shaped failure on hostile bytes is still a protocol error
        raise ProtocolError("malformed %s body: %s: %s"
                            % (message_class.opname, type(exc).__name__, exc),
                            stream_id=frame.stream, opcode=opcode)


def encode_message(message, stream, protocol_version, flags=0, compressor=None, tracing_id=None,
                   warnings=None, custom_payload=None, is_response=False):
    """Encode a message as one frame (v4 frame or v5 envelope) and return its bytes.

    ``tracing_id``, ``warnings`` and ``custom_payload`` default to the message's own attributes;
    the matching flags are set from what is actually written.  A request asks for tracing with
    ``message.tracing = True`` or ``FLAG_TRACING`` in ``flags``.  Response classes are always
    encoded as responses.
    """
    is_response = is_response or message.is_response
    if tracing_id is None:
        tracing_id = message.tracing_id
    if warnings is None:
        warnings = message.warnings
    if custom_payload is None:
        custom_payload = message.custom_payload
    flags &= ~_EXTRA_FLAGS
    prefix = []
    if is_response:
        flags &= ~FLAG_TRACING
        if tracing_id is not None:
            flags |= FLAG_TRACING
            prefix.append(write_uuid(tracing_id))
        if warnings:
            flags |= FLAG_WARNING
            prefix.append(write_string_list(warnings))
    elif message.tracing:
        flags |= FLAG_TRACING
    if custom_payload:
        if protocol_version < 4:
            raise UnsupportedOperation("custom payloads need protocol v4 or later")
        flags |= FLAG_CUSTOM_PAYLOAD
        prefix.append(write_bytes_map(custom_payload))
    body = message.encode_body(protocol_version)
    if prefix:
        body = b"".join(prefix) + body
    return encode_frame(protocol_version, stream, message.opcode, body, flags, is_response,
                        compressor)
