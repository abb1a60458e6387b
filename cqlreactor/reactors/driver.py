"""The connection driver: one sans-IO core Connection + the TLS layer + one reactor stream.

::

    socket bytes -> Transport -> data_received -> TLSLayer.receive -> Connection.receive_data
                 -> events -> request callbacks / event listener / connect callback
    send() (any thread) -> queue -> one _flush per loop turn -> Connection.send_request (each)
                 -> Connection.data_to_send (all of it) -> TLSLayer.send -> one Transport.write
    Connection.next_deadline -> Reactor.call_later -> Connection.handle_timeout

Everything below runs on the reactor's loop thread except :meth:`ReactorConnection.send`,
:meth:`~ReactorConnection.close`, :meth:`~ReactorConnection.set_event_listener` and the
properties, which any thread may use.  Every request callback runs exactly once: with the
response message, or with an exception (server ERROR as its exception class, timeout, busy,
connection closed or failed) -- never left hanging.
"""

import _socket
import collections
import inspect
import logging
import socket
import time

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import (ConnectionDefunct, ConnectionException, ConnectionShutdown,
                                    CqlReactorError, TLSError, UnsupportedProtocolVersion)
from cqlreactor.core.events import (ConnectionClosed, ConnectionFailed, ConnectionReady,
                                    ProtocolVersionRejected, RequestFailed, ResponseReceived,
                                    ServerEventReceived)
from cqlreactor.reactors.base import DEFAULT_CONNECT_TIMEOUT, ReactorStopped, StreamProtocol
from cqlreactor.reactors.phases import CONNECTING, Phase, Step, advance
from cqlreactor.reactors.tls import TLSLayer, context_from_options

__all__ = ["ReactorConnection", "start_connect", "wait_for_connection", "as_endpoint",
           "lookup", "needs_lookup", "MAX_PROTOCOL_VERSION"]

log = logging.getLogger(__name__)
_monotonic = time.monotonic

MAX_PROTOCOL_VERSION = 5

# the phases of the stream, decided by the table in phases.py (the CQL side's are the core's)
_NEW, _TCP, _TLS, _CQL, _READY, _ENDED = (Phase.NEW, Phase.TCP, Phase.TLS, Phase.CQL,
                                          Phase.READY, Phase.ENDED)


def _error_message_class():
    from cqlreactor.core.messages import ErrorMessage
    return ErrorMessage


