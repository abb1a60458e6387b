"""``python -m cqlreactor demo``: what the driver is for, end to end, on every reactor here.

By default it starts the embedded fake DataStax Astra (``cqlreactor.testing.astra``: TLS nodes
behind an SNI proxy, a metadata service, a secure connect bundle written to a temporary
directory), then for each reactor this interpreter has:

1. runs the Astra example as a user writes it, ``Cluster(cloud={"secure_connect_bundle": ...},
   auth_provider=PlainTextAuthProvider(...))``, then again with ``"use_default_tempdir": True``;
2. runs a short mixed workload (prepared inserts, reads, updates, simple statements) with a
   progress bar;
3. prints requests, errors, req/s, p50/p99 latency, the TLS version and the protocol version.

Reactors the compatibility matrix gates off (or that are not installed) are listed with the
reason.  ``--bundle PATH --username U --password P`` runs the same against a real Astra
database, ``--cluster HOST`` against a self-hosted cluster; the demo's table is dropped at the
end.  Nothing is left behind: the fake Astra's processes and files are gone when it returns.
"""

import argparse
import collections
import sys
import time

__all__ = ["run", "main", "build_parser", "check_args"]

TABLE = "cqlreactor_demo"
FAKE_KEYSPACE = "demo"
FAKE_USER = "token"
FAKE_TOKEN = "AstraCS:fake-demo-token"          # the fake's own credential, not a secret

EXAMPLE = """\
    cluster = Cluster(cloud={"secure_connect_bundle": bundle},
                      auth_provider=PlainTextAuthProvider(username, password),
                      connection_class=reactor)
    session = cluster.connect()
    session.execute("SELECT release_version FROM system.local").one()
"""


# --- one target: where the demo connects ----------------------------------------------------

class _Target(object):
    """How to build a Cluster for one reactor (fake Astra, real Astra or a plain cluster)."""

    def __init__(self, label, bundle=None, username=None, password=None, hosts=None, port=9042,
                 keyspace=None, create_keyspace=False):
        self.label = label
        self.bundle = bundle
        self.username = username
        self.password = password
        self.hosts = hosts
        self.port = port
        self.keyspace = keyspace
        self.create_keyspace = create_keyspace

    @property
    def cloud(self):
        return self.bundle is not None

    def cluster(self, reactor, use_default_tempdir=False):
        from cqlreactor import Cluster, PlainTextAuthProvider
        auth = (PlainTextAuthProvider(self.username, self.password)
                if self.username is not None else None)
        if self.cloud:
            cloud = {"secure_connect_bundle": self.bundle}
            if use_default_tempdir:
                cloud["use_default_tempdir"] = True
            return Cluster(cloud=cloud, auth_provider=auth, connection_class=reactor)
        return Cluster(self.hosts, port=self.port, auth_provider=auth,
                       connection_class=reactor)


# --- the workload ---------------------------------------------------------------------------

