"""One error hierarchy for the whole driver.

Every exception carries the context needed to act on it: the host, and where it applies the
stream id and opcode.  Reactors translate their native errors (``OSError``, ``gevent.socket.error``,
``ssl.SSLError`` …) into these at the edge, so callers only ever see this hierarchy.

Server-side errors (the ERROR message codes of the native protocol) map onto the classes named as
cassandra-driver names them, so code written for it keeps working after changing imports.
"""

__all__ = [
    "DriverException", "CqlReactorError",
    "ProtocolError", "FrameTooLarge", "ChecksumMismatch", "IllegalStateTransition",
    "UnsupportedProtocolVersion",
    "ConnectionException", "ConnectionDefunct", "ConnectionShutdown", "ConnectionBusy",
    "StreamIdsExhausted", "OperationTimedOut", "TLSError", "NoHostAvailable",
    "UnsupportedReactorError", "ReactorUnavailable", "CloudConfigError",
    "RequestExecutionException", "RequestValidationException", "CoordinationFailure",
    "ServerError", "ProtocolException", "BadCredentials", "AuthenticationFailed",
    "Unavailable", "OverloadedErrorMessage", "IsBootstrappingErrorMessage", "TruncateError",
    "WriteTimeout", "ReadTimeout", "ReadFailure", "FunctionFailure", "WriteFailure",
    "CDCWriteFailure", "CASWriteUnknown", "SyntaxException", "Unauthorized", "InvalidRequest",
    "ConfigurationException", "AlreadyExists", "Unprepared",
    "UnsupportedOperation", "BlockingCallInEventLoop", "IncompatibleEventLoops",
    "RequestCancelled",
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
    """A connection could not be opened or was lost."""


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
    """The client-side request timeout expired before the server answered."""


class RequestCancelled(OperationTimedOut):
    """The caller gave up on the request (the awaiting asyncio task was cancelled, or
    ``ResponseFuture.cancel()``): it is not sent if it was still queued, else its stream id is
    orphaned until the server's late answer arrives (as after a client-side timeout)."""


class TLSError(ConnectionException):
    """The TLS handshake failed (certificate, hostname, protocol); ``reason`` names which."""

    def __init__(self, message="", host=None, reason=None):
        self.reason = reason
        super(TLSError, self).__init__(message, host=host)


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

class RequestExecutionException(DriverException):
    """Base of errors the server returned for a request.

    Attributes:
        code: the protocol error code.
        server_message: the server's text.
        host: the coordinator that answered.
    """

    code = None

    def __init__(self, server_message="", host=None, **info):
        self.server_message = server_message
        self.host = host
        self.info = info
        for key, value in info.items():
            setattr(self, key, value)
        text = server_message
        if info:
            text += " " + repr(info)
        if host and ("host=%s" % (host,)) not in text:
            text += " [host=%s]" % (host,)
        super(RequestExecutionException, self).__init__(text)


class RequestValidationException(RequestExecutionException):
    """The request was invalid (syntax, permissions, schema)."""


class CoordinationFailure(RequestExecutionException):
    """The coordinator could not reach enough replicas."""


class ServerError(RequestExecutionException):
    code = 0x0000


class ProtocolException(RequestExecutionException):
    """The server says our bytes broke the protocol (code 0x000A)."""
    code = 0x000A


class BadCredentials(RequestExecutionException):
    code = 0x0100


AuthenticationFailed = BadCredentials


class Unavailable(CoordinationFailure):
    code = 0x1000


class OverloadedErrorMessage(RequestExecutionException):
    code = 0x1001


class IsBootstrappingErrorMessage(RequestExecutionException):
    code = 0x1002


class TruncateError(RequestExecutionException):
    code = 0x1003


class WriteTimeout(CoordinationFailure):
    code = 0x1100


class ReadTimeout(CoordinationFailure):
    code = 0x1200


class ReadFailure(CoordinationFailure):
    code = 0x1300


class FunctionFailure(RequestExecutionException):
    code = 0x1400


class WriteFailure(CoordinationFailure):
    code = 0x1500


class CDCWriteFailure(RequestExecutionException):
    code = 0x1600


class CASWriteUnknown(CoordinationFailure):
    code = 0x1700


class SyntaxException(RequestValidationException):
    code = 0x2000


class Unauthorized(RequestValidationException):
    code = 0x2100


class InvalidRequest(RequestValidationException):
    code = 0x2200


class ConfigurationException(RequestValidationException):
    code = 0x2300


class AlreadyExists(ConfigurationException):
    code = 0x2400


class Unprepared(RequestValidationException):
    code = 0x2500


class UnsupportedOperation(DriverException):
    """A feature the negotiated protocol version lacks (e.g. a per-query keyspace on v4)."""


SERVER_ERROR_CLASSES = {
    cls.code: cls
    for cls in (ServerError, ProtocolException, BadCredentials, Unavailable,
                OverloadedErrorMessage, IsBootstrappingErrorMessage, TruncateError, WriteTimeout,
                ReadTimeout, ReadFailure, FunctionFailure, WriteFailure, CDCWriteFailure,
                CASWriteUnknown, SyntaxException, Unauthorized, InvalidRequest,
                ConfigurationException, AlreadyExists, Unprepared)
}
