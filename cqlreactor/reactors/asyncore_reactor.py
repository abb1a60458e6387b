"""asyncore reactor: an asyncore select/poll loop in a loop thread.

asyncore is the standard library module before Python 3.12 and the ``pyasyncore`` package (same
module name) from 3.12 on; compat_matrix.yaml says which.  The loop is ours, not asyncore's
``loop()``: each turn polls the reactor's own socket map with a timeout up to the next timer, then
runs due timers and the callbacks queued from other threads.  A socketpair wakes the poll when
another thread queues work.  Under gevent/eventlet monkey-patching the loop still gets a real OS
thread and the real ``poll(2)`` (see ``_osthread``), so it never depends on the application's
greenlets yielding.  (The module is not called ``asyncore.py`` so it cannot shadow the library
it uses.)
"""

import _socket
import collections
import errno
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
import warnings

from cqlreactor.core.errors import ReactorUnavailable
from cqlreactor.reactors._osthread import (make_loop_event, make_wait_event, real_allocate_lock,
                                           real_get_ident, start_loop_thread, unpatched_select)
from cqlreactor.reactors.base import (PID_CHECK_NEEDED, Reactor, Transport, callback_runner,
                                      connect_error)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.10/3.11: "asyncore is deprecated"
    try:
        import asyncore
    except ImportError as exc:  # 3.12+ without pyasyncore
        raise ReactorUnavailable("the asyncore module is missing (Python 3.12+ needs the "
                                 "pyasyncore package: pip install pyasyncore)") from exc

__all__ = ["AsyncoreReactor"]

log = logging.getLogger(__name__)
_monotonic = time.monotonic
_READ_SIZE = 256 * 1024
_MAX_POLL = 1.0         # seconds; an upper bound so a lost wake-up costs at most this much


def _poll_with(real_poll):
    """asyncore's poll2 on a given ``poll`` (the unpatched one): one turn over ``socket_map``."""
    def poll(timeout, socket_map):
        pollster = real_poll()
        for fd, obj in list(socket_map.items()):
            flags = 0
            if obj.readable():
                flags |= select.POLLIN | select.POLLPRI
            if obj.writable() and not obj.accepting:
                flags |= select.POLLOUT
            if flags:
                pollster.register(fd, flags)
        for fd, flags in pollster.poll(int(timeout * 1000)):
            obj = socket_map.get(fd)
            if obj is not None:
                asyncore.readwrite(obj, flags)
    return poll


class _Timer(object):
    __slots__ = ("when", "fn", "args", "cancelled")

    def __init__(self, when, fn, args):
        self.when = when
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class _Waker(asyncore.dispatcher):
    """The read end of a socketpair in the map; writing a byte to the other end wakes poll()."""

    def __init__(self, socket_map):
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self.pending = False
        asyncore.dispatcher.__init__(self, self._reader, map=socket_map)

    def wake(self):
        if self.pending:
            return
        self.pending = True
        try:
            self._writer.send(b"x")
        except (BlockingIOError, InterruptedError):
            pass                        # the pipe is full: the loop is awake anyway
        except OSError:
            pass                        # closed during stop

    def handle_read(self):
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        # Only after draining: a wake() racing with the drain then writes a fresh byte.
        self.pending = False

    def writable(self):
        return False

    def handle_close(self):
        pass

    def close_both(self):
        self.close()
        self._writer.close()


