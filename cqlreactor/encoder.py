"""Client-side rendering of SimpleStatement parameters as CQL literals.

``session.execute("INSERT INTO t (k, v) VALUES (%s, %s)", (1, "a"))`` renders each Python value
as a CQL literal and substitutes it, as cassandra-driver does for unprepared statements (the
server knows no types for them).  Prepared statements bind typed values instead.
"""

import calendar
import datetime
import decimal
import ipaddress
import math
import uuid

from cqlreactor.core.types import quote_identifier

__all__ = ["cql_literal", "bind_params", "ValueSequence"]


class ValueSequence(list):
    """A list rendered as a parenthesized sequence, for ``IN %s`` (cassandra-driver's
    ``cassandra.query.ValueSequence``): ``[ValueSequence([1, 2])]`` renders ``(1, 2)``."""


def _quote(text):
    return "'" + text.replace("'", "''") + "'"


def _float(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _timestamp(value):
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    millis = calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000
    return str(millis)


def cql_literal(value, udt_fields=None):
    """The CQL literal for a Python value.

    Args:
        udt_fields: {class: field names} of the classes registered for user-defined types
            (``Cluster.register_user_type``): their instances render as UDT literals.

    Raises:
        TypeError: for a value with no CQL literal, naming its type.
    """
    if value is None:
        return "NULL"
    if udt_fields:
        names = udt_fields.get(type(value))
        if names is not None:
            return "{" + ", ".join("%s: %s" % (
                quote_identifier(f), cql_literal(getattr(value, f, None), udt_fields))
                for f in names) + "}"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return _timestamp(value)
    if isinstance(value, datetime.date):
        return _quote(value.isoformat())
    if isinstance(value, datetime.time):
        return _quote(value.isoformat())
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return _quote(str(value))
    if isinstance(value, dict):
        return "{" + ", ".join("%s: %s" % (cql_literal(k, udt_fields), cql_literal(v, udt_fields))
                               for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(cql_literal(v, udt_fields) for v in value) + "}"
    if isinstance(value, ValueSequence):
        return "(" + ", ".join(cql_literal(v, udt_fields) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(cql_literal(v, udt_fields) for v in value) + "]"
    if isinstance(value, tuple):
        fields = getattr(value, "_fields", None)
        if fields:   # a namedtuple stands for a UDT literal
            return "{" + ", ".join("%s: %s" % (f, cql_literal(v, udt_fields))
                                   for f, v in zip(fields, value)) + "}"
        return "(" + ", ".join(cql_literal(v, udt_fields) for v in value) + ")"
    # Date/Time/Duration-like objects of the type layer render through their str().
    for cls_name in ("Date", "Time"):
        if type(value).__name__ == cls_name:
            return _quote(str(value))
    if type(value).__name__ == "Duration":
        return str(value)
    if hasattr(value, "items"):   # OrderedMap (maps whose keys are not hashable)
        return "{" + ", ".join("%s: %s" % (cql_literal(k, udt_fields), cql_literal(v, udt_fields))
                               for k, v in value.items()) + "}"
    if hasattr(value, "__iter__") and hasattr(value, "__len__"):   # SortedSet and friends
        return "{" + ", ".join(cql_literal(v, udt_fields) for v in value) + "}"
    raise TypeError("no CQL literal for a %s value (%r); use a prepared statement or one of "
                    "the supported Python types" % (type(value).__name__, value))


def bind_params(query, params, udt_fields=None):
    """Substitute ``params`` (a sequence for ``%s``, a mapping for ``%(name)s``) into ``query``
    (``udt_fields`` as for :func:`cql_literal`).

    Raises:
        TypeError: when the placeholders and the parameters do not match.
    """
    if params is None:
        return query
    if isinstance(params, dict):
        rendered = dict((k, cql_literal(v, udt_fields)) for k, v in params.items())
    else:
        rendered = tuple(cql_literal(v, udt_fields) for v in params)
    try:
        return query % rendered
    except (TypeError, KeyError, ValueError) as exc:
        raise TypeError("parameters %r do not match the placeholders of %r: %s"
                        % (params, query, exc))
