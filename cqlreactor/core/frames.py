"""Native protocol frames ("envelopes" in v5): the 9-byte header and a streaming decoder.

Header layout (v3, v4, v5), all big-endian::

    version  1 byte   bit 0x80 set on responses, low 7 bits the protocol version
    flags    1 byte   FLAG_* below
    stream   2 bytes  signed
    opcode   1 byte
    length   4 bytes  signed; length of the body that follows

The decoder works like h2's frame buffer: ``add_data()`` appends bytes, iterating yields every
complete frame.  It keeps one buffer and an offset into it, so many small frames cost no copying
of the rest of the buffer.  The buffer is the received ``bytes`` object itself while it can be
(nothing was pending when it arrived, or the pending rest is no longer than the new data: then
joining them copies no more than the data), so a body is one slice, one copy; it becomes a
``bytearray`` only while a long rest grows by small pieces, so a big frame arriving in small
chunks is copied a constant number of times.  The consumed prefix of a ``bytearray`` is dropped
when iteration runs out of complete frames (or the prefix grows large).  Length and version are
checked as soon as the header is complete, before any body bytes are waited for.
"""

import struct

from .errors import FrameTooLarge, ProtocolError, UnsupportedProtocolVersion

__all__ = [
    "HEADER_LENGTH", "Frame", "FrameDecoder", "BufferedDecoder", "encode_frame", "encode_header",
    "pack_header", "unpack_header",
    "FLAG_COMPRESSION", "FLAG_TRACING", "FLAG_CUSTOM_PAYLOAD", "FLAG_WARNING", "FLAG_USE_BETA",
    "SUPPORTED_VERSIONS", "DEFAULT_MAX_FRAME_SIZE", "RESPONSE_BIT", "ProtocolVersion",
]

HEADER_LENGTH = 9
DEFAULT_MAX_FRAME_SIZE = 256 * 1024 * 1024
SUPPORTED_VERSIONS = (3, 4, 5)
RESPONSE_BIT = 0x80


class ProtocolVersion(object):
    """Native protocol version numbers, named as cassandra-driver names them
    (``Cluster(protocol_version=ProtocolVersion.V4)``).  ``SUPPORTED_VERSIONS`` lists what this
    driver speaks, highest first; V1, V2, V6 and the DSE versions are named so code that names
    them still imports, and Cluster refuses them with a clear error."""

    V1, V2, V3, V4, V5, V6 = 1, 2, 3, 4, 5, 6
    DSE_V1 = 0x41
    DSE_V2 = 0x42
    SUPPORTED_VERSIONS = tuple(sorted(SUPPORTED_VERSIONS, reverse=True))
    BETA_VERSIONS = ()
    MIN_SUPPORTED = min(SUPPORTED_VERSIONS)
    MAX_SUPPORTED = max(SUPPORTED_VERSIONS)

    @classmethod
    def get_lower_supported(cls, previous_version):
        """The highest supported version below ``previous_version``, or 0 when none is."""
        lower = [v for v in cls.SUPPORTED_VERSIONS if v < previous_version]
        return max(lower) if lower else 0

    @classmethod
    def uses_int_query_flags(cls, version):
        """v5 changed these together: int query flags, prepare flags, the prepared metadata
        id, the failure reason map and the per-request keyspace."""
        return version >= cls.V5

    uses_prepare_flags = uses_prepared_metadata = uses_error_code_map = uses_keyspace_flag = \
        uses_int_query_flags

    @classmethod
    def has_checksumming_support(cls, version):
        return cls.V5 <= version < cls.DSE_V1

FLAG_COMPRESSION = 0x01
FLAG_TRACING = 0x02
FLAG_CUSTOM_PAYLOAD = 0x04
FLAG_WARNING = 0x08
FLAG_USE_BETA = 0x10

_HEADER = struct.Struct(">BBhBi")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
#: pack_header(version byte, flags, stream, opcode, length) -> 9 bytes, unchecked (hot paths
#: whose fields are known good; encode_header checks them).
pack_header = _pack_header
#: unpack_header(buffer, offset=0) -> (version byte, flags, stream, opcode, length); the version
#: byte keeps its response bit.
unpack_header = _unpack_header

