"""CQL types: round trips, fixed byte layouts, type options and names, row decoding, bad input."""

import datetime
import decimal
import ipaddress
import struct
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.core import types as T
from cqlreactor.core.errors import ProtocolError

from test_types_strategies import cql_types, normalize, values_for


def cell(data):
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


# --- round trips -------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from([4, 5]))
def test_every_type_round_trips(data, version):
    ctype = data.draw(cql_types(), label="type")
    value = data.draw(values_for(ctype), label="value")
    encoded = ctype.serialize(value, version)
    decoded = ctype.deserialize(encoded, version)
    assert normalize(ctype, decoded) == normalize(ctype, value)
    # decoding is deterministic and re-encoding gives the same bytes
    assert ctype.serialize(decoded, version) == encoded


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_rows_round_trip_through_the_row_decoder(data):
    col_types = data.draw(st.lists(cql_types(max_leaves=3), min_size=1, max_size=5))
    rows = data.draw(st.lists(st.tuples(*[st.one_of(st.none(), values_for(t))
                                          for t in col_types]), max_size=5))
    body = b"".join(cell(None if v is None else t.serialize(v, 4))
                    for row in rows for t, v in zip(col_types, row))
    prefix = b"junk"
    decoder = T.make_row_decoder(col_types, 4)
    out, pos = decoder(prefix + body + b"tail", len(prefix), len(rows))
    assert pos == len(prefix) + len(body)
    assert len(out) == len(rows)
    for got, want in zip(out, rows):
        assert isinstance(got, tuple)
        assert [normalize(t, v) for t, v in zip(col_types, got)] == \
            [normalize(t, v) for t, v in zip(col_types, want)]
    # a memoryview works too
    out2, _ = decoder(memoryview(prefix + body), len(prefix), len(rows))
    assert [[normalize(t, v) for t, v in zip(col_types, r)] for r in out2] == \
        [[normalize(t, v) for t, v in zip(col_types, r)] for r in out]


def test_row_decoder_nulls_and_python_types():
    cols = [T.INT, T.TEXT, T.BIGINT, T.UUID, T.BLOB, T.TIMESTAMP, T.BOOLEAN, T.DOUBLE, T.DATE,
            T.TIME, T.INET, T.DECIMAL, T.VARINT, T.parse_cql_type("map<text, int>")]
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    values = [7, "héllo", -2 ** 40, u, b"\x00\x01", datetime.datetime(2020, 5, 17, 1, 2, 3, 4000),
              True, 1.5, datetime.date(2021, 1, 2), datetime.time(13, 14, 15, 16),
              "10.0.0.1", decimal.Decimal("-12.340"), 2 ** 70, {"b": 2, "a": 1}]
    body = b"".join(cell(t.serialize(v, 4)) for t, v in zip(cols, values))
    body += b"".join(cell(None) for _ in cols)
    rows, pos = T.make_row_decoder(cols, 4)(body, 0, 2)
    assert pos == len(body)
    assert rows[1] == (None,) * len(cols)
    row = rows[0]
    assert row[:5] == (7, "héllo", -2 ** 40, u, b"\x00\x01")
    assert row[5] == datetime.datetime(2020, 5, 17, 1, 2, 3, 4000) and row[5].tzinfo is None
    assert row[6] is True and row[7] == 1.5
    assert isinstance(row[8], T.Date) and row[8].date() == datetime.date(2021, 1, 2)
    assert isinstance(row[9], T.Time) and row[9].time() == datetime.time(13, 14, 15, 16)
    assert row[10] == ipaddress.IPv4Address("10.0.0.1")
    assert row[11] == decimal.Decimal("-12.340") and str(row[11]) == "-12.340"
    assert row[12] == 2 ** 70
    assert row[13] == {"b": 2, "a": 1} and list(row[13]) == ["b", "a"]  # wire order kept


def test_row_decoder_is_cached_per_column_layout():
    a = T.make_row_decoder([T.INT, T.TEXT], 4)
    b = T.make_row_decoder((T.parse_cql_type("int"), T.parse_cql_type("varchar")), 5)
    assert a is b


