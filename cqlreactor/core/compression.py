"""Body compression: lz4 (v4 frames and v5 segments) and snappy (v4 frames only).

Both packages are optional; ``available_compressors()`` lists the ones that import.

Wire formats:
  * v4 lz4 frame body: 4-byte big-endian uncompressed length, then one raw lz4 block.
  * v4 snappy frame body: a snappy "raw" buffer (it starts with its own varint length).
  * v5 segment payload (lz4 only): one raw lz4 block; the uncompressed length travels in the
    segment header (see segments.py).
Every decompression checks the declared length before allocating it (the decompressors
allocate the declared size up front): against a maximum, and against what the compressed input
can expand to at the format's best ratio, so a 22-byte body declaring 256 MiB is refused, not
allocated. The output must have exactly the declared length.
"""

import struct

from .errors import FrameTooLarge, ProtocolError

__all__ = ["Compressor", "Lz4Compressor", "SnappyCompressor", "available_compressors",
           "choose_compression", "PREFERENCE", "DEFAULT_MAX_UNCOMPRESSED"]

PREFERENCE = ("lz4", "snappy")
DEFAULT_MAX_UNCOMPRESSED = 256 * 1024 * 1024

_LENGTH_BE = struct.Struct(">I")

# The most one compressed byte can stand for: an lz4 sequence grows its match length by 255 per
# extension byte, so n bytes of block decode to under 255 * n (+ a few bytes for the last
# sequence). Snappy's longest copy (64 bytes from a 2-byte element) stays below 32 per byte.
LZ4_MAX_RATIO = 255
SNAPPY_MAX_RATIO = 32
_RATIO_SLACK = 64


def check_expansion(name, declared, compressed, ratio):
    """Refuse a declared uncompressed length that ``compressed`` bytes cannot decode to.

    Raises:
        ProtocolError: ``declared`` is over ``ratio * compressed`` (+ a small slack).
    """
    if declared > ratio * compressed + _RATIO_SLACK:
        raise ProtocolError("%s data declares %d uncompressed bytes, more than %d compressed "
                            "bytes can hold (at most %d); the peer sent a corrupt or hostile "
                            "length" % (name, declared, compressed,
                                        ratio * compressed + _RATIO_SLACK))

try:
    import lz4.block as _lz4_block
except ImportError:     # optional dependency
    _lz4_block = None

try:
    import snappy as _snappy
except ImportError:     # optional dependency
    _snappy = None


class Compressor(object):
    """Interface of a body compressor.

    Attributes:
        name: the name used in STARTUP's COMPRESSION option ('lz4', 'snappy').
        supports_segments: True when it can compress v5 segment payloads.
    """

    name = None
    supports_segments = False

    def compress_frame(self, body):
        """Compress a v3/v4 frame body (the result is what goes on the wire)."""
        raise NotImplementedError

    def decompress_frame(self, body, max_size=DEFAULT_MAX_UNCOMPRESSED):
        """Decompress a v3/v4 frame body.

        Raises:
            FrameTooLarge: the declared uncompressed length is over ``max_size``.
            ProtocolError: the body is corrupt or its length does not match.
        """
        raise NotImplementedError

    def compress_block(self, data):
        """Compress a v5 segment payload to a raw block (no length prefix)."""
        raise ProtocolError("%s compression is not used with protocol v5 segments" % (self.name,))

    def decompress_block(self, data, uncompressed_len):
        """Decompress a raw v5 block whose uncompressed length the segment header gave."""
        raise ProtocolError("%s compression is not used with protocol v5 segments" % (self.name,))

    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self.name)