# Compact the consumed prefix of the buffer once it is at least this long and at least half of
# the buffer (add_data), so a consumer that never drains the iterator cannot grow it forever.
_COMPACT_THRESHOLD = 64 * 1024
# Version bytes up to this are reported as an unsupported protocol version; anything above (an
# HTTP answer, a TLS record on a plaintext connection …) as "not a CQL frame".
_PLAUSIBLE_VERSION = 0x0F
# Bodies at least this long are copied out of a bytearray through a memoryview (one copy
# instead of two).
_BIG_BODY = 64 * 1024


class Frame(object):
    """One decoded frame.

    Attributes:
        version: protocol version (without the response bit).
        flags: header flags (FLAG_*); FLAG_COMPRESSION stays set when the body was decompressed.
        stream: signed stream id (-1 for server events).
        opcode: message opcode.
        body: the (decompressed) body as bytes.
        is_response: True when the version byte had the response bit set.
    """

    __slots__ = ("version", "flags", "stream", "opcode", "body", "is_response")

    def __init__(self, version, flags, stream, opcode, body, is_response=False):
        self.version = version
        self.flags = flags
        self.stream = stream
        self.opcode = opcode
        self.body = body
        self.is_response = is_response

    def __eq__(self, other):
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.version == other.version and self.flags == other.flags
                and self.stream == other.stream and self.opcode == other.opcode
                and self.body == other.body and self.is_response == other.is_response)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return "Frame(version=%d, flags=0x%02X, stream=%d, opcode=0x%02X, body=<%d bytes>%s)" % (
            self.version, self.flags, self.stream, self.opcode, len(self.body),
            ", response" if self.is_response else "")


def encode_header(version, flags, stream, opcode, length, is_response=False):
    """Return the 9-byte frame header.

    Raises:
        ValueError: a field is out of its range (a bug in the caller, not in the peer).
    """
    if not 3 <= version <= 0x7F:
        raise ValueError("protocol version %r cannot use the 9-byte frame header" % (version,))
    if not -0x8000 <= stream <= 0x7FFF:
        raise ValueError("stream id %r outside the signed 16-bit range" % (stream,))
    if not 0 <= length <= 0x7FFFFFFF:
        raise ValueError("frame body length %r outside 0..2**31-1" % (length,))
    return _pack_header(version | (RESPONSE_BIT if is_response else 0), flags, stream, opcode,
                        length)


def encode_frame(version, stream, opcode, body, flags=0, is_response=False, compressor=None):
    """Encode one frame (header + body).

    Args:
        version: protocol version (3, 4 or 5; other values >= 3 are written as given, which
            tests of version negotiation need).
        stream: signed 16-bit stream id.
        opcode: message opcode.
        body: the message body (bytes-like).
        flags: FLAG_* bits.
        is_response: set the response bit (server side).
        compressor: a ``compression.Compressor``; when given and ``version < 5`` the body is
            compressed (v4 frame format) and FLAG_COMPRESSION is set.  v5 never compresses
            envelopes (compression happens per segment), so it is ignored there.

    Returns:
        The frame as bytes.
    """
    if compressor is not None and version < 5:
        body = compressor.compress_frame(body)
        flags |= FLAG_COMPRESSION
    return encode_header(version, flags, stream, opcode, len(body), is_response) + bytes(body)


def _copy_out(buf, start, end):
    # one copy instead of two for a big body
    view = memoryview(buf)
    part = view[start:end]
    body = part.tobytes()
    part.release()
    view.release()
    return body


