"""libev reactor: libev's loop (C) in a daemon loop thread.

The binding is pyev when it imports, else cqlreactor's own cffi binding to the system libev
(:mod:`cqlreactor.reactors._libev_cffi`, built once and cached).  Importing this module loads the
binding, so a machine without libev headers or a compiler sees ReactorUnavailable (and
``doctor`` shows libev as missing, with what to install).

- Sockets: one ``ev_io`` watcher for reading and one for writing per stream.
- Wake-ups from other threads: one ``ev_async``; callbacks wait in a deque that the async
  callback drains (what was queued before the drain started; later work waits one turn).
- Timers: one ``ev_timer`` each, on libev's monotonic clock, started with a fresh "now".
- Exit: the loop thread is a daemon; base.py stops every reactor from ``atexit``, which breaks
  the loop and joins the thread before the interpreter tears down -- so no libev callback ever
  runs into a finalising interpreter (the segfault cassandra-driver's libev reactor has there).
- Fork: the child abandons the parent's loop and thread (never touching them, since the epoll set
  is shared with the parent) and builds a new loop on first use.
"""

import collections
import logging
import threading
import time

from cqlreactor.reactors import _libev_cffi
from cqlreactor.reactors._fdstream import FdStream
from cqlreactor.reactors._osthread import (make_loop_event, make_wait_event, real_allocate_lock,
                                           real_get_ident, start_loop_thread)
from cqlreactor.reactors.base import PID_CHECK_NEEDED, LoopTimer, Reactor, callback_runner

_LoopClass = _libev_cffi.load()    # raises ReactorUnavailable with what to install

__all__ = ["LibevReactor"]

log = logging.getLogger(__name__)

_JOIN_TIMEOUT = 10.0
_monotonic = time.monotonic


_run_logged = callback_runner(log, "the libev loop")


class _Timer(LoopTimer):
    """One ev_timer; ``cancel`` works from any thread."""

    __slots__ = ("_reactor", "_state", "_due")
    _run = staticmethod(_run_logged)

    def __init__(self, reactor, delay, fn, args):
        LoopTimer.__init__(self, delay, fn, args)
        self._reactor = reactor
        self._state = reactor._state
        self._due = _monotonic() + self._delay

    def _arm(self, state):
        """Loop thread: start the watcher (the delay counts from when call_later was called)."""
        if self._cancelled or state is not self._reactor._state:
            return
        self._state = state
        state.loop.update_now()
        watcher = state.loop.timer(max(0.0, self._due - _monotonic()), self._fire)
        self._native = watcher
        state.timers.add(self)
        watcher.start()

    def _stop(self, watcher):
        watcher.stop()
        self._state.timers.discard(self)

    def _in_loop_thread(self):
        return self._state.get_ident() == self._state.ident

    def _post(self, fn):
        self._state.enqueue(fn, ())     # dropped when that loop is already gone


class _LibevStream(FdStream):
    def __init__(self, state, protocol):
        FdStream.__init__(self, protocol)
        self._state = state
        self._rw = self._ww = None

    def _created(self):
        fd = self.sock.fileno()
        loop = self._state.loop
        self._rw = loop.io(fd, _libev_cffi.EV_READ, self.on_readable)
        self._ww = loop.io(fd, _libev_cffi.EV_WRITE, self.on_writable)
        self._state.streams.add(self)

    def _watch_read(self, on):
        if on:
            self._rw.start()
        else:
            self._rw.stop()

    def _watch_write(self, on):
        if on:
            self._ww.start()
        else:
            self._ww.stop()

    def _release_watchers(self):
        for watcher in (self._rw, self._ww):
            if watcher is not None:
                watcher.stop()
        self._state.streams.discard(self)

    def _defer(self, fn, *args):
        self._state.enqueue(fn, args)


class _LoopState(object):
    """Everything of one running loop: replaced as a whole by stop/start and after fork."""

    def __init__(self):
        # the OS thread's identity even when gevent/eventlet patched threading
        self.get_ident = real_get_ident()
        self.loop = _LoopClass()
        self.callbacks = collections.deque()
        self.timers = set()             # armed _Timer objects (their watchers must stay alive)
        self.streams = set()
        self.thread = None
        self.ident = None
        self.running = True
        self.destroyed = False
        # orders send() against destroy(): no use after free (real: the loop thread takes it)
        self.lock = real_allocate_lock()
        self.waker = self.loop.async_(self._drain)
        self.waker.start()

    def enqueue(self, fn, args):
        with self.lock:
            if self.destroyed:          # the loop is gone (stopped): nothing will run it
                return False
            self.callbacks.append((fn, args))
            self.waker.send()           # cheap when already pending; safe from any thread
        return True

    def destroy(self):
        with self.lock:
            self.destroyed = True
            self.callbacks.clear()
            self.waker.stop()
            self.loop.destroy()

    def _drain(self):
        callbacks = self.callbacks
        for _ in range(len(callbacks)):
            fn, args = callbacks.popleft()
            _run_logged(fn, args)
        if not self.running:
            self.loop.break_all()


