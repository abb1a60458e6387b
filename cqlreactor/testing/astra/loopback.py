"""The listener the fake Astra's SNI proxy and metadata service share: loopback, an accept
thread, and a ``mode`` knob for fault tests."""

import socket
import threading

__all__ = ["LoopbackServer", "shutdown_close"]


class LoopbackServer(object):
    """A listener on loopback with an accept thread and a ``mode`` knob for fault tests.

    Subclasses set ``MODES`` (the first is the normal one), ``OFF_MODE`` (the mode in which
    nothing listens: clients get connection refused), ``NAME`` (thread names) and ``BACKLOG``,
    and implement ``_serve(sock)``, which runs in its own thread per accepted connection.
    """

    MODES = ("ok",)
    OFF_MODE = None
    NAME = "fake-astra"
    BACKLOG = 32

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self._mode = self.MODES[0]
        self._listener = None
        self._thread = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def address(self):
        return (self.host, self.port)

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in self.MODES:
            raise ValueError("%s mode must be one of %s" % (self.NAME, ", ".join(self.MODES)))
        with self._lock:
            old, self._mode = self._mode, value
        if value == self.OFF_MODE and old != self.OFF_MODE:
            self._stop_listening()
        elif old == self.OFF_MODE and value != self.OFF_MODE:
            self._listen()

    def start(self):
        self._listen()
        return self

    def _listen(self):
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(self.BACKLOG)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._on_listen()
        self._thread = threading.Thread(target=self._accept_loop, args=(sock,),
                                        name=self.NAME, daemon=True)
        self._thread.start()

    def _on_listen(self):
        """Hook: called when listening (again)."""

    def _on_stop_listening(self):
        """Hook: called before the listener closes."""

    def _stop_listening(self):
        sock, self._listener = self._listener, None
        self._on_stop_listening()
        if sock is not None:
            shutdown_close(sock)
        if self._thread is not None:
            self._thread.join(5)

    def _accept_loop(self, listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if self._closed or listener is not self._listener:
                conn.close()
                return
            if self._mode == "close":
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name=self.NAME + "-conn",
                             daemon=True).start()

    def _serve(self, sock):
        raise NotImplementedError

    def close(self):
        self._closed = True
        self._stop_listening()


def shutdown_close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
