"""Steady load with exact accounting, and the faults of the simulated cluster, for the fault
matrix (tests/integration/test_fault_matrix.py) and the soak (``python -m benchmarks.soak``).

    load = Load(session, statement, in_flight=32, timeout=2.0)
    load.start()
    FAULTS["restart_node"](FaultContext(sim, cluster))
    load.wait_every_host_serves(hosts, within=30.0)
    stats = load.stop()
    assert stats.lost == 0 and stats.issued == stats.succeeded + stats.failed

Every request the load issues is accounted for exactly once: it succeeds, fails (counted by
exception type), or is still pending when ``stop()`` gives up waiting (``never_completed``);
its duration is kept so a caller can check that nothing outlived its timeout.
"""

import collections
import os
import signal
import threading
import time

__all__ = ["Load", "LoadStats", "FaultContext", "FAULTS", "DEFAULT_CELLS", "reactor_sleep",
           "kill_and_restart", "EXPLAINED_FAILURES", "problems"]

#: what a fault may make a request end with; any other exception is a bug
EXPLAINED_FAILURES = frozenset([
    "OperationTimedOut", "NoHostAvailable", "ConnectionException", "ConnectionDefunct",
    "ConnectionShutdown", "ConnectionBusy", "ProtocolError", "ChecksumMismatch",
    "OverloadedErrorMessage", "IsBootstrappingErrorMessage", "Unavailable"])


def problems(stats):
    """What is wrong with a run's LoadStats, as sentences (empty: every request ended once,
    none late, only explained failures, some succeeded)."""
    found = []
    if stats.never_completed:
        found.append("%d requests never completed" % stats.never_completed)
    if stats.lost:
        found.append("%d requests lost (issued %d, succeeded %d, failed %d)"
                     % (stats.lost, stats.issued, stats.succeeded, stats.failed))
    if stats.late:
        found.append("%d requests outlived their timeout by more than the margin (longest "
                     "%.2f s)" % (len(stats.late), max(stats.late)))
    unexplained = sorted(set(stats.failures) - EXPLAINED_FAILURES)
    if unexplained:
        found.append("failures no fault explains: %s" % ", ".join(
            "%s x%d" % (name, stats.failures[name]) for name in unexplained))
    if not stats.succeeded:
        found.append("no request succeeded")
    return found

_monotonic = time.monotonic


def reactor_sleep(cluster, seconds):
    """Pause the calling thread through ``cluster``'s reactor: a reactor without a loop
    thread of its own (gevent, eventlet) runs only while its thread waits in it, so a plain
    ``time.sleep`` there would stop every request (and its timeout) for that long."""
    reactor = getattr(cluster, "reactor", None)
    make_event = getattr(reactor, "make_event", None)
    if make_event is None:          # cassandra-driver, or not connected
        time.sleep(seconds)
    else:
        make_event().wait(seconds)


class LoadStats(object):
    """What a Load saw (a snapshot).

    Attributes:
        issued, succeeded, failed: request counts; ``failures``: {exception type: count};
        never_completed: issued but neither succeeded nor failed when the snapshot was taken;
        max_duration: the longest time from issue to completion; late: durations over
        ``timeout + margin`` (should be empty); by_host: {host address: successes}.
    """

    def __init__(self, issued, succeeded, failures, never_completed, max_duration, late,
                 by_host, faults=()):
        self.issued = issued
        self.succeeded = succeeded
        self.failures = dict(failures)
        self.failed = sum(self.failures.values())
        self.never_completed = never_completed
        self.max_duration = max_duration
        self.late = list(late)
        self.by_host = dict(by_host)
        self.faults = list(faults)

    @property
    def lost(self):
        """Requests with no outcome: issued but neither succeeded nor failed."""
        return self.issued - self.succeeded - self.failed

    def as_dict(self):
        return {"issued": self.issued, "succeeded": self.succeeded, "failed": self.failed,
                "failures": self.failures, "never_completed": self.never_completed,
                "lost": self.lost, "max_duration": round(self.max_duration, 3),
                "late": len(self.late), "by_host": self.by_host, "faults": self.faults}

    def __repr__(self):
        return "LoadStats(%r)" % (self.as_dict(),)


