"""``python -m cqlreactor selfcheck``: drive the sans-IO core end to end, in memory.

A client :class:`~cqlreactor.core.connection.Connection` talks to :class:`MemoryServer`, a tiny
CQL server built from the same core messages, frames and segments (no sockets, no threads, no
clock).  The run covers the v5 handshake with segments, lz4 when installed, SASL PLAIN auth, a
QUERY returning rows, a request timeout and its orphaned stream id, and the fall back to v4
through ProtocolVersionRejected.  The unit tests use MemoryServer too.
"""

import struct
import sys

from .core import messages as m
from .core.auth import PlainTextAuthProvider
from .core.compression import available_compressors
from .core.connection import Connection
from .core.events import (ConnectionReady, ProtocolVersionRejected, RequestFailed,
                          ResponseReceived)
from .core.errors import OperationTimedOut
from .core.frames import FLAG_USE_BETA, HEADER_LENGTH, FrameDecoder
from .core.segments import SegmentDecoder, SegmentEncoder

__all__ = ["MemoryServer", "pump", "run"]

PASSWORD_AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
_length_at = struct.Struct(">i").unpack_from


class MemoryServer(object):
    """A small in-memory CQL server for one client connection.

    Args:
        versions: protocol versions it speaks.
        beta_versions: versions it speaks only with the USE_BETA flag.
        credentials: (username, password) to demand SASL PLAIN auth, or None.
        compression: the COMPRESSION names it offers in SUPPORTED.
        legacy_rejection: reject versions the way Cassandra 2.x/3.0 did (no version list).
        challenge: send one AUTH_CHALLENGE before AUTH_SUCCESS.
        columns: [(name, cql type text)] of the table every SELECT reads.
        rows: the rows every SELECT returns.

    Attributes:
        requests: every (stream, message) received after the handshake.
        startup_options: the client's STARTUP options.
        held: queries (text) that get no answer until ``release()``.
    """

    def __init__(self, versions=(3, 4, 5), beta_versions=(), credentials=None,
                 compression=("lz4", "snappy"), legacy_rejection=False, challenge=False,
                 columns=(("k", "int"), ("v", "text")), rows=((1, "one"), (2, "two"))):
        from .core.types import parse_cql_type
        self.versions = tuple(versions)
        self.beta_versions = tuple(beta_versions)
        self.credentials = credentials
        self.compression = list(compression)
        self.legacy_rejection = legacy_rejection
        self.challenge = challenge
        self.columns = [("ks", "t", name, parse_cql_type(kind)) for name, kind in columns]
        self.rows = [tuple(r) for r in rows]
        self.requests = []
        self.startup_options = None
        self.held = set()
        self.version = None
        self.framed = False         # past our answer to STARTUP (v5: segments from here on)
        self.ready = False          # handshake (and auth) done
        self.closed = False
        self._held_streams = []
        self._compressor = None
        self._buf = bytearray()
        self._out = []
        self._pre = b""             # bare envelopes queued before v5 segments started
        self._frames = None
        self._seg_decoder = None
        self._seg_encoder = None
        self._challenged = False

    # --- bytes in, bytes out ------------------------------------------------------------------

    def receive_data(self, data):
        if self.closed:
            return
        if self.framed:
            self._receive_framed(data)
            return
        buf = self._buf
        buf += data
        while not self.framed and not self.closed and len(buf) >= HEADER_LENGTH:
            end = HEADER_LENGTH + _length_at(buf, 5)[0]
            if len(buf) < end:
                return
            raw = bytes(buf[:end])
            del buf[:end]
            self._raw_frame(raw)
        if self.framed and buf:
            rest = bytes(buf)
            del buf[:]
            self._receive_framed(rest)

    def data_to_send(self):
        pre, self._pre = self._pre, b""
        out, self._out = self._out, []
        if not out:
            return pre
        if self._seg_encoder is not None:
            return pre + self._seg_encoder.encode(out)
        return pre + b"".join(out)

    # --- handshake ----------------------------------------------------------------------------

    def _raw_frame(self, raw):
        version, flags, stream = raw[0] & 0x7F, raw[1], struct.unpack(">h", raw[2:4])[0]
        usable = version in self.versions or (
            version in self.beta_versions and flags & FLAG_USE_BETA)
        if not usable:
            return self._reject(version, flags, stream)
        self.version = version
        decoder = FrameDecoder(compressor=self._compressor if version < 5 else None)
        decoder.add_data(raw)
        frame = next(decoder)
        self._handshake(frame.stream, m.decode_message(frame, version))

    def _handshake(self, stream, message):
        if isinstance(message, m.OptionsMessage):
            self._send(stream, m.SupportedMessage({
                "CQL_VERSION": ["3.4.5"], "COMPRESSION": list(self.compression),
                "PROTOCOL_VERSIONS": ["%d/v%d" % (v, v) for v in self.versions]}))
        elif isinstance(message, m.StartupMessage):
            self.startup_options = dict(message.options)
            name = self.startup_options.get("COMPRESSION")
            if name:
                self._compressor = available_compressors()[name]
            if self.credentials is None:
                self._send(stream, m.ReadyMessage(), compress=True)
                self.ready = True
            else:
                self._send(stream, m.AuthenticateMessage(PASSWORD_AUTHENTICATOR), compress=True)
            # like Cassandra 4: the answer to STARTUP is the last bare envelope
            self._switch_framing()
        elif isinstance(message, m.AuthResponseMessage):
            if self.challenge and not self._challenged:
                self._challenged = True
                self._send(stream, m.AuthChallengeMessage(b"PLAIN-START"), compress=True)
                return
            user, password = self.credentials
            expected = b"\x00" + user.encode() + b"\x00" + password.encode()
            if message.token == expected:
                self._send(stream, m.AuthSuccessMessage(None), compress=True)
                self.ready = True
            else:
                self._send(stream, m.ErrorMessage(0x0100, "Provided username %s and/or password "
                                                  "are incorrect" % (user,)), compress=True)
                self.closed = True
        else:
            self._send(stream, m.ErrorMessage(0x000A, "Unexpected message %s, expecting STARTUP "
                                              "or OPTIONS" % (type(message).__name__,)))
            self.closed = True

    def _reject(self, version, flags, stream):
        speaks = max(self.versions)
        if version in self.beta_versions:
            text = ("Beta version of the protocol used (%d/v%d-beta), but USE_BETA flag is unset"
                    % (version, version))
        elif self.legacy_rejection:
            text = "Invalid or unsupported protocol version: %d" % (version,)
        else:
            listed = ["%d/v%d" % (v, v) for v in self.versions] + [
                "%d/v%d-beta" % (v, v) for v in self.beta_versions]
            text = ("Invalid or unsupported protocol version (%d); supported versions are (%s)"
                    % (version, ", ".join(listed)))
        self._out.append(m.encode_message(m.ErrorMessage(0x000A, text), stream, speaks,
                                          is_response=True))
        self.closed = True

    def _switch_framing(self):
        self.framed = True
        lz4 = self._compressor if (self._compressor is not None
                                   and self._compressor.name == "lz4") else None
        if self.version >= 5:
            # the READY / AUTHENTICATE envelope already queued goes out bare
            self._pre = b"".join(self._out)
            self._out = []
            self._seg_decoder = SegmentDecoder(lz4)
            self._seg_encoder = SegmentEncoder(lz4)
            self._frames = FrameDecoder(versions=(self.version,))
        else:
            self._frames = FrameDecoder(compressor=self._compressor, versions=(self.version,))

    # --- requests -----------------------------------------------------------------------------

    def _receive_framed(self, data):
        if self._seg_decoder is not None:
            self._seg_decoder.add_data(data)
            for payload in self._seg_decoder:
                self._frames.add_data(payload)
        else:
            self._frames.add_data(data)
        for frame in self._frames:
            message = m.decode_message(frame, self.version)
            if not self.ready:
                self._handshake(frame.stream, message)
                continue
            self.requests.append((frame.stream, message))
            self._answer(frame.stream, message)

    def _answer(self, stream, message):
        if isinstance(message, m.OptionsMessage):
            self._send(stream, m.SupportedMessage({"CQL_VERSION": ["3.4.5"]}), compress=True)
        elif isinstance(message, m.QueryMessage):
            if message.query in self.held:
                self._held_streams.append(stream)
                return
            self._send(stream, self._result(message.query), compress=True)
        else:
            self._send(stream, m.ErrorMessage(0x2200, "unsupported in MemoryServer: %s"
                                              % (type(message).__name__,)), compress=True)

    def _result(self, query):
        if query.strip().lower().startswith("select"):
            return m.RowsResult(self.columns, list(self.rows))
        return m.VoidResult()

    def release(self):
        """Answer every held query now (late answers)."""
        streams, self._held_streams = self._held_streams, []
        for stream in streams:
            self._send(stream, self._result("select"), compress=True)

    def push_event(self, event):
        """Send an EVENT message on stream -1."""
        self._send(-1, event, compress=True)

    def send_raw(self, data):
        """Queue bytes as they are (to test malformed input)."""
        self._out.append(data)

    def _send(self, stream, message, compress=False):
        compressor = self._compressor if compress and self.version < 5 else None
        self._out.append(m.encode_message(message, stream, self.version, compressor=compressor,
                                          is_response=True))



