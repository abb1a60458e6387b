"""Protocol v5 framing: segments that carry envelopes, with CRC24 headers and CRC32 payloads.

Segment layout (all little-endian)::

    uncompressed:  header data (3 bytes) | CRC24 of it (3 bytes) | payload | CRC32 (4 bytes)
    compressed:    header data (5 bytes) | CRC24 of it (3 bytes) | payload | CRC32 (4 bytes)

Header data bits, uncompressed: 0-16 payload length, 17 self-contained.
Compressed (lz4): 0-16 compressed length, 17-33 uncompressed length (0: the payload went
uncompressed because compression did not make it smaller), 34 self-contained.
CRC24 uses polynomial 0x1974F0B from 0x875060 over the header-data bytes; the payload CRC32 is
zlib's, seeded with the CRC32 of ``FA 2D 55 CA``.

A self-contained segment holds whole envelopes; an envelope too big for one segment is split
over consecutive non-self-contained segments holding nothing else.  The decoder yields payload
bytes (the envelope stream) for a FrameDecoder, and checks that split envelopes arrive whole.
"""

import struct
import zlib

from .errors import ChecksumMismatch, ProtocolError
from .frames import HEADER_LENGTH as _ENVELOPE_HEADER
from .frames import BufferedDecoder

__all__ = [
    "MAX_SEGMENT_PAYLOAD", "CRC24_INIT", "CRC24_POLY", "CRC32_INITIAL", "crc24", "crc32",
    "encode_segment", "encode_segments", "SegmentEncoder", "SegmentDecoder",
]

MAX_SEGMENT_PAYLOAD = 131071        # 17 bits
CRC24_INIT = 0x875060
CRC24_POLY = 0x1974F0B
CRC32_INITIAL = zlib.crc32(b"\xfa\x2d\x55\xca")

_UNCOMPRESSED_HEADER = 3
_COMPRESSED_HEADER = 5
_CRC24_LENGTH = 3
_CRC32_LENGTH = 4
_SELF_CONTAINED_PLAIN = 1 << 17
_SELF_CONTAINED_COMPRESSED = 1 << 34
_LENGTH_MASK = MAX_SEGMENT_PAYLOAD

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ENVELOPE_LENGTH = struct.Struct(">i")


def _make_crc24_table():
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _make_crc24_table()


def crc24(value, length):
    """CRC24 of the ``length`` low bytes of ``value`` taken little-endian (as they are sent)."""
    crc = CRC24_INIT
    table = _CRC24_TABLE
    for _ in range(length):
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ value) & 0xFF]
        value >>= 8
    return crc


def crc32(payload):
    """The payload checksum: zlib CRC32 seeded with the CRC32 of ``FA 2D 55 CA``."""
    return zlib.crc32(payload, CRC32_INITIAL) & 0xFFFFFFFF


def _plain_header(length, self_contained):
    data = length | (_SELF_CONTAINED_PLAIN if self_contained else 0)
    return _U64.pack(data | (crc24(data, _UNCOMPRESSED_HEADER) << 24))[:6]


def _compressed_header(length, uncompressed_length, self_contained):
    data = (length | (uncompressed_length << 17)
            | (_SELF_CONTAINED_COMPRESSED if self_contained else 0))
    return _U64.pack(data | (crc24(data, _COMPRESSED_HEADER) << 40))


def encode_segment(payload, self_contained=True, compressor=None):
    """Encode one segment; ``payload`` must be at most MAX_SEGMENT_PAYLOAD bytes.

    With a compressor the 5-byte header is used; the payload goes compressed only when that
    makes it smaller (otherwise with uncompressed length 0).
    """
    payload = bytes(payload)
    length = len(payload)
    if length > MAX_SEGMENT_PAYLOAD:
        raise ValueError("segment payload of %d bytes is over the maximum of %d"
                         % (length, MAX_SEGMENT_PAYLOAD))
    if compressor is None:
        header = _plain_header(length, self_contained)
    else:
        compressed = compressor.compress_block(payload) if length else b""
        if len(compressed) < length:
            header = _compressed_header(len(compressed), length, self_contained)
            payload = compressed
        else:
            header = _compressed_header(length, 0, self_contained)
    return b"".join((header, payload, _U32.pack(crc32(payload))))


