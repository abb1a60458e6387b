"""The sans-IO connection: bytes in, events out, bytes pulled, time passed in.

A :class:`Connection` holds everything one CQL connection knows (state, stream ids, deadlines,
negotiated version and compression, framing) and nothing that does IO.  A reactor drives it::

    conn = Connection(host="10.0.0.1:9042", protocol_version=5, authenticator=auth)
    conn.initiate()
    sock.sendall(conn.data_to_send())
    for event in conn.receive_data(sock.recv(65536)): ...      # ConnectionReady, ...
    stream_id = conn.send_request(QueryMessage(...), deadline=now + 10)
    ...; timer_at(conn.next_deadline()) -> conn.handle_timeout(now)

Which state follows which input is decided by the table in ``states.py`` only; this module
performs the side effects.  Errors that come from the peer's bytes never raise out of
``receive_data``: the connection becomes DEFUNCT and the events say so.
"""

import re

from .. import __version__
from . import messages as _m
from .auth import Authenticator
from .compression import choose_compression
from .errors import (AuthenticationFailed, ConnectionDefunct, ConnectionException,
                     ConnectionShutdown, IllegalStateTransition, OperationTimedOut,
                     ProtocolError, UnsupportedProtocolVersion)
from .events import (ConnectionClosed, ConnectionFailed, ConnectionReady, ProtocolVersionRejected,
                     RequestFailed, ResponseReceived, ServerEventReceived)
from .framing import CLIENT, Framing
from .frames import DEFAULT_MAX_FRAME_SIZE, FLAG_USE_BETA, SUPPORTED_VERSIONS, pack_header
from .states import (HANDSHAKE_STATES, TERMINAL_STATES, TRANSITIONS, ConnectionState, Input)
from .streams import KIND_HEARTBEAT, KIND_REQUEST, MAX_STREAMS, StreamTable

__all__ = ["Connection", "parse_supported_versions", "retry_version_for"]

S = ConnectionState
_READY = S.READY
_HANDSHAKE_STREAM = 0
_ERROR_PROTOCOL = 0x000A
_PreEncoded = _m.PreEncodedRequest

# The hot paths test ``state is READY`` instead of looking the table up; make sure the table
# agrees with that shortcut.
assert TRANSITIONS[(_READY, Input.SEND_REQUEST)] is _READY
assert TRANSITIONS[(_READY, Input.RECV_RESPONSE)] is _READY
assert TRANSITIONS[(_READY, Input.RECV_ORPHAN_RESPONSE)] is _READY
assert TRANSITIONS[(_READY, Input.RECV_EVENT)] is _READY
assert not any(st is not _READY and inp is Input.SEND_REQUEST for (st, inp) in TRANSITIONS)


