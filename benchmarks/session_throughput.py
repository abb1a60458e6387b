"""Session-level throughput: cqlreactor vs cassandra-driver, the same reactor, one run.

    python benchmarks/session_throughput.py [--reactors asyncio,asyncore,libev,gevent]
                                            [--requests 20000] [--concurrency 128]
                                            [--rows named|tuple]

Both drivers talk to the same simulated node (one connection per host, a primed one-row SELECT
answered from the server's fast path), keep ``--concurrency`` requests in flight through
``Session.execute_async`` and callbacks, and are measured in separate processes (gevent's
monkey-patching and reactor globals must not leak between runs).  Printed: requests/s, p50/p99
latency, and ours / theirs ratios.  Numbers are for reading, never asserted by tests.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QUERY = "SELECT v FROM bench.kv WHERE k = 1"

# cassandra-driver's connection class for each of our reactor names
THEIRS = {
    "asyncore": "cassandra.io.asyncorereactor:AsyncoreConnection",
    "libev": "cassandra.io.libevreactor:LibevConnection",
    "gevent": "cassandra.io.geventreactor:GeventConnection",
    "eventlet": "cassandra.io.eventletreactor:EventletConnection",
    "asyncio": "cassandra.io.asyncioreactor:AsyncioConnection",
}


def _run_chains(execute_async, add_callbacks, requests, concurrency, wait_done):
    """Keep ``concurrency`` requests in flight until ``requests`` completed."""
    latencies = []
    state = {"sent": 0, "done": 0, "errors": 0}
    finished = wait_done()

    def send():
        if state["sent"] >= requests:
            return
        state["sent"] += 1
        started = time.perf_counter()
        future = execute_async()

        def ok(_rows):
            latencies.append(time.perf_counter() - started)
            complete()

        def failed(exc):
            state["errors"] += 1
            complete()

        add_callbacks(future, ok, failed)

    def complete():
        state["done"] += 1
        if state["done"] >= requests:
            finished.set()
        else:
            send()

    start = time.perf_counter()
    for _ in range(min(concurrency, requests)):
        send()
    finished.wait(300)
    elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies) or 1
    return {"rps": state["done"] / elapsed, "errors": state["errors"],
            "p50_ms": latencies[int(n * 0.50) - 1] * 1000 if latencies else None,
            "p99_ms": latencies[int(n * 0.99) - 1] * 1000 if latencies else None}


def _worker(args):
    """Run inside a subprocess: one implementation, one reactor; prints one JSON line."""
    contact, port = args.contact, args.port
    if args.impl == "theirs" and args.reactor in ("gevent", "eventlet"):
        if args.reactor == "gevent":
            from gevent import monkey
            monkey.patch_all()
        else:
            import eventlet
            eventlet.monkey_patch()
    import threading
    if args.impl == "ours":
        from cqlreactor import Cluster, tuple_factory
        cluster = Cluster([contact], port=port, connection_class=args.reactor)
        session = cluster.connect()
        if args.rows == "tuple":
            session.row_factory = tuple_factory
        event_factory = cluster.reactor.make_event
    else:
        import importlib
        from cassandra.cluster import Cluster as TheirCluster
        from cassandra.query import tuple_factory as their_tuple_factory
        module, cls = THEIRS[args.reactor].split(":")
        connection_class = getattr(importlib.import_module(module), cls)
        cluster = TheirCluster([contact], port=port, connection_class=connection_class,
                               protocol_version=args.protocol_version)
        session = cluster.connect()
        if args.rows == "tuple":
            session.row_factory = their_tuple_factory
        event_factory = threading.Event
    try:
        def execute_async():
            return session.execute_async(QUERY)

        def add_callbacks(future, ok, failed):
            future.add_callbacks(ok, failed)

        _run_chains(execute_async, add_callbacks, min(2000, args.requests), args.concurrency,
                    event_factory)   # warm up
        result = _run_chains(execute_async, add_callbacks, args.requests, args.concurrency,
                             event_factory)
    finally:
        cluster.shutdown()
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactors", default="asyncio,asyncore,libev,gevent")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rows", choices=("named", "tuple"), default="named")
    parser.add_argument("--protocol-version", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--reactor", help=argparse.SUPPRESS)
    parser.add_argument("--contact", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return 0

    sys.path.insert(0, ROOT)
    from cqlreactor.testing.cluster import SimulatedCluster
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = []
    with SimulatedCluster(nodes=1) as sim:
        sim.prime(QUERY, columns=[("v", "int")], rows=[{"v": 42}])
        for reactor in args.reactors.split(","):
            line = {"reactor": reactor}
            for impl in ("ours", "theirs"):
                cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--reactor", reactor,
                       "--contact", sim.contact_points[0], "--port", str(sim.port),
                       "--requests", str(args.requests), "--concurrency",
                       str(args.concurrency), "--rows", args.rows,
                       "--protocol-version", str(args.protocol_version)]
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=env, universal_newlines=True, timeout=600)
                try:
                    line[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                    line[impl] = {"error": tail[0]}
            rows.append(line)

    print("%-9s %12s %12s %7s %10s %10s %7s" % ("reactor", "ours req/s", "theirs req/s",
                                                "ratio", "ours p99", "their p99", "p99 x"))
    for line in rows:
        ours, theirs = line["ours"], line["theirs"]
        if "error" in ours or "error" in theirs:
            print("%-9s ours: %s | theirs: %s" % (line["reactor"], ours.get("error", "ok"),
                                                  theirs.get("error", "ok")))
            continue
        print("%-9s %12.0f %12.0f %6.1fx %8.2fms %8.2fms %6.2fx" % (
            line["reactor"], ours["rps"], theirs["rps"], ours["rps"] / theirs["rps"],
            ours["p99_ms"], theirs["p99_ms"], ours["p99_ms"] / theirs["p99_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
