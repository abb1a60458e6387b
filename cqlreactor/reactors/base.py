"""The reactor contract: what a reactor module implements, and what it gets for free.

A reactor only moves bytes and runs timers.  Everything protocol-shaped (framing, stream ids,
handshake, heartbeats, request deadlines) lives in the sans-IO core; TLS lives in
:mod:`cqlreactor.reactors.tls`; the glue between them and a reactor is
:class:`~cqlreactor.reactors.driver.ReactorConnection`.  This module is the whole contract: a
reactor written outside cqlreactor needs nothing else (its tests can run
:mod:`cqlreactor.testing.conformance`, the suite every built-in reactor passes).

A subclass of :class:`Reactor` implements (about 150-300 lines each):

=====================  =======================================================================
loop                   ``start()`` (idempotent; implicit on first use), ``stop()`` (any
                       thread: on the loop, :meth:`Reactor.close_connections` then end the loop)
wake-up (any thread)   ``call_soon_threadsafe(fn, *args)``
time (any thread)      ``call_later(delay, fn, *args) -> TimerHandle`` (monotonic clock)
blocking waits         ``make_event() -> Event`` (greenlet-aware under gevent/eventlet)
TCP (loop thread)      ``open_stream(address, port, protocol) -> Transport``; the Transport
                       (``write``, ``close``) calls the StreamProtocol's three methods
fork                   ``reinit_after_fork()``: drop the parent's loop (handing it to
                       :meth:`Reactor.abandon`), build a fresh one lazily
=====================  =======================================================================

and may set ``name`` (its key in compat_matrix.yaml; None, the default, skips the gate).

It inherits: :meth:`Reactor.connect` / :meth:`Reactor.connect_async` (TCP + TLS + CQL
handshake with protocol-version fallback and a connect timeout; host names and cloud endpoints
are looked up before the loop sees them: in the caller of ``connect``, in ``spawn`` for
``connect_async``), :meth:`Reactor.spawn` (a daemon thread; green reactors override it),
:meth:`Reactor.getaddrinfo` (the lookup those use; green reactors use their hub's resolver), the compat-matrix gate on construction,
:meth:`Reactor.track_connection` / :meth:`Reactor.close_connections` (the driver registers every
connection; ``stop`` closes them with one call), fork handling (``os.register_at_fork`` on 3.7+,
:meth:`Reactor.check_fork` where :data:`PID_CHECK_NEEDED`; :meth:`Reactor.after_fork_in_child`
forgets the inherited connections and calls ``reinit_after_fork``) and stopping every live
reactor at interpreter exit, before daemon loop threads are torn down.

Threading rules:

- The driver calls ``open_stream`` and every ``Transport`` method on the loop thread only; the
  reactor calls every ``StreamProtocol`` method on the loop thread only.
- ``call_soon_threadsafe``, ``call_later`` and ``make_event`` work from any thread (and from the
  loop thread).  Callbacks run on the loop thread, in order; an exception in a callback is
  logged, never kills the loop.
- A reactor starts itself on first use (``call_soon_threadsafe`` on a reactor that was never
  started starts it), so users never have to call ``start()``.
- ``stop()`` is final for the work of the stopped loop: callbacks and timers queued before it
  (or by the close listeners it runs) never run and never start a new loop.  After ``stop()``,
  ``call_soon_threadsafe`` and ``call_later`` raise :class:`ReactorStopped` (a
  ``ConnectionShutdown``) instead of restarting; an explicit ``start()``, ``connect()`` or
  ``connect_async()`` starts a fresh loop (a reactor is reusable).  Reactors implement this by
  calling :meth:`Reactor.first_use` (not ``start()``) on their first-use paths and setting
  ``self.stopped = True`` in ``stop()`` (``start()`` clears it).  A stopped reactor holds no
  loop thread, no polling fd and no socket.

Helpers for reactor modules: :func:`connect_error` (one wording of a failed connect),
:func:`callback_runner` (run loop callbacks, logging what they raise) and :class:`LoopTimer`
(a loop timer cancellable from any thread).  Inside cqlreactor also: ``_fdstream.FdStream`` (a
readiness-driven socket), ``_osthread`` (real loop threads and events under monkey-patching).
"""

import atexit
import errno
import logging
import os
import socket
import threading
import weakref

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import ConnectionShutdown
from cqlreactor.reactors._osthread import (real_thread_local, start_loop_thread,
                                          unpatched_getaddrinfo)

