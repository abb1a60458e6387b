"""The reactor contract: what a reactor module implements, and what it gets for free.

A reactor only moves bytes and runs timers.  Everything protocol-shaped (framing, stream ids,
handshake, heartbeats, request deadlines) lives in the sans-IO core; TLS lives in
:mod:`cqlreactor.reactors.tls`; the glue between them and a reactor is
:class:`~cqlreactor.reactors.driver.ReactorConnection`.  A new reactor subclasses
:class:`Reactor` and implements the capabilities below (about 150-300 lines each):

=====================  =======================================================================
loop                   ``start()``, ``stop()``
wake-up (any thread)   ``call_soon_threadsafe(fn, *args)``
time (any thread)      ``call_later(delay, fn, *args) -> TimerHandle`` (monotonic clock)
blocking waits         ``make_event() -> Event`` (greenlet-aware under gevent/eventlet)
TCP (loop thread)      ``open_stream(address, port, protocol) -> Transport``
fork                   ``_reinit_after_fork()``: drop the parent's loop, build a fresh one lazily
=====================  =======================================================================

Threading rules:

- The driver calls ``open_stream`` and every ``Transport`` method on the loop thread only; the
  reactor calls every ``StreamProtocol`` method on the loop thread only.
- ``call_soon_threadsafe``, ``call_later`` and ``make_event`` work from any thread (and from the
  loop thread).  Callbacks run on the loop thread, in order; an exception in a callback is
  logged, never kills the loop.
- A reactor starts itself on first use (``call_soon_threadsafe`` on a reactor that is not
  running starts it), so users never have to call ``start()``.

Provided here: :meth:`Reactor.connect` / :meth:`Reactor.connect_async` (TCP + TLS + CQL
handshake with protocol-version fallback and a connect timeout), the compat-matrix gate on
construction, fork detection (``os.register_at_fork`` on 3.7+, a pid check on 3.6) and
stopping every live reactor at interpreter exit, before daemon loop threads are torn down.
Helpers for reactor modules: :func:`connect_error` (one wording of a failed connect),
:func:`callback_runner` (run loop callbacks, logging what they raise) and :class:`LoopTimer`
(a loop timer cancellable from any thread).  Elsewhere: ``_fdstream.FdStream`` (a readiness-
driven socket), ``_osthread`` (real loop threads and events under monkey-patching).
"""

import atexit
import errno
import logging
import os
import socket
import threading
import weakref

__all__ = ["Endpoint", "Reactor", "Transport", "StreamProtocol", "TimerHandle", "Event",
           "DEFAULT_CONNECT_TIMEOUT", "connect_error", "callback_runner", "LoopTimer"]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0


class Endpoint(object):
    """Where to connect.

    Attributes:
        address: IP address (or host name) to open the TCP connection to.
        port: TCP port (9042 by default).
        server_hostname: the TLS SNI name and the name the certificate must carry; None means
            ``address``.  Cloud endpoints connect to the SNI proxy and set this to the host id.
        host_id: the node's host id (UUID text) when known, for errors and logs.
    """

    __slots__ = ("address", "port", "server_hostname", "host_id")

    def __init__(self, address, port=9042, server_hostname=None, host_id=None):
        self.address = address
        self.port = int(port)
        self.server_hostname = server_hostname
        self.host_id = host_id

    def __str__(self):
        text = "%s:%d" % (self.address, self.port)
        if self.host_id:
            text += "/" + str(self.host_id)
        return text

    def __repr__(self):
        return "Endpoint(%r, %d, server_hostname=%r, host_id=%r)" % (
            self.address, self.port, self.server_hostname, self.host_id)

    def _key(self):
        return (self.address, self.port, self.server_hostname, self.host_id)

    def __eq__(self, other):
        return isinstance(other, Endpoint) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._key())


class TimerHandle(object):
    """What ``call_later`` returns: ``cancel()`` (idempotent, from any thread)."""

    def cancel(self):
        raise NotImplementedError


class Event(object):
    """What ``make_event`` returns; ``threading.Event`` satisfies it (as do gevent's/eventlet's)."""

    def set(self):
        raise NotImplementedError

    def is_set(self):
        raise NotImplementedError

    def wait(self, timeout=None):
        """Block the calling thread (or greenlet) until set; True if set, False on timeout."""
        raise NotImplementedError


class Transport(object):
    """A TCP stream, returned by ``Reactor.open_stream``; loop thread only.

    ``write`` never blocks: it sends what the socket accepts now and buffers the rest, sending it
    as the socket becomes writable, in order.  The driver already coalesces every request queued
    during one loop turn into one ``write``, so a reactor needs no write batching of its own.
    """

    def write(self, data):
        raise NotImplementedError

    def close(self):
        """Abort a pending connect or close the socket, dropping unsent bytes is allowed.

        After ``close()`` the reactor calls no method of the protocol any more.
        """
        raise NotImplementedError