def encode_segments(payload, compressor=None):
    """Wrap one or more whole envelopes in segments.

    Up to MAX_SEGMENT_PAYLOAD bytes make one self-contained segment; more (one big envelope)
    are split over consecutive non-self-contained segments.
    """
    length = len(payload)
    if length <= MAX_SEGMENT_PAYLOAD:
        return encode_segment(payload, True, compressor)
    view = memoryview(payload)
    return b"".join(encode_segment(view[i:i + MAX_SEGMENT_PAYLOAD], False, compressor)
                    for i in range(0, length, MAX_SEGMENT_PAYLOAD))


class SegmentEncoder(object):
    """Packs envelopes into as few segments as possible.

    Consecutive envelopes that fit together go into one self-contained segment; an envelope
    over MAX_SEGMENT_PAYLOAD gets non-self-contained segments of its own.
    """

    __slots__ = ("compressor",)

    def __init__(self, compressor=None):
        if compressor is not None and not compressor.supports_segments:
            raise ValueError("%s compression cannot be used with v5 segments" % (compressor.name,))
        self.compressor = compressor

    def encode(self, envelopes):
        """Return the segments carrying ``envelopes`` (a list of encoded envelopes), in order."""
        compressor = self.compressor
        if sum(map(len, envelopes)) <= MAX_SEGMENT_PAYLOAD:
            # the common case, a batch of small envelopes: one segment, no loop in Python
            return encode_segment(b"".join(envelopes), True, compressor) if envelopes else b""
        out = []
        batch = []
        batch_length = 0
        for envelope in envelopes:
            size = len(envelope)
            if batch and batch_length + size > MAX_SEGMENT_PAYLOAD:
                out.append(encode_segment(b"".join(batch), True, compressor))
                batch = []
                batch_length = 0
            if size > MAX_SEGMENT_PAYLOAD:
                out.append(encode_segments(envelope, compressor))
            else:
                batch.append(envelope)
                batch_length += size
        if batch:
            out.append(encode_segment(b"".join(batch), True, compressor))
        return b"".join(out)


