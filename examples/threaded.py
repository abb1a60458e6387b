"""Many threads, one Session: a thread-pool script writing and reading rows.

    python threaded.py --hosts 127.0.0.1 --port 9042 --threads 8 --rows 200

A Session is thread-safe and meant to be shared: every thread calls ``execute`` on it, and the
reactor's loop thread multiplexes their requests over the same connections.  Prints one JSON
line: rows written, rows read back, the threads that did the work and the reactor.
"""

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from cqlreactor import Cluster


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="127.0.0.1", help="comma-separated contact points")
    parser.add_argument("--port", type=int, default=9042)
    parser.add_argument("--keyspace", default="examples")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args(argv)

    with Cluster(args.hosts.split(","), port=args.port) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                        "'SimpleStrategy', 'replication_factor': 1}" % args.keyspace)
        session.execute("CREATE TABLE IF NOT EXISTS %s.thread_rows (id int PRIMARY KEY, "
                        "thread text)" % args.keyspace)
        insert = session.prepare("INSERT INTO %s.thread_rows (id, thread) VALUES (?, ?)"
                                 % args.keyspace)
        select = session.prepare("SELECT thread FROM %s.thread_rows WHERE id = ?"
                                 % args.keyspace)

        def write_and_read(i):
            name = threading.current_thread().name
            session.execute(insert, (i, name))
            return session.execute(select, (i,)).one().thread

        with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="writer") as pool:
            readers = list(pool.map(write_and_read, range(args.rows)))
        print(json.dumps({"written": args.rows, "read": len(readers),
                          "threads": len(set(readers)),
                          "reactor": cluster.connection_class.name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