class BufferedDecoder(object):
    """What FrameDecoder and segments.SegmentDecoder share: one ``bytearray`` of received bytes
    and the offset of the first one not yet decoded (compacted as the module docstring says),
    the parsed header of an item still incomplete, and a sticky error.

    A subclass implements ``__next__`` and ends every failure with ``self._fail(error)``.
    """

    __slots__ = ("_buf", "_pos", "_header", "_error")

    def __init__(self):
        self._buf = b""         # bytes or bytearray, as the module docstring says
        self._pos = 0
        self._header = None     # parsed header of the item whose rest is still incomplete
        self._error = None

    def add_data(self, data):
        """Append received bytes (any bytes-like object; only an exact ``bytes`` is kept
        without copying, so a caller may reuse its buffer)."""
        buf = self._buf
        pos = self._pos
        rest = len(buf) - pos
        if not rest:
            self._buf = data if type(data) is bytes else bytes(data)
            self._pos = 0
        elif type(buf) is bytes:
            if len(data) >= rest:
                self._buf = buf[pos:] + data
            else:
                grown = bytearray(memoryview(buf)[pos:])
                grown += data
                self._buf = grown
            self._pos = 0
        else:
            if pos >= _COMPACT_THRESHOLD and pos * 2 >= len(buf):
                del buf[:pos]
                self._pos = 0
            buf += data

    @property
    def buffered(self):
        """Number of received bytes not yet returned decoded."""
        return len(self._buf) - self._pos

    def __iter__(self):
        return self

    def _compact(self):
        # iteration ran out of complete items: a bytearray drops its consumed prefix (cheaply:
        # it moves its start, not the rest); bytes wait for add_data, which copies the rest
        # anyway, unless nothing is left
        pos = self._pos
        if pos:
            buf = self._buf
            if pos == len(buf):
                self._buf = b""
                self._pos = 0
            elif type(buf) is not bytes:
                del buf[:pos]
                self._pos = 0

    def _fail(self, error):
        self._error = error
        raise error


_VERSION_SETS = {}


def _version_set(versions):
    """One shared frozenset per tuple of versions (every connection's decoder has one)."""
    key = tuple(versions)
    found = _VERSION_SETS.get(key)
    if found is None:
        found = _VERSION_SETS.setdefault(key, frozenset(key)) if len(_VERSION_SETS) < 32 \
            else frozenset(key)
    return found


