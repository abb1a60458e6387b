"""cqlreactor vs cassandra-driver (same reactor) vs acsylla, side by side, on the shapes users run.

    python benchmarks/compare.py                       # the representative set, 3 rounds
    python benchmarks/compare.py --quick               # a few shapes, 1 round, short runs
    python benchmarks/compare.py --shapes 'session-libev-*,memory-*' --rounds 5
    python benchmarks/compare.py --list                # every shape name it knows

Every measurement runs in a fresh interpreter (``_harness.run_worker``), implementations
alternating A B A B within each round, all against ONE simulated-cluster process per kind of
server (plain 1 node; TLS 1 node; 3 nodes for connect; the fake Astra for the cloud connect).
The workers read the server's CPU time around what they measure: ``srv%`` >= 90 means the
server (one Python thread) was saturated and the figure is the server's, not the client's.

Shape names: ``LEVEL-REACTOR-wWINDOW-STATEMENT-ROWS[-tls][-cN]``:

- LEVEL ``connection`` (bare connections, requests straight to them), ``session``
  (``Session.execute_async`` + callbacks), ``async`` (asyncio, ``await`` per request; acsylla
  joins here), ``greenlets`` (gevent, WINDOW greenlets each doing blocking ``execute``);
- STATEMENT ``simple`` or ``prepared``; ROWS ``1row``, ``100x2`` (int, text), ``100x10``
  (uuid, timestamp, bigint, double, text, boolean, decimal, list<int>, map<text,int>, blob),
  ``insert10`` (an INSERT with 10 bound values);
- ``memory-REACTOR`` (RSS per idle connection and per 10,000 requests in flight) and
  ``connect-REACTOR-{plain,tls,cloud}`` (a 3-node cluster's ``connect()``, in ms).

Results: ``benchmarks/results/compare.json`` (every run), ``compare.md`` (the table) and
``compare.png`` (the chart; needs matplotlib, the ``bench`` extra).  The targets of issue 13
are printed next to the figures as PASS/MISS; tests never assert speed.
"""

import argparse
import asyncio
import datetime
import decimal
import fnmatch
import itertools
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness  # noqa: E402

RESULTS = os.path.join(_harness.HERE, "results")
REACTORS = ("asyncio", "libev", "gevent", "asyncore")
WINDOWS = (1, 128, 1024)

MIXED_TYPES = [("id", "uuid"), ("ts", "timestamp"), ("n", "bigint"), ("d", "double"),
               ("t", "text"), ("b", "boolean"), ("dec", "decimal"), ("li", "list<int>"),
               ("m", "map<text,int>"), ("bl", "blob")]


def _mixed_row(i):
    return [uuid.UUID(int=i + 1), datetime.datetime(2026, 1, 1, 12, 0, i % 60),
            10 ** 12 + i, i / 3.0, "text value %d" % i, i % 2 == 0,
            decimal.Decimal("%d.25" % i), [i, i + 1, i + 2], {"a": i, "b": i + 1},
            b"\x00\x01\x02\x03" * 4]


# rows kind -> (simple text, prepared text, bound values, columns, rows)
QUERIES = {
    "1row": ("SELECT v FROM bench.kv WHERE k = 1", "SELECT v FROM bench.kv WHERE k = ?", (1,),
             [("v", "int")], [[42]]),
    "100x2": ("SELECT k, v FROM bench.wide WHERE p = 1", "SELECT k, v FROM bench.wide WHERE p = ?",
              (1,), [("k", "int"), ("v", "text")], [[i, "value %d" % i] for i in range(100)]),
    "100x10": ("SELECT * FROM bench.mixed WHERE p = 1", "SELECT * FROM bench.mixed WHERE p = ?",
               (1,), MIXED_TYPES, [_mixed_row(i) for i in range(100)]),
}
INSERT_COLUMNS = [("k", "int"), ("n", "bigint"), ("d", "double"), ("t", "text"),
                  ("b", "boolean"), ("id", "uuid"), ("ts", "timestamp"), ("bl", "blob"),
                  ("li", "list<int>"), ("m", "map<text,int>")]
INSERT = "INSERT INTO bench.ins (%s) VALUES (%s)" % (
    ", ".join(n for n, _ in INSERT_COLUMNS), ", ".join("?" for _ in INSERT_COLUMNS))
INSERT_VALUES = (1, 2 ** 40, 1.5, "some text", True, uuid.UUID(int=7),
                 datetime.datetime(2026, 1, 1), b"\x01" * 16, [1, 2, 3], {"a": 1})
SLOW = "SELECT v FROM bench.slow WHERE k = 1"      # answered after SLOW_DELAY (memory)
SLOW_DELAY = 4.0


