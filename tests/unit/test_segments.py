"""Protocol v5 segments: CRCs, encoder, decoder, and cassandra-driver's segment codec as oracle."""

import io
import random
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.core import segments
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.errors import ChecksumMismatch, ProtocolError
from cqlreactor.core.frames import FrameDecoder, encode_frame
from cqlreactor.core.segments import (MAX_SEGMENT_PAYLOAD, SegmentDecoder, SegmentEncoder,
                                      crc24, encode_segment, encode_segments)

LZ4 = available_compressors().get("lz4")
COMPRESSORS = [None] + ([LZ4] if LZ4 else [])
COMPRESSOR_IDS = ["plain"] + (["lz4"] if LZ4 else [])


def body_of(size, seed, compressible):
    if compressible:
        pattern = random.Random(seed).getrandbits(8 * 37).to_bytes(37, "little")
        return (pattern * (size // 37 + 1))[:size]
    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little") if size else b""


@st.composite
def envelopes(draw, max_big=0):
    sizes = st.integers(0, 3000)
    if max_big:
        sizes = st.one_of(sizes, st.integers(MAX_SEGMENT_PAYLOAD - 20, max_big))
    size = draw(sizes)
    body = body_of(size, draw(st.integers(0, 1 << 30)), draw(st.booleans()))
    return encode_frame(5, draw(st.integers(-0x8000, 0x7FFF)), draw(st.integers(0, 0x10)), body)


def decode_stream(data, chunks, compressor):
    """Segments -> payloads -> frames, feeding ``data`` in the given chunk sizes."""
    segment_decoder = SegmentDecoder(compressor)
    frame_decoder = FrameDecoder()
    frames = []
    pos = 0
    for size in list(chunks) + [len(data)]:
        segment_decoder.add_data(data[pos:pos + size])
        pos += size
        for payload in segment_decoder:
            frame_decoder.add_data(payload)
            frames.extend(frame_decoder)
    assert segment_decoder.buffered == 0 and frame_decoder.buffered == 0
    return frames


# --- CRCs ---------------------------------------------------------------------------------------

def bitwise_crc24(value, length):
    """Reference CRC24 straight from the definition: one bit at a time."""
    crc = segments.CRC24_INIT
    for _ in range(length):
        crc ^= (value & 0xFF) << 16
        value >>= 8
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= segments.CRC24_POLY
    return crc


@given(st.integers(0, (1 << 40) - 1), st.sampled_from([3, 5]))
def test_crc24_table_matches_bitwise_definition(value, length):
    value &= (1 << (8 * length)) - 1
    assert crc24(value, length) == bitwise_crc24(value, length)


@pytest.mark.oracle
@given(st.integers(0, (1 << 40) - 1), st.sampled_from([3, 5]))
def test_crc24_matches_driver(value, length):
    segment = pytest.importorskip("cassandra.segment")
    value &= (1 << (8 * length)) - 1
    assert crc24(value, length) == segment.compute_crc24(value, length)


def test_crc32_is_seeded_with_the_magic_bytes():
    assert segments.crc32(b"abc") == zlib.crc32(b"\xfa\x2d\x55\xca" + b"abc") & 0xFFFFFFFF


def test_uncompressed_segment_layout():
    seg = encode_segment(b"hello", self_contained=True)
    header = 5 | (1 << 17)
    assert seg[:3] == header.to_bytes(3, "little")
    assert seg[3:6] == crc24(header, 3).to_bytes(3, "little")
    assert seg[6:11] == b"hello"
    assert seg[11:] == struct.pack("<I", segments.crc32(b"hello"))


@pytest.mark.skipif(LZ4 is None, reason="lz4 not installed")
def test_compressed_segment_layout_and_uncompressed_fallback():
    data = b"a" * 1000
    seg = encode_segment(data, self_contained=False, compressor=LZ4)
    header = int.from_bytes(seg[:5], "little")
    compressed_len = header & 0x1FFFF
    assert (header >> 17) & 0x1FFFF == 1000 and not header >> 34
    assert seg[5:8] == crc24(header, 5).to_bytes(3, "little")
    assert len(seg) == 8 + compressed_len + 4 and compressed_len < 1000
    # random bytes do not compress: sent as is, uncompressed length 0
    noise = body_of(500, 1, False)
    seg = encode_segment(noise, compressor=LZ4)
    header = int.from_bytes(seg[:5], "little")
    assert header & 0x1FFFF == 500 and (header >> 17) & 0x1FFFF == 0 and header >> 34 == 1
    assert seg[8:508] == noise


def test_encode_segments_splits_big_payloads():
    payload = encode_frame(5, 1, 8, b"b" * (3 * MAX_SEGMENT_PAYLOAD))
    data = encode_segments(payload)
    pos = 0
    flags = []
    while pos < len(data):
        header = int.from_bytes(data[pos:pos + 3], "little")
        flags.append(bool(header >> 17))
        pos += 6 + (header & 0x1FFFF) + 4
    assert flags == [False] * 4
    assert b"".join(_payloads(data)) == payload


def _payloads(data, compressor=None):
    decoder = SegmentDecoder(compressor)
    decoder.add_data(data)
    return list(decoder)


def test_max_payload_is_one_self_contained_segment():
    payload = encode_frame(5, 1, 8, b"c" * (MAX_SEGMENT_PAYLOAD - 9))
    assert len(payload) == MAX_SEGMENT_PAYLOAD
    data = encode_segments(payload)
    assert len(data) == 6 + MAX_SEGMENT_PAYLOAD + 4 and data[2] & 0x02
    with pytest.raises(ValueError):
        encode_segment(payload + b"x")


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=COMPRESSOR_IDS)
def test_encoder_coalesces_small_envelopes(compressor):
    envs = [encode_frame(5, i, 7, b"q" * 100) for i in range(3000)]    # ~327 KB
    data = SegmentEncoder(compressor).encode(envs)
    payloads = _payloads(data, compressor)
    assert len(payloads) <= 3
    assert b"".join(payloads) == b"".join(envs)


def test_encoder_puts_a_big_envelope_in_its_own_segments():
    small = encode_frame(5, 1, 7, b"s")
    big = encode_frame(5, 2, 7, b"B" * 300000)
    data = SegmentEncoder().encode([small, big, small])
    payloads = _payloads(data)
    assert payloads[0] == small and payloads[-1] == small
    assert b"".join(payloads[1:-1]) == big and len(payloads) == 5


def test_snappy_cannot_be_used_for_segments():
    snappy = available_compressors().get("snappy")
    if snappy is None:
        pytest.skip("python-snappy not installed")
    with pytest.raises(ValueError):
        SegmentDecoder(snappy)
    with pytest.raises(ValueError):
        SegmentEncoder(snappy)


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("compressor", COMPRESSORS, ids=COMPRESSOR_IDS)
@settings(max_examples=60, deadline=None)
@given(envs=st.lists(envelopes(max_big=3 * MAX_SEGMENT_PAYLOAD), max_size=5),
       chunks=st.lists(st.integers(0, 70000), max_size=30))
def test_round_trip_through_segments_and_frames(compressor, envs, chunks):
    data = SegmentEncoder(compressor).encode(envs)
    frames = decode_stream(data, chunks, compressor)
    assert [encode_frame(f.version, f.stream, f.opcode, f.body) for f in frames] == envs


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=COMPRESSOR_IDS)
@settings(max_examples=100, deadline=None)
@given(envs=st.lists(envelopes(), min_size=1, max_size=6), data=st.data())
def test_round_trip_small_chunks(compressor, envs, data):
    encoded = b"".join(encode_segments(e, compressor) for e in envs)
    points = sorted(data.draw(st.lists(st.integers(0, len(encoded)), max_size=15)))
    chunks = [b - a for a, b in zip([0] + points, points)]
    frames = decode_stream(encoded, chunks, compressor)
    assert len(frames) == len(envs)