def test_empty_cells_are_null_for_non_string_types_and_empty_for_strings():
    cols = [T.INT, T.UUID, T.TIMESTAMP, T.TEXT, T.BLOB, T.VARINT, T.parse_cql_type("list<int>")]
    body = b"".join(cell(b"") for _ in cols)
    rows, _ = T.make_row_decoder(cols, 4)(body, 0, 1)
    assert rows == [(None, None, None, "", b"", None, None)]


# --- exact bytes --------------------------------------------------------------------------------

@pytest.mark.parametrize("ctype, value, expected", [
    (T.INT, -2, b"\xff\xff\xff\xfe"),
    (T.SMALLINT, 258, b"\x01\x02"),
    (T.TINYINT, -1, b"\xff"),
    (T.BOOLEAN, True, b"\x01"),
    (T.VARINT, 0, b"\x00"),
    (T.VARINT, 128, b"\x00\x80"),
    (T.VARINT, -129, b"\xff\x7f"),
    (T.VARINT, -128, b"\x80"),
    (T.DECIMAL, decimal.Decimal("1.5"), b"\x00\x00\x00\x01\x0f"),
    (T.DATE, datetime.date(1970, 1, 1), b"\x80\x00\x00\x00"),
    (T.DATE, T.Date(-1), b"\x7f\xff\xff\xff"),
    (T.DATE, 2 ** 31 + 1, b"\x80\x00\x00\x01"),   # a bare int is the raw value, as the driver
    (T.TIME, datetime.time(0, 0, 1), struct.pack(">q", 10 ** 9)),
    (T.TIMESTAMP, datetime.datetime(1970, 1, 1, 0, 0, 1), struct.pack(">q", 1000)),
    (T.TIMESTAMP, datetime.datetime(1970, 1, 1, 1, 0, 1,
                                    tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
     struct.pack(">q", 1000)),
    (T.TIMESTAMP, -5, struct.pack(">q", -5)),
    (T.TIMESTAMP, 1500.0, struct.pack(">q", 1500)),
    (T.TIMESTAMP, datetime.date(1970, 1, 2), struct.pack(">q", 86400000)),
    (T.INET, "::1", b"\x00" * 15 + b"\x01"),
    (T.INET, ipaddress.ip_address("1.2.3.4"), b"\x01\x02\x03\x04"),
    (T.DURATION, T.Duration(1, -1, 128), b"\x02\x01\x81\x00"),
    (T.parse_cql_type("list<int>"), [1], b"\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00\x01"),
    (T.parse_cql_type("vector<float, 2>"), [1.0, 2.0], b"\x3f\x80\x00\x00\x40\x00\x00\x00"),
    (T.parse_cql_type("vector<text, 2>"), ["a", "bcd"], b"\x01a\x03bcd"),
    (T.parse_cql_type("vector<smallint, 2>"), [1, 2], b"\x02\x00\x01\x02\x00\x02"),
    (T.parse_cql_type("tuple<int, text>"), (1, None),
     b"\x00\x00\x00\x04\x00\x00\x00\x01\xff\xff\xff\xff"),
])
def test_known_encodings(ctype, value, expected):
    assert ctype.serialize(value, 4) == expected
    assert normalize(ctype, ctype.deserialize(expected, 4)) == normalize(ctype, value)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 2 ** 14 - 1, 2 ** 14, 2 ** 21, 2 ** 35,
                                   2 ** 56 - 1, 2 ** 56, 2 ** 63, 2 ** 64 - 1])
