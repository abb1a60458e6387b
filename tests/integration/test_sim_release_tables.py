"""Each release the simulated cluster can be (3.11, 4.0, 4.1, 5.0) shows that release's system
tables and protocol versions, as Cassandra's SystemKeyspace / SchemaKeyspace define them:
3.11 has no system.peers_v2 nor virtual keyspaces, speaks v3/v4 only (v5 is its beta) and
has thrift_version in system.local; 4.0 adds the ports, read_repair and
additional_write_policy; 4.1 the memtable option; 5.0 allow_auto_snapshot and
incremental_backups.  Checked with our client and with cassandra-driver as the oracle."""

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import InvalidRequest

pytest.importorskip("cqlreactor.testing.engine")

RELEASES = ["3.11.17", "4.0.11", "4.1.5", "5.0.2"]
_ADDED_OPTIONS = {"additional_write_policy": "4.0", "read_repair": "4.0", "memtable": "4.1",
                  "allow_auto_snapshot": "5.0", "incremental_backups": "5.0"}


def _since(release, first):
    return tuple(int(p) for p in release.split(".")[:2]) >= tuple(
        int(p) for p in first.split("."))


def _setup(session):
    session.execute("CREATE KEYSPACE rel WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE rel.t (k int PRIMARY KEY, v text)")


@pytest.mark.parametrize("release", RELEASES)
def test_our_client_sees_each_releases_tables(cql_cluster_factory, release):
    sim = cql_cluster_factory(nodes=2, release_version=release)
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        session = cluster.connect()
        assert len(cluster.metadata.all_hosts()) == 2         # peers_v2, or peers on 3.11
        conn = cluster.control_connection.connection
        old = not _since(release, "4.0")
        assert conn.supported["PROTOCOL_VERSIONS"] == (
            ["3/v3", "4/v4", "5/v5-beta"] if old else ["3/v3", "4/v4", "5/v5"])
        assert conn.protocol_version == (4 if old else 5)
        local = list(session.execute("SELECT * FROM system.local"))[0]
        assert ("thrift_version" in local._fields) == old
        assert ("rpc_port" in local._fields) == (not old)
        assert local.native_protocol_version == ("4" if old else "5")
        if old:
            with pytest.raises(InvalidRequest) as info:
                session.execute("SELECT * FROM system.peers_v2")
            assert "peers_v2" in str(info.value)
            with pytest.raises(InvalidRequest):
                session.execute("SELECT * FROM system_virtual_schema.keyspaces")
        else:
            assert len(list(session.execute("SELECT * FROM system.peers_v2"))) == 1
        _setup(session)
        row = list(session.execute("SELECT * FROM system_schema.tables WHERE "
                                   "keyspace_name = 'rel' AND table_name = 't'"))[0]
        for option, first in _ADDED_OPTIONS.items():
            assert (option in row._fields) == _since(release, first), option
        assert row.speculative_retry == ("99PERCENTILE" if old else "99p")
        if _since(release, "4.1"):
            assert row.memtable == "default"
        masks = "SELECT * FROM system_schema.column_masks WHERE keyspace_name = 'rel'"
        if _since(release, "5.0"):                  # dynamic data masking's table
            assert list(session.execute(masks)) == []
        else:
            with pytest.raises(InvalidRequest):
                session.execute(masks)


@pytest.mark.parametrize("release", RELEASES)
def test_cassandra_driver_reads_each_releases_metadata(cql_cluster_factory, release):
    cassandra_cluster = pytest.importorskip("cassandra.cluster")
    sim = cql_cluster_factory(nodes=2, release_version=release)
    cluster = cassandra_cluster.Cluster(sim.contact_points, port=sim.port)
    try:
        session = cluster.connect()
        old = not _since(release, "4.0")
        assert cluster.protocol_version == (4 if old else 5)      # downgraded on 3.11
        hosts = cluster.metadata.all_hosts()
        assert sorted(h.release_version for h in hosts) == [release, release]
        assert ("system_virtual_schema" in cluster.metadata.keyspaces) == (not old)
        _setup(session)
        cluster.refresh_schema_metadata()
        table = cluster.metadata.keyspaces["rel"].tables["t"]
        assert list(table.columns) == ["k", "v"]
        cql = table.export_as_string()
        assert ("read_repair = 'BLOCKING'" in cql) == (not old)
        assert ("speculative_retry = '99PERCENTILE'" in cql) == old
    finally:
        cluster.shutdown()


def test_a_3_11_cluster_refuses_protocol_v5_only(cql_cluster_factory):
    with pytest.raises(ValueError) as info:
        cql_cluster_factory(nodes=1, release_version="3.11.17", protocol_versions=(5,))
    assert "3.11.17" in str(info.value)


def test_describe_runs_on_the_server_from_4_0_only(cql_cluster_factory):
    from cqlreactor.core.errors import SyntaxException
    for release, works in (("3.11.17", False), ("4.1.5", True)):
        sim = cql_cluster_factory(nodes=1, release_version=release)
        with Cluster(sim.contact_points, port=sim.port) as cluster:
            session = cluster.connect()
            if works:
                assert list(session.execute("DESCRIBE KEYSPACES"))
            else:
                with pytest.raises(SyntaxException) as info:
                    session.execute("DESCRIBE KEYSPACES")
                assert "3.11.17" in str(info.value)