class Connection(object):
    """One CQL native protocol connection, without IO.

    Args:
        host: names the endpoint in every error ("address:port" or a cloud host id).
        protocol_version: the version to open with (3, 4 or 5).
        authenticator: an :class:`~cqlreactor.core.auth.Authenticator`, or an auth provider
            (anything with ``new_authenticator(host)``), or None.
        compression: None/False, True (any), a name ("lz4", "snappy") or a preference list.
        cql_version, driver_name, driver_version: sent in STARTUP.
        max_frame_size: largest frame body accepted from the server.
        max_in_flight: backpressure limit; send_request raises ConnectionBusy beyond it.
        heartbeat_interval: seconds between heartbeat ticks, or None for no heartbeat.
        max_orphans: when this many timed-out requests still hold their stream ids (the
            server stopped answering them), the connection becomes DEFUNCT so that its pool
            replaces it instead of running out of ids; default three quarters of the ids.
        allow_beta: set the USE_BETA flag (to speak a version the server calls beta).
        startup_options: extra STARTUP options (e.g. {"APPLICATION_NAME": "x"}).
    """

    def __init__(self, host="", protocol_version=5, authenticator=None, compression=None,
                 cql_version="3.0.0", driver_name="cqlreactor", driver_version=__version__,
                 max_frame_size=DEFAULT_MAX_FRAME_SIZE, max_in_flight=MAX_STREAMS,
                 heartbeat_interval=None, allow_beta=False, startup_options=None,
                 max_orphans=None):
        if protocol_version not in SUPPORTED_VERSIONS:
            raise ValueError("protocol_version must be one of %s, not %r"
                             % (", ".join(map(str, SUPPORTED_VERSIONS)), protocol_version))
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive or None")
        self.host = host
        self.protocol_version = protocol_version
        if authenticator is not None and not isinstance(authenticator, Authenticator) \
                and hasattr(authenticator, "new_authenticator"):
            authenticator = authenticator.new_authenticator(host)
        self.authenticator = authenticator
        choose_compression(compression, (), protocol_version)   # ValueError for unknown names
        self.compression_preference = compression
        self.cql_version = cql_version
        self.driver_name = driver_name
        self.driver_version = driver_version
        self.max_frame_size = max_frame_size
        self.heartbeat_interval = heartbeat_interval
        self.max_orphans = max_orphans if max_orphans is not None else MAX_STREAMS * 3 // 4
        if self.max_orphans <= 0:
            raise ValueError("max_orphans must be positive")
        self.allow_beta = allow_beta
        self.startup_options = dict(startup_options or {})

        self.state = S.IDLE
        self.supported = None           # the server's SUPPORTED options
        self.options = None             # the STARTUP options we sent
        self.compressor = None          # negotiated Compressor or None
        self.last_error = None          # why the connection is DEFUNCT
        self._flags = FLAG_USE_BETA if allow_beta else 0
        self._streams = StreamTable(max_in_flight=max_in_flight, host=host)
        # Envelopes, segments and the v5 switch; _out is its queue, appended to directly.
        self._framing = Framing(CLIENT, protocol_version, max_frame_size)
        self._out = self._framing.queue
        # heartbeat
        self._next_tick = None          # None: anchor at the next handle_timeout(now)
        self._heartbeat_stream = None   # stream of the unanswered heartbeat, if any
        self._received = False          # bytes arrived since the last tick

    # --- properties ---------------------------------------------------------------------------

    @property
    def in_flight(self):
        """Requests awaiting an answer (timed-out orphans not counted)."""
        return self._streams.in_flight

    @property
    def orphaned(self):
        """Stream ids reserved by timed-out requests whose answer has not arrived."""
        return self._streams.orphaned

    @property
    def max_in_flight(self):
        return self._streams.max_in_flight

    @property
    def is_ready(self):
        return self.state is _READY

    @property
    def is_defunct(self):
        return self.state is S.DEFUNCT

    @property
    def is_closed(self):
        return self.state is S.CLOSED or self.state is S.CLOSING

    @property
    def compression(self):
        """The negotiated compression name, or None."""
        return self.compressor.name if self.compressor is not None else None

    def __repr__(self):
        return "<Connection host=%r v%d %s in_flight=%d>" % (
            self.host, self.protocol_version, self.state.name, self.in_flight)

    # --- the state table ----------------------------------------------------------------------

    def _apply(self, inp):
        """Move along the table; raise IllegalStateTransition when ``inp`` is not allowed."""
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise IllegalStateTransition(
                "%s is not allowed in state %s" % (inp.label, self.state.name), host=self.host)
        self.state = nxt
        return nxt

    # --- sending ------------------------------------------------------------------------------

    def initiate(self):
        """Queue OPTIONS, the first message of the handshake.

        Raises:
            IllegalStateTransition: the connection was already initiated.
        """
        self._apply(Input.INITIATE)
        self._queue(_m.OptionsMessage(), _HANDSHAKE_STREAM)

    def send_request(self, message, deadline=None, result_metadata=None):
        """Queue a request; return its stream id.

        Args:
            message: a request message (QueryMessage, ExecuteMessage, PreEncodedRequest …).
            deadline: absolute monotonic time at which the request times out, or None.
            result_metadata: the column metadata to decode a Rows answer that carries none
                (EXECUTE with skip_metadata: ``PreparedResult.result_metadata``).

        Raises:
            ConnectionBusy: ``max_in_flight`` requests are in flight (backpressure).
            StreamIdsExhausted: every stream id is in flight or orphaned.
            IllegalStateTransition: the handshake is not finished.
            ConnectionDefunct / ConnectionShutdown: the connection failed / was closed.
        """
        if self.state is not _READY:
            self._refuse_send()
        opcode = message.opcode
        record = self._streams.allocate(opcode, message, deadline, KIND_REQUEST, result_metadata)
        stream_id = record.stream_id
        if message.__class__ is _PreEncoded and not message.tracing \
                and not message.custom_payload:
            # The hot path: a body the session built once; only the header is new.
            body = message.body
            self._out.append(pack_header(self.protocol_version, self._flags, stream_id,
                                         opcode, len(body)) + body)
            return stream_id
        try:
            self._out.append(_m.encode_message(message, stream_id, self.protocol_version,
                                               self._flags))
        except BaseException:
            self._streams.release(stream_id)
            raise
        return stream_id

    def cancel_request(self, stream_id):
        """Give up on the request on ``stream_id``: it is orphaned as if it had timed out (its
        id stays reserved until the server's late answer, which is dropped).  No event follows
        for it.  Returns True when the request was still awaiting an answer."""
        return self._streams.orphan(stream_id) is not None

    def _refuse_send(self):
        state = self.state
        if state is S.DEFUNCT:
            raise ConnectionDefunct("connection is defunct: %s" % (self.last_error,),
                                    host=self.host, cause=self.last_error)
        if state is S.CLOSED or state is S.CLOSING:
            raise ConnectionShutdown("connection is closed", host=self.host)
        self._apply(Input.SEND_REQUEST)     # raises IllegalStateTransition

    def data_to_send(self):
        """Return (and forget) every byte queued for the server; b"" when nothing is queued."""
        return self._framing.data_to_send()

    def _queue(self, message, stream_id):
        self._out.append(_m.encode_message(message, stream_id, self.protocol_version,
                                           self._flags))

    # --- receiving ----------------------------------------------------------------------------

    def receive_data(self, data):
        """Feed bytes read from the socket; return the events they complete.

        Malformed bytes, a bad v5 checksum or a message no state expects make the connection
        DEFUNCT (events: RequestFailed for every pending request, then ConnectionFailed); events
        completed before the bad bytes are returned first.  Bytes arriving after the connection
        closed or failed are ignored.
        """
        state = self.state
        if not data or (state is not _READY and state in TERMINAL_STATES):
            return []
        events = []
        try:
            if self._framing.switched:
                self._receive_framed(data, events)
            elif state in HANDSHAKE_STATES:
                self._receive_handshake(data, events)
            else:
                # IDLE (nothing sent yet) or CLOSING: the server speaks first only in error.
                self._apply(Input.RECV_UNEXPECTED)
        except ProtocolError as exc:
            self._become_defunct(exc.with_context(host=self.host), events)
        except Exception as exc:  # a decoder tripped over garbage: still the peer's bytes
            error = ProtocolError("malformed data from the server: %r" % (exc,), host=self.host)
            error.__cause__ = exc
            self._become_defunct(error, events)
        return events

    def _receive_framed(self, data, events):
        # A bad segment raises out of the loop after the frames completed before it.
        frames_in = self._framing.receive_data(data)
        streams = self._streams
        release = streams.release
        lookup = streams._records.get       # StreamTable.get without the extra call
        frames = heartbeats = 0
        version = self.protocol_version
        decode = _m.decode_message
        append = events.append
        for frame in frames_in:
            frames += 1
            if self.state is not _READY:
                # still authenticating (v5 segments carry the SASL exchange), or the exchange
                # just failed and the rest of the chunk is moot
                if self.state is not S.AUTHENTICATING:
                    break
                self._handshake_frame(frame, events)
                continue
            stream_id = frame.stream
            if stream_id >= 0:
                record = lookup(stream_id)
                if record is None:
                    raise IllegalStateTransition(
                        "answer on stream %d, which has no request in flight" % (stream_id,),
                        host=self.host, stream_id=stream_id, opcode=frame.opcode)
                if record.orphaned:
                    release(stream_id)
                    continue            # late answer to a timed-out request: drop it
                if record.kind == KIND_HEARTBEAT:
                    release(stream_id)
                    if self._heartbeat_stream == stream_id:
                        self._heartbeat_stream = None
                    heartbeats += 1
                    continue
                # decode before releasing: if the body is malformed the request is still
                # pending and fails (once) with everything else
                message = decode(frame, version, record.result_metadata)
                release(stream_id)
                append(ResponseReceived(stream_id, message))
            elif stream_id == -1:
                append(ServerEventReceived(decode(frame, version)))
            else:
                raise IllegalStateTransition(
                    "frame on negative stream %d" % (stream_id,), host=self.host,
                    stream_id=stream_id, opcode=frame.opcode)
        if frames > heartbeats:
            self._received = True   # traffic other than heartbeats: the next tick is not idle

    def _receive_handshake(self, data, events):
        framing = self._framing
        try:
            for frame in framing.receive_data(data):
                self._handshake_frame(frame, events)
                # The framing switched at the answer to STARTUP: what follows is read framed.
                if framing.switched or self.state not in HANDSHAKE_STATES:
                    break
        except UnsupportedProtocolVersion as exc:
            error = UnsupportedProtocolVersion(
                "server answered with protocol version %s, which this driver does not speak"
                % (exc.requested,), requested=self.protocol_version, retry_version=None,
                server_message=str(exc), host=self.host)
            self._version_rejected(error, None, events)
            return
        if framing.switched and self.state not in TERMINAL_STATES:
            self._receive_framed(b"", events)

    def _handshake_frame(self, frame, events):
        message = _m.decode_message(frame, frame.version)
        if isinstance(message, _m.ErrorMessage):
            retry = self._rejection(message, frame)
            if retry is not False:
                error = UnsupportedProtocolVersion(
                    "server rejected protocol version %d: %s" % (
                        self.protocol_version, _error_text(message)),
                    requested=self.protocol_version, retry_version=retry,
                    server_message=_error_text(message), host=self.host)
                self._version_rejected(error, retry, events)
                return
            self._apply(Input.RECV_ERROR)
            error = message.to_exception(host=self.host)
            self._fail_pending(error, events, Input.RECV_ERROR, already_applied=True)
            return
        if frame.stream != _HANDSHAKE_STREAM or frame.version != self.protocol_version:
            raise IllegalStateTransition(
                "unexpected %s (v%d) on stream %d during the handshake" % (
                    type(message).__name__, frame.version, frame.stream),
                host=self.host, stream_id=frame.stream, opcode=frame.opcode)
        if isinstance(message, _m.SupportedMessage):
            self._apply(Input.RECV_SUPPORTED)
            self._send_startup(message)
        elif isinstance(message, _m.ReadyMessage):
            self._apply(Input.RECV_READY)
            self._handshake_done(events)
        elif isinstance(message, _m.AuthenticateMessage):
            self._apply(Input.RECV_AUTHENTICATE)
            self._start_auth(message, events)
        elif isinstance(message, _m.AuthChallengeMessage):
            self._apply(Input.RECV_AUTH_CHALLENGE)
            self._auth_step(message, events)
        elif isinstance(message, _m.AuthSuccessMessage):
            if (self.state, Input.RECV_AUTH_SUCCESS) in TRANSITIONS:
                try:
                    self.authenticator.on_authentication_success(_attr(message, "token"))
                except Exception as exc:
                    self._auth_failed(_auth_error(exc, self.host), events)
                    return
            self._apply(Input.RECV_AUTH_SUCCESS)
            self._handshake_done(events)
        else:
            self._apply(Input.RECV_UNEXPECTED)  # not in the table: raises

    # --- handshake steps ----------------------------------------------------------------------

    def _send_startup(self, supported):
        options = _supported_options(supported)
        self.supported = options
        compressor = choose_compression(self.compression_preference,
                                        options.get("COMPRESSION", []), self.protocol_version)
        startup = {"CQL_VERSION": self.cql_version, "DRIVER_NAME": self.driver_name,
                   "DRIVER_VERSION": self.driver_version}
        if compressor is not None:
            startup["COMPRESSION"] = compressor.name
        startup.update(self.startup_options)
        self.options = startup
        self.compressor = compressor
        self._queue(_m.StartupMessage(startup), _HANDSHAKE_STREAM)
        self._framing.startup(compressor)

    def _start_auth(self, message, events):
        authenticator = self.authenticator
        server_class = _attr(message, "authenticator")
        if authenticator is None:
            self._auth_failed(AuthenticationFailed(
                "server requires authentication (%s) but no authenticator was configured" % (
                    server_class,), host=self.host), events)
            return
        try:
            authenticator.server_authenticator_class = server_class
            token = authenticator.initial_response()
        except Exception as exc:
            self._auth_failed(_auth_error(exc, self.host), events)
            return
        self._queue(_m.AuthResponseMessage(token), _HANDSHAKE_STREAM)

    def _auth_step(self, message, events):
        try:
            token = self.authenticator.evaluate_challenge(_attr(message, "token"))
        except Exception as exc:
            self._auth_failed(_auth_error(exc, self.host), events)
            return
        self._queue(_m.AuthResponseMessage(token), _HANDSHAKE_STREAM)

    def _auth_failed(self, error, events):
        self._fail_pending(error, events, Input.AUTH_FAILED)

    def _handshake_done(self, events):
        events.append(ConnectionReady(self.protocol_version, self.compression, self.supported,
                                      self.options))

    def _rejection(self, message, frame):
        """For an ERROR answering our first message: False when it is not about the protocol
        version, else the version to retry with (None when there is none)."""
        if _attr(message, "code") != _ERROR_PROTOCOL:
            return False
        text = _error_text(message)
        lowered = text.lower()
        if "protocol version" not in lowered and "use_beta" not in lowered \
                and frame.version == self.protocol_version:
            return False
        return retry_version_for(self.protocol_version, text, frame.version, self.allow_beta)

    def _version_rejected(self, error, retry, events):
        self._apply(Input.RECV_VERSION_REJECTED)
        self.last_error = error
        self._drop_everything()
        events.append(ProtocolVersionRejected(self.protocol_version, retry, error))

    # --- time ---------------------------------------------------------------------------------

    def next_deadline(self):
        """The earliest time at which ``handle_timeout`` has work: a request deadline or a
        heartbeat tick.  None when there is nothing to wait for.  A value of 0.0 means "call
        handle_timeout now" (the heartbeat anchors its first tick on the time it is given)."""
        deadline = self._streams.next_deadline()
        if self.heartbeat_interval is not None and self.state is _READY:
            tick = self._next_tick
            if tick is None:
                return 0.0
            if deadline is None or tick < deadline:
                return tick
        return deadline

    def handle_timeout(self, now):
        """Expire requests whose deadline passed and run the heartbeat; return events.

        A timed-out request gets RequestFailed(OperationTimedOut); its stream id stays reserved
        until its late answer arrives.  A heartbeat tick sends OPTIONS when nothing arrived
        since the previous tick; a tick that finds the previous heartbeat unanswered makes the
        connection DEFUNCT.
        """
        if self.state is not _READY:
            return []
        events = []
        expired = self._streams.expire(now)
        if expired:
            self._apply(Input.REQUEST_TIMEOUT)
            host = self.host
            for record in expired:
                if record.kind != KIND_REQUEST:
                    continue
                events.append(RequestFailed(record.stream_id, OperationTimedOut(
                    "no answer before the request deadline; stream id kept until a late answer",
                    host=host, stream_id=record.stream_id, opcode=record.opcode)))
            orphaned = self._streams.orphaned
            if orphaned >= self.max_orphans:
                cause = OperationTimedOut(
                    "%d timed-out requests were never answered; the server has stopped "
                    "answering this connection, which is replaced" % (orphaned,), host=host)
                self._fail_pending(cause, events, Input.TOO_MANY_ORPHANS)
                return events
        if self.heartbeat_interval is not None:
            self._heartbeat(now, events)
        return events

    def _heartbeat(self, now, events):
        tick = self._next_tick
        if tick is None:
            self._next_tick = now + self.heartbeat_interval
            self._received = False
            return
        if now < tick:
            return
        self._next_tick = now + self.heartbeat_interval
        if self._heartbeat_stream is not None:
            stream_id = self._heartbeat_stream
            self._apply(Input.HEARTBEAT_MISSED)
            cause = OperationTimedOut(
                "heartbeat unanswered for %gs" % (self.heartbeat_interval,),
                host=self.host, stream_id=stream_id, opcode=_m.OptionsMessage.opcode)
            self._fail_pending(cause, events, Input.HEARTBEAT_MISSED, already_applied=True)
            return
        self._apply(Input.HEARTBEAT_TICK)
        if self._received:
            self._received = False      # traffic flowed: the connection is not idle
            return
        try:
            record = self._streams.allocate(_m.OptionsMessage.opcode, None, None, KIND_HEARTBEAT)
        except ConnectionException:
            return                      # every id in use: plenty of traffic pending anyway
        self._heartbeat_stream = record.stream_id
        self._queue(_m.OptionsMessage(), record.stream_id)

    # --- ending -------------------------------------------------------------------------------

    def connection_lost(self, exc=None):
        """The socket is gone (EOF or error).  Every pending request fails once with
        ConnectionDefunct; returns those events plus ConnectionFailed.  No-op once closed."""
        if self.state in TERMINAL_STATES:
            return []
        cause = exc if exc is not None else ConnectionException(
            "connection closed by the server", host=self.host)
        events = []
        self._fail_pending(cause, events, Input.CONNECTION_LOST)
        return events

    def close(self, exc=None):
        """Close the connection from our side.  Every pending request fails once with
        ConnectionShutdown (``exc``, when given, is its cause); returns those events plus
        ConnectionClosed.  Queued output is dropped.  No-op once closed or defunct."""
        if self.state in TERMINAL_STATES:
            return []
        self._apply(Input.CLOSE)
        host = self.host
        reason = "connection to %s closed" % (host,)
        if exc is not None:
            reason += ": %s" % (exc,)
        events = []
        for record in self._drop_everything():
            if record.kind != KIND_REQUEST:
                continue
            error = ConnectionShutdown(reason, host=host, stream_id=record.stream_id,
                                       opcode=record.opcode)
            error.__cause__ = exc
            events.append(RequestFailed(record.stream_id, error))
        self._apply(Input.CLOSE_DONE)
        events.append(ConnectionClosed())
        return events

    def _become_defunct(self, cause, events):
        """The peer's bytes were bad (``cause``): DEFUNCT, fail everything."""
        if self.state in TERMINAL_STATES:
            return
        self._fail_pending(cause, events, Input.RECV_MALFORMED)

    def _fail_pending(self, cause, events, inp, already_applied=False):
        """Move to DEFUNCT through ``inp``; fail each pending request once; ConnectionFailed."""
        if not already_applied:
            self._apply(inp)
        host = self.host
        reason = "connection to %s failed: %s" % (host, cause)
        self.last_error = cause
        for record in self._drop_everything():
            if record.kind != KIND_REQUEST:
                continue
            events.append(RequestFailed(record.stream_id, ConnectionDefunct(
                reason, host=host, cause=cause, stream_id=record.stream_id,
                opcode=record.opcode)))
        if inp is Input.RECV_ERROR or inp is Input.AUTH_FAILED:
            events.append(ConnectionFailed(cause))     # the server's own error (BadCredentials …)
        else:
            events.append(ConnectionFailed(ConnectionDefunct(reason, host=host, cause=cause)))

    def _drop_everything(self):
        self._framing.discard()
        self._heartbeat_stream = None
        return self._streams.drain()


