"""core/wire.py: protocol primitives round-trip, reject truncated/absurd input, and agree with
cassandra-driver's own primitive readers and writers (the independent oracle)."""

import io
import ipaddress
import uuid

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.core import wire
from cqlreactor.core.errors import ProtocolError

text = st.text(max_size=40)
raw = st.binary(max_size=60)
ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2 ** 32 - 1)).map(str)
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2 ** 128 - 1)).map(str)

CASES = [
    (wire.write_byte, wire.read_byte, st.integers(0, 255)),
    (wire.write_short, wire.read_short, st.integers(0, 65535)),
    (wire.write_int, wire.read_int, st.integers(-2 ** 31, 2 ** 31 - 1)),
    (wire.write_long, wire.read_long, st.integers(-2 ** 63, 2 ** 63 - 1)),
    (wire.write_consistency, wire.read_consistency, st.integers(0, 10)),
    (wire.write_string, wire.read_string, text),
    (wire.write_long_string, wire.read_long_string, text),
    (wire.write_bytes, wire.read_bytes, st.none() | raw),
    (wire.write_short_bytes, wire.read_short_bytes, raw),
    (wire.write_value, wire.read_value, st.none() | st.just(wire.UNSET_VALUE) | raw),
    (wire.write_string_list, wire.read_string_list, st.lists(text, max_size=5)),
    (wire.write_string_map, wire.read_string_map, st.dictionaries(text, text, max_size=5)),
    (wire.write_string_multimap, wire.read_string_multimap,
     st.dictionaries(text, st.lists(text, max_size=3), max_size=4)),
    (wire.write_bytes_map, wire.read_bytes_map,
     st.dictionaries(text, st.none() | raw, max_size=5)),
    (wire.write_uuid, wire.read_uuid, st.uuids()),
    (wire.write_inetaddr, wire.read_inetaddr, ipv4 | ipv6),
    (lambda v: wire.write_inet(*v), wire.read_inet,
     st.tuples(ipv4 | ipv6, st.integers(0, 65535))),
]
IDS = [c[1].__name__ for c in CASES]


@pytest.mark.parametrize("write,read,strategy", CASES, ids=IDS)
def test_round_trip_at_any_offset_bytes_and_memoryview(write, read, strategy):
    @settings(max_examples=40, deadline=None)
    @given(value=strategy, prefix=st.binary(max_size=5), suffix=st.binary(max_size=5))
    def check(value, prefix, suffix):
        encoded = write(value)
        assert isinstance(encoded, bytes)
        buf = prefix + encoded + suffix
        for candidate in (buf, memoryview(buf)):
            decoded, pos = read(candidate, len(prefix))
            assert pos == len(prefix) + len(encoded)
            if isinstance(value, str) and read in (wire.read_inetaddr,):
                assert ipaddress.ip_address(decoded) == ipaddress.ip_address(value)
            elif read is wire.read_inet:
                assert ipaddress.ip_address(decoded[0]) == ipaddress.ip_address(value[0])
                assert decoded[1] == value[1]
            else:
                assert decoded == value
    check()


@pytest.mark.parametrize("write,read,strategy", CASES, ids=IDS)
def test_every_truncation_raises_protocol_error(write, read, strategy):
    @settings(max_examples=15, deadline=None)
    @given(value=strategy)
    def check(value):
        encoded = write(value)
        for cut in range(len(encoded)):
            with pytest.raises(ProtocolError):
                read(encoded[:cut], 0)
    check()


def test_absurd_lengths_raise_without_allocating():
    huge = wire.write_int(2 ** 31 - 1)
    for read in (wire.read_bytes, wire.read_value, wire.read_long_string):
        with pytest.raises(ProtocolError):
            read(huge + b"abc", 0)
    # 65535 list entries announced, 3 bytes present
    for read in (wire.read_string_list, wire.read_string_map, wire.read_string_multimap,
                 wire.read_bytes_map):
        with pytest.raises(ProtocolError, match="cannot fit"):
            read(b"\xff\xff\x00\x01a", 0)


def test_invalid_values_rejected():
    with pytest.raises(ProtocolError, match="invalid \\[value\\] length -3"):
        wire.read_value(wire.write_int(-3), 0)
    with pytest.raises(ProtocolError, match="negative"):
        wire.read_long_string(wire.write_int(-1), 0)
    with pytest.raises(ProtocolError, match="size 5"):
        wire.read_inetaddr(b"\x05abcde", 0)
    with pytest.raises(ProtocolError, match="UTF-8"):
        wire.read_string(b"\x00\x02\xff\xfe", 0)
    assert wire.read_bytes(wire.write_int(-7), 0) == (None, 4)


def test_unset_value_is_a_falsy_singleton():
    assert not wire.UNSET_VALUE
    assert type(wire.UNSET_VALUE)() is wire.UNSET_VALUE
    assert repr(wire.UNSET_VALUE) == "UNSET_VALUE"


def test_text_writers_accept_bytes():
    assert wire.write_string(b"ab") == wire.write_string("ab") == b"\x00\x02ab"
    assert wire.write_string("é") == b"\x00\x02\xc3\xa9"


# --- the oracle: cassandra-driver's primitives -----------------------------------------------------

cp = pytest.importorskip("cassandra.protocol")

ORACLE = [
    (wire.write_string, cp.read_string, cp.write_string, wire.read_string, text),
    (wire.write_long_string, cp.read_longstring, cp.write_longstring, wire.read_long_string, text),
    (wire.write_string_list, cp.read_stringlist, cp.write_stringlist, wire.read_string_list,
     st.lists(text, max_size=5)),
    (wire.write_string_map, cp.read_stringmap, cp.write_stringmap, wire.read_string_map,
     st.dictionaries(text, text, max_size=5)),
    (wire.write_string_multimap, cp.read_stringmultimap, cp.write_stringmultimap,
     wire.read_string_multimap, st.dictionaries(text, st.lists(text, max_size=3), max_size=4)),
    (wire.write_bytes_map, cp.read_bytesmap, cp.write_bytesmap, wire.read_bytes_map,
     st.dictionaries(text, raw, max_size=5)),
    (wire.write_int, cp.read_int, cp.write_int, wire.read_int, st.integers(-2 ** 31, 2 ** 31 - 1)),
    (wire.write_short, cp.read_short, cp.write_short, wire.read_short, st.integers(0, 65535)),
    (lambda v: wire.write_inet(*v), cp.read_inet, cp.write_inet, wire.read_inet,
     st.tuples(ipv4, st.integers(0, 65535))),
]


@pytest.mark.parametrize("our_write,their_read,their_write,our_read,strategy", ORACLE,
                         ids=[o[3].__name__ for o in ORACLE])
def test_agrees_with_cassandra_driver(our_write, their_read, their_write, our_read, strategy):
    @settings(max_examples=30, deadline=None)
    @given(value=strategy)
    def check(value):
        ours = our_write(value)
        assert their_read(io.BytesIO(ours)) == value
        f = io.BytesIO()
        their_write(f, value)
        theirs = f.getvalue()
        assert theirs == ours
        assert our_read(theirs, 0) == (value, len(theirs))
    check()


def test_uuid_matches_driver_layout():
    u = uuid.uuid4()
    assert wire.read_uuid(u.bytes, 0) == (u, 16)
    # the error code map endpoint format: driver reads [inetaddr] the same way
    data = wire.write_inetaddr("10.0.0.1")
    assert cp.read_inet_addr_only(io.BytesIO(data)) == "10.0.0.1"