def primes():
    """Every answer the throughput and memory shapes need."""
    out = []
    for simple, prepared, _, columns, rows in QUERIES.values():
        out.append(dict(query=simple, columns=columns, rows=rows))
        out.append(dict(query=prepared, columns=columns, rows=rows, params=[("p", "int")]))
    out.append(dict(query=INSERT, rows=[], columns=[], params=INSERT_COLUMNS))   # a void answer
    out.append(dict(query=SLOW, columns=[("v", "int")], rows=[[1]], delay=SLOW_DELAY))
    return out


# --- shapes ----------------------------------------------------------------------------------

def all_shapes():
    """Every shape name this script can run, in a stable order."""
    names = []
    for level, reactor, window, stmt, rows, tls, conns in itertools.product(
            ("connection", "session", "async", "greenlets"), REACTORS, WINDOWS + (1000,),
            ("simple", "prepared"), ("1row", "100x2", "100x10", "insert10"), (False, True),
            (1, 50)):
        if (level == "greenlets") != (window == 1000):
            continue
        if level == "greenlets" and (reactor != "gevent" or tls or conns != 1):
            continue
        if level == "async" and reactor != "asyncio":
            continue
        if level == "connection" and (stmt != "simple" or rows == "insert10"):
            continue
        if level != "connection" and conns != 1:
            continue
        if rows == "insert10" and stmt != "prepared":
            continue
        names.append(shape_name(level, reactor, window, stmt, rows, tls, conns))
    names += ["memory-%s" % r for r in REACTORS]
    names += ["connect-%s-%s" % (r, t) for r in REACTORS for t in ("plain", "tls", "cloud")]
    return names


def shape_name(level, reactor, window, stmt, rows, tls=False, conns=1):
    return "%s-%s-w%d-%s-%s%s%s" % (level, reactor, window, stmt, rows, "-tls" if tls else "",
                                    "-c%d" % conns if conns != 1 else "")


def parse_shape(name):
    """A shape name -> dict (kind, level, reactor, window, stmt, rows, tls, conns)."""
    parts = name.split("-")
    if parts[0] == "memory":
        return {"kind": "memory", "reactor": parts[1], "name": name}
    if parts[0] == "connect":
        return {"kind": "connect", "reactor": parts[1], "target": parts[2], "name": name}
    shape = {"kind": "throughput", "level": parts[0], "reactor": parts[1],
             "window": int(parts[2][1:]), "stmt": parts[3], "rows": parts[4], "tls": False,
             "conns": 1, "name": name}
    for extra in parts[5:]:
        if extra == "tls":
            shape["tls"] = True
        elif extra.startswith("c"):
            shape["conns"] = int(extra[1:])
    return shape


def _set(level, reactors, window, stmts, rows):
    return [shape_name(level, r, window, s, k) for r in reactors for s in stmts for k in rows]


DEFAULT_SHAPES = (
    _set("session", REACTORS, 128, ("simple", "prepared"), ("1row",))
    + _set("session", ("asyncio", "libev"), 128, ("prepared",), ("100x2", "100x10", "insert10"))
    + _set("session", ("libev",), 1, ("prepared",), ("1row",))
    + _set("session", ("libev",), 1024, ("prepared",), ("1row",))
    + _set("connection", ("asyncio", "libev"), 128, ("simple",), ("1row", "100x2"))
    + ["connection-libev-w128-simple-1row-c50", "connection-libev-w128-simple-1row-tls",
       "session-libev-w128-prepared-1row-tls"]
    + _set("async", ("asyncio",), 128, ("simple", "prepared"), ("1row",))
    + _set("async", ("asyncio",), 128, ("prepared",), ("100x2", "100x10"))
    + ["greenlets-gevent-w1000-simple-1row", "memory-libev", "memory-asyncio",
       "connect-libev-plain", "connect-libev-tls", "connect-libev-cloud"])

QUICK_SHAPES = ["session-libev-w128-prepared-1row", "session-libev-w128-prepared-100x10",
                "async-asyncio-w128-prepared-1row", "memory-libev", "connect-libev-plain"]


def impls_for(shape):
    """Which implementations a shape compares (acsylla only on the asyncio shapes)."""
    if shape["kind"] == "throughput" and shape["level"] == "async":
        return ["ours", "theirs", "acsylla"]
    return ["ours", "theirs"]


def server_kind(shape):
    """Which server process a shape runs against (one process per kind, all impls share it)."""
    if shape["kind"] == "connect":
        return "connect-" + shape["target"]
    return "tls" if shape.get("tls") else "plain"


# --- the worker: one implementation, one shape --------------------------------------------------

def _ssl_context(ca_path):
    import ssl
    context = ssl.create_default_context(cafile=ca_path)
    context.check_hostname = False       # the same for every implementation
    return context


def _statement(shape):
    """(query text, bound values or None) of a throughput shape."""
    if shape["rows"] == "insert10":
        return INSERT, INSERT_VALUES
    simple, prepared, values, _, _ = QUERIES[shape["rows"]]
    return (prepared, values) if shape["stmt"] == "prepared" else (simple, None)


