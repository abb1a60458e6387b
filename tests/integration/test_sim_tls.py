"""TLS on the simulated nodes (--tls-dir with node.crt, node.key, ca.crt)."""

import ssl

import pytest

pytest.importorskip("cryptography")

from cqlreactor.testing import SimulatedCluster  # noqa: E402
from cqlreactor.testing.astra import certs  # noqa: E402

from _rawcql import OPTIONS, READY, SUPPORTED, RawClient  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = certs.make_ca(str(directory))
    certs.make_cert(ca, ["127.0.0.1", "127.0.0.2", "localhost"], str(directory), "node",
                    usage="server")
    client = certs.make_cert(ca, ["client"], str(directory), "client", usage="client")
    other_ca = certs.make_ca(str(directory), basename="other_ca")
    stranger = certs.make_cert(other_ca, ["client"], str(directory), "stranger",
                               usage="client")
    return {"dir": str(directory), "ca": ca, "client": client, "stranger": stranger}


def _context(pki, cert=None):
    ctx = ssl.create_default_context(cafile=pki["ca"].cert_path)
    if cert is not None:
        ctx.load_cert_chain(cert.cert_path, cert.key_path)
    return ctx


@pytest.fixture(scope="module")
def tls_sim(pki):
    with SimulatedCluster(nodes=2, tls_dir=pki["dir"]) as sim:
        yield sim


@pytest.mark.parametrize("version", [4, 5])
def test_tls_handshake_and_queries_on_every_node(pki, tls_sim, version):
    for address in tls_sim.contact_points:
        with RawClient(address, tls_sim.port, version=version, ssl_context=_context(pki)) as c:
            assert c.startup(compression="lz4").opcode == READY
            for _ in range(3):
                assert c.request(OPTIONS).opcode == SUPPORTED
            assert isinstance(c.sock, ssl.SSLSocket)


def test_plaintext_client_on_tls_node_is_closed(tls_sim):
    with RawClient(tls_sim.contact_points[0], tls_sim.port) as c:
        c.send(OPTIONS)
        assert c.is_closed(timeout=3)
    # and the node keeps serving TLS clients afterwards: checked by the next test's fixture use


def test_untrusted_server_certificate_is_rejected_by_client(pki, tls_sim, tmp_path):
    other = certs.make_ca(str(tmp_path), basename="unrelated")
    ctx = ssl.create_default_context(cafile=other.cert_path)
    with pytest.raises(ssl.SSLError):
        RawClient(tls_sim.contact_points[0], tls_sim.port, ssl_context=ctx)


def test_client_certificate_required(pki):
    with SimulatedCluster(nodes=1, tls_dir=pki["dir"], client_auth="required") as sim:
        with RawClient(sim.contact_points[0], sim.port, ssl_context=_context(
                pki, pki["client"])) as c:
            assert c.request(OPTIONS).opcode == SUPPORTED
        for cert in (None, pki["stranger"]):
            try:
                c = RawClient(sim.contact_points[0], sim.port, ssl_context=_context(pki, cert))
            except (ssl.SSLError, OSError):
                continue          # refused during the handshake
            with c:               # TLS 1.3: the refusal arrives after the client's handshake
                c.send(OPTIONS)
                assert c.is_closed(timeout=3)
