"""cqlreactor.util (issue 10): the classes the decoders hand out are the mirror's, and the
helpers and value classes behave as cassandra-driver's (installed as the oracle)."""

import datetime
import uuid

import pytest

from cqlreactor import util
from cqlreactor.core import types as cqltypes
from cqlreactor.encoder import ValueSequence, cql_literal

cutil = pytest.importorskip("cassandra.util")


def _decode(type_text, value):
    cql_type = cqltypes.parse_cql_type(type_text)
    return cql_type.deserialize(cql_type.serialize(value, 4), 4)


def test_decoders_hand_out_the_mirror_classes():
    assert isinstance(_decode("set<int>", {3, 1}), util.SortedSet)
    assert isinstance(_decode("date", util.Date(19000)), util.Date)
    assert isinstance(_decode("time", util.Time(5)), util.Time)
    assert isinstance(_decode("duration", util.Duration(1, 2, 3)), util.Duration)
    assert type(_decode("map<int, text>", {1: "a"})) is dict
    unhashable = _decode("map<frozen<list<int>>, int>", util.OrderedMap([([1, 2], 3)]))
    assert isinstance(unhashable, util.OrderedMap) and unhashable[[1, 2]] == 3


def test_time_and_uuid_helpers_match_the_oracle():
    moment = datetime.datetime(2021, 3, 4, 5, 6, 7, 890000)
    for seconds in (0, 1.5, -86400 * 365 * 300, 1614834367.89):
        assert util.datetime_from_timestamp(seconds) == cutil.datetime_from_timestamp(seconds)
    assert util.utc_datetime_from_ms_timestamp(1614834367890) == \
        cutil.utc_datetime_from_ms_timestamp(1614834367890)
    assert util.ms_timestamp_from_datetime(moment) == cutil.ms_timestamp_from_datetime(moment)
    for arg in (moment, 1614834367.89):
        ours = util.uuid_from_time(arg, node=0x123456789ABC, clock_seq=0x1234)
        theirs = cutil.uuid_from_time(arg, node=0x123456789ABC, clock_seq=0x1234)
        assert ours == theirs and ours.version == 1
        assert util.min_uuid_from_time(arg) == cutil.min_uuid_from_time(arg)
        assert util.max_uuid_from_time(arg) == cutil.max_uuid_from_time(arg)
    stamp = uuid.uuid1()
    assert util.unix_time_from_uuid1(stamp) == cutil.unix_time_from_uuid1(stamp)
    assert util.datetime_from_uuid1(stamp) == cutil.datetime_from_uuid1(stamp)
    assert (util.LOWEST_TIME_UUID, util.HIGHEST_TIME_UUID) == (cutil.LOWEST_TIME_UUID,
                                                               cutil.HIGHEST_TIME_UUID)
    assert (util.DATETIME_EPOC, util.UTC_DATETIME_EPOC) == (cutil.DATETIME_EPOC,
                                                           cutil.UTC_DATETIME_EPOC)
    with pytest.raises(ValueError, match="clock_seq"):
        util.uuid_from_time(0, clock_seq=1 << 14)


def test_value_classes_match_the_oracle():
    for value in (0, 19000, -5, datetime.date(2020, 2, 29), "2020-02-29"):
        ours, theirs = util.Date(value), cutil.Date(value)
        assert (ours.days_from_epoch, ours.seconds, str(ours)) == (
            theirs.days_from_epoch, theirs.seconds, str(theirs))
    for value in (0, 3723000000001, datetime.time(1, 2, 3, 4), "01:02:03.000000004"):
        ours, theirs = util.Time(value), cutil.Time(value)
        assert (ours.nanosecond_time, ours.hour, ours.minute, ours.second, ours.nanosecond) == (
            theirs.nanosecond_time, theirs.hour, theirs.minute, theirs.second,
            theirs.nanosecond)
    assert (util.Time.SECOND, util.Date.DAY) == (cutil.Time.SECOND, cutil.Date.DAY)
    for months, days, nanos in ((1, 2, 3), (-1, -2, -3), (0, 0, 0)):
        assert str(util.Duration(months, days, nanos)) == str(cutil.Duration(months, days, nanos))


def test_sorted_set_and_ordered_map_have_the_oracle_api():
    ours, theirs = util.SortedSet([3, 1, 2]), cutil.SortedSet([3, 1, 2])
    other = {2, 5}
    for op in ("union", "intersection", "difference", "symmetric_difference"):
        assert set(getattr(ours, op)(other)) == set(getattr(theirs, op)(other)), op
    assert set(ours | other) == set(theirs | other) and set(ours - other) == set(theirs - other)
    assert ours.issubset({1, 2, 3, 4}) and ours.issuperset({1}) and ours == {1, 2, 3}
    ours.remove(3)
    with pytest.raises(KeyError):
        ours.remove(3)
    assert util.sortedset is util.SortedSet
    mapping = util.OrderedMap([([1], "a")], b=2)
    their_mapping = cutil.OrderedMap([([1], "a")], b=2)
    assert mapping[[1]] == their_mapping[[1]] and mapping["b"] == their_mapping["b"]
    assert len(mapping) == len(their_mapping) == 2
    assert str(mapping) == str(their_mapping)
    del mapping["b"]
    assert mapping.popitem() == ([1], "a") and len(mapping) == 0
    keyed = util.OrderedMapSerializedKey(cqltypes.parse_cql_type("int"), 4)
    keyed[1] = "x"
    assert keyed[1] == "x" and keyed.protocol_version == 4


def test_literals_render_as_the_oracle_encoder_does():
    from cassandra.encoder import Encoder
    from cassandra.query import ValueSequence as TheirValueSequence
    theirs = Encoder()
    assert cql_literal(ValueSequence([1, "a"])) == \
        theirs.cql_encode_all_types(TheirValueSequence([1, "a"]))
    assert cql_literal(util.Duration(1, 2, 3)) == "1mo2d3ns"
    assert cql_literal(util.OrderedMap([((1, 2), 3)])) == "{(1, 2): 3}"
