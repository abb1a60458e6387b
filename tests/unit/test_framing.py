"""core/framing.py: one framing object, client and server role, bare envelopes then segments."""

import io
import struct

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.connection import Connection
from cqlreactor.core.errors import (ChecksumMismatch, FrameTooLarge, IllegalStateTransition,
                                    ProtocolError, UnsupportedProtocolVersion)
from cqlreactor.core.events import ConnectionReady, ResponseReceived, ServerEventReceived
from cqlreactor.core.framing import CLIENT, SERVER, Framing, _SWITCHING_ANSWERS
from cqlreactor.core.frames import FLAG_COMPRESSION, FrameDecoder, encode_frame
from cqlreactor.core.segments import (MAX_SEGMENT_PAYLOAD, SegmentDecoder, SegmentEncoder,
                                      encode_segment)

COMPRESSORS = available_compressors()
LZ4 = COMPRESSORS.get("lz4")
SNAPPY = COMPRESSORS.get("snappy")
V5_COMPRESSORS = [None] + ([LZ4] if LZ4 else [])
V5_IDS = ["plain"] + (["lz4"] if LZ4 else [])

OPTIONS, STARTUP, READY, AUTHENTICATE, SUPPORTED, QUERY, RESULT, AUTH_RESPONSE = (
    0x05, 0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x0F)


def request(version, stream, opcode, body=b""):
    return encode_frame(version, stream, opcode, body)


def response(version, stream, opcode, body=b""):
    return encode_frame(version, stream, opcode, body, is_response=True)


def frames_of(framing, data):
    return [(f.stream, f.opcode, f.body) for f in framing.receive_data(data)]


def client_at_startup(version=5, compressor=None):
    """A client framing that has sent OPTIONS and STARTUP (the SUPPORTED answer read)."""
    client = Framing(CLIENT, version)
    client.send(request(version, 0, OPTIONS))
    assert client.data_to_send() == request(version, 0, OPTIONS)
    assert frames_of(client, response(version, 0, SUPPORTED, b"\x00\x00")) == [
        (0, SUPPORTED, b"\x00\x00")]
    client.send(request(version, 0, STARTUP, b"s"))
    client.startup(compressor)
    assert client.data_to_send() == request(version, 0, STARTUP, b"s")
    return client


def server_at_startup(version=5, compressor=None, extra=b""):
    """A server framing that has read OPTIONS and STARTUP (``extra`` arrives behind STARTUP)."""
    server = Framing(SERVER)
    assert server.version is None
    assert frames_of(server, request(version, 0, OPTIONS)) == [(0, OPTIONS, b"")]
    server.send(response(version, 0, SUPPORTED))
    assert server.data_to_send() == response(version, 0, SUPPORTED)
    frames = server.receive_data(request(version, 0, STARTUP, b"s") + extra)
    first = next(frames)
    assert first.opcode == STARTUP and server.version == version and not server.switched
    server.startup(compressor)
    return server, frames


def segments_of(data, compressor=None):
    decoder = SegmentDecoder(compressor)
    decoder.add_data(data)
    payloads = list(decoder)
    assert decoder.buffered == 0
    return payloads


def test_switching_opcodes_are_ready_and_authenticate():
    assert _SWITCHING_ANSWERS == {m.ReadyMessage.opcode, m.AuthenticateMessage.opcode}


# --- the client role ------------------------------------------------------------------------------

@pytest.mark.parametrize("compressor", V5_COMPRESSORS, ids=V5_IDS)
def test_client_switches_right_after_ready(compressor):
    client = client_at_startup(5, compressor)
    event = response(5, -1, 0x0C, b"event")
    after = SegmentEncoder(compressor).encode([event])
    frames = client.receive_data(response(5, 0, READY) + after)
    ready = next(frames)
    assert ready.opcode == READY and client.switched
    # the rest of the same chunk was decoded as segments
    assert [(f.stream, f.opcode, f.body) for f in frames] == [(-1, 0x0C, b"event")]
    client.send(request(5, 1, QUERY, b"q"))
    out = client.data_to_send()
    assert out[0] != 0x05 and segments_of(out, compressor) == [request(5, 1, QUERY, b"q")]


