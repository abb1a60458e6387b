"""cassandra-driver's session layer on cqlreactor's IO versus on its own reactors, one run.

    python benchmarks/compat_driver.py [--reactors asyncio,asyncore,libev,gevent]
                                       [--requests 20000] [--concurrency 128] [--repeat N]

For each reactor, the same ``cassandra.cluster.Cluster`` keeps ``--concurrency`` requests in
flight through ``Session.execute_async`` against one simulated node (a primed one-row SELECT),
once with cassandra-driver's own connection class (``cassandra.io.*``) and once with
``cqlreactor.compat.cassandra_driver``'s, each in its own process (gevent/eventlet runs are
monkey-patched, as their reactors require).  Printed: requests/s, p99 latency, client CPU
microseconds per request, and compat / theirs ratios.  The session layer (theirs) is the same
on both sides, so the ratios show what the IO under it costs.  Numbers are for reading, never
asserted by tests.

Measured 2026-12-02 on the shared 2-core machine (load from other work; cassandra-driver
3.30.1, protocol v4, 20,000 requests, one run each):

    (numbers in the README section "Keeping cassandra-driver, using our reactors")
"""

import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import (add_callbacks as _add_callbacks, cpu as _cpu, monkey_patch,  # noqa: E402
                      primed_cluster, QUERY, run_chains as _run_chains, run_worker,
                      their_connection_class)

OURS = {
    "asyncore": "AsyncoreConnection", "libev": "LibevConnection",
    "gevent": "GeventConnection", "eventlet": "EventletConnection",
    "asyncio": "AsyncioConnection",
}


def _connection_class(impl, reactor):
    if impl == "compat":
        from cqlreactor.compat import cassandra_driver
        return getattr(cassandra_driver, OURS[reactor])
    return their_connection_class(reactor)


def _worker(args):
    monkey_patch(args.reactor)
    import warnings
    warnings.simplefilter("ignore")
    from cassandra.cluster import Cluster
    from cassandra.policies import RoundRobinPolicy
    cluster = Cluster([args.contact], port=args.port, protocol_version=args.protocol_version,
                      connection_class=_connection_class(args.impl, args.reactor),
                      load_balancing_policy=RoundRobinPolicy())
    session = cluster.connect()
    session.use_client_timestamp = False    # the node answers from its cache (see
    # session_throughput.py's --client-timestamps)

    def execute_async():
        return session.execute_async(QUERY)

    try:
        _run_chains(execute_async, _add_callbacks, min(2000, args.requests), args.concurrency,
                    threading.Event)                                   # warm up
        cpu0 = _cpu()
        result = _run_chains(execute_async, _add_callbacks, args.requests, args.concurrency,
                             threading.Event)
        result["cpu_us_per_req"] = (_cpu() - cpu0) * 1e6 / args.requests
    finally:
        cluster.shutdown()
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactors", default="asyncio,asyncore,libev,gevent")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--protocol-version", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--reactor", help=argparse.SUPPRESS)
    parser.add_argument("--contact", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return 0

    rows = []
    with primed_cluster() as sim:
        for reactor in args.reactors.split(",") * args.repeat:
            line = {"reactor": reactor}
            for impl in ("compat", "theirs"):
                line[impl] = run_worker(os.path.abspath(__file__), [
                    "--impl", impl, "--reactor", reactor, "--contact", sim.contact_points[0],
                    "--port", sim.port, "--requests", args.requests, "--concurrency",
                    args.concurrency, "--protocol-version", args.protocol_version])
            rows.append(line)

    print("%-9s %13s %13s %7s %11s %11s %15s" % (
        "reactor", "compat req/s", "theirs req/s", "ratio", "compat p99", "theirs p99",
        "cpu us/req c/t"))
    for line in rows:
        ours, theirs = line["compat"], line["theirs"]
        if "error" in ours or "error" in theirs:
            print("%-9s compat: %s | theirs: %s" % (line["reactor"], ours.get("error", "ok"),
                                                    theirs.get("error", "ok")))
            continue
        print("%-9s %13.0f %13.0f %6.2fx %9.1fms %9.1fms %7.0f/%-7.0f" % (
            line["reactor"], ours["rps"], theirs["rps"], ours["rps"] / theirs["rps"],
            ours["p99_ms"], theirs["p99_ms"], ours["cpu_us_per_req"],
            theirs["cpu_us_per_req"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
