"""A small real DNS server on loopback (UDP), for clients that resolve names by DNS query.

The Node.js driver resolves the Astra SNI proxy's name with ``dns.resolve4`` (c-ares: a DNS
query; /etc/hosts is not read), so the fake Astra's "localhost" resolves only where a DNS
server answers for it.  The test starts this server and the Node.js client points its own
resolver at it (``dns.setServers``): the driver's lookup really goes over DNS, answered
here.  Only what a client asks for a name is answered: A records from ``names``, no
records for other types of a known name (NOERROR, empty), NXDOMAIN for unknown names.
"""

import socket
import struct
import threading


class LoopbackDNS(object):
    """``LoopbackDNS({"localhost": "127.0.0.1"})``; ``.address`` is "127.0.0.1:port"."""

    def __init__(self, names):
        self.names = dict((k.lower().rstrip("."), v) for k, v in names.items())
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()       # the serving recvfrom raises OSError and the thread ends
        self._thread.join(5)

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            reply = self._answer(data)
            if reply is not None:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    return

    def _answer(self, data):
        if len(data) < 12:
            return None
        ident, flags, qdcount = struct.unpack(">HHH", data[:6])
        if qdcount != 1:
            return None
        pos, labels = 12, []
        while pos < len(data) and data[pos]:
            length = data[pos]
            labels.append(data[pos + 1:pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        pos += 1
        if pos + 4 > len(data):
            return None
        qtype, qclass = struct.unpack(">HH", data[pos:pos + 4])
        question = data[12:pos + 4]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        address = self.names.get(name)
        rd = flags & 0x0100
        answers = b""
        if address is None:
            rcode, ancount = 3, 0                           # NXDOMAIN
        elif qtype == 1 and qclass == 1:                    # A, IN
            rcode, ancount = 0, 1
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
        else:
            rcode, ancount = 0, 0                           # the name has no such record
        head = struct.pack(">HHHHHH", ident, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1,
                           ancount, 0, 0)
        return head + question + answers
