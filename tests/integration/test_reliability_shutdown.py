"""``Cluster.shutdown()`` closes everything it opened (issue 17), on every reactor, even while
the control connection is moving to another host: the simulated cluster's own count of open
client connections goes back to 0."""

import time

import pytest
from _cluster_helpers import wait_until

from cqlreactor import Cluster
from cqlreactor.policies import ConstantReconnectionPolicy

pytest.importorskip("cqlreactor.testing.engine")


def _no_connections_left(sim, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(sim.connection_count()) == 0:
            return True
        time.sleep(0.1)     # the cluster (and its reactor) is gone: a plain sleep is right
    return False


def test_shutdown_while_the_control_connection_fails_over(cql_cluster_factory, cql_reactor):
    sim = cql_cluster_factory(nodes=3)
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=cql_reactor,
                      connect_timeout=5, control_connection_timeout=5,
                      reconnection_policy=ConstantReconnectionPolicy(0.1, max_attempts=None))
    try:
        cluster.connect()
        first = cluster.control_connection.connection
        control = sim.contact_points.index(first.endpoint.address)
        accepted = dict((n["index"], n["accepted"]) for n in sim.node_info())
        others = [i for i in range(3) if i != control]
        for node in others:       # the new control connection's handshake hangs meanwhile
            sim.stall(node, 3.0)
        sim.stop_node(control)
        # the failover has opened a connection to another node and waits for its handshake
        assert wait_until(cluster, lambda: any(
            n["accepted"] > accepted[n["index"]] for n in sim.node_info()
            if n["index"] in others), timeout=10)
    finally:
        cluster.shutdown()
    assert _no_connections_left(sim), sim.connection_count()
    assert cluster.control_connection.connection is None
