"""The independent check of the simulated cluster: cassandra-driver, with its default settings
(schema metadata on, token-aware routing, lz4 when installed), works against it, v4 and v5.
"""


import pytest
from _cluster_helpers import poll

cassandra = pytest.importorskip("cassandra")
pytest.importorskip("cqlreactor.testing.engine")   # the CQL engine (written alongside)

from cassandra import (AuthenticationFailed, ConsistencyLevel, ReadTimeout,  # noqa: E402
                       Unavailable)
from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster, NoHostAvailable  # noqa: E402
from cassandra.policies import FallthroughRetryPolicy  # noqa: E402
from cassandra.query import BatchStatement, SimpleStatement  # noqa: E402

from cqlreactor.testing import SimulatedCluster  # noqa: E402

pytestmark = pytest.mark.oracle


def _reactor_options():
    """Cluster options beyond the defaults that the driver's default reactor needs here.

    cassandra-driver's asyncore reactor polls a pool connection for reads only while requests
    are in flight on it, so it does not see a stopped node close an idle connection; and the
    driver ignores a STATUS_CHANGE DOWN for a host whose pool still looks open.  The host then
    stays up until a request or a heartbeat (30 s by default) finds the closed socket.  A real
    Cassandra node closes its sockets the same way, so this is the reactor, not the simulator:
    every driver version tried (3.25 to 3.30) behaves so with asyncore, and none with libev.
    Asyncore is the default where the driver has no libev extension (3.28.0's cp37 wheel);
    there a 1 s heartbeat lets it notice within the tests' waits.
    """
    from cassandra.cluster import DefaultConnection
    if DefaultConnection.__module__ == "cassandra.io.asyncorereactor":
        return {"idle_heartbeat_interval": 1}
    return {}


@pytest.fixture(scope="module", params=[4, 5], ids=["v4", "v5"])
def driver(request):
    """(sim, cluster, session) per protocol version; one simulated cluster per version."""
    version = request.param
    with SimulatedCluster(nodes=3) as sim:
        cluster = Cluster(sim.contact_points, port=sim.port, protocol_version=version,
                          **_reactor_options())
        session = cluster.connect()
        try:
            yield sim, cluster, session
        finally:
            cluster.shutdown()


def test_discovers_all_hosts_and_metadata(driver):
    sim, cluster, session = driver
    hosts = sorted(str(h.endpoint.address) for h in cluster.metadata.all_hosts())
    assert hosts == sim.contact_points
    assert all(h.is_up for h in cluster.metadata.all_hosts())
    assert set(h.host_id for h in cluster.metadata.all_hosts()) == \
        set(__import__("uuid").UUID(n["host_id"]) for n in sim.node_info())
    assert len(cluster.metadata.token_map.ring) == 3
    assert "system" in cluster.metadata.keyspaces
    row = session.execute("SELECT release_version FROM system.local").one()
    assert row.release_version.startswith("4.")


