"""One error hierarchy for the whole driver.

Every exception carries the context needed to act on it: the host, and where it applies the
stream id and opcode.  Reactors translate their native errors (``OSError``, ``gevent.socket.error``,
``ssl.SSLError`` …) into these at the edge, so callers only ever see this hierarchy.

Server-side errors (the ERROR message codes of the native protocol) map onto the classes named as
cassandra-driver names them, so code written for it keeps working after changing imports.
"""

from typing import Optional

__all__ = [
    "DriverException", "CqlReactorError",
    "ProtocolError", "FrameTooLarge", "ChecksumMismatch", "IllegalStateTransition",
    "UnsupportedProtocolVersion",
    "ConnectionException", "ConnectionDefunct", "ConnectionShutdown", "ConnectionBusy",
    "StreamIdsExhausted", "OperationTimedOut", "TLSError", "NoHostAvailable",
    "UnsupportedReactorError", "ReactorUnavailable", "CloudConfigError",
    "ServerException", "RequestExecutionException", "RequestValidationException",
    "CoordinationFailure", "Timeout", "UnresolvableContactPoints", "DependencyException",
    "QueryExhausted",
    "ServerError", "ProtocolException", "BadCredentials", "AuthenticationFailed",
    "Unavailable", "OverloadedErrorMessage", "IsBootstrappingErrorMessage", "TruncateError",
    "WriteTimeout", "ReadTimeout", "ReadFailure", "FunctionFailure", "WriteFailure",
    "CDCWriteFailure", "CASWriteUnknown", "SyntaxException", "Unauthorized", "InvalidRequest",
    "ConfigurationException", "AlreadyExists", "Unprepared",
    "UnsupportedOperation", "TraceUnavailable", "BlockingCallInEventLoop",
    "IncompatibleEventLoops", "RequestCancelled",
]


def _context(host=None, stream_id=None, opcode=None, message=""):
    """The `` [host=..., stream=..., opcode=...]`` suffix of ``message``.

    The host is left out when ``message`` names it already: a message that quotes its cause
    (``"connection to H failed: %s" % cause``) carries the cause's ``[host=H ...]``."""
    parts = []
    if host and ("host=%s" % (host,)) not in message:
        parts.append("host=%s" % (host,))
    if stream_id is not None:
        parts.append("stream=%d" % (stream_id,))
    if opcode is not None:
        parts.append("opcode=0x%02X" % (opcode,))
    return (" [" + ", ".join(parts) + "]") if parts else ""


class DriverException(Exception):
    """Base class of every exception this driver raises (named as in cassandra-driver)."""


class CqlReactorError(DriverException):
    """Base class of driver-side errors that carry connection context.

    Attributes:
        host: the endpoint ("address:port" or a host id for cloud), when known.
        stream_id: the request's stream id, when the error belongs to one request.
        opcode: the opcode of the frame involved, when known.
    """

    def __init__(self, message="", host=None, stream_id=None, opcode=None):
        self.message = message
        self.host = host
        self.stream_id = stream_id
        self.opcode = opcode
        super(CqlReactorError, self).__init__(
            message + _context(host, stream_id, opcode, message))

    def with_context(self, host=None, stream_id=None, opcode=None):
        """Fill in context the raiser did not know; returns self for ``raise e.with_context(..)``."""
        if host is not None and self.host is None:
            self.host = host
        if stream_id is not None and self.stream_id is None:
            self.stream_id = stream_id
        if opcode is not None and self.opcode is None:
            self.opcode = opcode
        self.args = (self.message + _context(self.host, self.stream_id, self.opcode,
                                             self.message),)
        return self


# --- protocol (bytes on the wire were wrong) ---------------------------------------------------

class ProtocolError(CqlReactorError):
    """Malformed bytes or a protocol violation; the connection that saw it is defunct."""


class FrameTooLarge(ProtocolError):
    """A frame (or segment) longer than the negotiated maximum."""


class ChecksumMismatch(ProtocolError):
    """A v5 segment header CRC24 or payload CRC32 did not match."""


class IllegalStateTransition(ProtocolError):
    """An input arrived that the connection state machine does not allow in its current state."""