class Load(object):
    """Keep ``in_flight`` requests of ``statement`` running on ``session`` until stopped.

    One issuing thread (a real OS thread, also under gevent/eventlet: it blocks on a
    semaphore the callbacks release); each request's outcome arrives on its callbacks. The
    waits of the calling thread (``wait_*``, ``stop``) go through the reactor
    (:func:`reactor_sleep`), so a gevent or eventlet hub in that thread keeps running.

    Args:
        session: a cqlreactor (or cassandra-driver) Session.
        statement: what every request executes (a prepared statement, a query string).
        in_flight: requests kept running at once.
        timeout: the per-request timeout handed to ``execute_async``.
        margin: how far past ``timeout`` a completion counts as late.
    """

    def __init__(self, session, statement, in_flight=32, timeout=2.0, margin=2.0,
                 parameters=None):
        self.session = session
        self.statement = statement
        self.parameters = parameters
        self.in_flight = in_flight
        self.timeout = timeout
        self.margin = margin
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(in_flight)
        self._stopping = threading.Event()
        self._thread = None
        self._issued = 0
        self._succeeded = 0
        self._failures = collections.Counter()
        self._by_host = collections.Counter()
        self._pending = {}          # request number -> issue time
        self._max_duration = 0.0
        self._late = []

    # -- running ---------------------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._issue_loop, name="cqlreactor-load")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _issue_loop(self):
        number = 0
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            if self._stopping.is_set():
                self._slots.release()
                break
            number += 1
            with self._lock:
                self._issued += 1
                self._pending[number] = _monotonic()
            try:
                future = self.session.execute_async(self.statement, self.parameters,
                                                    timeout=self.timeout)
            except Exception as exc:    # refused at once (no host, shut down): a failure
                self._done(number, None, exc)
                time.sleep(0.001)       # as an application would, not a busy loop
                continue
            future.add_callbacks(self._succeeded_cb, self._failed_cb,
                                 callback_args=(number, future), errback_args=(number, future))

    def _succeeded_cb(self, _rows, number, future):
        self._done(number, future, None)

    def _failed_cb(self, exc, number, future):
        self._done(number, future, exc)

    def _done(self, number, future, exc):
        now = _monotonic()
        with self._lock:
            started = self._pending.pop(number, None)
            if started is None:     # a second outcome for one request: count it as a failure
                self._failures["second outcome"] += 1
                return
            duration = now - started
            if duration > self._max_duration:
                self._max_duration = duration
            if duration > self.timeout + self.margin:
                self._late.append(duration)
            if exc is None:
                self._succeeded += 1
                host = getattr(future, "coordinator_host", None)
                self._by_host[_host_address(host)] += 1
            else:
                self._failures[type(exc).__name__] += 1
        self._slots.release()

    # -- observing ---------------------------------------------------------------------------

    def stats(self):
        with self._lock:
            return LoadStats(self._issued, self._succeeded, self._failures, len(self._pending),
                             self._max_duration, self._late, self._by_host)

    def successes_by_host(self):
        with self._lock:
            return dict(self._by_host)

    def wait_every_host_serves(self, hosts, at_least=5, within=30.0):
        """Wait until each of ``hosts`` (addresses) answered ``at_least`` more requests than
        when called. Returns the seconds it took; raises AssertionError naming the hosts that
        did not within ``within`` seconds."""
        start = _monotonic()
        base = self.successes_by_host()
        deadline = start + within
        while True:
            now_counts = self.successes_by_host()
            behind = [h for h in hosts if now_counts.get(h, 0) - base.get(h, 0) < at_least]
            if not behind:
                return _monotonic() - start
            if _monotonic() > deadline:
                raise AssertionError("throughput did not recover within %.0f s on %s (successes "
                                     "by host: %s)" % (within, ", ".join(behind), now_counts))
            self._sleep(0.05)

    def _sleep(self, seconds):
        reactor_sleep(getattr(self.session, "cluster", None), seconds)

    def wait_successes(self, count, within=30.0):
        """Wait until ``count`` more requests succeeded than when called."""
        base = self.stats().succeeded
        deadline = _monotonic() + within
        while self.stats().succeeded - base < count:
            if _monotonic() > deadline:
                raise AssertionError("fewer than %d requests succeeded in %.0f s: %r"
                                     % (count, within, self.stats()))
            self._sleep(0.05)

    def stop(self, drain=None):
        """Stop issuing, wait (at most ``drain`` seconds, default timeout + margin + 1) for
        the requests in flight to end, and return the final LoadStats."""
        self._stopping.set()
        deadline = _monotonic() + 10.0
        while self._thread is not None and self._thread.is_alive() and _monotonic() < deadline:
            self._sleep(0.02)
        drain = self.timeout + self.margin + 1.0 if drain is None else drain
        deadline = _monotonic() + drain
        while self.stats().never_completed and _monotonic() < deadline:
            self._sleep(0.02)
        return self.stats()


