"""Primes and injected faults of the simulated cluster, each observed from a client.

The client here is the raw test client (``_rawcql``); the cassandra-driver tests in
test_sim_driver.py observe node stops and auth failures from a full driver.
"""

import socket
import struct
import time

import pytest

from cqlreactor.core import wire
from cqlreactor.core.errors import ChecksumMismatch, ProtocolError

from _rawcql import EVENT, OPTIONS, READY, RESULT, SUPPORTED, Closed, RawClient, error_of

Q = "SELECT v FROM faults.t WHERE k = 1"


def _ready(raw_client, node=0, version=4):
    client = raw_client(node=node, version=version)
    assert client.startup().opcode == READY
    return client


def _prime_rows(sim, **kw):
    sim.prime(Q, rows=[{"v": 7}], columns=[("v", "int")], **kw)


def test_primed_error_with_fields(clean_sim, raw_client):
    clean_sim.prime(Q, error={"code": "unavailable", "message": "Cannot achieve consistency",
                              "consistency": "QUORUM", "required": 2, "alive": 1})
    client = _ready(raw_client)
    frame = client.query(Q)
    code, message = error_of(frame)
    assert code == 0x1000 and message == "Cannot achieve consistency"
    pos = 4 + 2 + len(message)
    assert struct.unpack_from(">Hii", frame.body, pos) == (4, 2, 1)


def test_primed_delay_answers_others_meanwhile(clean_sim, raw_client):
    clean_sim.prime(Q, rows=[{"v": 7}], columns=[("v", "int")], delay=0.5)
    client = _ready(raw_client)
    start = time.monotonic()
    slow = client.send(0x07, _qbody(Q))
    fast = client.send(OPTIONS)
    first = client.recv()
    assert (first.stream, first.opcode) == (fast, SUPPORTED)    # answered while one waits
    second = client.recv()
    assert (second.stream, second.opcode) == (slow, RESULT)
    assert time.monotonic() - start >= 0.45                     # the delay was honoured


def _qbody(text):
    return wire.write_long_string(text) + struct.pack(">HB", 1, 0)


def test_prime_times_node_and_regex(clean_sim, raw_client):
    clean_sim.prime(r"SELECT v FROM faults\.t WHERE k = \d+", regex=True, rows=[{"v": 1}],
                    columns=[("v", "int")], node=1)
    clean_sim.prime(Q, error="overloaded", times=1)
    on0 = _ready(raw_client, node=0)
    on1 = _ready(raw_client, node=1)
    assert error_of(on1.query(Q))[0] == 0x1001            # the newest prime wins, once
    assert on1.query(Q).opcode == RESULT                   # then the regex prime on node 1
    assert on1.query("SELECT v FROM faults.t WHERE k = 42").opcode == RESULT
    # node 0 has no prime for these: the engine answers (the keyspace does not exist)
    assert on0.query("SELECT v FROM faults.t WHERE k = 42").opcode == 0x00


def test_served_log_per_node_and_connection_counts(clean_sim, raw_client):
    _prime_rows(clean_sim)
    c0 = _ready(raw_client, node=0)
    c2 = _ready(raw_client, node=2)
    c0.query(Q)
    c2.query(Q, consistency=4)
    c2.query(Q, consistency=4)
    assert [e["query"] for e in clean_sim.served(0)] == [Q]
    assert clean_sim.served(1) == []
    log2 = clean_sim.served(2, clear=True)
    assert [(e["opcode"], e["consistency"]) for e in log2] == [("QUERY", "QUORUM")] * 2
    assert clean_sim.served(2) == []
    counts = clean_sim.connection_count()
    assert counts[0] >= 1 and counts[2] >= 1
    assert clean_sim.connection_count(2) == counts[2]
    before = clean_sim.node_info()[2]["accepted"]
    _ready(raw_client, node=2)
    info = clean_sim.node_info()[2]
    assert info["accepted"] == before + 1 and info["connections"] == counts[2] + 1
    assert len(info["tokens"]) == 1 and int(info["tokens"][0])


@pytest.mark.parametrize("version", [4, 5])
def test_stall_accepts_bytes_answers_later(clean_sim, raw_client, version):
    _prime_rows(clean_sim)
    client = _ready(raw_client, version=version)
    other = _ready(raw_client, node=1, version=version)
    clean_sim.stall(0, 1.0)
    stream = client.send(0x07, _qbody(Q) if version == 4 else
                         wire.write_long_string(Q) + struct.pack(">HI", 1, 0))
    with pytest.raises(socket.timeout):
        client.response(stream, timeout=0.5)
    assert other.request(OPTIONS).opcode == SUPPORTED       # other nodes unaffected
    assert client.response(stream, timeout=3).opcode == RESULT


