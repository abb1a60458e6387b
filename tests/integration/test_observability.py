"""Observability: Session.add_request_init_listener (cassandra-driver's hook, with
cassandra-driver as the oracle), the OpenTelemetry instrumentation built on it, and
Cluster(metrics_enabled=True).metrics.  All against the simulated cluster over real sockets."""

import time

import pytest
from _cluster_helpers import poll

from cqlreactor import Cluster, SimpleStatement
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import InvalidRequest, Unavailable

KS = "obs_ks"


def _schema(session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                    "'SimpleStrategy', 'replication_factor': 1}" % KS)
    session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY, v text)" % KS)


def _listener_trace(session, module_name, simple_statement):
    """Run one fixed sequence of calls; return what the listener saw, in order."""
    seen = []

    def listener(future, tag, flag=None):
        # called before the request is sent: no answer, no coordinator yet
        seen.append((tag, flag, type(future).__module__.split(".")[0] == module_name,
                     future.coordinator_host is None, future.query.query_string
                     if hasattr(future.query, "query_string") else
                     future.query.prepared_statement.query_string))

    session.add_request_init_listener(listener, "a", flag=1)
    session.add_request_init_listener(listener, "b")
    session.execute("SELECT k FROM %s.t WHERE k = 1" % KS)
    prepared = session.prepare("SELECT v FROM %s.t WHERE k = ?" % KS)     # not a request
    session.execute_async(prepared, (1,)).result()
    session.remove_request_init_listener(listener, "b")
    session.execute(simple_statement("SELECT v FROM %s.t WHERE k = 2" % KS))
    with pytest.raises(ValueError):
        session.remove_request_init_listener(listener, "b")
    with pytest.raises(ValueError):
        session.remove_request_init_listener(listener, "a")       # kwargs are part of it
    session.remove_request_init_listener(listener, "a", flag=1)
    session.execute("SELECT k FROM %s.t WHERE k = 3" % KS)
    return seen


@pytest.mark.oracle
def test_request_init_listener_as_cassandra_driver(cql_cluster):
    # the hook is the session's, not the reactor's: the default reactor only
    cassandra_cluster = pytest.importorskip("cassandra.cluster")
    cassandra_query = pytest.importorskip("cassandra.query")
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port) as cluster:
        session = cluster.connect()
        _schema(session)
        ours = _listener_trace(session, "cqlreactor", SimpleStatement)
    theirs_cluster = cassandra_cluster.Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    try:
        theirs = _listener_trace(theirs_cluster.connect(), "cassandra",
                                 cassandra_query.SimpleStatement)
    finally:
        theirs_cluster.shutdown()
    assert ours == theirs
    assert [s[0] for s in ours] == ["a", "b", "a", "b", "a"]
    assert all(s[2] and s[3] for s in ours)


# --- OpenTelemetry ------------------------------------------------------------------------

@pytest.fixture
def spans():
    pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed here "
                                                    "(the test extra installs it)")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_otel_spans_end_with_the_answer_and_carry_the_request(cql_cluster, cql_reactor, spans):
    from cqlreactor.contrib.otel import CassandraInstrumentor
    from opentelemetry.trace import StatusCode
    provider, exporter = spans
    slow = "SELECT v FROM %s.slow" % KS
    cql_cluster.prime(slow, rows=[{"v": "x"}], columns=[("v", "text")], delay=0.5)
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                 connection_class=cql_reactor) as cluster:
        session = cluster.connect()
        _schema(session)
        session.set_keyspace(KS)
        instrumentor = CassandraInstrumentor(tracer_provider=provider)
        instrumentor.instrument(session)
        instrumentor.instrument(session)                  # idempotent: one span per request
        session.execute(SimpleStatement("INSERT INTO t (k, v) VALUES (1, 'secret-value')",
                                        consistency_level=ConsistencyLevel.QUORUM))
        assert poll(lambda: len(exporter.get_finished_spans()) == 1, timeout=20.0)
        span = exporter.get_finished_spans()[0]
        attrs = dict(span.attributes)
        assert span.name == "INSERT %s" % KS
        assert attrs["db.system"] == "cassandra"
        assert attrs["db.namespace"] == KS
        assert attrs["db.cassandra.consistency_level"] == "QUORUM"
        hosts = dict((str(h.host_id), h) for h in cluster.metadata.all_hosts())
        assert attrs["db.cassandra.coordinator.id"] in hosts
        assert attrs["server.address"] == \
            hosts[attrs["db.cassandra.coordinator.id"]].address
        assert "db.query.text" not in attrs                 # the statement is opt-in
        assert "secret-value" not in repr(attrs)

        # the span ends when the answer arrives, not when the request is sent
        exporter.clear()
        future = session.execute_async(slow)
        time.sleep(0.1)
        assert exporter.get_finished_spans() == ()
        future.result()
        assert poll(lambda: len(exporter.get_finished_spans()) == 1, timeout=20.0)
        span = exporter.get_finished_spans()[0]
        assert (span.end_time - span.start_time) / 1e9 >= 0.45

        # an error: recorded, status ERROR
        exporter.clear()
        with pytest.raises(InvalidRequest):
            session.execute("SELECT * FROM no_such_table")
        assert poll(lambda: len(exporter.get_finished_spans()) == 1, timeout=20.0)
        span = exporter.get_finished_spans()[0]
        assert span.status.status_code == StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]

        # opt-in statement text; uninstrument stops the spans
        instrumentor.uninstrument(session)
        exporter.clear()
        with_text = CassandraInstrumentor(tracer_provider=provider, capture_statement=True)
        with_text.instrument(session)
        session.execute("SELECT v FROM t WHERE k = 1")
        with_text.uninstrument(session)
        session.execute("SELECT v FROM t WHERE k = 1")
        assert poll(lambda: len(exporter.get_finished_spans()) >= 1, timeout=20.0)
        time.sleep(0.1)
        finished = exporter.get_finished_spans()
        assert len(finished) == 1
        assert finished[0].attributes["db.query.text"] == "SELECT v FROM t WHERE k = 1"


