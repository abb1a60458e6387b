"""asyncio reactor: on the caller's running loop, or the stdlib loop (uvloop when installed) in
a loop thread.

Two modes, chosen when the reactor starts:

- **on the running loop** (started from a coroutine, e.g. ``await cluster.connect_async()``):
  the connections run on the application's own loop.  No loop thread, no thread hop: requests
  sent from the loop are flushed with ``loop.call_soon`` and answers settle the awaiting
  futures directly.  A blocking call made on that loop's thread (``session.execute``,
  ``future.result()``) raises :class:`~cqlreactor.core.errors.BlockingCallInEventLoop` at
  once instead of deadlocking; other threads may still block on it as usual.
- **own loop thread** (started from plain code, or ``use_running_loop=False``): the loop
  belongs to the reactor; blocking calls work from any thread and asyncio code awaits results
  on its own loop through :func:`future_callback` / ``await response_future``.

(The module is not called ``asyncio.py`` so that it cannot shadow the standard library.)
"""

import asyncio
import logging
import selectors
import socket
import sys
import threading

from cqlreactor.core.errors import BlockingCallInEventLoop
from cqlreactor.reactors._osthread import (green_patched_thread, make_loop_event, make_wait_event,
                                           real_allocate_lock, real_get_ident, start_loop_thread,
                                           unpatched_select)
from cqlreactor.reactors.base import PID_CHECK_NEEDED, Reactor, Transport, connect_error

try:
    import uvloop
except ImportError:  # optional
    uvloop = None

__all__ = ["AsyncioReactor", "future_callback", "connect_awaitable", "running_loop_here"]

log = logging.getLogger(__name__)

_CancelledError = asyncio.CancelledError
if sys.version_info >= (3, 7):
    _get_running_loop = asyncio._get_running_loop       # C, cheap: asked per request
else:  # pragma: no cover - 3.6 has it in asyncio.events only
    _get_running_loop = asyncio.events._get_running_loop


def running_loop_here():
    """The asyncio loop running in the calling thread, or None (never creates one)."""
    return _get_running_loop()

BLOCKING_ADVICE = ("use the awaitables instead (await session.execute_async(...), "
                   "await session.prepare_async(...), await cluster.connect_async(), "
                   "await result.fetch_next_page_async(); README section 'asyncio')")


def _unpatched_selector():
    """A selector on the real ``select(2)`` when gevent/eventlet patched ``select``, else None
    (asyncio's default).  The loop runs in a real OS thread, where a green selector would start
    a second hub instead of waiting on the sockets.

    The selectors classes look ``select.poll``/``epoll`` up in the (patched) module, so the one
    portable choice is ``SelectSelector`` calling the original function (fine for a client's
    few sockets).
    """
    real_select = unpatched_select("select")
    if real_select is None:
        return None
    selector = selectors.SelectSelector()
    selector._select = real_select      # an instance attribute: called unbound, as on POSIX
    return selector


class _Timer(object):
    """call_later from a foreign thread: scheduled through call_soon_threadsafe."""

    __slots__ = ("_cancelled", "_fn", "_args", "_loop")

    def __init__(self, fn, args, loop):
        self._cancelled = False
        self._fn = fn
        self._args = args
        self._loop = loop

    def cancel(self):
        self._cancelled = True

    def _schedule(self, delay):
        if not self._cancelled:         # runs on the loop thread
            self._loop.call_later(delay, self._fire)

    def _fire(self):
        if not self._cancelled:
            self._fn(*self._args)


