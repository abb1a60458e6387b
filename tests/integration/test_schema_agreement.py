"""Schema agreement after DDL (issue 11), on every reactor, against the shared 3-node simulated
cluster with a schema propagation delay.

The simulator applies a DDL at once on its coordinator and on the other nodes only after the
delay (``set_schema_delay``); a node that lags answers from its older schema.  So a client that
does not wait for agreement (``max_schema_agreement_wait=0``) sees its INSERT on another node
fail with InvalidRequest, and one that waits (the default) sees it pass.  Each test targets its
nodes with ``execute(host=...)``; ``cql_cluster``'s reset puts the delays back afterwards.
"""

import logging
import threading
import uuid

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import InvalidRequest

pytest.importorskip("cqlreactor.testing.engine")

KEYSPACE = "schema_agreement"


def _connect(sim, reactor, **kwargs):
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                      connect_timeout=10, **kwargs)
    session = cluster.connect()
    return cluster, session


def _hosts(cluster):
    by_address = dict((h.address, h) for h in cluster.metadata.all_hosts())
    return [by_address[a] for a in sorted(by_address)]


def _keyspace(session, host):
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}" % KEYSPACE, host=host)


def _table():
    return "%s.t_%s" % (KEYSPACE, uuid.uuid4().hex[:12])


def test_insert_on_another_node_needs_the_agreement_wait(cql_cluster, cql_reactor):
    cql_cluster.set_schema_delay(0)
    cluster, session = _connect(cql_cluster, cql_reactor, max_schema_agreement_wait=0)
    try:
        first, second, _third = _hosts(cluster)
        _keyspace(session, first)
        # "never": a node that has not got the change yet, however slow this machine is
        cql_cluster.set_schema_delay("never")
        table = _table()
        future = session.execute_async("CREATE TABLE %s (k int PRIMARY KEY, v int)" % table,
                                       host=first)
        future.result()
        assert future.is_schema_agreed      # nothing was checked: cassandra-driver says True
        with pytest.raises(InvalidRequest) as info:
            session.execute("INSERT INTO %s (k, v) VALUES (1, 1)" % table, host=second)
        assert "unconfigured table" in str(info.value)
        session.execute("INSERT INTO %s (k, v) VALUES (1, 1)" % table, host=first)
    finally:
        cluster.shutdown()


def test_the_agreement_wait_makes_the_insert_on_another_node_pass(cql_cluster, cql_reactor):
    cql_cluster.set_schema_delay(0)
    cluster, session = _connect(cql_cluster, cql_reactor)
    try:
        assert cluster.max_schema_agreement_wait == 10
        first, second, third = _hosts(cluster)
        _keyspace(session, first)
        cql_cluster.set_schema_delay(0.5)
        table = _table()
        future = session.execute_async("CREATE TABLE %s (k int PRIMARY KEY, v int)" % table,
                                       host=first)
        future.result()
        assert future.is_schema_agreed
        versions = cql_cluster.schema_versions()
        assert len(set(versions)) == 1, versions
        session.execute("INSERT INTO %s (k, v) VALUES (2, 2)" % table, host=second)
        rows = list(session.execute("SELECT v FROM %s WHERE k = 2" % table, host=third))
        assert [r.v for r in rows] == [2]
    finally:
        cluster.shutdown()


def test_a_partitioned_node_gives_a_warning_not_a_hang(cql_cluster, cql_reactor, caplog):
    cql_cluster.set_schema_delay(0)
    cluster, session = _connect(cql_cluster, cql_reactor, max_schema_agreement_wait=0.5)
    try:
        first, _second, third = _hosts(cluster)
        _keyspace(session, first)
        cql_cluster.set_schema_delay("never", node=third.address)
        with caplog.at_level(logging.WARNING, logger="cqlreactor.control"):
            future = session.execute_async("CREATE TABLE %s (k int PRIMARY KEY)" % _table(),
                                           host=first)
            future.result()
        assert future.is_schema_agreed is False
        assert any("schema disagreement" in r.getMessage() for r in caplog.records)
        versions = cql_cluster.schema_versions()
        assert versions[0] == versions[1] != versions[2]
        # the partition heals: the node catches up with what it missed
        cql_cluster.set_schema_delay(0)
        assert len(set(cql_cluster.schema_versions())) == 1
    finally:
        cluster.shutdown()


def test_the_agreement_wait_starts_no_thread(cql_cluster, cql_reactor):
    """The wait after a DDL runs from the reactor's loop callbacks and timers: no
    ``reactor.spawn`` (a thread or a greenlet), no new thread, on every reactor."""
    cql_cluster.set_schema_delay(0)
    cluster, session = _connect(cql_cluster, cql_reactor)
    try:
        first, second, _third = _hosts(cluster)
        _keyspace(session, first)
        session.execute("SELECT * FROM system.local", host=second)   # every pool is open
        spawned = []
        real_spawn = cluster.reactor.spawn

        def spawn(fn, *args):
            spawned.append(fn)
            return real_spawn(fn, *args)
        cluster.reactor.spawn = spawn      # an instance attribute: this cluster's reactor only
        before = set(threading.enumerate())
        cql_cluster.set_schema_delay(0.3)  # the wait polls (and pauses) several times
        table = _table()
        future = session.execute_async("CREATE TABLE %s (k int PRIMARY KEY, v int)" % table,
                                       host=first)
        future.result()
        new = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        assert future.is_schema_agreed
        assert not spawned, "the agreement wait spawned %r" % (spawned,)
        assert not new, "threads started by the agreement wait: %r" % (new,)
        assert table.split(".")[1] in cluster.metadata.keyspaces[KEYSPACE].tables
        session.execute("INSERT INTO %s (k, v) VALUES (1, 1)" % table, host=second)
    finally:
        cluster.shutdown()
