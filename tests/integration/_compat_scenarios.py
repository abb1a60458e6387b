"""What cassandra-driver's Cluster must do on each of cqlreactor's connection classes
(tests/integration/test_compat_driver.py); also imported by its child scripts (the
monkey-patched cases), so it uses plain ``time.sleep`` (green once patched)."""

import os
import time
import uuid

from cassandra import OperationTimedOut
from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, SimpleStatement

os.environ.setdefault("CQLENG_ALLOW_SCHEMA_MANAGEMENT", "1")


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    assert predicate(), "timed out after %gs waiting for %s" % (timeout, what)


def pool_connections(pool):
    """The connections of a cassandra-driver HostConnection pool (3.25 holds one in
    ``_connection``; later versions a dict per shard in ``_connections``)."""
    conns = getattr(pool, "_connections", None)
    if conns is not None:
        return list(conns.values())
    return [pool._connection] if pool._connection is not None else []


def connect(sim, connection_class, **options):
    options.setdefault("connect_timeout", 10)
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=connection_class,
                      **options)
    return cluster, cluster.connect()


def crud_paging_batch_metadata(cluster, session, ks):
    """Schema through the driver, prepared statements, paging, a batch, schema metadata."""
    session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                    "'replication_factor': 3}" % ks)
    session.execute("CREATE TABLE %s.t (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    insert = session.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % ks)
    for c in range(25):
        session.execute(insert, (1, c, "v%d" % c))
    batch = BatchStatement()
    for c in range(25, 30):
        batch.add(insert, (1, c, "b%d" % c))
    session.execute(batch)
    select = SimpleStatement("SELECT c, v FROM %s.t WHERE k = 1" % ks, fetch_size=7)
    result = session.execute(select)
    assert result.has_more_pages
    rows = list(result)
    assert [r.c for r in rows] == list(range(30)), rows
    assert rows[27].v == "b27"
    by_key = session.prepare("SELECT v FROM %s.t WHERE k = ? AND c = ?" % ks)
    assert session.execute(by_key, (1, 3)).one().v == "v3"
    wait_until(lambda: ks in cluster.metadata.keyspaces
               and "t" in cluster.metadata.keyspaces[ks].tables, what="schema metadata")
    table = cluster.metadata.keyspaces[ks].tables["t"]
    assert [c.name for c in table.partition_key] == ["k"]
    assert [c.name for c in table.clustering_key] == ["c"]
    assert table.columns["v"].cql_type == "text"


def cqlengine_models(session, ks):
    """cqlengine's sync_table, then model create / get / filter through the session."""
    from cassandra.cqlengine import columns, connection, management, models
    name = "compat_%s" % uuid.uuid4().hex[:8]
    connection.register_connection(name, session=session)

    class Person(models.Model):
        __keyspace__ = ks
        __connection__ = name
        team = columns.Text(partition_key=True)
        pid = columns.Integer(primary_key=True)
        nick = columns.Text()

    try:
        management.sync_table(Person, keyspaces=[ks], connections=[name])
        for pid in range(5):
            Person.create(team="red", pid=pid, nick="n%d" % pid)
        assert Person.get(team="red", pid=3).nick == "n3"
        assert [p.pid for p in Person.objects.filter(team="red")] == list(range(5))
        assert Person.objects.filter(team="red").count() == 5
    finally:
        connection.unregister_connection(name)


def node_stop_restart(sim, cluster, session):
    """A node stops: the driver marks it down and keeps serving; it comes back: marked up,
    its pool reopens.  The node stopped is not the control connection's: with that one gone
    nothing tells the driver (on any reactor, its own included) until a heartbeat or a request
    finds the closed socket."""
    control = cluster.control_connection._connection.endpoint.address
    index = [i for i, a in enumerate(sim.contact_points) if a != control][0]
    address = sim.contact_points[index]
    host = [h for h in cluster.metadata.all_hosts() if h.endpoint.address == address][0]
    sim.stop_node(index)
    wait_until(lambda: not host.is_up, what="%s marked down" % address)
    for _ in range(10):
        assert session.execute("SELECT release_version FROM system.local").one()
    sim.start_node(index)
    wait_until(lambda: host.is_up, what="%s marked up again" % address)
    wait_until(lambda: any(p.host == host and p.open_count for p in session.get_pools()),
               what="the pool of %s reopened" % address)
    for _ in range(10):
        assert session.execute("SELECT release_version FROM system.local").one()


def timeout_then_recovery(sim, session):
    """A request the server delays past the client timeout raises OperationTimedOut; the
    connection keeps working (the late answer lands on an orphaned stream)."""
    sim.prime("SELECT * FROM system.local WHERE key = 'slow'", rows=[], delay=1.5)
    try:
        session.execute("SELECT * FROM system.local WHERE key = 'slow'", timeout=0.3)
    except OperationTimedOut:
        pass
    else:
        raise AssertionError("no OperationTimedOut")
    time.sleep(1.5)                     # (the late answer arrives meanwhile)
    assert session.execute("SELECT release_version FROM system.local").one()


def dropped_connections(sim, cluster, session):
    """The server drops every connection: they go defunct or closed, the driver reconnects and
    requests succeed again."""
    sim.drop_connections()

    def works():
        try:
            return session.execute("SELECT release_version FROM system.local").one() is not None
        except Exception:
            return False
    wait_until(works, what="queries after drop_connections")
    wait_until(lambda: all(h.is_up for h in cluster.metadata.all_hosts()),
               what="every host up again")


def idle_heartbeats(sim):
    """With idle_heartbeat_interval=1 the idle connections send OPTIONS and stay up."""
    wait_until(lambda: any(entry["opcode"] == "OPTIONS"
                           for node in range(len(sim.contact_points))
                           for entry in sim.served(node)),
               timeout=15.0, what="a heartbeat OPTIONS")
