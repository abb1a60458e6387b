"""Connection handshake: bytes in, events out (v3/v4/v5, auth, compression, negotiation).

The peer is ``cqlreactor.testing.memory.MemoryServer`` (core messages, server-role Framing)
and, where the exact bytes matter, frames written by hand here with struct.
"""

import struct

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core.auth import Authenticator, PlainTextAuthProvider
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.connection import Connection, parse_supported_versions, retry_version_for
from cqlreactor.core.errors import (AuthenticationFailed, BadCredentials, ConnectionDefunct,
                                    IllegalStateTransition, ProtocolError, ProtocolException,
                                    UnsupportedProtocolVersion)
from cqlreactor.core.events import (ConnectionFailed, ConnectionReady, ProtocolVersionRejected,
                                    ResponseReceived, ServerEventReceived)
from cqlreactor.core.frames import FLAG_USE_BETA, FrameDecoder
from cqlreactor.core.segments import SegmentEncoder
from cqlreactor.core.states import ConnectionState
from cqlreactor.testing.memory import MemoryServer, pump

COMPRESSORS = available_compressors()
HOST = "10.0.0.9:9042"


def query(text="SELECT k, v FROM ks.t"):
    return m.QueryMessage(text, m.QueryParameters(consistency=1))


def connect(version=5, server=None, auth=None, compression=None, **kwargs):
    server = server if server is not None else MemoryServer()
    client = Connection(host=HOST, protocol_version=version, authenticator=auth,
                        compression=compression, **kwargs)
    client.initiate()
    return client, server, pump(client, server)


def frame(version, stream, opcode, body=b"", flags=0, response=True):
    return struct.pack(">BBhBi", version | (0x80 if response else 0), flags, stream, opcode,
                       len(body)) + body


def string_multimap(d):
    out = struct.pack(">H", len(d))
    for key, values in d.items():
        out += struct.pack(">H", len(key)) + key.encode()
        out += struct.pack(">H", len(values))
        for v in values:
            out += struct.pack(">H", len(v)) + v.encode()
    return out


def error_body(code, text):
    return struct.pack(">iH", code, len(text)) + text.encode()


def decode_client(data, version):
    decoder = FrameDecoder()
    decoder.add_data(data)
    return [(f, m.decode_message(f, version)) for f in decoder]


# --- handshake matrix -----------------------------------------------------------------------------

CASES = [(v, auth, comp) for v in (3, 4, 5) for auth in (False, True)
         for comp in (None, "lz4", "snappy")
         if comp is None or (comp in COMPRESSORS and not (v == 5 and comp == "snappy"))]


@pytest.mark.parametrize("version,auth,compression", CASES,
                         ids=["v%d-%s-%s" % (v, "auth" if a else "noauth", c or "plain")
                              for v, a, c in CASES])
def test_handshake_then_query(version, auth, compression):
    server = MemoryServer(credentials=("cassandra", "pw") if auth else None)
    provider = PlainTextAuthProvider("cassandra", "pw") if auth else None
    client, server, events = connect(version, server, provider, compression)
    assert events == [ConnectionReady(version, compression, client.supported, client.options)]
    assert client.state is ConnectionState.READY
    assert server.startup_options["CQL_VERSION"] == "3.0.0"
    assert server.startup_options["DRIVER_NAME"] == "cqlreactor"
    assert "DRIVER_VERSION" in server.startup_options
    assert server.startup_options.get("COMPRESSION") == compression
    assert client.supported["COMPRESSION"] == ["lz4", "snappy"]
    stream = client.send_request(query())
    events = pump(client, server)
    assert len(events) == 1 and events[0].stream_id == stream
    assert events[0].message.rows == [(1, "one"), (2, "two")]
    assert server.requests[0][1].query == "SELECT k, v FROM ks.t"


