"""Server errors as cassandra-driver users catch them (issue 10): the top-level classes, their
hierarchy and their attributes, on errors the simulated cluster's real server process sends.
Errors are decoded in the core, the same for every reactor, so these run on the default one."""

import pytest
from _cluster_helpers import cluster_for

import cqlreactor
from cqlreactor import ConsistencyLevel, WriteType
from cqlreactor.policies import FallthroughRetryPolicy


@pytest.fixture
def session(cql_cluster):
    # no retries: the error the server sent is the one raised
    with cluster_for(cql_cluster, None, default_retry_policy=FallthroughRetryPolicy()) as cluster:
        yield cluster.connect()


def _raised(cql_cluster, session, error):
    query = "SELECT v FROM dropin_errors_%s" % (error["code"],)
    cql_cluster.prime(query, error=error)
    with pytest.raises(cqlreactor.DriverException) as info:
        session.execute(query)
    return info.value


def test_timeouts_unavailable_and_failures_carry_their_fields(cql_cluster, session):
    exc = _raised(cql_cluster, session, {"code": "unavailable", "consistency": "QUORUM",
                                         "required": 2, "alive": 1})
    assert isinstance(exc, cqlreactor.Unavailable)
    assert (exc.consistency, exc.required_replicas, exc.alive_replicas) == (
        ConsistencyLevel.QUORUM, 2, 1)
    assert not isinstance(exc, (cqlreactor.Timeout, cqlreactor.CoordinationFailure))

    exc = _raised(cql_cluster, session, {"code": "read_timeout", "consistency": "ONE",
                                         "received": 0, "block_for": 1, "data_present": False})
    assert isinstance(exc, cqlreactor.ReadTimeout) and isinstance(exc, cqlreactor.Timeout)
    assert not isinstance(exc, cqlreactor.CoordinationFailure)   # as in cassandra-driver
    assert (exc.consistency, exc.received_responses, exc.required_responses,
            exc.data_retrieved) == (ConsistencyLevel.ONE, 0, 1, False)

    exc = _raised(cql_cluster, session, {"code": "write_timeout", "consistency": "TWO",
                                         "received": 1, "block_for": 2,
                                         "write_type": "BATCH_LOG"})
    assert isinstance(exc, cqlreactor.WriteTimeout) and isinstance(exc, cqlreactor.Timeout)
    assert exc.write_type == WriteType.BATCH_LOG
    assert (exc.received_responses, exc.required_responses) == (1, 2)

    exc = _raised(cql_cluster, session, {"code": "write_failure", "consistency": "ONE",
                                         "received": 0, "block_for": 1, "write_type": "SIMPLE"})
    assert isinstance(exc, cqlreactor.WriteFailure)
    assert isinstance(exc, cqlreactor.CoordinationFailure)
    assert exc.write_type == WriteType.SIMPLE and exc.failures is not None
    # every one is also a RequestExecutionException and names the coordinator
    assert isinstance(exc, cqlreactor.RequestExecutionException) and exc.host


def test_validation_errors_are_not_execution_errors(cql_cluster, session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS dropin_errors WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS dropin_errors.t (k int PRIMARY KEY)")
    with pytest.raises(cqlreactor.AlreadyExists) as info:
        session.execute("CREATE TABLE dropin_errors.t (k int PRIMARY KEY)")
    assert (info.value.keyspace, info.value.table) == ("dropin_errors", "t")
    assert isinstance(info.value, cqlreactor.ConfigurationException)
    assert isinstance(info.value, cqlreactor.RequestValidationException)
    assert not isinstance(info.value, cqlreactor.RequestExecutionException)
    with pytest.raises(cqlreactor.AlreadyExists) as info:
        session.execute("CREATE KEYSPACE dropin_errors WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert info.value.keyspace == "dropin_errors" and not info.value.table
    with pytest.raises(cqlreactor.InvalidRequest) as info:
        session.execute("SELECT k FROM dropin_errors.no_such_table")
    assert not isinstance(info.value, cqlreactor.RequestExecutionException)
    # our addition: one base for every error the server returned
    assert isinstance(info.value, cqlreactor.ServerException)
