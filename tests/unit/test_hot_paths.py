"""The request hot paths produce exactly the bytes the general encoders produce.

The core pre-encodes QUERY and EXECUTE bodies for the session (an EXECUTE from an
``ExecuteTemplate``: a head and a tail built once per prepared statement and settings, with the
values spliced between them) and the core writes a
PreEncodedRequest's frame header itself instead of going through ``encode_message``.  These
tests compare both shortcuts with the general encoders, byte for byte, and decode the result
with cassandra-driver's decoder where that is possible.
"""

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core.connection import Connection
from cqlreactor.core.frames import FrameDecoder
from cqlreactor.core.segments import SegmentDecoder
from cqlreactor.core.types import INT, TEXT, UNSET_VALUE
from cqlreactor.selfcheck import MemoryServer, pump
from cqlreactor.core.requests import ExecuteTemplate, pre_encode
from cqlreactor.response_future import _names_and_types
from cqlreactor.session import Session
from cqlreactor.statements import PreparedStatement

HOST = "10.0.0.7:9042"


def prepared(result_metadata=None, metadata_id=None, version=5):
    bind = [("ks", "t", "k", INT), ("ks", "t", "v", TEXT)]
    return PreparedStatement(b"\x01\x02\x03\x04" * 4, "UPDATE ks.t SET v = ? WHERE k = ?", "ks",
                             bind, [0], result_metadata, metadata_id, version)


VALUE_SETS = [
    [b"\x00\x00\x00\x01", b"hello"],
    [None, b""],
    [UNSET_VALUE, b"x" * 300],
    [],
]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("page_size,serial", [(None, None), (5000, None), (100, 9)])
@pytest.mark.parametrize("with_result", [False, True])
def test_pre_encoded_execute_equals_the_encoder(version, values, page_size, serial,
                                                with_result):
    meta = [("ks", "t", "v", TEXT)] if with_result else None
    ps = prepared(meta, b"\xaa\xbb" if with_result else None, version)
    session = Session(cluster=None, hosts=[])
    for _ in range(2):       # the second time the head and tail come from the cache
        message = session._build_execute(ps, values, page_size, serial, version, 6, None)
        assert isinstance(message, m.PreEncodedRequest)
        assert message.opcode == m.ExecuteMessage.opcode
        expected = m.ExecuteMessage(ps.query_id, m.QueryParameters(
            6, values=values, page_size=page_size, serial_consistency=serial,
            skip_metadata=bool(with_result and version >= 5)),
            result_metadata_id=ps.result_metadata_id).encode_body(version)
        assert message.body == expected
        decoded = m.ExecuteMessage.decode_body(message.body, version)
        assert decoded.query_id == ps.query_id
        assert decoded.parameters.values == values
        assert decoded.parameters.consistency == 6
    assert len(session._execute_templates) == 1


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("values", VALUE_SETS)
def test_execute_template_equals_the_encoder_with_every_fixed_parameter(version, values):
    params = dict(page_size=7, serial_consistency=9, skip_metadata=True, timestamp=1234567)
    if version >= 5:
        params["keyspace"] = "ks"
    template = ExecuteTemplate(b"\x05" * 16, b"\x07" if version >= 5 else None, version, 4,
                               **params)
    message = template.request(values)
    expected = m.ExecuteMessage(b"\x05" * 16, m.QueryParameters(4, values=values, **params),
                                result_metadata_id=b"\x07" if version >= 5 else None)
    assert message.body == expected.encode_body(version)


def test_pre_encode_is_the_message_body():
    query = m.QueryMessage("SELECT 1", m.QueryParameters(1, page_size=10))
    pre = pre_encode(query, 5)
    assert isinstance(pre, m.PreEncodedRequest) and pre.opcode == m.QueryMessage.opcode
    assert pre.body == query.encode_body(5)