class FrameDecoder(BufferedDecoder):
    """Incremental frame decoder: ``add_data(bytes)``, then iterate the complete frames.

    Args:
        max_frame_size: the largest body accepted, in bytes; a longer one raises
            FrameTooLarge as soon as its header is seen.
        compressor: a ``compression.Compressor`` used for v3/v4 frames that carry
            FLAG_COMPRESSION.  v5 envelopes are never compressed.
        versions: the protocol versions accepted in headers.

    Raises (from iteration):
        FrameTooLarge: a body length over ``max_frame_size``.
        UnsupportedProtocolVersion: a plausible version byte we do not speak (``requested`` is
            that version; stream id filled in when the header was complete).
        ProtocolError: anything else malformed (negative length, garbage version byte,
            compressed frame without a compressor, corrupt compressed body).
    After an error the decoder stays broken: every further iteration raises the same error.
    """

    __slots__ = ("max_frame_size", "compressor", "versions")

    def __init__(self, max_frame_size=DEFAULT_MAX_FRAME_SIZE, compressor=None,
                 versions=SUPPORTED_VERSIONS):
        BufferedDecoder.__init__(self)
        self.max_frame_size = max_frame_size
        self.compressor = compressor
        self.versions = _version_set(versions)

    def drain(self):
        """Return and forget the bytes received but not yet returned as frames (a partial
        frame included), leaving the decoder empty.

        The v5 framing switch (``framing.Framing``) hands them to a SegmentDecoder: the bytes
        behind the answer to STARTUP are segments.
        """
        rest = bytes(self._buf[self._pos:])
        self._buf = b""
        self._pos = 0
        self._header = None
        return rest

    def __iter__(self):
        return self._decode(True)

    def __next__(self):
        # one frame at a time (the framing's handshake, tests); loops iterate the generator
        for frame in self._decode(True):
            return frame
        raise StopIteration

    def raw(self):
        """Iterate the complete frames as ``(stream, (version byte, flags, opcode, body))``:
        a frame's stream id and, apart, everything else it says, without building a Frame.

        The simulated server's fast path keys its answers on the second item: two requests
        that differ only in their stream id get the same answer.  The version byte keeps its
        response bit; the body is decompressed as for frames, FLAG_COMPRESSION staying set in
        the flags.  Same checks and errors as iterating the decoder, whose other face this is
        (both consume the same bytes)."""
        return self._decode(False)

    def _decode(self, frames):
        # The hot loop of both roles, written for CPython: state in locals while running,
        # written back before every yield (the consumer may stop there, or add data); one
        # header unpack and one combined range test per frame, the exact diagnosis
        # (_check_header) only when that test fails.  versions and max_frame_size are read
        # when an iteration starts.
        if self._error is not None:
            raise self._error
        versions = self.versions
        max_size = self.max_frame_size
        unpack = _unpack_header
        buf = self._buf
        pos = self._pos
        size = len(buf)
        whole = type(buf) is bytes      # a slice is then a copy of its own
        header = self._header
        if header is not None:
            self._header = None
        while True:
            if header is None:
                if size - pos < HEADER_LENGTH:
                    if size > pos:
                        self._check_version_early(buf[pos])
                    break
                header = unpack(buf, pos)
                version_byte, flags, stream, opcode, length = header
                if not ((version_byte & 0x7F) in versions and 0 <= length <= max_size):
                    self._check_header(header)      # raises
            else:
                version_byte, flags, stream, opcode, length = header
            start = pos + HEADER_LENGTH
            end = start + length
            if end > size:
                self._header = header
                break
            if whole:
                body = buf[start:end]
            elif length < _BIG_BODY:
                body = bytes(buf[start:end])
            else:
                body = _copy_out(buf, start, end)
            self._pos = pos = end
            header = None
            if flags & FLAG_COMPRESSION and (version_byte & 0x7F) < 5:
                body = self._decompress(body, stream, opcode)
            if frames:
                yield Frame(version_byte & 0x7F, flags, stream, opcode, body, version_byte > 0x7F)
            else:
                yield stream, (version_byte, flags, opcode, body)
            # the consumer may have added data or drained meanwhile
            buf = self._buf
            pos = self._pos
            size = len(buf)
            whole = type(buf) is bytes
        self._pos = pos
        self._compact()

    def _check_version_early(self, version_byte):
        # Reject garbage (an HTTP answer, TLS bytes on a plaintext port …) on its first byte;
        # for a plausible but unsupported version wait for the header to name the stream.
        version = version_byte & 0x7F
        if version in self.versions or 1 <= version <= _PLAUSIBLE_VERSION:
            return
        self._fail(ProtocolError(
            "not a CQL frame: first byte 0x%02X is no protocol version" % (version_byte,)))

    def _check_header(self, header):
        version_byte, flags, stream, opcode, length = header
        version = version_byte & 0x7F
        if version not in self.versions:
            if 1 <= version <= _PLAUSIBLE_VERSION:
                self._fail(UnsupportedProtocolVersion(
                    "frame header has protocol version %d; supported versions are %s" % (
                        version, ", ".join(str(v) for v in sorted(self.versions))),
                    requested=version).with_context(stream_id=stream, opcode=opcode))
            self._fail(ProtocolError(
                "not a CQL frame: first byte 0x%02X is no protocol version" % (version_byte,)))
        if length < 0:
            self._fail(ProtocolError("frame header has a negative body length %d" % (length,),
                                     stream_id=stream, opcode=opcode))
        if length > self.max_frame_size:
            self._fail(FrameTooLarge(
                "frame body of %d bytes exceeds the maximum of %d bytes (max_frame_size; "
                "the native protocol caps frames at 256 MiB): refused on its header, before "
                "buffering the body" % (length, self.max_frame_size),
                stream_id=stream, opcode=opcode))

    def _decompress(self, body, stream, opcode):
        if self.compressor is None:
            self._fail(ProtocolError("compressed frame received but no compression was negotiated",
                                     stream_id=stream, opcode=opcode))
        try:
            return self.compressor.decompress_frame(body, max_size=self.max_frame_size)
        except ProtocolError as exc:
            self._fail(exc.with_context(stream_id=stream, opcode=opcode))
