"""A node that restarted forgot its prepared statements: the driver re-prepares there and the
caller never notices (issue 17), on protocol v4 and v5 and on every reactor.

On v5 an EXECUTE goes with ``skip_metadata`` and the statement's result_metadata_id, so the
Rows answer carries no column metadata: the EXECUTE sent again after the re-PREPARE must still
be decoded with the statement's metadata.
"""

import pytest
from _cluster_helpers import wait_until

from cqlreactor import Cluster
from cqlreactor.policies import ConstantReconnectionPolicy

pytest.importorskip("cqlreactor.testing.engine")


def _cluster(sim, reactor, version):
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                   protocol_version=version, connect_timeout=5,
                   reconnection_policy=ConstantReconnectionPolicy(0.2, max_attempts=None))


def _keyspace(session, name, table):
    session.execute("CREATE KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}" % name)
    session.execute("CREATE TABLE %s.%s" % (name, table))


def _not_the_control_node(sim, cluster):
    control = cluster.control_connection.connection.endpoint.address
    return [i for i, a in enumerate(sim.contact_points) if a != control][0]


def _restarted(sim, cluster, session, node):
    """Stop and start ``node``; returns its Host once its pool is open again."""
    address = sim.contact_points[node]
    host = [h for h in cluster.metadata.all_hosts() if h.address == address][0]
    sim.stop_node(node)
    assert wait_until(cluster, lambda: not host.is_up, timeout=15)
    sim.start_node(node)
    assert wait_until(cluster, lambda: host.is_up and session.pools.get(host) is not None
                      and session.pools[host].open_count > 0, timeout=20)
    return host


@pytest.mark.parametrize("version", [4, 5])
def test_first_execute_after_a_restart_is_reprepared_invisibly(cql_cluster_factory,
                                                               cql_reactor, version):
    sim = cql_cluster_factory(nodes=3)
    with _cluster(sim, cql_reactor, version) as cluster:
        session = cluster.connect()
        _keyspace(session, "rp", "t (k int PRIMARY KEY, v text)")
        session.execute("INSERT INTO rp.t (k, v) VALUES (1, 'one')")
        select = session.prepare("SELECT k, v FROM rp.t WHERE k = ?")
        node = _not_the_control_node(sim, cluster)
        host = _restarted(sim, cluster, session, node)
        sim.served(node, clear=True)

        rows = list(session.execute(select, (1,), host=host))

        assert [(r.k, r.v) for r in rows] == [(1, "one")]
        opcodes = [e["opcode"] for e in sim.served(node)]
        assert "PREPARE" in opcodes, opcodes         # it was re-prepared there ...
        assert opcodes.count("EXECUTE") == 2, opcodes  # ... and the EXECUTE sent again
        # and the statement keeps working there
        assert [(r.k, r.v) for r in session.execute(select, (1,), host=host)] == [(1, "one")]


def test_reprepare_in_the_statements_keyspace_after_a_restart(cql_cluster_factory,
                                                              cql_reactor):
    """A statement prepared in the session's keyspace (unqualified table name) on v5."""
    sim = cql_cluster_factory(nodes=3)
    with _cluster(sim, cql_reactor, 5) as cluster:
        session = cluster.connect()
        _keyspace(session, "rpk", "t (k int PRIMARY KEY, v int)")
        session.set_keyspace("rpk")
        session.execute("INSERT INTO t (k, v) VALUES (7, 49)")
        select = session.prepare("SELECT v FROM t WHERE k = ?")
        node = _not_the_control_node(sim, cluster)
        host = _restarted(sim, cluster, session, node)

        assert session.execute(select, (7,), host=host).one().v == 49
