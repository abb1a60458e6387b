"""The smaller cassandra-driver names the mirror added (issue 10), used as its users use them,
against the simulated cluster's real server process: profile clones, the control connection's
host, host lookup by address, clearing callbacks, QueryExhausted, ValueSequence in ``IN``.
None of these depends on the reactor, so they run on the default one."""

import pytest
from _cluster_helpers import cluster_for

from cqlreactor import ConsistencyLevel
from cqlreactor.cluster import QueryExhausted
from cqlreactor.query import SimpleStatement, ValueSequence


@pytest.fixture
def cluster(cql_cluster):
    with cluster_for(cql_cluster, None) as cluster:
        yield cluster


def test_execution_profile_clone_update(cql_cluster, cluster):
    session = cluster.connect()
    clone = session.execution_profile_clone_update(
        session.cluster.profile_manager.default, consistency_level=ConsistencyLevel.QUORUM)
    assert clone.consistency_level == ConsistencyLevel.QUORUM
    assert cluster.profile_manager.default.consistency_level == ConsistencyLevel.LOCAL_ONE
    cql_cluster.clear()
    query = "SELECT key FROM system.local"
    session.execute(query, execution_profile=clone)
    sent = [e for i in range(len(cql_cluster.node_info())) for e in cql_cluster.served(i)
            if e.get("query") == query]
    assert sent and all(e.get("consistency") in ("QUORUM", ConsistencyLevel.QUORUM)
                        for e in sent), sent
    with pytest.raises(AttributeError, match="no_such_setting"):
        session.execution_profile_clone_update(clone, no_such_setting=1)
    with pytest.raises(ValueError, match="Invalid execution_profile"):
        session.execution_profile_clone_update("no-such-profile")


def test_control_connection_host_and_host_lookup(cql_cluster, cluster):
    cluster.connect()
    host = cluster.get_control_connection_host()
    assert host is not None and host in cluster.metadata.all_hosts()
    assert cluster.metadata.get_host(host.endpoint) is host
    assert cluster.metadata.get_host(host.endpoint.address) is host
    assert cluster.metadata.get_host(host.endpoint.address, host.endpoint.port) is host
    assert cluster.metadata.get_host(host.endpoint.address, host.endpoint.port + 1) is None
    assert cluster.metadata.get_host("192.0.2.1") is None


def test_clear_callbacks_and_query_exhausted(cql_cluster, cluster):
    session = cluster.connect()
    cql_cluster.prime("SELECT v FROM extras_slow", rows=[[1]], columns=[("v", "int")],
                      delay=0.3)
    called = []
    future = session.execute_async("SELECT v FROM extras_slow")
    future.add_callbacks(called.append, called.append)
    future.clear_callbacks()
    assert future.result().one().v == 1
    assert called == []
    assert not future.has_more_pages
    with pytest.raises(QueryExhausted):
        future.start_fetching_next_page()


def test_value_sequence_renders_an_in_list(cluster):
    session = cluster.connect()
    session.execute("CREATE KEYSPACE IF NOT EXISTS extras WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS extras.t (k int PRIMARY KEY, v text)")
    for k in range(5):
        session.execute("INSERT INTO extras.t (k, v) VALUES (%s, %s)", (k, "v%d" % k))
    rows = session.execute(SimpleStatement("SELECT k FROM extras.t WHERE k IN %s"),
                           [ValueSequence([1, 3, 9])])
    assert sorted(r.k for r in rows) == [1, 3]


def test_batch_renders_simple_parameters_when_added(cluster):
    """As cassandra-driver: a SimpleStatement's parameters are rendered by add(), so a bad value
    raises there and a later change to a mutable parameter does not reach the batch."""
    from cqlreactor import BatchStatement
    session = cluster.connect()
    session.execute("CREATE KEYSPACE IF NOT EXISTS extras WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS extras.b (k int PRIMARY KEY, v list<int>)")
    values = [1, 2]
    batch = BatchStatement(session=session)
    batch.add(SimpleStatement("INSERT INTO extras.b (k, v) VALUES (%s, %s)"), (1, values))
    values.append(3)
    session.execute(batch)
    assert session.execute("SELECT v FROM extras.b WHERE k = 1").one().v == [1, 2]
    with pytest.raises(TypeError, match="no CQL literal"):
        batch.add(SimpleStatement("INSERT INTO extras.b (k, v) VALUES (%s, %s)"),
                  (2, object()))
