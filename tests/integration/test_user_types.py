"""``Cluster.register_user_type(keyspace, user_type, klass)`` against the simulated cluster, with
cassandra-driver doing the same statements as the oracle: UDT values come back as the class
(in a column and nested in a collection), and instances of it are accepted by prepared and
by simple statements (rendered as UDT literals). Real server process, real sockets.
"""

import pytest

from cqlreactor import Cluster
from cqlreactor.cluster import UserTypeDoesNotExist
from cqlreactor.testing.cluster import SimulatedCluster

KS = "udt_reg"


class Address(object):
    def __init__(self, street, zipcode):
        self.street = street
        self.zipcode = zipcode

    def __eq__(self, other):
        return (type(other).__name__ == "Address" and
                (self.street, self.zipcode) == (other.street, other.zipcode))

    def __hash__(self):
        return hash((self.street, self.zipcode))

    def __repr__(self):
        return "Address(%r, %r)" % (self.street, self.zipcode)


@pytest.fixture(scope="module")
def sim():
    with SimulatedCluster(nodes=1) as sim:
        with Cluster(sim.contact_points, port=sim.port) as cluster:
            session = cluster.connect()
            session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                            "'replication_factor': 1}" % KS)
            session.execute("CREATE TYPE %s.address (street text, zipcode int)" % KS)
            session.execute("CREATE TABLE %s.users (id int PRIMARY KEY, location "
                            "frozen<address>, old list<frozen<address>>)" % KS)
        yield sim


def _roundtrip(session, insert_prepared, base):
    """The statements both drivers run; returns what was read back, by id."""
    home, work = Address("1 Main St.", 78723), Address("2 Side St.", 10001)
    session.execute("INSERT INTO %s.users (id, location, old) VALUES (%%s, %%s, %%s)" % KS,
                    (base, home, [work, home]))
    insert = insert_prepared("INSERT INTO %s.users (id, location, old) VALUES (?, ?, ?)" % KS)
    session.execute(insert, (base + 1, work, [home]))
    session.execute("INSERT INTO %s.users (id, location) VALUES (%%s, %%s)" % KS,
                    (base + 2, Address(None, 5)))
    rows = {}
    for i in range(base, base + 3):
        rows[i] = session.execute("SELECT location, old FROM %s.users WHERE id = %%s" % KS,
                                  (i,)).one()
    return rows


def test_registered_class_decodes_and_encodes(sim, reactor):
    with Cluster(sim.contact_points, port=sim.port, connection_class=reactor) as cluster:
        cluster.register_user_type(KS, "address", Address)     # before connect: checked there
        session = cluster.connect()
        rows = _roundtrip(session, session.prepare, 100)
        assert rows[100].location == Address("1 Main St.", 78723)
        assert type(rows[100].location) is Address
        assert rows[100].old == [Address("2 Side St.", 10001), Address("1 Main St.", 78723)]
        assert rows[101].location == Address("2 Side St.", 10001)
        assert rows[101].old == [Address("1 Main St.", 78723)]
        assert rows[102].location == Address(None, 5) and rows[102].old is None
        # prepared SELECT (v5: rows without metadata) and a second session see it too
        select = session.prepare("SELECT location FROM %s.users WHERE id = ?" % KS)
        assert session.execute(select, (101,)).one().location == Address("2 Side St.", 10001)
        # a simple statement inside a batch renders the class as a literal too
        from cqlreactor import BatchStatement
        batch = BatchStatement()
        batch.add("INSERT INTO %s.users (id, location) VALUES (%%s, %%s)" % KS,
                  (110, Address("batched", 7)))
        session.execute(batch)
        assert session.execute("SELECT location FROM %s.users WHERE id = 110" % KS) \
            .one().location == Address("batched", 7)
        other = cluster.connect()
        assert type(other.execute("SELECT location FROM %s.users WHERE id = 100" % KS)
                    .one().location) is Address


def test_unregistered_udt_stays_a_namedtuple_and_registering_later_applies(sim):
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        session = cluster.connect()
        session.execute("INSERT INTO %s.users (id, location) VALUES (1, {street: 'a', "
                        "zipcode: 1})" % KS)
        query = "SELECT location FROM %s.users WHERE id = 1" % KS
        before = session.execute(query).one().location
        assert (before.street, before.zipcode) == ("a", 1) and not isinstance(before, Address)
        cluster.register_user_type(KS, "address", Address)      # connected: checked now
        assert session.execute(query).one().location == Address("a", 1)


def test_unknown_keyspace_or_type_is_refused(sim):
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        cluster.connect()
        with pytest.raises(UserTypeDoesNotExist, match="nope"):
            cluster.register_user_type("nope", "address", Address)
        with pytest.raises(UserTypeDoesNotExist, match="missing"):
            cluster.register_user_type(KS, "missing", Address)
        with pytest.raises(TypeError, match="class"):
            cluster.register_user_type(KS, "address", lambda **kw: kw)
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        cluster.register_user_type(KS, "missing", Address)
        with pytest.raises(UserTypeDoesNotExist, match="missing"):
            cluster.connect()


@pytest.mark.oracle
def test_cassandra_driver_reads_and_writes_the_same(sim):
    driver_cluster = pytest.importorskip("cassandra.cluster")
    cluster = driver_cluster.Cluster(sim.contact_points, port=sim.port, protocol_version=4)
    try:
        session = cluster.connect()
        cluster.register_user_type(KS, "address", Address)
        theirs = _roundtrip(session, session.prepare, 200)
    finally:
        cluster.shutdown()
    with Cluster(sim.contact_points, port=sim.port, protocol_version=4) as ours_cluster:
        session = ours_cluster.connect()
        ours_cluster.register_user_type(KS, "address", Address)
        ours = _roundtrip(session, session.prepare, 300)
        # what each wrote, the other reads the same
        crossed = session.execute("SELECT location, old FROM %s.users WHERE id = 201" % KS).one()
    for i in range(3):
        assert (ours[300 + i].location, ours[300 + i].old) == \
            (theirs[200 + i].location, theirs[200 + i].old)
    assert (crossed.location, crossed.old) == (theirs[201].location, theirs[201].old)