class SegmentDecoder(BufferedDecoder):
    """Incremental segment decoder: ``add_data(bytes)``, then iterate payloads.

    Each item is the (decompressed) payload of one segment as bytes: a run of whole envelopes,
    or one piece of a split envelope.  Feed them to a FrameDecoder in order.

    Args:
        compressor: the negotiated compressor (must support segments); its presence selects
            the 5-byte compressed header format.

    Raises (from iteration):
        ChecksumMismatch: header CRC24 or payload CRC32 wrong.
        ProtocolError: corrupt compressed data, a self-contained segment that is not a run
            of whole envelopes, a split envelope interrupted or overrun.
    After an error the decoder stays broken: every further iteration raises the same error.
    """

    __slots__ = ("compressor", "_header_length", "_split_remaining")

    def __init__(self, compressor=None):
        if compressor is not None and not compressor.supports_segments:
            raise ValueError("%s compression cannot be used with v5 segments" % (compressor.name,))
        BufferedDecoder.__init__(self)     # _header: (length, uncompressed length, self-contained)
        self.compressor = compressor
        self._header_length = (_COMPRESSED_HEADER if compressor is not None
                               else _UNCOMPRESSED_HEADER) + _CRC24_LENGTH
        self._split_remaining = 0   # bytes still due of an envelope split over segments

    def __next__(self):
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        header = self._header
        if header is None:
            if len(buf) - pos < self._header_length:
                self._compact()
                raise StopIteration
            header = self._read_header(buf, pos)
            self._header = header
        length, uncompressed_length, self_contained = header
        start = pos + self._header_length
        end = start + length
        if end + _CRC32_LENGTH > len(buf):
            self._compact()
            raise StopIteration
        payload = buf[start:end]
        if type(payload) is not bytes:      # a bytearray buffer (frames.py says when)
            payload = bytes(payload)
        (expected,) = _U32.unpack_from(buf, end)
        self._pos = end + _CRC32_LENGTH
        self._header = None
        actual = crc32(payload)
        if actual != expected:
            self._fail(ChecksumMismatch(
                "segment payload CRC32 mismatch: received %08x, computed %08x (%d bytes)"
                % (expected, actual, length)))
        if uncompressed_length:
            try:
                payload = self.compressor.decompress_block(payload, uncompressed_length)
            except ProtocolError as exc:
                self._fail(exc)
        self._track_split(payload, self_contained)
        return payload

    def _read_header(self, buf, pos):
        if self.compressor is None:
            data = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            received = buf[pos + 3] | buf[pos + 4] << 8 | buf[pos + 5] << 16
            computed = crc24(data, _UNCOMPRESSED_HEADER)
            length = data & _LENGTH_MASK
            uncompressed_length = 0
            self_contained = bool(data & _SELF_CONTAINED_PLAIN)
        else:
            (raw,) = _U64.unpack_from(buf, pos)
            data = raw & 0xFFFFFFFFFF
            received = raw >> 40
            computed = crc24(data, _COMPRESSED_HEADER)
            length = data & _LENGTH_MASK
            uncompressed_length = (data >> 17) & _LENGTH_MASK
            self_contained = bool(data & _SELF_CONTAINED_COMPRESSED)
        if received != computed:
            self._fail(ChecksumMismatch(
                "segment header CRC24 mismatch: header %x, received %06x, computed %06x"
                % (data, received, computed)))
        return length, uncompressed_length, self_contained

    def _track_split(self, payload, self_contained):
        remaining = self._split_remaining
        if self_contained:
            if remaining:
                self._fail(ProtocolError(
                    "self-contained segment arrived while %d bytes of a split envelope were "
                    "still due" % (remaining,)))
            self._check_whole_envelopes(payload)
            return
        if not remaining:
            # First piece of a split envelope: its envelope header says how much follows.
            if len(payload) < _ENVELOPE_HEADER:
                self._fail(ProtocolError(
                    "non-self-contained segment of %d bytes cannot start an envelope"
                    % (len(payload),)))
            (body_length,) = _ENVELOPE_LENGTH.unpack_from(payload, 5)
            if body_length < 0:
                self._fail(ProtocolError("split envelope declares a negative body length %d"
                                         % (body_length,)))
            remaining = _ENVELOPE_HEADER + body_length
        remaining -= len(payload)
        if remaining < 0:
            self._fail(ProtocolError(
                "non-self-contained segment runs %d bytes past the end of its envelope"
                % (-remaining,)))
        self._split_remaining = remaining

    def _check_whole_envelopes(self, payload):
        # A self-contained segment must hold whole envelopes: walk their headers.
        end = len(payload)
        offset = 0
        unpack = _ENVELOPE_LENGTH.unpack_from
        while offset < end:
            if end - offset < _ENVELOPE_HEADER:
                self._fail(ProtocolError(
                    "self-contained segment ends inside an envelope header (%d of %d bytes)"
                    % (end - offset, _ENVELOPE_HEADER)))
            (body_length,) = unpack(payload, offset + 5)
            if body_length < 0:
                self._fail(ProtocolError("envelope in segment declares a negative body length %d"
                                         % (body_length,)))
            offset += _ENVELOPE_HEADER + body_length
        if offset != end:
            self._fail(ProtocolError(
                "self-contained segment of %d bytes ends inside an envelope (%d bytes short)"
                % (end, offset - end)))