@pytest.mark.parametrize("version", [4, 5])
def test_close_after_n_requests(clean_sim, raw_client, version):
    _prime_rows(clean_sim)
    client = _ready(raw_client, version=version)
    clean_sim.close_after(0, 2)
    body = _qbody(Q) if version == 4 else wire.write_long_string(Q) + struct.pack(">HI", 1, 0)
    assert client.request(0x07, body).opcode == RESULT
    assert client.request(0x07, body).opcode == RESULT
    client.send(0x07, body)
    assert client.is_closed()
    again = _ready(raw_client, version=version)               # one-shot: new connections work
    assert again.request(0x07, body).opcode == RESULT


def test_corrupt_next_frame_v4(clean_sim, raw_client):
    client = _ready(raw_client, version=4)
    clean_sim.corrupt_next_frame(0)
    with pytest.raises(ProtocolError):
        client.request(OPTIONS)
    fresh = _ready(raw_client, version=4)
    assert fresh.request(OPTIONS).opcode == SUPPORTED        # only one frame was corrupted


def test_corrupt_next_frame_v5_is_a_checksum_mismatch(clean_sim, raw_client):
    client = _ready(raw_client, version=5)
    clean_sim.corrupt_next_frame(0)
    with pytest.raises(ChecksumMismatch):
        client.request(OPTIONS)


def test_drop_connections(clean_sim, raw_client):
    c0 = _ready(raw_client, node=0)
    c1 = _ready(raw_client, node=1)
    assert clean_sim.drop_connections(0) >= 1
    assert c0.is_closed()
    assert c1.request(OPTIONS).opcode == SUPPORTED
    assert _ready(raw_client, node=0).request(OPTIONS).opcode == SUPPORTED
    clean_sim.drop_connections()
    assert c1.is_closed()


def test_stop_and_start_node_events_and_refusal(clean_sim, raw_client):
    watcher = _ready(raw_client, node=0, version=5)
    assert watcher.register(("STATUS_CHANGE",)).opcode == READY
    victim = _ready(raw_client, node=1)
    clean_sim.stop_node(1)
    assert victim.is_closed()
    with pytest.raises(OSError):
        socket.create_connection((clean_sim.contact_points[1], clean_sim.port), timeout=2)
    event = watcher.recv()
    assert event.opcode == EVENT and event.stream == -1
    kind, pos = wire.read_string(event.body, 0)
    change, pos = wire.read_string(event.body, pos)
    address, port = wire.read_inet(event.body, pos)[0]
    assert (kind, change, str(address), port) == ("STATUS_CHANGE", "DOWN",
                                                  clean_sim.contact_points[1], clean_sim.port)
    assert [n["up"] for n in clean_sim.node_info()] == [True, False, True]
    clean_sim.start_node(1)
    event = watcher.recv()
    assert wire.read_string(event.body, len("STATUS_CHANGE") + 2)[0] == "UP"
    assert _ready(raw_client, node=1).request(OPTIONS).opcode == SUPPORTED


def test_control_errors_name_the_problem(clean_sim):
    from cqlreactor.testing.server.control import ControlError
    with pytest.raises(ControlError, match="unknown error name"):
        clean_sim.prime(Q, error="no_such_error")
    with pytest.raises(ControlError, match="out of range"):
        clean_sim.stall(9, 1)


def test_restarted_node_answers_unprepared(clean_sim, raw_client):
    pytest.importorskip("cqlreactor.testing.engine")
    client = _ready(raw_client, node=1)
    prepared = client.request(0x09, wire.write_long_string("SELECT key FROM system.local"))
    assert prepared.opcode == RESULT
    query_id, _ = wire.read_short_bytes(prepared.body, 4)
    execute = wire.write_short_bytes(query_id) + struct.pack(">HB", 1, 0)
    assert client.request(0x0A, execute).opcode == RESULT
    clean_sim.stop_node(1)
    clean_sim.start_node(1)
    client = _ready(raw_client, node=1)
    frame = client.request(0x0A, execute)
    code, message = error_of(frame)
    assert code == 0x2500
    assert wire.read_short_bytes(frame.body, 4 + 2 + len(message.encode()))[0] == query_id


def test_schema_change_events_reach_every_node(clean_sim, raw_client):
    pytest.importorskip("cqlreactor.testing.engine")
    watcher = _ready(raw_client, node=2, version=5)
    assert watcher.register(("SCHEMA_CHANGE",)).opcode == READY
    ddl = _ready(raw_client, node=0)
    frame = ddl.query("CREATE KEYSPACE IF NOT EXISTS evented WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert frame.opcode == RESULT and struct.unpack_from(">i", frame.body, 0)[0] == 5
    event = watcher.recv()
    assert event.opcode == EVENT and event.stream == -1
    kind, pos = wire.read_string(event.body, 0)
    change, pos = wire.read_string(event.body, pos)
    target, pos = wire.read_string(event.body, pos)
    keyspace, pos = wire.read_string(event.body, pos)
    assert (kind, change, target, keyspace) == ("SCHEMA_CHANGE", "CREATED", "KEYSPACE",
                                                "evented")
