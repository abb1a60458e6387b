"""cassandra-driver as the oracle for the v5 switch: the segments our Connection writes after
READY decode with the driver's SegmentCodec, and segments the driver writes are accepted."""

import io
import struct

import pytest

from cqlreactor.core import messages as m
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.connection import Connection
from cqlreactor.core.events import ResponseReceived
from cqlreactor.testing.memory import MemoryServer, pump

driver_connection = pytest.importorskip("cassandra.connection")
if not hasattr(driver_connection, "segment_codec_no_compression"):
    pytest.skip("this cassandra-driver has no v5 segment codec", allow_module_level=True)

CODECS = [(None, driver_connection.segment_codec_no_compression)]
if "lz4" in available_compressors() and getattr(driver_connection, "segment_codec_lz4", None):
    CODECS.append(("lz4", driver_connection.segment_codec_lz4))


def ready(compression):
    client = Connection(host="oracle:9042", protocol_version=5, compression=compression)
    client.initiate()
    pump(client, MemoryServer())
    assert client.is_ready and client.compression == compression
    return client


def driver_decode(codec, data):
    buf = io.BytesIO(data)
    payload = b""
    segments = 0
    while buf.tell() < len(data):
        header = codec.decode_header(buf)
        payload += codec.decode(buf, header).payload
        segments += 1
    envelopes = []
    pos = 0
    while pos < len(payload):
        version, flags, stream, opcode, length = struct.unpack_from(">BBhBi", payload, pos)
        envelopes.append((version, stream, opcode, payload[pos + 9:pos + 9 + length]))
        pos += 9 + length
    return segments, envelopes


@pytest.mark.parametrize("compression,codec", CODECS, ids=[c or "plain" for c, _ in CODECS])
def test_driver_decodes_our_segments(compression, codec):
    client = ready(compression)
    texts = ["SELECT %d FROM t" % i for i in range(3)]
    streams = [client.send_request(m.QueryMessage(t, m.QueryParameters(consistency=1)))
               for t in texts]
    segments, envelopes = driver_decode(codec, client.data_to_send())
    assert segments == 1
    assert [(v, s, op) for v, s, op, _ in envelopes] == [(5, s, 0x07) for s in streams]
    for (_, _, _, body), text in zip(envelopes, texts):
        (length,) = struct.unpack_from(">i", body)
        assert body[4:4 + length].decode() == text


@pytest.mark.parametrize("compression,codec", CODECS, ids=[c or "plain" for c, _ in CODECS])
def test_we_accept_driver_segments(compression, codec):
    client = ready(compression)
    streams = [client.send_request(m.QueryMessage("x", m.QueryParameters(consistency=1)))
               for _ in range(2)]
    client.data_to_send()
    void = b"\x00\x00\x00\x01"                        # RESULT kind Void, written by hand
    envelopes = b"".join(struct.pack(">BBhBi", 0x85, 0, s, 0x08, len(void)) + void
                         for s in streams)
    out = io.BytesIO()
    codec.encode(out, envelopes)
    events = client.receive_data(out.getvalue())
    assert [(type(e), e.stream_id) for e in events] == [(ResponseReceived, s) for s in streams]
    assert all(isinstance(e.message, m.VoidResult) for e in events)


@pytest.mark.parametrize("compression,codec", CODECS, ids=[c or "plain" for c, _ in CODECS])
def test_driver_decodes_our_auth_response_segment(compression, codec):
    # cassandra-driver switches to segments right after AUTHENTICATE; so must we
    from cqlreactor.core.auth import PlainTextAuthProvider
    server = MemoryServer(credentials=("u", "p"))
    client = Connection(host="oracle:9042", protocol_version=5, compression=compression,
                        authenticator=PlainTextAuthProvider("u", "p"))
    client.initiate()
    server.receive_data(client.data_to_send())                 # OPTIONS
    client.receive_data(server.data_to_send())                 # SUPPORTED
    server.receive_data(client.data_to_send())                 # STARTUP
    client.receive_data(server.data_to_send())                 # AUTHENTICATE (bare)
    segments, envelopes = driver_decode(codec, client.data_to_send())
    assert segments == 1
    [(version, stream, opcode, body)] = envelopes
    assert (version, opcode) == (5, 0x0F) and body == struct.pack(">i", 4) + b"\x00u\x00p"
