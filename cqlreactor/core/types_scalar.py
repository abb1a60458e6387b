"""The ``CqlType`` base class, ``UNSET_VALUE``, vints and the native (scalar) CQL types.

Part of ``cqlreactor.core.types`` (import from there). Malformed bytes raise ``ProtocolError``.
"""

import datetime
import decimal
import ipaddress
import struct
import uuid

from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.types_values import Date, Duration, Time

__all__ = [
    "CqlType", "UNSET_VALUE", "MARSHAL", "NATIVE_TYPES", "write_unsigned_vint",
    "read_unsigned_vint",
    "ASCII", "BIGINT", "BLOB", "BOOLEAN", "COUNTER", "DATE", "DECIMAL", "DOUBLE", "DURATION",
    "FLOAT", "INET", "INT", "SMALLINT", "TEXT", "TIME", "TIMESTAMP", "TIMEUUID", "TINYINT",
    "UUID", "VARINT",
]

MARSHAL = "org.apache.cassandra.db.marshal."

_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")
_LONG = struct.Struct(">q")
_SHORT = struct.Struct(">h")
_BYTE = struct.Struct(">b")
_DOUBLE = struct.Struct(">d")
_FLOAT = struct.Struct(">f")
_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_AWARE = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_DATE_CENTER = 2 ** 31

# Errors a deserializer can raise on bad bytes; turned into ProtocolError at the public edge.
_DECODE_ERRORS = (struct.error, ValueError, IndexError, OverflowError)


class _UnsetValue(object):
    """The ``UNSET_VALUE`` sentinel: a bound value left unset (``[value]`` length -2, v4+)."""

    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self):
        return "UNSET_VALUE"

    def __bool__(self):
        return False

    def __reduce__(self):
        return (_UnsetValue, ())


UNSET_VALUE = _UnsetValue()


def _bad_size(n, want, what):
    """Fixed-size cell of the wrong length: empty means null (Cassandra's EMPTY), else error."""
    if n == 0:
        return None
    raise ProtocolError("%s value must be %d bytes, got %d" % (what, want, n))


class CqlType(object):
    """One CQL type.

    Attributes:
        name: the CQL text of the type, e.g. ``'map<text, int>'``, ``'frozen<list<int>>'``.
        type_code: the protocol type option id (0x0000 for custom and vector).
        cass_name: Cassandra's marshal class name (what a custom type option carries).
        fixed_size: the value length when every value has the same length (vector packing), else -1.
        hashable: whether deserialized values can be dict keys / set members.
    """

    __slots__ = ()
    type_code = None
    fixed_size = -1
    hashable = True
    frozen = False
    subtypes = ()

    def serialize(self, value, protocol_version=4):
        """Python value -> cell bytes (None is not accepted here; the caller writes null)."""
        try:
            return self._to_bytes(value)
        except (struct.error, OverflowError) as exc:
            raise ValueError("cannot serialize %r as %s: %s" % (value, self.name, exc))

    def deserialize(self, data, protocol_version=4):
        """Cell bytes -> Python value; None stays None. Raises ProtocolError on bad bytes."""
        if data is None:
            return None
        try:
            return self._from_bytes(bytes(data))
        except _DECODE_ERRORS as exc:
            raise ProtocolError("bad %s value: %s" % (self.name, exc))

    def _codegen(self, i):
        """Expression decoding ``buf[pos:e]`` (length ``n``) inside the row loop, and its names."""
        return "_d%d(buf[pos:e])" % i, {"_d%d" % i: self._from_bytes}

    def __eq__(self, other):
        return isinstance(other, CqlType) and self.cass_name == other.cass_name

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self.cass_name)

    def __repr__(self):
        return "<CqlType %s>" % (self.name,)


class _Scalar(CqlType):
    """A native, unparameterised type (one shared instance each)."""

    __slots__ = ("name", "type_code", "cass_name", "fixed_size", "_enc", "_dec", "_struct",
                 "_post", "_expr", "_names")

    def __init__(self, name, type_code, cass_class, enc, dec, struct_=None, post=None,
                 fixed_size=-1, expr=None, names=None):
        self.name = name
        self.type_code = type_code
        self.cass_name = MARSHAL + cass_class
        self.fixed_size = fixed_size
        self._enc = enc
        self._dec = dec
        self._struct = struct_
        self._post = post
        self._expr = expr
        self._names = names or {}

    def _to_bytes(self, value):
        return self._enc(value)

    def _from_bytes(self, data):
        return self._dec(data)

    def _codegen(self, i):
        if self._expr is not None:
            return self._expr, self._names
        if self._struct is not None:
            size = self._struct.size
            names = {"_s%d" % i: self._struct.unpack_from, "_bad": _bad_size}
            expr = "_s%d(buf, pos)[0]" % i
            if self._post is not None:
                names["_p%d" % i] = self._post
                expr = "_p%d(%s)" % (i, expr)
            return ("(%s if n == %d else _bad(n, %d, %r))" % (expr, size, size, self.name),
                    names)
        return CqlType._codegen(self, i)


