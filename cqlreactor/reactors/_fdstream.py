"""A non-blocking TCP socket driven by readiness callbacks: the Transport of the gevent, eventlet
and libev reactors.

Those three loops only say "this fd is readable / writable"; this class does the rest once:
non-blocking connect (completion seen as writability, the result read from ``SO_ERROR``), one
``recv`` per readable event, ``write`` that sends what the socket takes now and buffers the rest
behind a write watcher, and errors handed to the protocol as the plain ``OSError`` they are (the
driver turns them into ConnectionException / ConnectionDefunct with the endpoint).

The socket is the C-level ``_socket.socket``, which neither gevent nor eventlet monkey-patches, so
the same code runs with and without patching and never blocks or switches greenlets.  A reactor
subclass supplies four hooks: ``_watch_read(on)``, ``_watch_write(on)``, ``_release_watchers()``
and ``_defer(fn, *args)`` (run on the loop soon, for errors found inside ``write``).
"""

import _socket
import collections
import errno
import logging
import os

from cqlreactor.reactors.base import Transport, connect_error

__all__ = ["FdStream", "READ_SIZE"]

log = logging.getLogger(__name__)
# the write buffer of a stream that never had to buffer: an idle connection keeps no deque
# (a deque is about 750 bytes with its first block)
_NO_BUFFER = ()

READ_SIZE = 256 * 1024
_SMALL = 64 * 1024           # buffered writes smaller than this are merged into one chunk
_CONNECTING_ERRNOS = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY)
_RETRY = (BlockingIOError, InterruptedError)


