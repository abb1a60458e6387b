"""Connection after READY: routing, coalescing, timeouts/orphans, exhaustion, backpressure,
heartbeat, and failure (malformed bytes, bad CRC, lost socket, close) failing each pending
request exactly once.  Bytes in, events out; the peer is ``testing.memory.MemoryServer``."""

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core.connection import Connection
from cqlreactor.core.errors import (ChecksumMismatch, ConnectionBusy, ConnectionDefunct,
                                    ConnectionException, ConnectionShutdown, FrameTooLarge,
                                    IllegalStateTransition, OperationTimedOut, ProtocolError,
                                    StreamIdsExhausted)
from cqlreactor.core.events import (ConnectionClosed, ConnectionFailed, RequestFailed,
                                    ResponseReceived, ServerEventReceived)
from cqlreactor.core.segments import SegmentDecoder, SegmentEncoder
from cqlreactor.core.streams import MAX_STREAMS
from cqlreactor.testing.memory import MemoryServer, pump

HOST = "10.0.0.7:9042"


def query(text="SELECT k, v FROM ks.t"):
    return m.QueryMessage(text, m.QueryParameters(consistency=1))


def ready(version=5, server=None, **kwargs):
    server = server if server is not None else MemoryServer()
    client = Connection(host=HOST, protocol_version=version, **kwargs)
    client.initiate()
    pump(client, server)
    assert client.is_ready
    return client, server


def answer(version, stream, message):
    """A server answer as the bytes the client receives (segmented on v5)."""
    envelope = m.encode_message(message, stream, version, is_response=True)
    return SegmentEncoder().encode([envelope]) if version >= 5 else envelope


def failures_by_stream(events):
    result = {}
    for event in events:
        if isinstance(event, RequestFailed):
            assert event.stream_id not in result, "stream %d failed twice" % event.stream_id
            result[event.stream_id] = event.error
    return result


# --- routing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [4, 5])
def test_out_of_order_answers_are_routed_by_stream(version):
    client, server = ready(version)
    streams = [client.send_request(query("q%d" % i)) for i in range(50)]
    assert streams == list(range(50)) and client.in_flight == 50
    client.data_to_send()
    data = b"".join(answer(version, s, m.SetKeyspaceResult("ks%d" % s)) for s in reversed(streams))
    events = client.receive_data(data)
    assert [(e.stream_id, e.message.keyspace) for e in events] == \
        [(s, "ks%d" % s) for s in reversed(streams)]
    assert client.in_flight == 0


def test_v5_coalesces_queued_requests_into_one_segment():
    client, server = ready(5)
    for i in range(200):
        client.send_request(query("SELECT %d" % i))
    data = client.data_to_send()
    payloads = list(_segments(data))
    assert len(payloads) == 1
    assert client.data_to_send() == b""
    server.receive_data(data)
    assert len(server.requests) == 200


def _segments(data):
    decoder = SegmentDecoder()
    decoder.add_data(data)
    return decoder


def test_large_request_is_split_over_segments_and_reassembled():
    client, server = ready(5)
    big = "SELECT '" + "x" * 300000 + "'"
    client.send_request(query(big))
    data = client.data_to_send()
    assert len(list(_segments(data))) >= 3
    server.receive_data(data)
    assert server.requests[-1][1].query == big


def test_server_event_on_stream_minus_one():
    client, server = ready(5)
    server.push_event(m.EventMessage("TOPOLOGY_CHANGE", "NEW_NODE", address=("10.0.0.3", 9042)))
    [event] = pump(client, server)
    assert isinstance(event, ServerEventReceived)
    assert event.message.address == ("10.0.0.3", 9042)


@pytest.mark.parametrize("version", [4, 5])
def test_answer_on_a_stream_not_in_flight_makes_defunct(version):
    client, server = ready(version)
    kept = client.send_request(query())
    events = client.receive_data(answer(version, 77, m.VoidResult()))
    assert failures_by_stream(events).keys() == {kept}
    assert isinstance(events[-1], ConnectionFailed)
    assert isinstance(events[-1].error.cause, IllegalStateTransition)
    assert client.is_defunct


