"""SimulatedCluster(release_version=...): the nodes are that Cassandra release, over the wire
(system.local / system.peers, SUPPORTED's CQL_VERSION) and in what CQL they accept."""

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import SyntaxException
from cqlreactor.testing import SimulatedCluster

pytest.importorskip("cqlreactor.testing.engine")


def test_a_5_0_cluster_has_vectors_and_says_so(cql_cluster_factory):
    sim = cql_cluster_factory(nodes=2, release_version="5.0.2")
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        session = cluster.connect()
        assert {h.release_version for h in cluster.metadata.all_hosts()} == {"5.0.2"}
        conn = cluster.control_connection.connection
        assert conn.supported["CQL_VERSION"] == ["3.4.7"]
        session.execute("CREATE KEYSPACE r5 WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE r5.v (k int PRIMARY KEY, e vector<float, 3>)")
        session.execute("INSERT INTO r5.v (k, e) VALUES (1, [1.0, 2.0, 3.0])")
        assert list(session.execute("SELECT e FROM r5.v WHERE k = 1"))[0].e == [1.0, 2.0, 3.0]


def test_the_default_4_0_cluster_refuses_vectors(cql_cluster):
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port) as cluster:
        session = cluster.connect()
        row = list(session.execute("SELECT release_version FROM system.local"))[0]
        assert row.release_version == "4.0.11"
        session.execute("CREATE KEYSPACE IF NOT EXISTS r4 WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        with pytest.raises(SyntaxException) as info:
            session.execute("CREATE TABLE r4.v (k int PRIMARY KEY, e vector<float, 3>)")
        assert "Cassandra 5.0" in str(info.value)


def test_an_unknown_release_is_refused_before_starting():
    with pytest.raises(ValueError) as info:
        SimulatedCluster(release_version="3.0.29")
    assert "3.11.x, 4.0.x, 4.1.x or 5.0.x" in str(info.value)
