"""The independent oracle for core/messages.py: cassandra-driver's ``cassandra.protocol``.

Requests: the driver encodes them (``ProtocolHandler.encode_message``), we decode its bytes, and
our encoder must write the very same bytes.  Responses: the driver only has decoders for them,
so our encoder's bytes are decoded by ``ProtocolHandler.decode_message`` and compared field by
field (the driver cannot encode responses, so that direction is checked by our own decoder in
test_messages.py).  Both v4 and v5.
"""

import ipaddress
import logging
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqlreactor.core import messages as m
from cqlreactor.core.frames import FrameDecoder

import strategies_messages as sm

cassandra = pytest.importorskip("cassandra")
cp = pytest.importorskip("cassandra.protocol")
cq = pytest.importorskip("cassandra.query")

PH = cp.ProtocolHandler
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
versions = pytest.mark.parametrize("version", sm.VERSIONS)
BATCH_TYPES = {0: cq.BatchType.LOGGED, 1: cq.BatchType.UNLOGGED, 2: cq.BatchType.COUNTER}
driver_value = st.none() | st.just(cq.UNSET_VALUE) | sm.raw


@pytest.fixture(autouse=True)
def quiet_driver_log():
    """The driver logs every server warning it decodes; the tests send many on purpose."""
    logger = logging.getLogger("cassandra.protocol")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _ours(value):
    return m.UNSET_VALUE if value is cq.UNSET_VALUE else value


def _decode_driver_bytes(data, version):
    """Their request bytes -> our message, through our FrameDecoder."""
    decoder = FrameDecoder()
    decoder.add_data(data)
    [frame] = list(decoder)
    return m.decode_message(frame, version)


def _driver_decodes(message, version, result_metadata=None, **extras):
    """Our response bytes -> the driver's message."""
    data = m.encode_message(message, 11, version, **extras)
    _, flags, stream, opcode, length = struct.unpack(">BBhBi", data[:9])
    assert length == len(data) - 9
    return PH.decode_message(version, {}, stream, flags, opcode, data[9:], None, result_metadata)


def _both_ways(driver_message, our_message, version):
    theirs = PH.encode_message(driver_message, 5, version, None, False)
    assert m.encode_message(our_message, 5, version) == theirs
    decoded = _decode_driver_bytes(theirs, version)
    assert decoded == our_message
    return decoded


# --- requests: driver bytes == our bytes, and we decode theirs ----------------------------------

@versions
def test_startup_options_register_auth_response(version):
    @SETTINGS
    @given(options=st.dictionaries(sm.text, sm.text, max_size=3), cql=sm.text,
           events=st.lists(sm.text, max_size=3), token=sm.raw)
    def check(options, cql, events, token):
        options.pop("CQL_VERSION", None)
        ours = dict(options)
        ours["CQL_VERSION"] = cql
        _both_ways(cp.StartupMessage(cql, options), m.StartupMessage(ours), version)
        _both_ways(cp.OptionsMessage(), m.OptionsMessage(), version)
        _both_ways(cp.RegisterMessage(events), m.RegisterMessage(events), version)
        _both_ways(cp.AuthResponseMessage(token), m.AuthResponseMessage(token), version)
    check()


@st.composite
def paging(draw, version):
    return dict(
        consistency_level=draw(sm.cl),
        serial_consistency_level=draw(st.none() | st.sampled_from([8, 9])),
        fetch_size=draw(st.none() | st.integers(1, 2 ** 31 - 1)),
        paging_state=draw(st.none() | st.binary(min_size=1, max_size=12)),
        timestamp=draw(st.none() | st.integers(0, 2 ** 63 - 1)))


def _our_parameters(kw, values=None, skip_metadata=False, keyspace=None):
    return m.QueryParameters(
        kw["consistency_level"], values=values, skip_metadata=skip_metadata,
        page_size=kw["fetch_size"], paging_state=kw["paging_state"],
        serial_consistency=kw["serial_consistency_level"], timestamp=kw["timestamp"],
        keyspace=keyspace)


@versions
def test_query(version):
    @SETTINGS
    @given(query=sm.text, kw=paging(version), keyspace=st.none() | sm.text, trace=st.booleans(),
           payload=st.none() | st.dictionaries(sm.text, sm.raw, min_size=1, max_size=2))
    def check(query, kw, keyspace, trace, payload):
        if version < 5:
            keyspace = None
        theirs = cp.QueryMessage(query, keyspace=keyspace, **kw)
        ours = m.QueryMessage(query, _our_parameters(kw, keyspace=keyspace))
        theirs.tracing = ours.tracing = trace
        theirs.custom_payload = ours.custom_payload = payload
        _both_ways(theirs, ours, version)
    check()


