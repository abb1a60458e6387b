"""perf-async's private probe: connect() time of a 3-node simulated cluster and RSS per idle
connection, ours vs cassandra-driver (same reactor family), each in a fresh subprocess.

    python benchmarks/profile_hot_path.py [--rounds 3] [--conns 50]
    python benchmarks/profile_hot_path.py --throughput [--base DIR] [--rounds 3]

``--throughput``: benchmarks/async_throughput.py's workers (``await execute_async`` per request,
1-row SELECT) for ours native, acsylla and cassandra-driver (wrap_future), windows 1 and 128,
alternating in rounds against one simulated node; ``--base DIR`` adds ours from another
checkout (e.g. ``git archive <commit> | tar -x -C DIR``) for a before/after in the same run.

For reading only; benchmarks/compare.py is the project's full comparison.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _worker(impl, contacts, port, conns):
    import gc
    if impl == "ours":
        from cqlreactor import Cluster
        from cqlreactor.reactors.libev import LibevReactor as conn_class
        kwargs = {}
    else:
        from cassandra.cluster import Cluster
        from cassandra.io.libevreactor import LibevConnection as conn_class
        kwargs = {"protocol_version": 4}
    # warm imports so connect() time is the connect, not the import
    cluster = Cluster(contacts, port=port, connection_class=conn_class, **kwargs)
    started = time.perf_counter()
    session = cluster.connect()
    connect_s = time.perf_counter() - started
    cluster.shutdown()
    cluster = Cluster(contacts, port=port, connection_class=conn_class, **kwargs)
    started = time.perf_counter()
    session = cluster.connect()
    again_s = time.perf_counter() - started
    cluster.shutdown()
    # Python heap per extra connection of one cluster (tracemalloc), 50 connections
    import tracemalloc
    cluster = Cluster(contacts[:1], port=port, connection_class=conn_class, **kwargs)
    cluster.connect()
    host = list(cluster.metadata.all_hosts())[0]
    if impl == "ours":
        def make():
            return cluster.connect_endpoint(host.endpoint)
    else:
        def make():
            return cluster.connection_factory(host.endpoint)
    extra = [make() for _ in range(3)]
    gc.collect()
    tracemalloc.start()
    snap = tracemalloc.take_snapshot()
    extra += [make() for _ in range(50)]
    gc.collect()
    time.sleep(0.3)
    heap = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(snap, "filename"))
    tracemalloc.stop()
    for conn in extra:
        conn.close()
    cluster.shutdown()
    gc.collect()
    time.sleep(0.2)
    base = _rss_kb()
    clusters = []
    for _ in range(conns):
        c = Cluster(contacts[:1], port=port, connection_class=conn_class, **kwargs)
        c.connect()
        clusters.append(c)
    gc.collect()
    time.sleep(0.5)
    per_kb = (_rss_kb() - base) / float(conns)
    for c in clusters:
        c.shutdown()
    print(json.dumps({"connect_ms": connect_s * 1000, "again_ms": again_s * 1000, "rss_kb_per_cluster": per_kb,
                      "heap_bytes_per_conn": heap / 50.0}))


def _throughput(args):
    sys.path.insert(0, ROOT)
    from cqlreactor.testing.cluster import SimulatedCluster
    query = "SELECT v FROM bench.kv WHERE k = 1"
    variants = [("ours", ROOT, "native"), ("acsylla", ROOT, "acsylla"),
                ("theirs", ROOT, "theirs")]
    if args.base:
        variants.insert(0, ("ours-base", os.path.abspath(args.base), "native"))
    results = {}
    with SimulatedCluster(nodes=1) as sim:
        sim.prime(query, columns=[("v", "int")], rows=[{"v": 42}])
        for _ in range(args.rounds):
            for tasks in (1, 128):
                for name, root, mode in variants:
                    if mode == "theirs" and tasks == 1:
                        continue
                    requests = args.requests if tasks > 1 else args.requests // 4
                    if mode == "theirs":
                        requests = max(2000, requests // 10)
                    env = dict(os.environ, PYTHONPATH=root)
                    proc = subprocess.run(
                        [sys.executable, os.path.join(root, "benchmarks", "async_throughput.py"),
                         "--worker", "--mode", mode, "--contact", sim.contact_points[0],
                         "--port", str(sim.port), "--requests", str(requests),
                         "--tasks", str(tasks)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                        universal_newlines=True, timeout=600)
                    try:
                        r = json.loads(proc.stdout.strip().splitlines()[-1])
                    except (ValueError, IndexError):
                        print(name, tasks, "failed:", proc.stderr[-300:])
                        continue
                    results.setdefault((tasks, name), []).append(r)
    print("%-10s %5s %14s %8s %8s %10s" % ("impl", "tasks", "req/s median", "p50 ms", "p99 ms",
                                           "CPU us/req"))
    for (tasks, name), runs in sorted(results.items()):
        runs.sort(key=lambda r: r["rps"])
        mid = runs[len(runs) // 2]
        cpu = sorted(r["cpu_us_per_req"] for r in runs)[len(runs) // 2]
        print("%-10s %5d %14.0f %8.2f %8.2f %10.1f   (req/s %s)" % (
            name, tasks, mid["rps"], mid["p50_ms"], mid["p99_ms"], cpu,
            " ".join("%.0f" % r["rps"] for r in runs)))
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conns", type=int, default=20)
    parser.add_argument("--worker")
    parser.add_argument("--contacts")
    parser.add_argument("--port", type=int)
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--base")
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    if args.throughput:
        return _throughput(args)
    if args.worker:
        _worker(args.worker, args.contacts.split(","), args.port, args.conns)
        return 0
    sys.path.insert(0, ROOT)
    from cqlreactor.testing.cluster import SimulatedCluster
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = {}
    with SimulatedCluster(nodes=3) as sim:
        for _ in range(args.rounds):
            for impl in ("ours", "theirs"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--worker", impl, "--contacts",
                     ",".join(sim.contact_points), "--port", str(sim.port),
                     "--conns", str(args.conns)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                    universal_newlines=True, timeout=300)
                try:
                    results.setdefault(impl, []).append(
                        json.loads(proc.stdout.strip().splitlines()[-1]))
                except (ValueError, IndexError):
                    print(impl, "failed:", proc.stderr[-500:])
    for impl, runs in results.items():
        connect = sorted(r["connect_ms"] for r in runs)
        rss = sorted(r["rss_kb_per_cluster"] for r in runs)
        again = sorted(r["again_ms"] for r in runs)
        print("%-7s second connect() in the process: median %.1f ms (%.1f-%.1f)" % (
            impl, again[len(again) // 2], again[0], again[-1]))
        heap = sorted(r["heap_bytes_per_conn"] for r in runs)
        print("%-7s python heap per idle connection: median %.0f B" % (impl, heap[len(heap) // 2]))
        print("%-7s connect ms median %.1f (%.1f-%.1f)   RSS KiB per idle 1-node cluster "
              "median %.1f (%.1f-%.1f)" % (impl, connect[len(connect) // 2], connect[0],
                                           connect[-1], rss[len(rss) // 2], rss[0], rss[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