class UnsupportedProtocolVersion(ProtocolError):
    """The server refused our protocol version.

    Attributes:
        requested: the version we offered.
        retry_version: the highest version the server named that we also speak, or None.
        server_message: the server's own text.
    """

    def __init__(self, message="", requested=None, retry_version=None, server_message=None,
                 host=None):
        self.requested = requested
        self.retry_version = retry_version
        self.server_message = server_message
        super(UnsupportedProtocolVersion, self).__init__(message, host=host)


# --- connection level --------------------------------------------------------------------------

class ConnectionException(CqlReactorError):
    """A connection could not be opened or was lost.

    ``ConnectionException(message, endpoint)`` as cassandra-driver's: ``endpoint`` (also the
    attribute) is where; ``host=`` is the same thing, as every error here names it."""

    def __init__(self, message="", endpoint=None, host=None, stream_id=None, opcode=None):
        if host is None:
            host = endpoint
        super(ConnectionException, self).__init__(message, host=host, stream_id=stream_id,
                                                  opcode=opcode)

    @property
    def endpoint(self):
        return self.host


class ConnectionDefunct(ConnectionException):
    """The connection failed (socket error, protocol error, missed heartbeat); ``cause`` says why."""

    def __init__(self, message="", host=None, cause=None, stream_id=None, opcode=None):
        self.cause = cause
        super(ConnectionDefunct, self).__init__(message, host=host, stream_id=stream_id,
                                                opcode=opcode)


class ConnectionShutdown(ConnectionException):
    """The connection was closed by us (shutdown) while the request was pending."""


class ConnectionBusy(ConnectionException):
    """Backpressure: the connection has as many requests in flight as it allows."""


class StreamIdsExhausted(ConnectionBusy):
    """Every stream id is in flight or reserved by an orphaned (timed-out) request."""


class OperationTimedOut(CqlReactorError):
    """The client-side request timeout expired before the server answered.

    Constructed as cassandra-driver's, ``OperationTimedOut(errors=None, last_host=None)``
    (``errors``: host -> exception, ``last_host``: the host tried last), or as every other
    error here, with the message first (``OperationTimedOut("no answer", host=...)``: a string
    in first place is the message).
    """

    def __init__(self, errors=None, last_host=None, message=None, host=None, stream_id=None,
                 opcode=None):
        if isinstance(errors, str) and message is None:
            message, errors = errors, None
        self.errors = errors
        self.last_host = last_host if last_host is not None else host
        if message is None:
            message = "errors=%s, last_host=%s" % (errors, self.last_host)
        super(OperationTimedOut, self).__init__(
            message, host=host if host is not None else last_host, stream_id=stream_id,
            opcode=opcode)


class RequestCancelled(OperationTimedOut):
    """The caller gave up on the request (the awaiting asyncio task was cancelled, or
    ``ResponseFuture.cancel()``): it is not sent if it was still queued, else its stream id is
    orphaned until the server's late answer arrives (as after a client-side timeout)."""


class TLSError(ConnectionException):
    """The TLS handshake failed (certificate, hostname, protocol); ``reason`` names which."""

    def __init__(self, message="", host=None, reason=None):
        self.reason = reason
        super(TLSError, self).__init__(message, host=host)


class TraceUnavailable(DriverException):
    """A query trace could not be read (not traced, not done yet, or not written within the
    wait); cassandra-driver's ``cassandra.query.TraceUnavailable``."""


class NoHostAvailable(DriverException):
    """No host could serve the request. ``errors`` maps each host tried to its exception."""

    def __init__(self, message, errors=None):
        self.errors = dict(errors or {})
        detail = "; ".join("%s: %r" % (h, e) for h, e in self.errors.items())
        super(NoHostAvailable, self).__init__(message + (" (" + detail + ")" if detail else ""))


class UnsupportedReactorError(DriverException):
    """A reactor gated off by compat_matrix.yaml for this interpreter was chosen."""


class ReactorUnavailable(DriverException):
    """A reactor's packages or libraries are not installed; the message says what to install."""


class BlockingCallInEventLoop(DriverException):
    """A blocking call (``execute``, ``result()``, ``connect`` ...) was made on the thread of the
    asyncio loop that runs the connections: waiting there would deadlock, since the answer can
    only arrive on that loop.  The message names the awaitable to use instead."""


