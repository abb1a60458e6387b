"""eventlet reactor: runs in the eventlet hub of the thread that uses it -- no loop thread.

Sockets are watched with hub listeners (``hub.add(READ/WRITE, fd, ...)``), timers are the hub's
global timers, and callbacks queued from other OS threads wake the hub through a socketpair the
hub listens on.  Blocking calls wait on an ``eventlet.event.Event``, so a blocked greenthread lets
the others run (``eventlet.wsgi`` can share one connection between many greenthreads).  Works
with and without ``eventlet.monkey_patch()``: sockets are the C-level ``_socket`` ones and
thread identity and locks come from the unpatched ``_thread``.

TLS stays in cqlreactor's MemoryBIO layer; nothing here asks eventlet for ssl, so eventlet's
green-ssl problems (issue 526 on 3.7+, the SSLContext RecursionError of issues 371/618) are not
on this path.  compat_matrix.yaml gates this reactor off on Python 3.7+ (eventlet issue 526)
unless the user opts in with CQLREACTOR_ALLOW_UNSUPPORTED=eventlet.
"""

import collections
import logging
import weakref

import eventlet
import eventlet.event
import eventlet.hubs
from eventlet import patcher

from cqlreactor.reactors._fdstream import FdStream
from cqlreactor.reactors._osthread import HybridEvent
from cqlreactor.reactors.base import PID_CHECK_NEEDED, LoopTimer, Reactor, callback_runner

import _socket

__all__ = ["EventletReactor"]

log = logging.getLogger(__name__)

_thread = patcher.original("_thread")
_get_ident = _thread.get_ident
_allocate_lock = _thread.allocate_lock
_CROSS_THREAD_STOP_WAIT = 2.0


_run_logged = callback_runner(log, "the eventlet hub")


def _green_socket():
    from eventlet.green import socket as green_socket  # imported on use: it loads greendns
    return green_socket


class _HubState(object):
    """The hub the reactor runs in, plus the wake-up socketpair and the callback queue."""

    def __init__(self):
        self.hub = eventlet.hubs.get_hub()
        self.ident = _get_ident()
        self.callbacks = collections.deque()
        self.drain_scheduled = False
        self.streams = set()
        self.timers = weakref.WeakSet()
        self._reader, self._writer = _socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self.wake_pending = False
        self._listener = self.hub.add(self.hub.READ, self._reader.fileno(), self._on_wake,
                                      self._on_wake_closed, _noop)
        self.closed = False

    def in_thread(self):
        return _get_ident() == self.ident

    def enqueue(self, fn, args):
        if self.closed:
            return
        self.callbacks.append((fn, args))
        if _get_ident() == self.ident:
            if not self.drain_scheduled:
                self.drain_scheduled = True
                self.hub.schedule_call_global(0, self.drain)
        elif not self.wake_pending:
            self.wake_pending = True
            try:
                self._writer.send(b"x")
            except (BlockingIOError, InterruptedError):
                pass                    # full: the hub is being woken anyway
            except OSError:
                pass                    # closed by stop()

    def _on_wake(self, _fileno):
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        self.wake_pending = False       # after draining: a racing wake writes a new byte
        self.drain()

    def _on_wake_closed(self, *_args):
        pass

    def drain(self):
        self.drain_scheduled = False
        callbacks = self.callbacks
        if self.closed:                 # stopped: what was queued for this run never runs
            callbacks.clear()
            return
        for _ in range(len(callbacks)):
            if self.closed:             # a callback stopped the reactor
                callbacks.clear()
                return
            fn, args = callbacks.popleft()
            _run_logged(fn, args)

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.hub.remove(self._listener)
        except Exception:
            log.debug("removing the wake-up listener failed", exc_info=True)
        for sock in (self._reader, self._writer):
            try:
                sock.close()
            except OSError:
                pass


def _noop(*_args):
    pass


class _Timer(LoopTimer):
    """A hub timer; ``cancel`` works from any thread."""

    __slots__ = ("_state",)
    _run = staticmethod(_run_logged)

    def __init__(self, state, delay, fn, args):
        LoopTimer.__init__(self, delay, fn, args)
        self._state = state
        state.timers.add(self)

    def _arm(self):
        if not self._cancelled and not self._state.closed:
            self._native = self._state.hub.schedule_call_global(self._delay, self._fire)

    def _stop(self, timer):
        timer.cancel()                  # a no-op once it fired

    def _in_loop_thread(self):
        return self._state.in_thread()

    def _post(self, fn):
        if not self._state.closed:
            self._state.enqueue(fn, ())


class _HybridEvent(HybridEvent):
    """See :class:`~cqlreactor.reactors._osthread.HybridEvent`."""

    __slots__ = ("_state", "_green")

    def __init__(self, state):
        HybridEvent.__init__(self, _allocate_lock)
        self._state = state
        self._green = eventlet.event.Event()

    def _in_hub_thread(self):
        return self._state.in_thread()

    def _green_set(self):
        if not self._green.ready():
            self._green.send(True)

    def _green_wait(self, timeout):
        self._green.wait(timeout)

    def _post(self, fn):
        self._state.enqueue(fn, ())


