"""A Celery-style worker: processes that each own a Cluster, taking jobs from a queue.

    echo '{"order": 1, "item": "book", "quantity": 2}' | python queue_worker.py --workers 2

Jobs are JSON lines on stdin; each worker process stores its jobs and answers one JSON line per
job on stdout (``{"order": 1, "worker": <pid>, "stored": true}``).  What a Celery (or RQ, or
any pre-forking) worker must do, shown without Celery:

- make the Cluster in the worker process, after it started (Celery: in a
  ``worker_process_init`` handler), never in the parent before the fork;
- shut it down when the worker stops (Celery: ``worker_process_shutdown``), so the loop thread
  and connections go with it.
"""

import argparse
import json
import multiprocessing
import os
import sys


def _worker(jobs, results, hosts, port, keyspace):
    from cqlreactor import Cluster
    cluster = Cluster(hosts, port=port)           # in the child: "worker_process_init"
    try:
        session = cluster.connect()
        insert = session.prepare("INSERT INTO %s.orders (order_id, item, quantity, worker) "
                                 "VALUES (?, ?, ?, ?)" % keyspace)
        while True:
            job = jobs.get()
            if job is None:                           # the stop sentinel
                break
            try:
                session.execute(insert, (job["order"], job["item"], job["quantity"],
                                         os.getpid()))
                results.put({"order": job["order"], "worker": os.getpid(), "stored": True})
            except Exception as exc:                  # a failed job is reported, not fatal
                results.put({"order": job.get("order"), "worker": os.getpid(),
                             "stored": False, "error": "%s: %s" % (type(exc).__name__, exc)})
    finally:
        cluster.shutdown()                            # "worker_process_shutdown"


def _create_schema(hosts, port, keyspace):
    from cqlreactor import Cluster
    with Cluster(hosts, port=port) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                        "'SimpleStrategy', 'replication_factor': 1}" % keyspace)
        session.execute("CREATE TABLE IF NOT EXISTS %s.orders (order_id int PRIMARY KEY, "
                        "item text, quantity int, worker int)" % keyspace)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="127.0.0.1", help="comma-separated contact points")
    parser.add_argument("--port", type=int, default=9042)
    parser.add_argument("--keyspace", default="examples")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    hosts = args.hosts.split(",")

    # The schema from a short-lived process of its own: the parent keeps no Cluster (and no
    # loop thread) across the forks below.
    setup = multiprocessing.Process(target=_create_schema, args=(hosts, args.port,
                                                                 args.keyspace))
    setup.start()
    setup.join()
    if setup.exitcode != 0:
        sys.stderr.write("creating the schema failed (exit code %s)\n" % setup.exitcode)
        return 1

    jobs, results = multiprocessing.Queue(), multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_worker, args=(jobs, results, hosts, args.port,
                                                             args.keyspace))
               for _ in range(args.workers)]
    for w in workers:
        w.start()
    count = 0
    for line in sys.stdin:
        if line.strip():
            jobs.put(json.loads(line))
            count += 1
    for _ in workers:
        jobs.put(None)
    for _ in range(count):
        sys.stdout.write(json.dumps(results.get(timeout=120)) + "\n")
        sys.stdout.flush()
    for w in workers:
        w.join(60)
    return 0 if all(w.exitcode == 0 for w in workers) else 1


if __name__ == "__main__":
    sys.exit(main())
