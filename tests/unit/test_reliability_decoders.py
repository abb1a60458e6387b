"""Decoders under legal-but-odd and hostile server input (issue 17).

* A UDT named (or with fields named) what Cassandra allows once quoted but Python does not as
  an identifier decodes; a type name with a NUL byte builds a row decoder too. Neither may
  escape as ValueError from ``make_row_decoder`` (the column types come from the server).
* A compressed body declaring more than its bytes can expand to is refused before anything
  of the declared size is allocated (a 22-byte lz4 frame declaring 256 MiB); a frame header
  declaring a body over the limit is refused on the header, naming the limit.
"""

import struct
import tracemalloc

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core import types as T
from cqlreactor.core.compression import LZ4_MAX_RATIO, Lz4Compressor, available_compressors
from cqlreactor.core.errors import FrameTooLarge, ProtocolError
from cqlreactor.core.frames import FLAG_COMPRESSION, Frame, FrameDecoder, encode_header
from cqlreactor.core.results import rows_body

needs_lz4 = pytest.mark.skipif("lz4" not in available_compressors(), reason="lz4 not installed")

QUOTED_NAMES = ["Mixed Case", "class", "1st", "dash-name", "x\x00y", "\u00e9t\u00e9", ""]


def _rows_frame(ctype, cell):
    columns = [("ks", "t", "c", ctype)]
    body = rows_body(columns, [(ctype.serialize(cell, 4),)])
    return Frame(4, 0, 1, 0x08, body, True)       # a RESULT


@pytest.mark.parametrize("name", QUOTED_NAMES)
def test_udt_with_a_quoted_name_decodes(name):
    fields = [("first name", T.INT), ("class", T.TEXT), ("_x", T.INT), ("ok", T.INT)]
    udt = T.UserType("ks", name, fields, frozen=True)
    value = udt.value_class(1, u"two", 3, 4)
    message = m.decode_message(_rows_frame(udt, value), 4)
    (row,) = message.rows
    decoded = row[0]
    assert tuple(decoded) == (1, u"two", 3, 4)
    assert decoded.ok == 4              # identifier fields keep their name
    # the type came back from the wire option with the same (quoted) name and fields
    (column,) = message.column_metadata
    assert column[3].udt_name == name
    assert column[3].field_names == tuple(f for f, _ in fields)


@pytest.mark.parametrize("name", QUOTED_NAMES + ["org.example.Weird\x00Type", "(", "a:b"])
def test_custom_type_names_build_a_decoder(name):
    ctype = T.CustomType(name)
    decoder = T.make_row_decoder([ctype, T.ListType(ctype), T.INT], 4)
    body = b"".join(struct.pack(">i", len(c)) + c for c in (
        b"raw", T.ListType(ctype).serialize([b"a"], 4), struct.pack(">i", 7)))
    rows, pos = decoder(body, 0, 1)
    assert rows == [(b"raw", [b"a"], 7)] and pos == len(body)


def test_custom_type_with_nul_over_the_wire_decodes():
    frame = _rows_frame(T.CustomType("a\x00b"), b"\x01\x02")
    (row,) = m.decode_message(frame, 4).rows
    assert row == (b"\x01\x02",)


def _lz4_frame(declared, block):
    body = struct.pack(">I", declared) + block
    return encode_header(4, FLAG_COMPRESSION, 0, 0x08, len(body), True) + body


@needs_lz4
def test_tiny_lz4_frame_declaring_256_mib_allocates_nothing_of_it():
    import lz4.block
    frame = _lz4_frame(256 * 1024 * 1024, lz4.block.compress(b"x", store_size=False) + b"\0" * 7)
    assert len(frame) == 22
    decoder = FrameDecoder(compressor=Lz4Compressor())
    decoder.add_data(frame)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            list(decoder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak
    assert "268435456" in str(info.value) and "compressed" in str(info.value)


@needs_lz4
def test_lz4_at_its_best_ratio_still_decodes():
    body = b"\0" * (4 * 1024 * 1024)
    compressor = Lz4Compressor()
    packed = compressor.compress_frame(body)
    assert len(body) > (LZ4_MAX_RATIO - 5) * (len(packed) - 4)     # really near the ratio
    assert compressor.decompress_frame(packed) == body
    block = compressor.compress_block(body[:128 * 1024])
    assert compressor.decompress_block(block, 128 * 1024) == body[:128 * 1024]


@needs_lz4
def test_lz4_segment_declaring_more_than_its_block_can_hold():
    compressor = Lz4Compressor()
    with pytest.raises(ProtocolError) as info:
        compressor.decompress_block(b"\x10x", 128 * 1024 - 1)
    assert "131071" in str(info.value) and "more than 2 compressed bytes" in str(info.value)


def test_huge_declared_body_is_refused_on_its_header():
    decoder = FrameDecoder()
    decoder.add_data(encode_header(4, 0, 3, 0x08, 2 ** 31 - 1, True))
    with pytest.raises(FrameTooLarge) as info:
        list(decoder)
    text = str(info.value)
    assert "2147483647" in text and str(decoder.max_frame_size) in text and "max_frame_size" in text
    assert decoder.buffered == 9
    decoder.add_data(b"\0" * 1000)      # the error is sticky, nothing more is decoded
    with pytest.raises(FrameTooLarge):
        list(decoder)


def test_limit_is_per_connection_setting():
    decoder = FrameDecoder(max_frame_size=1000)
    decoder.add_data(encode_header(4, 0, 3, 0x08, 1001, True))
    with pytest.raises(FrameTooLarge):
        list(decoder)


def test_connection_fails_its_requests_on_a_huge_declared_body():
    from cqlreactor.core.events import ConnectionFailed, RequestFailed
    from cqlreactor.testing.fuzzing import connection_in
    conn = connection_in("READY")
    assert conn.in_flight == 2
    events = conn.receive_data(encode_header(4, 0, 0, 0x08, 2 ** 31 - 1, True) + b"\0" * 64)
    failed = [e for e in events if isinstance(e, RequestFailed)]
    assert len(failed) == 2      # each request fails naming the limit (ConnectionDefunct)
    assert all("exceeds the maximum" in str(e.error) for e in failed), failed
    (down,) = [e for e in events if isinstance(e, ConnectionFailed)]
    assert "max_frame_size" in str(down.error) and "fuzz:9042" in str(down.error)
    assert conn.is_defunct