__all__ = ["Endpoint", "Reactor", "ReactorStopped", "Transport", "StreamProtocol", "TimerHandle",
           "Event",
           "DEFAULT_CONNECT_TIMEOUT", "PID_CHECK_NEEDED", "connect_error", "callback_runner",
           "LoopTimer"]

#: set in the OS threads :meth:`Reactor.spawn` starts (they resolve names with the OS)
_spawned = real_thread_local()


log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0

#: True where ``os.register_at_fork`` is missing (Python 3.6): there a reactor notices a fork
#: only by calling :meth:`Reactor.check_fork` on use (its ``start`` and first-use paths)
PID_CHECK_NEEDED = not hasattr(os, "register_at_fork")


class ReactorStopped(ConnectionShutdown):
    """``call_soon_threadsafe`` / ``call_later`` on a reactor after its ``stop()``: the work
    would never run (and must not start a new loop behind the user's back).  ``start()`` or a
    new ``connect()`` starts the reactor again."""


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

    def setsockopt(self, level, option, value):
        """``socket.setsockopt`` on the connected socket (cassandra-driver's ``sockopts``);
        optional: a reactor without a socket raises NotImplementedError."""
        raise NotImplementedError("%s has no socket options" % (type(self).__name__,))

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

    #: the reactor's name in compat_matrix.yaml ("asyncio", "gevent", ...); None for a reactor
    #: the matrix does not know (out of tree): no gate applies
    name = None

    def __init__(self, allow_unsupported_reactors=None):
        if self.name is not None:
            from cqlreactor.reactors import matrix
            matrix.check_supported(self.name, allow_unsupported_reactors)
        self._pid = os.getpid()
        self._connections = weakref.WeakSet()
        #: set by ``stop()``, cleared by ``start()``: see :meth:`first_use`
        self.stopped = False
        with _live_lock:
            _live_reactors.add(self)

    # --- implemented by each reactor ---------------------------------------------------------

    def start(self):
        """Start the loop (idempotent) and clear :attr:`stopped`.  Called implicitly on first
        use (through :meth:`first_use`).  Where :data:`PID_CHECK_NEEDED` is true, call
        :meth:`check_fork` first."""
        raise NotImplementedError

    def stop(self):
        """Close every connection (pending requests fail) and stop the loop; idempotent, any
        thread.  Set :attr:`stopped` first; on the loop thread call :meth:`close_connections`,
        then end the loop, dropping what is still queued on it; from another thread post that to
        the loop and wait (boundedly) for it.  Release the loop thread, polling fds and
        sockets."""
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

        ``address`` is an IP address: the driver looks host names up before (with
        :meth:`getaddrinfo`, where blocking is allowed), never in a loop callback.

        Later the reactor calls ``protocol.connection_made(transport)`` or, when the connect
        fails, ``protocol.connection_lost(exc)`` (an OSError from :func:`connect_error`).  A
        lookup or connect error found at once may be raised instead.  Timeouts are the
        driver's job.
        """
        raise NotImplementedError

    def reinit_after_fork(self):
        """In a forked child: forget the parent's loop, threads and sockets WITHOUT touching
        them (an epoll set or a TLS session may be shared with the parent), so that the next
        use builds a fresh loop.  Pass the abandoned objects to :meth:`abandon` so their
        finalizers never run in the child.  The connections are already forgotten."""
        raise NotImplementedError

    # --- provided ----------------------------------------------------------------------------

    def first_use(self):
        """The start-on-first-use path of ``call_soon_threadsafe`` / ``call_later`` on a reactor
        whose loop is not running: start it if it was never started; after :meth:`stop` raise
        :class:`ReactorStopped` (only ``start()`` and a new connect restart a stopped one)."""
        if self.stopped:
            raise ReactorStopped("%r was stopped: start() or a new connect starts it again"
                                 % (self,))
        self.start()

    def spawn(self, fn, *args):
        """Run ``fn(*args)`` where it MAY block (here: a short-lived daemon OS thread, a real one
        even under gevent/eventlet monkey-patching; the green reactors override this with a
        greenlet of their hub).  For rare work such as reconnection, never per request.

        Why a real thread when patched: this is called from the loop thread (pools reconnect
        from loop callbacks), which is a real OS thread with no running hub.  A patched
        ``threading.Thread`` started there makes a hub for that thread that nothing runs and
        that outlives it; Python 3.6 with eventlet was seen to crash at exit finalizing it."""
        return start_loop_thread(self._run_spawned, (fn, args), name="cqlreactor-spawn")

    def _run_spawned(self, fn, args):
        _spawned.inside = True      # a real thread-local: only this OS thread
        fn(*args)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """``socket.getaddrinfo`` as this reactor's callers may run it: the driver calls it
        only where blocking is allowed (the thread or greenlet calling :meth:`connect`, or
        :meth:`spawn`), never in a loop callback.  Here: in a :meth:`spawn` thread the OS
        resolver itself (that thread is real and may block; a patched resolver would need a
        hub there), elsewhere ``socket.getaddrinfo`` as it is now (green after patching);
        green reactors use their hub's resolver."""
        if getattr(_spawned, "inside", False):
            return unpatched_getaddrinfo()(host, port, family, type, proto, flags)
        return socket.getaddrinfo(host, port, family, type, proto, flags)

    def connect_async(self, endpoint, callback, **options):
        """Open a ready connection without blocking; ``callback(conn_or_exception)`` runs once on
        the loop thread.  Options as for :meth:`connect`."""
        from cqlreactor.reactors.driver import start_connect
        self.check_fork()
        self.start()                    # a new connect restarts a stopped reactor
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
                it); ``ssl_options`` ({"check_hostname": ..., "ca_certs": ..., ...}, see
                :func:`cqlreactor.reactors.tls.context_from_options`) builds one.
            check_hostname_as: the name the server certificate must carry when it is not the
                SNI name (``endpoint.server_hostname``); default: the context's own
                (:func:`cqlreactor.reactors.tls.identity_of`, set on cloud contexts).
            anything else goes to ``core.connection.Connection`` (authenticator, compression,
            heartbeat_interval, max_in_flight ...).

        Returns:
            a ready :class:`~cqlreactor.reactors.driver.ReactorConnection`.
        Raises:
            ConnectionException (refused, reset, timed out), TLSError, UnsupportedProtocolVersion,
            AuthenticationFailed; all name the endpoint.
        """
        from cqlreactor.reactors.driver import wait_for_connection
        self.start()                    # a new connect restarts a stopped reactor
        return wait_for_connection(self, endpoint, connect_timeout, options)

    def track_connection(self, conn):
        """Remember ``conn`` (weakly) as driven by this reactor, for :meth:`close_connections`
        and fork handling.  The driver calls it for every connection it opens."""
        self._connections.add(conn)

    def close_connections(self):
        """Loop thread: close every connection of this reactor now (their pending requests fail
        with ConnectionShutdown, their close listeners run).  The first half of every
        :meth:`stop`; one connection failing to close does not keep the others open."""
        for conn in list(self._connections):
            try:
                conn.close_in_loop()
            except Exception:
                log.exception("closing %r failed", conn)

    @staticmethod
    def abandon(*objects):
        """Fork helper for :meth:`reinit_after_fork`: keep ``objects`` (the parent's loop,
        watchers, sockets, threads) alive for the life of the child, so that no finalizer ever
        closes or unregisters something the parent still uses."""
        _abandoned.extend(objects)

    def check_fork(self):
        """Re-initialise after ``os.fork()`` when the fork hook could not (Python 3.6)."""
        if self._pid != os.getpid():
            _after_fork_in_child()

    def after_fork_in_child(self):
        """What the fork hook runs for each reactor in the child: forget the inherited
        connections (their requests fail once the child's loop runs), then
        :meth:`reinit_after_fork`."""
        self._pid = os.getpid()
        failures = [conn.forget_after_fork() for conn in list(self._connections)]
        self._connections = weakref.WeakSet()
        failures = [f for f in failures if f[0]]
        self.reinit_after_fork()
        if failures:
            self.call_soon_threadsafe(_fail_inherited, failures)

    def __repr__(self):
        return "<%s at %#x>" % (type(self).__name__, id(self))


# Objects inherited from the parent process that must never be finalised in a child.
_abandoned = []


def _after_fork_in_child():
    global _live_lock
    _live_lock = threading.Lock()
    pid = os.getpid()
    for reactor in list(_live_reactors):
        if reactor._pid == pid:
            continue
        try:
            reactor.after_fork_in_child()
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

