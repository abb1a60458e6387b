"""Query tracing (issue 11) on every reactor against the simulated cluster.

``trace=True`` sets the frame's tracing flag (the simulator's log shows it); the answer names
the trace, the simulator writes system_traces a moment later (the session row first without
its duration), and ``get_query_trace()`` polls for it as cassandra-driver does, with the
reactor's own pauses.  A trace that never shows ends in TraceUnavailable after ``max_wait``.
"""

import datetime
import uuid

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import TraceUnavailable
from cqlreactor.statements import SimpleStatement

pytest.importorskip("cqlreactor.testing.engine")

KEYSPACE = "tracing_ks"


@pytest.fixture
def traced(cql_cluster, cql_reactor):
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                      connection_class=cql_reactor, connect_timeout=10)
    session = cluster.connect()
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KEYSPACE)
    table = "%s.t_%s" % (KEYSPACE, uuid.uuid4().hex[:10])
    session.execute("CREATE TABLE %s (k int, c int, v text, PRIMARY KEY (k, c))" % table)
    yield cql_cluster, session, table
    cluster.shutdown()


def _served_traced(sim, text):
    out = []
    for node in range(len(sim.node_info())):
        out.extend(e for e in sim.served(node) if e.get("query") == text)
    return out


def test_a_traced_request_reads_back_its_trace(traced):
    sim, session, table = traced
    insert = "INSERT INTO %s (k, c, v) VALUES (1, 1, 'a')" % table
    future = session.execute_async(insert, trace=True)
    future.result()
    [served] = _served_traced(sim, insert)
    assert served.get("tracing") is True
    trace = future.get_query_trace(max_wait=10)
    assert trace.trace_id == future.get_query_trace_ids()[0]
    assert trace.request_type == "Execute CQL3 query"
    assert str(trace.coordinator) == future.coordinator_host.address
    assert trace.parameters["query"] == insert
    assert isinstance(trace.duration, datetime.timedelta) and trace.duration.total_seconds() > 0
    assert isinstance(trace.started_at, datetime.datetime)
    assert len(trace.events) >= 3
    assert trace.events[-1].description == "Request complete"
    assert all(str(e.source) == str(trace.coordinator) and e.thread_name for e in trace.events)
    elapsed = [e.source_elapsed for e in trace.events]
    assert elapsed == sorted(elapsed)
    rs = session.execute("SELECT * FROM %s WHERE k = 1" % table, trace=True)
    assert rs.get_query_trace(max_wait_sec=10).parameters["query"].startswith("SELECT")


def test_untraced_unfinished_and_unavailable_traces(traced):
    sim, session, table = traced
    future = session.execute_async("SELECT * FROM %s WHERE k = 2" % table)
    future.result()
    assert future.get_query_trace() is None and future.get_all_query_traces() == []
    slow = "SELECT * FROM %s WHERE k = 3" % table
    sim.prime(slow, delay=0.5)
    pending = session.execute_async(slow, trace=True)
    with pytest.raises(TraceUnavailable):
        pending.get_query_trace()          # not done yet
    pending.result()
    sim.prime(r"SELECT \* FROM system_traces\.sessions WHERE .*", rows=[], regex=True)
    with pytest.raises(TraceUnavailable) as info:
        pending.get_query_trace(max_wait=0.3)
    assert "0.3" in str(info.value)


def test_every_page_has_its_trace(traced):
    _sim, session, table = traced
    for c in range(3):
        session.execute("INSERT INTO %s (k, c, v) VALUES (5, %d, 'x')" % (table, c))
    statement = SimpleStatement("SELECT * FROM %s WHERE k = 5" % table, fetch_size=1)
    rs = session.execute(statement, trace=True)
    assert len(list(rs)) == 3
    traces = rs.get_all_query_traces(max_wait_sec_per=10)
    assert len(traces) >= 3 and len(set(t.trace_id for t in traces)) == len(traces)
    assert all(t.events for t in traces)


def test_server_warnings_are_surfaced_and_logged_like_cassandra_drivers(cql_cluster, caplog):
    """A batch over Cassandra's 5 KiB warning threshold: the answer carries the warning;
    both drivers put it in ``future.warnings`` and log it as "Server warning: ..."."""
    import logging
    from cqlreactor.core.errors import DriverException
    theirs_cluster = pytest.importorskip("cassandra.cluster")
    cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    theirs = theirs_cluster.Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    try:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KEYSPACE)
        table = "%s.w_%s" % (KEYSPACE, uuid.uuid4().hex[:10])
        session.execute("CREATE TABLE %s (k int PRIMARY KEY, v text)" % table)
        big = "BEGIN UNLOGGED BATCH %s APPLY BATCH" % " ".join(
            "INSERT INTO %s (k, v) VALUES (%d, '%s');" % (table, i, "x" * 600)
            for i in range(10))
        small = "INSERT INTO %s (k, v) VALUES (100, 'y')" % table
        # a request still pending has no warnings to read yet (its answer is held back by the
        # server, so the check cannot race the answer)
        cql_cluster.prime("SELECT v FROM warnings_pending", rows=[[1]], columns=[("v", "int")],
                          delay=3)
        pending = session.execute_async("SELECT v FROM warnings_pending")
        with pytest.raises(DriverException):
            pending.warnings
        with caplog.at_level(logging.WARNING):
            future = session.execute_async(big)
            future.result()
            ours = future.warnings
            assert ours and "exceeding specified threshold of 5.00KiB" in ours[0]
            assert table in ours[0]
            their_future = theirs.connect().execute_async(big)
            their_future.result()
            assert their_future.warnings == ours
        logged = [r.getMessage() for r in caplog.records if r.name.startswith("cqlreactor")]
        assert "Server warning: %s" % ours[0] in logged
        quiet = session.execute_async(small)
        quiet.result()
        assert quiet.warnings is None
        pending.result()
        assert pending.warnings is None
    finally:
        theirs.shutdown()
        cluster.shutdown()
