"""Cassandra's JSON encoding of each CQL type, one value at a time (no plans here).

``to_json`` writes a deserialized value as Cassandra's ``toJSONString`` does, ``from_json``
takes a decoded JSON value back as ``fromJSONObject`` does, ``from_json_text`` decodes a
``fromJson()`` argument.  SELECT JSON / INSERT JSON (``jsonrows``), ``toJson()`` (``reads``)
and ``fromJson()`` (``plans``) all use these: one renderer, one parser.
"""

import datetime
import decimal
import ipaddress
import json
import uuid

from cqlreactor.core import types as T
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import invalid

__all__ = ["to_json", "from_json", "from_json_text", "json_key"]

_EPOCH = datetime.datetime(1970, 1, 1)
_NUMBERS = (0x0002, 0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x000E, 0x0013, 0x0014)


# --- encoding -----------------------------------------------------------------------------------

def _duration_text(d):
    parts = []
    months, days, nanos = d.months, d.days, d.nanoseconds
    sign = "-" if (months < 0 or days < 0 or nanos < 0) else ""
    months, days, nanos = abs(months), abs(days), abs(nanos)
    for amount, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d")):
        if amount:
            parts.append("%d%s" % (amount, unit))
    for size, unit in ((3600 * 10 ** 9, "h"), (60 * 10 ** 9, "m"), (10 ** 9, "s"),
                       (10 ** 6, "ms"), (1000, "us"), (1, "ns")):
        if nanos >= size:
            parts.append("%d%s" % (nanos // size, unit))
            nanos %= size
    return sign + "".join(parts)


def json_key(name):
    """A column or field name as Cassandra writes it as a JSON key."""
    if name != name.lower():
        name = '"%s"' % name
    return json.dumps(name, ensure_ascii=False)


def to_json(cql_type, value):
    """JSON text of one deserialized value of ``cql_type``, as Cassandra's toJSONString."""
    if value is None:
        return "null"
    code = cql_type.type_code
    if isinstance(cql_type, T.UserType):
        return "{%s}" % ", ".join("%s: %s" % (json_key(n), to_json(t, v)) for n, t, v in zip(
            cql_type.field_names, cql_type.subtypes, value))
    if isinstance(cql_type, T.TupleType):
        return "[%s]" % ", ".join(to_json(t, v) for t, v in zip(cql_type.subtypes, value))
    if isinstance(cql_type, T.MapType):
        kt, vt = cql_type.subtypes
        items = []
        for k, v in value.items():
            key = to_json(kt, k)
            if not key.startswith('"'):
                key = json.dumps(key, ensure_ascii=False)
            items.append("%s: %s" % (key, to_json(vt, v)))
        return "{%s}" % ", ".join(items)
    if isinstance(cql_type, (T.ListType, T.SetType, T.VectorType)):
        sub = cql_type.subtypes[0]
        return "[%s]" % ", ".join(to_json(sub, v) for v in value)
    if code == 0x0004:
        return "true" if value else "false"
    if code in _NUMBERS:
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                     float("-inf"))):
            return '"%s"' % ("NaN" if value != value else
                             ("Infinity" if value > 0 else "-Infinity"))
        return str(value) if isinstance(value, decimal.Decimal) else repr(value)
    if code == 0x000B:
        text = value.strftime("%Y-%m-%d %H:%M:%S") + ".%03dZ" % (value.microsecond // 1000)
    elif code == 0x0011:
        text = str(value)
    elif code == 0x0012:
        ns = value.nanosecond_time if hasattr(value, "nanosecond_time") else int(value)
        secs, frac = divmod(ns, 10 ** 9)
        text = "%02d:%02d:%02d.%09d" % (secs // 3600, secs // 60 % 60, secs % 60, frac)
    elif code == 0x0003:
        text = "0x" + bytes(value).hex()
    elif code == 0x0015:
        text = _duration_text(value)
    else:
        text = str(value)
    return json.dumps(text, ensure_ascii=False)


# --- decoding ---------------------------------------------------------------------------------

def _bad(value, cql_type, column):
    return invalid("Error decoding JSON value for %s: Unable to make %s from %s"
                   % (column, cql_type.name, json.dumps(value)))


def from_json(cql_type, value, column):
    """The Python value (for ``cql_type.serialize``) of a JSON value, as Cassandra's
    fromJSONObject takes it; EngineError (Invalid) naming the column otherwise."""
    if value is None:
        return None
    code = cql_type.type_code
    try:
        if isinstance(cql_type, T.UserType):
            if not isinstance(value, dict):
                raise _bad(value, cql_type, column)
            fields = {}
            for k, v in value.items():
                name = k[1:-1] if len(k) > 1 and k[0] == k[-1] == '"' else k.lower()
                if name not in cql_type.field_names:
                    raise invalid("Unknown field '%s' in value of user defined type %s"
                                  % (name, cql_type.udt_name))
                fields[name] = v
            return tuple(from_json(t, fields.get(n), column)
                         for n, t in zip(cql_type.field_names, cql_type.subtypes))
        if isinstance(cql_type, T.TupleType):
            if not isinstance(value, list) or len(value) != len(cql_type.subtypes):
                raise _bad(value, cql_type, column)
            return tuple(from_json(t, v, column) for t, v in zip(cql_type.subtypes, value))
        if isinstance(cql_type, T.MapType):
            if not isinstance(value, dict):
                raise _bad(value, cql_type, column)
            kt, vt = cql_type.subtypes
            out = {}
            for k, v in value.items():
                key = k
                if kt.type_code not in (0x0001, 0x000D):
                    try:
                        key = json.loads(k, parse_float=decimal.Decimal)
                    except ValueError:
                        key = k
                out[from_json(kt, key, column)] = from_json(vt, v, column)
            return out
        if isinstance(cql_type, (T.ListType, T.SetType, T.VectorType)):
            if not isinstance(value, list):
                raise _bad(value, cql_type, column)
            items = [from_json(cql_type.subtypes[0], v, column) for v in value]
            return set(items) if isinstance(cql_type, T.SetType) else items
        if code == 0x0004:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _bad(value, cql_type, column)
        if code in (0x0002, 0x0005, 0x0009, 0x000E, 0x0013, 0x0014):
            if isinstance(value, (bool, float, decimal.Decimal)):
                raise _bad(value, cql_type, column)
            return int(value)
        if code in (0x0007, 0x0008):
            if isinstance(value, bool):
                raise _bad(value, cql_type, column)
            return float(value)
        if code == 0x0006:
            if isinstance(value, bool):
                raise _bad(value, cql_type, column)
            return decimal.Decimal(str(value))
        if code in (0x0001, 0x000D):
            if not isinstance(value, str):
                raise _bad(value, cql_type, column)
            return value
        if code in (0x000C, 0x000F):
            return uuid.UUID(value)
        if code == 0x000B:
            return value if isinstance(value, int) else V.parse_timestamp(value)
        if code == 0x0011:
            if isinstance(value, int):
                return T.Date(value)
            return datetime.datetime.strptime(value.strip(), "%Y-%m-%d").date()
        if code == 0x0012:
            if isinstance(value, int):
                return T.Time(value)
            return T.Time(V._parse_time(value))
        if code == 0x0003:
            if not isinstance(value, str) or not value.startswith("0x"):
                raise invalid("Value '%s' is not a valid blob representation: String "
                              "representation of blob is missing 0x prefix: %s"
                              % (value, value))
            return bytes.fromhex(value[2:])
        if code == 0x0010:
            return str(ipaddress.ip_address(value))
        if code == 0x0015:
            return V._parse_duration(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise invalid("Error decoding JSON value for %s: %s" % (column, exc))
    raise invalid("INSERT JSON of a %s column is not supported by the simulator"
                  % (cql_type.name,))


def from_json_text(cql_type, text, column):
    """fromJson(text) for a ``cql_type`` receiver: the serialized value (None for JSON null),
    or EngineError (Invalid) as Cassandra's FromJsonFct words it."""
    try:
        document = json.loads(text, parse_float=decimal.Decimal)
    except ValueError as exc:
        raise invalid("Could not decode JSON string '%s': %s" % (text, exc))
    value = from_json(cql_type, document, column)
    return None if value is None else cql_type.serialize(value)