class ReactorConnection(StreamProtocol):
    """A connection to one node, driven by a reactor.  Made by :meth:`Reactor.connect`.

    Attributes:
        endpoint: the :class:`Endpoint`.
        reactor: the reactor driving it.
        protocol_version: the negotiated protocol version.
        ready: the core's ConnectionReady event (``supported`` options, ``compression``), once
            the handshake finished.
        last_error: why the connection failed, or None.
    """

    def __init__(self, reactor, endpoint, core, tls=None,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, on_connect=None):
        self.reactor = reactor
        self.endpoint = endpoint
        self.host = str(endpoint)
        self.protocol_version = core.protocol_version
        self.ready = None
        self.last_error = None
        self._core = core
        self._tls = tls
        self._phase = _NEW
        self._transport = None
        self._callbacks = {}                    # stream id -> callback; loop thread only
        self._queue = collections.deque()       # (message, callback, deadline); any thread
        self._flush_scheduled = False
        self._close_requested = False
        self._timer = None
        self._timer_at = None
        self._connect_timeout = connect_timeout
        self._connect_timer = None
        self._on_connect = on_connect
        self._event_listener = None
        self._close_listeners = []
        self._error_message = _error_message_class()
        self.keyspace = None                    # set by the session layer after USE

    def __repr__(self):
        return "<ReactorConnection %s v%d %s in_flight=%d>" % (
            self.host, self.protocol_version, "closed" if self.is_closed else "open",
            self.in_flight)

    # --- public, any thread --------------------------------------------------------------------

    @property
    def in_flight(self):
        """Requests sent or queued that have not completed."""
        return self._core.in_flight + len(self._queue)

    def load_if_open(self):
        """``in_flight``, or None when the connection is closed or defunct: the pool's two
        checks of every request in one call."""
        if self._close_requested or self._phase is _ENDED:
            return None
        error = self.last_error
        if error is not None and not isinstance(error, ConnectionShutdown):
            return None
        return self._core.in_flight + len(self._queue)

    @property
    def orphaned(self):
        """Timed-out requests whose stream ids stay reserved until their late answers."""
        return self._core.orphaned

    @property
    def is_defunct(self):
        return self.last_error is not None and not isinstance(self.last_error,
                                                               ConnectionShutdown)

    @property
    def is_closed(self):
        return self._close_requested or self._phase is _ENDED

    @property
    def phase(self):
        """The stream's :class:`~cqlreactor.reactors.phases.Phase` (READY once usable)."""
        return self._phase

    @property
    def transport(self):
        """The reactor's Transport while the stream is open, else None (loop thread only)."""
        return self._transport

    @property
    def tls(self):
        """The :class:`~cqlreactor.reactors.tls.TLSLayer` of a TLS connection, else None."""
        return self._tls

    @property
    def supported(self):
        """The server's SUPPORTED options ({name: [values]}) once the handshake read them."""
        return self._core.supported or {}

    def _step(self, step):
        self._phase = advance(self._phase, step)

    def send(self, message, callback, timeout=None, result_metadata=None):
        """Send a request; ``callback(response_or_exception)`` runs once on the loop thread.

        Args:
            message: a request message of core.messages (QueryMessage, PreEncodedRequest ...).
            callback: gets the response message, or an exception: the server's ERROR as its
                exception class (Unprepared, ReadTimeout ...), OperationTimedOut, ConnectionBusy,
                ConnectionShutdown, ConnectionDefunct.
            timeout: seconds from now, or None for no client-side timeout.
            result_metadata: columns to decode a Rows answer sent without metadata (EXECUTE
                with skip_metadata), passed to the core.
        """
        if self._phase is _ENDED and self.reactor.stopped:
            # (e.g. from a close listener while stop() runs: nothing would fail it later)
            raise ReactorStopped("the reactor was stopped: connection closed", host=self.host)
        deadline = _monotonic() + timeout if timeout is not None else None
        item = (message, callback, deadline, result_metadata)
        self._queue.append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                self.reactor.call_soon_threadsafe(self._flush)
            except ReactorStopped:
                # no loop will ever flush (or fail) it: take the request back, say so here
                self._flush_scheduled = False
                try:
                    self._queue.remove(item)
                except ValueError:
                    return              # a flush already took it; its callback runs there
                raise ReactorStopped("the reactor was stopped: connection closed",
                                     host=self.host)

    def cancel(self, callback):
        """Give up on the request sent with ``callback`` (any thread; the callback is not called
        for it any more).  Still queued: it is never sent.  Sent: its stream id is orphaned in
        the core (as after a client-side timeout) until the server's late answer frees it, so
        the id is never handed to a new request while that answer may still come."""
        try:
            self.reactor.call_soon_threadsafe(self._cancel_in_loop, callback)
        except ReactorStopped:
            pass                        # stopped: every request already failed

    def _cancel_in_loop(self, callback):
        queue = self._queue
        for item in queue:
            if item[1] == callback:     # bound methods compare equal, never identical
                queue.remove(item)
                return
        for stream_id, known in self._callbacks.items():
            if known == callback:
                del self._callbacks[stream_id]
                self._core.cancel_request(stream_id)
                return

    def set_event_listener(self, fn):
        """``fn(EventMessage)`` for server events (after a REGISTER request); None removes it."""
        self._event_listener = fn

    def add_close_listener(self, fn):
        """``fn(connection, exc_or_None)`` once, on the loop thread, when the connection ends:
        None after close(), the error when it failed.  Called soon if it already ended."""
        if self._phase is _ENDED:
            try:
                self.reactor.call_soon_threadsafe(fn, self, self._listener_error())
            except ReactorStopped:      # no loop any more: the caller's thread is the only one
                fn(self, self._listener_error())
        else:
            self._close_listeners.append(fn)

    def _listener_error(self):
        error = self.last_error
        return None if error is None or isinstance(error, ConnectionShutdown) else error

    def close(self):
        """Close the connection; pending requests fail with ConnectionShutdown.  Idempotent."""
        if self._close_requested or self._phase is _ENDED:
            return
        self._close_requested = True
        try:
            self.reactor.call_soon_threadsafe(self.close_in_loop)
        except ReactorStopped:
            pass                        # stop() closed every connection of the reactor

    # --- loop thread: opening ------------------------------------------------------------------

    def _open(self, target):
        """Start the TCP connect to ``target``, the (ip, port) :func:`lookup` found: looked up
        before the loop got here, because a lookup may block and loop callbacks must not."""
        if self._phase is not _NEW:
            return                      # closed before the loop got here
        self._step(Step.OPEN)
        self._connect_timer = self.reactor.call_later(self._connect_timeout,
                                                      self._connect_timed_out)
        try:
            self._transport = self.reactor.open_stream(target[0], target[1], self)
        except Exception as exc:        # a connect error found at once
            self.connection_lost(exc)

    def _connect_timed_out(self):
        self._connect_timer = None
        if self._phase in CONNECTING:
            self._fail(ConnectionException("timed out after %gs in the %s" % (
                self._connect_timeout, self._phase.label), host=self.host))

    def connection_made(self, transport):
        if self._phase is not _TCP:
            return                      # ended while connecting (timeout, close)
        self._transport = transport
        log.debug("%s: TCP connected%s", self.host,
                  "; TLS handshake" if self._tls is not None else "; CQL handshake")
        if self._tls is not None:
            self._step(Step.TCP_CONNECTED_TLS)
            try:
                transport.write(self._tls.start())
            except TLSError as exc:
                self._fail(exc)
        else:
            self._start_cql(Step.TCP_CONNECTED)

    def _start_cql(self, step):
        self._step(step)
        self._core.initiate()
        self._write_pending()

    def _became_ready(self, event):
        self._step(Step.CQL_READY)
        self.ready = event
        self.protocol_version = event.protocol_version
        if log.isEnabledFor(logging.DEBUG):
            cipher = self._tls.cipher() if self._tls is not None else None
            log.debug("%s: ready: protocol v%d, compression %s, %s", self.host,
                      event.protocol_version, event.compression or "none",
                      "%s %s" % (cipher[1], cipher[0]) if cipher else "no TLS")
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        self._finish_connect(self)
        if self._queue:
            self._flush()

    def _finish_connect(self, result):
        callback, self._on_connect = self._on_connect, None
        if callback is not None:
            _call(callback, result)

    # --- loop thread: bytes in -----------------------------------------------------------------

    def data_received(self, data):
        if self._phase is _ENDED:
            return
        try:
            self._data_received(data)
        except Exception as exc:        # a bug, not the peer's fault: still end this connection
            log.exception("error handling data from %s", self.host)
            self._fail(ConnectionDefunct("internal error handling data: %r" % (exc,),
                                         host=self.host, cause=exc))

    def _data_received(self, data):
        tls = self._tls
        if tls is not None:
            try:
                data, outgoing = tls.receive(data)
            except CqlReactorError as exc:   # TLSError in the handshake, defunct after it
                alert = tls.pending_outgoing()
                if alert and self._transport is not None:
                    self._transport.write(alert)
                self._fail(exc)
                return
            if outgoing:
                self._transport.write(outgoing)
            if self._phase is _TLS and tls.handshake_complete:
                self._start_cql(Step.TLS_DONE)
            if not data:
                if tls.peer_closed:
                    self.connection_lost(None)
                return
        events = self._core.receive_data(data)
        if events:
            self._dispatch(events)
            if self._queue and self._phase is _READY:
                self._send_queued()     # what the callbacks sent goes out now, not a turn later
        if self._phase is not _ENDED:
            self._write_pending()
            self._arm_timer()
            if tls is not None and tls.peer_closed:
                self.connection_lost(None)

    def _dispatch(self, events):
        callbacks = self._callbacks
        error_message = self._error_message
        for event in events:
            cls = event.__class__
            if cls is ResponseReceived:
                # (Requests the callbacks send are queued and go out after the whole read: the
                # core has already freed these answers' stream ids, and sending in the middle
                # of the dispatch could reuse one whose callback has not run yet.)
                callback = callbacks.pop(event.stream_id, None)
                if callback is not None:
                    message = event.message
                    if isinstance(message, error_message):
                        message = message.to_exception(host=self.host)
                    try:                # _call, inlined: this runs once per response
                        callback(message)
                    except Exception:
                        log.exception("callback %r raised", callback)
            elif cls is RequestFailed:
                callback = callbacks.pop(event.stream_id, None)
                if callback is not None:
                    _call(callback, event.error)
            elif cls is ServerEventReceived:
                listener = self._event_listener
                if listener is not None:
                    _call(listener, event.message)
            elif cls is ConnectionReady:
                self._became_ready(event)
            elif cls is ProtocolVersionRejected:
                error = event.error
                if not isinstance(error, UnsupportedProtocolVersion):
                    error = UnsupportedProtocolVersion(str(error), requested=event.requested,
                                                       retry_version=event.retry_version,
                                                       host=self.host)
                self._fail(error)
            elif cls is ConnectionFailed:
                self._fail(event.error)
            elif cls is ConnectionClosed:
                self._end(ConnectionShutdown("connection closed", host=self.host))

    # --- loop thread: bytes out ----------------------------------------------------------------

    def _flush(self):
        # Clear the flag before draining: a send() racing with us either lands in this drain or
        # sees the flag down and schedules another flush.  No lock needed.
        self._flush_scheduled = False
        if self._phase is not _READY:
            if self._phase is _ENDED or self._close_requested:
                self._fail_queue(self._ended_error())
            return                      # not ready yet: _became_ready flushes
        self._send_queued()
        self._write_pending()
        self._arm_timer()

    def _send_queued(self):
        """Hand every queued request to the core (loop thread, READY).  Leaves the flush flag
        alone: while it is up a _flush is still scheduled and drains later arrivals."""
        queue = self._queue
        core = self._core
        callbacks = self._callbacks
        popleft = queue.popleft
        while queue:
            message, callback, deadline, result_metadata = popleft()
            try:
                stream_id = core.send_request(message, deadline, result_metadata)
            except CqlReactorError as exc:   # ConnectionBusy, StreamIdsExhausted ...
                _call(callback, exc.with_context(host=self.host))
                continue
            except Exception as exc:     # the message could not be encoded (bad values ...)
                _call(callback, exc)
                continue
            callbacks[stream_id] = callback

    def _write_pending(self):
        data = self._core.data_to_send()
        if data and self._transport is not None:
            if self._tls is not None:
                try:
                    data = self._tls.send(data)
                except CqlReactorError as exc:
                    self._fail(exc)
                    return
            self._transport.write(data)

    # --- loop thread: time ---------------------------------------------------------------------

    def _arm_timer(self):
        deadline = self._core.next_deadline()
        if deadline is None:
            return
        if self._timer_at is not None and self._timer_at <= deadline:
            return                      # an earlier timer is set; it re-arms when it fires
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.reactor.call_later(max(0.0, deadline - _monotonic()), self._on_timer)

    def _on_timer(self):
        self._timer = None
        self._timer_at = None
        if self._phase is not _READY:
            return
        events = self._core.handle_timeout(_monotonic())
        if events:
            self._dispatch(events)
        if self._phase is _READY:
            self._write_pending()
            self._arm_timer()

    # --- loop thread: ending -------------------------------------------------------------------

    def connection_lost(self, exc):
        if self._phase is _ENDED:
            return
        if self._phase is _TCP:
            error = ConnectionException("could not connect: %s" % (exc or "connection closed",),
                                        host=self.host)
        elif self._phase is _TLS:
            error = TLSError("TLS handshake failed (protocol): connection closed by the peer%s"
                             % (": %s" % (exc,) if exc else ""), host=self.host,
                             reason="protocol")
        else:
            error = ConnectionDefunct("connection lost: %s" % (exc or "closed by the server",),
                                      host=self.host, cause=exc)
        if exc is not None:
            error.__cause__ = exc
        self._fail(error)

    def _fail(self, error):
        """The connection failed (socket, TLS, protocol, heartbeat, version): end it."""
        if self._phase is _ENDED:
            return
        if isinstance(error, CqlReactorError):
            error.with_context(host=self.host)
        self.last_error = error
        log.debug("%s: connection ended in the %s: %s: %s", self.host, self._phase.label,
                  type(error).__name__, error)
        try:
            events = self._core.connection_lost(error)  # RequestFailed each, ConnectionFailed
        except CqlReactorError:         # the core had not started (IDLE): nothing pending
            events = []
        self._step(Step.END)            # the dispatch below re-enters _fail: make it a no-op
        if events:
            self._dispatch(events)
        self._end(error)

    def close_in_loop(self):
        """Close at once (loop thread only): what :meth:`close` schedules, and what
        :meth:`Reactor.close_connections` calls when the reactor stops."""
        if self._phase is _ENDED:
            return
        error = ConnectionShutdown("connection closed", host=self.host)
        self.last_error = error
        if self._phase is _READY and self._tls is not None and self._transport is not None:
            try:
                self._transport.write(self._tls.close())  # close_notify, best effort
            except Exception:
                pass
        try:
            events = self._core.close()
        except CqlReactorError:
            events = []
        self._step(Step.END)
        if events:
            self._dispatch(events)
        self._end(error)

    def _end(self, error):
        """Release everything; every request still known fails with ``error``."""
        self._step(Step.END)
        for timer in (self._timer, self._connect_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._connect_timer = None
        callbacks, self._callbacks = self._callbacks, {}
        for callback in callbacks.values():
            _call(callback, _request_error(error, self.host))
        self._fail_queue(error)
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                transport.close()
            except Exception:
                log.debug("closing the transport of %s failed", self.host, exc_info=True)
        self._finish_connect(error)
        listeners, self._close_listeners = self._close_listeners, []
        if listeners:
            listener_error = self._listener_error()
            for listener in listeners:
                try:
                    listener(self, listener_error)
                except Exception:
                    log.exception("close listener %r raised", listener)

    def _ended_error(self):
        if self.last_error is not None:
            return self.last_error
        return ConnectionShutdown("connection closed", host=self.host)

    def _fail_queue(self, error):
        queue = self._queue
        while queue:
            callback = queue.popleft()[1]
            _call(callback, _request_error(error, self.host))

    def forget_after_fork(self):
        """In a forked child: this connection belongs to the parent.  Forget it without touching
        its socket or TLS session (called by :meth:`Reactor.after_fork_in_child`).

        Returns:
            (callbacks, error): the request callbacks that must fail, and with what.
        """
        self._step(Step.END)
        self._close_requested = True
        self.last_error = ConnectionDefunct("connection inherited across os.fork(); the child "
                                            "must open its own", host=self.host)
        callbacks = list(self._callbacks.values())
        self._callbacks = {}
        while self._queue:
            callbacks.append(self._queue.popleft()[1])
        self._on_connect = None
        return callbacks, self.last_error


def _request_error(error, host):
    if isinstance(error, ConnectionShutdown):
        return ConnectionShutdown(error.message or "connection closed", host=host)
    if isinstance(error, ConnectionDefunct):
        return error
    return ConnectionDefunct("connection to %s failed: %s" % (host, error), host=host,
                             cause=error)


def _call(callback, value):
    try:
        callback(value)
    except Exception:
        log.exception("callback %r raised", callback)


# --- opening connections ------------------------------------------------------------------------

def as_endpoint(endpoint):
    """Accept an Endpoint, "address:port", "address" or (address, port)."""
    if isinstance(endpoint, Endpoint):
        return endpoint
    if isinstance(endpoint, tuple):
        return Endpoint(*endpoint)
    text = str(endpoint)
    if text.count(":") == 1:
        address, port = text.split(":")
        return Endpoint(address, int(port))
    return Endpoint(text)


def _numeric(address):
    """True when ``address`` is an IPv4/IPv6 literal: it needs no lookup."""
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, address)
            return True
        except (OSError, ValueError, TypeError):
            pass
    return False