class _AsyncioStream(asyncio.Protocol, Transport):
    """One TCP stream: asyncio's protocol on one side, our Transport on the other."""

    def __init__(self, protocol, streams):
        self._protocol = protocol
        self._transport = None
        self._task = None
        self._closed = False
        self._streams = streams         # the reactor's open streams; loop thread only
        streams.add(self)

    async def _connect(self, loop, address, port):
        try:
            await loop.create_connection(lambda: self, address, port)
        except _CancelledError:
            self._streams.discard(self)
            return
        except Exception as exc:
            self._streams.discard(self)
            if not self._closed:
                self._closed = True
                self._protocol.connection_lost(connect_error(exc, address, port))

    # asyncio.Protocol ----------------------------------------------------------------------------
    def connection_made(self, transport):
        self._transport = transport
        if self._closed:
            transport.abort()
            return
        self._protocol.connection_made(self)

    def data_received(self, data):
        if not self._closed:
            self._protocol.data_received(data)

    def eof_received(self):
        return False                    # let asyncio close; connection_lost(None) follows

    def connection_lost(self, exc):
        self._streams.discard(self)
        if not self._closed:
            self._closed = True
            self._protocol.connection_lost(exc)

    # Transport -----------------------------------------------------------------------------------
    def setsockopt(self, level, option, value):
        self._transport.get_extra_info("socket").setsockopt(level, option, value)

    def write(self, data):
        if not self._closed:
            self._transport.write(data)

    def close(self):
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.close()     # flushes what is buffered (e.g. close_notify) first
        elif self._task is not None:
            self._task.cancel()

    def abort(self):
        """Reactor stop: drop the socket now, unsent bytes included."""
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        elif self._task is not None:
            self._task.cancel()


class _GuardedEvent(object):
    """The wait primitive of a reactor running on an application's loop: a threading event
    whose ``wait`` refuses to block that loop's own thread (the answer could never arrive)."""

    __slots__ = ("_event", "_loop_ident", "_get_ident")

    def __init__(self, loop_ident, get_ident):
        self._event = threading.Event()
        self._loop_ident = loop_ident
        self._get_ident = get_ident

    def set(self):
        self._event.set()

    def is_set(self):
        return self._event.is_set()

    def wait(self, timeout=None):
        event = self._event
        if not event.is_set() and self._get_ident() == self._loop_ident:
            raise BlockingCallInEventLoop(
                "a blocking cqlreactor call was made on the thread of the running asyncio loop "
                "that drives its connections (AsyncioReactor on the application's loop): it "
                "would deadlock; " + BLOCKING_ADVICE)
        return event.wait(timeout)