# --- metrics --------------------------------------------------------------------------------

# cassandra-driver's Metrics attributes (cassandra/metrics.py), which get_stats() also names
DRIVER_METRICS = ("request_timer", "connection_errors", "write_timeouts", "read_timeouts",
                  "unavailables", "other_errors", "retries", "ignores", "known_hosts",
                  "connected_to", "open_connections")
TIMER_KEYS = ("count", "min", "max", "mean", "stddev", "median", "75percentile",
              "95percentile", "98percentile", "99percentile", "999percentile")


def test_metrics_snapshot(cql_cluster, cql_reactor):
    unavailable = "SELECT v FROM %s.unavailable" % KS
    cql_cluster.prime(unavailable, error={"code": "unavailable", "message": "no",
                                          "consistency": "ONE", "required": 2, "alive": 1})
    assert Cluster(cql_cluster.contact_points, port=cql_cluster.port).metrics is None
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                 connection_class=cql_reactor, metrics_enabled=True) as cluster:
        session = cluster.connect()
        _schema(session)
        futures = [session.execute_async("SELECT v FROM %s.t WHERE k = %d" % (KS, i))
                   for i in range(20)]
        for f in futures:
            f.result()
        with pytest.raises(Unavailable):    # the default policy: the next host once, then raise
            session.execute(unavailable)
        with pytest.raises(InvalidRequest):
            session.execute("SELECT * FROM %s.no_such_table" % KS)
        metrics = cluster.metrics
        assert poll(lambda: metrics.in_flight == 0, timeout=20.0)
        snap = metrics.snapshot()
        assert snap["requests"] == 2 + 20 + 2
        assert snap["retries"] == 1 and snap["ignores"] == 0
        assert snap["errors"]["by_kind"] == {"Unavailable": 2, "InvalidRequest": 1}
        assert snap["errors"]["total"] == 3
        assert snap["errors"]["unavailables"] == 2 and snap["errors"]["other_errors"] == 1
        assert snap["in_flight"] == 0
        hosts = set(str(h) for h in cluster.metadata.all_hosts())
        assert snap["per_host"] and set(snap["per_host"]) <= hosts
        assert sum(h["count"] for h in snap["per_host"].values()) == snap["requests"]
        for timer in [snap["latency"]] + list(snap["per_host"].values()):
            assert set(timer) == set(TIMER_KEYS)
            assert 0 < timer["min"] <= timer["median"] <= timer["99percentile"] <= timer["max"]
        stats = metrics.get_stats()
        assert set(stats) == set(DRIVER_METRICS)
        assert all(hasattr(metrics, name) for name in DRIVER_METRICS)
        assert stats["request_timer"]["count"] == snap["requests"]
        assert stats["known_hosts"] == len(hosts)
        assert stats["connected_to"] == len(hosts) and stats["open_connections"] >= len(hosts)
        metrics.set_stats_name("orders-cluster")
        assert metrics.stats_name == "orders-cluster"
