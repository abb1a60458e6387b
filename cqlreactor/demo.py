"""``python -m cqlreactor demo``: the driver end to end, on every reactor this interpreter has.

It starts the project's simulated Cassandra (three nodes on 127.0.0.1-3, a real server process),
then, for each available reactor, connects a ``Cluster``, discovers the nodes, creates a keyspace
and a table, writes rows with a prepared statement through ``execute_async``, pages through
them, and prints what it saw.  Nothing outside this machine is contacted.
"""

import sys
import time

__all__ = ["run"]


def _tour(reactor, sim, out):
    from cqlreactor import Cluster, SimpleStatement
    started = time.monotonic()
    with Cluster(sim.contact_points, port=sim.port, connection_class=reactor) as cluster:
        session = cluster.connect()
        hosts = sorted(h.address for h in cluster.metadata.all_hosts())
        keyspace = "demo_%s" % reactor
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}" % keyspace)
        session.set_keyspace(keyspace)
        session.execute("CREATE TABLE IF NOT EXISTS readings (sensor text, at int, value double,"
                        " PRIMARY KEY (sensor, at))")
        insert = session.prepare("INSERT INTO readings (sensor, at, value) VALUES (?, ?, ?)")
        futures = [session.execute_async(insert, ("s1", i, i * 0.5)) for i in range(1000)]
        for future in futures:
            future.result()
        pages = session.execute(SimpleStatement(
            "SELECT at, value FROM readings WHERE sensor = 's1'", fetch_size=250))
        rows = list(pages)
        count = session.execute("SELECT COUNT(*) FROM readings WHERE sensor = 's1'").one()[0]
        out.write("  %-9s protocol v%d, %d hosts %s, 1000 prepared inserts, %d rows paged "
                  "(250 a page), COUNT(*)=%d, last row %r  [%.2fs]\n"
                  % (reactor, cluster.protocol_version, len(hosts), ",".join(hosts), len(rows),
                     count, tuple(rows[-1]), time.monotonic() - started))


def run(out=None):
    """Run the self check, then the tour on every available reactor; 0 when all succeeded."""
    from cqlreactor import selfcheck
    from cqlreactor.reactors import matrix
    from cqlreactor.testing.cluster import SimulatedCluster

    out = out or sys.stdout
    status = selfcheck.run(verbose=True)
    failures = 0
    with SimulatedCluster(nodes=3) as sim:
        out.write("simulated cluster: nodes %s on port %d\n"
                  % (", ".join(sim.contact_points), sim.port))
        for name in matrix.reactor_names():
            state = matrix.reactor_status(name)
            if state.state != "available":
                out.write("  %-9s skipped: %s (%s)\n" % (name, state.state, state.reason))
                continue
            try:
                _tour(name, sim, out)
            except Exception as exc:   # report every reactor, then fail overall
                failures += 1
                out.write("  %-9s FAILED: %r\n" % (name, exc))
    out.write("demo: %s\n" % ("all reactors passed" if not failures
                              else "%d reactor(s) FAILED" % failures))
    return 1 if (failures or status) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
