"""The fake Astra's SNI proxy: it reads the ClientHello's server name without terminating TLS
and pipes the connection to the node whose host id it names."""

import select
import socket

from cqlreactor.testing.astra.loopback import LoopbackServer, shutdown_close

__all__ = ["SniProxy", "sni_from_client_hello", "NeedMoreData"]

_READ = 65536


# --- ClientHello SNI parsing ----------------------------------------------------------------

class NeedMoreData(Exception):
    """The bytes so far are a valid prefix of a ClientHello; read more."""


def _u16(b, i):
    return (b[i] << 8) | b[i + 1]


def sni_from_client_hello(data):
    """The server name from the TLS ClientHello at the start of ``data``.

    Handles a ClientHello split over several TLS records.  Does not consume anything: the
    caller forwards ``data`` unchanged.

    Returns:
        the host name (str), or None when the ClientHello has no server_name extension.

    Raises:
        NeedMoreData: ``data`` is an incomplete ClientHello.
        ValueError: ``data`` is not a TLS ClientHello.
    """
    data = bytes(data)
    handshake = b""
    pos = 0
    # gather handshake-record payloads until the whole handshake message is there
    while True:
        if len(data) < pos + 5:
            raise NeedMoreData()
        ctype, major, length = data[pos], data[pos + 1], _u16(data, pos + 3)
        if ctype != 0x16 or major != 3:
            raise ValueError("not a TLS handshake record (first bytes %r)" % data[pos:pos + 5])
        if length == 0 or length > 16384 + 2048:
            raise ValueError("bad TLS record length %d" % length)
        if len(data) < pos + 5 + length:
            raise NeedMoreData()
        handshake += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != 0x01:
                raise ValueError("first handshake message is not a ClientHello (type %d)"
                                 % handshake[0])
            hs_len = (handshake[1] << 16) | (handshake[2] << 8) | handshake[3]
            if len(handshake) >= 4 + hs_len:
                body = handshake[4:4 + hs_len]
                break
    try:
        return _sni_from_hello_body(body)
    except IndexError:
        raise ValueError("truncated ClientHello")


def _sni_from_hello_body(b):
    i = 2 + 32                                   # client_version, random
    i += 1 + b[i]                                # session id
    i += 2 + _u16(b, i)                          # cipher suites
    i += 1 + b[i]                                # compression methods
    if i >= len(b):
        return None                              # no extensions at all
    end = i + 2 + _u16(b, i)
    i += 2
    if end > len(b):
        raise ValueError("extensions overrun the ClientHello")
    while i + 4 <= end:
        ext_type, ext_len = _u16(b, i), _u16(b, i + 2)
        i += 4
        if ext_type == 0:                        # server_name
            j = i + 2
            list_end = j + _u16(b, i)
            while j + 3 <= list_end:
                name_type, name_len = b[j], _u16(b, j + 1)
                j += 3
                if name_type == 0:
                    return b[j:j + name_len].decode("ascii")
                j += name_len
            return None
        i += ext_len
    return None


# --- the SNI proxy --------------------------------------------------------------------------

class SniProxy(LoopbackServer):
    """A loopback TCP proxy that routes each TLS connection by its SNI name.

    Args:
        route: callable(server_name) -> (address, port) or None (unknown name: closed).
        host: the address to listen on.
        port: 0 for any free port.

    ``mode``: "ok", "refuse" (stop listening: clients get connection refused) or "close"
    (accept and close at once).  ``routed`` counts connections per server name.
    """

    MODES = ("ok", "refuse", "close")
    OFF_MODE = "refuse"
    NAME = "fake-astra-sni-proxy"
    BACKLOG = 128

    def __init__(self, route, host="127.0.0.1", port=0):
        super(SniProxy, self).__init__(host, port)
        self.route = route
        self.routed = {}
        self.unroutable = []
        self._conns = set()

    def _serve(self, client):
        upstream = None
        with self._lock:
            self._conns.add(client)
        try:
            client.settimeout(10)
            data = b""
            name = None
            while True:
                chunk = client.recv(_READ)
                if not chunk:
                    return
                data += chunk
                try:
                    name = sni_from_client_hello(data)
                    break
                except NeedMoreData:
                    continue
                except ValueError:
                    self.unroutable.append(None)
                    return
            target = self.route(name) if name else None
            if target is None:
                self.unroutable.append(name)
                return
            upstream = socket.create_connection(target, timeout=10)
            with self._lock:
                self._conns.add(upstream)
                self.routed[name] = self.routed.get(name, 0) + 1
            upstream.sendall(data)
            _pipe(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            for s in (client, upstream):
                if s is not None:
                    shutdown_close(s)

    def close(self):
        super(SniProxy, self).close()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            shutdown_close(s)


def _pipe(a, b):
    """Copy bytes both ways until both sides are done (half-closes propagated)."""
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    open_reads = [a, b]
    while open_reads:
        try:
            readable, _, _ = select.select(open_reads, [], [], 1.0)
        except (OSError, ValueError):
            return
        for s in readable:
            try:
                chunk = s.recv(_READ)
            except OSError:
                chunk = b""
            if chunk:
                try:
                    peers[s].sendall(chunk)
                except OSError:
                    return
            else:
                open_reads.remove(s)
                try:
                    peers[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