def test_keyspace_table_prepared_insert_read_page_batch(driver):
    sim, cluster, session = driver
    session.execute("CREATE KEYSPACE oracle WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE oracle.items (bucket int, seq int, name text, score double, "
                    "tags list<text>, PRIMARY KEY (bucket, seq))")
    # schema metadata followed the DDL (SCHEMA_CHANGE results and events)
    assert poll(lambda: "items" in cluster.metadata.keyspaces.get("oracle").tables
                 if "oracle" in cluster.metadata.keyspaces else False)
    columns = cluster.metadata.keyspaces["oracle"].tables["items"].columns
    assert list(columns) == ["bucket", "seq", "name", "score", "tags"]
    insert = session.prepare("INSERT INTO oracle.items (bucket, seq, name, score, tags) "
                             "VALUES (?, ?, ?, ?, ?)")
    for i in range(1000):
        session.execute(insert, (i % 10, i, "item%d" % i, i / 2.0, ["t%d" % (i % 3)]))
    select = session.prepare("SELECT seq, name, score, tags FROM oracle.items "
                             "WHERE bucket = ?")
    seen = {}
    for bucket in range(10):
        for row in session.execute(select, (bucket,)):
            seen[row.seq] = row
    assert sorted(seen) == list(range(1000))
    assert seen[123].name == "item123" and seen[123].score == 61.5
    assert seen[124].tags == ["t1"]
    # paging: fetch_size=100 over the whole table
    statement = SimpleStatement("SELECT bucket, seq FROM oracle.items", fetch_size=100)
    result = session.execute(statement)
    first_page = list(result.current_rows)
    assert len(first_page) == 100 and result.has_more_pages
    everything = list(session.execute(statement))
    assert len(everything) == 1000
    assert len(set((r.bucket, r.seq) for r in everything)) == 1000
    # a batch of prepared and simple statements
    batch = BatchStatement()
    batch.add(insert, (42, 1, "b1", 1.0, []))
    batch.add(SimpleStatement("INSERT INTO oracle.items (bucket, seq, name) VALUES (42, 2, 'b2')"))
    batch.add(insert, (42, 3, "b3", 3.0, ["x", "y"]))
    session.execute(batch)
    rows = list(session.execute("SELECT seq, name FROM oracle.items WHERE bucket = 42"))
    assert [(r.seq, r.name) for r in rows] == [(1, "b1"), (2, "b2"), (3, "b3")]


def test_token_aware_routing_reaches_the_replica(driver):
    sim, cluster, session = driver
    session.execute("CREATE KEYSPACE IF NOT EXISTS single WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS single.kv (k int PRIMARY KEY, v int)")
    insert = session.prepare("INSERT INTO single.kv (k, v) VALUES (?, ?)")
    for i in range(3):
        sim.served(i, clear=True)
    keys = list(range(30))
    for k in keys:
        session.execute(insert, (k, k))
    by_address = dict((n["address"], n["index"]) for n in sim.node_info())
    executed = {}
    for i in range(3):
        for entry in sim.served(i):
            if entry["opcode"] == "EXECUTE" and entry["query"].startswith("INSERT INTO single"):
                executed[int(entry["values"][0], 16)] = i
    assert sorted(executed) == keys
    for k in keys:
        replicas = cluster.metadata.get_replicas("single", insert.bind((k, k)).routing_key)
        assert [by_address[str(h.endpoint.address)] for h in replicas] == [executed[k]]


def test_restarted_node_gets_statements_prepared_again(driver):
    sim, cluster, session = driver
    session.execute("CREATE TABLE IF NOT EXISTS single.kv (k int PRIMARY KEY, v int)")
    select = session.prepare("SELECT v FROM single.kv WHERE k = ?")
    victim, = _victims(cluster, sim, 1)
    sim.stop_node(victim)
    assert poll(lambda: not _host(cluster, sim.contact_points[victim]).is_up)
    sim.served(victim, clear=True)
    sim.start_node(victim)          # the node forgets its prepared statements
    assert poll(lambda: _host(cluster, sim.contact_points[victim]).is_up, timeout=30)
    for k in range(30):
        assert session.execute(select, (k,)).one().v == k   # written by the routing test
    log = sim.served(victim)
    # the driver prepared again on the restarted node (on UP, or after an UNPREPARED answer)
    assert any(e["opcode"] == "PREPARE" and e["query"].startswith("SELECT v FROM single.kv")
               for e in log)
    assert any(e["opcode"] == "EXECUTE" for e in log)


def _victims(cluster, sim, count):
    """Indices of ``count`` nodes that do not hold the driver's control connection (a node
    cannot announce its own stop; a real cluster's gossip could not either)."""
    control = str(cluster.control_connection._connection.endpoint.address)
    return [i for i, a in enumerate(sim.contact_points) if a != control][:count]


def _host(cluster, address):
    for host in cluster.metadata.all_hosts():
        if str(host.endpoint.address) == address:
            return host
    raise AssertionError("no host %s" % (address,))


