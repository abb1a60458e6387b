"""Stream id allocation, the in-flight table, orphans and the deadline heap (core/streams.py)."""

import pytest

from cqlreactor.core.errors import ConnectionBusy, StreamIdsExhausted
from cqlreactor.core.streams import (KIND_HEARTBEAT, KIND_REQUEST, MAX_STREAMS, StreamTable)

QUERY = 0x07


def test_ids_start_at_zero_and_are_unique_while_in_flight():
    table = StreamTable()
    ids = [table.allocate(QUERY).stream_id for _ in range(100)]
    assert ids == list(range(100))
    assert table.in_flight == 100
    table.release(42)
    new = table.allocate(QUERY).stream_id
    assert new == 42                       # freed ids come back ...
    assert len(set(ids)) == 100            # ... but never while still in flight
    assert table.in_flight == 100


def test_release_returns_record_and_unknown_id_gives_none():
    table = StreamTable()
    record = table.allocate(QUERY, message="m", deadline=5.0)
    assert table.release(record.stream_id) is record
    assert record.active is False
    assert table.release(record.stream_id) is None
    assert table.release(999) is None
    assert table.in_flight == 0


def test_exhaustion_names_host_and_counts():
    table = StreamTable(max_streams=4, host="h:9042")
    for _ in range(4):
        table.allocate(QUERY)
    with pytest.raises(StreamIdsExhausted) as info:
        table.allocate(QUERY)
    assert info.value.host == "h:9042"
    assert "4 in flight" in str(info.value)


def test_full_range_is_0_to_32767():
    table = StreamTable()
    ids = [table.allocate(QUERY, kind=KIND_HEARTBEAT).stream_id for _ in range(MAX_STREAMS)]
    assert ids[0] == 0 and ids[-1] == 32767
    with pytest.raises(StreamIdsExhausted):
        table.allocate(QUERY, kind=KIND_HEARTBEAT)


def test_max_in_flight_is_backpressure_not_exhaustion():
    table = StreamTable(max_in_flight=2)
    table.allocate(QUERY)
    table.allocate(QUERY)
    with pytest.raises(ConnectionBusy) as info:
        table.allocate(QUERY)
    assert not isinstance(info.value, StreamIdsExhausted)
    # the connection's own heartbeat is not subject to the caller's limit
    assert table.allocate(QUERY, kind=KIND_HEARTBEAT).stream_id == 2
    table.release(0)
    with pytest.raises(ConnectionBusy):    # the heartbeat counts while it is in flight
        table.allocate(QUERY)
    table.release(2)
    assert table.allocate(QUERY).stream_id == 2


def test_deadlines_expire_in_order_and_orphans_keep_their_ids():
    table = StreamTable(max_streams=3)
    a = table.allocate(QUERY, deadline=3.0)
    b = table.allocate(QUERY, deadline=1.0)
    c = table.allocate(QUERY, deadline=None)
    assert table.next_deadline() == 1.0
    assert table.expire(0.5) == []
    assert table.expire(3.0) == [b, a]
    assert a.orphaned and b.orphaned and not c.orphaned
    assert table.in_flight == 1 and table.orphaned == 2
    assert table.next_deadline() is None
    # orphans still hold their ids
    with pytest.raises(StreamIdsExhausted):
        table.allocate(QUERY)
    # the late answer frees the id; the record says it was orphaned
    late = table.release(b.stream_id)
    assert late is b and late.orphaned
    assert table.orphaned == 1
    assert table.allocate(QUERY).stream_id == b.stream_id


def test_answered_requests_do_not_expire_and_heap_stays_small():
    table = StreamTable()
    for i in range(5000):
        record = table.allocate(QUERY, deadline=100.0 + i)
        table.release(record.stream_id)
    assert table.next_deadline() is None
    assert table.expire(1e9) == []
    assert len(table._heap) <= 1025        # compacted: dead entries do not pile up
    keep = table.allocate(QUERY, deadline=7.0)
    assert table.next_deadline() == 7.0
    assert table.expire(7.0) == [keep]


def test_drain_returns_active_requests_once_and_resets():
    table = StreamTable()
    a = table.allocate(QUERY, deadline=1.0)
    b = table.allocate(QUERY)
    table.expire(2.0)                     # a is orphaned: already failed, not drained again
    hb = table.allocate(0x05, kind=KIND_HEARTBEAT)
    assert table.drain() == [b, hb]
    assert table.drain() == []
    assert len(table) == 0 and table.in_flight == 0 and table.orphaned == 0
    assert a.orphaned and not b.active


def test_kinds_are_recorded():
    table = StreamTable()
    assert table.allocate(QUERY).kind == KIND_REQUEST
    assert table.allocate(QUERY, kind=KIND_HEARTBEAT).kind == KIND_HEARTBEAT


def test_bad_max_streams():
    with pytest.raises(ValueError):
        StreamTable(max_streams=0)
    with pytest.raises(ValueError):
        StreamTable(max_streams=MAX_STREAMS + 1)


def test_a_cancelled_request_is_orphaned_until_its_late_answer():
    table = StreamTable(max_streams=2)
    timed = table.allocate(QUERY, deadline=1.0)
    untimed = table.allocate(QUERY)
    assert table.orphan(timed.stream_id) is timed
    assert table.orphan(untimed.stream_id) is untimed
    assert table.orphan(untimed.stream_id) is None       # once only
    assert table.orphan(99) is None
    assert table.in_flight == 0 and table.orphaned == 2
    assert table.next_deadline() is None and table.expire(5.0) == []   # no double counting
    with pytest.raises(StreamIdsExhausted):               # the ids stay reserved ...
        table.allocate(QUERY)
    assert table.release(timed.stream_id).orphaned        # ... until the late answer
    assert table.orphaned == 1
    assert table.allocate(QUERY).stream_id == timed.stream_id
