"""Prepared statements and schema changes, as Cassandra 4 handles them: ``ALTER TABLE ... ADD``
(any change of a table's columns), DROP TABLE and DROP KEYSPACE evict the statements on the
table, so the next EXECUTE answers UNPREPARED; on v5 an EXECUTE whose result metadata id is
older than the statement's current one gets the new metadata flagged METADATA_CHANGED.  Our
client must re-prepare / adopt the new metadata on every reactor; cassandra-driver is the
oracle for what the server sends.
"""

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import InvalidRequest

pytest.importorskip("cqlreactor.testing.engine")


def _cluster(sim, reactor, version):
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                   protocol_version=version, connect_timeout=5)


def _opcodes(sim):
    out = []
    for node in range(len(sim.contact_points)):
        out.extend(e["opcode"] for e in sim.served(node))
    return out


def _clear(sim):
    for node in range(len(sim.contact_points)):
        sim.served(node, clear=True)


def _setup(session, ks):
    session.execute("CREATE KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    session.execute("INSERT INTO %s.t (k, v) VALUES (1, 'one')" % ks)


@pytest.mark.parametrize("version", [4, 5])
def test_alter_add_evicts_and_the_client_reprepares(cql_cluster_factory, version):
    _alter_add_evicts(cql_cluster_factory, None, version)


def test_alter_add_reprepare_on_every_reactor(cql_cluster_factory, cql_reactor):
    _alter_add_evicts(cql_cluster_factory, cql_reactor, 5)


def _alter_add_evicts(cql_cluster_factory, reactor, version):
    sim = cql_cluster_factory(nodes=1)
    with _cluster(sim, reactor, version) as cluster:
        session = cluster.connect()
        ks = "ev%d" % version
        _setup(session, ks)
        select = session.prepare("SELECT * FROM %s.t WHERE k = ?" % ks)
        assert [tuple(r) for r in session.execute(select, (1,))] == [(1, "one")]

        session.execute("ALTER TABLE %s.t ADD extra int" % ks)
        session.execute("UPDATE %s.t SET extra = 7 WHERE k = 1" % ks)
        _clear(sim)
        rows = list(session.execute(select, (1,)))

        assert [tuple(r) for r in rows] == [(1, 7, "one")]          # the new column is there
        opcodes = _opcodes(sim)
        assert opcodes.count("EXECUTE") == 2 and "PREPARE" in opcodes, opcodes


def test_alter_table_options_keeps_statements(cql_cluster_factory):
    sim = cql_cluster_factory(nodes=1)
    with _cluster(sim, None, 4) as cluster:
        session = cluster.connect()
        _setup(session, "keep")
        select = session.prepare("SELECT v FROM keep.t WHERE k = ?")
        session.execute("ALTER TABLE keep.t WITH comment = 'no column changed'")
        _clear(sim)
        assert [r.v for r in session.execute(select, (1,))] == ["one"]
        assert "PREPARE" not in _opcodes(sim)


def test_drop_table_evicts(cql_cluster_factory):
    sim = cql_cluster_factory(nodes=1)
    with _cluster(sim, None, 4) as cluster:
        session = cluster.connect()
        _setup(session, "dr")
        select = session.prepare("SELECT v FROM dr.t WHERE k = ?")
        session.execute("DROP TABLE dr.t")
        with pytest.raises(InvalidRequest) as info:       # re-prepared: the table is gone
            session.execute(select, (1,))
        assert "dr.t" in str(info.value) or "unconfigured table" in str(info.value)


def test_v5_metadata_changed_reaches_a_client_with_old_metadata(cql_cluster_factory,
                                                                cql_reactor):
    """Client A prepared before the ALTER, client B re-prepared after it: A's next EXECUTE
    carries the old result metadata id, and the server answers with the new metadata
    (METADATA_CHANGED), which A must decode with."""
    sim = cql_cluster_factory(nodes=1)
    with _cluster(sim, cql_reactor, 5) as a, _cluster(sim, cql_reactor, 5) as b:
        sa, sb = a.connect(), b.connect()
        _setup(sa, "mc")
        query = "SELECT * FROM mc.t WHERE k = ?"
        stale = sa.prepare(query)
        assert [tuple(r) for r in sa.execute(stale, (1,))] == [(1, "one")]
        sa.execute("ALTER TABLE mc.t ADD extra int")
        sa.execute("UPDATE mc.t SET extra = 5 WHERE k = 1")
        fresh = sb.prepare(query)                        # the server has the new metadata now
        assert [tuple(r) for r in sb.execute(fresh, (1,))] == [(1, 5, "one")]
        _clear(sim)

        rows = list(sa.execute(stale, (1,)))

        assert [tuple(r) for r in rows] == [(1, 5, "one")]
        assert "PREPARE" not in _opcodes(sim)          # METADATA_CHANGED, not UNPREPARED
        rows = list(sa.execute(stale, (1,)))            # and the new id is kept
        assert [tuple(r) for r in rows] == [(1, 5, "one")]


@pytest.mark.oracle
def test_cassandra_driver_sees_the_same(cql_cluster_factory):
    cluster_mod = pytest.importorskip("cassandra.cluster")
    sim = cql_cluster_factory(nodes=1)
    cluster = cluster_mod.Cluster(sim.contact_points, port=sim.port, protocol_version=5)
    other = cluster_mod.Cluster(sim.contact_points, port=sim.port, protocol_version=5)
    try:
        session, session2 = cluster.connect(), other.connect()
        _setup(session, "oc")
        stmt = session.prepare("SELECT * FROM oc.t WHERE k = ?")
        session.execute("ALTER TABLE oc.t ADD extra int")
        session2.prepare("SELECT * FROM oc.t WHERE k = ?")
        # decoded with the METADATA_CHANGED metadata (cassandra-driver 3.x reads the new id
        # from the Rows but keeps the statement's old one, so it gets the flag every time)
        for _ in range(2):
            rows = list(session.execute(stmt, (1,)))
            assert rows[0]._fields == ("k", "extra", "v")
    finally:
        cluster.shutdown()
        other.shutdown()
