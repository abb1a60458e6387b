"""Our Cluster/Session follow topology changes (issue 5), on every reactor available here.

A 3-node simulated cluster (real server process, real sockets) grows with ``add_node()``
(TOPOLOGY_CHANGE NEW_NODE) and shrinks with ``remove_node(i)`` (REMOVED_NODE).  The client
must refresh through its control connection, add or drop the host (metadata, load-balancing
plans, pools) and keep token-aware routing right: every check of "which node served it" comes
from the simulator's own log (``served``), every expected owner from the simulator's own ring
(``node_info`` tokens), not from the client's metadata.  Each test has its own cluster, since
topology changes are not undone between tests.
"""

import logging

import pytest
from _cluster_helpers import wait_until

from cqlreactor import Cluster, EXEC_PROFILE_DEFAULT, SimpleStatement
from cqlreactor.core import types as T
from cqlreactor.core.murmur3 import murmur3_token
from cqlreactor.policies import ConstantReconnectionPolicy
from cqlreactor.testing.cluster import SimulatedCluster

pytest.importorskip("cqlreactor.testing.engine")


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


def _addresses(cluster):
    return sorted(h.address for h in cluster.metadata.all_hosts())


def _host(cluster, address):
    hosts = [h for h in cluster.metadata.all_hosts() if h.address == address]
    return hosts[0] if hosts else None


def _pool_hosts(session):
    return sorted(p.host.address for p in session.get_pools() if not p.is_shutdown)


def _plan_hosts(cluster):
    policy = cluster.profiles[EXEC_PROFILE_DEFAULT].load_balancing_policy
    return sorted(h.address for h in policy.make_query_plan(None, None))


def _sim_owner(sim, key_bytes):
    """The address of the node owning ``key_bytes`` in the simulator's ring (RF=1)."""
    ring = sorted((int(t), n["address"]) for n in sim.node_info() if not n["removed"]
                  for t in n["tokens"])
    token = murmur3_token(key_bytes)
    return next((a for t, a in ring if t >= token), ring[0][1])


def _check_routing(sim, session, insert, keys):
    """Execute the prepared insert for ``keys``; each must reach its key's only replica."""
    info = sim.node_info()
    live = [n for n in info if not n["removed"]]
    for n in live:
        sim.served(n["index"], clear=True)
    for k in keys:
        session.execute(insert, (k, k))
    served_by = {}
    for n in live:
        for entry in sim.served(n["index"]):
            if entry.get("opcode") == "EXECUTE":
                served_by[int(entry["values"][0], 16)] = n["address"]
    assert sorted(served_by) == sorted(keys)
    wrong = [(k, served_by[k], _sim_owner(sim, T.INT.serialize(k))) for k in keys
             if served_by[k] != _sim_owner(sim, T.INT.serialize(k))]
    assert not wrong, "served by a non-replica (key, served, owner): %r" % (wrong[:5],)
    return served_by


def _rf1_table(session, cluster):
    session.execute("CREATE KEYSPACE topo WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE topo.t (k int PRIMARY KEY, v int)")
    assert wait_until(cluster, lambda: "topo" in cluster.metadata.keyspaces)
    return session.prepare("INSERT INTO topo.t (k, v) VALUES (?, ?)")