@versions
def test_execute(version):
    @SETTINGS
    @given(query_id=sm.raw, values=st.lists(driver_value, max_size=4), kw=paging(version),
           metadata_id=sm.raw)
    def check(query_id, values, kw, metadata_id):
        # cassandra-driver never writes the skip_metadata flag (it ignores skip_meta when it
        # builds the flags), so only skip=False can be compared byte for byte.
        skip = False
        metadata_id = metadata_id if version >= 5 else None
        theirs = cp.ExecuteMessage(query_id, values, skip_meta=skip,
                                   result_metadata_id=metadata_id, **kw)
        ours = m.ExecuteMessage(query_id, _our_parameters(kw, [_ours(v) for v in values], skip),
                                metadata_id)
        _both_ways(theirs, ours, version)
    check()


@versions
def test_prepare(version):
    @SETTINGS
    # an empty keyspace is left out: the driver then sets the flag but writes no keyspace
    @given(query=sm.text, keyspace=st.none() | st.text(min_size=1, max_size=8))
    def check(query, keyspace):
        if version < 5:
            keyspace = None
        _both_ways(cp.PrepareMessage(query, keyspace), m.PrepareMessage(query, keyspace),
                   version)
    check()


@versions
def test_batch(version):
    @SETTINGS
    @given(statements=st.lists(st.tuples(sm.text | sm.raw, st.lists(driver_value, max_size=3)),
                               max_size=4),
           batch_type=st.sampled_from(sorted(BATCH_TYPES)), consistency=sm.cl,
           serial=st.none() | st.sampled_from([8, 9]),
           timestamp=st.none() | st.integers(0, 2 ** 63 - 1),
           keyspace=st.none() | st.text(min_size=1, max_size=8))
    def check(statements, batch_type, consistency, serial, timestamp, keyspace):
        if version < 5:
            keyspace = None
        theirs = cp.BatchMessage(
            BATCH_TYPES[batch_type],
            [(isinstance(q, bytes), q, values) for q, values in statements], consistency,
            serial_consistency_level=serial, timestamp=timestamp, keyspace=keyspace)
        ours = m.BatchMessage(batch_type, [(q, [_ours(v) for v in values])
                                           for q, values in statements],
                              consistency, serial, timestamp, keyspace)
        _both_ways(theirs, ours, version)
    check()


# --- responses: our bytes decoded by the driver ----------------------------------------------------

def _same_address(a, b):
    return ipaddress.ip_address(a) == ipaddress.ip_address(b)


@versions
def test_errors(version):
    @SETTINGS
    @given(message=sm.errors(version), trace=st.none() | st.uuids(),
           warnings=st.none() | st.lists(sm.text, min_size=1, max_size=2))
    def check(message, trace, warnings):
        theirs = _driver_decodes(message, version, tracing_id=trace, warnings=warnings)
        assert (theirs.code, theirs.message) == (message.code, message.message)
        assert (theirs.trace_id, theirs.warnings) == (trace, warnings)
        info = message.info
        if message.code == 0x2500:
            assert theirs.info == info["query_id"]
            return
        if not info or message.code == 0x1700:
            return   # (the driver has no reader for CAS write unknown's fields)
        expected = dict(info)
        expected.pop("contentions", None)       # the driver does not read it (trailing bytes)
        if "write_type" in expected:
            expected["write_type"] = cassandra.WriteType.name_to_value[expected["write_type"]]
        their_map = theirs.info.get("error_code_map")
        our_map = expected.pop("error_code_map", None)
        if our_map is not None:
            assert set((ipaddress.ip_address(a), c) for a, c in their_map.items()) == set(
                (ipaddress.ip_address(a), c) for a, c in our_map.items())
        elif "failures" in expected:
            assert their_map is None
        their_info = dict(theirs.info)
        their_info.pop("error_code_map", None)
        assert their_info == expected
    check()


