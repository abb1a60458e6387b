"""The fake Astra presents itself as Astra does: PRODUCT_TYPE in SUPPORTED (so drivers set
``metadata.dbaas`` and default to LOCAL_QUORUM), DNS names with matching certificates for the
proxy and the metadata service, bundles without credentials, and CREATE KEYSPACE refused over
CQL.  cassandra-driver is the independent check; our own client must agree with it.
"""

import json
import zipfile

import pytest

pytest.importorskip("cryptography")

from cryptography import x509                                   # noqa: E402
from cryptography.x509.oid import NameOID                      # noqa: E402

from cqlreactor import Cluster, ConsistencyLevel, PlainTextAuthProvider   # noqa: E402
from cqlreactor.core.errors import Unauthorized                # noqa: E402
from cqlreactor.testing.astra import FakeAstra                 # noqa: E402

USER, TOKEN = "token", "AstraCS:fake"


@pytest.fixture(scope="module")
def astra():
    with FakeAstra(nodes=2, username=USER, password=TOKEN, keyspace="app") as fake:
        yield fake


def _config(bundle_path):
    with zipfile.ZipFile(bundle_path) as zf:
        return json.loads(zf.read("config.json").decode("utf-8"))


def _names(cert_files):
    cert = cert_files.cert
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return cn, san.get_values_for_type(x509.DNSName)


def test_bundle_names_dns_hosts_and_carries_no_credentials(astra):
    config = _config(astra.bundle_path)
    assert config["host"] == "localhost"
    assert "username" not in config and "password" not in config
    assert config["keyspace"] == "app"
    assert astra.proxy_address.startswith("localhost:")
    assert astra.metadata_url.startswith("https://localhost:")
    for cert in (astra.node_cert, astra.metadata_cert):
        cn, dns = _names(cert)
        assert cn == "localhost" and "localhost" in dns


def test_credentials_in_bundle_on_request(tmp_path):
    with FakeAstra(start_cluster=False, routes={}, username="u", password="p",
                   credentials_in_bundle=True, directory=str(tmp_path)) as fake:
        config = _config(fake.bundle_path)
    assert (config["username"], config["password"]) == ("u", "p")


def test_our_client_recognises_astra(astra):
    with Cluster(cloud={"secure_connect_bundle": astra.bundle_path},
                 auth_provider=PlainTextAuthProvider(USER, TOKEN)) as cluster:
        session = cluster.connect()
        assert cluster.metadata.dbaas
        assert cluster.profile_manager.default.consistency_level == \
            ConsistencyLevel.LOCAL_QUORUM
        rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
        assert "app" in [r.keyspace_name for r in rows]
        with pytest.raises(Unauthorized) as info:
            session.execute("CREATE KEYSPACE other WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        assert "has no CREATE permission on <all keyspaces>" in str(info.value)
        assert USER in str(info.value)
        with pytest.raises(Unauthorized):
            session.execute("DROP KEYSPACE app")
        session.execute("CREATE TABLE app.t (k int PRIMARY KEY)")     # tables are allowed


def test_a_plain_simulated_cluster_is_not_dbaas(cql_cluster):
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port) as cluster:
        cluster.connect()
        assert cluster.metadata.dbaas is False


@pytest.mark.oracle
@pytest.mark.parametrize("protocol_version", [4, 5])
def test_cassandra_driver_recognises_astra(astra, protocol_version):
    cluster_mod = pytest.importorskip("cassandra.cluster")
    from cassandra import ConsistencyLevel as CL, Unauthorized as DriverUnauthorized
    from cassandra.auth import PlainTextAuthProvider as DriverAuth

    cluster = cluster_mod.Cluster(cloud={"secure_connect_bundle": astra.bundle_path},
                                  auth_provider=DriverAuth(USER, TOKEN),
                                  protocol_version=protocol_version, connect_timeout=10)
    try:
        session = cluster.connect()
        assert cluster.metadata.dbaas
        profile = cluster.profile_manager.default
        assert profile.consistency_level == CL.LOCAL_QUORUM
        with pytest.raises(DriverUnauthorized):
            session.execute("CREATE KEYSPACE IF NOT EXISTS other WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    finally:
        cluster.shutdown()