def pump(client, server, max_rounds=20):
    """Move bytes both ways until neither side has anything to send; return client events."""
    events = []
    for _ in range(max_rounds):
        out = client.data_to_send()
        if out:
            server.receive_data(out)
        back = server.data_to_send()
        if back:
            events.extend(client.receive_data(back))
        if not out and not back:
            break
    return events


# --- the self check -------------------------------------------------------------------------------

class _Report(object):
    def __init__(self, verbose):
        self.verbose = verbose
        self.failures = 0

    def check(self, label, ok, detail=""):
        if not ok:
            self.failures += 1
        if self.verbose:
            print("%-4s %s%s" % ("ok" if ok else "FAIL", label, (": " + detail) if detail else ""))
        return ok


def _connect(version, server, auth, compression):
    client = Connection(host="memory:9042", protocol_version=version, authenticator=auth,
                        compression=compression)
    client.initiate()
    return client, pump(client, server)


def _check_v5(report, compression):
    server = MemoryServer(versions=(3, 4, 5), credentials=("cassandra", "secret"))
    client, events = _connect(5, server, PlainTextAuthProvider("cassandra", "secret"),
                              compression)
    ready = [e for e in events if isinstance(e, ConnectionReady)]
    report.check("v5 handshake with auth%s" % (" and lz4" if compression else ""),
                 bool(ready) and client.is_ready,
                 "compression=%s, state=%s" % (client.compression, client.state.name))
    if not client.is_ready:
        return
    query = m.QueryMessage("SELECT k, v FROM ks.t", m.QueryParameters(consistency=1))
    stream = client.send_request(query, deadline=10.0)
    events = pump(client, server)
    rows = [e.message.rows for e in events if isinstance(e, ResponseReceived)]
    report.check("v5 QUERY returns rows in segments", rows == [[(1, "one"), (2, "two")]],
                 "stream %d, rows %r" % (stream, rows))

    server.held.add("SELECT slow")
    slow = client.send_request(m.QueryMessage("SELECT slow", m.QueryParameters(consistency=1)),
                               deadline=20.0)
    pump(client, server)
    deadline = client.next_deadline()
    events = client.handle_timeout(20.0)
    timed_out = [e for e in events if isinstance(e, RequestFailed)
                 and isinstance(e.error, OperationTimedOut) and e.stream_id == slow]
    report.check("request timeout fails the request once", deadline == 20.0 and len(timed_out) == 1,
                 str(timed_out[0].error) if timed_out else repr(events))
    report.check("timed-out stream id is kept as an orphan", client.orphaned == 1)
    server.release()
    late = pump(client, server)
    report.check("late answer is dropped and frees the id", late == [] and client.orphaned == 0)