class FdStream(Transport):
    """One TCP stream over a non-blocking ``_socket.socket``.  Loop thread only."""

    def __init__(self, protocol):
        self._protocol = protocol
        self.sock = None
        self._peer = None               # (address, port) connected to, for connect errors
        self._connecting = False
        self._closed = False            # socket closed (by us, or after an error)
        self._done = False              # the protocol gets no more calls
        self._wbuf = _NO_BUFFER        # a deque once a write could not go out at once
        self._wpos = 0                  # bytes of _wbuf[0] already sent
        self._reading = False
        self._writing = False

    # --- hooks ---------------------------------------------------------------------------------

    def _watch_read(self, on):
        raise NotImplementedError

    def _watch_write(self, on):
        raise NotImplementedError

    def _release_watchers(self):
        raise NotImplementedError

    def _defer(self, fn, *args):
        raise NotImplementedError

    # --- opening -------------------------------------------------------------------------------

    def open(self, address, port):
        """Start the non-blocking connect to an IP address.  Raises OSError (a host name, a
        connect error found at once) at once."""
        # The driver looked the name up before (off the loop: a lookup here, in a loop
        # callback, would block every connection, and a green one fails inside a hub callback),
        # so only a numeric address is accepted: a host name is a gaierror at once.
        infos = _socket.getaddrinfo(address, port, 0, _socket.SOCK_STREAM, _socket.IPPROTO_TCP,
                                    _socket.AI_NUMERICHOST)
        family, _type, proto, _name, sockaddr = infos[0]
        self._peer = (sockaddr[0], sockaddr[1])
        sock = _socket.socket(family, _socket.SOCK_STREAM, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            code = sock.connect_ex(sockaddr)
            if code not in _CONNECTING_ERRNOS:
                raise connect_error(OSError(code, os.strerror(code)), *self._peer)
        except BaseException:
            sock.close()
            self._closed = self._done = True
            raise
        self.sock = sock
        self._connecting = True
        self._created()
        self._set_write(True)           # writability = connect finished (either way)

    def _created(self):
        """Hook: the socket exists (``self.sock``); create watchers for its fd."""

    # --- readiness -----------------------------------------------------------------------------

    def _set_read(self, on):
        if on != self._reading and not self._closed:
            self._reading = on
            self._watch_read(on)

    def _set_write(self, on):
        if on != self._writing and not self._closed:
            self._writing = on
            self._watch_write(on)

    def on_readable(self, *_ignored):
        if self._closed:
            return
        try:
            data = self.sock.recv(READ_SIZE)
        except _RETRY:
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        if not self._done:
            try:
                self._protocol.data_received(data)
            except Exception:           # a bug above us: report it, keep the loop alive
                log.exception("data_received of %r raised", self._protocol)

    def on_writable(self, *_ignored):
        if self._closed:
            return
        if self._connecting:
            code = self.sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if code:
                self._lost(connect_error(OSError(code, os.strerror(code)), *self._peer))
                return
            self._connecting = False
            self._set_read(True)
            if not self._done:
                try:
                    self._protocol.connection_made(self)
                except Exception:
                    log.exception("connection_made of %r raised", self._protocol)
            if self._closed:
                return
        error = self._send_buffered()
        if error is not None:
            self._lost(error)
        elif not self._wbuf:
            self._set_write(False)

    def _send_buffered(self):
        """Send from the buffer until it is empty or the socket is full; an OSError or None."""
        wbuf = self._wbuf
        send = self.sock.send
        while wbuf:
            first = wbuf[0]
            view = memoryview(first)[self._wpos:] if self._wpos else first
            try:
                sent = send(view)
            except _RETRY:
                return None
            except OSError as exc:
                return exc
            if sent < len(view):
                self._wpos += sent
                return None
            wbuf.popleft()
            self._wpos = 0
        return None

    # --- Transport -----------------------------------------------------------------------------

    def setsockopt(self, level, option, value):
        self.sock.setsockopt(level, option, value)

    def write(self, data):
        if self._closed or not data:
            return
        wbuf = self._wbuf
        if not wbuf and not self._connecting:
            try:
                sent = self.sock.send(data)
            except _RETRY:
                sent = 0
            except OSError as exc:
                # Never call back into the protocol from inside its own write: report next turn.
                self._close_socket()
                self._defer(self._report_lost, exc)
                return
            if sent == len(data):
                return
            if wbuf is _NO_BUFFER:
                wbuf = self._wbuf = collections.deque()
            wbuf.append(bytes(data[sent:]))
            self._set_write(True)
            return
        if wbuf and len(data) < _SMALL and len(wbuf[-1]) < _SMALL and len(wbuf) > 1:
            wbuf[-1] = wbuf[-1] + data  # not the first chunk (its offset counts into it)
        else:
            if wbuf is _NO_BUFFER:
                wbuf = self._wbuf = collections.deque()
            wbuf.append(bytes(data))
        self._set_write(True)

    def close(self):
        self._done = True
        self._close_socket()

    # --- ending --------------------------------------------------------------------------------

    def _close_socket(self):
        if self._closed:
            return
        self._closed = True
        self._reading = self._writing = False
        try:
            self._release_watchers()    # before the fd goes away (it may be reused at once)
        except Exception:
            log.debug("releasing the watchers of %r failed", self, exc_info=True)
        self._wbuf = _NO_BUFFER
        sock = self.sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _lost(self, exc):
        self._close_socket()
        self._report_lost(exc)

    def _report_lost(self, exc):
        if self._done:
            return
        self._done = True
        try:
            self._protocol.connection_lost(exc)
        except Exception:
            log.exception("connection_lost of %r raised", self._protocol)

    def abandon(self):
        """After fork, in the child: stop our watchers but leave the socket (the parent's)
        alone; the protocol gets no more calls."""
        self._done = True
        if not self._closed:
            self._closed = True
            try:
                self._release_watchers()
            except Exception:
                log.debug("releasing the watchers of %r after fork failed", self, exc_info=True)

    def __repr__(self):
        fd = self.sock.fileno() if self.sock is not None and not self._closed else -1
        return "<%s fd=%d%s>" % (type(self).__name__, fd, " closed" if self._closed else "")