def needs_lookup(endpoint):
    """True when opening ``endpoint`` needs a name lookup (which may block): a host name, or
    an endpoint with ``resolve()`` (a cloud SniEndpoint, re-resolved on every connect)."""
    return getattr(endpoint, "resolve", None) is not None or not _numeric(endpoint.address)


def lookup(reactor, endpoint):
    """The (ip, port) to open for ``endpoint``.  May block: call it where blocking is allowed
    (the caller of :meth:`Reactor.connect`, or :meth:`Reactor.spawn`), never in a loop
    callback -- under gevent's ``patch_all`` a lookup there raises "Impossible to call
    blocking function in the event loop callback"; elsewhere it stalls every connection.

    ``endpoint.resolve()`` when the endpoint has it (given the reactor's ``getaddrinfo`` when it
    takes one); else the first address ``reactor.getaddrinfo`` gives for a host name.

    Raises:
        ConnectionException: the name does not resolve.
    """
    getaddrinfo = getattr(reactor, "getaddrinfo", None) or socket.getaddrinfo
    resolve = getattr(endpoint, "resolve", None)
    if resolve is not None:
        if _takes_getaddrinfo(resolve):
            return resolve(getaddrinfo=getaddrinfo)
        return resolve()
    if _numeric(endpoint.address):
        return endpoint.address, endpoint.port
    try:
        infos = getaddrinfo(endpoint.address, endpoint.port, 0, _socket.SOCK_STREAM)
        sockaddr = infos[0][4]
    except (OSError, IndexError) as exc:
        error = ConnectionException("could not connect: cannot resolve %s (%s)"
                                    % (endpoint.address, exc or "no address"),
                                    host=str(endpoint))
        error.__cause__ = exc
        raise error
    return sockaddr[0], endpoint.port