def test_error_answer_is_a_response_not_a_failure():
    client, server = ready(4)
    stream = client.send_request(query())
    client.data_to_send()
    [event] = client.receive_data(answer(4, stream, m.ErrorMessage(0x2200, "bad query")))
    assert isinstance(event, ResponseReceived) and event.message.code == 0x2200
    assert client.is_ready


def test_result_metadata_is_used_for_rows_without_metadata():
    client, server = ready(4)
    columns = server.columns
    stream = client.send_request(m.ExecuteMessage(b"id", m.QueryParameters(
        consistency=1, skip_metadata=True)), result_metadata=columns)
    client.data_to_send()
    rows = m.RowsResult(columns, [(5, "five")], no_metadata=True)
    [event] = client.receive_data(answer(4, stream, rows))
    assert event.message.rows == [(5, "five")]


# --- timeouts and orphans --------------------------------------------------------------------------

def test_timeout_fails_once_orphan_is_not_misrouted():
    client, server = ready(5)
    server.held.add("SELECT slow")
    slow = client.send_request(query("SELECT slow"), deadline=10.0)
    other = client.send_request(query(), deadline=50.0)
    assert client.next_deadline() == 10.0
    pump(client, server)                 # `other` answered, `slow` held
    assert client.next_deadline() == 10.0 and client.in_flight == 1
    assert client.handle_timeout(9.99) == []
    [failed] = client.handle_timeout(10.0)
    assert failed.stream_id == slow and isinstance(failed.error, OperationTimedOut)
    assert failed.error.host == HOST and failed.error.stream_id == slow
    assert failed.error.opcode == 0x07
    assert client.handle_timeout(100.0) == []            # fails exactly once
    assert client.orphaned == 1 and client.in_flight == 0
    assert client.next_deadline() is None
    # the orphan keeps its id: the next request gets another one
    newer = client.send_request(query())
    assert newer != slow
    server.release()                                     # the late answer to `slow` arrives
    events = pump(client, server)
    assert [e.stream_id for e in events] == [newer]      # never delivered as `newer`'s answer
    assert client.orphaned == 0
    assert slow in [client.send_request(query()) for _ in range(3)]   # its id is free again


def test_too_many_orphans_make_the_connection_defunct():
    client, server = ready(5, max_orphans=3)
    server.held.add("SELECT slow")
    streams = [client.send_request(query("SELECT slow"), deadline=10.0 + i) for i in range(3)]
    waiting = client.send_request(query("SELECT slow"), deadline=100.0)
    pump(client, server)
    events = client.handle_timeout(11.0)                 # two orphans: still usable
    assert [e.stream_id for e in events] == streams[:2] and client.state.name == "READY"
    events = client.handle_timeout(12.0)                 # the third crosses the limit
    assert client.state.name == "DEFUNCT"
    assert events[0].stream_id == streams[2] and isinstance(events[0].error, OperationTimedOut)
    assert [e.stream_id for e in events[1:-1]] == [waiting]   # the rest fail once, with context
    assert "never answered" in str(events[-1].error) and events[-1].error.host == HOST
    assert isinstance(events[-1], ConnectionFailed)
    with pytest.raises(ConnectionDefunct):
        client.send_request(query())


def test_max_orphans_must_be_positive():
    with pytest.raises(ValueError):
        Connection(host=HOST, max_orphans=0)


def test_many_deadlines_next_deadline_tracks_the_earliest():
    client, server = ready(4)
    for i in range(1000):
        client.send_request(query(), deadline=1000.0 - i)
    assert client.next_deadline() == 1.0
    events = client.handle_timeout(500.0)
    assert len(events) == 500 and client.next_deadline() == 501.0
    assert len(failures_by_stream(events)) == 500


# --- exhaustion and backpressure -------------------------------------------------------------------

