"""The metadata client against the fake Astra's real HTTPS metadata service (mutual TLS).

FakeAstra(start_cluster=False) runs only the CA, the bundle, the metadata service and the SNI
proxy, so these tests need no simulated cluster.
"""

import os
import shutil
import ssl
import tempfile

import pytest

pytest.importorskip("cryptography")

from cqlreactor.cloud import cloud_config_from                           # noqa: E402
from cqlreactor.core.errors import CloudConfigError                      # noqa: E402
from cqlreactor.testing.astra import certs                                     # noqa: E402
from cqlreactor.testing.astra import FakeAstra, MetadataServer, write_bundle  # noqa: E402

IDS = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"]


@pytest.fixture(scope="module")
def astra():
    routes = {h: ("127.0.0.1", 9) for h in IDS}
    with FakeAstra(start_cluster=False, routes=routes, username="astra", password="s3cret",
                   host="127.0.0.1", credentials_in_bundle=True,
                   keyspace="ks1", local_dc="dc-east") as fake:
        yield fake


@pytest.fixture
def bundle_dir(astra):
    """A private copy of the bundle in its own directory, checked for leftovers after."""
    d = tempfile.mkdtemp(prefix="scb-test-")
    path = os.path.join(d, "scb.zip")
    shutil.copy(astra.bundle_path, path)
    yield path
    left = sorted(os.listdir(d))
    shutil.rmtree(d)
    assert left == ["scb.zip"], "extracted files left behind: %r" % (left,)


@pytest.fixture(autouse=True)
def reset_modes(astra):
    yield
    astra.metadata.mode = "ok"
    astra.proxy.mode = "ok"


def _fails(bundle, *fragments, **options):
    cloud = {"secure_connect_bundle": bundle}
    cloud.update(options)
    with pytest.raises(CloudConfigError) as info:
        cloud_config_from(cloud)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_cloud_config_from_the_fake(astra, bundle_dir):
    cfg = cloud_config_from({"secure_connect_bundle": bundle_dir})
    try:
        assert cfg.local_dc == "dc-east"
        assert cfg.metadata.host_ids == IDS
        assert (cfg.metadata.sni_host, cfg.metadata.sni_port) == ("127.0.0.1", astra.proxy.port)
        assert [e.server_hostname for e in cfg.endpoints] == IDS
        assert {e.tls_hostname for e in cfg.endpoints} == {"127.0.0.1"}
        assert (cfg.keyspace, cfg.username, cfg.password) == ("ks1", "astra", "s3cret")
        assert cfg.ssl_context.verify_mode.name == "CERT_REQUIRED"
        assert os.path.isfile(cfg.bundle.key_path)
    finally:
        cfg.cleanup()


def test_use_default_tempdir(astra, bundle_dir):
    cfg = cloud_config_from({"secure_connect_bundle": bundle_dir, "use_default_tempdir": True})
    cfg.cleanup()
    assert os.path.dirname(cfg.bundle.directory) == tempfile.gettempdir()
    assert not os.path.exists(cfg.bundle.directory)


def test_service_down(astra, bundle_dir):
    astra.metadata.mode = "down"
    _fails(bundle_dir, astra.metadata.url, "after 2 attempts")


def test_service_slow_times_out_with_one_retry(astra, bundle_dir):
    astra.metadata.delay = 5
    astra.metadata.mode = "slow"
    before = astra.metadata.requests
    _fails(bundle_dir, astra.metadata.url, "no answer within 0.3 s", connect_timeout=0.3)
    assert astra.metadata.requests - before == 2


@pytest.mark.parametrize("mode,fragment", [
    ("bad_json", "not valid JSON"),
    ("missing_fields", "contact_info"),
    ("http_error", "HTTP 500"),
])
def test_bad_answers(astra, bundle_dir, mode, fragment):
    astra.metadata.mode = mode
    _fails(bundle_dir, astra.metadata.url, fragment)


def test_client_certificate_the_service_does_not_trust(astra, bundle_dir, tmp_path):
    # ca.crt trusts our rogue CA as well, so the bundle passes its own checks; the service,
    # which trusts only the fake Astra CA, rejects the client certificate.
    rogue = certs.make_ca(str(tmp_path), basename="rogue", name="rogue CA")
    client = certs.make_cert(rogue, ["intruder"], str(tmp_path), "intruder", usage="client")
    path = os.path.join(os.path.dirname(bundle_dir), "rogue.zip")
    write_bundle(path, "127.0.0.1", astra.metadata.port, astra.ca.cert_pem + rogue.cert_pem,
                 client.cert_pem, client.key_pem)
    try:
        _fails(path, astra.metadata.url)
    finally:
        os.remove(path)


def test_service_certificate_from_another_ca(astra, bundle_dir, tmp_path):
    other = certs.make_ca(str(tmp_path), basename="other", name="other CA")
    client = certs.make_cert(other, ["c"], str(tmp_path), "c", usage="client")
    path = os.path.join(os.path.dirname(bundle_dir), "other.zip")
    write_bundle(path, "127.0.0.1", astra.metadata.port, other.cert_pem, client.cert_pem,
                 client.key_pem)
    try:
        _fails(path, astra.metadata.url, "failed verification")
    finally:
        os.remove(path)


def test_service_name_not_in_its_certificate(astra, bundle_dir, tmp_path):
    # a second metadata service whose (CA-signed) certificate names only "other.example"
    server_cert = certs.make_cert(astra.ca, ["other.example"], str(tmp_path), "other",
                                  usage="server")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server_cert.cert_path, server_cert.key_path)
    ctx.load_verify_locations(cafile=astra.ca.cert_path)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = MetadataServer(ctx, lambda: {}).start()
    path = os.path.join(os.path.dirname(bundle_dir), "misnamed.zip")
    write_bundle(path, "127.0.0.1", server.port, astra.ca.cert_pem,
                 astra.client_cert.cert_pem, astra.client_cert.key_pem)
    try:
        text = _fails(path, server.url)
        assert "127.0.0.1" in text
        assert server.requests == 0            # refused before any request was sent
    finally:
        server.close()
        os.remove(path)


@pytest.mark.parametrize("cloud,fragment", [
    ({}, "secure_connect_bundle"),
    ({"secure_connect_bundle": "x.zip", "bogus": 1}, "bogus"),
    ({"secure_connect_bundle": "x.zip", "connect_timeout": 0}, "connect_timeout"),
])
def test_bad_cloud_dicts(cloud, fragment):
    with pytest.raises(ValueError) as info:
        cloud_config_from(cloud)
    assert fragment in str(info.value)
