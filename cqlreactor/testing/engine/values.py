"""Typed values for the simulated cluster's CQL engine: CQL literals to bytes, bytes checks,
collection cells handled as bytes.

The engine keeps every value serialized. Literals written in a query are converted to a Python
value for the column's type (:func:`literal_value`) and serialized with
``cqlreactor.core.types``; sets and maps are normalised (sorted, deduplicated) the way
Cassandra stores them (:func:`normalize`).

Errors raise :class:`ValueError` with Cassandra-like wording; the engine turns them into
``Invalid`` (0x2200) answers.
"""

import datetime
import decimal
import re
import struct
import uuid

from cqlreactor.core import types as _t
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine.store import sort_key_for

__all__ = ["literal_value", "type_for", "normalize", "split_cells", "join_cells",
           "split_pairs", "join_pairs", "python_to_bytes", "check_bytes", "now_timeuuid"]

_I32 = struct.Struct(">i")
_EMPTY_COLLECTION = b"\x00\x00\x00\x00"


def type_for(type_expr, user_types):
    """The core.types CqlType of a parsed type; ``user_types``: {name: UserTypeDef}.

    Raises ValueError naming an unknown user type.
    """
    udts = {}
    _collect_udts(type_expr, user_types, udts)
    return _t.parse_cql_type(P.render_type(type_expr), udts)


def _collect_udts(type_expr, user_types, out):
    if type_expr.name == "udt":
        name = type_expr.params[0]
        if name in out:
            return
        udef = user_types.get(name)
        if udef is None:
            raise ValueError("Unknown type %s" % (name,))
        fields = []
        for fname, ftype in zip(udef.field_names, udef.field_types):
            _collect_udts(ftype, user_types, out)
            fields.append((fname, type_for(ftype, user_types)))
        out[name] = _t.UserType(udef.keyspace, name, fields, frozen=False)
        return
    if type_expr.name == "vector":
        _collect_udts(type_expr.params[0], user_types, out)
        return
    for p in type_expr.params or ():
        if isinstance(p, P.TypeExpr):
            _collect_udts(p, user_types, out)


def _unfrozen(type_expr):
    while type_expr.name == "frozen":
        type_expr = type_expr.params[0]
    return type_expr


def _kind(const):
    return {"int": "INTEGER", "float": "FLOAT", "str": "STRING", "uuid": "UUID",
            "bool": "BOOLEAN", "blob": "HEX", "null": "NULL"}.get(const.kind, const.kind.upper())


_TS_RE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_DURATION_RE = re.compile(r"(\d+)(y|mo|w|d|h|ms|m|s|us|µs|ns)", re.IGNORECASE)


def parse_timestamp(text):
    """Milliseconds since the epoch of a CQL timestamp string; ValueError when malformed."""
    m = _TS_RE.match(text.strip())
    if not m:
        raise ValueError("Unable to coerce '%s' to a formatted date (long)" % text)
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    dt = datetime.datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    ms = (dt - datetime.datetime(1970, 1, 1)) // datetime.timedelta(milliseconds=1)
    if frac:
        ms += int((frac + "000")[:3])
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60000
    return ms


def _parse_time(text):
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError("Unable to coerce '%s' to a formatted time (long)" % text)
    hh, mi, ss, frac = m.groups()
    ns = ((int(hh) * 60 + int(mi)) * 60 + int(ss)) * 10 ** 9
    if frac:
        ns += int((frac + "000000000")[:9])
    if ns >= 86400 * 10 ** 9:
        raise ValueError("Unable to coerce '%s' to a formatted time (long)" % text)
    return ns


_ISO_DURATION_RE = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$|^P(\d+)W$",
    re.IGNORECASE)


def _parse_duration(text):
    """A Duration from Cassandra's duration syntaxes: ``1y2mo3w4d5h6m7s8ms9us10ns`` and the
    ISO 8601 ``P1Y2M3DT4H5M6S`` / ``P2W`` forms, each optionally negative."""
    months = days = nanos = 0
    pos = 0
    neg = text.startswith("-")
    body = text[1:] if neg else text
    iso = _ISO_DURATION_RE.match(body) if body[:1] in ("P", "p") else None
    if iso and any(g is not None for g in iso.groups()):
        y, mo, d, h, mi, sec, w = [int(g or 0) for g in iso.groups()]
        months, days = y * 12 + mo, d + 7 * w
        nanos = ((h * 60 + mi) * 60 + sec) * 10 ** 9
        if neg:
            months, days, nanos = -months, -days, -nanos
        return _t.Duration(months, days, nanos)
    units = {"y": ("mo", 12), "mo": ("mo", 1), "w": ("d", 7), "d": ("d", 1),
             "h": ("ns", 3600 * 10 ** 9), "m": ("ns", 60 * 10 ** 9), "s": ("ns", 10 ** 9),
             "ms": ("ns", 10 ** 6), "us": ("ns", 1000), "µs": ("ns", 1000), "ns": ("ns", 1)}
    for m in _DURATION_RE.finditer(body):
        if m.start() != pos:
            break
        pos = m.end()
        field, mult = units[m.group(2).lower()]
        n = int(m.group(1)) * mult
        if field == "mo":
            months += n
        elif field == "d":
            days += n
        else:
            nanos += n
    if pos != len(body) or not body:
        raise ValueError("Unable to convert '%s' to a duration" % text)
    if neg:
        months, days, nanos = -months, -days, -nanos
    return _t.Duration(months, days, nanos)