def test_stream_ids_exhausted_then_freed_by_answers():
    client, server = ready(4, max_orphans=MAX_STREAMS + 1)   # orphans may hold every id
    ids = [client.send_request(query(), deadline=1.0) for _ in range(MAX_STREAMS)]
    assert sorted(ids) == list(range(MAX_STREAMS))
    with pytest.raises(StreamIdsExhausted) as info:
        client.send_request(query())
    assert info.value.host == HOST
    # all time out: they become orphans and still hold every id
    assert len(client.handle_timeout(2.0)) == MAX_STREAMS
    with pytest.raises(StreamIdsExhausted):
        client.send_request(query())
    client.data_to_send()
    assert client.receive_data(answer(4, 123, m.VoidResult())) == []   # late answer
    assert client.send_request(query()) == 123


def test_max_in_flight_backpressure():
    client, server = ready(5, max_in_flight=3)
    first = [client.send_request(query()) for _ in range(3)]
    with pytest.raises(ConnectionBusy) as info:
        client.send_request(query())
    assert not isinstance(info.value, StreamIdsExhausted) and info.value.host == HOST
    assert len(pump(client, server)) == 3
    assert client.send_request(query()) in first


# --- heartbeat -------------------------------------------------------------------------------------

def test_idle_heartbeat_is_answered_silently():
    client, server = ready(5, heartbeat_interval=30.0)
    assert client.next_deadline() == 0.0                 # "call me now" to anchor the ticks
    assert client.handle_timeout(100.0) == []
    assert client.next_deadline() == 130.0
    assert client.data_to_send() == b""
    assert client.handle_timeout(130.0) == []            # idle tick: OPTIONS
    pump(client, server)
    assert isinstance(server.requests[-1][1], m.OptionsMessage)
    assert client.in_flight == 0
    assert client.handle_timeout(160.0) == []            # answered: fine, another OPTIONS
    pump(client, server)
    assert len(server.requests) == 2 and client.is_ready


def test_no_heartbeat_while_traffic_flows():
    client, server = ready(4, heartbeat_interval=30.0)
    client.handle_timeout(0.0)
    client.send_request(query())
    pump(client, server)                                 # traffic received during the interval
    assert client.handle_timeout(30.0) == []
    assert client.data_to_send() == b""


def test_missed_heartbeat_makes_defunct_and_fails_pending():
    client, server = ready(5, heartbeat_interval=30.0)
    client.handle_timeout(0.0)
    client.handle_timeout(30.0)                          # OPTIONS queued, never delivered
    client.data_to_send()
    pending = client.send_request(query())
    events = client.handle_timeout(60.0)
    failed = failures_by_stream(events)
    assert list(failed) == [pending]
    assert isinstance(failed[pending], ConnectionDefunct)
    assert isinstance(failed[pending].cause, OperationTimedOut)
    assert isinstance(events[-1], ConnectionFailed) and client.is_defunct
    assert "heartbeat" in str(events[-1].error)
    assert client.next_deadline() is None


# --- failure: every pending request fails exactly once ----------------------------------------------

def _pending(client, n=5):
    return [client.send_request(query(), deadline=100.0) for _ in range(n)]


@pytest.mark.parametrize("version", [4, 5])
def test_malformed_bytes_fail_every_pending_once(version):
    client, server = ready(version)
    streams = _pending(client)
    client.data_to_send()
    good = answer(version, streams[0], m.VoidResult())
    garbage = b"\xff" * 40
    events = client.receive_data(good + garbage)
    assert isinstance(events[0], ResponseReceived) and events[0].stream_id == streams[0]
    failed = failures_by_stream(events)
    assert sorted(failed) == streams[1:]
    for stream, error in failed.items():
        assert isinstance(error, ConnectionDefunct)
        assert error.host == HOST and error.stream_id == stream
        assert isinstance(error.cause, ProtocolError)
    assert isinstance(events[-1], ConnectionFailed)
    assert client.is_defunct
    # afterwards: nothing more, ever
    assert client.receive_data(good) == []
    assert client.handle_timeout(1000.0) == []
    assert client.connection_lost() == []
    assert client.close() == []
    assert client.data_to_send() == b""
    with pytest.raises(ConnectionDefunct):
        client.send_request(query())