def test_unsigned_vint_round_trips_with_minimal_length(value):
    data = T.write_unsigned_vint(value)
    assert T.read_unsigned_vint(data + b"\x00", 0) == (value, len(data))
    expected_len = 9 if value >= 2 ** 56 else max(1, (value.bit_length() + 6) // 7)
    assert len(data) == expected_len


def test_udt_values_have_attributes_and_accept_mappings_and_objects():
    addr = T.UserType("ks", "address", [("street", T.TEXT), ("zip", T.INT)])
    value = addr.deserialize(addr.serialize({"street": "Main", "zip": 5}, 4), 4)
    assert value.street == "Main" and value.zip == 5
    assert value == ("Main", 5)

    class Obj(object):
        street = "Elm"
    assert addr.deserialize(addr.serialize(Obj(), 4), 4) == ("Elm", None)
    # fewer fields on the wire (a field added later by ALTER TYPE) decode as None
    assert addr.deserialize(cell(b"x"), 4) == ("x", None)
    with pytest.raises(ValueError):
        addr.serialize({"nope": 1}, 4)


def test_sets_and_maps_with_unhashable_members():
    ctype = T.parse_cql_type("map<frozen<list<int>>, frozen<set<frozen<list<int>>>>>")
    value = T.OrderedMap([([1, 2], T.SortedSet([[3], [4]]))])
    got = ctype.deserialize(ctype.serialize(value, 4), 4)
    assert isinstance(got, T.OrderedMap)
    assert got[[1, 2]] == T.SortedSet([[4], [3]])
    assert T.parse_cql_type("set<int>").deserialize(
        T.parse_cql_type("set<int>").serialize({3, 1}, 4), 4) == {1, 3}


def test_unset_value_and_encode_values():
    cols = [T.INT, T.TEXT, T.INT]
    assert T.encode_values(cols, [1, None, T.UNSET_VALUE], 4) == [
        b"\x00\x00\x00\x01", None, T.UNSET_VALUE]
    assert repr(T.UNSET_VALUE) == "UNSET_VALUE" and not T.UNSET_VALUE
    with pytest.raises(ValueError):
        T.encode_values(cols, [1, 2], 4)
    with pytest.raises(ValueError):
        T.encode_values([T.INT], [T.UNSET_VALUE], 3)
    with pytest.raises(TypeError, match="value 0 .int."):
        T.encode_values([T.INT], ["x"], 4)
    with pytest.raises(ValueError, match="value 0 .int."):
        T.encode_values([T.INT], [2 ** 40], 4)


# --- names, type options, marshal classes -------------------------------------------------------

@pytest.mark.parametrize("text, name", [
    ("int", "int"), ("VARCHAR", "text"), ("list<frozen<map<text,int>>>",
                                          "list<frozen<map<text, int>>>"),
    ("vector<float, 3>", "vector<float, 3>"), ("tuple<int,text>", "frozen<tuple<int, text>>"),
    ("frozen<tuple<int, frozen<list<text>>>>", "frozen<tuple<int, frozen<list<text>>>>"),
    ("map<uuid, frozen<set<timeuuid>>>", "map<uuid, frozen<set<timeuuid>>>"),
    ("vector<vector<int, 2>, 2>", "vector<vector<int, 2>, 2>"),
    ("'org.apache.cassandra.db.marshal.DurationType'", "duration"),
    ("'com.example.Foo'", "'com.example.Foo'"),
])
def test_parse_cql_type_names(text, name):
    assert T.parse_cql_type(text).name == name


def test_parse_cql_type_user_types():
    addr = T.UserType("ks", "address", [("street", T.TEXT)])
    ctype = T.parse_cql_type("list<frozen<address>>", user_types={"address": addr})
    assert ctype.name == "list<frozen<address>>"
    assert T.parse_cql_type('"Address"', user_types={"Address": addr}) is addr
    with pytest.raises(ValueError, match="unknown type"):
        T.parse_cql_type("list<frozen<address>>")


@pytest.mark.parametrize("text", ["", "list<", "list<int", "map<int>", "vector<float>",
                                  "vector<float, x>", "vector<float, 0>", "list<int>>",
                                  "int int", "frozen<int, int>"])
def test_parse_cql_type_rejects_malformed_text(text):
    with pytest.raises(ValueError):
        T.parse_cql_type(text)


@settings(max_examples=200, deadline=None)
@given(cql_types(), st.sampled_from([4, 5]))
def test_type_options_and_names_round_trip(ctype, version):
    option = T.write_type_option(ctype, version)
    parsed, pos = T.read_type_option(b"xx" + option + b"yy", 2)
    assert pos == len(option) + 2
    assert T.write_type_option(parsed, version) == option
    # the wire has no frozen flag; everything else survives
    assert parsed.name.replace("frozen<", "").replace(">", "") == \
        ctype.name.replace("frozen<", "").replace(">", "")
    assert T.lookup_casstype(ctype.cass_name) == ctype
    user_types = {}
    _collect_udts(ctype, user_types)
    assert T.parse_cql_type(ctype.name, user_types=user_types) == ctype


def _collect_udts(ctype, out):
    if isinstance(ctype, T.UserType):
        out[ctype.udt_name] = ctype
    for sub in ctype.subtypes:
        _collect_udts(sub, out)


def test_type_option_bytes_follow_the_spec():
    assert T.write_type_option(T.INT) == b"\x00\x09"
    assert T.write_type_option(T.parse_cql_type("map<text, int>")) == b"\x00\x21\x00\x0d\x00\x09"
    assert T.write_type_option(T.DURATION, 5) == b"\x00\x15"
    name = b"org.apache.cassandra.db.marshal.DurationType"
    assert T.write_type_option(T.DURATION, 4) == b"\x00\x00" + struct.pack(">H", len(name)) + name
    udt = b"\x00\x30\x00\x02ks\x00\x01u\x00\x02\x00\x01a\x00\x09\x00\x01b\x00\x31\x00\x01\x00\x03"
    ctype, pos = T.read_type_option(udt, 0)
    assert pos == len(udt) and isinstance(ctype, T.UserType)
    assert ctype.field_names == ("a", "b") and ctype.subtypes[1].name == "frozen<tuple<blob>>"
    assert T.write_type_option(ctype) == udt


def test_lookup_casstype_understands_marshal_classes():
    m = "org.apache.cassandra.db.marshal."
    assert T.lookup_casstype(m + "Int32Type") is T.INT
    assert T.lookup_casstype("ReversedType(TimeUUIDType)") is T.TIMEUUID
    assert T.lookup_casstype(m + "FrozenType(" + m + "ListType(" + m + "UTF8Type))").name == \
        "frozen<list<text>>"
    vec = T.lookup_casstype(m + "VectorType(" + m + "FloatType, 3)")
    assert vec.name == "vector<float, 3>" and vec.fixed_size == 12
    udt = T.lookup_casstype(m + "UserType(ks,61646472,737472656574:" + m + "UTF8Type)")
    assert udt.udt_name == "addr" and udt.field_names == ("street",)
    custom = T.lookup_casstype("com.example.Thing(" + m + "Int32Type)")
    assert isinstance(custom, T.CustomType) and custom.deserialize(b"\x01", 4) == b"\x01"
    with pytest.raises(ValueError):
        T.lookup_casstype("ListType(Int32Type")


# --- malformed input: ProtocolError, quickly, without big allocations ----------------------------

@pytest.mark.parametrize("ctype, data", [
    (T.INT, b"\x00\x00\x01"),
    (T.BIGINT, b"\x00" * 7),
    (T.UUID, b"\x00" * 15),
    (T.BOOLEAN, b"\x00\x01"),
    (T.INET, b"\x00" * 5),
    (T.TIME, struct.pack(">q", 86400 * 10 ** 9)),
    (T.TEXT, b"\xff\xfe"),
    (T.ASCII, b"\x80"),
    (T.DECIMAL, b"\x00\x00\x00"),
    (T.DURATION, b"\x02\x01"),
    (T.DURATION, b"\x02\x01\x81"),
    (T.DURATION, b"\x02\x01\x00\x00"),
    (T.parse_cql_type("list<int>"), b"\x7f\xff\xff\xff" + b"\x00" * 6),
    (T.parse_cql_type("list<int>"), b"\xff\xff\xff\xff"),
    (T.parse_cql_type("list<int>"), b"\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00"),
    (T.parse_cql_type("list<int>"), b"\x00\x00\x00\x00\x00"),
    (T.parse_cql_type("map<int, int>"), b"\x40\x00\x00\x00" + b"\x00" * 8),
    (T.parse_cql_type("set<text>"), b"\x00\x00\x00\x01\x00\x00\x00\x05abc"),
    (T.parse_cql_type("tuple<int, int>"), b"\x00\x00\x00\x04\x00\x00"),
    (T.parse_cql_type("vector<float, 3>"), b"\x00" * 11),
    (T.parse_cql_type("vector<text, 2000000000>"), b"\x01a"),
    (T.parse_cql_type("vector<text, 2>"), b"\x05ab\x01c"),
    (T.parse_cql_type("vector<text, 1>"), b"\x01ab"),
])
def test_malformed_values_raise_protocol_error(ctype, data):
    with pytest.raises(ProtocolError):
        ctype.deserialize(data, 4)


@pytest.mark.parametrize("cols, body, count", [
    ([T.INT], cell(b"\x00\x00\x01"), 1),                    # wrong fixed size
    ([T.INT], b"\x00\x00\x00\x04\x00\x00", 1),              # truncated cell
    ([T.INT], b"\x00\x00", 1),                              # truncated length
    ([T.TEXT], cell(b"ab"), 2),                             # second row missing
    ([T.TEXT], b"\x7f\xff\xff\xff" + b"abc", 1),           # absurd length
    ([T.TEXT, T.INT], cell(b"a") * 4, 2 ** 31 - 1),        # absurd row count
    ([T.INT], cell(b"\x00\x00\x00\x01"), -1),
    ([T.TEXT], cell(b"\xc3"), 1),                           # bad UTF-8
    ([T.parse_cql_type("list<int>")], cell(b"\x7f\xff\xff\xff\x00\x00"), 1),
])
def test_malformed_rows_raise_protocol_error(cols, body, count):
    with pytest.raises(ProtocolError):
        T.make_row_decoder(cols, 4)(body, 0, count)


@pytest.mark.parametrize("option", [
    b"",
    b"\x00",
    b"\x00\x20",                                     # list without element type
    b"\x00\x21\x00\x09",                             # map without value type
    b"\x00\x00\x00\x10org",                          # custom class name truncated
    b"\x00\x30\x00\x02ks\x00\x01u\xff\xff",          # UDT claiming 65535 fields
    b"\x00\x31\xff\xff\x00\x09",                     # tuple claiming 65535 types
    b"\x00\x99",                                     # unknown id
    b"\x00\x20" * 200 + b"\x00\x09",                 # nested deeper than MAX_DEPTH
    b"\x00\x00\x00\x0bListType(In",                  # unparseable custom class
])
def test_malformed_type_options_raise_protocol_error(option):
    with pytest.raises(ProtocolError):
        T.read_type_option(option, 0)


@settings(max_examples=200, deadline=None)
@given(cql_types(max_leaves=4), st.binary(max_size=40))
def test_random_bytes_decode_or_raise_protocol_error(ctype, data):
    try:
        ctype.deserialize(data, 4)
    except ProtocolError:
        pass
    try:
        T.make_row_decoder([ctype, T.INT], 4)(data, 0, 1)
    except ProtocolError:
        pass


@given(st.binary(max_size=30))
def test_random_type_options_parse_or_raise_protocol_error(data):
    try:
        T.read_type_option(data, 0)
    except ProtocolError:
        pass


# --- value classes --------------------------------------------------------------------------------

def test_date_time_duration_value_classes():
    assert T.Date(datetime.date(2000, 1, 1)) == datetime.date(2000, 1, 1)
    assert T.Date("1970-01-11").days_from_epoch == 10
    assert str(T.Date(-10 ** 9)) == str(-10 ** 9)       # beyond datetime.date: the day count
    with pytest.raises(ValueError):
        T.Date(10 ** 9).date()
    t = T.Time("01:02:03.000000004")
    assert (t.hour, t.minute, t.second, t.nanosecond) == (1, 2, 3, 4)
    assert str(t) == "01:02:03.000000004"
    with pytest.raises(ValueError):
        T.Time(86400 * 10 ** 9)
    assert T.Duration(1, 2, 3) == T.Duration(1, 2, 3) != T.Duration(1, 2, 4)
    assert T.SortedSet([1, 2, 2]) == {1, 2} and len(T.SortedSet([1, 2, 2])) == 2


def test_timestamps_beyond_datetime_come_back_as_milliseconds():
    big = 2 ** 62
    assert T.TIMESTAMP.deserialize(struct.pack(">q", big), 4) == big


def test_decoded_uuids_behave_like_constructed_ones():
    import pickle
    u = uuid.uuid1()
    got = T.make_row_decoder([T.TIMEUUID], 4)(cell(u.bytes), 0, 1)[0][0][0]
    assert type(got) is uuid.UUID and got == u and hash(got) == hash(u)
    assert got.version == 1 and got.time == u.time and str(got) == str(u)
    assert pickle.loads(pickle.dumps(got)) == u
    assert T.UUID.deserialize(u.bytes, 4) == u