class _EventletStream(FdStream):
    def __init__(self, state, protocol):
        FdStream.__init__(self, protocol)
        self._state = state
        self._rl = self._wl = None

    def _created(self):
        self._state.streams.add(self)

    def _watch_read(self, on):
        hub = self._state.hub
        if on:
            self._rl = hub.add(hub.READ, self.sock.fileno(), self.on_readable, self._obsoleted,
                               _noop)
        else:
            listener, self._rl = self._rl, None
            if listener is not None:
                hub.remove(listener)

    def _watch_write(self, on):
        hub = self._state.hub
        if on:
            self._wl = hub.add(hub.WRITE, self.sock.fileno(), self.on_writable, self._obsoleted,
                               _noop)
        else:
            listener, self._wl = self._wl, None
            if listener is not None:
                hub.remove(listener)

    def _obsoleted(self, exc=None):
        # eventlet saw our fd number reused by someone else: the socket is gone under us
        self._rl = self._wl = None
        self._lost(exc if isinstance(exc, OSError) else None)

    def _release_watchers(self):
        hub = self._state.hub
        for listener in (self._rl, self._wl):
            if listener is not None:
                hub.remove(listener)
        self._rl = self._wl = None
        self._state.streams.discard(self)

    def _defer(self, fn, *args):
        self._state.enqueue(fn, args)


class EventletReactor(Reactor):
    """The eventlet hub of the thread that first uses the reactor (usually the main thread).

    ``make_event`` returns an event whose ``wait`` yields to the hub in that thread and blocks
    only the caller in any other OS thread.  ``spawn`` is ``eventlet.spawn``.
    """

    name = "eventlet"

    def __init__(self, allow_unsupported_reactors=None):
        super(EventletReactor, self).__init__(allow_unsupported_reactors)
        self._state = None
        self._retiring = None           # the hub state stop() is ending

    @property
    def hub_thread_ident(self):
        """The OS thread whose hub runs the connections (None before start): cqlreactor.aio
        refuses to await there from an asyncio loop that would keep that hub from running."""
        state = self._state
        return state.ident if state is not None else None

    # --- loop ----------------------------------------------------------------------------------

    def start(self):
        """Bind to the calling thread's hub (idempotent)."""
        if PID_CHECK_NEEDED:
            self.check_fork()
        self.stopped = False
        if self._state is None:
            self._state = _HubState()

    def _ensure(self):
        if PID_CHECK_NEEDED:
            self.check_fork()
        state = self._state
        if state is None:
            retiring = self._retiring
            if retiring is not None and retiring.in_thread():
                return retiring         # from the stopping hub run itself: dropped with it
            self.first_use()
            state = self._state
        return state

    def stop(self):
        self.stopped = True
        state = self._state
        if state is None:
            return
        if state.in_thread():
            self._shutdown(state)
            return
        done = _allocate_lock()
        done.acquire()
        state.enqueue(self._shutdown, (state, done))
        # The hub runs only while its thread waits in eventlet; do not hang if it never does.
        done.acquire(True, _CROSS_THREAD_STOP_WAIT)

    def _shutdown(self, state, done=None):
        try:
            if self._state is state:
                self._state = None
            self._retiring = state
            self.close_connections()
            for stream in list(state.streams):
                stream.close()
            for timer in list(state.timers):
                timer.cancel()          # hub timers of this run never fire
            state.close()               # and its queued callbacks never run
            self._retiring = None
        finally:
            if done is not None:
                done.release()

    # --- wake-up, time, waits -------------------------------------------------------------------

    def call_soon_threadsafe(self, fn, *args):
        self._ensure().enqueue(fn, args)

    def call_later(self, delay, fn, *args):
        state = self._ensure()
        timer = _Timer(state, delay, fn, args)
        if state.in_thread():
            timer._arm()
        else:
            state.enqueue(timer._arm, ())
        return timer

    def make_event(self):
        return _HybridEvent(self._ensure())

    def spawn(self, fn, *args):
        """``eventlet.spawn`` in the hub's thread (from another thread: queued to it)."""
        state = self._ensure()
        if state.in_thread():
            return eventlet.spawn(fn, *args)
        state.enqueue(eventlet.spawn, (fn,) + args)
        return None

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """eventlet's green resolver in the hub's thread (other greenthreads keep running), the
        OS's in any other thread.  Never from a hub callback."""
        state = self._state
        if state is not None and state.in_thread():
            return _green_socket().getaddrinfo(host, port, family, type, proto, flags)
        return _socket.getaddrinfo(host, port, family, type, proto, flags)

    # --- TCP -----------------------------------------------------------------------------------

    def open_stream(self, address, port, protocol):
        stream = _EventletStream(self._state, protocol)
        stream.open(address, port)      # OSError propagates: the driver reports it
        return stream

    # --- fork ----------------------------------------------------------------------------------

    def reinit_after_fork(self):
        state, self._state = self._state, None
        if state is None:
            return
        # The parent's hub polls an epoll set the child shares with the parent: removing our
        # listeners from it (or adding new ones) would change the parent's registrations.  So
        # the forking thread gets a new hub of the same kind, and the old hub, its listeners,
        # sockets and our streams are kept alive untouched.
        self.abandon(state, list(state.streams))
        if state.in_thread() and getattr(eventlet.hubs._threadlocal, "hub", None) is state.hub:
            try:
                eventlet.hubs._threadlocal.hub = type(state.hub)()
            except Exception:
                log.exception("could not give the forked child a fresh eventlet hub")