def _consume(rows):
    """Touch every cell, as an application would (a driver decoding lazily pays here)."""
    for row in rows:
        for _ in row:
            pass


def _setup_connections(args, shape):
    """Bare connections (no session): (close, execute_async, event_factory)."""
    text, _ = _statement(shape)
    ssl_context = _ssl_context(args.ca) if shape["tls"] else None
    if args.impl == "ours":
        from cqlreactor.core.consistency import ConsistencyLevel
        from cqlreactor.core.messages import QueryMessage, QueryParameters
        from cqlreactor.reactors import get_reactor_class
        reactor = get_reactor_class(shape["reactor"])()
        options = {"compression": True}
        if ssl_context is not None:
            options["ssl_context"] = ssl_context
        conns = [reactor.connect((args.contact, args.port), **options)
                 for _ in range(shape["conns"])]
        message = QueryMessage(text, QueryParameters(ConsistencyLevel.ONE))
        cycle = itertools.cycle(conns)

        def execute_async():
            pending = _harness.Pending(threading.Lock)
            next(cycle).send(message, pending.done, 10.0)
            return pending

        def close():
            for conn in conns:
                conn.close()
            reactor.stop()
        return close, execute_async, reactor.make_event
    _harness.monkey_patch(shape["reactor"])
    from cassandra import ConsistencyLevel as TheirCL
    from cassandra.connection import DefaultEndPoint
    from cassandra.protocol import QueryMessage as TheirQuery
    connection_class = _harness.their_connection_class(shape["reactor"])
    connection_class.initialize_reactor()
    kwargs = {"protocol_version": 4, "compression": True}
    if ssl_context is not None:
        kwargs["ssl_context"] = ssl_context
    conns = [connection_class.factory(DefaultEndPoint(args.contact, args.port), 10, **kwargs)
             for _ in range(shape["conns"])]
    message = TheirQuery(text, consistency_level=TheirCL.ONE)
    cycle = itertools.cycle(conns)

    def execute_async():
        pending = _harness.Pending(threading.Lock)
        conn = next(cycle)
        with conn.lock:
            request_id = conn.get_request_id()
        conn.send_msg(message, request_id, pending.done)
        return pending

    def close():
        for conn in conns:
            conn.close()
    return close, execute_async, threading.Event


def _cluster(args, impl, reactor, tls, contact_points=None, cloud=None):
    """A connected (cluster, session) of ``impl`` on ``reactor``."""
    kwargs = {}
    if tls:
        kwargs["ssl_context"] = _ssl_context(args.ca)
    if impl == "ours":
        from cqlreactor import Cluster
        if cloud:
            from cqlreactor import PlainTextAuthProvider
            cluster = Cluster(cloud={"secure_connect_bundle": cloud},
                              auth_provider=PlainTextAuthProvider("token", "AstraCS:bench"),
                              connection_class=reactor)
        else:
            cluster = Cluster(contact_points or [args.contact], port=args.port,
                              connection_class=reactor, **kwargs)
        return cluster, cluster.connect()
    import warnings
    warnings.simplefilter("ignore")
    from cassandra.cluster import Cluster as TheirCluster
    kwargs["connection_class"] = _harness.their_connection_class(reactor)
    if cloud:
        from cassandra.auth import PlainTextAuthProvider as TheirAuth
        cluster = TheirCluster(cloud={"secure_connect_bundle": cloud}, protocol_version=4,
                               auth_provider=TheirAuth("token", "AstraCS:bench"), **kwargs)
    else:
        cluster = TheirCluster(contact_points or [args.contact], port=args.port,
                               protocol_version=4, **kwargs)
    return cluster, cluster.connect()


def _setup_session(args, shape):
    if args.impl == "theirs":
        _harness.monkey_patch(shape["reactor"])
    cluster, session = _cluster(args, args.impl, shape["reactor"], shape["tls"])
    text, values = _statement(shape)
    statement = session.prepare(text) if shape["stmt"] == "prepared" else text
    execute_async = session.execute_async
    if args.impl == "ours":
        event_factory = cluster.reactor.make_event
    else:
        event_factory = threading.Event

    def run():
        return execute_async(statement, values)
    return cluster.shutdown, run, event_factory


def _consuming_callbacks(future, ok, failed):
    def on_rows(rows):
        _consume(rows or ())
        ok(rows)
    future.add_callbacks(on_rows, failed)


def _connection_callbacks(future, ok, failed):
    def on_message(message):
        _consume(getattr(message, "rows", None) or ())
        ok(message)
    future.add_callbacks(on_message, failed)


