"""What the benchmark scripts share: one primed simulated cluster, workers in fresh processes.

Every script here has the same shape: the parent starts ONE ``SimulatedCluster`` process and
primes it, then runs each implementation (ours, cassandra-driver, acsylla ...) in a subprocess
of its own (``run_worker``: the script again with ``--worker``; gevent's monkey-patching and
reactor globals must not leak between runs), which prints one JSON line.  The parent reads the
server's own CPU time around each worker (``server_cpu``) so a saturated server shows.

Nothing here is asserted by tests; numbers are for reading.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

QUERY = "SELECT v FROM bench.kv WHERE k = 1"

# cassandra-driver's connection class for each of our reactor names
THEIRS = {
    "asyncore": "cassandra.io.asyncorereactor:AsyncoreConnection",
    "libev": "cassandra.io.libevreactor:LibevConnection",
    "gevent": "cassandra.io.geventreactor:GeventConnection",
    "eventlet": "cassandra.io.eventletreactor:EventletConnection",
    "asyncio": "cassandra.io.asyncioreactor:AsyncioConnection",
}


def their_connection_class(reactor):
    """cassandra-driver's connection class for our reactor name ``reactor``."""
    import importlib
    module, cls = THEIRS[reactor].split(":")
    return getattr(importlib.import_module(module), cls)


def monkey_patch(reactor):
    """Patch the standard library as gevent's / eventlet's reactors require (no-op otherwise);
    call first thing in a worker."""
    if reactor == "gevent":
        from gevent import monkey
        monkey.patch_all()
    elif reactor == "eventlet":
        import eventlet
        eventlet.monkey_patch()


def cpu():
    """CPU seconds (user + system) this process used so far."""
    times = os.times()
    return times[0] + times[1]


def server_cpu(pid):
    """CPU seconds the process ``pid`` (the simulated cluster) used so far, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def rss_bytes():
    """This process's resident set size in bytes (Linux), or None."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def summarize(latencies, done, errors, elapsed):
    """The result dict every worker prints: rps, errors, p50_ms, p99_ms, requests."""
    latencies.sort()
    n = len(latencies)
    return {"rps": done / elapsed if elapsed else 0.0, "errors": errors, "requests": done,
            "p50_ms": latencies[max(int(n * 0.50) - 1, 0)] * 1000 if n else None,
            "p99_ms": latencies[max(int(n * 0.99) - 1, 0)] * 1000 if n else None}


def run_chains(execute_async, add_callbacks, requests, concurrency, wait_done, duration=None):
    """Keep ``concurrency`` requests in flight until ``requests`` completed (or, with
    ``duration``, until that many seconds passed and the last ones came back).

    ``execute_async()`` starts one request and returns its future; ``add_callbacks(future,
    ok, failed)`` hooks it; ``wait_done()`` makes the event the caller waits on."""
    latencies = []
    state = {"sent": 0, "done": 0, "errors": 0, "stop": False}
    finished = wait_done()
    clock = time.perf_counter
    deadline = [None]

    def send():
        if state["sent"] >= requests or state["stop"]:
            return False
        state["sent"] += 1
        started = clock()
        future = execute_async()

        def ok(_rows):
            latencies.append(clock() - started)
            complete()

        def failed(exc):
            state["errors"] += 1
            complete()

        add_callbacks(future, ok, failed)
        return True

    def complete():
        state["done"] += 1
        if deadline[0] is not None and clock() >= deadline[0]:
            state["stop"] = True
        if not send() and state["done"] >= state["sent"]:
            finished.set()

    start = clock()
    if duration is not None:
        deadline[0] = start + duration
    for _ in range(min(concurrency, requests)):
        send()
    finished.wait(300 if duration is None else duration + 60)
    elapsed = clock() - start
    return summarize(latencies, state["done"], state["errors"], elapsed)


def add_callbacks(future, ok, failed):
    """``run_chains``' hook for the drivers' ResponseFuture."""
    future.add_callbacks(ok, failed)


class Pending(object):
    """A minimal future for connection-level modes (the same for both drivers)."""

    __slots__ = ("_lock", "_value", "_ok", "_failed")

    def __init__(self, lock_factory):
        self._lock = lock_factory()
        self._value = self._ok = self._failed = None

    def done(self, value):
        with self._lock:
            self._value = (value,)
            ok, failed = self._ok, self._failed
        if ok is not None:
            (failed if isinstance(value, Exception) else ok)(value)

    def add_callbacks(self, ok, failed):
        with self._lock:
            value = self._value
            if value is None:
                self._ok, self._failed = ok, failed
                return
        (failed if isinstance(value[0], Exception) else ok)(value[0])


def worker_env():
    """The environment of a worker: this checkout first on the path."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_worker(script, args, timeout=600, sim_pid=None):
    """Run ``script --worker ARGS`` in a fresh interpreter; its last stdout line as a dict, or
    ``{"error": ...}`` (the last stderr line).  With ``sim_pid``, ``server_cpu_pct`` is added:
    the simulated cluster's CPU over the worker's wall time (100 = one core, saturated: the
    server, not the client, was measured)."""
    cmd = [sys.executable, script, "--worker"] + [str(a) for a in args]
    cpu0 = server_cpu(sim_pid) if sim_pid else None
    wall0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=worker_env(), universal_newlines=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %ds" % timeout}
    wall = time.perf_counter() - wall0
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output (exit %s)" % proc.returncode]
        return {"error": tail[0][:300]}
    if cpu0 is not None and isinstance(result, dict):
        cpu1 = server_cpu(sim_pid)
        busy = result.get("busy_s") or wall      # the measured part, when the worker says
        if cpu1 is not None:
            # CPU over the whole worker run (connect included) against the measured time:
            # an upper bound of the server's load while measuring
            result["server_cpu_pct"] = min(100.0 * (cpu1 - cpu0) / busy, 999.0)
    return result


@contextlib.contextmanager
def primed_cluster(primes=None, nodes=1, **kwargs):
    """A started ``SimulatedCluster`` with ``primes`` (a list of ``prime()`` keyword dicts;
    default: the one-row ``QUERY``); stopped on exit."""
    from cqlreactor.testing.cluster import SimulatedCluster
    if primes is None:
        primes = [dict(query=QUERY, columns=[("v", "int")], rows=[{"v": 42}])]
    with SimulatedCluster(nodes=nodes, **kwargs) as sim:
        for prime in primes:
            sim.prime(**prime)
        yield sim


def median_run(results):
    """The run of median req/s among ``results`` without errors (None if none)."""
    good = sorted((r for r in results if "error" not in r), key=lambda r: r["rps"])
    return good[len(good) // 2] if good else None


async def drive_async(execute, requests, tasks, duration=None):
    """``tasks`` coroutines each looping on ``await execute()`` until ``requests`` answers
    came back (or, with ``duration``, until that many seconds passed)."""
    import asyncio
    latencies = []
    state = {"left": requests, "errors": 0}
    clock = time.perf_counter
    deadline = None if duration is None else clock() + duration

    async def worker():
        append = latencies.append
        while state["left"] > 0 and (deadline is None or clock() < deadline):
            state["left"] -= 1
            started = clock()
            try:
                await execute()
            except Exception as exc:
                state["errors"] += 1
                state.setdefault("first_error", "%s: %s" % (type(exc).__name__, exc))
                continue
            append(clock() - started)

    start = clock()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    result = summarize(latencies, len(latencies), state["errors"], clock() - start)
    if "first_error" in state:
        result["first_error"] = state["first_error"][:300]
    return result