def _fixed_decoder(st, name, post=None):
    unpack = st.unpack
    size = st.size

    if post is None:
        def dec(data):
            if len(data) != size:
                return _bad_size(len(data), size, name)
            return unpack(data)[0]
    else:
        def dec(data):
            if len(data) != size:
                return _bad_size(len(data), size, name)
            return post(unpack(data)[0])
    return dec


def _int_encoder(st, name):
    pack = st.pack

    def enc(value):
        if not isinstance(value, int):
            raise TypeError("%s needs an int, got %r" % (name, value))
        return pack(value)
    return enc


def _float_encoder(st):
    pack = st.pack

    def enc(value):
        return pack(value)
    return enc


# --- conversions used by several scalars -----------------------------------------------------

def _ts_from_ms(ms):
    try:
        return _EPOCH + datetime.timedelta(milliseconds=ms)
    except OverflowError:
        return ms  # outside datetime's range: hand back the raw milliseconds


def _ts_to_bytes(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            delta = value - _EPOCH_AWARE
        else:
            delta = value - _EPOCH
        ms = (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
    elif isinstance(value, datetime.date):
        ms = (value.toordinal() - _EPOCH.toordinal()) * 86400000
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    elif isinstance(value, float):
        ms = int(value)  # milliseconds, as cassandra-driver takes numbers
    else:
        raise TypeError("timestamp needs a datetime, date or int milliseconds, got %r" % (value,))
    return _LONG.pack(ms)


def _date_from_u32(raw):
    value = Date.__new__(Date)
    value.days_from_epoch = raw - _DATE_CENTER
    return value


def _date_to_bytes(value):
    if isinstance(value, int) and not isinstance(value, bool):
        # As cassandra-driver does: a bare int is the raw wire value (2**31 is 1970-01-01).
        # Date(n) takes days from the epoch instead.
        return _UINT.pack(value)
    days = value.days_from_epoch if isinstance(value, Date) else Date(value).days_from_epoch
    return _UINT.pack(days + _DATE_CENTER)


def _time_from_ns(ns):
    if not 0 <= ns < 86400 * 10 ** 9:
        raise ProtocolError("time value out of range: %d" % ns)
    value = Time.__new__(Time)
    value.nanosecond_time = ns
    return value


def _time_to_bytes(value):
    ns = value.nanosecond_time if isinstance(value, Time) else Time(value).nanosecond_time
    return _LONG.pack(ns)


def _varint_to_bytes(value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("varint needs an int, got %r" % (value,))
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return value.to_bytes(size, "big", signed=True)


def _varint_from_bytes(data):
    if not data:
        return None
    return int.from_bytes(data, "big", signed=True)


def _decimal_to_bytes(value):
    if not isinstance(value, decimal.Decimal):
        value = decimal.Decimal(value)
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError("decimal cannot hold %r" % (value,))
    unscaled = 0
    for digit in digits:
        unscaled = unscaled * 10 + digit
    if sign:
        unscaled = -unscaled
    return _INT.pack(-exponent) + _varint_to_bytes(unscaled)


def _decimal_from_bytes(data):
    if not data:
        return None
    if len(data) < 5:
        raise ProtocolError("decimal value too short (%d bytes)" % len(data))
    scale = _INT.unpack_from(data, 0)[0]
    unscaled = int.from_bytes(data[4:], "big", signed=True)
    return decimal.Decimal(unscaled).scaleb(-scale, _DECIMAL_CONTEXT)


_DECIMAL_CONTEXT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX,
                                   Emin=decimal.MIN_EMIN)


def _inet_to_bytes(value):
    if isinstance(value, (bytes, bytearray)) and len(value) in (4, 16):
        return bytes(value)
    return ipaddress.ip_address(value).packed


def _inet_from_bytes(data):
    if not data:
        return None
    if len(data) not in (4, 16):
        raise ProtocolError("inet value must be 4 or 16 bytes, got %d" % len(data))
    return ipaddress.ip_address(data)


def _uuid_to_bytes(value):
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, str):
        return uuid.UUID(value).bytes
    raise TypeError("uuid needs a uuid.UUID or str, got %r" % (value,))


def _make_fast_uuid():
    """uuid.UUID(bytes=b) validates its arguments; building the object directly is ~2.5x faster.

    Used only if it gives exactly what the constructor gives on this interpreter.
    """
    new = object.__new__
    setattr_ = object.__setattr__
    from_bytes = int.from_bytes
    cls = uuid.UUID
    safe = getattr(uuid, "SafeUUID", None)
    if safe is not None:
        unknown = safe.unknown

        def fast_uuid(data):
            value = new(cls)
            setattr_(value, "int", from_bytes(data, "big"))
            setattr_(value, "is_safe", unknown)
            return value
    else:
        def fast_uuid(data):
            value = new(cls)
            setattr_(value, "int", from_bytes(data, "big"))
            return value

    sample = bytes(range(1, 17))
    try:
        made, real = fast_uuid(sample), cls(bytes=sample)
        same_state = (getattr(made, "__dict__", None) == getattr(real, "__dict__", None)
                      and getattr(made, "is_safe", None) == getattr(real, "is_safe", None))
        if made == real and str(made) == str(real) and hash(made) == hash(real) and same_state:
            return fast_uuid
    except Exception:  # pragma: no cover - a future uuid.UUID we do not know
        pass
    return lambda data: cls(bytes=data)  # pragma: no cover


_fast_uuid = _make_fast_uuid()


def _uuid_from_bytes(data):
    if len(data) != 16:
        return _bad_size(len(data), 16, "uuid")
    return _fast_uuid(data)


def _text_to_bytes(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError("text needs a str, got %r" % (value,))


def _ascii_to_bytes(value):
    if isinstance(value, str):
        return value.encode("ascii")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError("ascii needs a str, got %r" % (value,))


def _blob_to_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("blob needs bytes, got %r" % (value,))


def _bool_from_bytes(data):
    if len(data) != 1:
        return _bad_size(len(data), 1, "boolean")
    return data[0] != 0


# --- vints (duration and vector element lengths) ------------------------------------------------

def write_unsigned_vint(value):
    """Cassandra's unsigned vint: leading 1-bits of the first byte count the extra bytes."""
    if value < 0 or value >= 1 << 64:
        raise ValueError("unsigned vint out of range: %r" % (value,))
    if value < 0x80:
        return bytes((value,))
    extra = 1
    while extra < 8 and value >= 1 << (7 * (extra + 1)):
        extra += 1
    if extra == 8:
        return b"\xff" + value.to_bytes(8, "big")
    first = (0xFF << (8 - extra)) & 0xFF
    raw = value.to_bytes(extra + 1, "big")
    return bytes((first | raw[0],)) + raw[1:]


def read_unsigned_vint(buf, pos):
    """Returns (value, new_pos); raises ProtocolError when truncated."""
    if pos >= len(buf):
        raise ProtocolError("truncated vint")
    first = buf[pos]
    extra = 0
    mask = 0x80
    while extra < 8 and first & mask:
        extra += 1
        mask >>= 1
    end = pos + 1 + extra
    if end > len(buf):
        raise ProtocolError("truncated vint")
    value = first & (0xFF >> extra) if extra < 8 else 0
    for byte in buf[pos + 1:end]:
        value = (value << 8) | byte
    return value, end


def _zigzag(value):
    return (value << 1) ^ (value >> 63)


def _unzigzag(value):
    return (value >> 1) ^ -(value & 1)


def _duration_to_bytes(value):
    months, days, nanos = value.months, value.days, value.nanoseconds
    if not (-2 ** 31 <= months < 2 ** 31 and -2 ** 31 <= days < 2 ** 31
            and -2 ** 63 <= nanos < 2 ** 63):
        raise ValueError("duration field out of range: %r" % (value,))
    return (write_unsigned_vint(_zigzag(months)) + write_unsigned_vint(_zigzag(days))
            + write_unsigned_vint(_zigzag(nanos)))


def _duration_from_bytes(data):
    if not data:
        return None
    months, pos = read_unsigned_vint(data, 0)
    days, pos = read_unsigned_vint(data, pos)
    nanos, pos = read_unsigned_vint(data, pos)
    if pos != len(data):
        raise ProtocolError("duration value has %d trailing bytes" % (len(data) - pos))
    return Duration(_unzigzag(months), _unzigzag(days), _unzigzag(nanos))


# --- the native types -----------------------------------------------------------------------

def _mk_fixed(name, code, cls, st, post=None, enc=None, fixed=True):
    return _Scalar(name, code, cls, enc or _int_encoder(st, name),
                   _fixed_decoder(st, name, post), struct_=st, post=post,
                   fixed_size=st.size if fixed else -1)


ASCII = _Scalar("ascii", 0x0001, "AsciiType", _ascii_to_bytes, lambda d: d.decode("ascii"),
                expr="buf[pos:e].decode('ascii')")
BIGINT = _mk_fixed("bigint", 0x0002, "LongType", _LONG)
BLOB = _Scalar("blob", 0x0003, "BytesType", _blob_to_bytes, bytes, expr="buf[pos:e]")
BOOLEAN = _Scalar("boolean", 0x0004, "BooleanType", lambda v: b"\x01" if v else b"\x00",
                  _bool_from_bytes, fixed_size=1)
COUNTER = _mk_fixed("counter", 0x0005, "CounterColumnType", _LONG)
DECIMAL = _Scalar("decimal", 0x0006, "DecimalType", _decimal_to_bytes, _decimal_from_bytes)
DOUBLE = _mk_fixed("double", 0x0007, "DoubleType", _DOUBLE, enc=_float_encoder(_DOUBLE))
FLOAT = _mk_fixed("float", 0x0008, "FloatType", _FLOAT, enc=_float_encoder(_FLOAT))
INT = _mk_fixed("int", 0x0009, "Int32Type", _INT)
TIMESTAMP = _Scalar("timestamp", 0x000B, "TimestampType", _ts_to_bytes,
                    _fixed_decoder(_LONG, "timestamp", _ts_from_ms), struct_=_LONG,
                    post=_ts_from_ms, fixed_size=8)
_UUID_EXPR = "(_uuid(buf[pos:e]) if n == 16 else _bad(n, 16, 'uuid'))"
_UUID_NAMES = {"_uuid": _fast_uuid, "_bad": _bad_size}
UUID = _Scalar("uuid", 0x000C, "UUIDType", _uuid_to_bytes, _uuid_from_bytes, fixed_size=16,
               expr=_UUID_EXPR, names=_UUID_NAMES)
TEXT = _Scalar("text", 0x000D, "UTF8Type", _text_to_bytes, lambda d: d.decode("utf-8"),
               expr="buf[pos:e].decode('utf-8')")
VARINT = _Scalar("varint", 0x000E, "IntegerType", _varint_to_bytes, _varint_from_bytes)
TIMEUUID = _Scalar("timeuuid", 0x000F, "TimeUUIDType", _uuid_to_bytes, _uuid_from_bytes,
                   fixed_size=16, expr=_UUID_EXPR, names=_UUID_NAMES)
INET = _Scalar("inet", 0x0010, "InetAddressType", _inet_to_bytes, _inet_from_bytes)
DATE = _Scalar("date", 0x0011, "SimpleDateType", _date_to_bytes,
               _fixed_decoder(_UINT, "date", _date_from_u32), struct_=_UINT,
               post=_date_from_u32)
TIME = _Scalar("time", 0x0012, "TimeType", _time_to_bytes,
               _fixed_decoder(_LONG, "time", _time_from_ns), struct_=_LONG, post=_time_from_ns)
SMALLINT = _mk_fixed("smallint", 0x0013, "ShortType", _SHORT, fixed=False)
TINYINT = _mk_fixed("tinyint", 0x0014, "ByteType", _BYTE, fixed=False)
DURATION = _Scalar("duration", 0x0015, "DurationType", _duration_to_bytes,
                   _duration_from_bytes)
# Cassandra's vector packing treats smallint/tinyint/date/time as variable-length (it says so).

NATIVE_TYPES = [ASCII, BIGINT, BLOB, BOOLEAN, COUNTER, DECIMAL, DOUBLE, FLOAT, INT, TIMESTAMP,
                UUID, TEXT, VARINT, TIMEUUID, INET, DATE, TIME, SMALLINT, TINYINT, DURATION]