def test_unavailable_at_quorum_with_two_nodes_stopped(driver):
    sim, cluster, session = driver
    session.execute("CREATE KEYSPACE IF NOT EXISTS rf3 WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE IF NOT EXISTS rf3.kv (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO rf3.kv (k, v) VALUES (1, 1)")
    victims = _victims(cluster, sim, 2)
    try:
        for i in victims:
            sim.stop_node(i)
        # the driver sees both go down (STATUS_CHANGE events on its control connection)
        assert poll(lambda: not any(_host(cluster, sim.contact_points[i]).is_up
                                     for i in victims))
        # ... and its load balancing policy and pools have caught up (they follow is_up)
        assert poll(lambda: not any(_host(cluster, sim.contact_points[i]) in
                                     session.get_pool_state() for i in victims))
        quorum = SimpleStatement("SELECT v FROM rf3.kv WHERE k = 1",
                                 consistency_level=ConsistencyLevel.QUORUM)
        # the default retry policy tries the next host once; none is left
        with pytest.raises(NoHostAvailable) as info:
            session.execute(quorum)
        errors = list(info.value.errors.values())
        assert errors and all(isinstance(e, Unavailable) for e in errors)
        quorum.retry_policy = FallthroughRetryPolicy()
        with pytest.raises(Unavailable) as info:
            session.execute(quorum)
        assert info.value.required_replicas == 2 and info.value.alive_replicas == 1
        assert info.value.consistency == ConsistencyLevel.QUORUM
        one = SimpleStatement("SELECT v FROM rf3.kv WHERE k = 1",
                              consistency_level=ConsistencyLevel.ONE)
        assert session.execute(one).one().v == 1
    finally:
        for i in victims:
            sim.start_node(i)
    assert poll(lambda: all(h.is_up for h in cluster.metadata.all_hosts()), timeout=30)


@pytest.fixture(scope="module")
def auth_sim():
    with SimulatedCluster(nodes=1, auth=("cassandra", "s3cret")) as sim:
        yield sim


@pytest.mark.parametrize("version", [4, 5])
def test_authentication(auth_sim, version):
    good = Cluster(auth_sim.contact_points, port=auth_sim.port, protocol_version=version,
                   auth_provider=PlainTextAuthProvider("cassandra", "s3cret"))
    try:
        assert good.connect().execute("SELECT key FROM system.local").one().key == "local"
    finally:
        good.shutdown()
    bad = Cluster(auth_sim.contact_points, port=auth_sim.port, protocol_version=version,
                  auth_provider=PlainTextAuthProvider("cassandra", "wrong"))
    try:
        with pytest.raises(NoHostAvailable) as info:
            bad.connect()
        errors = list(info.value.errors.values())
        assert errors and all(isinstance(e, AuthenticationFailed) for e in errors)
        assert "Provided username cassandra and/or password are incorrect" in str(errors[0])
    finally:
        bad.shutdown()


def test_driver_downgrades_to_a_version_the_node_speaks():
    with SimulatedCluster(nodes=1, protocol_versions=(3, 4)) as sim:
        cluster = Cluster(sim.contact_points, port=sim.port)
        try:
            cluster.connect()
            assert cluster.protocol_version == 4
        finally:
            cluster.shutdown()


def test_primed_queries_through_the_driver(driver):
    sim, cluster, session = driver
    try:
        sim.prime("SELECT name, age FROM people.users WHERE id = ?", params=[("id", "int")],
                  rows=[{"name": "ada", "age": 36}], columns=[("name", "text"), ("age", "int")])
        prepared = session.prepare("SELECT name, age FROM people.users WHERE id = ?")
        row = session.execute(prepared, (1,)).one()
        assert (row.name, row.age) == ("ada", 36)
        sim.prime("SELECT * FROM people.users", error={"code": "read_timeout",
                                                       "message": "primed timeout",
                                                       "consistency": "ONE", "received": 0,
                                                       "block_for": 1})
        with pytest.raises(ReadTimeout, match="primed timeout"):
            session.execute(SimpleStatement("SELECT * FROM people.users",
                                            retry_policy=FallthroughRetryPolicy()))
    finally:
        sim.clear()
