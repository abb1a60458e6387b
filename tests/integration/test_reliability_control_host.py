"""The node the control connection was on goes away and comes back: the driver uses it again
(issue 17), on every reactor.

system.local (the control host's own row) and system.peers (every other node's) describe the
same node differently; after the control connection moved, the node must still be the one Host
it was, so its DOWN, its reconnection and its UP apply to the pool the sessions hold.  Which node
served a request comes from the simulator's own log (``served``).
"""

import pytest
from _cluster_helpers import wait_until

from cqlreactor import Cluster, SimpleStatement
from cqlreactor.policies import ConstantReconnectionPolicy

pytest.importorskip("cqlreactor.testing.engine")


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                   reconnection_policy=ConstantReconnectionPolicy(0.2, max_attempts=None),
                   **kwargs)


def _serves_everywhere(sim, cluster, session, timeout=30):
    """True once a round of requests reaches every node (each round clears the logs)."""
    nodes = range(len(sim.contact_points))
    query = SimpleStatement("SELECT key FROM system.local")

    def every_node_served():
        for node in nodes:
            sim.served(node, clear=True)
        for _ in range(30):
            try:
                session.execute(query)
            except Exception:     # a node still coming back: the next round tells
                pass
        return all(any(e.get("opcode") == "QUERY" for e in sim.served(node))
                   for node in nodes)
    return wait_until(cluster, every_node_served, timeout=timeout)


def _control_node(sim, cluster):
    return sim.contact_points.index(cluster.control_connection.connection.endpoint.address)


def _failed_over(cluster, first):
    def moved():
        conn = cluster.control_connection.connection
        return conn is not None and conn.endpoint.address != first
    return moved


def test_the_control_host_is_used_again_after_a_restart(cql_cluster_factory, cql_reactor):
    sim = cql_cluster_factory(nodes=3)
    with _cluster(sim, cql_reactor) as cluster:
        session = cluster.connect()
        assert _serves_everywhere(sim, cluster, session)
        node = _control_node(sim, cluster)
        sim.stop_node(node)
        assert wait_until(cluster, _failed_over(cluster, sim.contact_points[node]), timeout=20)
        sim.start_node(node)

        assert _serves_everywhere(sim, cluster, session)
        # one Host per node, whichever row (system.local or system.peers) described it last
        addresses = sorted(h.address for h in cluster.metadata.all_hosts())
        assert addresses == sorted(sim.contact_points)
        ids = [h.host_id for h in cluster.metadata.all_hosts()]
        assert len(set(ids)) == 3 and None not in ids


def test_the_control_host_is_used_again_after_a_stall(cql_cluster_factory, cql_reactor):
    sim = cql_cluster_factory(nodes=3)
    # slowed past every timeout: requests, heartbeats, and the connections opened meanwhile
    with _cluster(sim, cql_reactor, control_connection_timeout=1.0, connect_timeout=1.0,
                  idle_heartbeat_interval=0.5) as cluster:
        session = cluster.connect()
        session.default_timeout = 1.0
        assert _serves_everywhere(sim, cluster, session)
        node = _control_node(sim, cluster)
        stalled = cluster.control_connection.connection
        sim.stall(node, 6.0)
        cluster.control_connection.refresh_in_background("topology")   # times out
        # its unanswered heartbeat ends the control connection; the new one may be on any
        # node, the stalled one included once it answers again
        assert wait_until(cluster, lambda: cluster.control_connection.connection not in
                          (None, stalled), timeout=20)

        assert _serves_everywhere(sim, cluster, session)
        assert sorted(h.address for h in cluster.metadata.all_hosts()) == \
            sorted(sim.contact_points)
