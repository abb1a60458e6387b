"""Session-level throughput: cqlreactor vs cassandra-driver, the same reactor, one run.

    python benchmarks/session_throughput.py [--reactors asyncio,asyncore,libev,gevent]
                                            [--requests 20000] [--concurrency 128]
                                            [--rows named|tuple] [--repeat N]
                                            [--level session|connection] [--impls ours,theirs]
    python benchmarks/session_throughput.py --profile REACTOR [--impl ours|theirs]

Both drivers talk to the same simulated node (one connection per host, a primed one-row SELECT
answered from the server's fast path), keep ``--concurrency`` requests in flight through
``Session.execute_async`` and callbacks, and are measured in separate processes (gevent's
monkey-patching and reactor globals must not leak between runs).  Printed: requests/s, p50/p99
latency, CPU milliseconds the client process used per 1,000 requests (microseconds per request;
less sensitive to other load on the machine than requests/s), and ours / theirs ratios.
Numbers are for reading, never asserted by tests.

Measured 2026-11-26 on the shared 2-core machine (load average 2-4 from other work; medians of
three interleaved runs, 20,000 requests, named-tuple rows, cassandra-driver 3.30.1 on v4, ours
negotiating v5 + lz4).  Before = the session layer as of commit 1d67195, after = as of this
file's commit:

    reactor   before req/s  after req/s  theirs req/s  after/theirs  p99 after/theirs  CPU us/req b/a/t
    asyncio        37,800       64,600         2,600         25x      4.3 / 170 ms       17 / 14 / 316
    asyncore       42,800       60,100         2,900         21x      4.2 / 246 ms       19 / 15 / 258
    libev          49,300       65,000         3,200         20x      6.8 / 177 ms       18 / 14 / 256
    gevent         35,300       47,500         2,600         18x      7.2 / 154 ms       18 / 14 / 342

(gevent's best run 64,800/s; single runs vary by up to 2x with the machine's load.)
``--level connection`` on the same machine: ours 64-67k/s, theirs about 18k/s; so our session
layer adds about 3 us per request to the connection's 10 us, theirs about 250 us to its 30 us.
With ``--rows tuple`` theirs reaches 2.6-5.8k/s.

Both drivers run with client-side timestamps off unless ``--client-timestamps`` is given
(the simulated node's answer cache now ignores a read's timestamp, so both settings hit it;
the figures above were measured before that, with timestamps off).

Issue 9's restructure (framing object, request templates in core/requests.py, ResponseFuture
with attempts, testing/ in packages), measured 2026-12-02 on the same machine, alternating
06c88c4 (before) and main after the restructure's merges (after) in one run, 3 rounds, 20,000
requests, ours only, medians:

    reactor   before req/s  after req/s  CPU us/req before/after   p99 before/after
    asyncio        56,700       58,100           15.5 / 15.5         3.7 / 3.6 ms
    libev          57,400       51,000           15.0 / 17.0         3.3 / 3.6 ms
    gevent         36,300       49,600           25.0 / 18.0         5.8 / 4.1 ms

(single runs swing 1.5x with the machine's load: libev's after runs were 51.0k, 59.0k and
39.3k against 57.4k, 34.8k and 60.1k before; the session layer's instruction count per
request, counted with callgrind, is within 0.5% of 06c88c4's; ``--profile libev`` counts
2.09M function calls on the loop thread for 20,000 requests before, 2.00M after.)

``--level connection`` measures the connection layers alone (one bare connection each, requests
handed straight to it with a minimal future), to show what each session layer costs on top.

``--profile REACTOR`` runs one implementation in this process under cProfile instead, with a
profiler on the calling thread and one started on the reactor's loop thread (for reactors with
a loop thread), and prints the top functions of each by own time.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _harness import (QUERY, Pending as _Pending, add_callbacks as _add_callbacks,  # noqa
                      cpu as _cpu, monkey_patch, primed_cluster, run_chains as _run_chains,
                      run_worker, their_connection_class)


def _setup_connection_level(args):
    """One bare connection of each driver, no session: requests go straight to send."""
    import threading
    if args.impl == "ours":
        from cqlreactor.core.consistency import ConsistencyLevel
        from cqlreactor.core.messages import QueryMessage, QueryParameters
        from cqlreactor.reactors import get_reactor_class
        reactor = get_reactor_class(args.reactor)()
        conn = reactor.connect((args.contact, args.port), compression=True)
        message = QueryMessage(QUERY, QueryParameters(ConsistencyLevel.ONE))

        def execute_async():
            pending = _Pending(threading.Lock)
            conn.send(message, pending.done, 10.0)
            return pending

        class Closer(object):
            @staticmethod
            def shutdown():
                conn.close()
                reactor.stop()
        return Closer, execute_async, reactor.make_event, None
    monkey_patch(args.reactor)
    from cassandra import ConsistencyLevel as TheirCL
    from cassandra.connection import DefaultEndPoint
    from cassandra.protocol import QueryMessage as TheirQuery
    connection_class = their_connection_class(args.reactor)
    connection_class.initialize_reactor()
    conn = connection_class.factory(DefaultEndPoint(args.contact, args.port), 10,
                                    protocol_version=args.protocol_version, compression=True)
    message = TheirQuery(QUERY, consistency_level=TheirCL.ONE)

    def execute_async():
        pending = _Pending(threading.Lock)
        with conn.lock:
            request_id = conn.get_request_id()
        conn.send_msg(message, request_id, pending.done)
        return pending

    class Closer(object):
        @staticmethod
        def shutdown():
            conn.close()
    return Closer, execute_async, threading.Event, None


def _setup(args):
    """Connect one implementation; return (cluster, execute_async, event_factory, run_on_loop).

    ``run_on_loop(fn)`` runs ``fn`` on the reactor's loop thread and waits, or is None when the
    reactor has no loop thread of its own (gevent, eventlet: the hub runs in this thread)."""
    if args.level == "connection":
        return _setup_connection_level(args)
    contact, port = args.contact, args.port
    if args.impl == "theirs":
        monkey_patch(args.reactor)
    import threading
    run_on_loop = None
    if args.impl == "ours":
        from cqlreactor import Cluster, tuple_factory
        cluster = Cluster([contact], port=port, connection_class=args.reactor)
        session = cluster.connect()
        session.use_client_timestamp = args.client_timestamps
        if args.rows == "tuple":
            session.row_factory = tuple_factory
        event_factory = cluster.reactor.make_event
        if args.reactor not in ("gevent", "eventlet"):
            def run_on_loop(fn):
                done = threading.Event()

                def call():
                    try:
                        fn()
                    finally:
                        done.set()
                cluster.reactor.call_soon_threadsafe(call)
                done.wait(10)
    else:
        from cassandra.cluster import Cluster as TheirCluster
        from cassandra.query import tuple_factory as their_tuple_factory
        connection_class = their_connection_class(args.reactor)
        cluster = TheirCluster([contact], port=port, connection_class=connection_class,
                               protocol_version=args.protocol_version)
        session = cluster.connect()
        session.use_client_timestamp = args.client_timestamps
        if args.rows == "tuple":
            session.row_factory = their_tuple_factory
        event_factory = threading.Event

    def execute_async():
        return session.execute_async(QUERY)

    return cluster, execute_async, event_factory, run_on_loop


def _worker(args):
    """Run inside a subprocess: one implementation, one reactor; prints one JSON line."""
    cluster, execute_async, event_factory, _ = _setup(args)
    try:
        _run_chains(execute_async, _add_callbacks, min(2000, args.requests), args.concurrency,
                    event_factory)   # warm up
        cpu0 = _cpu()
        result = _run_chains(execute_async, _add_callbacks, args.requests, args.concurrency,
                             event_factory)
        result["cpu_ms_per_1k"] = (_cpu() - cpu0) * 1e6 / args.requests
    finally:
        cluster.shutdown()
    print(json.dumps(result))


def _profile(args, sim):
    """Run one implementation here under cProfile (this thread and the loop thread)."""
    import cProfile
    import io
    import pstats
    args.contact, args.port = sim.contact_points[0], sim.port
    cluster, execute_async, event_factory, run_on_loop = _setup(args)
    main_prof = cProfile.Profile()
    loop_prof = cProfile.Profile() if run_on_loop else None
    try:
        _run_chains(execute_async, _add_callbacks, 2000, args.concurrency, event_factory)
        if loop_prof is not None:
            run_on_loop(loop_prof.enable)
        main_prof.enable()
        result = _run_chains(execute_async, _add_callbacks, args.requests, args.concurrency,
                             event_factory)
        main_prof.disable()
        if loop_prof is not None:
            run_on_loop(loop_prof.disable)
    finally:
        cluster.shutdown()
    print("under the profiler:", json.dumps(result))
    for name, prof in (("calling thread", main_prof), ("loop thread", loop_prof)):
        if prof is None:
            continue
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        print("=== %s ===" % name)
        print(out.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactors", default="asyncio,asyncore,libev,gevent")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--rows", choices=("named", "tuple"), default="named")
    parser.add_argument("--client-timestamps", action="store_true",
                        help="send a client-side timestamp with each request, as both drivers "
                             "do by default (the simulated node's answer cache ignores it on "
                             "reads, so the server stays off the measured path either way)")
    parser.add_argument("--level", choices=("session", "connection"), default="session",
                        help="connection: one bare connection each, no session layer")
    parser.add_argument("--protocol-version", type=int, default=4)
    parser.add_argument("--impls", default="ours,theirs",
                        help="which implementations to run (ours,theirs)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every pair this many times (ours/theirs alternate)")
    parser.add_argument("--profile", metavar="REACTOR",
                        help="profile one reactor in this process instead (cProfile)")
    parser.add_argument("--top", type=int, default=35, help="functions shown by --profile")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help="with --profile: ours or theirs")
    parser.add_argument("--reactor", help=argparse.SUPPRESS)
    parser.add_argument("--contact", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return 0

    rows = []
    with primed_cluster() as sim:
        if args.profile:
            args.reactor = args.profile
            _profile(args, sim)
            return 0
        for reactor in args.reactors.split(",") * args.repeat:
            line = {"reactor": reactor}
            for impl in args.impls.split(","):
                worker_args = ["--impl", impl, "--reactor", reactor,
                               "--contact", sim.contact_points[0], "--port", sim.port,
                               "--requests", args.requests, "--concurrency", args.concurrency,
                               "--rows", args.rows, "--protocol-version",
                               args.protocol_version, "--level", args.level]
                if args.client_timestamps:
                    worker_args.append("--client-timestamps")
                line[impl] = run_worker(os.path.abspath(__file__), worker_args)
            rows.append(line)

    print("%-9s %12s %12s %7s %10s %10s %7s %14s" % (
        "reactor", "ours req/s", "theirs req/s", "ratio", "ours p99", "their p99", "p99 x",
        "cpu ms/1k o/t"))
    for line in rows:
        ours, theirs = line.get("ours"), line.get("theirs")
        if ours is None or theirs is None:
            one = ours or theirs
            print("%-9s %s" % (line["reactor"], json.dumps(one)))
            continue
        if "error" in ours or "error" in theirs:
            print("%-9s ours: %s | theirs: %s" % (line["reactor"], ours.get("error", "ok"),
                                                  theirs.get("error", "ok")))
            continue
        print("%-9s %12.0f %12.0f %6.1fx %8.2fms %8.2fms %6.2fx %6.0f/%-7.0f" % (
            line["reactor"], ours["rps"], theirs["rps"], ours["rps"] / theirs["rps"],
            ours["p99_ms"], theirs["p99_ms"], ours["p99_ms"] / theirs["p99_ms"],
            ours["cpu_ms_per_1k"], theirs["cpu_ms_per_1k"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
