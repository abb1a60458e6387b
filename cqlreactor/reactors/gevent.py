"""gevent reactor: runs in the gevent hub of the thread that uses it -- no loop thread.

Sockets are watched with the hub's own io watchers, timers are hub timers and callbacks queued
from other OS threads wake the hub through ``loop.run_callback_threadsafe`` (libev's async
watcher).  Blocking calls wait on a ``gevent.event.Event``, so ``session.execute`` in one greenlet
lets every other greenlet run: a gevent server (gunicorn's gevent workers, gevent.pywsgi) can
share one connection between many greenlets.  No monkey-patching is needed, and
``gevent.monkey.patch_all()`` changes nothing here: the sockets are the C-level ``_socket`` ones
and thread identity comes from the unpatched ``_thread.get_ident``.

The "loop thread" of the reactor contract is the hub's thread; loop callbacks run inside the
hub, where nothing may block (use :meth:`GeventReactor.spawn` for work that must).
"""

import _socket
import logging
import weakref

import gevent
import gevent.event
import gevent.hub
import gevent.monkey
import gevent.socket

from cqlreactor.reactors._fdstream import FdStream
from cqlreactor.reactors._osthread import HybridEvent
from cqlreactor.reactors.base import PID_CHECK_NEEDED, LoopTimer, Reactor, callback_runner

__all__ = ["GeventReactor"]

log = logging.getLogger(__name__)

# Real OS-thread identity and locks even after patch_all() (which makes threads greenlets).
_get_ident = gevent.monkey.get_original("_thread", "get_ident")
_allocate_lock = gevent.monkey.get_original("_thread", "allocate_lock")
_READ, _WRITE = 1, 2
_CROSS_THREAD_STOP_WAIT = 2.0


_run_logged = callback_runner(log, "the gevent hub")


class _Timer(LoopTimer):
    """A hub timer; ``cancel`` works from any thread."""

    __slots__ = ("_loop", "_ident")
    _run = staticmethod(_run_logged)

    def __init__(self, hub, ident, delay, fn, args):
        LoopTimer.__init__(self, delay, fn, args)
        self._loop = hub.loop
        self._ident = ident

    def _arm(self):
        if self._cancelled:
            return
        watcher = self._loop.timer(self._delay)
        self._native = watcher
        watcher.start(self._fire, update=True)   # from "now", not the loop's cached time

    def _stop(self, watcher):
        watcher.stop()
        watcher.close()

    def _in_loop_thread(self):
        return _get_ident() == self._ident

    def _post(self, fn):
        self._loop.run_callback_threadsafe(fn)  # a ref'd watcher would keep gevent.wait() waiting


class _HybridEvent(HybridEvent):
    """See :class:`~cqlreactor.reactors._osthread.HybridEvent`.  The hub is the one current when
    the event was made, so a stopped reactor does not strand a waiter."""

    __slots__ = ("_hub", "_ident", "_green")

    def __init__(self, hub, ident):
        HybridEvent.__init__(self, _allocate_lock)
        self._hub = hub
        self._ident = ident
        self._green = gevent.event.Event()

    def _in_hub_thread(self):
        return _get_ident() == self._ident

    def _green_set(self):
        self._green.set()

    def _green_wait(self, timeout):
        self._green.wait(timeout)

    def _post(self, fn):
        self._hub.loop.run_callback_threadsafe(fn)


class _GeventStream(FdStream):
    def __init__(self, reactor, protocol):
        FdStream.__init__(self, protocol)
        self._reactor = reactor
        self._loop = reactor._hub.loop
        self._rw = self._ww = None

    def _created(self):
        fd = self.sock.fileno()
        self._rw = self._loop.io(fd, _READ)
        self._ww = self._loop.io(fd, _WRITE)

    def _watch_read(self, on):
        if on:
            self._rw.start(self.on_readable)
        else:
            self._rw.stop()

    def _watch_write(self, on):
        if on:
            self._ww.start(self.on_writable)
        else:
            self._ww.stop()

    def _release_watchers(self):
        self._reactor._streams.discard(self)
        for watcher in (self._rw, self._ww):
            if watcher is not None:
                watcher.stop()
                watcher.close()

    def _defer(self, fn, *args):
        self._loop.run_callback(_run_logged, fn, args)