# --- version negotiation ------------------------------------------------------------------------

_SUPPORTED_LIST = re.compile(r"supported versions are \(([^)]*)\)", re.IGNORECASE)
_VERSION_ITEM = re.compile(r"(\d+)\s*/\s*v\d+(-beta)?", re.IGNORECASE)


def parse_supported_versions(text):
    """Parse the version list of a server's ProtocolError text.

    "Invalid or unsupported protocol version (6); supported versions are (3/v3, 4/v4, 5/v5,
    6/v6-beta)" gives ``[(3, False), (4, False), (5, False), (6, True)]`` (version, is beta).
    Returns None when the text names no list (older servers: "Invalid or unsupported protocol
    version: 5").
    """
    match = _SUPPORTED_LIST.search(text or "")
    if not match:
        return None
    return [(int(num), bool(beta)) for num, beta in _VERSION_ITEM.findall(match.group(1))]


def retry_version_for(requested, text, answered_version=None, allow_beta=False,
                      ours=SUPPORTED_VERSIONS):
    """The highest version below ``requested`` that both sides speak, or None.

    Args:
        requested: the version the server refused.
        text: the server's error text.
        answered_version: the version of the frame carrying the error (servers answer in a
            version they speak), if known.
        allow_beta: whether versions the server calls beta count.
        ours: the versions this driver speaks.
    """
    listed = parse_supported_versions(text)
    if listed is not None:
        theirs = [v for v, beta in listed if allow_beta or not beta]
        common = [v for v in theirs if v in ours and v < requested]
        return max(common) if common else None
    if answered_version is not None and answered_version < requested \
            and answered_version in ours:
        return answered_version
    lower = [v for v in ours if v < requested]
    return max(lower) if lower else None