class Lz4Compressor(Compressor):
    """lz4 via the ``lz4`` package (``lz4.block``)."""

    name = "lz4"
    supports_segments = True

    def __init__(self):
        if _lz4_block is None:
            raise ImportError("lz4 compression needs the 'lz4' package (pip install lz4)")

    def compress_frame(self, body):
        return _LENGTH_BE.pack(len(body)) + _lz4_block.compress(bytes(body), store_size=False)

    def decompress_frame(self, body, max_size=DEFAULT_MAX_UNCOMPRESSED):
        if len(body) < 4:
            raise ProtocolError("lz4 frame body of %d bytes is shorter than its 4-byte length"
                                % (len(body),))
        (length,) = _LENGTH_BE.unpack_from(body, 0)
        if max_size is not None and length > max_size:
            raise FrameTooLarge("lz4 frame body declares %d uncompressed bytes, over the "
                                "maximum of %d" % (length, max_size))
        return self._decompress(memoryview(body)[4:], length)

    def compress_block(self, data):
        return _lz4_block.compress(bytes(data), store_size=False)

    def decompress_block(self, data, uncompressed_len):
        return self._decompress(data, uncompressed_len)

    @staticmethod
    def _decompress(data, length):
        check_expansion("lz4", length, len(data), LZ4_MAX_RATIO)
        if length == 0:
            # lz4 encodes b"" as the single token byte 0x00.
            if bytes(data) not in (b"", b"\x00"):
                raise ProtocolError("lz4 block declares 0 uncompressed bytes but has data")
            return b""
        try:
            out = _lz4_block.decompress(bytes(data), uncompressed_size=length)
        except Exception as exc:    # lz4.block.LZ4BlockError, or ValueError on older lz4
            raise ProtocolError("corrupt lz4 data (%d compressed bytes, %d declared): %s"
                                % (len(data), length, exc))
        if len(out) != length:
            raise ProtocolError("lz4 data decompressed to %d bytes, %d declared"
                                % (len(out), length))
        return out


def _snappy_declared_length(body):
    """The varint uncompressed length a snappy buffer starts with."""
    result = shift = 0
    for i in range(min(len(body), 5)):
        byte = body[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
    raise ProtocolError("snappy body has no valid length prefix")


class SnappyCompressor(Compressor):
    """snappy via the ``python-snappy`` package; protocol v3/v4 only."""

    name = "snappy"
    supports_segments = False

    def __init__(self):
        if _snappy is None:
            raise ImportError("snappy compression needs the 'python-snappy' package "
                              "(pip install python-snappy)")

    def compress_frame(self, body):
        return _snappy.compress(bytes(body))

    def decompress_frame(self, body, max_size=DEFAULT_MAX_UNCOMPRESSED):
        body = bytes(body)
        length = _snappy_declared_length(body)
        if max_size is not None and length > max_size:
            raise FrameTooLarge("snappy frame body declares %d uncompressed bytes, over the "
                                "maximum of %d" % (length, max_size))
        check_expansion("snappy", length, len(body), SNAPPY_MAX_RATIO)
        try:
            out = _snappy.decompress(body)
        except Exception as exc:    # snappy.UncompressError
            raise ProtocolError("corrupt snappy data (%d bytes): %r" % (len(body), exc))
        if len(out) != length:
            raise ProtocolError("snappy data decompressed to %d bytes, %d declared"
                                % (len(out), length))
        return out


_CLASSES = {"lz4": Lz4Compressor, "snappy": SnappyCompressor}


def available_compressors():
    """Return {name: Compressor} for every compressor whose package imports, lz4 first."""
    result = {}
    for name in PREFERENCE:
        try:
            result[name] = _CLASSES[name]()
        except ImportError:
            pass
    return result


def choose_compression(ours, server_supported, protocol_version):
    """Pick the compressor for a connection.

    Args:
        ours: the user's setting: None/False (no compression), True (any, lz4 preferred),
            a name ('lz4' or 'snappy') or a list of names in order of preference.
        server_supported: the COMPRESSION list from the server's SUPPORTED message.
        protocol_version: the negotiated version; from v5 only compressors that work on
            segments (lz4) qualify.

    Returns:
        A Compressor, or None when nothing suits both sides (the connection then runs
        uncompressed).

    Raises:
        ValueError: ``ours`` names an unknown compression.
    """
    if ours is None or ours is False:
        return None
    if ours is True:
        wanted = list(PREFERENCE)
    elif isinstance(ours, str):
        wanted = [ours]
    else:
        wanted = list(ours)
    wanted = [name.lower() for name in wanted]
    unknown = [name for name in wanted if name not in _CLASSES]
    if unknown:
        raise ValueError("unknown compression %s; choose from %s"
                         % (", ".join(repr(n) for n in unknown), ", ".join(PREFERENCE)))
    server = set(name.lower() for name in (server_supported or ()))
    local = available_compressors()
    for name in wanted:
        compressor = local.get(name)
        if compressor is None or name not in server:
            continue
        if protocol_version >= 5 and not compressor.supports_segments:
            continue
        return compressor
    return None
