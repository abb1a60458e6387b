"""core/messages.py + core/results.py: every message round-trips (v4 and v5) through real frames,
frame extras survive, malformed bodies raise ProtocolError, ERROR maps onto errors.py."""

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqlreactor.core import errors, messages as m, results, types
from cqlreactor.core.frames import (FLAG_CUSTOM_PAYLOAD, FLAG_TRACING, FLAG_WARNING, Frame,
                                    FrameDecoder)
from cqlreactor.core.wire import UNSET_VALUE, write_int, write_short, write_string

import strategies_messages as sm

NAMES = sorted(sm.message_strategies(4))
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _frames(data):
    decoder = FrameDecoder()
    decoder.add_data(data)
    return list(decoder)


def _set_extras(message, extras):
    message.tracing, message.tracing_id, message.warnings, message.custom_payload = extras


@pytest.mark.parametrize("version", sm.VERSIONS)
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_a_frame(name, version):
    strategy = sm.message_strategies(version)[name]

    @SETTINGS
    @given(message=strategy, data=st.data(), stream=st.integers(-1, 32767))
    def check(message, data, stream):
        _set_extras(message, data.draw(sm.extras(message.is_response)))
        encoded = m.encode_message(message, stream, version)
        [frame] = _frames(encoded)
        assert (frame.version, frame.stream, frame.opcode) == (version, stream, message.opcode)
        assert frame.is_response == message.is_response
        decoded = m.decode_message(frame, version)
        assert type(decoded) is type(message)
        assert decoded == message
        # the body alone decodes the same way (extras aside)
        if not (frame.flags & (FLAG_TRACING | FLAG_WARNING | FLAG_CUSTOM_PAYLOAD)):
            decoder = m.ResultMessage if isinstance(message, m.ResultMessage) else type(message)
            assert decoder.decode_body(frame.body, version) == message
    check()


@pytest.mark.parametrize("version", sm.VERSIONS)
@pytest.mark.parametrize("name", NAMES)
def test_every_truncated_body_raises_protocol_error(name, version):
    strategy = sm.message_strategies(version)[name]

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=strategy)
    def check(message):
        body = message.encode_body(version)
        for cut in range(len(body)):
            frame = Frame(version, 0, 5, message.opcode, body[:cut], message.is_response)
            with pytest.raises(errors.ProtocolError) as info:
                m.decode_message(frame, version)
            assert info.value.opcode == message.opcode and info.value.stream_id == 5
    check()


@pytest.mark.parametrize("version", sm.VERSIONS)
@pytest.mark.parametrize("opcode", sorted(m.OPCODES))
@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=64))
def test_random_bodies_decode_or_raise_protocol_error(opcode, version, body):
    for is_response in (False, True):
        frame = Frame(version, 0, 1, opcode, body, is_response)
        try:
            m.decode_message(frame, version)
        except errors.ProtocolError:
            pass


def test_unknown_opcode_and_result_kind():
    with pytest.raises(errors.ProtocolError, match="unknown opcode.*opcode=0x04"):
        m.decode_message(Frame(4, 0, 3, 0x04, b""), 4)
    with pytest.raises(errors.ProtocolError, match="unknown RESULT kind 0x0009"):
        m.decode_message(Frame(4, 0, 3, 0x08, write_int(9), True), 4)
    with pytest.raises(errors.ProtocolError, match="unknown event type"):
        m.decode_message(Frame(4, 0, -1, 0x0C, write_string("NOPE"), True), 4)


def test_absurd_counts_fail_fast():
    int_max = 2 ** 31 - 1
    rows_head = write_int(2) + write_int(0) + write_int(1)   # kind, flags, 1 column
    spec = write_string("ks") + write_string("t") + write_string("c") + write_short(0x0009)
    for body in (
            rows_head[:8] + write_int(int_max),                            # columns
            rows_head + spec + write_int(int_max),                         # rows
            write_int(2) + write_int(4) + write_int(0) + write_int(int_max),  # 0 cols, no meta
            write_int(4) + write_short(0) + write_int(0) + write_int(0) + write_int(int_max),
    ):
        with pytest.raises(errors.ProtocolError):
            m.ResultMessage.decode_body(body, 4)
    with pytest.raises(errors.ProtocolError):   # reason map of 2**31-1 entries
        m.ErrorMessage.decode_body(write_int(0x1300) + write_string("x") + write_short(1)
                                   + write_int(1) + write_int(1) + write_int(int_max), 5)
    with pytest.raises(errors.ProtocolError):   # 65535 batch statements in 10 bytes
        m.BatchMessage.decode_body(b"\x00\xff\xff" + b"\x00" * 10, 4)


