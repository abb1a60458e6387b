"""Fuzz targets for every decoder of the core: ``TARGETS[name](data)`` for any ``bytes``.

A target returns normally when the decoder accepted the bytes or refused them the documented
way (ProtocolError; ValueError for the CQL/marshal type text parsers, whose input is not the
peer's bytes but documents ValueError); anything else escapes, and the fuzzer reports it.
A ProtocolError that only wraps another exception (the decoders' safety nets turn a bug-shaped
failure on hostile bytes into one) escapes too, as :class:`WrappedBug`: the fuzzer's job is to
find what reaches the net.

The first bytes choose the target's parameters (protocol version, compression, how the input
is split into reads, which type or opcode), the rest is the input; so the same targets serve
hypothesis (tests/unit/test_fuzz_decoders.py) and atheris (fuzz/atheris_decoders.py).
"""

import collections
import struct

from cqlreactor.core import messages as m
from cqlreactor.core import types as T
from cqlreactor.core import wire
from cqlreactor.core.auth import PlainTextAuthenticator
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.connection import Connection
from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.events import ConnectionFailed, RequestFailed
from cqlreactor.core.frames import Frame, FrameDecoder, pack_header
from cqlreactor.core.framing import CLIENT, Framing
from cqlreactor.core.segments import SegmentDecoder

__all__ = ["TARGETS", "WrappedBug", "run", "CONNECTION_STATES"]

_LZ4 = available_compressors().get("lz4")
_VERSIONS = (3, 4, 5)


class WrappedBug(AssertionError):
    """A decoder's safety net caught a non-protocol exception: a decoder bug to fix."""


# What the decoders translate into ProtocolError by design: the fast paths let struct report a
# short buffer and the codecs bad text or numbers. Anything else under a ProtocolError (a
# TypeError, KeyError, AttributeError, RecursionError …) reached a safety net: a bug.
_TRANSLATED = (ProtocolError, struct.error, ValueError, IndexError, OverflowError)


def _bug_under(exc):
    inner = exc.__cause__ or exc.__context__
    if inner is not None and not isinstance(inner, _TRANSLATED):
        return inner
    return None


def _unwrapped(exc):
    """Raise WrappedBug when ``exc`` (a ProtocolError) was made from a bug-shaped exception."""
    inner = _bug_under(exc)
    if inner is not None:
        raise WrappedBug("%s wraps %s: %r" % (type(exc).__name__, type(inner).__name__, inner))


def _param(data, i, default=0):
    return data[i] if len(data) > i else default


def _chunks(data, step):
    step = step or len(data) or 1
    for i in range(0, len(data), step):
        yield data[i:i + step]


# --- framing --------------------------------------------------------------------------------

def fuzz_frames(data):
    compressor = _LZ4 if _param(data, 0) & 1 else None
    versions = _VERSIONS[_param(data, 0) >> 1 & 1:]
    raw_mode = _param(data, 0) & 4
    decoder = FrameDecoder(max_frame_size=1 << 20, compressor=compressor, versions=versions)
    try:
        for chunk in _chunks(data[2:], _param(data, 1)):
            decoder.add_data(chunk)
            for _ in (decoder.raw() if raw_mode else decoder):
                pass
    except ProtocolError as exc:
        _unwrapped(exc)


def fuzz_segments(data):
    compressor = _LZ4 if _param(data, 0) & 1 else None
    decoder = SegmentDecoder(compressor)
    try:
        for chunk in _chunks(data[2:], _param(data, 1)):
            decoder.add_data(chunk)
            for _ in decoder:
                pass
    except ProtocolError as exc:
        _unwrapped(exc)


def fuzz_framing(data):
    version = _VERSIONS[_param(data, 0) % 3]
    framing = Framing(CLIENT, version, max_frame_size=1 << 20)
    if _param(data, 0) & 4:         # STARTUP sent (v5: segments follow the answer)
        framing.startup(_LZ4 if (_param(data, 0) & 8 and _LZ4) else None)
    try:
        for chunk in _chunks(data[2:], _param(data, 1)):
            for _ in framing.receive_data(chunk):
                pass
    except ProtocolError as exc:
        _unwrapped(exc)


# --- messages -------------------------------------------------------------------------------

_OPCODES = sorted(m.OPCODES)


def fuzz_messages(data):
    version = _VERSIONS[_param(data, 0) % 3]
    opcode = _OPCODES[_param(data, 1) % len(_OPCODES)]
    flags = _param(data, 2) & 0x0F
    frame = Frame(version, flags, 0, opcode, bytes(data[3:]), bool(_param(data, 0) & 8))
    try:
        m.decode_message(frame, version)
    except ProtocolError as exc:
        _unwrapped(exc)


# --- types and rows -------------------------------------------------------------------------

def _types():
    natives = list(T.NATIVE_TYPES)
    udt = T.UserType("ks", "a \"quoted\" name", [("f", T.INT), ("class", T.TEXT)], frozen=True)
    complex_types = [
        T.ListType(T.INT), T.SetType(T.TEXT), T.MapType(T.TEXT, T.BIGINT),
        T.MapType(T.ListType(T.INT, frozen=True), T.INT), T.TupleType([T.INT, T.TEXT, T.UUID]),
        udt, T.ListType(udt), T.VectorType(T.FLOAT, 3), T.VectorType(T.TEXT, 2),
        T.CustomType("org.example.Weird\x00Type"), T.MapType(T.TEXT, T.SetType(T.DECIMAL)),
    ]
    return natives + complex_types


