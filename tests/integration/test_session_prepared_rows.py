"""Prepared SELECTs through the session's pre-encoded EXECUTE path, on every reactor here.

On v5 the session asks for rows without metadata (skip_metadata) and decodes them with the
prepared statement's result metadata; on v4 it does not skip (no result metadata id protects a
changed table there).  Pages after the first go through the general EXECUTE encoder.  Real
server process, real sockets.
"""

import pytest

from cqlreactor import Cluster, dict_factory, tuple_factory
from cqlreactor.testing.cluster import SimulatedCluster


@pytest.fixture(scope="module")
def sim():
    with SimulatedCluster(nodes=1) as sim:
        yield sim


@pytest.mark.parametrize("version", [4, 5])
def test_prepared_select_rows_pages_and_row_factories(sim, reactor, version):
    ks = "prep_%s_v%d" % (reactor, version)
    with Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                 protocol_version=version, connect_timeout=5) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
        session.execute("CREATE TABLE IF NOT EXISTS %s.t (p int, c int, v text, n bigint, "
                        "PRIMARY KEY (p, c))" % ks)
        insert = session.prepare("INSERT INTO %s.t (p, c, v, n) VALUES (?, ?, ?, ?)" % ks)
        futures = [session.execute_async(insert, (i % 3, i, "v%d" % i, None if i % 5 else i))
                   for i in range(120)]
        for future in futures:
            future.result()
        select = session.prepare("SELECT c, v, n FROM %s.t WHERE p = ?" % ks)
        assert [c[2] for c in select.result_metadata] == ["c", "v", "n"]
        future = session.execute_async(select, (1,))
        rows = future.result()
        expected = [(i, "v%d" % i, None if i % 5 else i) for i in range(120) if i % 3 == 1]
        assert [tuple(r) for r in rows] == expected
        assert rows.column_names == ["c", "v", "n"]
        assert rows.current_rows[0].v == "v1"
        # v5 asks for rows without metadata and decodes them with the prepared one
        assert (future._result_metadata is select.result_metadata) == (version >= 5)
        # bound values change while the EXECUTE head and tail are reused
        for p in (0, 2, 1):
            got = [r.c for r in session.execute(select, (p,))]
            assert got == [i for i in range(120) if i % 3 == p]
        # pages after the first (a paging state: the general encoder)
        select.fetch_size = 7
        paged = session.execute(select, (2,))
        assert paged.has_more_pages and len(paged.current_rows) == 7
        assert [r.c for r in paged] == [i for i in range(120) if i % 3 == 2]
        select.fetch_size = None
        # other row factories see the same columns
        session.row_factory = dict_factory
        assert session.execute(select, (0,)).one() == {"c": 0, "v": "v0", "n": 0}
        session.row_factory = tuple_factory
        assert session.execute(select, (0,)).one() == (0, "v0", 0)
        # consistency given on the statement is part of the cached head
        bound = select.bind((1,))
        bound.consistency_level = 1
        assert [r[0] for r in session.execute(bound)][:2] == [1, 4]


def test_unprepared_after_a_restart_is_prepared_again(reactor):
    with SimulatedCluster(nodes=1) as sim:
        with Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                     connect_timeout=5) as cluster:
            session = cluster.connect()
            session.execute("CREATE KEYSPACE IF NOT EXISTS rp WITH replication = "
                            "{'class': 'SimpleStrategy', 'replication_factor': 1}")
            session.execute("CREATE TABLE IF NOT EXISTS rp.t (k int PRIMARY KEY, v int)")
            session.execute("INSERT INTO rp.t (k, v) VALUES (1, 10)")
            select = session.prepare("SELECT v FROM rp.t WHERE k = ?")
            assert session.execute(select, (1,)).one().v == 10
            sim.stop_node(0)
            sim.start_node(0)           # the node forgets its prepared statements
            rows = None
            for _ in range(200):        # until the pool has reconnected
                try:
                    rows = session.execute(select, (1,))
                    break
                except Exception:
                    cluster.reactor.make_event().wait(0.05)
            assert rows is not None and rows.one().v == 10
            served = [r for r in sim.served(0) if r["opcode"] == "PREPARE"]
            assert served, "the statement was not prepared again"