class LibevReactor(Reactor):
    """libev in a daemon loop thread (``ev_run``; the GIL is released while it waits)."""

    name = "libev"

    def __init__(self, allow_unsupported_reactors=None):
        super(LibevReactor, self).__init__(allow_unsupported_reactors)
        self._lock = threading.Lock()
        self._state = None
        self._retiring = None           # the state stop() is ending, until its thread is gone

    @property
    def backend(self):
        """"cffi (libev 4.33)" or "pyev"."""
        return _libev_cffi.backend_name()

    # --- loop ----------------------------------------------------------------------------------

    def start(self):
        if PID_CHECK_NEEDED:
            self.check_fork()
        self.stopped = False
        if self._state is not None:
            return
        with self._lock:
            self.stopped = False
            if self._state is not None:
                return
            state = _LoopState()
            started = make_loop_event()
            # a real OS thread even under gevent/eventlet patching (ev_run blocks its thread)
            state.thread = start_loop_thread(self._run, (state, started), "cqlreactor-libev")
            started.wait()
            self._state = state

    def _run(self, state, started):
        state.ident = state.get_ident()
        started.set()
        try:
            state.loop.run()
        except BaseException:
            log.exception("the libev loop failed")
        finally:
            # Only this thread ever ran the loop: release it here, once it is idle for good.
            # (Watchers still held elsewhere are never started again: their state is gone.)
            try:
                for stream in list(state.streams):
                    stream.close()
                state.destroy()         # drops what is still queued: that work was stopped
            except Exception:
                log.debug("destroying the libev loop failed", exc_info=True)
            if self._retiring is state:
                self._retiring = None

    def _in_loop_thread(self):
        state = self._state
        return state is not None and state.get_ident() == state.ident

    def stop(self):
        with self._lock:
            self.stopped = True
            state, self._state = self._state, None
            if state is not None:
                self._retiring = state
        if state is None or not state.running:
            return
        if state.get_ident() == state.ident:
            self._shutdown(state)       # the loop breaks when this callback returns
            return
        if state.enqueue(self._shutdown, (state,)):
            state.thread.join(_JOIN_TIMEOUT)
        if state.thread.is_alive():
            log.warning("the libev loop thread did not stop within %gs", _JOIN_TIMEOUT)

    def _shutdown(self, state):
        self.close_connections()
        for stream in list(state.streams):
            stream.close()
        for timer in list(state.timers):
            timer._cancelled = True
            timer._release()
        state.running = False
        state.loop.break_all()

    # --- wake-up, time, waits -------------------------------------------------------------------

    def _running_state(self):
        state = self._state
        if state is None or PID_CHECK_NEEDED:
            retiring = self._retiring
            if retiring is not None and retiring.get_ident() == retiring.ident:
                return retiring         # from the stopping loop itself: dropped with it
            self.first_use()
            state = self._state
        return state

    def call_soon_threadsafe(self, fn, *args):
        self._running_state().enqueue(fn, args)

    def call_later(self, delay, fn, *args):
        state = self._running_state()
        timer = _Timer(self, delay, fn, args)
        if state.get_ident() == state.ident:
            timer._arm(state)
        else:
            state.enqueue(timer._arm, (state,))
        return timer

    def make_event(self):
        return make_wait_event("libev")

    # --- TCP -----------------------------------------------------------------------------------

    def open_stream(self, address, port, protocol):
        stream = _LibevStream(self._state, protocol)
        stream.open(address, port)      # OSError propagates: the driver reports it
        return stream

    # --- fork ----------------------------------------------------------------------------------

    def reinit_after_fork(self):
        # The parent's loop shares its epoll set with the parent, and its thread does not exist
        # here: keep every object alive (no finalizer, no ev_io_stop) and start afresh on use.
        state = self._state
        if state is not None:
            self.abandon(state, list(state.streams), list(state.timers))
        self._lock = threading.Lock()
        self._state = self._retiring = None