def _measured(args, measure):
    """Run ``measure(duration)`` once to warm up, then for real with CPU (ours and the
    server's) read around it."""
    measure(min(0.5, args.duration))
    cpu0, srv0 = _harness.cpu(), _harness.server_cpu(args.sim_pid)
    start = time.perf_counter()
    result = measure(args.duration)
    busy = time.perf_counter() - start
    cpu1, srv1 = _harness.cpu(), _harness.server_cpu(args.sim_pid)
    result["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / max(result["requests"], 1)
    result["busy_s"] = busy
    if srv0 is not None and srv1 is not None:
        result["server_cpu_pct"] = 100.0 * (srv1 - srv0) / busy
    return result


def _throughput_worker(args, shape):
    level = shape["level"]
    if level == "async":
        return _async_worker(args, shape)
    if level == "greenlets":
        return _greenlet_worker(args, shape)
    if level == "connection":
        close, execute_async, event_factory = _setup_connections(args, shape)
        callbacks = _connection_callbacks
    else:
        close, execute_async, event_factory = _setup_session(args, shape)
        callbacks = _consuming_callbacks
    try:
        return _measured(args, lambda duration: _harness.run_chains(
            execute_async, callbacks, 10 ** 9, shape["window"], event_factory,
            duration=duration))
    finally:
        close()


def _greenlet_worker(args, shape):
    """``window`` greenlets, each looping on a blocking ``session.execute``."""
    _harness.monkey_patch("gevent")
    import gevent
    cluster, session = _cluster(args, args.impl, "gevent", shape["tls"])
    text, values = _statement(shape)
    statement = session.prepare(text) if shape["stmt"] == "prepared" else text
    execute = session.execute
    clock = time.perf_counter

    def measure(duration):
        latencies = []
        state = {"errors": 0}
        deadline = clock() + duration

        def loop():
            while clock() < deadline:
                started = clock()
                try:
                    _consume(execute(statement, values))
                except Exception:
                    state["errors"] += 1
                    continue
                latencies.append(clock() - started)
        start = clock()
        gevent.joinall([gevent.spawn(loop) for _ in range(shape["window"])])
        return _harness.summarize(latencies, len(latencies), state["errors"], clock() - start)
    try:
        return _measured(args, measure)
    finally:
        cluster.shutdown()


async def _async_setup(args, shape):
    """(execute coroutine factory, close coroutine) for the asyncio shapes."""
    text, values = _statement(shape)
    if args.impl == "ours":
        from cqlreactor import Cluster
        from cqlreactor.reactors.asyncio_reactor import AsyncioReactor
        kwargs = {"ssl_context": _ssl_context(args.ca)} if shape["tls"] else {}
        cluster = Cluster([args.contact], port=args.port, connection_class=AsyncioReactor,
                          **kwargs)
        session = await cluster.connect_async()
        statement = (await session.prepare_async(text) if shape["stmt"] == "prepared"
                     else text)
        execute_async = session.execute_async

        async def execute():
            _consume(await execute_async(statement, values))
        return execute, cluster.shutdown_async
    if args.impl == "theirs":
        import concurrent.futures
        loop = asyncio.get_event_loop()
        cluster, session = await loop.run_in_executor(
            None, _cluster, args, "theirs", "asyncio", shape["tls"])
        statement = (await loop.run_in_executor(None, session.prepare, text)
                     if shape["stmt"] == "prepared" else text)

        async def execute():
            future = concurrent.futures.Future()
            session.execute_async(statement, values).add_callbacks(future.set_result,
                                                                   future.set_exception)
            _consume(await asyncio.wrap_future(future))

        async def close():
            await loop.run_in_executor(None, cluster.shutdown)
        return execute, close
    import acsylla
    kwargs = {}
    if shape["tls"]:
        kwargs = {"ssl_enabled": True, "ssl_trusted_cert": open(args.ca).read()}
    cluster = acsylla.create_cluster([args.contact], port=args.port, protocol_version=4,
                                     **kwargs)
    session = await cluster.create_session()
    if shape["stmt"] == "prepared":
        prepared = await session.create_prepared(text)

        def make():
            return prepared.bind(list(values))
    else:
        simple = acsylla.create_statement(text)

        def make():
            return simple

    async def execute():
        for row in await session.execute(make()):
            row.as_tuple()                  # every cell decoded
    return execute, session.close


def _async_worker(args, shape):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def main():
        execute, close = await _async_setup(args, shape)
        try:
            await _harness.drive_async(execute, 10 ** 9, shape["window"],
                                       duration=min(0.5, args.duration))      # warm up
            cpu0, srv0 = _harness.cpu(), _harness.server_cpu(args.sim_pid)
            result = await _harness.drive_async(execute, 10 ** 9, shape["window"],
                                                duration=args.duration)
            cpu1, srv1 = _harness.cpu(), _harness.server_cpu(args.sim_pid)
        finally:
            await close()
        result["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / max(result["requests"], 1)
        result["busy_s"] = args.duration
        if srv0 is not None and srv1 is not None:
            result["server_cpu_pct"] = 100.0 * (srv1 - srv0) / args.duration
        return result
    return loop.run_until_complete(main())


def _memory_worker(args, shape):
    """RSS per idle connection (50 opened after a first) and per 10,000 requests in flight."""
    import gc
    reactor = shape["reactor"]
    idle_n, inflight_n = args.idle_connections, 10000
    one = dict(shape, kind="throughput", level="connection", window=1, stmt="simple",
               rows="1row", tls=False, conns=1)
    close, execute_async, _ = _setup_connections(args, one)   # imports, reactor, a first one
    for _ in range(200):
        execute_async()
    if args.impl == "ours":
        from cqlreactor.core.consistency import ConsistencyLevel
        from cqlreactor.core.messages import QueryMessage, QueryParameters
        from cqlreactor.reactors import get_reactor_class
        ours = get_reactor_class(reactor)()

        def connect():
            return ours.connect((args.contact, args.port), compression=True)
        message = QueryMessage(SLOW, QueryParameters(ConsistencyLevel.ONE))

        def send(conn, callback):
            conn.send(message, callback, 60.0)
    else:
        from cassandra import ConsistencyLevel as TheirCL
        from cassandra.connection import DefaultEndPoint
        from cassandra.protocol import QueryMessage as TheirQuery
        connection_class = _harness.their_connection_class(reactor)

        def connect():
            return connection_class.factory(DefaultEndPoint(args.contact, args.port), 10,
                                            protocol_version=4, compression=True)
        message = TheirQuery(SLOW, consistency_level=TheirCL.ONE)

        def send(conn, callback):
            with conn.lock:
                request_id = conn.get_request_id()
            conn.send_msg(message, request_id, callback)
    gc.collect()
    rss0 = _harness.rss_bytes()
    conns = [connect() for _ in range(idle_n)]
    gc.collect()
    rss1 = _harness.rss_bytes()
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def answered(_message):
        with lock:
            count[0] += 1
            if count[0] == inflight_n:
                done.set()
    gc.collect()
    rss2 = _harness.rss_bytes()
    for _ in range(inflight_n):
        send(conns[0], answered)
    rss3 = _harness.rss_bytes()
    answered_in_time = done.wait(SLOW_DELAY + 60)
    for conn in conns:
        conn.close()
    close()
    return {"idle_kib_per_conn": (rss1 - rss0) / 1024.0 / idle_n,
            "inflight_mib_per_10k": (rss3 - rss2) / 1048576.0,
            "all_answered": answered_in_time}


def _connect_worker(args, shape):
    """Milliseconds for ``Cluster(...)`` + ``connect()`` to a 3-node cluster (or the fake
    Astra): ``first_connect_ms`` the process's first (lazy imports included: what a script
    pays once), ``connect_ms`` the next one (what the target compares)."""
    reactor = shape["reactor"]
    if args.impl == "theirs":
        _harness.monkey_patch(reactor)
        import cassandra.cluster  # noqa: F401  (the package import is not measured)
    else:
        import cqlreactor  # noqa: F401
    target = shape["target"]
    contacts = args.contact.split(",")
    times = []
    for _ in range(2):
        start = time.perf_counter()
        cluster, _ = _cluster(args, args.impl, reactor, target == "tls",
                              contact_points=contacts,
                              cloud=args.bundle if target == "cloud" else None)
        times.append((time.perf_counter() - start) * 1000.0)
        cluster.shutdown()
    return {"first_connect_ms": times[0], "connect_ms": times[1]}


def worker(args):
    shape = parse_shape(args.shape)
    run = {"throughput": _throughput_worker, "memory": _memory_worker,
           "connect": _connect_worker}[shape["kind"]]
    print(json.dumps(run(args, shape)))


# --- the parent: servers, rounds, tables ---------------------------------------------------------

class Servers(object):
    """One server process per kind, started when first needed, stopped at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.running = {}
        self._stack = []

    def get(self, kind):
        """(worker arguments, server pid) for the server of ``kind``."""
        if kind in self.running:
            return self.running[kind]
        from cqlreactor.testing.astra.certs import make_ca, make_cert
        if kind in ("tls", "connect-tls"):
            directory = os.path.join(self.workdir, kind)
            os.makedirs(directory)
            nodes = 3 if kind == "connect-tls" else 1
            ca = make_ca(directory)
            make_cert(ca, ["127.0.0.%d" % (i + 1) for i in range(nodes)], directory, "node",
                      usage="server")
            sim = self._enter(_harness.primed_cluster(primes(), nodes=nodes,
                                                      tls_dir=directory))
            args = ["--contact", ",".join(sim.contact_points), "--port", sim.port,
                    "--ca", ca.cert_path]
            pid = sim.pid
        elif kind == "connect-cloud":
            from cqlreactor.testing.astra import FakeAstra
            astra = FakeAstra(nodes=3, username="token", password="AstraCS:bench",
                              keyspace="bench")
            astra.start()
            self._stack.append(astra.stop)
            args = ["--bundle", astra.bundle_path, "--contact", "-", "--port", 0]
            pid = astra.cluster.pid
        else:
            nodes = 3 if kind == "connect-plain" else 1
            sim = self._enter(_harness.primed_cluster(primes(), nodes=nodes))
            args = ["--contact", ",".join(sim.contact_points), "--port", sim.port]
            pid = sim.pid
        self.running[kind] = (args + ["--sim-pid", pid], pid)
        return self.running[kind]

    def _enter(self, manager):
        value = manager.__enter__()
        self._stack.append(lambda: manager.__exit__(None, None, None))
        return value

    def close(self):
        while self._stack:
            try:
                self._stack.pop()()
            except Exception as exc:      # a server that will not stop must not hide results
                print("note: stopping a server: %s" % exc, file=sys.stderr)


def _fmt_rate(value):
    return "%.1fk" % (value / 1000.0) if value >= 1000 else "%.0f" % value


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def aggregate(runs):
    """Per shape and implementation: the median and range of every figure over the rounds."""
    table = {}
    for run in runs:
        table.setdefault(run["shape"], {}).setdefault(run["impl"], []).append(run["result"])
    out = {}
    for shape, impls in table.items():
        out[shape] = {}
        for impl, results in impls.items():
            good = [r for r in results if "error" not in r and (r.get("requests", 1) > 0)]
            if not good:
                first = results[0]
                out[shape][impl] = {"error": first.get("error") or "every request failed%s" % (
                    ": " + first["first_error"] if first.get("first_error") else "")}
                continue
            summary = {"runs": len(good)}
            for key in good[0]:
                values = [r[key] for r in good if isinstance(r.get(key), (int, float))
                          and not isinstance(r.get(key), bool)]
                if values:
                    summary[key] = {"median": _median(values), "min": min(values),
                                    "max": max(values)}
            out[shape][impl] = summary
    return out


def _m(summary, key):
    value = summary.get(key) if summary else None
    return value["median"] if isinstance(value, dict) else None


def targets(agg):
    """The targets of issue 13 as (shape or "all", what, ours, theirs-or-bound, PASS/MISS)."""
    checks = []
    best_1row = 0.0
    for name, impls in agg.items():
        shape = parse_shape(name)
        ours, theirs, acs = impls.get("ours"), impls.get("theirs"), impls.get("acsylla")
        if shape["kind"] == "memory":
            o, t = _m(ours, "idle_kib_per_conn"), _m(theirs, "idle_kib_per_conn")
            if o is not None and t:
                checks.append((name, "idle conn RSS <= 1/2 theirs", o, t, o <= t / 2))
            continue
        if shape["kind"] == "connect":
            o, t = _m(ours, "connect_ms"), _m(theirs, "connect_ms")
            if o is not None and t:
                checks.append((name, "connect time <= theirs", o, t, o <= t))
            continue
        o, t = _m(ours, "rps"), _m(theirs, "rps")
        if o is None:
            continue
        if shape["rows"] == "1row" and shape["stmt"] == "simple" or shape["rows"] == "1row":
            best_1row = max(best_1row, o)
        if t:
            need = 4.0 if shape["rows"] == "1row" else 3.0 if shape["rows"] != "insert10" \
                else None
            if need is not None:
                checks.append((name, "req/s >= %gx theirs" % need, o, t, o >= need * t))
            op, tp = _m(ours, "p99_ms"), _m(theirs, "p99_ms")
            if op is not None and tp:
                checks.append((name, "p99 <= 1/4 theirs", op, tp, op <= tp / 4))
        a = _m(acs, "rps")
        if a and shape["rows"] in ("1row", "100x2", "100x10"):
            checks.append((name, "req/s ahead of acsylla", o, a, o > a))
    if best_1row:
        checks.append(("all", "best 1-row req/s >= 100k", best_1row, 100000.0,
                       best_1row >= 100000))
    return checks


def compact_table(agg):
    """One line per throughput shape: ours, theirs, acsylla req/s and the ratios (the README's
    table)."""
    lines = ["| shape | cqlreactor req/s | cassandra-driver | ours/theirs | acsylla | "
             "ours/acsylla | p99 ms ours/theirs | CPU µs/req ours/theirs |",
             "|---|---|---|---|---|---|---|---|"]
    for name, impls in agg.items():
        if parse_shape(name)["kind"] != "throughput":
            continue
        o, t, a = (_m(impls.get(i), "rps") for i in ("ours", "theirs", "acsylla"))
        saturated = any((_m(impls.get(i), "server_cpu_pct") or 0) >= 90 for i in impls)
        lines.append("| %s%s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, " (server saturated)" if saturated else "",
            _fmt_rate(o) if o else "-", _fmt_rate(t) if t else "-",
            "%.1fx" % (o / t) if o and t else "-", _fmt_rate(a) if a else "-",
            "%.2fx" % (o / a) if o and a else "-",
            "%.1f / %.1f" % (_m(impls.get("ours"), "p99_ms") or 0,
                             _m(impls.get("theirs"), "p99_ms") or 0),
            "%.0f / %.0f" % (_m(impls.get("ours"), "cpu_us_per_req") or 0,
                             _m(impls.get("theirs"), "cpu_us_per_req") or 0)))
    return lines


def markdown(agg, checks, meta):
    """The results as markdown: the compact table, the full throughput table, memory and
    connect, then the targets."""
    lines = ["Run %s on %s (%s; load average before/after %s / %s); %d round(s) of %.1f s per "
             "measurement, implementations alternating in fresh processes; medians (min-max)."
             % (meta["when"], meta["machine"], meta["python"], meta["load_before"],
                meta["load_after"], meta["rounds"], meta["duration"]), ""]
    lines += compact_table(agg) + ["", "Every implementation:", ""]
    lines += ["| shape | impl | req/s | p50 ms | p99 ms | CPU µs/req | srv% | ours/it |",
              "|---|---|---|---|---|---|---|---|"]
    for name, impls in agg.items():
        if parse_shape(name)["kind"] != "throughput":
            continue
        ours_rps = _m(impls.get("ours"), "rps")
        for impl in ("ours", "theirs", "acsylla"):
            s = impls.get(impl)
            if s is None:
                continue
            if "error" in s:
                lines.append("| %s | %s | error: %s | | | | | |" % (name, impl, s["error"][:80]))
                continue
            rps = s["rps"]
            srv = _m(s, "server_cpu_pct")
            flag = " **sat**" if srv is not None and srv >= 90 else ""
            ratio = ("%.2fx" % (ours_rps / rps["median"])) if ours_rps and impl != "ours" \
                else ""
            lines.append("| %s | %s | %s (%s-%s) | %.2f | %.2f | %.1f | %s%s | %s |" % (
                name, impl, _fmt_rate(rps["median"]), _fmt_rate(rps["min"]),
                _fmt_rate(rps["max"]), _m(s, "p50_ms") or 0, _m(s, "p99_ms") or 0,
                _m(s, "cpu_us_per_req") or 0, "%.0f" % srv if srv is not None else "?", flag,
                ratio))
    other = [(n, i) for n, i in agg.items() if parse_shape(n)["kind"] != "throughput"]
    if other:
        lines += ["", "| shape | impl | idle KiB/conn | MiB per 10k in flight | connect ms "
                  "| first connect ms (imports included) |", "|---|---|---|---|---|---|"]
        for name, impls in other:
            for impl, s in impls.items():
                if "error" in s:
                    lines.append("| %s | %s | error: %s | | | |" % (name, impl,
                                                                  s["error"][:80]))
                    continue
                cells = []
                for key in ("idle_kib_per_conn", "inflight_mib_per_10k", "connect_ms",
                            "first_connect_ms"):
                    v = s.get(key)
                    cells.append("%.1f (%.1f-%.1f)" % (v["median"], v["min"], v["max"])
                                 if v else "")
                lines.append("| %s | %s | %s |" % (name, impl, " | ".join(cells)))
    lines += ["", "Targets of issue 13 (ratios within this run):", "",
              "| shape | target | ours | theirs / bound | |", "|---|---|---|---|---|"]
    for name, what, o, t, ok in checks:
        lines.append("| %s | %s | %.1f | %.1f | %s |" % (name, what, o, t,
                                                        "PASS" if ok else "MISS"))
    return "\n".join(lines) + "\n"


def chart(agg, path):
    """A PNG: req/s per throughput shape, one bar per implementation (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: no chart (matplotlib is not installed: pip install 'cqlreactor[bench]')")
        return None
    names = [n for n in agg if parse_shape(n)["kind"] == "throughput"]
    if not names:
        return None
    impls = ("ours", "theirs", "acsylla")
    colors = {"ours": "#2b7bba", "theirs": "#d95f02", "acsylla": "#7570b3"}
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 5.5))
    width = 0.27
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for i, name in enumerate(names):
            value = _m(agg[name].get(impl), "rps")
            if value:
                xs.append(i + (k - 1) * width)
                ys.append(value)
        if xs:
            ax.bar(xs, ys, width, label={"ours": "cqlreactor", "theirs": "cassandra-driver"}
                   .get(impl, impl), color=colors[impl])
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (median of rounds, log scale)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def select_shapes(patterns, quick):
    known = all_shapes()
    if not patterns:
        return list(QUICK_SHAPES if quick else DEFAULT_SHAPES)
    chosen = []
    for pattern in patterns.split(","):
        if pattern == "default":
            matched = list(DEFAULT_SHAPES)
        else:
            matched = [n for n in known if fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            raise SystemExit("no shape matches %r (see --list)" % pattern)
        chosen += [n for n in matched if n not in chosen]
    return chosen


def _available(impl):
    """None when ``impl`` can run here, else why not."""
    module = {"theirs": "cassandra", "acsylla": "acsylla"}.get(impl)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as exc:
        return "%s does not import (%s): pip install %s" % (
            module, exc, "cassandra-driver" if impl == "theirs" else "acsylla")
    return None


def _load():
    try:
        return "%.1f" % os.getloadavg()[0]
    except OSError:
        return "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", help="comma-separated shape names or fnmatch patterns "
                        "('session-*-1row', 'default'); default: the representative set")
    parser.add_argument("--quick", action="store_true",
                        help="a few shapes (unless --shapes), 1 round, 1 s per measurement")
    parser.add_argument("--rounds", type=int, help="A B A B rounds (default 3; --quick: 1)")
    parser.add_argument("--duration", type=float,
                        help="seconds per measurement (default 3; --quick: 1)")
    parser.add_argument("--impls", default="ours,theirs,acsylla")
    parser.add_argument("--out-dir", default=RESULTS, help="where compare.json/.md/.png go")
    parser.add_argument("--list", action="store_true", help="print every shape name")
    parser.add_argument("--from-json", metavar="PATH",
                        help="measure nothing: write the markdown and chart again from a "
                             "compare.json (into --out-dir)")
    parser.add_argument("--idle-connections", type=int, default=50)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--impl", "--shape", "--contact", "--ca", "--bundle"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sim-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 3.0
    if args.worker:
        worker(args)
        return 0
    if args.list:
        print("\n".join(all_shapes()))
        return 0
    if args.from_json:
        with open(args.from_json) as f:
            data = json.load(f)
        return write_outputs(args.out_dir, data["meta"], data["runs"])
    rounds = args.rounds or (1 if args.quick else 3)
    shapes = select_shapes(args.shapes, args.quick)
    impls = args.impls.split(",")
    skipped = {}
    for impl in impls:
        why = _available(impl)
        if why:
            skipped[impl] = why
            print("note: skipping %s: %s" % (impl, why))
    meta = {"when": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
            "machine": "%s, %d CPUs" % (platform.machine(), os.cpu_count() or 0),
            "python": "CPython %s" % platform.python_version(), "rounds": rounds,
            "duration": args.duration, "load_before": _load(), "shapes": shapes,
            "skipped": skipped, "command": " ".join(["python", "benchmarks/compare.py"]
                                                    + (argv if argv is not None
                                                       else sys.argv[1:]))}
    try:
        import cassandra
        meta["cassandra_driver"] = cassandra.__version__
    except Exception:
        pass
    by_server = {}
    for name in shapes:
        by_server.setdefault(server_kind(parse_shape(name)), []).append(name)
    runs = []
    workdir = tempfile.mkdtemp(prefix="cqlreactor-bench-")
    servers = Servers(workdir)
    script = os.path.abspath(__file__)
    try:
        for kind, names in by_server.items():
            server_args, pid = servers.get(kind)
            for round_no in range(rounds):
                for name in names:
                    for impl in impls_for(parse_shape(name)):
                        if impl not in impls or impl in skipped:
                            continue
                        result = _harness.run_worker(
                            script, ["--impl", impl, "--shape", name, "--duration",
                                     args.duration, "--idle-connections",
                                     args.idle_connections] + server_args,
                            timeout=120 + 10 * args.duration)
                        runs.append({"shape": name, "impl": impl, "round": round_no,
                                     "result": result})
                        print("%-45s %-8s %s" % (name, impl, _brief(result)), flush=True)
    finally:
        servers.close()
    meta["load_after"] = _load()
    return write_outputs(args.out_dir, meta, runs)


def write_outputs(out_dir, meta, runs):
    """compare.json, compare.md and compare.png in ``out_dir``; prints the markdown."""
    agg = aggregate(runs)
    checks = targets(agg)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "compare.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs, "summary": agg,
                   "targets": [{"shape": c[0], "target": c[1], "ours": c[2], "theirs": c[3],
                                "pass": c[4]} for c in checks]}, f, indent=1)
    text = markdown(agg, checks, meta)
    with open(os.path.join(out_dir, "compare.md"), "w") as f:
        f.write(text)
    chart(agg, os.path.join(out_dir, "compare.png"))
    print()
    print(text)
    print("written: %s/compare.{json,md,png}" % out_dir)
    return 0


def _brief(result):
    if "error" in result:
        return "error: " + result["error"]
    if "rps" in result:
        return "%8.0f req/s  p99 %.2f ms  cpu %.1f us/req  srv %s%%" % (
            result["rps"], result["p99_ms"] or 0, result["cpu_us_per_req"],
            "%.0f" % result["server_cpu_pct"] if "server_cpu_pct" in result else "?")
    return json.dumps(result)


if __name__ == "__main__":
    sys.exit(main())