def test_client_switch_on_authenticate_with_the_next_bytes_in_the_same_chunk():
    client = client_at_startup(5)
    challenge = SegmentEncoder().encode([response(5, 0, 0x0E, b"c1"), response(5, 0, 0x0E, b"c2")])
    data = response(5, 0, AUTHENTICATE, b"auth") + challenge
    # cut anywhere: the same frames, and the switch at the same byte
    for cut in range(len(data) + 1):
        client = client_at_startup(5)
        got = frames_of(client, data[:cut]) + frames_of(client, data[cut:])
        assert got == [(0, AUTHENTICATE, b"auth"), (0, 0x0E, b"c1"), (0, 0x0E, b"c2")], cut
        assert client.switched


def test_client_envelopes_queued_before_the_switch_go_out_bare_and_first():
    client = client_at_startup(5)
    client.send(request(5, 0, AUTH_RESPONSE, b"early"))     # queued, not taken yet
    list(client.receive_data(response(5, 0, AUTHENTICATE)))
    client.send(request(5, 0, AUTH_RESPONSE, b"late"))
    bare = request(5, 0, AUTH_RESPONSE, b"early")
    out = client.data_to_send()
    assert out.startswith(bare)
    assert segments_of(out[len(bare):]) == [request(5, 0, AUTH_RESPONSE, b"late")]
    assert client.data_to_send() == b""


def test_an_error_answer_switches_nothing():
    client = client_at_startup(5)
    error = response(5, 0, 0x00, struct.pack(">iH", 0x000A, 2) + b"no")
    assert frames_of(client, error + response(5, 0, READY)) == [
        (0, 0x00, error[9:]), (0, READY, b"")]
    assert not client.switched      # READY here is not the answer to STARTUP any more


def test_ready_before_startup_switches_nothing():
    client = Framing(CLIENT, 5)
    assert frames_of(client, response(5, 0, READY)) == [(0, READY, b"")]
    assert not client.switched


def test_client_accepts_errors_in_other_versions_until_the_switch():
    client = Framing(CLIENT, 5)
    assert [f.version for f in client.receive_data(response(4, 0, 0x00, b"e"))] == [4]
    client = client_at_startup(4)
    list(client.receive_data(response(4, 0, READY)))
    with pytest.raises(UnsupportedProtocolVersion):
        list(client.receive_data(response(3, 1, RESULT)))


def test_the_hot_path_iterates_the_frame_decoder_itself():
    client = client_at_startup(5)
    list(client.receive_data(response(5, 0, READY)))
    frames = client.receive_data(SegmentEncoder().encode([response(5, 1, RESULT, b"r")]))
    assert type(frames) is FrameDecoder and iter(client) is frames
    assert [f.body for f in frames] == [b"r"]
    v4 = client_at_startup(4)
    list(v4.receive_data(response(4, 0, READY)))
    assert type(v4.receive_data(response(4, 1, RESULT))) is FrameDecoder


# --- the server role ------------------------------------------------------------------------------

@pytest.mark.parametrize("compressor", V5_COMPRESSORS, ids=V5_IDS)
def test_server_answer_to_startup_is_the_last_bare_envelope(compressor):
    server, frames = server_at_startup(5, compressor)
    assert list(frames) == []
    server.send(response(5, 0, READY))
    assert server.switched
    server.send(response(5, -1, 0x0C, b"ev"))
    out = server.data_to_send()
    bare = response(5, 0, READY)
    assert out[:len(bare)] == bare
    assert segments_of(out[len(bare):], compressor) == [response(5, -1, 0x0C, b"ev")]
    query = SegmentEncoder(compressor).encode([request(5, 7, QUERY, b"q")])
    assert frames_of(server, query) == [(7, QUERY, b"q")]