def literal_value(term, type_expr, column="value"):
    """The Python value (for core.types serialize) of a constant term for ``type_expr``.

    Returns None for null. ``term`` is a parser Const or Collection without bind markers.
    Raises ValueError with Cassandra's wording for mismatches.
    """
    texpr = _unfrozen(type_expr)
    name = texpr.name
    if isinstance(term, P.Const):
        kind, value = term.kind, term.value
        if kind == "null":
            return None
        bad = ValueError("Invalid %s constant (%s) for \"%s\" of type %s"
                         % (_kind(term), value, column, P.render_type(type_expr)))
        if name in ("int", "bigint", "smallint", "tinyint", "varint", "counter"):
            if kind != "int":
                raise bad
            return value
        if name in ("float", "double"):
            if kind not in ("int", "float"):
                raise bad
            return float(value)
        if name == "decimal":
            if kind not in ("int", "float"):
                raise bad
            if kind == "float" and term.text:
                return decimal.Decimal(term.text)         # every digit as written
            return decimal.Decimal(repr(value) if kind == "float" else value)
        if name in ("text", "varchar", "ascii"):
            if kind != "str":
                raise bad
            if name == "ascii":
                try:
                    value.encode("ascii")
                except UnicodeEncodeError:
                    raise ValueError("Invalid ASCII character in string literal")
            return value
        if name == "blob":
            if kind != "blob":
                raise bad
            return value
        if name == "boolean":
            if kind != "bool":
                raise bad
            return value
        if name in ("uuid", "timeuuid"):
            if kind != "uuid":
                raise bad
            if name == "timeuuid" and value.version != 1:
                raise ValueError("Unsupported UUID type for timeuuid: %s" % (value,))
            return value
        if name == "timestamp":
            if kind == "int":
                return value
            if kind == "str":
                return parse_timestamp(value)
            raise bad
        if name == "date":
            if kind == "int":
                return _RawBytes(struct.pack(">I", value & 0xFFFFFFFF))
            if kind == "str":
                try:
                    return datetime.datetime.strptime(value.strip(), "%Y-%m-%d").date()
                except ValueError:
                    raise ValueError("Unable to coerce '%s' to a formatted date (long)" % value)
            raise bad
        if name == "time":
            if kind == "int":
                return _RawBytes(struct.pack(">q", value))
            if kind == "str":
                return _RawBytes(struct.pack(">q", _parse_time(value)))
            raise bad
        if name == "inet":
            if kind != "str":
                raise bad
            return value
        if name == "duration":
            # Cassandra takes duration constants and integers, never a quoted string
            # (Constants.Literal.testAssignment): '1h' is "Invalid STRING constant"
            if kind == "duration":
                return _parse_duration(value)
            if kind == "int":
                return _parse_duration(term.text or str(value))
            raise bad
        raise bad
    if isinstance(term, P.Collection):
        kind = term.kind
        if kind == "list" and name in ("list", "set", "vector"):
            sub = texpr.params[0]
            vals = [literal_value(item, sub, column) for item in term.items]
            if name == "set":
                return _SetValue(vals)
            return vals
        if kind == "set" and name == "set":
            sub = texpr.params[0]
            return _SetValue([literal_value(item, sub, column) for item in term.items])
        if kind == "map" and name == "set" and not term.items:
            return _SetValue([])
        if kind == "map" and name == "map":
            kt, vt = texpr.params
            return _MapValue([(literal_value(k, kt, column), literal_value(v, vt, column))
                              for k, v in term.items])
        if kind == "tuple" and name == "tuple":
            if len(term.items) > len(texpr.params):
                raise ValueError("Invalid tuple literal for %s: too many elements. Type %s "
                                 "expects %d but got %d" % (column, P.render_type(texpr),
                                                            len(texpr.params), len(term.items)))
            return tuple(literal_value(item, t, column)
                         for item, t in zip(term.items, texpr.params))
        if kind == "udt" and name == "udt":
            return _UdtValue(term.items)
        raise ValueError("Invalid %s literal for %s of type %s"
                         % (kind, column, P.render_type(type_expr)))
    raise ValueError("Invalid value for %s" % column)


class _RawBytes(object):
    """An already serialized value (inside literal_value results)."""
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class _SetValue(object):
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


class _MapValue(object):
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


class _UdtValue(object):
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