def test_exact_handshake_bytes_v4():
    client = Connection(host=HOST, protocol_version=4, startup_options={"APPLICATION_NAME": "t"})
    client.initiate()
    assert client.data_to_send() == frame(4, 0, 0x05, response=False)   # OPTIONS
    assert client.data_to_send() == b""
    assert client.state is ConnectionState.OPTIONS_SENT
    supported = frame(4, 0, 0x06, string_multimap({"CQL_VERSION": ["3.4.5"],
                                                     "COMPRESSION": ["snappy"]}))
    assert client.receive_data(supported) == []
    assert client.state is ConnectionState.STARTUP_SENT
    [(startup_frame, startup)] = decode_client(client.data_to_send(), 4)
    assert startup_frame.opcode == 0x01 and startup_frame.stream == 0
    assert startup.options == {"CQL_VERSION": "3.0.0", "DRIVER_NAME": "cqlreactor",
                               "DRIVER_VERSION": client.driver_version,
                               "APPLICATION_NAME": "t"}
    events = client.receive_data(frame(4, 0, 0x02))                     # READY
    assert [type(e) for e in events] == [ConnectionReady]
    assert events[0].compression is None     # we did not ask for compression
    assert events[0].supported == {"CQL_VERSION": ["3.4.5"], "COMPRESSION": ["snappy"]}


def test_handshake_fed_one_byte_at_a_time_v5():
    server = MemoryServer(credentials=("u", "p"))
    client = Connection(host=HOST, protocol_version=5, authenticator=PlainTextAuthProvider("u", "p"))
    client.initiate()
    events = []
    for _ in range(10):
        out = client.data_to_send()
        server.receive_data(out)
        back = server.data_to_send()
        for i in range(len(back)):
            events.extend(client.receive_data(back[i:i + 1]))
        if not out and not back:
            break
    assert [type(e) for e in events] == [ConnectionReady]
    client.send_request(query())
    server.receive_data(client.data_to_send())
    back = server.data_to_send()
    events = []
    for i in range(len(back)):
        events.extend(client.receive_data(back[i:i + 1]))
    assert [e.message.rows for e in events] == [[(1, "one"), (2, "two")]]


def test_v5_bytes_after_ready_in_the_same_chunk_are_segments():
    client = Connection(host=HOST, protocol_version=5)
    client.initiate()
    client.data_to_send()
    client.receive_data(frame(5, 0, 0x06, string_multimap({})))
    client.data_to_send()
    event = m.EventMessage("STATUS_CHANGE", "UP", address=("10.0.0.2", 9042))
    segment = SegmentEncoder().encode([m.encode_message(event, -1, 5)])
    events = client.receive_data(frame(5, 0, 0x02) + segment)
    assert [type(e) for e in events] == [ConnectionReady, ServerEventReceived]
    assert events[1].message.change_type == "UP"
    # and our own output is segmented now: a bare envelope would start with 0x05
    client.send_request(query())
    out = client.data_to_send()
    assert out[0] != 0x05 and len(out) > 6 + 9


def test_v4_switch_does_not_segment():
    client, server, _ = connect(4)
    client.send_request(query())
    out = client.data_to_send()
    assert out[0] == 0x04 and out[4] == 0x07   # a bare v4 QUERY frame


# --- compression negotiation ---------------------------------------------------------------------

@pytest.mark.skipif("lz4" not in COMPRESSORS, reason="lz4 not installed")
def test_compression_only_when_both_sides_have_it():
    client, server, events = connect(4, MemoryServer(compression=["snappy"]),
                                     compression="lz4")
    assert client.compression is None and "COMPRESSION" not in server.startup_options
    client, server, events = connect(5, MemoryServer(compression=["lz4"]),
                                     compression=["snappy", "lz4"])
    assert client.compression == "lz4"


@pytest.mark.skipif("snappy" not in COMPRESSORS, reason="snappy not installed")
def test_snappy_is_not_used_with_v5():
    client, server, events = connect(5, MemoryServer(compression=["snappy"]), compression=True)
    assert client.is_ready and client.compression is None


# --- auth ----------------------------------------------------------------------------------------

def test_auth_challenge_round_trip():
    class Recording(Authenticator):
        def __init__(self):
            self.calls = []

        def initial_response(self):
            self.calls.append(("initial", self.server_authenticator_class))
            return b"\x00u\x00p"

        def evaluate_challenge(self, challenge):
            self.calls.append(("challenge", challenge))
            return b"\x00u\x00p"

        def on_authentication_success(self, token):
            self.calls.append(("success", token))

    auth = Recording()
    client, server, events = connect(5, MemoryServer(credentials=("u", "p"), challenge=True), auth)
    assert client.is_ready
    assert auth.calls == [("initial", "org.apache.cassandra.auth.PasswordAuthenticator"),
                          ("challenge", b"PLAIN-START"), ("success", None)]