class _AsyncoreStream(asyncore.dispatcher, Transport):
    """One TCP stream: an asyncore dispatcher that is our Transport."""

    def __init__(self, socket_map, protocol):
        asyncore.dispatcher.__init__(self, map=socket_map)
        self._protocol = protocol
        self._wbuf = bytearray()
        self._done = False              # after close() or connection_lost: silence
        self._peer = None               # (address, port) connected to, for connect errors

    def start(self, address, port):
        # numeric only (the driver looked the name up before, off the loop); the C-level call,
        # as a patched one would start a green hub in this loop thread
        infos = _socket.getaddrinfo(address, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP,
                                    socket.AI_NUMERICHOST)
        family, _type, _proto, _name, sockaddr = infos[0]
        self._peer = (sockaddr[0], sockaddr[1])
        # the C-level socket too (as _fdstream): a patched socket.socket registers itself with
        # a green hub, which would make one for this loop thread that nothing runs; eventlet on
        # Python 3.6 was seen to crash at exit finalizing it
        sock = _socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        self.set_socket(sock)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connect(sockaddr)          # non-blocking; handle_connect follows

    # asyncore ------------------------------------------------------------------------------------
    def handle_connect(self):
        if not self._done:
            self._protocol.connection_made(self)

    def readable(self):
        return not self._done

    def writable(self):
        return self.connecting or bool(self._wbuf)

    def handle_read(self):
        try:
            data = self.recv(_READ_SIZE)    # b"" and close on EOF (asyncore's own handling)
        except OSError as exc:
            self._lost(exc)
            return
        if data and not self._done:
            self._protocol.data_received(data)

    def handle_write(self):
        self._send_some()

    def _send_some(self):
        wbuf = self._wbuf
        try:
            sent = self.socket.send(wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del wbuf[:sent]                 # bytearray drops a prefix without moving the rest

    def handle_close(self):
        error = None
        try:
            code = self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                error = OSError(code, os.strerror(code))
        except OSError:
            pass
        self._lost(error)

    def handle_expt(self):
        self.handle_close()

    def handle_error(self):
        import sys
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self._lost(exc)
        else:                           # a bug in a callback: report it, end this stream only
            log.exception("error in the asyncore loop on %r", self)
            self._lost(exc)

    def _lost(self, exc):
        if self.connecting and self._peer is not None:
            exc = connect_error(exc, *self._peer)
        was_done = self._done
        self._done = True
        self.close()
        if not was_done:
            self._protocol.connection_lost(exc)

    # Transport -----------------------------------------------------------------------------------
    def setsockopt(self, level, option, value):
        self.socket.setsockopt(level, option, value)

    def write(self, data):
        if self._done:
            return
        self._wbuf += data
        if not self.connecting:
            self._send_some()           # most writes leave nothing for the next turn

    def close(self):
        self._done = True
        asyncore.dispatcher.close(self)


class AsyncoreReactor(Reactor):
    """asyncore in a daemon loop thread (poll() where available, else select())."""

    name = "asyncore"

    def __init__(self, allow_unsupported_reactors=None):
        super(AsyncoreReactor, self).__init__(allow_unsupported_reactors)
        self._setup()

    def _setup(self):
        self._lock = real_allocate_lock()
        self._map = {}
        self._callbacks = collections.deque()
        self._timers = []
        self._seq = itertools.count()
        self._waker = None
        self._thread = None
        self._thread_ident = None
        self._get_ident = threading.get_ident     # the real one once start() ran
        self._running = False
        self._loop_active = False       # the loop thread is in _run (also while it stops)
        self._poll = asyncore.poll2 if hasattr(select, "poll") else asyncore.poll

    # --- loop ----------------------------------------------------------------------------------

    def start(self):
        if PID_CHECK_NEEDED:
            self.check_fork()
        with self._lock:
            self.stopped = False
            if self._running:
                return
            self._map = {}
            self._callbacks = collections.deque()   # a stopped loop's leftovers never run
            self._timers = []
            self._waker = _Waker(self._map)
            self._running = True
            # A real OS thread even under gevent/eventlet patching, polling with the real
            # poll(2): the loop does not depend on the application's greenlets yielding.
            self._get_ident = real_get_ident()
            real_poll = unpatched_select("poll")
            if real_poll is not None:
                self._poll = _poll_with(real_poll)
            self._thread = start_loop_thread(self._run, (), "cqlreactor-asyncore")

    def _run(self):
        self._thread_ident = self._get_ident()
        self._loop_active = True
        socket_map = self._map
        callbacks = self._callbacks
        timers = self._timers
        poll = self._poll
        while self._running:
            timeout = _MAX_POLL
            if callbacks:
                timeout = 0.0
            elif timers:
                timeout = min(_MAX_POLL, max(0.0, timers[0][0] - _monotonic()))
            try:
                poll(timeout, socket_map)
            except Exception:
                log.exception("asyncore poll failed")
            if timers:
                now = _monotonic()
                while timers and timers[0][0] <= now:
                    timer = heapq.heappop(timers)[2]
                    if not timer.cancelled:
                        self._run_one(timer.fn, timer.args)
            # only what was queued before this point; later work waits for the next turn
            for _ in range(len(callbacks)):
                fn, args = callbacks.popleft()
                self._run_one(fn, args)
        self._close_map(socket_map)
        callbacks.clear()               # queued by the stopping loop: that work was stopped
        del timers[:]
        self._loop_active = False

    _run_one = staticmethod(callback_runner(log, "the asyncore loop"))

    def _close_map(self, socket_map):
        for dispatcher in list(socket_map.values()):
            try:
                if isinstance(dispatcher, _Waker):
                    dispatcher.close_both()
                else:
                    dispatcher.close()
            except OSError:
                pass

    def stop(self):
        with self._lock:
            self.stopped = True
            if not self._running:
                return
            thread = self._thread
        if self._get_ident() == self._thread_ident:
            self._shutdown()
            return
        self._callbacks.append((self._shutdown, ()))
        self._waker.wake()
        thread.join(5.0)

    def _shutdown(self):
        self.close_connections()
        self._running = False

    # --- wake-up, time, waits -------------------------------------------------------------------

    def call_soon_threadsafe(self, fn, *args):
        if not self._running or PID_CHECK_NEEDED:
            if self._loop_active and self._get_ident() == self._thread_ident:
                self._callbacks.append((fn, args))  # the stopping loop itself: dropped with it
                return
            self.first_use()
        self._callbacks.append((fn, args))
        if self._get_ident() != self._thread_ident:
            self._waker.wake()

    def call_later(self, delay, fn, *args):
        timer = _Timer(_monotonic() + delay, fn, args)
        if self._get_ident() == self._thread_ident:
            heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        else:                           # the heap belongs to the loop thread
            self.call_soon_threadsafe(self._push_timer, timer)
        return timer

    def _push_timer(self, timer):
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))

    def make_event(self):
        return make_wait_event("asyncore")

    # --- TCP -----------------------------------------------------------------------------------

    def open_stream(self, address, port, protocol):
        stream = _AsyncoreStream(self._map, protocol)
        try:
            stream.start(address, port)
        except OSError as exc:
            stream._done = True
            stream.close()
            if exc.errno not in (errno.EINPROGRESS, errno.EWOULDBLOCK):
                if stream._peer is not None:    # the connect itself failed, not the lookup
                    exc = connect_error(exc, *stream._peer)
                protocol.connection_lost(exc)
        return stream

    # --- fork ----------------------------------------------------------------------------------

    def reinit_after_fork(self):
        # poll/select keep no kernel state, but the parent's sockets and waker are its own:
        # never close or poll them here.
        self.abandon(self._map, self._waker, self._thread)
        self._setup()