class StreamProtocol(object):
    """The driver's side of a stream; the reactor calls these on the loop thread.

    Exactly one of ``connection_made`` / ``connection_lost`` ends the connecting phase;
    ``connection_lost`` ends the stream (``exc`` None for an orderly EOF, else the OSError).
    """

    def connection_made(self, transport):
        raise NotImplementedError

    def data_received(self, data):
        raise NotImplementedError

    def connection_lost(self, exc):
        raise NotImplementedError


def callback_runner(logger, where):
    """A ``run(fn, args)`` for a reactor's loop: calls ``fn(*args)`` and logs an exception to
    ``logger`` ("callback ... raised in <where>") instead of letting it reach the loop."""
    def run_logged(fn, args):
        try:
            fn(*args)
        except Exception:
            logger.exception("callback %r raised in %s", fn, where)
    return run_logged


class LoopTimer(TimerHandle):
    """A one-shot timer on a loop whose ``cancel()`` works from any thread: the part the gevent,
    eventlet and libev timers share.  The native timer lives on the loop thread only; a cancel
    from another thread posts its release to the loop.

    A subclass implements ``_arm`` (loop thread: start the native timer, calling ``_fire`` when
    due, and keep it in ``_native``; nothing when already cancelled), ``_stop(native)``,
    ``_in_loop_thread()``, ``_post(fn)`` (run ``fn()`` on the loop, from another thread) and sets
    ``_run`` to its ``callback_runner``.
    """

    __slots__ = ("_delay", "_fn", "_args", "_native", "_cancelled")

    def __init__(self, delay, fn, args):
        self._delay = max(0.0, delay)
        self._fn = fn
        self._args = args
        self._native = None
        self._cancelled = False

    def _fire(self, *_ignored):
        self._release()
        if not self._cancelled:
            self._cancelled = True
            self._run(self._fn, self._args)

    def _release(self):
        native, self._native = self._native, None
        if native is not None:
            self._stop(native)

    def cancel(self):
        if self._cancelled:
            return
        self._cancelled = True
        if self._native is None:
            return                      # not armed yet (_arm sees the flag) or already done
        if self._in_loop_thread():
            self._release()
        else:
            self._post(self._release)


def connect_error(exc, address, port):
    """The error a reactor hands to ``connection_lost`` when its TCP connect fails, worded the
    same on every reactor: "connection refused by 10.0.0.1:9042" (asyncio's own words are
    "Connect call failed ('10.0.0.1', 9042)"), "connect to 10.0.0.1:9042 failed: No route to
    host" for other errors.

    Args:
        exc: what the connect raised or ``SO_ERROR`` said.
        address, port: where the socket connected to (a resolved address).
    Returns:
        an OSError of the same class (``ConnectionRefusedError`` stays one) with the same
        ``errno``; ``exc`` itself when it is not a connect error (a name that did not resolve,
        an OSError without errno, anything else).
    """
    code = getattr(exc, "errno", None)
    if not isinstance(exc, OSError) or isinstance(exc, socket.gaierror) or not code or code < 0:
        return exc
    where = "%s:%d" % (address, port)
    if code == errno.ECONNREFUSED:
        text = "connection refused by %s" % (where,)
    else:
        text = "connect to %s failed: %s" % (where, os.strerror(code))
    cls = type(exc) if type(exc) is not OSError else type(OSError(code, text))  # by errno
    try:
        error = cls(text)               # no strerror: str(error) is the text, no "[Errno n]"
    except Exception:                   # an OSError subclass with another constructor
        error = OSError(text)
    error.errno = code
    error.__cause__ = exc
    return error


# Every live reactor, for fork and exit handling.  Weak: a reactor nobody uses can go away.
_live_reactors = weakref.WeakSet()
_live_lock = threading.Lock()