@pytest.mark.parametrize("version", [4, 5])
def test_bad_credentials_fail_the_connection_with_the_server_error(version):
    client, server, events = connect(version, MemoryServer(credentials=("u", "right")),
                                     PlainTextAuthProvider("u", "wrong"))
    assert [type(e) for e in events] == [ConnectionFailed]
    error = events[0].error
    assert isinstance(error, BadCredentials) and isinstance(error, AuthenticationFailed)
    assert error.host == HOST and "incorrect" in error.server_message
    assert client.is_defunct and client.last_error is error
    with pytest.raises(ConnectionDefunct):
        client.send_request(query())


def test_server_demands_auth_but_none_configured():
    client, server, events = connect(5, MemoryServer(credentials=("u", "p")))
    [failed] = events
    assert isinstance(failed.error, AuthenticationFailed) and failed.error.host == HOST
    assert "PasswordAuthenticator" in str(failed.error)
    assert client.is_defunct


def test_authenticator_that_raises_fails_the_connection():
    class Broken(Authenticator):
        def initial_response(self):
            raise RuntimeError("no token")

    client, server, events = connect(4, MemoryServer(credentials=("u", "p")), Broken())
    [failed] = events
    assert isinstance(failed.error, AuthenticationFailed)
    assert isinstance(failed.error.__cause__, RuntimeError)


def test_handshake_error_other_than_versions():
    client = Connection(host=HOST, protocol_version=4)
    client.initiate()
    client.receive_data(frame(4, 0, 0x06, string_multimap({})))
    events = client.receive_data(frame(4, 0, 0x00, error_body(0x000A, "Unknown compression")))
    [failed] = events
    assert isinstance(failed.error, ProtocolException) and failed.error.host == HOST
    assert client.is_defunct


# --- protocol version negotiation ----------------------------------------------------------------

@pytest.mark.parametrize("server_kwargs,start,retry", [
    (dict(versions=(3, 4)), 5, 4),
    (dict(versions=(3,)), 5, 3),
    (dict(versions=(3,)), 4, 3),
    (dict(versions=(3, 4), legacy_rejection=True), 5, 4),
    (dict(versions=(3, 4), beta_versions=(5,)), 5, 4),
])
def test_version_rejected_names_the_retry_version(server_kwargs, start, retry):
    client, server, events = connect(start, MemoryServer(**server_kwargs))
    [rejected] = events
    assert isinstance(rejected, ProtocolVersionRejected)
    assert (rejected.requested, rejected.retry_version) == (start, retry)
    assert isinstance(rejected.error, UnsupportedProtocolVersion)
    assert rejected.error.host == HOST and rejected.error.retry_version == retry
    assert client.is_defunct
    # the retry on a new connection works
    client, server, events = connect(retry, MemoryServer(**server_kwargs))
    assert client.is_ready and client.protocol_version == retry


def test_beta_version_with_allow_beta_sets_the_flag():
    server = MemoryServer(versions=(3, 4), beta_versions=(5,))
    client, server, events = connect(5, server, allow_beta=True)
    assert client.is_ready and client.protocol_version == 5
    client.send_request(query())
    assert [type(e) for e in pump(client, server)] == [ResponseReceived]


def test_beta_flag_is_on_every_frame():
    client = Connection(host=HOST, protocol_version=5, allow_beta=True)
    client.initiate()
    assert client.data_to_send()[1] & FLAG_USE_BETA


def test_server_answering_with_an_unknown_frame_version():
    client = Connection(host=HOST, protocol_version=4)
    client.initiate()
    # a v2-only server answers in its own 8-byte header format
    events = client.receive_data(b"\x82\x00\x00\x00\x00\x00\x00\x00\x10" + b"x" * 16)
    [rejected] = events
    assert isinstance(rejected, ProtocolVersionRejected) and rejected.retry_version is None


@pytest.mark.parametrize("text,expected", [
    ("Invalid or unsupported protocol version (6); supported versions are "
     "(3/v3, 4/v4, 5/v5, 6/v6-beta)", [(3, False), (4, False), (5, False), (6, True)]),
    ("Invalid or unsupported protocol version (5); supported versions are "
     "(3/v3, 4/v4, 5/v5-beta)", [(3, False), (4, False), (5, True)]),
    ("Invalid or unsupported protocol version: 5", None),
    ("", None),
])
def test_parse_supported_versions(text, expected):
    assert parse_supported_versions(text) == expected