@versions
def test_handshake_responses(version):
    @SETTINGS
    @given(options=st.dictionaries(sm.text, st.lists(sm.text, max_size=3), max_size=3),
           cql=st.lists(sm.text, max_size=2), authenticator=sm.text, token=sm.raw,
           success=sm.text)
    def check(options, cql, authenticator, token, success):
        assert isinstance(_driver_decodes(m.ReadyMessage(), version), cp.ReadyMessage)
        supported = dict(options)
        supported["CQL_VERSION"] = cql
        theirs = _driver_decodes(m.SupportedMessage(supported), version)
        assert theirs.cql_versions == cql
        options.pop("CQL_VERSION", None)
        assert theirs.options == options
        assert _driver_decodes(m.AuthenticateMessage(authenticator),
                               version).authenticator == authenticator
        assert _driver_decodes(m.AuthChallengeMessage(token), version).challenge == token
        # the driver reads AUTH_SUCCESS as text
        assert _driver_decodes(m.AuthSuccessMessage(success.encode("utf-8")),
                               version).token == success
    check()


def _driver_type_name(ctype):
    return ctype.cql_parameterized_type().replace(" ", "").replace("varchar", "text")


@versions
def test_rows(version):
    @SETTINGS
    # (at least one column: with none, the driver falls back to its result_metadata argument)
    @given(message=sm.rows_results(version).filter(lambda r: r.column_metadata), payload=st.none() | st.dictionaries(
        sm.text, sm.raw, min_size=1, max_size=2))
    def check(message, payload):
        theirs = _driver_decodes(message, version, custom_payload=payload)
        assert theirs.kind == m.RESULT_KIND_ROWS and theirs.custom_payload == payload
        assert theirs.paging_state == message.paging_state
        assert [tuple(r) for r in theirs.parsed_rows] == message.rows
        assert theirs.column_names == [c[2] for c in message.column_metadata]
        assert [_driver_type_name(t) for t in theirs.column_types] == [
            c[3].name.replace(" ", "") for c in message.column_metadata]
        assert [c[:2] for c in theirs.column_metadata] == [c[:2]
                                                           for c in message.column_metadata]
        if message.result_metadata_id is not None:
            assert theirs.result_metadata_id == message.result_metadata_id
        # the same rows without metadata: the driver decodes with the metadata it already has
        bare = m.RowsResult(message.column_metadata, message.rows, message.paging_state,
                            no_metadata=True)
        again = _driver_decodes(bare, version, result_metadata=theirs.column_metadata)
        assert [tuple(r) for r in again.parsed_rows] == message.rows
    check()


@versions
def test_other_results(version):
    @SETTINGS
    @given(prepared=sm.prepared_results(version), keyspace=sm.text,
           change=sm.schema_change())
    def check(prepared, keyspace, change):
        assert _driver_decodes(m.VoidResult(), version).kind == m.RESULT_KIND_VOID
        assert _driver_decodes(m.SetKeyspaceResult(keyspace),
                               version).new_keyspace == keyspace
        theirs = _driver_decodes(prepared, version)
        assert theirs.query_id == prepared.query_id
        assert theirs.pk_indexes == prepared.pk_indexes
        assert theirs.result_metadata_id == prepared.result_metadata_id
        assert [(c.keyspace_name, c.table_name, c.name, _driver_type_name(c.type))
                for c in theirs.bind_metadata] == [
            (c[0], c[1], c[2], c[3].name.replace(" ", "")) for c in prepared.bind_metadata]
        if prepared.result_metadata is None:
            assert theirs.column_metadata is None
        else:
            assert [c[2] for c in theirs.column_metadata] == [
                c[2] for c in prepared.result_metadata]
        event = _driver_decodes(m.SchemaChangeResult(*change), version).schema_change_event
        _check_schema_event(event, change)
    check()


def _check_schema_event(event, change):
    change_type, target, ks, name, args = change
    assert (event["change_type"], event["target_type"], event["keyspace"]) == (
        change_type, target, ks)
    if target in ("TABLE", "TYPE"):
        assert event[target.lower()] == name
    elif target in ("FUNCTION", "AGGREGATE"):
        descriptor = event[target.lower()]
        assert (descriptor.name, list(descriptor.argument_types)) == (name, args)


@versions
def test_events(version):
    @SETTINGS
    @given(event=sm.events())
    def check(event):
        theirs = _driver_decodes(event, version)
        assert theirs.event_type == event.event_type
        if event.event_type == "SCHEMA_CHANGE":
            _check_schema_event(theirs.event_args, (event.change_type, event.target,
                                                    event.keyspace, event.name, event.arg_types))
        else:
            address, port = theirs.event_args["address"]
            assert theirs.event_args["change_type"] == event.change_type
            assert _same_address(address, event.address[0]) and port == event.address[1]
    check()
