"""ssl_options checks host names as cassandra-driver 3.30 does (issue 10): the certificate is
always verified against ``ca_certs``, but its name is checked only when ``check_hostname`` is
set in ssl_options (or the ssl_context given has ``check_hostname``).  cassandra-driver is the
oracle: both drivers connect to the same TLS node whose certificate names another host.

The reactor does not decide this (the context is built before any socket): default reactor."""

import ssl

import pytest
from _cluster_helpers import tls_simulated_cluster

from cqlreactor import Cluster, NoHostAvailable

their_cluster = pytest.importorskip("cassandra.cluster")
# cassandra-driver warns that ssl_options alone is deprecated there: the behaviour is the point
pytestmark = pytest.mark.filterwarnings("ignore:Using ssl_options without ssl_context")


@pytest.fixture(scope="module")
def misnamed(tmp_path_factory):
    """One TLS node at 127.0.0.1 whose certificate (signed by the CA) is for db.example.com."""
    with tls_simulated_cluster(tmp_path_factory.mktemp("misnamed"),
                               names=["db.example.com"]) as sim_and_ca:
        yield sim_and_ca


def _connects(cls, sim, **kwargs):
    cluster = cls(sim.contact_points, port=sim.port, connect_timeout=5,
                  control_connection_timeout=5, **kwargs)
    try:
        cluster.connect()
        return True
    except NoHostAvailable:
        return False
    except their_cluster.NoHostAvailable:
        return False
    finally:
        cluster.shutdown()


def _checking_context(ca):
    return ssl.create_default_context(cafile=ca.cert_path)     # check_hostname True


@pytest.mark.parametrize("how, connects", [
    ("ssl_options", True),                       # the name is not checked by default
    ("ssl_options check_hostname", False),
    ("ssl_options check_hostname=False", True),
    ("ssl_context check_hostname", False),
])
def test_host_names_are_checked_only_when_asked_as_in_cassandra_driver(misnamed, how, connects):
    sim, ca = misnamed
    if how.startswith("ssl_options"):
        options = {"ca_certs": ca.cert_path}
        if how.endswith("check_hostname"):
            options["check_hostname"] = True
        elif how.endswith("=False"):
            options["check_hostname"] = False
        ours = _connects(Cluster, sim, ssl_options=dict(options))
        theirs = _connects(their_cluster.Cluster, sim, ssl_options=dict(options))
    else:
        ours = _connects(Cluster, sim, ssl_context=_checking_context(ca))
        theirs = _connects(their_cluster.Cluster, sim, ssl_context=_checking_context(ca))
    assert (ours, theirs) == (connects, connects)


def test_an_untrusted_certificate_is_refused_without_check_hostname(misnamed, tmp_path):
    """Not checking the name does not mean not verifying: another CA's certificate fails."""
    from cqlreactor.testing.astra.certs import make_ca
    sim, _ = misnamed
    other = make_ca(str(tmp_path))
    assert not _connects(Cluster, sim, ssl_options={"ca_certs": other.cert_path})