TYPES = _types()


def fuzz_type_values(data):
    ctype = TYPES[_param(data, 0) % len(TYPES)]
    try:
        ctype.deserialize(bytes(data[1:]), 4)
    except ProtocolError as exc:
        _unwrapped(exc)


def fuzz_type_options(data):
    try:
        ctype, _ = T.read_type_option(bytes(data), 0)
        T.make_row_decoder([ctype], 4)
    except ProtocolError as exc:
        _unwrapped(exc)


def fuzz_type_text(data):
    text = bytes(data).decode("utf-8", "replace")
    for parse in (T.lookup_casstype, T.parse_cql_type):
        try:
            parse(text)
        except ValueError:      # documented for both
            pass


def fuzz_rows(data):
    count = 1 + _param(data, 0) % 4
    col_types = [TYPES[_param(data, 1 + i) % len(TYPES)] for i in range(count)]
    rows = _param(data, 5) % 8
    try:
        decoder = T.make_row_decoder(col_types, 4)
        decoder(bytes(data[6:]), 0, rows)
    except ProtocolError as exc:
        _unwrapped(exc)


def fuzz_wire(data):
    buf = bytes(data[1:])
    readers = [getattr(wire, name) for name in wire.__all__ if name.startswith("read_")]
    reader = readers[_param(data, 0) % len(readers)]
    try:
        reader(buf, 0)
    except ProtocolError as exc:
        _unwrapped(exc)


# --- a connection in every state ------------------------------------------------------------

#: every state a connection rests in (CLOSING lasts only inside close()), and READY with an
#: orphaned stream (a request that timed out: its late answer must be recognised)
CONNECTION_STATES = ["IDLE", "OPTIONS_SENT", "STARTUP_SENT", "AUTHENTICATING", "READY",
                     "READY_WITH_ORPHAN", "CLOSED", "DEFUNCT"]


def _answer(message, version, stream=0):
    return m.encode_message(message, stream, version, is_response=True)


def connection_in(state, version=4, compression=None):
    """A core Connection brought to ``state`` (a name of CONNECTION_STATES) by a scripted
    server; READY with two requests in flight."""
    conn = Connection(host="fuzz:9042", protocol_version=version, compression=compression,
                      authenticator=PlainTextAuthenticator("u", "p"))
    if state == "IDLE":
        return conn
    conn.initiate()
    conn.data_to_send()
    if state == "OPTIONS_SENT":
        return conn
    options = {"COMPRESSION": ["lz4"]} if compression else {}
    conn.receive_data(_answer(m.SupportedMessage(options), version))
    conn.data_to_send()
    if state == "STARTUP_SENT":
        return conn
    if state == "AUTHENTICATING":
        conn.receive_data(_answer(m.AuthenticateMessage("PasswordAuthenticator"), version))
        conn.data_to_send()
        return conn
    conn.receive_data(_answer(m.ReadyMessage(), version))
    for _ in range(2):
        conn.send_request(m.QueryMessage("SELECT 1", m.QueryParameters(consistency=1)))
    conn.data_to_send()
    if state == "READY":
        return conn
    if state == "READY_WITH_ORPHAN":
        conn.send_request(m.QueryMessage("SELECT 2", m.QueryParameters(consistency=1)),
                          deadline=1.0)
        conn.data_to_send()
        conn.handle_timeout(2.0)
        return conn
    if state == "CLOSED":
        conn.close()
        return conn
    if state == "DEFUNCT":
        conn.connection_lost()
        return conn
    raise AssertionError(state)


def fuzz_connection(data):
    state = CONNECTION_STATES[_param(data, 0) % len(CONNECTION_STATES)]
    version = (4, 5)[_param(data, 1) & 1]
    compression = "lz4" if (_param(data, 1) & 2 and _LZ4) else None
    conn = connection_in(state, version, compression)
    payload = bytes(data[3:])
    if _param(data, 1) & 4 and payload:
        # a well-formed header around random bytes: the body decoders behind the connection
        # see them (on v5 after the switch the header still goes bare: a framing error then)
        opcode = _OPCODES[payload[0] % len(_OPCODES)]
        stream = (0, 1, -1, 2)[payload[0] >> 6]
        body = payload[1:]
        payload = pack_header(0x80 | version, 0, stream, opcode, len(body)) + body
    for chunk in _chunks(payload, _param(data, 2)):
        events = conn.receive_data(chunk)       # never raises
        for event in events:
            if isinstance(event, (ConnectionFailed, RequestFailed)):
                error = event.error
                cause = error.__cause__
                if isinstance(cause, ProtocolError):
                    cause = _bug_under(cause)
                if cause is not None and not isinstance(cause, _TRANSLATED):
                    raise WrappedBug("connection in %s failed on %s: %r" % (
                        state, type(cause).__name__, cause))
        conn.data_to_send()


TARGETS = collections.OrderedDict([
    ("frames", fuzz_frames),
    ("segments", fuzz_segments),
    ("framing", fuzz_framing),
    ("messages", fuzz_messages),
    ("type_values", fuzz_type_values),
    ("type_options", fuzz_type_options),
    ("type_text", fuzz_type_text),
    ("rows", fuzz_rows),
    ("wire", fuzz_wire),
    ("connection", fuzz_connection),
])


def run(data):
    """One input for every target: the first byte picks the target (atheris' entry point)."""
    if not data:
        return
    names = list(TARGETS)
    TARGETS[names[data[0] % len(names)]](data[1:])