def _host_address(host):
    if host is None:
        return "?"
    endpoint = getattr(host, "endpoint", None)
    address = getattr(endpoint, "address", None) or getattr(host, "address", None)
    return str(address if address is not None else host)


# --- faults ---------------------------------------------------------------------------------

class FaultContext(object):
    """What a fault acts on: the simulated cluster, the client Cluster under load, and the
    request timeout (faults "past the timeout" last longer than it).

    ``restart_process`` (optional) kills the simulator's process with SIGKILL and starts a new
    one on the same port; it returns the new SimulatedCluster. Without it the
    ``kill_process`` fault is not available.
    """

    def __init__(self, sim, cluster, timeout=2.0, down_for=1.0, restart_process=None):
        self.sim = sim
        self.cluster = cluster
        self.timeout = timeout
        self.down_for = down_for
        self.restart_process = restart_process

    def sleep(self, seconds):
        reactor_sleep(self.cluster, seconds)

    def control_host_index(self):
        conn = self.cluster.control_connection.connection
        address = conn.endpoint.address
        return self.sim.contact_points.index(address)


def _restart_node(ctx, index=1):
    ctx.sim.stop_node(index)
    ctx.sleep(ctx.down_for)
    ctx.sim.start_node(index)


def _pause_past_timeout(ctx):
    seconds = ctx.timeout * 1.5
    ctx.sim.stall(1, seconds)
    ctx.sleep(seconds)


def _stall_short(ctx):
    seconds = ctx.timeout / 3.0
    ctx.sim.stall(2, seconds)
    ctx.sleep(seconds)


def _drop_connections(ctx):
    ctx.sim.drop_connections()


def _corrupt_frame(ctx):
    for i in range(len(ctx.sim.contact_points)):
        ctx.sim.corrupt_next_frame(i)


def _control_host_dies(ctx):
    _restart_node(ctx, ctx.control_host_index())


def _all_nodes_down(ctx):
    nodes = range(len(ctx.sim.contact_points))
    for i in nodes:
        ctx.sim.stop_node(i)
    ctx.sleep(ctx.down_for)
    for i in nodes:
        ctx.sim.start_node(i)


def _close_after(ctx):
    ctx.sim.close_after(0, 10)


def _kill_process(ctx):
    if ctx.restart_process is None:
        raise RuntimeError("kill_process needs FaultContext(restart_process=...)")
    ctx.sim = ctx.restart_process()


#: name -> fault(ctx): inject the fault, let it last, heal it (the load keeps running)
FAULTS = collections.OrderedDict([
    ("restart_node", _restart_node),
    ("kill_process", _kill_process),
    ("pause_past_timeout", _pause_past_timeout),
    ("stall_short", _stall_short),
    ("drop_connections", _drop_connections),
    ("close_after", _close_after),
    ("corrupt_frame", _corrupt_frame),
    ("control_host_dies", _control_host_dies),
    ("all_nodes_down", _all_nodes_down),
])

#: the cells of the default (fast) run; the rest run under the ``slow`` mark
DEFAULT_CELLS = ("restart_node", "corrupt_frame")


def kill_and_restart(sim):
    """SIGKILL ``sim``'s process (every node dies at once, no goodbye) and start a new
    SimulatedCluster with the same nodes on the same port; returns it."""
    from cqlreactor.testing.cluster import SimulatedCluster
    port, nodes = sim.port, sim.nodes
    os.kill(sim.pid, signal.SIGKILL)
    sim.process.wait()
    sim.stop()
    fresh = SimulatedCluster(nodes=nodes, port=port, protocol_versions=sim.protocol_versions)
    deadline = _monotonic() + 30.0
    while True:
        try:
            return fresh.start()
        except RuntimeError:        # the port not free yet
            if _monotonic() > deadline:
                raise
            time.sleep(0.2)