def _takes_getaddrinfo(fn):
    try:
        return "getaddrinfo" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def start_connect(reactor, endpoint, callback, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                  protocol_version=None, ssl_context=None, ssl_options=None,
                  check_hostname_as=None, target=None, **core_options):
    """Open a connection without blocking; ``callback(conn_or_exception)`` runs once on the
    loop thread.  With ``protocol_version`` None the first attempt offers v5 and each refusal
    that names a lower common version retries on a new connection with it.  TLS options as
    for :meth:`Reactor.connect`.

    ``target`` is the (ip, port) to open when the caller already ran :func:`lookup`; without
    it an endpoint that needs a lookup is looked up in :meth:`Reactor.spawn` (off the loop,
    bounded by ``connect_timeout``) and every attempt of this connect opens what it found.

    Returns:
        the first attempt's ReactorConnection, or None while a lookup runs first.
    """
    from cqlreactor.core.connection import Connection

    endpoint = as_endpoint(endpoint)
    context = ssl_context
    if context is None and ssl_options:
        context = context_from_options(ssl_options)
    host = str(endpoint)
    fallback = protocol_version is None
    opened = [target]

    def attempt(version):
        core = Connection(host=host, protocol_version=version, **core_options)
        tls = None
        if context is not None:
            tls = TLSLayer(context, endpoint.server_hostname or endpoint.address, host=host,
                           check_hostname_as=check_hostname_as)
        conn = ReactorConnection(reactor, endpoint, core, tls, connect_timeout, done)
        reactor.track_connection(conn)
        reactor.call_soon_threadsafe(conn._open, opened[0])
        return conn

    def done(result):
        if (fallback and isinstance(result, UnsupportedProtocolVersion)
                and result.retry_version and result.retry_version < (result.requested or 99)):
            log.debug("%s refused protocol v%s; retrying with v%s", host, result.requested,
                      result.retry_version)
            attempt(result.retry_version)
            return
        callback(result)

    first_version = protocol_version or MAX_PROTOCOL_VERSION
    if opened[0] is None and not needs_lookup(endpoint):
        opened[0] = (endpoint.address, endpoint.port)
    if opened[0] is not None:
        return attempt(first_version)

    def found(address):
        opened[0] = address
        attempt(first_version)

    _lookup_off_loop(reactor, endpoint, connect_timeout, found, callback)
    return None