# --- message field access -------------------------------------------------------------------------

def _attr(message, name):
    return getattr(message, name, None)


def _error_text(message):
    text = getattr(message, "message", None)
    if text is None:
        text = getattr(message, "server_message", "")
    return text or ""


# SUPPORTED options by content: every connection to a cluster gets the same ones, and one
# shared dict (with its strings and lists) instead of a copy per connection is most of what an
# idle connection holds.  Bounded: cleared when many different servers answered.
_SHARED_SUPPORTED = {}
_SHARED_SUPPORTED_MAX = 64


def _supported_options(message):
    """The server's SUPPORTED options (read-only: shared between connections)."""
    options = getattr(message, "options", None)
    if options is None:
        options = getattr(message, "supported", None)
    options = options or {}
    try:
        key = tuple(sorted((name, tuple(values)) for name, values in options.items()))
        shared = _SHARED_SUPPORTED.get(key)
    except TypeError:       # values that are no sequences of strings: a copy of its own
        return dict(options)
    if shared is None:
        if len(_SHARED_SUPPORTED) >= _SHARED_SUPPORTED_MAX:
            _SHARED_SUPPORTED.clear()
        shared = _SHARED_SUPPORTED[key] = dict(options)
    return shared


def _auth_error(exc, host):
    if isinstance(exc, AuthenticationFailed):
        return exc
    error = AuthenticationFailed("authenticator failed: %r" % (exc,), host=host)
    error.__cause__ = exc
    return error