class IncompatibleEventLoops(DriverException):
    """An awaitable was awaited where its reactor can never run: e.g. the gevent reactor's hub
    lives in the thread an unpatched asyncio loop blocks.  The message names the combination
    and what works instead."""


class CloudConfigError(DriverException):
    """A secure connect bundle or the cloud metadata service was unusable."""


# --- server errors (ERROR message codes), named as cassandra-driver names them -----------------
#
# The hierarchy and the constructors are cassandra-driver's (``cassandra`` top level): an
# ``except`` clause written for it catches the same errors here, and tests or retry policies that
# build these exceptions themselves pass the same arguments.  Every class also takes ``host=``
# (the coordinator that answered) and keeps the error's fields in ``info`` as well as in
# attributes.

class ServerException(DriverException):
    """Base of every error the server returned (an ERROR message); our addition, so one
    ``except`` covers both of cassandra-driver's branches (execution and validation).

    Attributes:
        code: the protocol error code.
        server_message: the server's text.
        host: the coordinator that answered.
        info: the code's extra fields as a dict (also set as attributes).
    """

    code = None  # type: Optional[int]
    _info_in_text = True    # str() shows the fields after the message, as theirs

    def __init__(self, server_message="", host=None, **info):
        self.server_message = server_message
        self.host = host
        self.info = info
        for key, value in info.items():
            setattr(self, key, value)
        text = server_message
        shown = dict((k, v) for k, v in info.items() if v is not None)
        if shown and self._info_in_text:
            text += " info=" + repr(shown)
        if host and ("host=%s" % (host,)) not in text:
            text += " [host=%s]" % (host,)
        super(ServerException, self).__init__(text)

    @classmethod
    def from_server(cls, server_message, host, info):
        """The exception for an ERROR message with ``info`` (messages.ErrorMessage uses it)."""
        return cls(server_message, host=host, **info)


class RequestExecutionException(ServerException):
    """The server could not execute a valid request (replicas, overload, ...)."""


class RequestValidationException(ServerException):
    """The request was invalid (syntax, permissions, schema)."""


class Unavailable(RequestExecutionException):
    """Too few live replicas for the consistency level: the coordinator did not try."""

    code = 0x1000
    consistency = None
    required_replicas = None
    alive_replicas = None

    def __init__(self, summary_message="", consistency=None, required_replicas=None,
                 alive_replicas=None, host=None, **info):
        super(Unavailable, self).__init__(
            summary_message, host=host, consistency=consistency,
            required_replicas=required_replicas, alive_replicas=alive_replicas, **info)


class Timeout(RequestExecutionException):
    """Replicas did not answer the coordinator in time (ReadTimeout, WriteTimeout)."""

    consistency = None
    required_responses = None
    received_responses = None

    def __init__(self, summary_message="", consistency=None, required_responses=None,
                 received_responses=None, host=None, **info):
        super(Timeout, self).__init__(
            summary_message, host=host, consistency=consistency,
            required_responses=required_responses, received_responses=received_responses,
            **info)


class ReadTimeout(Timeout):
    code = 0x1200
    data_retrieved = None

    def __init__(self, message="", data_retrieved=None, **kwargs):
        super(ReadTimeout, self).__init__(message, data_retrieved=data_retrieved, **kwargs)


class WriteTimeout(Timeout):
    """``write_type`` is the protocol's name ('SIMPLE', 'BATCH', 'CAS' ...), the values of
    cqlreactor.policies.WriteType."""

    code = 0x1100
    write_type = None

    def __init__(self, message="", write_type=None, **kwargs):
        super(WriteTimeout, self).__init__(message, write_type=write_type, **kwargs)


class CASWriteUnknown(Timeout):
    """A conditional write's outcome is unknown (protocol v5, code 0x1700)."""
    code = 0x1700


class CoordinationFailure(RequestExecutionException):
    """Replicas answered the coordinator with a failure (ReadFailure, WriteFailure)."""

    consistency = None
    required_responses = None
    received_responses = None
    failures = None
    error_code_map = None

    def __init__(self, summary_message="", consistency=None, required_responses=None,
                 received_responses=None, failures=None, error_code_map=None, host=None,
                 **info):
        super(CoordinationFailure, self).__init__(
            summary_message, host=host, consistency=consistency,
            required_responses=required_responses, received_responses=received_responses,
            failures=failures, error_code_map=error_code_map, **info)