@pytest.mark.parametrize("version", [4, 5])
def test_server_raw_iteration_switches_like_frames(version):
    # the simulated server's fast path: raw items through the handshake and after it, the
    # queries pipelined behind STARTUP included (segments on v5)
    server = Framing(SERVER)
    assert list(server.raw()) == []
    queries = [request(version, s, QUERY, b"q") for s in (1, 2)]
    behind = SegmentEncoder().encode(queries) if version >= 5 else b"".join(queries)
    server.receive_data(request(version, 0, STARTUP, b"s") + behind)
    seen = []
    for stream, head in server.raw():
        seen.append((stream, head))
        if head[2] == STARTUP:
            server.startup()
            server.send(response(version, 0, READY))
    assert seen == [(0, (version, 0, STARTUP, b"s")), (1, (version, 0, QUERY, b"q")),
                    (2, (version, 0, QUERY, b"q"))]
    assert server.switched
    more = request(version, 3, QUERY, b"r")
    server.receive_data(SegmentEncoder().encode([more]) if version >= 5 else more)
    assert list(server.raw()) == [(3, (version, 0, QUERY, b"r"))]


def test_server_switch_on_authenticate_reads_the_bytes_behind_startup_as_segments():
    # a client that pipelined its AUTH_RESPONSE behind STARTUP (already in segments)
    extra = SegmentEncoder().encode([request(5, 0, AUTH_RESPONSE, b"token")])
    server, frames = server_at_startup(5, None, extra)
    server.send(response(5, 0, AUTHENTICATE, b"auth"))
    assert [(f.opcode, f.body) for f in frames] == [(AUTH_RESPONSE, b"token")]
    server.send(response(5, 0, 0x10, b"\xff\xff\xff\xff"))
    out = server.data_to_send()
    bare = response(5, 0, AUTHENTICATE, b"auth")
    assert out.startswith(bare)
    assert segments_of(out[len(bare):]) == [response(5, 0, 0x10, b"\xff\xff\xff\xff")]


def test_server_learns_the_version_and_answers_a_v6_startup():
    server = Framing(SERVER)
    frames = server.receive_data(request(6, 3, STARTUP, b"x"))
    with pytest.raises(UnsupportedProtocolVersion) as info:
        next(frames)
    assert info.value.requested == 6 and info.value.stream_id == 3
    with pytest.raises(UnsupportedProtocolVersion):       # sticky
        list(server)
    # the rejection goes out bare, in a version the server speaks
    server.send(response(5, 3, 0x00, b"err"))
    assert server.data_to_send() == response(5, 3, 0x00, b"err")
    assert not server.switched


def test_server_fixes_the_version_at_the_switch():
    server, _ = server_at_startup(4)
    server.send(response(4, 0, READY))
    with pytest.raises(UnsupportedProtocolVersion):
        list(server.receive_data(request(5, 1, QUERY)))


# --- both roles ---------------------------------------------------------------------------------

def pair(version, compressor=None):
    """A client and a server framing, past the switch, talking to each other."""
    client = Framing(CLIENT, version)
    server = Framing(SERVER)
    client.send(request(version, 0, STARTUP))
    client.startup(compressor)
    assert [f.opcode for f in server.receive_data(client.data_to_send())] == [STARTUP]
    server.startup(compressor)
    server.send(response(version, 0, READY))
    assert [f.opcode for f in client.receive_data(server.data_to_send())] == [READY]
    assert client.switched and server.switched
    return client, server


@pytest.mark.parametrize("compressor", V5_COMPRESSORS, ids=V5_IDS)
def test_segments_both_ways_coalesce_many_envelopes(compressor):
    client, server = pair(5, compressor)
    for stream in range(50):
        client.send(request(5, stream, QUERY, b"q%d" % stream))
    out = client.data_to_send()
    assert len(segments_of(out, compressor)) == 1           # one self-contained segment
    got = list(server.receive_data(out))
    assert [(f.stream, f.body) for f in got] == [(s, b"q%d" % s) for s in range(50)]
    for f in got:
        server.send(response(5, f.stream, RESULT, f.body))
    back = list(client.receive_data(server.data_to_send()))
    assert [(f.stream, f.body, f.is_response) for f in back] == [
        (s, b"q%d" % s, True) for s in range(50)]