class Reactor(object):
    """Base class of every reactor; one instance per Cluster (or shared).

    Args:
        allow_unsupported_reactors: opt-in for reactors compat_matrix.yaml gates off here
            (None, True, or names); otherwise a gated reactor raises UnsupportedReactorError.
    """

    #: the reactor's name in compat_matrix.yaml ("asyncio", "gevent", ...)
    name = None

    def __init__(self, allow_unsupported_reactors=None):
        if self.name is not None:
            from cqlreactor.reactors import matrix
            matrix.check_supported(self.name, allow_unsupported_reactors)
        self._pid = os.getpid()
        self._connections = weakref.WeakSet()
        with _live_lock:
            _live_reactors.add(self)

    # --- implemented by each reactor ---------------------------------------------------------

    def start(self):
        """Start the loop (idempotent).  Called implicitly on first use."""
        raise NotImplementedError

    def stop(self):
        """Close every connection (pending requests fail) and stop the loop; idempotent."""
        raise NotImplementedError

    def call_soon_threadsafe(self, fn, *args):
        """Run ``fn(*args)`` on the loop thread soon; callable from any thread."""
        raise NotImplementedError

    def call_later(self, delay, fn, *args):
        """Run ``fn(*args)`` on the loop thread after ``delay`` seconds; returns a TimerHandle."""
        raise NotImplementedError

    def make_event(self):
        """A new Event whose ``wait`` blocks only the caller (greenlet-aware where relevant)."""
        raise NotImplementedError

    def open_stream(self, address, port, protocol):
        """Start a non-blocking TCP connect; loop thread only; returns a Transport at once.

        Later the reactor calls ``protocol.connection_made(transport)`` or, when the connect
        fails, ``protocol.connection_lost(exc)``.  Timeouts are the driver's job.
        """
        raise NotImplementedError

    def _reinit_after_fork(self):
        """In a forked child: forget the parent's loop, threads and sockets WITHOUT touching
        them (an epoll set or a TLS session may be shared with the parent), so that the next
        use builds a fresh loop.  Keep references to the abandoned objects (see
        ``_abandon``) so their finalizers never run in the child."""
        raise NotImplementedError

    # --- provided ----------------------------------------------------------------------------

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` where it MAY block (here: a short-lived daemon thread; a greenlet
        under gevent/eventlet).  For rare work such as reconnection, never per request."""
        thread = threading.Thread(target=fn, args=args, name="cqlreactor-spawn")
        thread.daemon = True
        thread.start()
        return thread

    def connect_async(self, endpoint, callback, **options):
        """Open a ready connection without blocking; ``callback(conn_or_exception)`` runs once on
        the loop thread.  Options as for :meth:`connect`."""
        from cqlreactor.reactors.driver import start_connect
        self.check_fork()
        return start_connect(self, endpoint, callback, **options)

    def connect(self, endpoint, connect_timeout=DEFAULT_CONNECT_TIMEOUT, **options):
        """Open a connection and finish the CQL handshake; blocks the caller with the reactor's
        wait primitive (other greenlets keep running under gevent/eventlet).

        Args:
            endpoint: an :class:`Endpoint` (or an "address:port" / (address, port) shorthand).
            connect_timeout: seconds for TCP connect + TLS + CQL handshake, per attempt.
            protocol_version: None (start at v5, fall back to what the server names) or an int
                (no fallback).
            ssl_context: an ``ssl.SSLContext`` to use TLS (hostname checking as configured in
                it); ``ssl_options`` ({"check_hostname": ..., "ca_certs": ..., ...}) builds one.
            anything else goes to ``core.connection.Connection`` (authenticator, compression,
            heartbeat_interval, max_in_flight ...).

        Returns:
            a ready :class:`~cqlreactor.reactors.driver.ReactorConnection`.
        Raises:
            ConnectionException (refused, reset, timed out), TLSError, UnsupportedProtocolVersion,
            AuthenticationFailed; all name the endpoint.
        """
        from cqlreactor.reactors.driver import wait_for_connection
        return wait_for_connection(self, endpoint, connect_timeout, options)

    def check_fork(self):
        """Re-initialise after ``os.fork()`` when the fork hook could not (Python 3.6)."""
        if self._pid != os.getpid():
            _after_fork_in_child()

    def _forget_connections(self):
        """Fork helper: end the connections inherited from the parent (without touching their
        sockets); returns [(callbacks, error)] of their requests, failed once the child's loop
        runs."""
        failures = [conn._inherited_across_fork() for conn in list(self._connections)]
        self._connections = weakref.WeakSet()
        return [f for f in failures if f[0]]

    def __repr__(self):
        return "<%s at %#x>" % (type(self).__name__, id(self))


# Objects inherited from the parent process that must never be finalised in a child.
_abandoned = []


def _abandon(*objects):
    _abandoned.extend(objects)


def _after_fork_in_child():
    global _live_lock
    _live_lock = threading.Lock()
    pid = os.getpid()
    for reactor in list(_live_reactors):
        if reactor._pid == pid:
            continue
        reactor._pid = pid
        try:
            failures = reactor._forget_connections()
            reactor._reinit_after_fork()
            if failures:
                reactor.call_soon_threadsafe(_fail_inherited, failures)
        except Exception:  # a child must come up even if one reactor cannot
            log.exception("could not reinitialise %r after fork", reactor)


def _fail_inherited(failures):
    for callbacks, error in failures:
        for callback in callbacks:
            try:
                callback(error)
            except Exception:
                log.exception("callback %r raised", callback)


def _stop_all_at_exit():
    for reactor in list(_live_reactors):
        if reactor._pid != os.getpid():
            continue
        try:
            reactor.stop()
        except Exception:
            log.debug("stopping %r at exit failed", reactor, exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_all_at_exit)