def test_execute_with_paging_state_or_new_id_is_a_plain_message():
    ps = prepared([("ks", "t", "v", TEXT)], b"\x01")
    session = Session(cluster=None, hosts=[])
    paged = session._build_execute(ps, [b"a"], 10, None, 5, 1, b"state")
    assert isinstance(paged, m.ExecuteMessage)
    assert paged.parameters.paging_state == b"state" and paged.parameters.skip_metadata
    other = session._build_execute(ps, [b"a"], 10, None, 5, 1, None, b"other-id")
    assert isinstance(other, m.ExecuteMessage) and other.query_id == b"other-id"


def _frames(version, data):
    if version >= 5:
        segments = SegmentDecoder()
        segments.add_data(data)
        data = b"".join(segments)
    decoder = FrameDecoder(versions=(version,))
    decoder.add_data(data)
    return list(decoder)


@pytest.mark.parametrize("version", [4, 5])
def test_core_writes_pre_encoded_requests_like_encode_message(version):
    client = Connection(host=HOST, protocol_version=version)
    client.initiate()
    pump(client, MemoryServer())
    assert client.is_ready
    body = m.QueryMessage("SELECT * FROM ks.t", m.QueryParameters(1)).encode_body(version)
    streams = [client.send_request(m.PreEncodedRequest(m.QueryMessage.opcode, body))
               for _ in range(3)]
    frames = _frames(version, client.data_to_send())
    assert [f.stream for f in frames] == streams
    for frame, stream in zip(frames, streams):
        expected = m.encode_message(m.PreEncodedRequest(m.QueryMessage.opcode, body), stream,
                                    version)
        assert frame.body == body and frame.opcode == m.QueryMessage.opcode
        assert frame.version == version and frame.flags == 0 and not frame.is_response
        assert len(expected) == 9 + len(body)


@pytest.mark.parametrize("version", [4, 5])
def test_pre_encoded_request_with_custom_payload_still_carries_it(version):
    client = Connection(host=HOST, protocol_version=version)
    client.initiate()
    pump(client, MemoryServer())
    body = m.QueryMessage("SELECT 1", m.QueryParameters(1)).encode_body(version)
    message = m.PreEncodedRequest(m.QueryMessage.opcode, body)
    message.custom_payload = {"k": b"v"}
    client.send_request(message)
    (frame,) = _frames(version, client.data_to_send())
    assert frame.flags & 0x04        # FLAG_CUSTOM_PAYLOAD: the general encoder wrote it


def test_names_and_types_by_identity():
    meta = [("ks", "t", "a", INT), ("ks", "t", "b", TEXT)]
    names, types = _names_and_types(meta)
    assert names == ["a", "b"] and types == [INT, TEXT]
    assert _names_and_types(meta)[0] is names
    other = [("ks", "t", "c", INT)]
    assert _names_and_types(other) == (["c"], [INT])
    assert _names_and_types(None) == ([], [])
    assert _names_and_types([]) == ([], [])


def test_named_tuple_rows_reuse_the_class_per_column_list():
    from cqlreactor.query import named_tuple_factory
    names = ["a", "b"]
    first = named_tuple_factory(names, [(1, 2)])[0]
    second = named_tuple_factory(names, [(3, 4)])[0]
    assert type(first) is type(second) and second.b == 4
    other = named_tuple_factory(["x", "select"], [(5, 6)])[0]
    assert other.x == 5 and other[1] == 6 and type(other) is not type(first)
    # an equal list elsewhere gets an equal class by names
    assert type(named_tuple_factory(["a", "b"], [(0, 0)])[0]) is type(first)


def test_statement_for_a_string_is_a_plain_simple_statement():
    from cqlreactor.statements import SimpleStatement, simple_statement
    made = simple_statement("SELECT 1")
    built = SimpleStatement("SELECT 1")
    assert type(made) is SimpleStatement and vars(made) == vars(built)
    assert made.query_string == "SELECT 1" and made.routing_key is None
    made.consistency_level = 4             # its own attributes, not the template's
    assert simple_statement("SELECT 2").consistency_level is None
