"""lz4 / snappy compressors and compression negotiation."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from cqlreactor.core import compression
from cqlreactor.core.compression import available_compressors, choose_compression
from cqlreactor.core.errors import FrameTooLarge, ProtocolError

AVAILABLE = available_compressors()
NAMES = sorted(AVAILABLE)

bodies = st.one_of(st.binary(max_size=5000),
                   st.tuples(st.binary(min_size=1, max_size=20), st.integers(1, 2000))
                   .map(lambda t: t[0] * t[1]))


def test_lz4_is_available_when_its_package_imports():
    try:
        import lz4.block  # noqa: F401
    except ImportError:
        assert "lz4" not in AVAILABLE
    else:
        assert AVAILABLE["lz4"].name == "lz4" and AVAILABLE["lz4"].supports_segments


def test_snappy_is_available_when_its_package_imports():
    try:
        import snappy  # noqa: F401
    except ImportError:
        assert "snappy" not in AVAILABLE
    else:
        assert AVAILABLE["snappy"].name == "snappy"
        assert not AVAILABLE["snappy"].supports_segments


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=80, deadline=None)
@given(body=bodies)
def test_frame_round_trip(name, body):
    compressor = AVAILABLE[name]
    assert compressor.decompress_frame(compressor.compress_frame(body)) == body


def test_lz4_frame_format_is_big_endian_length_then_block():
    lz4_block = pytest.importorskip("lz4.block")
    body = b"hello hello hello hello"
    data = AVAILABLE["lz4"].compress_frame(body)
    assert data[:4] == struct.pack(">I", len(body))
    assert lz4_block.decompress(data[4:], uncompressed_size=len(body)) == body


@pytest.mark.parametrize("name", NAMES)
def test_declared_length_over_maximum_is_rejected_before_decompressing(name):
    compressor = AVAILABLE[name]
    data = compressor.compress_frame(b"a" * 5000)
    with pytest.raises(FrameTooLarge):
        compressor.decompress_frame(data, max_size=4999)
    assert compressor.decompress_frame(data, max_size=5000) == b"a" * 5000


def test_lz4_absurd_declared_length():
    lz4 = AVAILABLE.get("lz4") or pytest.skip("lz4 not installed")
    with pytest.raises(FrameTooLarge):
        lz4.decompress_frame(b"\x7f\xff\xff\xff" + b"\x00")


def test_snappy_absurd_declared_length():
    snappy = AVAILABLE.get("snappy") or pytest.skip("python-snappy not installed")
    with pytest.raises(FrameTooLarge):
        snappy.decompress_frame(b"\xff\xff\xff\xff\x0f" + b"\x00")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("data", [b"", b"\x01", b"\x00\x00\x00\x10\xff\xff\xff\xff",
                                  b"\x00\x00\x01\x00" + b"\x10abc"])
def test_corrupt_frame_body_is_a_protocol_error(name, data):
    compressor = AVAILABLE[name]
    with pytest.raises(ProtocolError):
        compressor.decompress_frame(data)


def test_lz4_length_mismatch():
    lz4 = AVAILABLE.get("lz4") or pytest.skip("lz4 not installed")
    data = lz4.compress_frame(b"x" * 300)
    longer = struct.pack(">I", 400) + data[4:]
    with pytest.raises(ProtocolError, match="300"):
        lz4.decompress_frame(longer)


def test_lz4_empty_body():
    lz4 = AVAILABLE.get("lz4") or pytest.skip("lz4 not installed")
    assert lz4.decompress_frame(lz4.compress_frame(b"")) == b""
    assert lz4.decompress_block(lz4.compress_block(b""), 0) == b""


@settings(max_examples=80, deadline=None)
@given(body=bodies)
def test_lz4_block_round_trip(body):
    lz4 = AVAILABLE.get("lz4") or pytest.skip("lz4 not installed")
    assert lz4.decompress_block(lz4.compress_block(body), len(body)) == body


def test_snappy_has_no_block_format():
    snappy = AVAILABLE.get("snappy") or pytest.skip("python-snappy not installed")
    with pytest.raises(ProtocolError):
        snappy.compress_block(b"abc")


# --- oracle: cassandra-driver's compress/decompress functions -----------------------------------

@pytest.mark.oracle
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=50, deadline=None)
@given(body=bodies.filter(len))
def test_frame_bodies_match_the_driver(name, body):
    connection = pytest.importorskip("cassandra.connection")
    if name not in connection.locally_supported_compressions:
        pytest.skip("the driver has no %s here" % name)
    theirs_compress, theirs_decompress = connection.locally_supported_compressions[name]
    ours = AVAILABLE[name]
    assert theirs_decompress(ours.compress_frame(body)) == body
    assert ours.decompress_frame(theirs_compress(body)) == body


# --- negotiation --------------------------------------------------------------------------------

def test_no_compression_requested():
    assert choose_compression(None, ["lz4", "snappy"], 4) is None
    assert choose_compression(False, ["lz4", "snappy"], 4) is None


def test_any_prefers_lz4():
    if "lz4" not in AVAILABLE:
        pytest.skip("lz4 not installed")
    assert choose_compression(True, ["snappy", "lz4"], 4).name == "lz4"
    assert choose_compression(True, ["snappy", "lz4"], 5).name == "lz4"


def test_server_support_limits_the_choice():
    assert choose_compression(True, [], 4) is None
    assert choose_compression("lz4", ["snappy"], 4) is None
    if "snappy" in AVAILABLE:
        assert choose_compression(True, ["snappy"], 4).name == "snappy"
        assert choose_compression(["snappy", "lz4"], ["lz4", "SNAPPY"], 4).name == "snappy"


def test_v5_excludes_snappy():
    assert choose_compression("snappy", ["snappy", "lz4"], 5) is None
    if "lz4" in AVAILABLE:
        assert choose_compression(["snappy", "lz4"], ["snappy", "lz4"], 5).name == "lz4"


def test_unknown_name_is_a_value_error():
    with pytest.raises(ValueError, match="zstd"):
        choose_compression("zstd", ["zstd"], 4)


def test_missing_package_means_no_compression(monkeypatch):
    # Simulates an uninstalled lz4 package (the only way to test it with lz4 installed).
    monkeypatch.setattr(compression, "_lz4_block", None)
    assert "lz4" not in available_compressors()
    assert choose_compression("lz4", ["lz4"], 5) is None
    with pytest.raises(ImportError, match="pip install lz4"):
        compression.Lz4Compressor()
