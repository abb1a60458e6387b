"""Cluster(cloud=...) the ways cassandra-driver users write it (issue 10): a user SSLContext as
``cloud["ssl_context"]`` (used instead of one built from the bundle's certificates, for the
metadata service and every node), and the bundle given as bytes or as a file object as well as a
path.  Against the fake Astra: real TLS with client certificates, a real SNI proxy."""

import io
import os
import ssl
import tempfile

import pytest

pytest.importorskip("cryptography")

from cqlreactor import Cluster, PlainTextAuthProvider  # noqa: E402
from cqlreactor.core.errors import CloudConfigError  # noqa: E402
from cqlreactor.testing.astra import FakeAstra, certs  # noqa: E402

USER, PASSWORD = "astra", "s3cret"


@pytest.fixture(scope="module")
def astra():
    with FakeAstra(nodes=2, username=USER, password=PASSWORD) as fake:
        yield fake


@pytest.fixture
def systmp(tmp_path, monkeypatch):
    """A private system temp dir (bytes and file-object bundles are extracted there); it must
    be empty after the test."""
    d = tmp_path / "systmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield str(d)
    assert os.listdir(str(d)) == [], "files left in the temp dir"


def _user_context(ca_path, cert, check_hostname=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca_path)
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    return ctx


def _roundtrip(cloud, reactor=None):
    cluster = Cluster(cloud=cloud, connection_class=reactor, connect_timeout=5,
                      auth_provider=PlainTextAuthProvider(USER, PASSWORD))
    with cluster:
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"
        return cluster


def test_user_ssl_context_is_used_for_metadata_and_nodes(astra, systmp, reactor):
    ctx = _user_context(astra.ca.cert_path, astra.client_cert)
    cluster = _roundtrip({"secure_connect_bundle": astra.bundle_path, "ssl_context": ctx,
                          "use_default_tempdir": True}, reactor)
    assert cluster.ssl_context is ctx
    assert ctx.check_hostname is False          # the user's context was not changed


def test_user_ssl_context_with_another_ca_fails_the_metadata_call(astra, systmp, tmp_path):
    # proof that the user's context, not the bundle's certificates, is what connects
    other_ca = certs.make_ca(str(tmp_path), name="not the Astra CA")
    ctx = _user_context(other_ca.cert_path, astra.client_cert)
    with pytest.raises(CloudConfigError, match="certificate"):
        Cluster(cloud={"secure_connect_bundle": astra.bundle_path, "ssl_context": ctx,
                       "use_default_tempdir": True})


def test_user_ssl_context_that_cannot_work_is_refused(astra, tmp_path):
    bundle = astra.bundle_path
    checking = _user_context(astra.ca.cert_path, astra.client_cert, check_hostname=True)
    with pytest.raises(ValueError, match="check_hostname = False"):
        Cluster(cloud={"secure_connect_bundle": bundle, "ssl_context": checking})
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="CERT_REQUIRED"):
        Cluster(cloud={"secure_connect_bundle": bundle, "ssl_context": lax})
    with pytest.raises(ValueError, match="ssl.SSLContext"):
        Cluster(cloud={"secure_connect_bundle": bundle, "ssl_context": {"ca_certs": "x"}})
    # nothing was extracted next to the bundle by the refused calls
    assert not [n for n in os.listdir(os.path.dirname(bundle)) if n.startswith(".cqlreactor")]


def test_bundle_as_bytes_and_as_file_objects(astra, systmp):
    with open(astra.bundle_path, "rb") as f:
        content = f.read()
    cluster = _roundtrip({"secure_connect_bundle": content})
    assert cluster._cloud_config.bundle.path == "<%d bytes>" % len(content)
    with open(astra.bundle_path, "rb") as f:
        _roundtrip({"secure_connect_bundle": f})
        assert not f.closed                      # the caller's file stays the caller's

    class Pipe(io.RawIOBase):
        """A readable stream that cannot seek (like a pipe)."""

        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._data.read(len(buffer))
            buffer[:len(chunk)] = chunk
            return len(chunk)

    _roundtrip({"secure_connect_bundle": io.BufferedReader(Pipe(content))})
    with open(astra.bundle_path, "r", encoding="latin-1") as text:
        with pytest.raises(CloudConfigError, match="'rb'"):
            Cluster(cloud={"secure_connect_bundle": text})
    with pytest.raises(CloudConfigError, match="not a zip"):
        Cluster(cloud={"secure_connect_bundle": b"not a zip at all"})
