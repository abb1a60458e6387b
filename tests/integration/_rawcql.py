"""A minimal blocking CQL client for the simulated cluster's tests: raw frames on a socket.

It deliberately shares nothing with the driver's connection code (only the core codecs for
frames, segments and primitives), so the server's tests do not depend on the client under
construction.
"""

import select
import socket
import struct

from cqlreactor.core import wire
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.frames import FrameDecoder, encode_frame
from cqlreactor.core.segments import SegmentDecoder, SegmentEncoder

OPTIONS, STARTUP, READY, AUTHENTICATE, SUPPORTED = 0x05, 0x01, 0x02, 0x03, 0x06
QUERY, RESULT, PREPARE, EXECUTE, REGISTER, EVENT, BATCH = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
ERROR, AUTH_RESPONSE, AUTH_SUCCESS = 0x00, 0x0F, 0x10


class Closed(Exception):
    """The server closed the connection."""


def query_body(text, consistency=1, version=4, values=None):
    flags = 0x01 if values else 0
    params = struct.pack(">H", consistency)
    params += struct.pack(">I", flags) if version >= 5 else struct.pack(">B", flags)
    if values:
        params += struct.pack(">H", len(values)) + b"".join(wire.write_bytes(v) for v in values)
    return wire.write_long_string(text) + params


def error_of(frame):
    """(code, message) of an ERROR frame."""
    assert frame.opcode == ERROR, "expected ERROR, got opcode 0x%02X" % frame.opcode
    code = struct.unpack_from(">i", frame.body, 0)[0]
    message, _ = wire.read_string(frame.body, 4)
    return code, message


class RawClient(object):
    def __init__(self, host, port, version=4, timeout=5.0, ssl_context=None,
                 server_hostname=None):
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        self.sock = sock
        self.version = version
        self.timeout = timeout
        self.compressor = None
        self.segments = False
        self.frames = FrameDecoder(versions=(1, 2, 3, 4, 5, 6))
        self.seg_decoder = None
        self.seg_encoder = None
        self.next_stream = 1
        self.pending = []

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- sending -----------------------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def encode(self, opcode, body=b"", stream=None, version=None, flags=0):
        if stream is None:
            stream = self.next_stream
            self.next_stream = (self.next_stream % 30000) + 1
        version = version or self.version
        frame = encode_frame(version, stream, opcode, body, flags=flags,
                             compressor=self.compressor if version < 5 else None)
        return stream, frame

    def send(self, opcode, body=b"", stream=None, version=None, flags=0):
        stream, frame = self.encode(opcode, body, stream, version, flags)
        if self.segments:
            frame = self.seg_encoder.encode([frame])
        self.send_raw(frame)
        return stream

    # --- receiving ---------------------------------------------------------------------------

    def _feed(self, timeout):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise socket.timeout("no answer within %.1f s" % (timeout,))
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed("server closed the connection")
        if self.segments:
            self.seg_decoder.add_data(data)
            for payload in self.seg_decoder:
                self.frames.add_data(payload)
        else:
            self.frames.add_data(data)

    def recv(self, timeout=None):
        """The next frame (events included)."""
        timeout = self.timeout if timeout is None else timeout
        if self.pending:
            return self.pending.pop(0)
        while True:
            for frame in self.frames:
                return frame
            self._feed(timeout)

    def response(self, stream, timeout=None):
        """The answer to ``stream``; other frames (events) are kept for recv()."""
        for i, frame in enumerate(self.pending):
            if frame.stream == stream:
                return self.pending.pop(i)
        timeout = self.timeout if timeout is None else timeout
        while True:
            for frame in self.frames:
                if frame.stream == stream:
                    return frame
                self.pending.append(frame)
            self._feed(timeout)

    def request(self, opcode, body=b"", timeout=None, **kw):
        return self.response(self.send(opcode, body, **kw), timeout)

    def is_closed(self, timeout=2.0):
        """True when the server closes the connection within ``timeout`` (frames dropped)."""
        try:
            while True:
                self._feed(timeout)
                list(self.frames)
        except Closed:
            return True
        except socket.timeout:
            return False
        except Exception:
            return True

    # --- conversations -----------------------------------------------------------------------

    def startup(self, compression=None, credentials=None):
        """OPTIONS, STARTUP (+ SASL PLAIN).  Returns the last frame.

        Like Cassandra 4 and cassandra-driver, compression and (v5) segments start right after
        the answer to STARTUP, READY or AUTHENTICATE alike.
        """
        self.request(OPTIONS)
        options = {"CQL_VERSION": "3.0.0"}
        if compression:
            options["COMPRESSION"] = compression
        frame = self.request(STARTUP, wire.write_string_map(options))
        if frame.opcode in (READY, AUTHENTICATE):
            self._switch(compression)
        if frame.opcode == AUTHENTICATE:
            user, password = credentials or ("", "")
            token = b"\x00" + user.encode() + b"\x00" + password.encode()
            frame = self.request(AUTH_RESPONSE, wire.write_bytes(token))
        return frame

    def _switch(self, compression):
        if compression:
            self.compressor = available_compressors()[compression]
            self.frames.compressor = self.compressor
        if self.version >= 5:
            seg_compressor = self.compressor
            self.compressor = None
            self.frames.compressor = None
            self.seg_decoder = SegmentDecoder(seg_compressor)
            self.seg_encoder = SegmentEncoder(seg_compressor)
            self.segments = True
            leftover = self.frames._buf[self.frames._pos:]
            if leftover:
                del self.frames._buf[self.frames._pos:]
                self.seg_decoder.add_data(bytes(leftover))

    def query(self, text, consistency=1, values=None, timeout=None):
        return self.request(QUERY, query_body(text, consistency, self.version, values),
                            timeout=timeout)

    def register(self, events=("STATUS_CHANGE", "TOPOLOGY_CHANGE", "SCHEMA_CHANGE")):
        return self.request(REGISTER, wire.write_string_list(list(events)))