class AsyncioReactor(Reactor):
    """asyncio: the caller's running loop, or a loop of its own in a daemon loop thread.

    Args:
        use_uvloop: for the reactor's own loop thread: None (use uvloop when it imports), True
            (require it) or False.  On the application's loop the application chose the loop
            (``uvloop.install()`` / ``uvloop.run``): ``use_uvloop=True`` there requires that
            loop to be uvloop's.
        use_running_loop: True (default): a reactor started inside a running asyncio loop runs
            its connections on that loop; False: always on its own loop thread.
        allow_unsupported_reactors: see :class:`~cqlreactor.reactors.base.Reactor`.
    """

    name = "asyncio"

    def __init__(self, use_uvloop=None, allow_unsupported_reactors=None, use_running_loop=True):
        super(AsyncioReactor, self).__init__(allow_unsupported_reactors)
        if use_uvloop and uvloop is None:
            raise ValueError("use_uvloop=True but uvloop is not installed (pip install uvloop)")
        self._uvloop_required = bool(use_uvloop)
        self.use_uvloop = uvloop is not None if use_uvloop is None else bool(use_uvloop)
        self.use_running_loop = bool(use_running_loop)
        #: True while the connections run on an application's loop (no thread of our own)
        self.on_running_loop = False
        self._lock = real_allocate_lock()
        self._loop = None
        self._thread = None
        self._thread_ident = None
        self._get_ident = threading.get_ident     # the real one once start() ran
        self._retiring = None           # the loop stop() is ending, until its thread is gone
        self._streams = set()           # open _AsyncioStreams, aborted at stop

    @property
    def loop_name(self):
        """"asyncio+uvloop" or "asyncio"."""
        loop = self._loop
        if loop is not None and self.on_running_loop:
            return "asyncio+uvloop" if _is_uvloop(loop) else "asyncio"
        return "asyncio+uvloop" if self.use_uvloop else "asyncio"

    @property
    def loop(self):
        """The asyncio loop the connections run on (None before start / after stop)."""
        return self._loop

    def callbacks_run_on(self, loop):
        """True when this reactor's callbacks run on ``loop``'s thread, in ``loop`` (then an
        asyncio future of ``loop`` may be settled directly from them)."""
        return loop is self._loop and self.on_running_loop

    def blocking_would_deadlock(self):
        """True when a blocking wait in the calling thread could never end: the calling thread
        runs the asyncio loop that drives (or, started now, would drive) the connections."""
        loop = _get_running_loop()
        if loop is None:
            return False
        if self._loop is None:
            return self.use_running_loop
        return self.on_running_loop and loop is self._loop

    # --- loop ----------------------------------------------------------------------------------

    def start(self):
        if PID_CHECK_NEEDED:
            self.check_fork()
        with self._lock:
            self.stopped = False
            if self._loop is not None:
                return
            running = _get_running_loop() if self.use_running_loop else None
            if running is not None:
                self._attach(running)
                return
            loop = self._new_loop()
            started = make_loop_event()
            # A real OS thread even under gevent/eventlet patching: a patched "thread" would be a
            # greenlet, and run_forever (uvloop's, or a loop on the unpatched selector) would
            # block every greenlet of its thread for good.
            self._get_ident = real_get_ident()
            thread = start_loop_thread(self._run, (loop, started), "cqlreactor-%s" % self.loop_name)
            started.wait()
            self._thread = thread
            self._loop = loop

    def _attach(self, loop):
        """Run on the application's running ``loop`` from now on (we are on its thread)."""
        if self._uvloop_required and not _is_uvloop(loop):
            raise ValueError("use_uvloop=True, but the running loop is %r; install uvloop's "
                             "loop (uvloop.install() or uvloop.run) or pass "
                             "use_running_loop=False" % (loop,))
        self._get_ident = real_get_ident()
        self._thread_ident = self._get_ident()
        self._thread = None
        self.on_running_loop = True
        self._loop = loop

    def _new_loop(self):
        if self.use_uvloop:
            return uvloop.new_event_loop()
        selector = _unpatched_selector() if green_patched_thread() is not None else None
        if selector is None:
            return asyncio.new_event_loop()
        return asyncio.SelectorEventLoop(selector)

    def _run(self, loop, started):
        asyncio.set_event_loop(loop)
        self._thread_ident = self._get_ident()
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.close()            # drops what is still queued: that work was stopped
            except Exception:
                log.debug("closing the asyncio loop failed", exc_info=True)
            if self._retiring is loop:
                self._retiring = None

    def stop(self):
        with self._lock:
            self.stopped = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            attached, self.on_running_loop = self.on_running_loop, False
            if loop is not None and not attached:
                self._retiring = loop
        if loop is None:
            return
        if attached:
            self._detach(loop)
            return
        if self._get_ident() == self._thread_ident:
            self._shutdown(loop)
            return
        try:
            loop.call_soon_threadsafe(self._shutdown, loop)
        except RuntimeError:            # the loop is already closed
            return
        thread.join(5.0)

    def _detach(self, loop):
        """stop() of a reactor on an application's loop: close everything on that loop, and
        leave the loop itself alone (it is the application's)."""
        if loop.is_closed():
            # (asyncio.run() returned before the cluster was shut down) nothing runs any more;
            # the sockets close with their transports when collected
            self._streams = set()
            return
        if self._get_ident() == self._thread_ident or not loop.is_running():
            self._close_everything()    # on the loop, or nothing runs it: no race either way
            return
        done = make_loop_event()

        def close():
            try:
                self._close_everything()
            finally:
                done.set()
        try:
            loop.call_soon_threadsafe(close)
        except RuntimeError:            # closed meanwhile: its sockets went with it
            return
        done.wait(5.0)

    def _close_everything(self):
        self.close_connections()
        for stream in list(self._streams):
            stream.abort()

    def _shutdown(self, loop):
        self.close_connections()
        # A transport still flushing (a peer that stopped reading) would keep its socket open
        # past the loop's end: abort what close() left open.
        for stream in list(self._streams):
            stream.abort()
        loop.call_soon(loop.stop)       # after the transports' own close callbacks

    # --- wake-up, time, waits -------------------------------------------------------------------

    def call_soon_threadsafe(self, fn, *args):
        loop = self._loop
        if loop is not None and self._get_ident() == self._thread_ident:
            # On the loop's own thread (every request sent from a coroutine on the application's
            # loop, every callback): a plain call_soon, no self-pipe write.
            if loop.is_closed():
                self._loop_closed(loop)
            loop.call_soon(fn, *args)
            return
        if loop is None or PID_CHECK_NEEDED:
            retiring = self._retiring
            if retiring is not None and self._get_ident() == self._thread_ident:
                return                  # from the stopping loop itself: dropped with it
            self.first_use()
            loop = self._loop
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:            # stop() closed that loop under us
            if self.on_running_loop:
                self._loop_closed(loop)
            self.first_use()
            self._loop.call_soon_threadsafe(fn, *args)

    def _loop_closed(self, loop):
        from cqlreactor.reactors.base import ReactorStopped
        raise ReactorStopped("the asyncio loop %r this reactor's connections ran on is closed "
                             "(e.g. asyncio.run() returned); shut the cluster down inside the "
                             "loop, and make a new Cluster for a new loop" % (loop,))

    def call_later(self, delay, fn, *args):
        loop = self._loop
        if loop is not None and self._get_ident() == self._thread_ident:
            return loop.call_later(delay, fn, *args)
        if loop is None:
            self.first_use()
            loop = self._loop
        timer = _Timer(fn, args, loop)
        self.call_soon_threadsafe(timer._schedule, delay)
        return timer

    def make_event(self):
        if self.on_running_loop:
            return _GuardedEvent(self._thread_ident, self._get_ident)
        return make_wait_event("asyncio")

    def connect_async(self, endpoint, callback, **options):
        """As :meth:`Reactor.connect_async`; on the application's loop a name lookup (a host
        name, a cloud endpoint) runs as a task on that loop instead of in a spawned thread."""
        from cqlreactor.reactors.driver import as_endpoint, needs_lookup, start_connect
        endpoint = as_endpoint(endpoint)
        if options.get("target") is not None or not needs_lookup(endpoint):
            return super(AsyncioReactor, self).connect_async(endpoint, callback, **options)
        self.check_fork()
        self.start()
        if not self.on_running_loop or self._get_ident() != self._thread_ident:
            return super(AsyncioReactor, self).connect_async(endpoint, callback, **options)
        self._loop.create_task(self._lookup_then_connect(endpoint, callback, options,
                                                         start_connect))
        return None

    async def _lookup_then_connect(self, endpoint, callback, options, start_connect):
        from cqlreactor.core.errors import ConnectionException
        from cqlreactor.reactors.base import DEFAULT_CONNECT_TIMEOUT
        from cqlreactor.reactors.driver import lookup
        timeout = options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        try:
            infos = await asyncio.wait_for(self._getaddrinfo(endpoint.address, endpoint.port),
                                           timeout)
            # endpoint.resolve() / lookup() are synchronous: they get the answer found here
            target = lookup(_Resolved(infos), endpoint)
        except asyncio.TimeoutError:
            callback(ConnectionException("timed out after %gs in the name lookup" % (timeout,),
                                         host=str(endpoint)))
            return
        except Exception as exc:
            callback(exc)
            return
        try:
            start_connect(self, endpoint, callback, target=target, **options)
        except Exception as exc:
            callback(exc)

    async def _getaddrinfo(self, host, port):
        try:                            # an address literal: answered at once, no thread
            return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0,
                                      socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass
        try:
            return await self._loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return _Unresolved(exc)

    @classmethod
    def refuse_blocking(cls, reactor, call, instead):
        """Raise BlockingCallInEventLoop when ``call`` (a blocking call, named for the message)
        would deadlock here; ``reactor`` None: one of this class about to start here."""
        if reactor is not None:
            would = reactor.blocking_would_deadlock()
        else:
            would = running_loop_here() is not None
        if would:
            raise BlockingCallInEventLoop(
                "%s blocks, and the calling thread runs the asyncio loop the AsyncioReactor "
                "drives its connections on: it would deadlock; use %s (README section "
                "'asyncio')" % (call, instead))

    def connect(self, endpoint, *args, **kwargs):
        if self.blocking_would_deadlock():
            raise BlockingCallInEventLoop(
                "Reactor.connect() blocks, and the calling thread runs the asyncio loop the "
                "reactor drives its connections on: it would deadlock; use "
                "await connect_awaitable(reactor, endpoint) or " + BLOCKING_ADVICE)
        return super(AsyncioReactor, self).connect(endpoint, *args, **kwargs)

    # --- TCP -----------------------------------------------------------------------------------

    def open_stream(self, address, port, protocol):
        loop = self._loop
        stream = _AsyncioStream(protocol, self._streams)
        stream._task = loop.create_task(stream._connect(loop, address, port))
        return stream

    # --- fork ----------------------------------------------------------------------------------

    def reinit_after_fork(self):
        # The parent's loop shares its epoll set with the parent: never close or use it here.
        self.abandon(self._loop, self._thread)
        self._lock = real_allocate_lock()
        self.on_running_loop = False
        self._loop = self._thread = self._thread_ident = self._retiring = None
        self._streams = set()