# --- malformed input ----------------------------------------------------------------------------

def good_segment(compressor=None):
    return encode_segments(encode_frame(5, 3, 8, b"payload" * 20), compressor)


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=COMPRESSOR_IDS)
@pytest.mark.parametrize("where", ["header", "header_crc", "payload", "payload_crc"])
def test_corruption_raises_checksum_mismatch(compressor, where):
    data = bytearray(good_segment(compressor))
    header_len = 8 if compressor else 6
    index = {"header": 0, "header_crc": header_len - 1, "payload": header_len + 3,
             "payload_crc": len(data) - 1}[where]
    for bit in (0x01, 0x80):
        broken = bytearray(data)
        broken[index] ^= bit
        decoder = SegmentDecoder(compressor)
        decoder.add_data(bytes(broken))
        with pytest.raises(ChecksumMismatch) as info:
            list(decoder)
        assert isinstance(info.value, ProtocolError)
        assert ("header" in str(info.value)) == where.startswith("header")
        with pytest.raises(ChecksumMismatch):    # sticky: the connection is defunct
            next(decoder)


def test_header_crc_is_checked_before_waiting_for_the_payload():
    data = bytearray(good_segment())
    data[1] ^= 0x10
    decoder = SegmentDecoder()
    decoder.add_data(bytes(data[:6]))          # header only
    with pytest.raises(ChecksumMismatch):
        next(decoder)


def _segment_with(payload, self_contained):
    return encode_segment(payload, self_contained)


def test_truncated_envelope_in_self_contained_segment():
    env = encode_frame(5, 3, 8, b"x" * 50)
    decoder = SegmentDecoder()
    decoder.add_data(_segment_with(env[:-1], True))
    with pytest.raises(ProtocolError, match="ends inside an envelope"):
        list(decoder)


def test_envelope_header_cut_in_self_contained_segment():
    decoder = SegmentDecoder()
    decoder.add_data(_segment_with(encode_frame(5, 3, 8, b"") + b"\x85\x00", True))
    with pytest.raises(ProtocolError, match="envelope header"):
        list(decoder)