@pytest.mark.parametrize("requested,text,answered,allow_beta,expected", [
    (5, "Invalid or unsupported protocol version (5); supported versions are "
        "(3/v3, 4/v4, 5/v5-beta)", 4, False, 4),
    (5, "Invalid or unsupported protocol version (5); supported versions are "
        "(3/v3, 4/v4)", 4, False, 4),
    (4, "Invalid or unsupported protocol version (4); supported versions are "
        "(1/v1, 2/v2, 3/v3)", 3, False, 3),
    (3, "Invalid or unsupported protocol version (3); supported versions are (1/v1, 2/v2)",
     2, False, None),
    (5, "Invalid or unsupported protocol version: 5", 3, False, 3),
    (5, "Invalid or unsupported protocol version: 5", None, False, 4),
    (3, "Invalid or unsupported protocol version: 3", None, False, None),
    (5, "Beta version of the protocol used (5/v5-beta), but USE_BETA flag is unset", 5, False, 4),
])
def test_retry_version_for(requested, text, answered, allow_beta, expected):
    assert retry_version_for(requested, text, answered, allow_beta) == expected


# --- illegal things during the handshake ---------------------------------------------------------

def test_send_request_before_ready_raises_and_keeps_state():
    client = Connection(host=HOST)
    with pytest.raises(IllegalStateTransition):
        client.send_request(query())
    client.initiate()
    with pytest.raises(IllegalStateTransition) as info:
        client.send_request(query())
    assert info.value.host == HOST
    assert client.state is ConnectionState.OPTIONS_SENT


def test_initiate_twice_raises():
    client = Connection(host=HOST)
    client.initiate()
    with pytest.raises(IllegalStateTransition):
        client.initiate()


def test_unexpected_message_in_handshake_makes_defunct():
    client = Connection(host=HOST, protocol_version=4)
    client.initiate()
    events = client.receive_data(frame(4, 0, 0x02))    # READY before SUPPORTED
    [failed] = events
    assert isinstance(failed.error, ConnectionDefunct)
    assert isinstance(failed.error.cause, IllegalStateTransition)
    assert client.is_defunct


def test_garbage_instead_of_a_frame():
    client = Connection(host=HOST, protocol_version=4)
    client.initiate()
    events = client.receive_data(b"HTTP/1.1 400 Bad Request\r\n")
    [failed] = events
    assert isinstance(failed.error.cause, ProtocolError) and client.is_defunct


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError):
        Connection(protocol_version=2)
    with pytest.raises(ValueError):
        Connection(heartbeat_interval=0)
    with pytest.raises(ValueError):
        Connection(compression="zstd")


def test_cassandra_driver_auth_provider_works_unchanged():
    cassandra_auth = pytest.importorskip("cassandra.auth")
    provider = cassandra_auth.PlainTextAuthProvider(username="u", password="p")
    client, server, events = connect(5, MemoryServer(credentials=("u", "p")), provider)
    assert client.is_ready
    assert client.authenticator.server_authenticator_class == \
        "org.apache.cassandra.auth.PasswordAuthenticator"


# --- v5: segments start right after the answer to STARTUP (as Cassandra 4 and the driver do) ----

def _v5_to_authenticate(auth):
    client = Connection(host=HOST, protocol_version=5, authenticator=auth)
    client.initiate()
    client.data_to_send()
    client.receive_data(frame(5, 0, 0x06, string_multimap({})))
    client.data_to_send()                                  # STARTUP, bare
    authenticate = struct.pack(">H", 8) + b"PlainSrv"
    assert client.receive_data(frame(5, 0, 0x03, authenticate)) == []
    assert client.state is ConnectionState.AUTHENTICATING
    return client


def test_v5_sasl_exchange_travels_in_segments():
    from cqlreactor.core.segments import SegmentDecoder
    client = _v5_to_authenticate(PlainTextAuthProvider("u", "p"))
    out = client.data_to_send()
    assert out[0] != 0x05                                  # not a bare envelope
    decoder = SegmentDecoder()
    decoder.add_data(out)
    [payload] = list(decoder)
    [(f, response)] = decode_client(payload, 5)
    assert f.opcode == 0x0F and response.token == b"\x00u\x00p"
    success = SegmentEncoder().encode([frame(5, 0, 0x10, struct.pack(">i", -1))])
    events = client.receive_data(success)
    assert [type(e) for e in events] == [ConnectionReady] and client.is_ready


