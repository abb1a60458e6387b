"""Arguments cassandra-driver users pass to Cluster, Session and statements: each one does what
it does there (issue 10), checked against the simulated cluster's record of what it received."""

import ssl

import pytest

from cqlreactor import Cluster, NoHostAvailable


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    from cqlreactor.testing import SimulatedCluster
    from cqlreactor.testing.astra.certs import make_ca, make_cert
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(str(directory))
    make_cert(ca, ["127.0.0.1"], str(directory), "node", usage="server")
    with SimulatedCluster(nodes=1, tls_dir=str(directory)) as sim:
        yield sim, ca


def test_ssl_options_builds_the_tls_context(tls_sim, cql_reactor):
    sim, ca = tls_sim
    options = {"ca_certs": ca.cert_path, "cert_reqs": ssl.CERT_REQUIRED}
    with _cluster(sim, cql_reactor, ssl_options=options) as cluster:
        assert cluster.ssl_options == options
        assert isinstance(cluster.ssl_context, ssl.SSLContext)
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"
    # without the CA the server's certificate is refused, over TLS (not plain CQL)
    refused = _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_REQUIRED})
    try:
        with pytest.raises(NoHostAvailable) as info:
            refused.connect()
        assert all("certificate" in str(e).lower() for e in info.value.errors.values())
    finally:
        refused.shutdown()
    # cassandra-driver's check_hostname=False with CERT_NONE connects without verifying
    with _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_NONE,
                                                 "check_hostname": False}) as cluster:
        assert cluster.connect().execute("SELECT key FROM system.local").one().key == "local"


def test_unknown_ssl_option_is_refused():
    with pytest.raises(ValueError, match="ssl_version_x"):
        Cluster(["127.0.0.1"], ssl_options={"ssl_version_x": 1})