class _Stats(object):
    """What one reactor's workload measured.  Callbacks only append (atomic under the GIL)."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.latencies = []
        self.errors = collections.Counter()
        self.requests = 0
        self.elapsed = 0.0
        self.tls = "-"
        self.protocol = "-"
        self.hosts = 0
        self.failure = None

    def percentile(self, fraction):
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def rate(self):
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


class _Progress(object):
    """A one-line progress bar; redrawn in place on a terminal, drawn once at the end otherwise."""

    WIDTH = 30

    def __init__(self, out, total, label):
        self.out = out
        self.total = max(1, total)
        self.label = label
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._last = -1

    def _line(self, done):
        filled = int(self.WIDTH * done / self.total)
        return "\r  %-9s [%s%s] %d/%d" % (self.label, "#" * filled, "." * (self.WIDTH - filled),
                                           done, self.total)

    def update(self, done):
        step = int(100 * done / self.total)
        if self.tty and step != self._last:
            self._last = step
            self.out.write(self._line(done))
            self.out.flush()

    def finish(self, done):
        self.out.write(self._line(done).lstrip("\r") if not self.tty else self._line(done))
        self.out.write("\n")


def _tls_version(session):
    for pool in session.get_pools():
        for conn in pool.get_connections():
            tls = getattr(conn, "tls", None)
            cipher = tls.cipher() if tls is not None else None
            if cipher:
                return cipher[1]
    return "none"


def _workload(session, keyspace, stats, requests, concurrency, out):
    """``requests`` mixed statements, at most ``concurrency`` in flight; fills ``stats``."""
    from cqlreactor import SimpleStatement
    table = "%s.%s" % (keyspace, TABLE)
    insert = session.prepare("INSERT INTO %s (reactor, k, v) VALUES (?, ?, ?)" % table)
    select = session.prepare("SELECT v FROM %s WHERE reactor = ? AND k = ?" % table)
    update = session.prepare("UPDATE %s SET v = ? WHERE reactor = ? AND k = ?" % table)
    name = stats.reactor
    latencies = stats.latencies
    errors = stats.errors
    clock = time.perf_counter

    def _ok(_rows, started):
        latencies.append(clock() - started)

    def _failed(exc, started):
        latencies.append(clock() - started)
        errors[type(exc).__name__] += 1

    progress = _Progress(out, requests, name)
    window = collections.deque()
    started_all = clock()
    for i in range(requests):
        kind = i % 10
        key = i // 2
        if kind < 4:
            args = (insert, (name, key, "value-%d" % i))
        elif kind < 7:
            args = (select, (name, key))
        elif kind < 9:
            args = (update, ("updated-%d" % i, name, key))
        else:
            args = (SimpleStatement("SELECT k, v FROM " + table + " WHERE reactor = %s LIMIT 5"),
                    (name,))
        started = clock()
        future = session.execute_async(*args)
        future.add_callbacks(_ok, _failed, callback_args=(started,), errback_args=(started,))
        window.append(future)
        if len(window) >= concurrency:
            _settle(window.popleft())
        progress.update(i + 1 - len(window))
    while window:
        _settle(window.popleft())
    stats.elapsed = clock() - started_all
    stats.requests = requests
    progress.finish(requests)


def _settle(future):
    try:
        future.result()
    except Exception:   # counted by the errback, by kind
        pass


# --- per reactor ----------------------------------------------------------------------------

def _prepare_schema(session, target):
    if target.create_keyspace:
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                        "'SimpleStrategy', 'replication_factor': 1}" % target.keyspace)
    session.execute("CREATE TABLE IF NOT EXISTS %s.%s (reactor text, k int, v text, "
                    "PRIMARY KEY (reactor, k))" % (target.keyspace, TABLE))


def _run_reactor(reactor, target, requests, concurrency, out):
    stats = _Stats(reactor)
    if target.cloud:
        # the example as written, then the same bundle extracted under the system temp dir
        with target.cluster(reactor) as cluster:
            row = cluster.connect().execute("SELECT release_version FROM system.local").one()
            out.write("  %-9s secure connect bundle: connected, release_version %s\n"
                      % (reactor, row[0]))
    with target.cluster(reactor, use_default_tempdir=target.cloud) as cluster:
        session = cluster.connect()
        if target.cloud:
            out.write("  %-9s  ... with use_default_tempdir: connected\n" % reactor)
        _prepare_schema(session, target)
        stats.hosts = len(cluster.metadata.all_hosts())
        stats.protocol = "v%d" % cluster.protocol_version
        stats.tls = _tls_version(session)
        _workload(session, target.keyspace, stats, requests, concurrency, out)
    return stats


def _table(results, out):
    header = ("reactor", "requests", "errors", "req/s", "p50 ms", "p99 ms", "TLS", "protocol")
    rows = []
    for s in results:
        if s.failure is not None:
            rows.append((s.reactor, "FAILED", "-", "-", "-", "-", "-", "-"))
            continue
        errors = sum(s.errors.values())
        detail = "" if not errors else " (%s)" % ", ".join(
            "%s %d" % kv for kv in sorted(s.errors.items()))
        rows.append((s.reactor, str(s.requests), "%d%s" % (errors, detail), "%.0f" % s.rate,
                     "%.2f" % (1000 * s.percentile(0.50)), "%.2f" % (1000 * s.percentile(0.99)),
                     s.tls, s.protocol))
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = "  " + "  ".join("%%-%ds" % w for w in widths)
    for r in [header, tuple("-" * w for w in widths)] + rows:
        out.write((line % tuple(r)).rstrip() + "\n")


def _reactors(wanted, out):
    """The reactors to run, after explaining each one that cannot run here."""
    from cqlreactor.reactors import matrix
    chosen = []
    for name in matrix.reactor_names():
        if wanted and name not in wanted:
            continue
        state = matrix.reactor_status(name)
        if state.state == "available":
            chosen.append(name)
        elif state.state == "gated":
            out.write("  %-9s gated on this interpreter: %s\n            see %s; override "
                      "(unsupported): %s=%s\n" % (name, state.reason, state.link,
                                                  matrix.ALLOW_ENV, name))
        else:
            out.write("  %-9s not available: %s\n            install: %s\n"
                      % (name, state.reason, state.install))
    unknown = sorted(set(wanted or ()) - set(matrix.reactor_names()))
    if unknown:
        raise SystemExit("unknown reactor(s) %s; choose from %s"
                         % (", ".join(unknown), ", ".join(matrix.reactor_names())))
    return chosen


def _run_target(target, args, out):
    out.write("reactors on this interpreter (compat_matrix.yaml; "
              "python -m cqlreactor doctor for details):\n")
    reactors = _reactors(args.reactor, out)
    if target.cloud:
        out.write("\nthe Astra example, on every available reactor:\n\n%s\n" % EXAMPLE)
    results = []
    for reactor in reactors:
        try:
            results.append(_run_reactor(reactor, target, args.requests, args.concurrency, out))
        except Exception as exc:   # report every reactor, then fail overall
            failed = _Stats(reactor)
            failed.failure = "%s: %s" % (type(exc).__name__, exc)
            results.append(failed)
            out.write("  %-9s FAILED: %s\n" % (reactor, failed.failure))
    if reactors:
        _drop_table(target, reactors[0])
    out.write("\n%s: %d mixed requests per reactor, %d in flight\n"
              % (target.label, args.requests, args.concurrency))
    _table(results, out)
    failures = sum(1 for s in results if s.failure is not None or s.errors)
    return results, failures


def _drop_table(target, reactor):
    try:
        with target.cluster(reactor, use_default_tempdir=target.cloud) as cluster:
            cluster.connect().execute("DROP TABLE IF EXISTS %s.%s" % (target.keyspace, TABLE))
    except Exception:   # best effort: the demo's own table, on a database we do not own
        pass


# --- entry points ---------------------------------------------------------------------------

def build_parser(parser=None):
    """The demo's options (``python -m cqlreactor demo -h``)."""
    parser = parser or argparse.ArgumentParser(prog="python -m cqlreactor demo")
    parser.description = ("Start the embedded fake DataStax Astra, connect through its secure "
                          "connect bundle on every available reactor, run a short mixed workload "
                          "and print a table per reactor. With --bundle: the same against a real "
                          "Astra database; with --cluster: against a self-hosted cluster.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bundle", metavar="PATH",
                       help="a real Astra database's secure connect bundle (with --username "
                            "and --password: 'token' and the AstraCS:... token)")
    where.add_argument("--cluster", metavar="HOST", action="append",
                       help="a self-hosted cluster's contact point (repeat for more)")
    parser.add_argument("--username", help="PlainTextAuthProvider username")
    parser.add_argument("--password", help="PlainTextAuthProvider password (or Astra token)")
    parser.add_argument("--port", type=int, default=9042, help="with --cluster: the CQL port "
                                                               "(default 9042)")
    parser.add_argument("--keyspace", help="keyspace for the demo's table (default: the "
                                           "bundle's; with --cluster: cqlreactor_demo, created "
                                           "with SimpleStrategy RF 1)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per reactor (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="requests in flight (default 64)")
    parser.add_argument("--reactor", action="append", metavar="NAME",
                        help="run only this reactor (repeat for more; default: every available)")
    return parser


def check_args(args, parser):
    if (args.username is None) != (args.password is None):
        parser.error("--username and --password go together")
    if args.bundle is not None and args.username is None:
        parser.error("--bundle needs --username and --password (for Astra: --username token "
                     "--password AstraCS:...)")
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")


def _external_target(args):
    if args.bundle is not None:
        from cqlreactor.cloud.bundle import open_bundle
        keyspace = args.keyspace
        if keyspace is None:
            bundle = open_bundle(args.bundle, use_default_tempdir=True)
            try:
                keyspace = bundle.keyspace
            finally:
                bundle.cleanup()
        if not keyspace:
            raise SystemExit("the bundle names no keyspace: pass --keyspace (one that exists "
                             "in the Astra database)")
        return _Target("Astra (%s)" % args.bundle, bundle=args.bundle, username=args.username,
                       password=args.password, keyspace=keyspace)
    return _Target("cluster %s" % ",".join(args.cluster), hosts=args.cluster, port=args.port,
                   username=args.username, password=args.password,
                   keyspace=args.keyspace or "cqlreactor_demo",
                   create_keyspace=args.keyspace is None)


def run(args=None, out=None):
    """Run the demo; 0 when every reactor ran its workload without an error."""
    out = out or sys.stdout
    if args is None or isinstance(args, list):
        parser = build_parser()
        args = parser.parse_args(args or [])
        check_args(args, parser)
    if args.bundle is not None or args.cluster:
        from cqlreactor.core.errors import DriverException
        try:
            target = _external_target(args)
        except (DriverException, OSError) as exc:   # a bad bundle: its error names the fix
            out.write("demo: %s\n" % (exc,))
            return 2
        _, failures = _run_target(target, args, out)
        return 1 if failures else 0

    from cqlreactor import selfcheck
    status = selfcheck.run(verbose=False)
    out.write("selfcheck: %s (the sans-IO core in memory; python -m cqlreactor selfcheck)\n"
              % ("all checks passed" if not status else "FAILED"))
    try:
        from cqlreactor.testing.astra import FakeAstra
    except ImportError as exc:
        out.write("the demo's fake Astra needs the 'testing' extra (%s): pip install "
                  "'cqlreactor[testing]'\n" % exc)
        return 1
    started = time.monotonic()
    with FakeAstra(nodes=3, username=FAKE_USER, password=FAKE_TOKEN,
                   keyspace=FAKE_KEYSPACE) as astra:
        out.write("\nfake Astra: 3 TLS nodes behind the SNI proxy %s, metadata service %s,\n"
                  "bundle %s (removed at the end)  [%.1fs]\n\n"
                  % (astra.proxy_address, astra.metadata_url, astra.bundle_path,
                     time.monotonic() - started))
        target = _Target("fake Astra", bundle=astra.bundle_path, username=FAKE_USER,
                         password=FAKE_TOKEN, keyspace=FAKE_KEYSPACE,
                         create_keyspace=False)   # FakeAstra made it: Astra refuses it over CQL
        _, failures = _run_target(target, args, out)
    out.write("demo: %s\n" % ("all reactors passed" if not failures
                              else "%d reactor(s) FAILED" % failures))
    return 1 if (failures or status) else 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