def test_added_node_gets_a_host_a_pool_queries_and_its_token_range(reactor):
    with SimulatedCluster(nodes=3) as sim, _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        insert = _rf1_table(session, cluster)
        _check_routing(sim, session, insert, range(40))

        index = sim.add_node()
        new_address = sim.node_info()[index]["address"]
        assert wait_until(cluster, lambda: new_address in _addresses(cluster)), _addresses(cluster)
        assert len(_addresses(cluster)) == 4
        host = _host(cluster, new_address)
        assert str(host.host_id) == sim.node_info()[index]["host_id"]
        assert host.tokens == sorted(int(t) for t in sim.node_info()[index]["tokens"])
        assert host.is_up
        assert new_address in _plan_hosts(cluster)
        assert wait_until(cluster, lambda: new_address in _pool_hosts(session))
        assert wait_until(cluster, lambda: sim.connection_count(index) > 0)

        # plain queries reach it through the load-balancing plans
        sim.served(index, clear=True)
        for _ in range(40):
            assert session.execute("SELECT key FROM system.local").one().key == "local"
        assert any(e["opcode"] == "QUERY" for e in sim.served(index))

        # the token map follows: the new node's keys go to it, the others still to theirs
        # (its first EXECUTE meets UNPREPARED on the new node and is re-prepared there)
        served_by = _check_routing(sim, session, insert, range(100))
        assert new_address in served_by.values()
        assert len(set(served_by.values())) == 4


def test_removed_node_is_dropped_pool_closed_and_queries_never_fail(reactor, caplog):
    caplog.set_level(logging.DEBUG, logger="cqlreactor.cluster")
    # a fast constant schedule: a reconnector left running would try every 0.1 s
    policy = ConstantReconnectionPolicy(0.1, max_attempts=None)
    with SimulatedCluster(nodes=3) as sim, \
            _cluster(sim, reactor, reconnection_policy=policy) as cluster:
        session = cluster.connect()
        insert = _rf1_table(session, cluster)
        control = cluster.control_connection.connection.endpoint.address
        victim = next(i for i, a in enumerate(sim.contact_points) if a != control)
        address = sim.contact_points[victim]
        assert wait_until(cluster, lambda: address in _pool_hosts(session))
        pool = [p for p in session.get_pools() if p.host.address == address][0]
        read = SimpleStatement("SELECT key FROM system.local")

        # reads in flight while the node leaves: none may fail
        futures = [session.execute_async(read) for _ in range(200)]
        sim.remove_node(victim)
        futures += [session.execute_async(read) for _ in range(200)]
        assert [f.result(timeout=10).one().key for f in futures] == ["local"] * 400

        assert wait_until(cluster, lambda: address not in _addresses(cluster)), _addresses(cluster)
        assert len(_addresses(cluster)) == 2
        assert address not in _plan_hosts(cluster)
        assert wait_until(cluster, lambda: address not in _pool_hosts(session))
        assert pool.is_shutdown and not pool.get_connections()
        for _ in range(30):
            assert session.execute(read).one().key == "local"
        served_by = _check_routing(sim, session, insert, range(60))
        assert address not in served_by.values()
        # no reconnection attempts to the decommissioned address linger (the pool lost its
        # connection before REMOVED_NODE arrived, so a reconnector had started)
        cluster.reactor.make_event().wait(0.3)
        caplog.clear()
        cluster.reactor.make_event().wait(1.0)
        late = [r.getMessage() for r in caplog.records if address in r.getMessage()]
        assert not late, late[:3]


def test_removing_the_control_connection_host_moves_it(reactor):
    with SimulatedCluster(nodes=3) as sim, _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        first = cluster.control_connection.connection.endpoint.address
        sim.remove_node(sim.contact_points.index(first))
        assert wait_until(cluster, lambda: cluster.control_connection.connection is not None and
                     cluster.control_connection.connection.endpoint.address != first)
        # the new control connection reads a peers list without the node: the host goes
        assert wait_until(cluster, lambda: first not in _addresses(cluster)), _addresses(cluster)
        assert wait_until(cluster, lambda: first not in _pool_hosts(session))
        # ...and still follows the cluster: a node added now is seen through it
        index = sim.add_node()
        new_address = sim.node_info()[index]["address"]
        assert wait_until(cluster, lambda: new_address in _pool_hosts(session))
        assert sorted(_addresses(cluster)) == sorted(
            n["address"] for n in sim.node_info() if not n["removed"])
        for _ in range(20):
            assert session.execute("SELECT key FROM system.local").one().key == "local"
