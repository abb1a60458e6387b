"""Hypothesis strategies for CQL types and their values, shared by the test_types* modules.

``cql_types()`` draws a (possibly nested) CqlType; ``values_for(ctype)`` draws a Python value
that the type can hold; ``normalize(ctype, value)`` maps our values and cassandra-driver's onto
plain comparable structures (dates to day counts, inet to ipaddress, sets to sorted lists …).
"""

import datetime
import ipaddress
import uuid
import zlib

from hypothesis import given, settings, strategies as st

from cqlreactor.core import types as T

EPOCH = datetime.datetime(1970, 1, 1)
# counter cannot sit inside collections in CQL, but the bytes are bigint's; keep it anyway
SCALARS = list(T.NATIVE_TYPES)
VECTOR_ELEMENTS = [T.FLOAT, T.INT, T.BIGINT, T.DOUBLE, T.BOOLEAN, T.UUID, T.TEXT, T.SMALLINT,
                   T.TINYINT, T.VARINT, T.DATE, T.TIME, T.TIMESTAMP, T.DECIMAL, T.INET, T.ASCII]

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


def _udt(children):
    return st.lists(st.tuples(_names, children), min_size=1, max_size=3,
                    unique_by=lambda f: f[0]).map(
        lambda fields: T.UserType("ks", _udt_name(fields), fields, frozen=True))


def _udt_name(fields):
    # different field types give different names, so one user_types mapping can hold them all
    signature = ",".join("%s:%s" % (f, t.cass_name) for f, t in fields).encode("utf-8")
    return "udt_%s_%08x" % ("_".join(f for f, _ in fields), zlib.crc32(signature))


def _collections(children):
    return st.one_of(
        children.map(T.ListType),
        children.map(T.SetType),
        st.tuples(children, children).map(lambda kv: T.MapType(*kv)),
        st.lists(children, min_size=1, max_size=3).map(lambda subs: T.TupleType(subs, True)),
        _udt(children),
        st.tuples(st.sampled_from(VECTOR_ELEMENTS), st.integers(1, 4)).map(
            lambda ed: T.VectorType(*ed)),
    )


def cql_types(max_leaves=6, vectors=True):
    types = st.recursive(st.sampled_from(SCALARS), _collections, max_leaves=max_leaves)
    if not vectors:
        types = types.filter(lambda t: "VectorType" not in t.cass_name)
    return types


_MS = datetime.timedelta(milliseconds=1)


def _scalar_values(ctype):
    if ctype is T.ASCII:
        return st.text(alphabet=st.characters(max_codepoint=127), max_size=10)
    if ctype is T.TEXT:
        return st.text(max_size=10)
    if ctype is T.BLOB:
        return st.binary(max_size=10)
    if ctype is T.BOOLEAN:
        return st.booleans()
    if ctype in (T.BIGINT, T.COUNTER):
        return st.integers(-2 ** 63, 2 ** 63 - 1)
    if ctype is T.INT:
        return st.integers(-2 ** 31, 2 ** 31 - 1)
    if ctype is T.SMALLINT:
        return st.integers(-2 ** 15, 2 ** 15 - 1)
    if ctype is T.TINYINT:
        return st.integers(-128, 127)
    if ctype is T.VARINT:
        return st.integers(-2 ** 200, 2 ** 200)
    if ctype is T.DECIMAL:
        return st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
            lambda d: -2 ** 31 < d.as_tuple().exponent < 2 ** 31)
    if ctype is T.DOUBLE:
        return st.floats(allow_nan=False)
    if ctype is T.FLOAT:
        return st.floats(allow_nan=False, width=32)
    if ctype is T.TIMESTAMP:
        return st.one_of(
            st.datetimes().map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
            st.datetimes(min_value=datetime.datetime(1, 1, 2),
                         max_value=datetime.datetime(9999, 12, 30)).map(
                lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000,
                                    tzinfo=datetime.timezone(datetime.timedelta(hours=3)))),
            st.integers(-62135596800000, 253402300799999))
    if ctype is T.DATE:
        return st.one_of(st.integers(-2 ** 31, 2 ** 31 - 1).map(T.Date), st.dates())
    if ctype is T.TIME:
        return st.one_of(st.integers(0, 86400 * 10 ** 9 - 1).map(T.Time), st.times())
    if ctype is T.UUID:
        return st.uuids()
    if ctype is T.TIMEUUID:
        return st.uuids(version=1)
    if ctype is T.INET:
        return st.one_of(st.ip_addresses(), st.ip_addresses().map(str))
    if ctype is T.DURATION:
        return st.builds(T.Duration, st.integers(-2 ** 31, 2 ** 31 - 1),
                         st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-2 ** 63, 2 ** 63 - 1))
    raise AssertionError("no strategy for %s" % ctype.name)