@pytest.mark.parametrize("compressor", V5_COMPRESSORS, ids=V5_IDS)
def test_a_big_envelope_is_split_over_non_self_contained_segments(compressor):
    client, server = pair(5, compressor)
    body = bytes(range(256)) * 1500                          # 384000 bytes: 3 segments
    server.send(response(5, 1, RESULT, b"small"))
    server.send(response(5, 2, RESULT, body))
    server.send(response(5, 3, RESULT, b"after"))
    out = server.data_to_send()
    decoder = SegmentDecoder(compressor)
    decoder.add_data(out)
    sizes = [len(p) for p in decoder]
    assert len(sizes) == 5 and max(sizes) == MAX_SEGMENT_PAYLOAD
    for cut in (1, 6, 1000, MAX_SEGMENT_PAYLOAD + 3, len(out) - 1):
        client2, server2 = pair(5, compressor)
        got = frames_of(client2, out[:cut]) + frames_of(client2, out[cut:])
        assert got == [(1, RESULT, b"small"), (2, RESULT, body), (3, RESULT, b"after")]


@pytest.mark.skipif(LZ4 is None and SNAPPY is None, reason="no compressor installed")
@pytest.mark.parametrize("name", [n for n in ("lz4", "snappy") if n in COMPRESSORS])
def test_v4_compresses_after_the_answer_and_accepts_a_compressed_answer(name):
    compressor = COMPRESSORS[name]
    client, server = pair(4, compressor)
    client.send(request(4, 1, QUERY, b"q" * 100))
    out = client.data_to_send()
    assert out[1] & FLAG_COMPRESSION and out[0] == 4
    assert frames_of(server, out) == [(1, QUERY, b"q" * 100)]
    # the answer to STARTUP itself may come compressed (the spec allows it)
    client = client_at_startup(4, compressor)
    ready = encode_frame(4, 0, READY, b"", is_response=True, compressor=compressor)
    assert frames_of(client, ready) == [(0, READY, b"")] and client.switched
    # an envelope already compressed by its encoder is sent as it is
    done = encode_frame(4, 2, QUERY, b"x" * 50, compressor=compressor)
    client.send(done)
    assert client.data_to_send() == done


def test_v4_before_the_answer_nothing_is_compressed():
    server = Framing(SERVER)
    list(server.receive_data(request(4, 0, STARTUP)))
    server.startup(LZ4 or SNAPPY)
    server.send(response(4, 0, READY))
    assert server.data_to_send() == response(4, 0, READY)


# --- errors ---------------------------------------------------------------------------------------

def test_frame_too_large_on_the_header():
    client = Framing(CLIENT, 5, max_frame_size=100)
    with pytest.raises(FrameTooLarge):
        list(client.receive_data(response(5, 0, SUPPORTED, b"x" * 101)[:9]))


def test_garbage_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        list(Framing(CLIENT, 4).receive_data(b"HTTP/1.1 400 Bad Request\r\n"))


def test_a_bad_segment_after_good_ones_yields_their_frames_first():
    client, server = pair(5)
    good = SegmentEncoder().encode([response(5, 1, RESULT, b"a")])
    bad = bytearray(SegmentEncoder().encode([response(5, 2, RESULT, b"b")]))
    bad[-1] ^= 0xFF
    frames = client.receive_data(good + bytes(bad))
    assert next(frames).body == b"a"
    with pytest.raises(ChecksumMismatch):
        next(frames)
    with pytest.raises(ChecksumMismatch):                 # sticky
        list(client.receive_data(good))


def test_a_bare_envelope_after_the_switch_is_a_protocol_error():
    client, server = pair(5)
    with pytest.raises(ProtocolError):
        list(client.receive_data(response(5, 0, 0x10, b"\xff\xff\xff\xff")))


def test_misuse_is_refused():
    with pytest.raises(ValueError):
        Framing("peer")
    with pytest.raises(ValueError):
        Framing(CLIENT)                      # a client knows its version
    with pytest.raises(ValueError):
        Framing(SERVER).startup()            # no frame yet: no version
    client, server = pair(5)
    with pytest.raises(IllegalStateTransition):
        client.startup()
    if SNAPPY is not None:
        with pytest.raises(ValueError):
            Framing(CLIENT, 5).startup(SNAPPY)
    assert "client v5 switched" in repr(client)


def test_discard_forgets_queued_and_bare_bytes():
    client = client_at_startup(5)
    client.send(request(5, 0, AUTH_RESPONSE))
    list(client.receive_data(response(5, 0, AUTHENTICATE)))
    client.send(request(5, 0, AUTH_RESPONSE))
    client.discard()
    assert client.data_to_send() == b""


