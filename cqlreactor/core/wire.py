"""Native protocol primitives: the notations of section 3 of the protocol spec.

Readers take ``(buf, pos)`` -- ``buf`` is ``bytes`` or a ``memoryview`` -- and return
``(value, new_pos)``.  They raise :class:`~cqlreactor.core.errors.ProtocolError` when the buffer
is too short or a length is impossible, and they check every length against the bytes that are
actually left before slicing or looping, so a hostile length can never make us allocate more than
the buffer already holds.  Writers return ``bytes``.

The readers are on the hot path (every response goes through them), so they use precompiled
``struct.Struct`` methods and let ``struct.error`` signal truncation instead of testing lengths
first.
"""

import ipaddress
import struct
import uuid

from .errors import ProtocolError
# One UNSET_VALUE sentinel for the whole driver: the CQL types module owns it (and needs nothing
# from wire, so there is no import cycle).
from .types_scalar import UNSET_VALUE

__all__ = [
    "UNSET_VALUE",
    "read_byte", "read_short", "read_int", "read_long", "read_string", "read_long_string",
    "read_bytes", "read_short_bytes", "read_value", "read_string_list", "read_string_map",
    "read_string_multimap", "read_bytes_map", "read_uuid", "read_inet", "read_inetaddr",
    "read_consistency",
    "write_byte", "write_short", "write_int", "write_long", "write_string", "write_long_string",
    "write_bytes", "write_short_bytes", "write_value", "write_string_list", "write_string_map",
    "write_string_multimap", "write_bytes_map", "write_uuid", "write_inet", "write_inetaddr",
    "write_consistency",
]


_BYTE = struct.Struct(">B")
_SHORT = struct.Struct(">H")
_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")
_LONG = struct.Struct(">q")

_unpack_byte = _BYTE.unpack_from
_unpack_short = _SHORT.unpack_from
_unpack_int = _INT.unpack_from
_unpack_long = _LONG.unpack_from
_pack_byte = _BYTE.pack
_pack_short = _SHORT.pack
_pack_int = _INT.pack
_pack_long = _LONG.pack

_NULL_INT = _pack_int(-1)
_UNSET_INT = _pack_int(-2)


def _short_buffer(what, buf, pos, need=None):
    if need is None:
        detail = ""
    else:
        detail = ", needs %d byte(s)" % (need,)
    return ProtocolError("truncated %s at offset %d of a %d-byte body%s"
                         % (what, pos, len(buf), detail))


# --- fixed-size integers --------------------------------------------------------------------------

def read_byte(buf, pos):
    """[byte]: an unsigned 8-bit integer."""
    try:
        return _unpack_byte(buf, pos)[0], pos + 1
    except struct.error:
        raise _short_buffer("[byte]", buf, pos)


def read_short(buf, pos):
    """[short]: an unsigned 16-bit integer."""
    try:
        return _unpack_short(buf, pos)[0], pos + 2
    except struct.error:
        raise _short_buffer("[short]", buf, pos)


def read_int(buf, pos):
    """[int]: a signed 32-bit integer."""
    try:
        return _unpack_int(buf, pos)[0], pos + 4
    except struct.error:
        raise _short_buffer("[int]", buf, pos)


def read_long(buf, pos):
    """[long]: a signed 64-bit integer."""
    try:
        return _unpack_long(buf, pos)[0], pos + 8
    except struct.error:
        raise _short_buffer("[long]", buf, pos)


def read_consistency(buf, pos):
    """[consistency]: a [short] consistency level code (ANY=0 ... LOCAL_ONE=10)."""
    try:
        return _unpack_short(buf, pos)[0], pos + 2
    except struct.error:
        raise _short_buffer("[consistency]", buf, pos)


def write_byte(value):
    return _pack_byte(value)


def write_short(value):
    return _pack_short(value)


def write_int(value):
    return _pack_int(value)


def write_long(value):
    return _pack_long(value)


write_consistency = write_short


# --- strings and byte strings -------------------------------------------------------------------