def _on_loop(reactor, fn, value):
    try:
        reactor.call_soon_threadsafe(fn, value)
    except ReactorStopped as exc:       # no loop any more: tell the caller here
        fn(exc)


def _lookup_off_loop(reactor, endpoint, timeout, found, callback):
    """Run :func:`lookup` in ``reactor.spawn``; then ``found(address)`` there, or
    ``callback(error)`` on the loop: the lookup failed or did not finish within ``timeout``."""
    ticket = [True]                     # popped once: by the lookup or by the timeout

    def claim():
        try:
            return ticket.pop()
        except IndexError:
            return False

    def timed_out():
        if claim():
            callback(ConnectionException("timed out after %gs in the name lookup" % (timeout,),
                                         host=str(endpoint)))

    timer = reactor.call_later(timeout, timed_out)

    def work():
        try:
            address = lookup(reactor, endpoint)
        except Exception as exc:
            if claim():
                timer.cancel()
                _on_loop(reactor, callback, exc)
            return
        if claim():
            timer.cancel()
            try:
                found(address)
            except ReactorStopped as exc:   # stopped while the lookup ran
                callback(exc)

    reactor.spawn(work)


def wait_for_connection(reactor, endpoint, connect_timeout, options):
    """:meth:`Reactor.connect`: start_connect, then wait with the reactor's own primitive."""
    event = reactor.make_event()
    box = []

    def done(result):
        box.append(result)
        event.set()

    endpoint = as_endpoint(endpoint)
    # Looked up here, in the caller (who may block), not in the loop callback that opens it.
    target = lookup(reactor, endpoint)
    start_connect(reactor, endpoint, done, connect_timeout=connect_timeout, target=target,
                  **options)
    # Each attempt has its own timer on the loop; this bound only guards against a dead loop.
    if not event.wait(connect_timeout * 3 + 5.0):
        raise ConnectionException("timed out waiting for the reactor to connect",
                                  host=str(endpoint))
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result