def _check_v4_fallback(report):
    server = MemoryServer(versions=(3, 4))
    client, events = _connect(5, server, None, None)
    rejected = [e for e in events if isinstance(e, ProtocolVersionRejected)]
    report.check("v5 refused by a v4 server -> ProtocolVersionRejected(retry 4)",
                 len(rejected) == 1 and rejected[0].retry_version == 4 and client.is_defunct,
                 rejected[0].error.server_message if rejected else repr(events))
    if not rejected:
        return
    server = MemoryServer(versions=(3, 4))
    client, events = _connect(rejected[0].retry_version, server, None, "lz4" if
                              "lz4" in available_compressors() else None)
    report.check("v4 handshake on a new connection", client.is_ready,
                 "compression=%s" % (client.compression,))
    if client.is_ready:
        client.send_request(m.QueryMessage("SELECT k FROM ks.t", m.QueryParameters(consistency=1)))
        events = pump(client, server)
        report.check("v4 QUERY returns rows",
                     [e.message.rows for e in events if isinstance(e, ResponseReceived)]
                     == [[(1, "one"), (2, "two")]])


def run(verbose=True):
    """Run the in-memory self check; print a short report when ``verbose``.

    Returns:
        0 when every check passed, 1 otherwise.
    """
    report = _Report(verbose)
    lz4 = "lz4" if "lz4" in available_compressors() else None
    try:
        _check_v5(report, lz4)
        _check_v4_fallback(report)
    except Exception as exc:  # a crash is a failed check, reported, not a traceback
        report.check("selfcheck ran to the end", False, repr(exc))
    if verbose:
        print("selfcheck: %s" % ("all checks passed" if not report.failures
                                 else "%d check(s) FAILED" % report.failures))
    return 1 if report.failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
