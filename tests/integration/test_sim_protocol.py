"""The simulated nodes' protocol handling, observed with a raw client."""

import socket
import struct

import pytest

from cqlreactor.core import wire
from cqlreactor.testing import SimulatedCluster

from _rawcql import (AUTH_SUCCESS, AUTHENTICATE, ERROR, OPTIONS, READY, RESULT, STARTUP,
                     SUPPORTED, RawClient, error_of, query_body)

PRIMED = "SELECT a, b FROM primed.t"


def _supported(frame):
    assert frame.opcode == SUPPORTED
    return wire.read_string_multimap(frame.body, 0)[0]


def test_options_supported(raw_client):
    client = raw_client()
    options = _supported(client.request(OPTIONS))
    assert options["PROTOCOL_VERSIONS"] == ["3/v3", "4/v4", "5/v5"]
    assert "lz4" in options["COMPRESSION"]
    assert options["CQL_VERSION"]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("compression", [None, "lz4"])
def test_handshake_and_primed_query(clean_sim, raw_client, version, compression):
    clean_sim.prime(PRIMED, rows=[{"a": 1, "b": "x"}, {"a": 2, "b": None}],
                    columns=[("a", "int"), ("b", "text")])
    client = raw_client(version=version)
    assert client.startup(compression=compression).opcode == READY
    for _ in range(3):      # the second and third answers come from the fast path
        frame = client.query(PRIMED)
        assert frame.opcode == RESULT
        assert frame.version == version
        kind, = struct.unpack_from(">i", frame.body, 0)
        assert kind == 2
        assert frame.body.endswith(b"\x00\x00\x00\x02" + b"\x00\x00\x00\x04\x00\x00\x00\x01"
                                   + b"\x00\x00\x00\x01x" + b"\x00\x00\x00\x04\x00\x00\x00\x02"
                                   + b"\xff\xff\xff\xff")
    assert [e["query"] for e in clean_sim.served(0)] == [PRIMED] * 3


def test_pipelined_requests_each_answered_on_their_stream(clean_sim, raw_client):
    clean_sim.prime(PRIMED, rows=[{"a": 1, "b": "x"}], columns=[("a", "int"), ("b", "text")])
    client = raw_client(version=5)
    client.startup()
    frames = [client.encode(0x07, query_body(PRIMED, version=5), stream=s)[1]
              for s in range(1, 2001)]
    client.send_raw(client.seg_encoder.encode(frames))
    streams = sorted(client.recv().stream for _ in range(2000))
    assert streams == list(range(1, 2001))


def test_unsupported_version_gets_protocol_error_naming_versions(raw_client):
    client = raw_client(version=6)
    client.send(OPTIONS, version=6)
    frame = client.recv()
    assert frame.version == 5
    code, message = error_of(frame)
    assert code == 0x000A
    assert "(6)" in message and "3/v3, 4/v4, 5/v5" in message


def test_node_limited_to_v4_refuses_v5():
    with SimulatedCluster(nodes=1, protocol_versions=(3, 4)) as sim:
        with RawClient(sim.contact_points[0], sim.port, version=5) as client:
            client.send(OPTIONS)
            frame = client.recv()
            assert frame.version == 4
            code, message = error_of(frame)
            assert code == 0x000A and "supported versions are (3/v3, 4/v4)" in message
        with RawClient(sim.contact_points[0], sim.port, version=4) as client:
            assert "5/v5" not in _supported(client.request(OPTIONS))["PROTOCOL_VERSIONS"]


def test_requests_before_startup_are_protocol_errors(raw_client):
    client = raw_client()
    code, message = error_of(client.query("SELECT * FROM system.local"))
    assert code == 0x000A and "STARTUP" in message


def test_unknown_compression_is_refused(raw_client):
    client = raw_client()
    frame = client.request(STARTUP, wire.write_string_map({"CQL_VERSION": "3.0.0",
                                                           "COMPRESSION": "zstd"}))
    code, message = error_of(frame)
    assert code == 0x000A and "zstd" in message


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                    # not CQL at all
    b"\x04\x00\x00\x01\x05\xff\xff\xff\xff",                 # negative body length
    b"\x84\x00\x00\x01\x05\x00\x00\x00\x00",                 # a response sent to the server
])
def test_malformed_frames_get_an_error_or_a_close_and_others_keep_working(
        raw_client, garbage):
    bad = raw_client()
    bad.send_raw(garbage)
    assert bad.is_closed(timeout=3)
    good = raw_client()
    assert good.startup().opcode == READY


def test_malformed_body_gets_protocol_error_and_connection_survives(raw_client):
    client = raw_client()
    client.startup()
    frame = client.request(0x07, b"\x00\x00\x10\x00abc")       # long string longer than body
    code, _ = error_of(frame)
    assert code == 0x000A
    frame = client.request(0x42)                              # unknown opcode
    assert error_of(frame)[0] == 0x000A
    assert client.request(OPTIONS).opcode == SUPPORTED


def test_wrong_version_mid_connection_is_a_protocol_error(raw_client):
    client = raw_client(version=4)
    client.startup()
    client.send(OPTIONS, version=3)
    code, message = error_of(client.recv())
    assert code == 0x000A
    assert client.is_closed()


@pytest.fixture(scope="module")
def auth_sim():
    with SimulatedCluster(nodes=1, auth=("cassandra", "s3cret")) as sim:
        yield sim


