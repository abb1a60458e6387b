"""Frame header encoding and the streaming FrameDecoder: bytes in, frames out."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.core import frames
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.errors import FrameTooLarge, ProtocolError, UnsupportedProtocolVersion
from cqlreactor.core.frames import (FLAG_COMPRESSION, FLAG_TRACING, FLAG_USE_BETA,
                                    FLAG_WARNING, Frame, FrameDecoder, encode_frame)

COMPRESSORS = available_compressors()


def decode_all(data, chunks=None, **kwargs):
    decoder = FrameDecoder(**kwargs)
    out = []
    if chunks is None:
        chunks = [len(data)]
    pos = 0
    for size in chunks:
        decoder.add_data(data[pos:pos + size])
        pos += size
        out.extend(decoder)
    decoder.add_data(data[pos:])
    out.extend(decoder)
    return out, decoder


frame_strategy = st.builds(
    Frame,
    version=st.sampled_from([3, 4, 5]),
    flags=st.integers(0, 0xFF).map(lambda f: f & ~FLAG_COMPRESSION),
    stream=st.integers(-0x8000, 0x7FFF),
    opcode=st.integers(0, 0xFF),
    body=st.binary(max_size=3000),
    is_response=st.booleans(),
)


def encode(frame, compressor=None):
    return encode_frame(frame.version, frame.stream, frame.opcode, frame.body, frame.flags,
                        frame.is_response, compressor)


def test_header_layout():
    data = encode_frame(4, -1, 0x0C, b"abc", flags=FLAG_TRACING, is_response=True)
    assert data == b"\x84\x02\xff\xff\x0c\x00\x00\x00\x03abc"
    assert frames.HEADER_LENGTH == 9
    (frame,), _ = decode_all(data)
    assert (frame.version, frame.flags, frame.stream, frame.opcode, frame.body,
            frame.is_response) == (4, FLAG_TRACING, -1, 0x0C, b"abc", True)
    assert isinstance(frame.body, bytes)


def test_request_frame_has_no_response_bit():
    data = encode_frame(5, 7, 0x05, b"", flags=FLAG_USE_BETA)
    assert data[0] == 5 and data[1] == FLAG_USE_BETA
    (frame,), _ = decode_all(data)
    assert not frame.is_response and frame.body == b""


@pytest.mark.parametrize("kwargs", [dict(version=2), dict(stream=0x8000), dict(stream=-0x8001)])
def test_encode_rejects_out_of_range_fields(kwargs):
    args = dict(version=4, stream=0, opcode=1, body=b"")
    args.update(kwargs)
    with pytest.raises(ValueError):
        encode_frame(**args)


@settings(max_examples=150, deadline=None)
@given(st.lists(frame_strategy, max_size=12), st.lists(st.integers(0, 600), max_size=40))
def test_round_trip_with_random_chunking(frame_list, chunks):
    data = b"".join(encode(f) for f in frame_list)
    out, decoder = decode_all(data, chunks)
    assert out == frame_list
    assert decoder.buffered == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(frame_strategy, max_size=8), st.data())
def test_round_trip_byte_by_byte_and_split_points(frame_list, data):
    encoded = b"".join(encode(f) for f in frame_list)
    points = sorted(data.draw(st.lists(st.integers(0, len(encoded)), max_size=10)))
    chunks = [b - a for a, b in zip([0] + points, points)]
    assert decode_all(encoded, chunks)[0] == frame_list
    small = encoded[:300]
    complete = decode_all(small)[0]
    assert decode_all(small, [1] * len(small))[0] == complete


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
@settings(max_examples=60, deadline=None)
@given(frame_list=st.lists(frame_strategy.filter(lambda f: f.version < 5), max_size=6),
       chunks=st.lists(st.integers(0, 300), max_size=20))
def test_compressed_round_trip_v4(name, frame_list, chunks):
    compressor = COMPRESSORS[name]
    data = b"".join(encode(f, compressor) for f in frame_list)
    out, _ = decode_all(data, chunks, compressor=compressor)
    assert [f.body for f in out] == [f.body for f in frame_list]
    assert all(f.flags & FLAG_COMPRESSION for f in out)


def test_v5_envelopes_are_never_compressed():
    lz4 = pytest.importorskip("lz4") and COMPRESSORS["lz4"]
    data = encode_frame(5, 1, 0x07, b"x" * 1000, compressor=lz4)
    assert data[1] & FLAG_COMPRESSION == 0 and len(data) == 1009


def test_compressed_flag_without_compressor_is_a_protocol_error():
    data = struct.pack(">BBhBi", 0x84, FLAG_COMPRESSION, 3, 0x08, 4) + b"\x00\x00\x00\x00"
    with pytest.raises(ProtocolError, match="no compression was negotiated") as info:
        decode_all(data)
    assert info.value.stream_id == 3 and info.value.opcode == 0x08


def test_corrupt_compressed_body_is_a_protocol_error():
    lz4 = pytest.importorskip("lz4") and COMPRESSORS["lz4"]
    body = struct.pack(">I", 100) + b"\xff" * 8
    data = struct.pack(">BBhBi", 0x84, FLAG_COMPRESSION, 3, 0x08, len(body)) + body
    with pytest.raises(ProtocolError):
        decode_all(data, compressor=lz4)


def test_too_large_is_rejected_on_the_header_alone():
    decoder = FrameDecoder(max_frame_size=1000)
    decoder.add_data(struct.pack(">BBhBi", 0x84, 0, 9, 0x08, 1001))
    with pytest.raises(FrameTooLarge) as info:
        next(decoder)
    assert isinstance(info.value, ProtocolError)
    assert info.value.stream_id == 9 and "1001" in str(info.value)


def test_default_maximum_is_256_mib():
    ok = struct.pack(">BBhBi", 0x84, 0, 0, 0x08, 256 * 1024 * 1024)
    decoder = FrameDecoder()
    decoder.add_data(ok)
    assert list(decoder) == []      # waits for the body: it is allowed
    decoder = FrameDecoder()
    decoder.add_data(struct.pack(">BBhBi", 0x84, 0, 0, 0x08, 256 * 1024 * 1024 + 1))
    with pytest.raises(FrameTooLarge):
        list(decoder)
    decoder = FrameDecoder()
    decoder.add_data(struct.pack(">BBhBi", 0x84, 0, 0, 0x08, 0x7FFFFFFF))
    with pytest.raises(FrameTooLarge):
        list(decoder)


def test_exact_maximum_is_accepted():
    data = encode_frame(4, 0, 8, b"y" * 64)
    assert decode_all(data, max_frame_size=64)[0][0].body == b"y" * 64


def test_negative_length():
    decoder = FrameDecoder()
    decoder.add_data(struct.pack(">BBhBi", 0x84, 0, 2, 0x08, -5))
    with pytest.raises(ProtocolError, match="negative body length -5"):
        next(decoder)


def test_unsupported_version_names_the_version_and_stream():
    decoder = FrameDecoder()
    decoder.add_data(struct.pack(">BBhBi", 0x06, 0, 12, 0x05, 0))
    with pytest.raises(UnsupportedProtocolVersion) as info:
        next(decoder)
    assert info.value.requested == 6 and info.value.stream_id == 12
    assert "version 6" in str(info.value)


def test_versions_can_be_restricted():
    decoder = FrameDecoder(versions=(4,))
    decoder.add_data(encode_frame(3, 0, 2, b""))
    with pytest.raises(UnsupportedProtocolVersion):
        next(decoder)


@pytest.mark.parametrize("garbage", [b"H", b"HTTP/1.1 400", b"\x16\x03\x01", b"\x00", b"\xc0"])
def test_garbage_is_rejected_on_its_first_byte(garbage):
    decoder = FrameDecoder()
    decoder.add_data(garbage)
    with pytest.raises(ProtocolError, match="not a CQL frame"):
        next(decoder)


def test_errors_are_sticky():
    decoder = FrameDecoder()
    decoder.add_data(struct.pack(">BBhBi", 0x84, 0, 2, 0x08, -1))
    with pytest.raises(ProtocolError) as first:
        next(decoder)
    decoder.add_data(encode_frame(4, 0, 2, b""))
    with pytest.raises(ProtocolError) as second:
        next(decoder)
    assert second.value is first.value


def test_truncated_frame_yields_nothing_and_keeps_its_bytes():
    data = encode_frame(4, 1, 8, b"z" * 50)
    out, decoder = decode_all(data[:-1])
    assert out == [] and decoder.buffered == len(data) - 1
    decoder.add_data(data[-1:])
    assert [f.body for f in decoder] == [b"z" * 50]


def test_frames_after_a_big_one_in_the_same_chunk():
    big = encode_frame(4, 1, 8, b"a" * 200000)
    small = encode_frame(4, 2, 8, b"b")
    out, _ = decode_all(big + small + small[:4], [70000, 70000])
    assert [f.stream for f in out] == [1, 2]


def test_16_mib_frame_in_64_kib_chunks():
    body = bytes(bytearray(range(256))) * (16 * 4096)
    data = encode_frame(4, 5, 8, body, is_response=True)
    decoder = FrameDecoder()
    got = []
    step = 64 * 1024
    for pos in range(0, len(data), step):
        decoder.add_data(data[pos:pos + step])
        got.extend(decoder)
        # the decoder holds each byte once: no copies accumulate while it waits
        assert decoder.buffered == (0 if got else min(pos + step, len(data)))
    assert len(got) == 1 and got[0].body == body


def test_many_small_frames_then_buffer_is_compacted():
    one = encode_frame(4, 1, 8, b"q" * 7)
    data = one * 20000
    out, decoder = decode_all(data, [4096] * (len(data) // 4096))
    assert len(out) == 20000 and decoder.buffered == 0


def test_compaction_when_the_consumer_stops_early():
    one = encode_frame(4, 1, 8, b"r" * 100)
    decoder = FrameDecoder()
    total = 0
    for _ in range(2000):
        decoder.add_data(one)
        next(decoder)               # takes exactly one frame, never exhausts the iterator
        total += 1
    assert decoder.buffered == 0 and total == 2000


def test_drain_hands_over_the_bytes_after_a_frame():
    ready = encode_frame(5, 0, 0x02, b"", is_response=True)
    after = b"\x01\x02segment bytes"
    decoder = FrameDecoder()
    decoder.add_data(ready + after[:5])
    assert next(decoder).opcode == 0x02
    assert decoder.drain() == after[:5]
    assert decoder.buffered == 0 and list(decoder) == []
    decoder.add_data(ready)
    assert [f.opcode for f in decoder] == [0x02]


def test_drain_mid_header():
    decoder = FrameDecoder()
    decoder.add_data(encode_frame(4, 0, 0x02, b"abc")[:10])
    assert list(decoder) == []
    assert len(decoder.drain()) == 10


def test_frame_repr_and_equality():
    a = Frame(4, FLAG_WARNING, 1, 8, b"x", True)
    assert a == Frame(4, FLAG_WARNING, 1, 8, b"x", True)
    assert a != Frame(4, FLAG_WARNING, 2, 8, b"x", True)
    assert "stream=1" in repr(a) and "response" in repr(a)


# --- oracle: cassandra-driver's frame encoder and decoder ---------------------------------------

@pytest.mark.oracle
@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("compression", [None, "lz4", "snappy"])
def test_driver_frames_decode_here(version, compression):
    connection = pytest.importorskip("cassandra.connection")
    protocol = pytest.importorskip("cassandra.protocol")
    compress = None
    compressor = None
    if compression:
        if compression not in COMPRESSORS or \
                compression not in connection.locally_supported_compressions:
            pytest.skip("%s not importable" % compression)
        compress = connection.locally_supported_compressions[compression][0]
        compressor = COMPRESSORS[compression]
    msg = protocol.QueryMessage("SELECT * FROM t WHERE k = 'abc'" * 20, 1)
    data = protocol.ProtocolHandler.encode_message(msg, 77, version, compress, False)
    (frame,), _ = decode_all(data, [5, 1, 3], compressor=compressor)
    assert (frame.version, frame.stream, frame.opcode, frame.is_response) == (version, 77, 0x07,
                                                                              False)
    plain = protocol.ProtocolHandler.encode_message(msg, 77, version, None, False)
    assert frame.body == plain[9:]


@pytest.mark.oracle
@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("compression", [None, "lz4", "snappy"])
def test_our_frames_decode_in_the_driver(version, compression):
    connection = pytest.importorskip("cassandra.connection")
    protocol = pytest.importorskip("cassandra.protocol")
    decompress = None
    compressor = None
    if compression:
        if compression not in COMPRESSORS or \
                compression not in connection.locally_supported_compressions:
            pytest.skip("%s not importable" % compression)
        decompress = connection.locally_supported_compressions[compression][1]
        compressor = COMPRESSORS[compression]
    # SUPPORTED body: a string multimap {"COMPRESSION": [...], "CQL_VERSION": ["3.4.5"]}
    body = (b"\x00\x02" + b"\x00\x0bCOMPRESSION" + b"\x00\x02" + b"\x00\x03lz4"
            + b"\x00\x06snappy" + b"\x00\x0bCQL_VERSION" + b"\x00\x01" + b"\x00\x053.4.5")
    data = encode_frame(version, 300, 0x06, body, is_response=True, compressor=compressor)
    version_byte, flags, stream, opcode, length = struct.unpack(">BBhBi", data[:9])
    assert version_byte == 0x80 | version and length == len(data) - 9
    msg = protocol.ProtocolHandler.decode_message(version, {}, stream, flags, opcode, data[9:],
                                                  decompress, None)
    assert isinstance(msg, protocol.SupportedMessage)
    assert msg.cql_versions == ["3.4.5"]
    assert msg.options == {"COMPRESSION": ["lz4", "snappy"]}


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(min_size=1, max_size=300), compressed=st.booleans())
def test_random_bytes_raise_only_protocol_errors(junk, compressed):
    compressor = COMPRESSORS.get("lz4") if compressed else None
    decoder = FrameDecoder(max_frame_size=10000, compressor=compressor)
    decoder.add_data(junk)
    try:
        for frame in decoder:
            assert isinstance(frame.body, bytes)
    except ProtocolError:
        pass


# --- raw iteration and the buffer --------------------------------------------------------------

def test_raw_items_hold_what_a_frame_holds_and_share_its_bytes():
    decoder = FrameDecoder()
    decoder.add_data(encode_frame(4, 7, 0x07, b"q1", flags=FLAG_TRACING)
                     + encode_frame(4, -1, 0x0C, b"ev", is_response=True)
                     + encode_frame(4, 9, 0x05, b""))
    raw = decoder.raw()
    assert next(raw) == (7, (4, FLAG_TRACING, 0x07, b"q1"))
    assert next(decoder) == Frame(4, 0, -1, 0x0C, b"ev", is_response=True)
    assert list(decoder.raw()) == [(9, (4, 0, 0x05, b""))]
    assert decoder.buffered == 0 and list(raw) == [] and list(decoder) == []


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_raw_bodies_are_decompressed_with_the_flag_kept(name):
    compressor = COMPRESSORS[name]
    decoder = FrameDecoder(compressor=compressor)
    decoder.add_data(encode_frame(4, 3, 0x07, b"x" * 500, compressor=compressor))
    assert list(decoder.raw()) == [(3, (4, FLAG_COMPRESSION, 0x07, b"x" * 500))]


def test_raw_errors_are_the_decoders_and_sticky():
    decoder = FrameDecoder(max_frame_size=10)
    decoder.add_data(struct.pack(">BBhBi", 4, 0, 5, 0x07, 11))
    with pytest.raises(FrameTooLarge) as first:
        list(decoder.raw())
    with pytest.raises(FrameTooLarge) as second:
        list(decoder)
    assert second.value is first.value and first.value.stream_id == 5


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_the_caller_may_reuse_the_buffer_it_added(kind):
    data = bytearray(encode_frame(4, 1, 8, b"abc") + encode_frame(4, 2, 8, b"de")[:5])
    decoder = FrameDecoder()
    decoder.add_data(kind(data))
    data[:] = b"\xff" * len(data)
    assert [f.body for f in decoder] == [b"abc"]
    decoder.add_data(encode_frame(4, 2, 8, b"de")[5:])
    assert [(f.stream, f.body) for f in decoder] == [(2, b"de")]


def test_data_added_while_iterating_is_decoded_in_the_same_loop():
    one = encode_frame(4, 1, 8, b"n")
    decoder = FrameDecoder()
    decoder.add_data(one + one[:3])
    seen = []
    for frame in decoder:
        seen.append(frame.stream)
        if len(seen) == 1:
            decoder.add_data(one[3:] + one)
    assert seen == [1, 1, 1] and decoder.buffered == 0


def test_a_big_frame_in_one_byte_pieces_after_small_frames():
    # the rest grows by small pieces: the decoder must not copy it again for each (a
    # quadratic copy would take minutes here)
    small = encode_frame(4, 1, 8, b"s")
    big = encode_frame(4, 2, 8, bytes(bytearray(range(256))) * 1200)
    decoder = FrameDecoder()
    decoder.add_data(small * 3 + big[:100])
    assert len(list(decoder)) == 3
    got = []
    for i in range(100, len(big)):
        decoder.add_data(big[i:i + 1])
        if i % 4096 == 0 or i == len(big) - 1:
            got.extend(decoder)
    assert [f.stream for f in got] == [2] and got[0].body == big[9:]