def test_v5_bare_auth_success_after_authenticate_is_a_protocol_error():
    client = _v5_to_authenticate(PlainTextAuthProvider("u", "p"))
    client.data_to_send()
    events = client.receive_data(frame(5, 0, 0x10, struct.pack(">i", -1)))
    assert isinstance(events[-1], ConnectionFailed) and client.is_defunct


def test_v5_bad_credentials_error_arrives_in_a_segment():
    client = _v5_to_authenticate(PlainTextAuthProvider("u", "bad"))
    client.data_to_send()
    error = SegmentEncoder().encode([frame(5, 0, 0x00, error_body(0x0100, "bad creds"))])
    [failed] = client.receive_data(error)
    assert isinstance(failed.error, BadCredentials)


def test_v5_auth_and_first_answers_in_one_chunk():
    server = MemoryServer(credentials=("u", "p"))
    client = Connection(host=HOST, protocol_version=5, authenticator=PlainTextAuthProvider("u", "p"))
    client.initiate()
    pump(client, server)
    assert client.is_ready
    # AUTH_SUCCESS and an EVENT in the same segment: the event is read in READY
    client2 = _v5_to_authenticate(PlainTextAuthProvider("u", "p"))
    client2.data_to_send()
    event = m.EventMessage("STATUS_CHANGE", "UP", address=("10.0.0.2", 9042))
    segment = SegmentEncoder().encode([frame(5, 0, 0x10, struct.pack(">i", -1)),
                                       m.encode_message(event, -1, 5)])
    events = client2.receive_data(segment)
    assert [type(e) for e in events] == [ConnectionReady, ServerEventReceived]


# --- any chunking of the server's bytes gives the same events ------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


def _server_stream(version, auth, compression):
    """Record the bytes a server sends for handshake + two answers, per exchange."""
    server = MemoryServer(credentials=("u", "p") if auth else None)
    client = Connection(host=HOST, protocol_version=version, compression=compression,
                        authenticator=PlainTextAuthProvider("u", "p") if auth else None)
    client.initiate()
    chunks = []
    for _ in range(10):
        out = client.data_to_send()
        server.receive_data(out)
        back = server.data_to_send()
        if back:
            chunks.append(back)
            client.receive_data(back)
        if client.is_ready and len(chunks) < 10 and not server.requests:
            client.send_request(query())
            client.send_request(query("SELECT v FROM ks.t"))
        elif not out and not back:
            break
    return chunks


@settings(max_examples=60, deadline=None)
@given(version=st.sampled_from([4, 5]), auth=st.booleans(),
       compression=st.sampled_from([None] + (["lz4"] if "lz4" in COMPRESSORS else [])),
       cuts=st.lists(st.integers(0, 10 ** 6), max_size=12))
def test_chunking_does_not_change_events(version, auth, compression, cuts):
    chunks = _server_stream(version, auth, compression)

    def replay(split):
        client = Connection(host=HOST, protocol_version=version, compression=compression,
                            authenticator=PlainTextAuthProvider("u", "p") if auth else None)
        client.initiate()
        events = []
        for chunk in chunks:
            client.data_to_send()
            points = sorted(set(c % (len(chunk) + 1) for c in cuts)) if split else []
            start = 0
            for point in points + [len(chunk)]:
                events.extend(client.receive_data(chunk[start:point]))
                start = point
            if client.is_ready and client.in_flight == 0 and not any(
                    isinstance(e, ResponseReceived) for e in events):
                client.send_request(query())
                client.send_request(query("SELECT v FROM ks.t"))
        return events

    whole = replay(False)
    assert [type(e) for e in whole] == [ConnectionReady, ResponseReceived, ResponseReceived]
    assert replay(True) == whole


@pytest.mark.skipif("lz4" not in COMPRESSORS, reason="lz4 not installed")
def test_v4_compressed_answer_to_startup_is_accepted():
    # the spec lets a server compress its answer to STARTUP (Cassandra 3 does)
    from cqlreactor.core.frames import encode_frame
    client = Connection(host=HOST, protocol_version=4, compression="lz4")
    client.initiate()
    client.data_to_send()
    client.receive_data(frame(4, 0, 0x06, string_multimap({"COMPRESSION": ["lz4"]})))
    client.data_to_send()
    ready = encode_frame(4, 0, 0x02, b"", is_response=True, compressor=COMPRESSORS["lz4"])
    assert [type(e) for e in client.receive_data(ready)] == [ConnectionReady]
    client.send_request(query())
    assert client.data_to_send()[1] & 0x01          # FLAG_COMPRESSION from here on