class _Resolved(object):
    """Hands an answer looked up on the loop to the synchronous lookup code."""

    def __init__(self, infos):
        self._infos = infos

    def getaddrinfo(self, *args, **kwargs):
        if isinstance(self._infos, _Unresolved):
            raise self._infos.error
        return self._infos


class _Unresolved(object):
    def __init__(self, error):
        self.error = error


def _is_uvloop(loop):
    return uvloop is not None and isinstance(loop, uvloop.Loop)


# --- awaitable results for asyncio applications ---------------------------------------------------

def _running_loop():
    if sys.version_info >= (3, 7):
        return asyncio.get_running_loop()   # RuntimeError outside a coroutine: say so early
    loop = asyncio._get_running_loop()
    return loop if loop is not None else asyncio.get_event_loop()


def _settle(future, result):
    if future.done():                       # cancelled by the awaiting task
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def future_callback(loop=None):
    """A (future, callback) pair bridging a reactor callback to an asyncio future.

    Pass ``callback`` to anything that reports through a callback (``ReactorConnection.send``,
    ``Reactor.connect_async``, the session's callbacks); await ``future`` on ``loop`` (default:
    the caller's running loop).  An exception given to the callback is raised by the await.
    Works with every reactor, not only AsyncioReactor.
    """
    loop = loop or _running_loop()
    future = loop.create_future()

    def callback(result):
        try:
            loop.call_soon_threadsafe(_settle, future, result)
        except RuntimeError:                # the application's loop is closed: nobody awaits
            pass

    return future, callback


def connect_awaitable(reactor, endpoint, **options):
    """``await connect_awaitable(reactor, endpoint, ...)``: Reactor.connect without blocking
    the caller's loop."""
    future, callback = future_callback()
    reactor.connect_async(endpoint, callback, **options)
    return future