class GeventReactor(Reactor):
    """The gevent hub of the thread that first uses the reactor (usually the main thread).

    ``make_event`` returns an event whose ``wait`` yields to the hub in that thread and blocks
    only the caller in any other OS thread.  ``spawn`` is ``gevent.spawn``.
    """

    name = "gevent"

    def __init__(self, allow_unsupported_reactors=None):
        super(GeventReactor, self).__init__(allow_unsupported_reactors)
        self._hub = None
        self._hub_ident = None
        self._streams = set()
        # bumped by stop(): hub callbacks and timers of an earlier run are dropped, not run
        self._generation = 0
        self._timers = weakref.WeakSet()

    @property
    def hub_thread_ident(self):
        """The OS thread whose hub runs the connections (None before start): cqlreactor.aio
        refuses to await there from an asyncio loop that would keep that hub from running."""
        return self._hub_ident

    # --- loop ----------------------------------------------------------------------------------

    def start(self):
        """Bind to the calling thread's hub (idempotent)."""
        if PID_CHECK_NEEDED:
            self.check_fork()
        self.stopped = False
        if self._hub is None:
            self._hub_ident = _get_ident()
            self._hub = gevent.get_hub()

    def stop(self):
        self.stopped = True
        hub = self._hub
        if hub is None:
            return
        if _get_ident() == self._hub_ident:
            self._shutdown()
            return
        done = _allocate_lock()
        done.acquire()
        hub.loop.run_callback_threadsafe(self._shutdown, done)
        # The hub runs only while its thread waits in gevent; do not hang if it never does.
        done.acquire(True, _CROSS_THREAD_STOP_WAIT)

    def _shutdown(self, done=None):
        try:
            self.close_connections()
            for stream in list(self._streams):
                stream.close()
            # what is queued in the hub for this run (by the close listeners too) never runs
            self._generation += 1
            for timer in list(self._timers):
                timer.cancel()          # a live hub timer would keep gevent.wait() waiting
            self._hub = None
            self._hub_ident = None
        finally:
            if done is not None:
                done.release()

    # --- wake-up, time, waits -------------------------------------------------------------------

    def _bound_hub(self):
        hub, ident = self._hub, self._hub_ident
        if hub is None:
            self.first_use()
            hub, ident = self._hub, self._hub_ident
        elif PID_CHECK_NEEDED:
            self.check_fork()
            hub, ident = self._hub, self._hub_ident
        return hub, ident

    def _run_current(self, generation, fn, args):
        if generation == self._generation:
            _run_logged(fn, args)

    def call_soon_threadsafe(self, fn, *args):
        hub, ident = self._bound_hub()
        if _get_ident() == ident:
            hub.loop.run_callback(self._run_current, self._generation, fn, args)
        else:
            hub.loop.run_callback_threadsafe(self._run_current, self._generation, fn, args)

    def call_later(self, delay, fn, *args):
        hub, ident = self._bound_hub()
        timer = _Timer(hub, ident, delay, self._run_current, (self._generation, fn, args))
        self._timers.add(timer)
        if _get_ident() == ident:
            timer._arm()
        else:
            hub.loop.run_callback_threadsafe(timer._arm)
        return timer

    def make_event(self):
        hub, ident = self._hub, self._hub_ident
        if hub is None and not self.stopped:
            self.start()                # first use binds the reactor to the caller's hub
            hub, ident = self._hub, self._hub_ident
        elif hub is None:               # stopped: the caller's hub, without restarting
            hub, ident = gevent.get_hub(), _get_ident()
        return _HybridEvent(hub, ident)

    def spawn(self, fn, *args):
        """``gevent.spawn`` in the hub's thread (from another thread: queued to it)."""
        hub, ident = self._bound_hub()
        if _get_ident() == ident:
            return gevent.spawn(fn, *args)
        hub.loop.run_callback_threadsafe(gevent.spawn, fn, *args)
        return None

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """gevent's resolver in the hub's thread (a greenlet waits, the others run: patched or
        not), the OS's in any other thread.  Never from a hub callback."""
        if _get_ident() == self._hub_ident:
            return gevent.socket.getaddrinfo(host, port, family, type, proto, flags)
        return _socket.getaddrinfo(host, port, family, type, proto, flags)

    # --- TCP -----------------------------------------------------------------------------------

    def open_stream(self, address, port, protocol):
        stream = _GeventStream(self, protocol)
        stream.open(address, port)      # OSError propagates: the driver reports it
        self._streams.add(stream)
        return stream

    # --- fork ----------------------------------------------------------------------------------

    def reinit_after_fork(self):
        hub = self._hub
        if hub is not None and _get_ident() == self._hub_ident:
            # The child's loop must get its own epoll set before any watcher changes, or stopping
            # the inherited watchers below would edit the parent's set (gevent.fork does this
            # too; twice is harmless).
            try:
                hub.loop.reinit()
            except Exception:
                log.debug("gevent loop reinit after fork failed", exc_info=True)
            for stream in list(self._streams):
                stream.abandon()
        self.abandon(list(self._streams))
        self._streams = set()
        if hub is not None and _get_ident() != self._hub_ident:
            self.abandon(hub)               # another thread's hub: that thread does not exist here
            self._hub = None
            self._hub_ident = None