def python_to_bytes(value, type_expr, ctype, user_types, column="value"):
    """Serialize a literal_value result for ``type_expr`` (codec ``ctype``); None for null."""
    if value is None:
        return None
    texpr = _unfrozen(type_expr)
    if isinstance(value, _RawBytes):
        return value.data
    name = texpr.name
    if name in ("list", "set", "vector"):
        sub = texpr.params[0]
        subtype = ctype.subtypes[0] if ctype.subtypes else None
        items = value.items if isinstance(value, _SetValue) else value
        cells = []
        for v in items:
            if v is None:
                raise ValueError("null is not supported inside collections")
            cells.append(python_to_bytes(v, sub, subtype, user_types, column))
        if name == "vector":
            return ctype.serialize([subtype.deserialize(c) for c in cells])
        data = join_cells(cells)
        return normalize(texpr, data) if name == "set" else data
    if name == "map":
        kt, vt = texpr.params
        kc, vc = ctype.subtypes
        pairs = []
        for k, v in value.items:
            if k is None or v is None:
                raise ValueError("null is not supported inside collections")
            pairs.append((python_to_bytes(k, kt, kc, user_types, column),
                          python_to_bytes(v, vt, vc, user_types, column)))
        return normalize(texpr, join_pairs(pairs))
    if name == "tuple":
        cells = []
        for i, t in enumerate(texpr.params):
            v = value[i] if i < len(value) else None
            cells.append(None if v is None else
                         python_to_bytes(v, t, ctype.subtypes[i], user_types, column))
        return _join_fields(cells)
    if name == "udt":
        udef = user_types.get(texpr.params[0])
        given = {}
        for fname, term in value.items:
            if fname not in udef.field_names:
                raise ValueError("Unknown field '%s' in value of user defined type %s"
                                 % (fname, texpr.params[0]))
            given[fname] = term
        cells = []
        for i, (fname, ftype) in enumerate(zip(udef.field_names, udef.field_types)):
            term = given.get(fname)
            if term is None:
                cells.append(None)
                continue
            if not isinstance(term, (P.Const, P.Collection)):
                raise ValueError("bind markers inside UDT literals are not supported by the "
                                 "simulator")
            v = literal_value(term, ftype, column)
            cells.append(None if v is None else
                         python_to_bytes(v, ftype, ctype.subtypes[i], user_types, column))
        while cells and cells[-1] is None:
            cells.pop()
        return _join_fields(cells)
    try:
        return ctype.serialize(value)
    except Exception as exc:  # noqa: BLE001 - any codec complaint is an invalid value
        raise ValueError("Invalid value for %s of type %s: %s" % (column, ctype.name, exc))


def _join_fields(cells):
    out = []
    for c in cells:
        if c is None:
            out.append(b"\xff\xff\xff\xff")
        else:
            out.append(_I32.pack(len(c)))
            out.append(c)
    return b"".join(out)


def split_cells(data):
    """Element bytes of a serialized list/set (v3+ layout). Raises ValueError when malformed."""
    return _split_n(data, 1, "list")


def join_cells(cells):
    out = [_I32.pack(len(cells))]
    for c in cells:
        out.append(_I32.pack(len(c)))
        out.append(c)
    return b"".join(out)


def split_pairs(data):
    cells = _split_n(data, 2, "map")
    return list(zip(cells[0::2], cells[1::2]))


def _split_n(data, per, what):
    """The ``n * per`` cells after a serialized collection's count ``n``."""
    if len(data) < 4:
        raise ValueError("Not enough bytes to read a %s" % (what,))
    n = _I32.unpack_from(data, 0)[0]
    if n < 0 or n > len(data):
        raise ValueError("Invalid collection size %d" % n)
    pos = 4
    out = []
    for _ in range(n * per):
        if pos + 4 > len(data):
            raise ValueError("Not enough bytes to read a %s" % (what,))
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if size < 0:
            raise ValueError("null is not supported inside collections")
        if pos + size > len(data):
            raise ValueError("Not enough bytes to read a %s" % (what,))
        out.append(data[pos:pos + size])
        pos += size
    if pos != len(data):
        raise ValueError("Unexpected extraneous bytes after %s value" % (what,))
    return out


def join_pairs(pairs):
    out = [_I32.pack(len(pairs))]
    for k, v in pairs:
        out.append(_I32.pack(len(k)))
        out.append(k)
        out.append(_I32.pack(len(v)))
        out.append(v)
    return b"".join(out)


def normalize(type_expr, data):
    """Sort and deduplicate a serialized set (by element) or map (by key, last value wins)."""
    texpr = _unfrozen(type_expr)
    if texpr.name == "set":
        key = sort_key_for(texpr.params[0])
        seen = {}
        for c in split_cells(data):
            seen[c] = key(c)
        return join_cells(sorted(seen, key=lambda c: seen[c]))
    if texpr.name == "map":
        key = sort_key_for(texpr.params[0])
        seen = {}
        for k, v in split_pairs(data):
            seen[k] = v
        return join_pairs(sorted(seen.items(), key=lambda kv: key(kv[0])))
    return data


def check_bytes(ctype, data, column):
    """Validate a bound value; raise ValueError (Cassandra-like text) when malformed."""
    try:
        ctype.deserialize(data)
    except Exception as exc:  # noqa: BLE001 - any decode complaint is an invalid value
        raise ValueError("Invalid value for column %s of type %s: %s" % (column, ctype.name, exc))


def now_timeuuid():
    return uuid.uuid1()