# --- ERROR ---------------------------------------------------------------------------------------

EXCEPTIONS = {
    0x0000: errors.ServerError, 0x000A: errors.ProtocolException,
    0x0100: errors.BadCredentials, 0x1000: errors.Unavailable,
    0x1001: errors.OverloadedErrorMessage, 0x1002: errors.IsBootstrappingErrorMessage,
    0x1003: errors.TruncateError, 0x1100: errors.WriteTimeout, 0x1200: errors.ReadTimeout,
    0x1300: errors.ReadFailure, 0x1400: errors.FunctionFailure, 0x1500: errors.WriteFailure,
    0x1600: errors.CDCWriteFailure, 0x1700: errors.CASWriteUnknown,
    0x2000: errors.SyntaxException, 0x2100: errors.Unauthorized, 0x2200: errors.InvalidRequest,
    0x2300: errors.ConfigurationException, 0x2400: errors.AlreadyExists,
    0x2500: errors.Unprepared,
}


@pytest.mark.parametrize("version", sm.VERSIONS)
@pytest.mark.parametrize("code", sorted(EXCEPTIONS))
def test_error_codes_map_to_exceptions_with_fields(code, version):
    @settings(max_examples=10, deadline=None)
    @given(info=sm.error_info(code, version), text=sm.text)
    def check(info, text):
        message = m.ErrorMessage.decode_body(
            m.ErrorMessage(code, text, info).encode_body(version), version)
        exc = message.to_exception(host="10.0.0.9:9042")
        assert type(exc) is EXCEPTIONS[code]
        assert exc.server_message == text and exc.host == "10.0.0.9:9042"
        for key, value in info.items():
            assert getattr(exc, key) == value
    check()


def test_error_fields_by_name():
    v5 = m.ErrorMessage(0x1100, "cas timeout", {
        "consistency": 9, "received_responses": 1, "required_responses": 2, "write_type": "CAS",
        "contentions": 3})
    exc = m.ErrorMessage.decode_body(v5.encode_body(5), 5).to_exception()
    assert (exc.consistency, exc.received_responses, exc.required_responses, exc.write_type,
            exc.contentions) == (9, 1, 2, "CAS", 3)
    # v4 has no contentions on the wire
    assert "contentions" not in m.ErrorMessage.decode_body(v5.encode_body(4), 4).info
    failure = {"consistency": 4, "received_responses": 1, "required_responses": 2,
               "error_code_map": {"10.0.0.1": 1, "::1": 2}, "data_retrieved": False}
    body = m.ErrorMessage(0x1300, "rf", failure).encode_body(5)
    exc = m.ErrorMessage.decode_body(body, 5).to_exception()
    assert exc.failures == 2 and exc.error_code_map == {"10.0.0.1": 1, "::1": 2}
    # on v4 only the number of failures travels
    exc = m.ErrorMessage.decode_body(m.ErrorMessage(0x1300, "rf", failure).encode_body(4),
                                     4).to_exception()
    assert exc.failures == 2 and exc.error_code_map is None
    unprepared = m.ErrorMessage.decode_body(
        m.ErrorMessage(0x2500, "?", {"query_id": b"\x01\x02"}).encode_body(4), 4)
    assert unprepared.to_exception().query_id == b"\x01\x02"
    exists = m.ErrorMessage(0x2400, "exists", {"keyspace": "ks", "table": ""}).to_exception()
    assert isinstance(exists, errors.ConfigurationException) and exists.keyspace == "ks"


