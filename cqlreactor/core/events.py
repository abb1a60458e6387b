"""Events the sans-IO :class:`~cqlreactor.core.connection.Connection` returns.

Small, immutable and slotted: one base class, fields fixed per class, validated on
construction, compared by value.  A reactor (or a test) looks at ``type(event)`` and acts.
"""

__all__ = ["Event", "ConnectionReady", "ResponseReceived", "RequestFailed",
           "ServerEventReceived", "ProtocolVersionRejected", "ConnectionFailed",
           "ConnectionClosed"]


_set = object.__setattr__


class Event(object):
    """Base class: subclasses list their fields in ``__slots__`` (the constructor's order)."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        slots = self.__slots__
        if len(args) > len(slots):
            raise TypeError("%s takes at most %d arguments" % (type(self).__name__, len(slots)))
        values = dict(zip(slots, args))
        for key, value in kwargs.items():
            if key not in slots:
                raise TypeError("%s has no field %r" % (type(self).__name__, key))
            if key in values:
                raise TypeError("%s got %r twice" % (type(self).__name__, key))
            values[key] = value
        missing = [name for name in slots if name not in values]
        if missing:
            raise TypeError("%s is missing %s" % (type(self).__name__, ", ".join(missing)))
        for name in slots:
            _set(self, name, values[name])
        self._validate()

    def _validate(self):
        pass

    def __setattr__(self, name, value):
        raise AttributeError("%s is immutable" % (type(self).__name__,))

    def __delattr__(self, name):
        raise AttributeError("%s is immutable" % (type(self).__name__,))

    def _values(self):
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # fields may hold unhashable messages

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in self.__slots__))


class ConnectionReady(Event):
    """The handshake finished; requests may be sent.

    Attributes:
        protocol_version: the version in use.
        compression: the compressor name ("lz4", "snappy") or None.
        supported: the server's SUPPORTED options (dict of name -> list of str).
        options: the STARTUP options we sent (dict).
    """

    __slots__ = ("protocol_version", "compression", "supported", "options")

    def _validate(self):
        if not isinstance(self.protocol_version, int):
            raise TypeError("protocol_version must be an int")


class ResponseReceived(Event):
    """The answer to the request sent on ``stream_id`` (an ERROR is answered here too)."""

    __slots__ = ("stream_id", "message")

    def __init__(self, stream_id, message):
        # The hot path (one per response): a direct constructor instead of the generic one.
        if stream_id.__class__ is not int or stream_id < 0:
            raise ValueError("stream_id must be a non-negative int, not %r" % (stream_id,))
        _set(self, "stream_id", stream_id)
        _set(self, "message", message)


class RequestFailed(Event):
    """The request on ``stream_id`` will get no answer; ``error`` says why (timeout, defunct …)."""

    __slots__ = ("stream_id", "error")

    def _validate(self):
        if not isinstance(self.error, BaseException):
            raise TypeError("error must be an exception, not %r" % (self.error,))


class ServerEventReceived(Event):
    """An EVENT message (stream -1): topology, status or schema change."""

    __slots__ = ("message",)


class ProtocolVersionRejected(Event):
    """The server does not speak ``requested``; reconnect (on a NEW connection) with
    ``retry_version``, or give up when it is None.  The connection is DEFUNCT.

    Attributes:
        requested: the version we offered.
        retry_version: the highest version both sides speak, or None.
        error: an UnsupportedProtocolVersion with the server's text.
    """

    __slots__ = ("requested", "retry_version", "error")

    def _validate(self):
        if not isinstance(self.error, BaseException):
            raise TypeError("error must be an exception, not %r" % (self.error,))


class ConnectionFailed(Event):
    """The connection became DEFUNCT; ``error`` names the host and the cause.

    During the handshake ``error`` is the server's own error when it sent one (e.g.
    BadCredentials), otherwise a ConnectionDefunct whose ``cause`` is the underlying error.
    """

    __slots__ = ("error",)

    def _validate(self):
        if not isinstance(self.error, BaseException):
            raise TypeError("error must be an exception, not %r" % (self.error,))


class ConnectionClosed(Event):
    """Our orderly close finished; every pending request has been failed."""

    __slots__ = ()