def test_bad_segment_crc_makes_defunct():
    client, server = ready(5)
    streams = _pending(client, 3)
    client.data_to_send()
    data = bytearray(answer(5, streams[0], m.VoidResult()))
    data[-1] ^= 0x01                                     # corrupt the payload CRC32
    events = client.receive_data(bytes(data))
    assert sorted(failures_by_stream(events)) == streams
    assert isinstance(events[-1].error.cause, ChecksumMismatch)
    assert client.is_defunct


def test_good_segment_before_a_bad_one_is_delivered():
    client, server = ready(5)
    streams = _pending(client, 2)
    client.data_to_send()
    bad = bytearray(answer(5, streams[1], m.VoidResult()))
    bad[0] ^= 0x01                                       # corrupt the header (CRC24)
    events = client.receive_data(answer(5, streams[0], m.VoidResult()) + bytes(bad))
    assert isinstance(events[0], ResponseReceived) and events[0].stream_id == streams[0]
    assert list(failures_by_stream(events)) == [streams[1]]


@pytest.mark.parametrize("version", [4, 5])
def test_malformed_answer_body_fails_its_own_request_too(version):
    client, server = ready(version)
    streams = _pending(client, 3)
    client.data_to_send()
    bad = b"\x00\x00\x00\x63"                              # RESULT kind 99
    envelope = m.encode_message(m.PreEncodedRequest(0x08, bad), streams[1], version,
                                is_response=True)
    data = SegmentEncoder().encode([envelope]) if version >= 5 else envelope
    events = client.receive_data(data)
    failed = failures_by_stream(events)
    assert sorted(failed) == streams
    assert isinstance(failed[streams[1]].cause, ProtocolError)


def test_frame_too_large_makes_defunct():
    client, server = ready(4, max_frame_size=100)
    stream = client.send_request(query())
    client.data_to_send()
    events = client.receive_data(answer(4, stream, m.SetKeyspaceResult("k" * 200)))
    assert isinstance(events[-1].error.cause, FrameTooLarge)


def test_connection_lost_fails_pending_with_cause():
    client, server = ready(5)
    streams = _pending(client)
    cause = OSError(104, "Connection reset by peer")
    events = client.connection_lost(cause)
    failed = failures_by_stream(events)
    assert sorted(failed) == streams
    assert all(e.cause is cause and e.host == HOST for e in failed.values())
    assert isinstance(events[-1], ConnectionFailed) and events[-1].error.cause is cause
    assert client.connection_lost() == []


def test_connection_lost_without_exception():
    client, server = ready(4)
    events = client.connection_lost()
    assert isinstance(events[-1].error.cause, ConnectionException)


def test_close_fails_pending_with_shutdown_once():
    client, server = ready(5)
    streams = _pending(client)
    server.held.add("x")
    client.data_to_send()
    events = client.close()
    failed = failures_by_stream(events)
    assert sorted(failed) == streams
    assert all(isinstance(e, ConnectionShutdown) and e.host == HOST for e in failed.values())
    assert events[-1] == ConnectionClosed()
    assert client.is_closed and not client.is_defunct
    assert client.close() == [] and client.connection_lost() == []
    assert client.receive_data(answer(5, streams[0], m.VoidResult())) == []
    with pytest.raises(ConnectionShutdown):
        client.send_request(query())


def test_close_during_handshake():
    client = Connection(host=HOST)
    client.initiate()
    assert client.close() == [ConnectionClosed()]
    assert client.data_to_send() == b""


def test_timed_out_requests_are_not_failed_again_on_close():
    client, server = ready(4)
    a = client.send_request(query(), deadline=1.0)
    b = client.send_request(query(), deadline=9.0)
    assert [e.stream_id for e in client.handle_timeout(2.0)] == [a]
    assert list(failures_by_stream(client.close())) == [b]