def test_unknown_error_code_is_a_generic_server_error():
    body = write_int(0x7777) + write_string("new in v9") + b"extra ignored"
    message = m.ErrorMessage.decode_body(body, 5)
    assert message.code == 0x7777 and message.info == {}
    exc = message.to_exception(host="h")
    assert type(exc) is errors.ServerError and exc.code == 0x7777
    assert "new in v9" in str(exc)


# --- frame extras and framing ---------------------------------------------------------------------

def test_response_extras_are_decoded_not_dropped():
    trace = uuid.uuid4()
    data = m.encode_message(m.VoidResult(), 9, 5, tracing_id=trace, warnings=["slow", "big"],
                            custom_payload={"k": b"v"})
    [frame] = _frames(data)
    assert frame.flags == FLAG_TRACING | FLAG_WARNING | FLAG_CUSTOM_PAYLOAD and frame.is_response
    message = m.decode_message(frame, 5)
    assert isinstance(message, m.VoidResult)
    assert (message.tracing_id, message.warnings, message.custom_payload) == (
        trace, ["slow", "big"], {"k": b"v"})


def test_request_tracing_flag_carries_no_uuid():
    query = m.QueryMessage("SELECT 1", m.QueryParameters(1))
    query.tracing = True
    [frame] = _frames(m.encode_message(query, 1, 4))
    assert frame.flags == FLAG_TRACING and frame.body == query.encode_body(4)
    decoded = m.decode_message(frame, 4)
    assert decoded.tracing is True and decoded.tracing_id is None
    # flags given by the caller for extras that are absent are not written
    [frame] = _frames(m.encode_message(m.OptionsMessage(), 1, 4,
                                       flags=FLAG_WARNING | FLAG_CUSTOM_PAYLOAD))
    assert frame.flags == 0


def test_pre_encoded_request_is_sent_as_is():
    params = m.QueryParameters(4, values=[b"\x00\x00\x00\x01", None, UNSET_VALUE])
    body = m.ExecuteMessage(b"\xab" * 16, params, b"\xcd").encode_body(5)
    pre = m.PreEncodedRequest(m.ExecuteMessage.opcode, body)
    pre.custom_payload = {"p": b"1"}
    [frame] = _frames(m.encode_message(pre, 2, 5))
    decoded = m.decode_message(frame, 5)
    assert decoded.query_id == b"\xab" * 16 and decoded.parameters == params
    assert decoded.result_metadata_id == b"\xcd" and decoded.custom_payload == {"p": b"1"}


def test_v5_only_features_refused_on_v4():
    for message in (m.QueryMessage("q", m.QueryParameters(1, keyspace="ks")),
                    m.QueryMessage("q", m.QueryParameters(1, now_in_seconds=5)),
                    m.PrepareMessage("q", keyspace="ks"),
                    m.BatchMessage(0, [], 1, keyspace="ks")):
        with pytest.raises(errors.UnsupportedOperation):
            message.encode_body(4)


def test_flags_are_a_byte_on_v4_and_an_int_on_v5():
    params = m.QueryParameters(1, page_size=10)
    assert params.encode(4) == struct.pack(">HBi", 1, 0x04, 10)
    assert params.encode(5) == struct.pack(">HIi", 1, 0x04, 10)
    batch = m.BatchMessage(1, [("INSERT", [b"x"]), (b"\x01\x02", [None])], 4, timestamp=7)
    body4, body5 = batch.encode_body(4), batch.encode_body(5)
    assert body4.endswith(struct.pack(">HBq", 4, 0x20, 7))
    assert body5.endswith(struct.pack(">HIq", 4, 0x20, 7))


def test_batch_with_named_values_round_trips():
    batch = m.BatchMessage(0, [("INSERT :a", [b"1"], ["a"]), (b"id", [None, b"2"], ["x", "y"])],
                           1)
    assert m.BatchMessage.decode_body(batch.encode_body(5), 5) == batch


# --- RESULT Rows ---------------------------------------------------------------------------------

def _meta(*type_names):
    return [("ks", "t", "c%d" % i, types.parse_cql_type(n)) for i, n in enumerate(type_names)]


