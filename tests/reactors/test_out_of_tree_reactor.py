"""A reactor written outside cqlreactor from ``cqlreactor.reactors.base`` alone, and tested the
way a third party would: :class:`cqlreactor.testing.conformance.ReactorConformance` with
nothing but ``reactor_under_test`` set.

:class:`SelectorsReactor` is a whole reactor in about 150 lines: one ``selectors`` loop in a
daemon thread, a socketpair to wake it, a heap of timers, and a Transport over a non-blocking
socket.  It is deliberately plain (no monkey-patching support, one ``recv`` per readable
event); that it passes the suite unchanged is the point: base.py says everything a reactor has
to do.
"""

import collections
import errno
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time

from cqlreactor.reactors import matrix
from cqlreactor.reactors.base import (PID_CHECK_NEEDED, Reactor, TimerHandle, Transport,
                                      callback_runner, connect_error)
from cqlreactor.testing.conformance import ReactorConformance

log = logging.getLogger(__name__)
_run_logged = callback_runner(log, "the selectors loop")
_RETRY = (BlockingIOError, InterruptedError)


class _Timer(TimerHandle):
    __slots__ = ("when", "fn", "args", "cancelled")

    def __init__(self, when, fn, args):
        self.when, self.fn, self.args, self.cancelled = when, fn, args, False

    def cancel(self):
        self.cancelled = True           # the loop skips it when it comes due


class _Loop(object):
    """One run of the loop; stop() retires it as a whole and the next use makes a new one."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.callbacks = collections.deque()
        self.timers = []
        self.seq = itertools.count()
        self.running = True
        self.ident = None
        self.thread = None
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        self.selector.register(self.reader, selectors.EVENT_READ, self._woken)

    def in_loop(self):
        return threading.get_ident() == self.ident

    def post(self, fn, args=()):
        self.callbacks.append((fn, args))
        if not self.in_loop():
            try:
                self.writer.send(b"x")
            except (OSError, ValueError):
                pass                    # full (the loop is awake anyway) or already closed

    def _woken(self, _mask):
        try:
            while self.reader.recv(4096):
                pass
        except _RETRY:
            pass

    def run(self):
        self.ident = threading.get_ident()
        callbacks, timers = self.callbacks, self.timers
        while self.running:
            timeout = 1.0
            if callbacks:
                timeout = 0.0
            elif timers:
                timeout = min(1.0, max(0.0, timers[0][0] - time.monotonic()))
            for key, mask in self.selector.select(timeout):
                _run_logged(key.data, (mask,))
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                timer = heapq.heappop(timers)[2]
                if not timer.cancelled:
                    _run_logged(timer.fn, timer.args)
            for _ in range(len(callbacks)):
                fn, args = callbacks.popleft()
                _run_logged(fn, args)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()
        self.writer.close()


class _Stream(Transport):
    def __init__(self, loop, protocol):
        self.loop, self.protocol = loop, protocol
        self.sock = self.peer = None
        self.wbuf = bytearray()
        self.connecting = True
        self.closed = False             # the socket is gone
        self.done = False               # the protocol gets no more calls

    def open(self, address, port):
        family, _type, _proto, _name, sockaddr = socket.getaddrinfo(
            address, port, 0, socket.SOCK_STREAM)[0]
        self.peer = sockaddr[:2]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            raise connect_error(OSError(code, os.strerror(code)), *self.peer)
        self.sock = sock
        self.loop.selector.register(sock, selectors.EVENT_WRITE, self._ready)

    def _watch(self):
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.wbuf else 0)
        self.loop.selector.modify(self.sock, events, self._ready)

    def _ready(self, mask):
        if self.connecting:
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self._lost(connect_error(OSError(code, os.strerror(code)), *self.peer))
                return
            self.connecting = False
            self._watch()
            self.protocol.connection_made(self)
            return
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock.recv(256 * 1024)
            except _RETRY:
                data = None
            except OSError as exc:
                self._lost(exc)
                return
            if data == b"":
                self._lost(None)
                return
            if data and not self.done:
                self.protocol.data_received(data)
        if mask & selectors.EVENT_WRITE and not self.closed:
            self._send()

    def _send(self):
        try:
            sent = self.sock.send(self.wbuf)
        except _RETRY:
            sent = 0
        except OSError as exc:          # never call the protocol back from inside its write
            self._close_socket()
            self.loop.post(self._report, (exc,))
            return
        del self.wbuf[:sent]
        self._watch()

    def write(self, data):
        if not self.closed:
            self.wbuf += data
            if not self.connecting:
                self._send()

    def close(self):
        self.done = True
        self._close_socket()

    def _close_socket(self):
        if not self.closed:
            self.closed = True
            self.loop.selector.unregister(self.sock)
            self.sock.close()

    def _lost(self, exc):
        self._close_socket()
        self._report(exc)

    def _report(self, exc):
        if not self.done:
            self.done = True
            self.protocol.connection_lost(exc)


class SelectorsReactor(Reactor):
    """The whole contract of base.py, on ``selectors`` in a daemon loop thread."""

    def __init__(self, allow_unsupported_reactors=None):
        super(SelectorsReactor, self).__init__(allow_unsupported_reactors)
        self._lock = threading.Lock()
        self._loop = None
        self._retiring = None           # the loop stop() is ending

    def start(self):
        if PID_CHECK_NEEDED:
            self.check_fork()
        with self._lock:
            self.stopped = False
            if self._loop is None:
                loop = _Loop()
                thread = threading.Thread(target=loop.run, name="selectors-reactor")
                thread.daemon = True
                thread.start()
                loop.thread = thread
                self._loop = loop
            return self._loop

    def stop(self):
        with self._lock:
            self.stopped = True
            loop, self._loop = self._loop, None
            self._retiring = loop or self._retiring
        if loop is None:
            return
        if loop.in_loop():
            self._shutdown(loop)
        else:
            loop.post(self._shutdown, (loop,))
            loop.thread.join(5.0)

    def _shutdown(self, loop):
        self.close_connections()
        loop.running = False

    def _current(self):
        loop = self._loop
        if loop is None:
            retiring = self._retiring
            if retiring is not None and retiring.in_loop():
                return retiring         # the stopping loop itself: its last turn drops this
            self.first_use()            # starts a new reactor, raises after stop()
            return self._loop
        return self.start() if PID_CHECK_NEEDED else loop

    def call_soon_threadsafe(self, fn, *args):
        self._current().post(fn, args)

    def call_later(self, delay, fn, *args):
        loop = self._current()
        timer = _Timer(time.monotonic() + delay, fn, args)
        entry = (timer.when, next(loop.seq), timer)
        if loop.in_loop():
            heapq.heappush(loop.timers, entry)
        else:                           # the heap belongs to the loop thread
            loop.post(heapq.heappush, (loop.timers, entry))
        return timer

    def make_event(self):
        return threading.Event()

    def open_stream(self, address, port, protocol):
        stream = _Stream(self._loop, protocol)
        stream.open(address, port)      # a lookup or connect error raises: the driver reports
        return stream

    def reinit_after_fork(self):
        self.abandon(self._loop)        # the parent's selector and sockets: never touch them
        self._lock = threading.Lock()
        self._loop = self._retiring = None


class TestSelectorsReactor(ReactorConformance):
    reactor_under_test = SelectorsReactor


def test_an_unknown_name_means_no_gate():
    assert SelectorsReactor.name is None and "selectors" not in matrix.reactor_names()
    SelectorsReactor(allow_unsupported_reactors=None).stop()