def values_for(ctype, nulls=True, null_in_keys=True):
    """Values ``ctype`` can hold; ``nulls`` allows None in tuple/UDT fields (``null_in_keys``:
    also inside map keys, which cassandra-driver's OrderedMapSerializedKey cannot look up)."""
    def sub(t, allow_nulls=nulls):
        return values_for(t, allow_nulls, null_in_keys)

    if isinstance(ctype, T.VectorType):
        return st.lists(sub(ctype.subtypes[0]), min_size=ctype.dimension,
                        max_size=ctype.dimension)
    if isinstance(ctype, T.UserType):
        fields = [_maybe_null(sub(t), nulls) for t in ctype.subtypes]
        return st.tuples(*fields).map(lambda vals: ctype.value_class(*vals))
    if isinstance(ctype, T.TupleType):
        return st.tuples(*[_maybe_null(sub(t), nulls) for t in ctype.subtypes])
    if isinstance(ctype, T.SetType):
        elem = ctype.subtypes[0]
        return st.lists(sub(elem), max_size=3).map(
            lambda items: T.SortedSet(_dedupe(elem, items, lambda item: item)))
    if isinstance(ctype, T.ListType):
        return st.lists(sub(ctype.subtypes[0]), max_size=3)
    if isinstance(ctype, T.MapType):
        key, val = ctype.subtypes
        pairs = st.lists(st.tuples(sub(key, nulls and null_in_keys), sub(val)), max_size=3)
        return pairs.map(lambda kvs: (dict if key.hashable else T.OrderedMap)(
            _dedupe(key, kvs, lambda kv: kv[0])))
    return _scalar_values(ctype)


def _dedupe(ctype, items, key_of):
    """Drop items whose key equals an earlier one once serialized (e.g. an IPv4Address and its
    str, a naive and an aware datetime for the same instant), as the server would."""
    seen = set()
    out = []
    for item in items:
        raw = ctype.serialize(key_of(item), 4)
        if raw not in seen:
            seen.add(raw)
            out.append(item)
    return out


def _maybe_null(strategy, nulls):
    return st.one_of(st.none(), strategy) if nulls else strategy


def _ms(value):
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    delta = value - EPOCH
    return delta.days * 86400000 + delta.seconds * 1000 + int(round(delta.microseconds / 1000.0))


def normalize(ctype, value):
    """A plain, comparable form of a value of ``ctype`` (ours or cassandra-driver's)."""
    if value is None:
        return None
    if isinstance(ctype, T.VectorType) or (
            isinstance(ctype, T.ListType) and not isinstance(ctype, T.SetType)):
        return ("list", [normalize(ctype.subtypes[0], v) for v in value])
    if isinstance(ctype, T.SetType):
        return ("set", sorted((normalize(ctype.subtypes[0], v) for v in value), key=repr))
    if isinstance(ctype, T.MapType):
        key, val = ctype.subtypes
        return ("map", sorted(((normalize(key, k), normalize(val, v))
                               for k, v in value.items()), key=repr))
    if isinstance(ctype, T.TupleType):
        items = list(value) + [None] * (len(ctype.subtypes) - len(value))
        return ("tuple", [normalize(t, v) for t, v in zip(ctype.subtypes, items)])
    if ctype is T.TIMESTAMP:
        return _ms(value)
    if ctype is T.DATE:
        if isinstance(value, datetime.date):
            return value.toordinal() - datetime.date(1970, 1, 1).toordinal()
        if isinstance(value, int):  # a raw wire value, as cassandra-driver takes ints
            return value - 2 ** 31
        return value.days_from_epoch
    if ctype is T.TIME:
        if isinstance(value, datetime.time):
            return T.Time(value).nanosecond_time
        return value.nanosecond_time
    if ctype is T.DURATION:
        return (value.months, value.days, value.nanoseconds)
    if ctype is T.INET:
        return ipaddress.ip_address(str(value))
    if ctype is T.DOUBLE or ctype is T.FLOAT:
        return ("float", repr(float(value)))  # keeps -0.0 apart from 0.0
    if ctype is T.DECIMAL:
        return ("decimal", str(value))
    if ctype in (T.UUID, T.TIMEUUID):
        return uuid.UUID(str(value))
    return value


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_strategies_draw_values_their_type_accepts(data):
    ctype = data.draw(cql_types())
    value = data.draw(values_for(ctype))
    assert ctype.serialize(value, 4) is not None
    assert normalize(ctype, value) == normalize(ctype, value)