def test_rows_without_metadata_use_the_given_metadata():
    meta = _meta("int", "text")
    full = m.RowsResult(meta, [(1, "a"), (None, "b")], paging_state=b"next")
    skipped = m.RowsResult(meta, [(1, "a"), (None, "b")], paging_state=b"next", no_metadata=True)
    body = skipped.encode_body(4)
    assert len(body) < len(full.encode_body(4))
    result = m.ResultMessage.decode_body(body, 4, result_metadata=meta)
    assert result.rows == [(1, "a"), (None, "b")] and result.has_more_pages
    assert result.column_metadata is meta and result.no_metadata
    # decode_message passes it through too
    frame = Frame(4, 0, 1, 0x08, body, True)
    assert m.decode_message(frame, 4, result_metadata=meta).rows == result.rows
    # without metadata the rows wait for decode_rows
    pending = m.ResultMessage.decode_body(body, 4)
    assert pending.rows is None
    assert pending.decode_rows(meta) == [(1, "a"), (None, "b")]
    assert pending.column_names == ["c0", "c1"]
    with pytest.raises(errors.ProtocolError, match="2 columns"):
        m.ResultMessage.decode_body(body, 4, result_metadata=_meta("int"))


def test_metadata_cache_hits_only_on_identical_metadata():
    first = m.RowsResult(_meta("int", "text"), [(1, "x")]).encode_body(5)
    again = m.RowsResult(_meta("int", "text"), [(2, "y"), (3, None)]).encode_body(5)
    other = m.RowsResult(_meta("int", "int"), [(4, 5)]).encode_body(5)  # same 48-byte prefix
    a = m.ResultMessage.decode_body(first, 5)
    b = m.ResultMessage.decode_body(again, 5)
    c = m.ResultMessage.decode_body(other, 5)
    assert a.column_metadata is b.column_metadata     # parsed once
    assert b.rows == [(2, "y"), (3, None)]
    assert c.rows == [(4, 5)] and c.column_types == [types.parse_cql_type("int")] * 2


def test_rows_metadata_changed_carries_the_new_id():
    rows = m.RowsResult(_meta("int"), [(1,)], result_metadata_id=b"\x07\x08")
    decoded = m.ResultMessage.decode_body(rows.encode_body(5), 5)
    assert decoded.result_metadata_id == b"\x07\x08"
    with pytest.raises(errors.UnsupportedOperation):
        rows.encode_body(4)


def test_malformed_cell_is_a_protocol_error():
    body = bytearray(m.RowsResult(_meta("int"), [(1,)]).encode_body(4))
    body[-8:-4] = write_int(3)      # an int cell claiming 3 bytes
    with pytest.raises(errors.ProtocolError):
        m.ResultMessage.decode_body(bytes(body[:-1]), 4)


def test_prepared_result_fields():
    prepared = m.PreparedResult(b"\x01" * 16, _meta("int", "text"), [1, 0],
                                _meta("bigint"), b"\x02" * 16)
    decoded = m.ResultMessage.decode_body(prepared.encode_body(5), 5)
    assert decoded.pk_indexes == [1, 0] and decoded.result_metadata_id == b"\x02" * 16
    assert [c[3] for c in decoded.bind_metadata] == [types.INT, types.TEXT]
    no_rows = m.PreparedResult(b"\x01", _meta("int"), [], None)
    assert m.ResultMessage.decode_body(no_rows.encode_body(4), 4).result_metadata is None


def test_event_args_like_cassandra_driver():
    event = m.EventMessage("SCHEMA_CHANGE", "CREATED", None, "FUNCTION", "ks", "f", ["int"])
    assert event.event_args == {"change_type": "CREATED", "target_type": "FUNCTION",
                                "keyspace": "ks", "function": ("f", ["int"])}
    status = m.EventMessage("STATUS_CHANGE", "UP", ("127.0.0.2", 9042))
    assert status.event_args == {"change_type": "UP", "address": ("127.0.0.2", 9042)}


def test_result_module_is_reexported():
    assert m.RowsResult is results.RowsResult and m.OPCODES[0x08] is results.ResultMessage
    assert all(m.OPCODES[op].opcode == op for op in m.OPCODES)