def _take(buf, start, n, what):
    end = start + n
    if end > len(buf):
        raise ProtocolError("%s of length %d at offset %d overruns a %d-byte body"
                            % (what, n, start, len(buf)))
    return buf[start:end], end


def _utf8(raw, what, pos):
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("%s at offset %d is not valid UTF-8: %s" % (what, pos, exc))


def read_string(buf, pos):
    """[string]: a [short] length, then that many UTF-8 bytes."""
    try:
        n = _unpack_short(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[string] length", buf, pos)
    start = pos + 2
    end = start + n
    if end > len(buf):
        raise ProtocolError("[string] of length %d at offset %d overruns a %d-byte body"
                            % (n, start, len(buf)))
    try:
        return str(buf[start:end], "utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError("[string] at offset %d is not valid UTF-8: %s" % (start, exc))


def read_long_string(buf, pos):
    """[long string]: an [int] length, then that many UTF-8 bytes."""
    try:
        n = _unpack_int(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[long string] length", buf, pos)
    if n < 0:
        raise ProtocolError("negative [long string] length %d at offset %d" % (n, pos))
    raw, end = _take(buf, pos + 4, n, "[long string]")
    return _utf8(raw, "[long string]", pos + 4), end


def read_bytes(buf, pos):
    """[bytes]: an [int] length then that many bytes; a negative length is ``None`` (null)."""
    try:
        n = _unpack_int(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[bytes] length", buf, pos)
    if n < 0:
        return None, pos + 4
    start = pos + 4
    end = start + n
    if end > len(buf):
        raise ProtocolError("[bytes] of length %d at offset %d overruns a %d-byte body"
                            % (n, start, len(buf)))
    return bytes(buf[start:end]), end


def read_short_bytes(buf, pos):
    """[short bytes]: a [short] length then that many bytes."""
    try:
        n = _unpack_short(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[short bytes] length", buf, pos)
    start = pos + 2
    end = start + n
    if end > len(buf):
        raise ProtocolError("[short bytes] of length %d at offset %d overruns a %d-byte body"
                            % (n, start, len(buf)))
    return bytes(buf[start:end]), end


def read_value(buf, pos):
    """[value]: like [bytes], but length -1 is ``None`` and -2 is :data:`UNSET_VALUE`."""
    try:
        n = _unpack_int(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[value] length", buf, pos)
    if n < 0:
        if n == -1:
            return None, pos + 4
        if n == -2:
            return UNSET_VALUE, pos + 4
        raise ProtocolError("invalid [value] length %d at offset %d" % (n, pos))
    start = pos + 4
    end = start + n
    if end > len(buf):
        raise ProtocolError("[value] of length %d at offset %d overruns a %d-byte body"
                            % (n, start, len(buf)))
    return bytes(buf[start:end]), end


def _encode_text(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def write_string(value):
    """[string]; ``value`` is ``str`` (encoded as UTF-8) or already-encoded bytes."""
    raw = _encode_text(value)
    return _pack_short(len(raw)) + raw


def write_long_string(value):
    raw = _encode_text(value)
    return _pack_int(len(raw)) + raw


def write_bytes(value):
    """[bytes]; ``None`` is written as length -1 (null)."""
    if value is None:
        return _NULL_INT
    value = bytes(value)
    return _pack_int(len(value)) + value


def write_short_bytes(value):
    value = bytes(value)
    return _pack_short(len(value)) + value


def write_value(value):
    """[value]; ``None`` is null (-1) and :data:`UNSET_VALUE` is ``not set`` (-2)."""
    if value is None:
        return _NULL_INT
    if value is UNSET_VALUE:
        return _UNSET_INT
    value = bytes(value)
    return _pack_int(len(value)) + value


# --- collections ------------------------------------------------------------------------------------

def _count(buf, pos, what, min_item_size):
    """Read a [short] element count and check the rest of the buffer can hold that many."""
    try:
        n = _unpack_short(buf, pos)[0]
    except struct.error:
        raise _short_buffer(what + " count", buf, pos)
    pos += 2
    if n * min_item_size > len(buf) - pos:
        raise ProtocolError("%s of %d entries at offset %d cannot fit in the %d bytes left"
                            % (what, n, pos, len(buf) - pos))
    return n, pos


def read_string_list(buf, pos):
    """[string list]: a [short] n, then n [string]."""
    n, pos = _count(buf, pos, "[string list]", 2)
    out = []
    for _ in range(n):
        item, pos = read_string(buf, pos)
        out.append(item)
    return out, pos


def read_string_map(buf, pos):
    """[string map]: a [short] n, then n pairs of [string]."""
    n, pos = _count(buf, pos, "[string map]", 4)
    out = {}
    for _ in range(n):
        key, pos = read_string(buf, pos)
        out[key], pos = read_string(buf, pos)
    return out, pos


def read_string_multimap(buf, pos):
    """[string multimap]: a [short] n, then n pairs of [string] key and [string list]."""
    n, pos = _count(buf, pos, "[string multimap]", 4)
    out = {}
    for _ in range(n):
        key, pos = read_string(buf, pos)
        out[key], pos = read_string_list(buf, pos)
    return out, pos


def read_bytes_map(buf, pos):
    """[bytes map]: a [short] n, then n pairs of [string] key and [bytes] value."""
    n, pos = _count(buf, pos, "[bytes map]", 6)
    out = {}
    for _ in range(n):
        key, pos = read_string(buf, pos)
        out[key], pos = read_bytes(buf, pos)
    return out, pos


def write_string_list(values):
    parts = [_pack_short(len(values))]
    parts.extend(write_string(v) for v in values)
    return b"".join(parts)


def write_string_map(mapping):
    parts = [_pack_short(len(mapping))]
    for key, value in mapping.items():
        parts.append(write_string(key))
        parts.append(write_string(value))
    return b"".join(parts)


def write_string_multimap(mapping):
    parts = [_pack_short(len(mapping))]
    for key, values in mapping.items():
        parts.append(write_string(key))
        parts.append(write_string_list(values))
    return b"".join(parts)


def write_bytes_map(mapping):
    parts = [_pack_short(len(mapping))]
    for key, value in mapping.items():
        parts.append(write_string(key))
        parts.append(write_bytes(value))
    return b"".join(parts)


# --- uuid and addresses -----------------------------------------------------------------------------

def read_uuid(buf, pos):
    """[uuid]: 16 bytes, returned as ``uuid.UUID``."""
    end = pos + 16
    if end > len(buf):
        raise _short_buffer("[uuid]", buf, pos, 16)
    return uuid.UUID(bytes=bytes(buf[pos:end])), end


def write_uuid(value):
    return value.bytes


def read_inetaddr(buf, pos):
    """[inetaddr]: a [byte] size (4 or 16) then the address; returned as a ``str``."""
    try:
        size = _unpack_byte(buf, pos)[0]
    except struct.error:
        raise _short_buffer("[inetaddr] size", buf, pos)
    start = pos + 1
    end = start + size
    if end > len(buf):
        raise _short_buffer("[inetaddr]", buf, start, size)
    raw = bytes(buf[start:end])
    if size == 4:
        return str(ipaddress.IPv4Address(raw)), end
    if size == 16:
        return str(ipaddress.IPv6Address(raw)), end
    raise ProtocolError("[inetaddr] of size %d at offset %d (expected 4 or 16)" % (size, pos))


def read_inet(buf, pos):
    """[inet]: an [inetaddr] then an [int] port; returned as ``(address_str, port)``."""
    address, pos = read_inetaddr(buf, pos)
    port, pos = read_int(buf, pos)
    return (address, port), pos


def write_inetaddr(address):
    """``address``: a ``str`` or an ``ipaddress`` address object."""
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address = ipaddress.ip_address(address)
    raw = address.packed
    return _pack_byte(len(raw)) + raw


def write_inet(address, port):
    """[inet] from an address (``str`` or ``ipaddress`` object) and a port."""
    return write_inetaddr(address) + _pack_int(port)