def test_wrong_envelope_length_in_segment():
    env = bytearray(encode_frame(5, 3, 8, b"x" * 50))
    env[5:9] = struct.pack(">i", -7)
    decoder = SegmentDecoder()
    decoder.add_data(_segment_with(bytes(env), True))
    with pytest.raises(ProtocolError, match="negative"):
        list(decoder)


def test_split_envelope_interrupted_by_self_contained_segment():
    big = encode_frame(5, 1, 8, b"B" * 200000)
    data = encode_segment(big[:MAX_SEGMENT_PAYLOAD], False) + good_segment()
    decoder = SegmentDecoder()
    decoder.add_data(data)
    assert len(next(decoder)) == MAX_SEGMENT_PAYLOAD
    with pytest.raises(ProtocolError, match="split envelope"):
        next(decoder)


def test_split_envelope_overrun():
    big = encode_frame(5, 1, 8, b"B" * 200000)
    data = (encode_segment(big[:MAX_SEGMENT_PAYLOAD], False)
            + encode_segment(big[MAX_SEGMENT_PAYLOAD:] + b"extra", False))
    decoder = SegmentDecoder()
    decoder.add_data(data)
    with pytest.raises(ProtocolError, match="past the end"):
        list(decoder)


@pytest.mark.skipif(LZ4 is None, reason="lz4 not installed")
def test_wrong_uncompressed_length_in_header():
    payload = encode_frame(5, 3, 8, b"z" * 1000)
    compressed = LZ4.compress_block(payload)
    data = (header_compressed(len(compressed), len(payload) + 5, True) + compressed
            + struct.pack("<I", segments.crc32(compressed)))
    decoder = SegmentDecoder(LZ4)
    decoder.add_data(data)
    with pytest.raises(ProtocolError):
        list(decoder)


@pytest.mark.skipif(LZ4 is None, reason="lz4 not installed")
def test_garbage_compressed_payload():
    garbage = b"\xff" * 40
    data = (header_compressed(len(garbage), 1000, True) + garbage
            + struct.pack("<I", segments.crc32(garbage)))
    decoder = SegmentDecoder(LZ4)
    decoder.add_data(data)
    with pytest.raises(ProtocolError):
        list(decoder)


def header_compressed(length, uncompressed, self_contained):
    value = length | (uncompressed << 17) | (int(self_contained) << 34)
    return value.to_bytes(5, "little") + crc24(value, 5).to_bytes(3, "little")


@given(st.binary(min_size=1, max_size=400))
@settings(max_examples=200, deadline=None)
def test_random_bytes_never_crash_the_decoder(junk):
    decoder = SegmentDecoder()
    decoder.add_data(junk)
    try:
        list(decoder)
    except ProtocolError:
        pass


# --- oracle: cassandra-driver's SegmentCodec ----------------------------------------------------

def driver_codec(compressed):
    connection = pytest.importorskip("cassandra.connection")
    if not compressed:
        return connection.segment_codec_no_compression
    if connection.segment_codec_lz4 is None or LZ4 is None:
        pytest.skip("lz4 not installed")
    return connection.segment_codec_lz4


def driver_decode(codec, data):
    buf = io.BytesIO(data)
    out = []
    while buf.tell() < len(data):
        header = codec.decode_header(buf)
        segment = codec.decode(buf, header)
        out.append((segment.payload, segment.is_self_contained))
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "lz4"])
@settings(max_examples=40, deadline=None)
@given(envs=st.lists(envelopes(max_big=3 * MAX_SEGMENT_PAYLOAD), min_size=1, max_size=4))
def test_our_segments_decode_in_the_driver(compressed, envs):
    codec = driver_codec(compressed)
    compressor = LZ4 if compressed else None
    for env in envs:
        got = driver_decode(codec, encode_segments(env, compressor))
        assert b"".join(bytes(p) for p, _ in got) == env
        assert [sc for _, sc in got] == [len(env) <= MAX_SEGMENT_PAYLOAD] * len(got)
    got = driver_decode(codec, SegmentEncoder(compressor).encode(envs))
    assert b"".join(bytes(p) for p, _ in got) == b"".join(envs)


@pytest.mark.oracle
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "lz4"])
@settings(max_examples=40, deadline=None)
@given(envs=st.lists(envelopes(max_big=3 * MAX_SEGMENT_PAYLOAD), min_size=1, max_size=4),
       chunks=st.lists(st.integers(0, 50000), max_size=20))
def test_driver_segments_decode_here(compressed, envs, chunks):
    codec = driver_codec(compressed)
    out = io.BytesIO()
    for env in envs:
        codec.encode(out, env)
    frames = decode_stream(out.getvalue(), chunks, LZ4 if compressed else None)
    assert [encode_frame(f.version, f.stream, f.opcode, f.body) for f in frames] == envs