@pytest.mark.parametrize("version", [4, 5])
def test_password_authentication(auth_sim, version):
    with RawClient(auth_sim.contact_points[0], auth_sim.port, version=version) as client:
        frame = client.startup(credentials=("cassandra", "s3cret"))
        assert frame.opcode == AUTH_SUCCESS
        assert client.request(OPTIONS).opcode == SUPPORTED
    with RawClient(auth_sim.contact_points[0], auth_sim.port, version=version) as client:
        client.request(OPTIONS)
        frame = client.request(STARTUP, wire.write_string_map({"CQL_VERSION": "3.0.0"}))
        assert frame.opcode == AUTHENTICATE
        assert wire.read_string(frame.body, 0)[0] == \
            "org.apache.cassandra.auth.PasswordAuthenticator"
        client._switch(None)             # v5: segments from here on
        frame = client.request(0x0F, wire.write_bytes(b"\x00cassandra\x00wrong"))
        code, message = error_of(frame)
        assert code == 0x0100
        assert message == "Provided username cassandra and/or password are incorrect"


def test_v5_auth_response_must_come_in_segments(auth_sim):
    """Cassandra 4 switches to segments after AUTHENTICATE; a bare AUTH_RESPONSE envelope is
    then garbage (a segment header with a bad CRC24): the connection is closed."""
    with RawClient(auth_sim.contact_points[0], auth_sim.port, version=5) as client:
        frame = client.request(STARTUP, wire.write_string_map({"CQL_VERSION": "3.0.0"}))
        assert frame.opcode == AUTHENTICATE
        stream = client.send(0x0F, wire.write_bytes(b"\x00cassandra\x00s3cret"))
        frame = client.response(stream)          # explained in the framing the client reads
        code, message = error_of(frame)
        assert code == 0x000A and "segments" in message
        assert client.is_closed()


@pytest.mark.parametrize("version", [4, 5])
def test_random_request_bodies_never_stop_the_server(sim, raw_client, version):
    """Every request opcode with random bodies: answers are ERRORs (or a close), and the
    node keeps serving other clients; nothing reaches the server's stderr."""
    import random
    rng = random.Random(1234 + version)
    opcodes = [0x01, 0x05, 0x07, 0x09, 0x0A, 0x0B, 0x0D, 0x0F, 0x33]
    for _ in range(30):
        client = raw_client(version=version)
        client.startup()
        for _ in range(20):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
            try:
                frame = client.request(rng.choice(opcodes), body, timeout=3)
            except Exception:       # closed: acceptable for garbage
                break
            assert frame.opcode in (0x00, 0x02, 0x06, 0x08)
    good = raw_client(version=version)
    assert good.startup().opcode == READY
    assert good.request(OPTIONS).opcode == SUPPORTED
    assert "internal error" not in sim.stderr


def test_v2_client_gets_the_error_in_its_own_8_byte_header(sim):
    sock = socket.create_connection((sim.contact_points[0], sim.port), timeout=5)
    try:
        sock.sendall(struct.pack(">BBbBi", 2, 0, 7, OPTIONS, 0))
        data = b""
        while len(data) < 8:
            chunk = sock.recv(4096)
            assert chunk
            data += chunk
        version, flags, stream, opcode, length = struct.unpack_from(">BBbBi", data, 0)
        assert (version, stream, opcode) == (0x82, 7, ERROR)
        while len(data) < 8 + length:
            data += sock.recv(4096)
        code = struct.unpack_from(">i", data, 8)[0]
        message, _ = wire.read_string(data, 12)
        assert code == 0x000A and "(2)" in message and "3/v3" in message
    finally:
        sock.close()


def _stamped_query_body(text, timestamp, version=4, values=None):
    """``query_body`` with a client-side default timestamp (flag 0x20) at the end."""
    body = query_body(text, version=version, values=values)
    width = 4 if version >= 5 else 1
    flags_at = len(wire.write_long_string(text)) + 2
    flags = int.from_bytes(body[flags_at:flags_at + width], "big") | 0x20
    return (body[:flags_at] + flags.to_bytes(width, "big") + body[flags_at + width:]
            + struct.pack(">q", timestamp))


@pytest.mark.parametrize("version", [4, 5])
def test_repeated_read_with_new_client_timestamps_hits_the_answer_cache(clean_sim, raw_client,
                                                                        version):
    clean_sim.prime(PRIMED, rows=[{"a": 1, "b": "x"}], columns=[("a", "int"), ("b", "text")])
    client = raw_client(version=version)
    client.startup()
    answers = []
    for timestamp in (1000, 2000, 3000):    # every request stamped differently, as drivers do
        answers.append(client.request(0x07, _stamped_query_body(PRIMED, timestamp, version)))
    assert [frame.opcode for frame in answers] == [RESULT] * 3
    assert answers[0].body == answers[1].body == answers[2].body
    # one entry, keyed without the timestamp: the 2nd and 3rd requests were answered from it
    assert clean_sim.node_info()[0]["cached_answers"] == 1
    assert [e["query"] for e in clean_sim.served(0)] == [PRIMED] * 3


def test_timestampless_key_drops_only_the_timestamp():
    from cqlreactor.testing.server.protocol import timestampless_key
    plain = (4, 0, 0x07, query_body(PRIMED, values=[b"\x00\x00\x00\x01"]))
    stamped = (4, 0, 0x07, _stamped_query_body(PRIMED, 1234, values=[b"\x00\x00\x00\x01"]))
    assert timestampless_key(stamped) == plain
    assert timestampless_key(plain) is plain
    v5 = (5, 0, 0x07, _stamped_query_body(PRIMED, 99, version=5))
    assert timestampless_key(v5) == (5, 0, 0x07, query_body(PRIMED, version=5))
    with_payload = (4, 0x04, 0x07, stamped[3])      # custom payload: left as it is
    assert timestampless_key(with_payload) is with_payload