class ReadFailure(CoordinationFailure):
    code = 0x1300
    data_retrieved = None

    def __init__(self, message="", data_retrieved=None, **kwargs):
        super(ReadFailure, self).__init__(message, data_retrieved=data_retrieved, **kwargs)


class WriteFailure(CoordinationFailure):
    code = 0x1500
    write_type = None

    def __init__(self, message="", write_type=None, **kwargs):
        super(WriteFailure, self).__init__(message, write_type=write_type, **kwargs)


class FunctionFailure(RequestExecutionException):
    """A user-defined function failed on the server."""

    code = 0x1400
    _info_in_text = False
    keyspace = None
    function = None
    arg_types = None

    def __init__(self, summary_message="", keyspace=None, function=None, arg_types=None,
                 host=None, **info):
        super(FunctionFailure, self).__init__(summary_message, host=host, keyspace=keyspace,
                                              function=function, arg_types=arg_types, **info)


class CDCWriteFailure(RequestExecutionException):
    code = 0x1600

    def __init__(self, message="", host=None, **info):
        super(CDCWriteFailure, self).__init__(message, host=host, **info)


class ServerError(RequestExecutionException):
    code = 0x0000


class OverloadedErrorMessage(RequestExecutionException):
    code = 0x1001


class IsBootstrappingErrorMessage(RequestExecutionException):
    code = 0x1002


class TruncateError(RequestExecutionException):
    code = 0x1003


class ProtocolException(ServerException):
    """The server says our bytes broke the protocol (code 0x000A)."""
    code = 0x000A


class BadCredentials(ServerException):
    """Authentication failed (the server's code 0x0100, or our authenticator's error)."""
    code = 0x0100


#: cassandra-driver's name for a failed authentication
AuthenticationFailed = BadCredentials


class SyntaxException(RequestValidationException):
    code = 0x2000


class Unauthorized(RequestValidationException):
    code = 0x2100


class InvalidRequest(RequestValidationException):
    code = 0x2200


class ConfigurationException(RequestValidationException):
    code = 0x2300


class AlreadyExists(ConfigurationException):
    """CREATE of a keyspace or table that exists: ``keyspace``, and ``table`` (the server
    sends '' for a keyspace, as cassandra-driver shows it)."""

    code = 0x2400
    _info_in_text = False
    keyspace = None
    table = None

    def __init__(self, keyspace=None, table=None, server_message=None, host=None):
        if server_message is None:
            server_message = ("Table '%s.%s' already exists" % (keyspace, table) if table
                              else "Keyspace '%s' already exists" % (keyspace,))
        super(AlreadyExists, self).__init__(server_message, host=host, keyspace=keyspace,
                                            table=table)

    @classmethod
    def from_server(cls, server_message, host, info):
        return cls(info.get("keyspace"), info.get("table"), server_message=server_message,
                   host=host)


class Unprepared(RequestValidationException):
    code = 0x2500


class UnsupportedOperation(DriverException):
    """A feature the negotiated protocol version lacks (e.g. a per-query keyspace on v4)."""


class QueryExhausted(DriverException):
    """``ResponseFuture.start_fetching_next_page()`` with no page left."""


class UnresolvableContactPoints(DriverException):
    """None of the contact points' names could be resolved."""


class DependencyException(Exception):
    """An optional dependency is missing or broken; ``excs`` are the errors seen."""

    def __init__(self, msg, excs=()):
        self.excs = list(excs)
        text = msg
        if self.excs:
            text += "\nThe following exceptions were observed: \n - " + "\n - ".join(
                str(e) for e in self.excs)
        super(DependencyException, self).__init__(text)


SERVER_ERROR_CLASSES = {
    cls.code: cls
    for cls in (ServerError, ProtocolException, BadCredentials, Unavailable,
                OverloadedErrorMessage, IsBootstrappingErrorMessage, TruncateError, WriteTimeout,
                ReadTimeout, ReadFailure, FunctionFailure, WriteFailure, CDCWriteFailure,
                CASWriteUnknown, SyntaxException, Unauthorized, InvalidRequest,
                ConfigurationException, AlreadyExists, Unprepared)
}