# --- the client Connection against a server-role Framing ------------------------------------------

def _serve(server, data, answers):
    """Feed the client's bytes to ``server``; answer each frame with ``answers[opcode]``."""
    for frame in server.receive_data(data):
        if frame.opcode == STARTUP:
            name = m.decode_message(frame, frame.version).options.get("COMPRESSION")
            server.startup(COMPRESSORS[name] if name else None)
        server.send(answers[frame.opcode](frame))
    return server.data_to_send()


@pytest.mark.parametrize("version,compression", [(5, None), (4, None)]
                         + ([(5, "lz4"), (4, "lz4")] if LZ4 else []))
@pytest.mark.parametrize("auth", [False, True], ids=["noauth", "auth"])
def test_client_connection_and_server_framing_interoperate(version, compression, auth):
    from cqlreactor.core.auth import PlainTextAuthProvider

    def answer(message):
        return lambda frame: m.encode_message(message, frame.stream, version, is_response=True)

    supported = m.SupportedMessage({"CQL_VERSION": ["3.4.5"], "COMPRESSION": ["lz4"]})
    answers = {OPTIONS: answer(supported),
               STARTUP: answer(m.AuthenticateMessage("Plain") if auth else m.ReadyMessage()),
               AUTH_RESPONSE: answer(m.AuthSuccessMessage(None)),
               QUERY: answer(m.VoidResult())}
    client = Connection(host="mem:9042", protocol_version=version, compression=compression,
                        authenticator=PlainTextAuthProvider("u", "p") if auth else None)
    server = Framing(SERVER)
    client.initiate()
    events = []
    for _ in range(6):
        back = _serve(server, client.data_to_send(), answers)
        if back:
            events.extend(client.receive_data(back))
    assert [type(e) for e in events] == [ConnectionReady] and client.is_ready
    assert client.compression == compression and server.switched
    streams = [client.send_request(m.QueryMessage("INSERT %d" % i, m.QueryParameters(1)))
               for i in range(3)]
    events = client.receive_data(_serve(server, client.data_to_send(), answers))
    assert [(type(e), e.stream_id) for e in events] == [(ResponseReceived, s) for s in streams]
    server.send(m.encode_message(m.EventMessage("STATUS_CHANGE", "UP", ("10.0.0.2", 9042)), -1,
                                 version, is_response=True))
    [event] = client.receive_data(server.data_to_send())
    assert isinstance(event, ServerEventReceived)


# --- oracle: cassandra-driver decodes what the server role writes ---------------------------------

@pytest.mark.oracle
@pytest.mark.parametrize("compressor", V5_COMPRESSORS, ids=V5_IDS)
def test_driver_decodes_server_role_segments(compressor):
    connection = pytest.importorskip("cassandra.connection")
    codec = (connection.segment_codec_lz4 if compressor is not None
             else connection.segment_codec_no_compression)
    if codec is None:
        pytest.skip("cassandra-driver has no lz4 segment codec")
    server, frames = server_at_startup(5, compressor)
    big = response(5, 2, RESULT, b"z" * (2 * MAX_SEGMENT_PAYLOAD + 10))
    small = [response(5, s, RESULT, b"r%d" % s) for s in range(3)]
    server.send(response(5, 0, READY))
    for envelope in small + [big] + small:
        server.send(envelope)
    out = server.data_to_send()
    bare = response(5, 0, READY)
    assert out.startswith(bare)
    buf = io.BytesIO(out[len(bare):])
    got = []
    while buf.tell() < len(out) - len(bare):
        segment = codec.decode(buf, codec.decode_header(buf))
        got.append((bytes(segment.payload), segment.is_self_contained))
    assert b"".join(p for p, _ in got) == b"".join(small + [big] + small)
    assert [sc for _, sc in got] == [True, False, False, False, True]
    assert got[0][0] == b"".join(small)


def test_segment_from_encode_segment_is_read_after_the_switch():
    client = client_at_startup(5)
    list(client.receive_data(response(5, 0, READY)))
    assert frames_of(client, encode_segment(response(5, 1, RESULT, b"x"))) == [(1, RESULT, b"x")]
