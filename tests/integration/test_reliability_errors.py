"""What a request's error says (issue 17), on every reactor, against the simulated cluster.

An error names its host once; a request still pending when its Session or Cluster shuts down
ends with ConnectionShutdown, as ``Session.shutdown`` promises (not NoHostAvailable from a retry
that found every pool closed).
"""

import pytest
from _cluster_helpers import wait_until

from cqlreactor import Cluster, SimpleStatement
from cqlreactor.core.errors import ConnectionException, ConnectionShutdown
from cqlreactor.policies import FallthroughRetryPolicy

pytest.importorskip("cqlreactor.testing.engine")


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


def test_a_lost_connection_error_names_its_host_once(cql_cluster, cql_reactor):
    sim = cql_cluster
    with _cluster(sim, cql_reactor, idle_heartbeat_interval=0.3) as cluster:
        session = cluster.connect()
        host = [h for h in cluster.metadata.all_hosts() if h.address == sim.contact_points[1]][0]
        assert wait_until(cluster, lambda: session.pools[host].open_count > 0)
        sim.stall(1, 3.0)      # the heartbeat goes unanswered: the connection is defunct
        # a retry policy that hands the connection's error over (the default one, as
        # cassandra-driver's, would try the next host and end in NoHostAvailable)
        with pytest.raises(ConnectionException) as caught:
            session.execute(SimpleStatement("INSERT INTO system.nothing (k) VALUES (1)",
                                            retry_policy=FallthroughRetryPolicy()),
                            host=host, timeout=10)
        text = str(caught.value)
        assert text.count("host=%s" % (host.endpoint,)) == 1, text


@pytest.mark.parametrize("what", ["session", "cluster"])
def test_requests_pending_at_shutdown_end_as_connection_shutdown(cql_cluster, cql_reactor,
                                                                 what):
    sim = cql_cluster
    cluster = _cluster(sim, cql_reactor, idle_heartbeat_interval=0)
    try:
        session = cluster.connect()
        for node in range(len(sim.contact_points)):
            sim.stall(node, 5.0)    # nothing answers: every request is pending at shutdown
        query = SimpleStatement("SELECT key FROM system.local")   # a read: retried if it could
        futures = [session.execute_async(query, timeout=20) for _ in range(20)]
        (session if what == "session" else cluster).shutdown()
        for future in futures:
            with pytest.raises(ConnectionShutdown):
                future.result(timeout=10)
    finally:
        cluster.shutdown()


def test_shutdown_while_a_reconnection_is_being_scheduled(cql_cluster, cql_reactor):
    """The cluster shuts down between the moment a lost host's reconnection is reserved and
    the moment its timer exists (a race CI hit on libev: shutdown met the reservation and
    raised AttributeError).  The pool's report is made here from the test thread, as the loop
    thread makes it, with a reconnection schedule that shuts the cluster down when asked for
    its first delay: that is exactly the window, every time."""
    from cqlreactor.policies import ReconnectionPolicy
    sim = cql_cluster
    asked = []

    class ShutDownWhenAsked(ReconnectionPolicy):
        def new_schedule(self):
            asked.append(True)
            cluster.shutdown()      # must not raise, and must leave nothing scheduled
            yield 0.01

    cluster = _cluster(sim, cql_reactor, reconnection_policy=ShutDownWhenAsked())
    try:
        cluster.connect()
        host = [h for h in cluster.metadata.all_hosts()
                if h.address == sim.contact_points[1]][0]
        cluster.on_host_unreachable(host, ConnectionException("lost", host=host.endpoint))
        assert asked and cluster.is_shutdown and not cluster._reconnectors
    finally:
        cluster.shutdown()
