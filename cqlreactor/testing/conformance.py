"""The reactor conformance suite, importable: a third-party reactor runs the same tests as the
built-in ones (as ``trio.testing``'s stream checks let a stream implementation test itself).

In the reactor's own test suite (pytest)::

    from cqlreactor.testing.conformance import ReactorConformance
    from my_package import MyReactor            # a cqlreactor.reactors.base.Reactor subclass

    class TestMyReactor(ReactorConformance):
        reactor_under_test = MyReactor

pytest then collects every check below for ``MyReactor``: the CQL handshake (v4, v5, version
fallback on a new connection, password authentication, lz4), server errors and events, 20000
pipelined requests, 16 MiB values both ways, requests from many threads, timers (order,
cancellation, from other threads), callbacks that raise, closing and dropped connections,
request timeouts and heartbeats, refused, unresolvable and silent peers, ``os.fork()``, asyncio
interop, write coalescing, ``stop()`` (threads, fds and sockets released, nothing queued before
it runs or restarts the loop) and a restart, and interpreter exit with a live loop.  The
servers are real: a :class:`~cqlreactor.testing.cluster.SimulatedCluster` process (one node,
started once per test class, its primes cleared after each test) and plain loopback sockets
for the refused/silent peers.  Every wait uses the reactor's own ``make_event()``, so a green
reactor is exercised the way its users run it.

To run the suite over several reactors, override the ``reactor_class`` fixture with a
parametrised one (tests/reactors/test_conformance.py does that for every reactor of
compat_matrix.yaml).  Class attributes tune it: ``reactor_under_test``, and
``shares_the_test_thread`` (True for a reactor whose loop is the calling thread's green hub,
like gevent's and eventlet's: the asyncio interop check cannot share that thread and is
skipped).  The helpers (:class:`Collector`, :func:`query`, :func:`endpoint_of`, ...) are
public for a reactor's further tests.  Needs pytest.

Why one module over 800 lines: the suite is one test class that a third party subclasses
once; its checks and the helpers they share stay together so that one import is the whole
contract.
"""

import errno
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings

import pytest

from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import (ConnectionDefunct, ConnectionException, ConnectionShutdown,
                                    InvalidRequest, OperationTimedOut,
                                    UnsupportedProtocolVersion)
from cqlreactor.core.messages import QueryMessage, QueryParameters
from cqlreactor.reactors.driver import ReactorConnection

__all__ = ["ReactorConformance", "Collector", "endpoint_of", "query", "rows_of", "roundtrip",
           "execute", "pause", "wait_until", "prime_numbered", "send_numbered",
           "check_numbered", "delayed_requests", "free_port", "run_script", "N_PRIMES"]

N_PRIMES = 50


def endpoint_of(cluster, server_hostname=None):
    """The Endpoint of a simulated cluster's first node."""
    return Endpoint(cluster.contact_points[0], cluster.port, server_hostname=server_hostname)


def query(text, values=None, consistency=ConsistencyLevel.ONE):
    """A QUERY request message."""
    return QueryMessage(text, QueryParameters(consistency, values=values))


class Collector(object):
    """Collects request callbacks; ``wait()`` uses the reactor's own wait primitive (so it
    yields to the hub under gevent/eventlet)."""

    def __init__(self, reactor, expected):
        self.expected = expected
        self.results = {}
        self.event = reactor.make_event()
        self.threads = set()

    def callback(self, key):
        def done(result):
            assert key not in self.results, "callback for %r ran twice" % (key,)
            self.results[key] = result
            self.threads.add(threading.get_ident())
            if len(self.results) >= self.expected:
                self.event.set()
        return done

    def wait(self, timeout=30.0):
        return self.event.wait(timeout)


def rows_of(result):
    """The rows of a result, raising it when it is an exception."""
    if isinstance(result, BaseException):
        raise result
    return result.rows


def prime_numbered(cluster, prefix, n=N_PRIMES):
    """Prime ``SELECT v FROM <prefix><i>`` to answer the single int row ``i``."""
    for i in range(n):
        cluster.prime("SELECT v FROM %s%d" % (prefix, i), rows=[[i]], columns=[("v", "int")])


def roundtrip(reactor, conn, text="SELECT v FROM rt0", timeout=10.0):
    """Send one query and wait for its answer (the response or the exception)."""
    collector = Collector(reactor, 1)
    conn.send(query(text), collector.callback(0), timeout=timeout)
    assert collector.wait(timeout + 5), "no answer from %s" % (conn,)
    return collector.results[0]


def send_numbered(reactor, conn, prefix, count, timeout=60.0):
    collector = Collector(reactor, count)
    for i in range(count):
        conn.send(query("SELECT v FROM %s%d" % (prefix, i % N_PRIMES)), collector.callback(i),
                  timeout=timeout)
    return collector


def check_numbered(collector, count):
    assert len(collector.results) == count
    wrong = [(i, r) for i, r in collector.results.items()
             if isinstance(r, BaseException) or r.rows != [(i % N_PRIMES,)]]
    assert not wrong, "%d wrong answers, first: %r" % (len(wrong), wrong[:3])


def execute(reactor, conn, text, values=None, timeout=60.0):
    """Send one query and wait; the response, or raise the error."""
    collector = Collector(reactor, 1)
    conn.send(query(text, values=values), collector.callback(0), timeout=timeout)
    assert collector.wait(timeout + 30), "no answer to %r" % (text,)
    result = collector.results[0]
    if isinstance(result, BaseException):
        raise result
    return result


def delayed_requests(reactor, cluster, conn, count, delay=30):
    """``count`` requests the simulated node answers only after ``delay`` seconds."""
    cluster.prime("SELECT v FROM slow", rows=[[1]], columns=[("v", "int")], delay=delay)
    collector = Collector(reactor, count)
    for i in range(count):
        conn.send(query("SELECT v FROM slow"), collector.callback(i), timeout=None)
    return collector


def pause(reactor, seconds):
    """Sleep with the reactor's primitive (time.sleep would block a green hub)."""
    reactor.make_event().wait(seconds)


def wait_until(reactor, predicate, timeout=10.0):
    """Poll ``predicate`` (pausing with the reactor's primitive); its last value."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        pause(reactor, 0.01)
    return predicate()


def free_port():
    """A loopback TCP port nobody listens on (a moment ago)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _watched_with_slow_requests(reactor, cluster, count, served):
    """A connection with ``count`` slow requests of which the node has seen ``served``, and the
    list its close listener appends to."""
    conn = reactor.connect(endpoint_of(cluster))
    closed = []
    conn.add_close_listener(lambda c, exc: closed.append(exc))
    collector = delayed_requests(reactor, cluster, conn, count)
    assert wait_until(reactor, lambda: len(cluster.served(0)) >= served)
    return conn, closed, collector


def _open_fds():
    """The fd numbers open in this process (None where /proc/self/fd is missing)."""
    try:
        return set(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _yield_to_the_hub(reactor, seconds):
    """Sleep so that a green hub (whose loop is this thread) runs what it has queued, without
    using the reactor (a stopped reactor must not be touched)."""
    if reactor.name == "gevent":
        import gevent
        gevent.sleep(seconds)
    elif reactor.name == "eventlet":
        import eventlet
        eventlet.sleep(seconds)
    else:
        time.sleep(seconds)


def _check_released(reactor, threads_before, fds_before):
    """No thread started since ``threads_before`` is alive (a short-lived one may still be
    ending), and no fd opened since ``fds_before`` is still open."""
    deadline = time.monotonic() + 5
    while True:
        _yield_to_the_hub(reactor, 0.05)
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        fds = _open_fds()
        leaked = None if fds is None or fds_before is None else fds - fds_before
        if (not threads and not leaked) or time.monotonic() > deadline:
            break
    assert not threads, "threads alive after stop(): %r" % (threads,)
    if leaked:
        details = {}
        for fd in sorted(leaked):
            try:
                details[fd] = os.readlink("/proc/self/fd/%s" % fd)
            except OSError:
                pass
        assert not details, "fds open after stop(): %r" % (details,)


def run_script(script, args=(), timeout=60, expect="ok"):
    """Run ``script`` (Python source) with ``args`` in a child interpreter that imports this
    cqlreactor, and check it exited 0 printing only ``expect``; what it printed (the end of
    it) is the failure message.  For checks that need a fresh process (monkey-patching)."""
    import cqlreactor
    env = dict(os.environ)
    env["PYTHONPATH"] = _import_root(cqlreactor) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", script] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=timeout)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, "exit code %d:\n%s" % (proc.returncode, text[-3000:])
    assert proc.stdout.strip() == expect, text[-3000:]


def _import_root(module):
    """The sys.path entry ``module`` (a module object) was imported from."""
    root = os.path.dirname(os.path.abspath(module.__file__))
    # a package's file is its __init__.py, one level further down (the package's own directory
    # on sys.path would let cqlreactor/concurrent.py shadow the standard library's concurrent)
    levels = module.__name__.count(".") + (1 if hasattr(module, "__path__") else 0)
    for _ in range(levels):
        root = os.path.dirname(root)
    return root


def _reactor_in_a_new_interpreter(cls):
    """(Python statements making ``reactor``, sys.path entries) that rebuild ``cls`` in a child
    interpreter: a built-in reactor by its compat-matrix name (gate opened, as the parent's
    test did), any other by importing its module."""
    import cqlreactor
    path = [_import_root(cqlreactor)]
    if cls.__module__.startswith("cqlreactor.") and cls.name is not None:
        return ("from cqlreactor.reactors import get_reactor_class\n"
                "reactor = get_reactor_class(%r, allow_unsupported_reactors=True)()" % (cls.name,),
                path)
    if "<locals>" in cls.__qualname__:
        pytest.skip("%r is defined inside a function: a new interpreter cannot import it" % cls)
    path.append(_import_root(sys.modules[cls.__module__]))
    return "import %s as m\nreactor = m.%s()" % (cls.__module__, cls.__qualname__), path


def _class_cluster(request, **options):
    """A SimulatedCluster(**options) shared by the tests of one test class and stopped after
    its last test.  (Not a class-scoped fixture: pytest >= 9 deprecates those as instance
    methods, and the classmethod form it wants fails on the pytest versions of Python 3.6.)"""
    from cqlreactor.testing.cluster import SimulatedCluster
    holder = request.node.getparent(pytest.Class) or request.node
    clusters = holder.__dict__.setdefault("_conformance_clusters", {})
    key = tuple(sorted(options.items()))
    if key not in clusters:
        cluster = SimulatedCluster(**options).start()
        clusters[key] = cluster
        holder.addfinalizer(cluster.stop)
    return clusters[key]


class ReactorConformance(object):
    """The suite as a pytest test class; subclass it with ``reactor_under_test`` set."""

    #: the Reactor subclass under test (or override the ``reactor_class`` fixture)
    reactor_under_test = None
    #: True when the reactor's loop is the test thread's green hub (see the module docstring);
    #: None: true for the reactors named "gevent" and "eventlet"
    shares_the_test_thread = None

    @pytest.fixture
    def reactor_class(self):
        """The Reactor class under test."""
        if self.reactor_under_test is None:
            raise TypeError("%s: set reactor_under_test to the Reactor class to test, or "
                            "override the reactor_class fixture" % (type(self).__name__,))
        return self.reactor_under_test

    @pytest.fixture
    def reactor(self, reactor_class):
        """A fresh reactor instance, stopped after the test."""
        from cqlreactor.reactors import matrix
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
            instance = reactor_class()
        yield instance
        instance.stop()

    @pytest.fixture
    def sim(self, request):
        """One single-node simulated cluster for the class."""
        return _class_cluster(request, nodes=1)

    @pytest.fixture
    def cluster(self, sim):
        """The class's simulated cluster, its primes and faults cleared after the test."""
        yield sim
        sim.clear()

    def _shares_the_test_thread(self, reactor):
        if self.shares_the_test_thread is None:
            return reactor.name in ("gevent", "eventlet")
        return self.shares_the_test_thread

    # --- handshake -------------------------------------------------------------------------------

    @pytest.mark.parametrize("version", [4, 5])
    def test_handshake_and_query(self, reactor, cluster, version):
        cluster.prime("SELECT v FROM rt0", rows=[[7]], columns=[("v", "int")])
        conn = reactor.connect(endpoint_of(cluster), protocol_version=version)
        try:
            assert isinstance(conn, ReactorConnection)
            assert conn.protocol_version == version
            assert conn.ready.supported["CQL_VERSION"]
            assert rows_of(roundtrip(reactor, conn)) == [(7,)]
            assert conn.in_flight == 0 and not conn.is_defunct and not conn.is_closed
        finally:
            conn.close()

    def test_default_version_is_5(self, reactor, cluster):
        conn = reactor.connect(endpoint_of(cluster))
        assert conn.protocol_version == 5
        conn.close()

    @pytest.fixture
    def v4_only_cluster(self, request):
        return _class_cluster(request, nodes=1, protocol_versions=(3, 4))

    def test_version_fallback_on_a_new_connection(self, reactor, v4_only_cluster):
        v4_only_cluster.prime("SELECT v FROM rt0", rows=[[4]], columns=[("v", "int")])
        conn = reactor.connect(endpoint_of(v4_only_cluster))
        try:
            assert conn.protocol_version == 4
            assert rows_of(roundtrip(reactor, conn)) == [(4,)]
        finally:
            conn.close()
        with pytest.raises(UnsupportedProtocolVersion) as info:
            reactor.connect(endpoint_of(v4_only_cluster), protocol_version=5)
        assert info.value.retry_version == 4
        assert str(endpoint_of(v4_only_cluster)) in str(info.value)

    def test_server_error_is_raised_as_its_class(self, reactor, cluster):
        cluster.prime("SELECT v FROM broken", error={"code": "invalid", "message": "no such table"})
        conn = reactor.connect(endpoint_of(cluster))
        try:
            result = roundtrip(reactor, conn, "SELECT v FROM broken")
            assert isinstance(result, InvalidRequest)
            assert "no such table" in str(result) and conn.host in str(result)
            cluster.prime("SELECT v FROM rt0", rows=[[2]], columns=[("v", "int")])
            assert rows_of(roundtrip(reactor, conn)) == [(2,)]   # still usable after the error
            assert not conn.is_defunct
        finally:
            conn.close()

    def test_server_events_reach_the_listener(self, reactor, cluster):
        from cqlreactor.core.messages import RegisterMessage
        listener_conn = reactor.connect(endpoint_of(cluster))
        other = reactor.connect(endpoint_of(cluster))
        events = []
        got = reactor.make_event()
        listener_conn.set_event_listener(lambda message: (events.append(message), got.set()))
        try:
            collector = Collector(reactor, 1)
            listener_conn.send(RegisterMessage(["SCHEMA_CHANGE"]), collector.callback(0),
                               timeout=10)
            assert collector.wait(15) and not isinstance(collector.results[0], BaseException)
            name = "events_%s" % os.urandom(6).hex()     # new each time: IF NOT EXISTS must create
            execute(reactor, other, "CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % name)
            assert got.wait(10), "no EVENT arrived"
            assert events[0].event_type == "SCHEMA_CHANGE" and events[0].keyspace == name
        finally:
            listener_conn.close()
            other.close()

    @pytest.mark.parametrize("version", [4, 5])
    def test_lz4_compression(self, reactor, cluster, version):
        pytest.importorskip("lz4")
        prime_numbered(cluster, "lz")
        conn = reactor.connect(endpoint_of(cluster), protocol_version=version, compression="lz4")
        try:
            assert conn.ready.compression == "lz4"
            collector = send_numbered(reactor, conn, "lz", 2000)
            assert collector.wait(60)
            check_numbered(collector, 2000)
        finally:
            conn.close()

    @pytest.fixture
    def auth_cluster(self, request):
        return _class_cluster(request, nodes=1, auth=("cassandra", "secret"))

    def test_password_authentication(self, reactor, auth_cluster):
        from cqlreactor.core.auth import PlainTextAuthProvider
        from cqlreactor.core.errors import AuthenticationFailed
        auth_cluster.prime("SELECT v FROM rt0", rows=[[8]], columns=[("v", "int")])
        for version in (4, 5):
            conn = reactor.connect(endpoint_of(auth_cluster), protocol_version=version,
                                   authenticator=PlainTextAuthProvider("cassandra", "secret"))
            assert rows_of(roundtrip(reactor, conn)) == [(8,)]
            conn.close()
        with pytest.raises(AuthenticationFailed) as info:
            reactor.connect(endpoint_of(auth_cluster),
                            authenticator=PlainTextAuthProvider("cassandra", "wrong"))
        assert str(endpoint_of(auth_cluster)) in str(info.value)
        with pytest.raises(AuthenticationFailed):
            reactor.connect(endpoint_of(auth_cluster))      # the server asks, we have nothing

    # --- volume ----------------------------------------------------------------------------------

    @pytest.mark.parametrize("version", [4, 5])
    def test_20000_pipelined_requests(self, reactor, cluster, version):
        prime_numbered(cluster, "pipe")
        conn = reactor.connect(endpoint_of(cluster), protocol_version=version)
        try:
            collector = send_numbered(reactor, conn, "pipe", 20000)
            assert collector.wait(120), "%d of 20000 answered" % len(collector.results)
            check_numbered(collector, 20000)
            assert len(collector.threads) == 1      # every callback on the one loop thread
            assert conn.in_flight == 0
        finally:
            conn.close()

    @pytest.mark.parametrize("version", [4, 5])
    def test_16_mib_value_both_ways(self, reactor, cluster, version):
        big = os.urandom(1024) * (16 * 1024)        # 16 MiB
        conn = reactor.connect(endpoint_of(cluster), protocol_version=version)
        try:
            execute(reactor, conn, "CREATE KEYSPACE IF NOT EXISTS conformance WITH replication = "
                                   "{'class': 'SimpleStrategy', 'replication_factor': 1}")
            execute(reactor, conn, "CREATE TABLE IF NOT EXISTS conformance.blobs "
                                   "(k int PRIMARY KEY, big blob)")
            key = struct.pack(">i", version)
            execute(reactor, conn, "INSERT INTO conformance.blobs (k, big) VALUES (?, ?)",
                    [key, big])                     # 16 MiB to the server ...
            result = execute(reactor, conn, "SELECT big FROM conformance.blobs WHERE k = ?", [key])
            assert result.rows == [(big,)]          # ... and back
        finally:
            conn.close()

    def test_requests_from_many_threads(self, reactor, cluster):
        prime_numbered(cluster, "thr")
        conn = reactor.connect(endpoint_of(cluster))
        threads_n, per_thread = 8, 250
        collector = Collector(reactor, threads_n * per_thread)

        def submit(t):
            for j in range(per_thread):
                i = t * per_thread + j
                conn.send(query("SELECT v FROM thr%d" % (i % N_PRIMES)), collector.callback(i),
                          timeout=60)

        threads = [threading.Thread(target=submit, args=(t,)) for t in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert collector.wait(60), "%d answered" % len(collector.results)
            check_numbered(collector, threads_n * per_thread)
        finally:
            conn.close()

    # --- timers and wake-ups ---------------------------------------------------------------------

    def test_timers_fire_in_order_and_cancel(self, reactor):
        fired = []
        threads = set()
        done = reactor.make_event()

        def fire(tag):
            fired.append(tag)
            threads.add(threading.get_ident())
            if tag == "nested":
                done.set()
            if tag == "b":                          # call_later from the loop thread itself
                reactor.call_later(0.02, fire, "nested")

        start = time.monotonic()
        reactor.call_later(0.12, fire, "b")
        reactor.call_later(0.04, fire, "a")
        reactor.call_later(0.08, fire, "cancelled").cancel()
        assert done.wait(10)
        assert fired == ["a", "b", "nested"]
        assert time.monotonic() - start >= 0.13    # never early
        assert len(threads) == 1

    def test_timer_from_another_thread_and_cancel_from_it(self, reactor):
        done = reactor.make_event()
        fired = []

        def other():
            handle = reactor.call_later(0.05, fired.append, "cancelled")
            handle.cancel()
            reactor.call_later(0.05, fired.append, "kept")
            reactor.call_later(0.1, done.set)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert done.wait(10)
        assert fired == ["kept"]

    def test_call_soon_threadsafe_from_many_threads(self, reactor):
        per_thread, threads_n = 200, 4
        seen = []
        threads = set()
        done = reactor.make_event()

        def record(t, j):
            seen.append((t, j))
            threads.add(threading.get_ident())
            if len(seen) == per_thread * threads_n:
                done.set()

        def submit(t):
            for j in range(per_thread):
                reactor.call_soon_threadsafe(record, t, j)

        workers = [threading.Thread(target=submit, args=(t,)) for t in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert done.wait(10)
        for t in range(threads_n):                  # per submitting thread, in order
            assert [j for (tt, j) in seen if tt == t] == list(range(per_thread))
        assert len(threads) == 1

    def test_a_raising_callback_does_not_kill_the_loop(self, reactor):
        done = reactor.make_event()

        def boom():
            raise RuntimeError("callback bug (expected in this test)")

        reactor.call_soon_threadsafe(boom)
        reactor.call_later(0.01, boom)
        reactor.call_later(0.05, done.set)
        assert done.wait(10)

    # --- ending connections ----------------------------------------------------------------------

    def test_close_with_requests_pending(self, reactor, cluster):
        conn, closed, collector = _watched_with_slow_requests(reactor, cluster, 200, 1)
        conn.close()
        assert collector.wait(10), "%d of 200 ended" % len(collector.results)
        assert all(isinstance(r, ConnectionShutdown) for r in collector.results.values())
        assert conn.is_closed and not conn.is_defunct
        assert wait_until(reactor, lambda: closed == [None])
        # a request after close fails at once, it does not hang
        late = Collector(reactor, 1)
        conn.send(query("SELECT v FROM slow"), late.callback(0))
        assert late.wait(10) and isinstance(late.results[0], ConnectionShutdown)

    def test_server_dropping_the_connection_fails_every_pending_request(self, reactor, cluster):
        conn, closed, collector = _watched_with_slow_requests(reactor, cluster, 100, 100)
        assert cluster.drop_connections() >= 1
        assert collector.wait(10)
        errors = list(collector.results.values())
        assert all(isinstance(e, ConnectionDefunct) for e in errors), errors[:3]
        assert all(conn.host in str(e) for e in errors)
        assert wait_until(reactor, lambda: conn.is_defunct)
        assert wait_until(reactor, lambda: len(closed) == 1)
        assert isinstance(closed[0], ConnectionException)

    def test_request_timeout_on_a_stalled_server(self, reactor, cluster):
        cluster.prime("SELECT v FROM rt0", rows=[[1]], columns=[("v", "int")])
        conn = reactor.connect(endpoint_of(cluster))
        try:
            cluster.stall(0, 1.0)
            result = roundtrip(reactor, conn, timeout=0.2)
            assert isinstance(result, OperationTimedOut)
            assert conn.host in str(result)
            assert not conn.is_defunct                 # a timeout alone does not kill it
            pause(reactor, 1.0)
            assert rows_of(roundtrip(reactor, conn)) == [(1,)]
        finally:
            conn.close()

    def test_heartbeat_marks_a_stalled_connection_defunct(self, reactor, cluster):
        conn = reactor.connect(endpoint_of(cluster), heartbeat_interval=0.2)
        ended = reactor.make_event()
        errors = []
        conn.add_close_listener(lambda c, exc: (errors.append(exc), ended.set()))
        cluster.stall(0, 5.0)
        assert ended.wait(5), "heartbeat did not notice the stall"
        assert conn.is_defunct
        assert isinstance(errors[0], ConnectionDefunct) and "heartbeat" in str(errors[0])

    def test_idle_connection_with_heartbeat_stays_up(self, reactor, cluster):
        cluster.prime("SELECT v FROM rt0", rows=[[3]], columns=[("v", "int")])
        conn = reactor.connect(endpoint_of(cluster), heartbeat_interval=0.1)
        try:
            pause(reactor, 0.6)                           # several heartbeats, all answered
            assert not conn.is_defunct
            assert rows_of(roundtrip(reactor, conn)) == [(3,)]
        finally:
            conn.close()

    # --- name lookups ----------------------------------------------------------------------------

    def test_names_are_looked_up_off_the_loop(self, reactor, cluster):
        """A lookup may block (and under gevent's patch_all fails inside a hub callback):
        ``resolve()`` of an endpoint and host names run in the caller of ``connect`` or in
        ``spawn`` for ``connect_async`` -- never in a loop callback, not even when
        ``connect_async`` is itself called from one (as pools reconnect)."""
        address, port = cluster.contact_points[0], cluster.port
        where = []

        def on_loop():
            if reactor.name == "gevent":
                import gevent
                return gevent.getcurrent() is gevent.get_hub()
            if reactor.name == "eventlet":
                import eventlet.hubs
                from eventlet import greenthread
                return greenthread.getcurrent() is eventlet.hubs.get_hub().greenlet
            return threading.get_ident() in loop_idents

        class Resolving(Endpoint):
            __slots__ = ()

            def resolve(self):
                where.append(on_loop())
                return address, port

        loop_idents = set()
        started = reactor.make_event()
        reactor.call_soon_threadsafe(lambda: (loop_idents.add(threading.get_ident()),
                                              started.set()))
        assert started.wait(10)
        conn = reactor.connect(Resolving("proxy.invalid", port))
        conn.close()
        assert where == [False]
        results = Collector(reactor, 2)
        reactor.call_soon_threadsafe(reactor.connect_async, Resolving("proxy.invalid", port),
                                     results.callback(0))
        reactor.call_soon_threadsafe(reactor.connect_async, Endpoint("localhost", port),
                                     results.callback(1))
        assert results.wait(20)
        try:
            assert all(isinstance(r, ReactorConnection) for r in results.results.values()), \
                results.results
            assert where == [False, False]
            assert rows_of(execute(reactor, results.results[1],
                                   "SELECT release_version FROM system.local"))
        finally:
            for r in results.results.values():
                if isinstance(r, ReactorConnection):
                    r.close()

    def test_an_unresolvable_name_fails_connect_async_on_the_loop(self, reactor):
        results = Collector(reactor, 1)
        reactor.connect_async(("no-such-host.invalid", 9042), results.callback(0),
                              connect_timeout=5)
        assert results.wait(20)
        error = results.results[0]
        assert isinstance(error, ConnectionException), error
        assert "no-such-host.invalid:9042" in str(error)

    # --- opening failures ------------------------------------------------------------------------

    def test_connection_refused_names_the_endpoint(self, reactor):
        port = free_port()
        with pytest.raises(ConnectionException) as info:
            reactor.connect(("127.0.0.1", port), connect_timeout=5)
        # the same words on every reactor (asyncio's own are "Connect call failed (...)")
        assert "connection refused by 127.0.0.1:%d" % port in str(info.value)
        cause = info.value.__cause__
        assert isinstance(cause, ConnectionRefusedError) and cause.errno == errno.ECONNREFUSED

    def test_unresolvable_name_is_a_connection_error(self, reactor):
        with pytest.raises(ConnectionException) as info:
            reactor.connect(("no-such-host.invalid", 9042), connect_timeout=5)
        assert "no-such-host.invalid:9042" in str(info.value)

    def test_connect_timeout_when_the_server_never_answers(self, reactor):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)                              # accepts in the kernel, never answers
        try:
            start = time.monotonic()
            with pytest.raises(ConnectionException) as info:
                reactor.connect(listener.getsockname(), connect_timeout=0.3)
            assert "timed out" in str(info.value)
            assert time.monotonic() - start < 10
        finally:
            listener.close()

    # --- fork ------------------------------------------------------------------------------------

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    @pytest.mark.filterwarnings("ignore::DeprecationWarning")   # 3.12+: fork with threads
    def test_fork_child_gets_a_fresh_loop(self, reactor, cluster):
        cluster.prime("SELECT v FROM rt0", rows=[[5]], columns=[("v", "int")])
        conn = reactor.connect(endpoint_of(cluster))
        assert rows_of(roundtrip(reactor, conn)) == [(5,)]
        pid = os.fork()
        if pid == 0:                                    # the child: report through the exit code
            code = 10
            try:
                inherited = roundtrip(reactor, conn, timeout=5)
                code = 11
                if isinstance(inherited, ConnectionDefunct) and "fork" in str(inherited):
                    code = 12
                    fresh = reactor.connect(endpoint_of(cluster), connect_timeout=5)
                    code = 13
                    if rows_of(roundtrip(reactor, fresh, timeout=5)) == [(5,)]:
                        code = 0
                    fresh.close()
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung")
            pause(reactor, 0.02)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
            "child failed at step %s" % (os.WEXITSTATUS(status),)
        # the parent's connection is untouched by the child
        assert rows_of(roundtrip(reactor, conn)) == [(5,)]
        conn.close()

    # --- asyncio applications --------------------------------------------------------------------

    def test_results_are_awaitable_from_asyncio(self, reactor, cluster):
        if self._shares_the_test_thread(reactor):
            pytest.skip("a green hub and an asyncio loop cannot share the test's thread")
        import asyncio
        from cqlreactor.reactors.asyncio_reactor import connect_awaitable, future_callback

        cluster.prime("SELECT v FROM rt0", rows=[[9]], columns=[("v", "int")])

        async def main():
            conn = await connect_awaitable(reactor, endpoint_of(cluster))
            future, callback = future_callback()
            conn.send(query("SELECT v FROM rt0"), callback, timeout=10)
            result = await asyncio.wait_for(future, 15)
            broken, callback = future_callback()
            conn.close()
            conn.send(query("SELECT v FROM rt0"), callback)
            with pytest.raises(ConnectionShutdown):
                await asyncio.wait_for(broken, 15)
            return result

        if sys.version_info >= (3, 7):
            result = asyncio.run(main())
        else:
            loop = asyncio.new_event_loop()
            try:
                result = loop.run_until_complete(main())
            finally:
                loop.close()
        assert result.rows == [(9,)]

    # --- write coalescing, stop, interpreter exit ------------------------------------------------

    def test_requests_queued_in_one_loop_turn_go_out_in_one_write(self, reactor, cluster):
        prime_numbered(cluster, "co")
        conn = reactor.connect(endpoint_of(cluster))
        writes = []
        transport = conn.transport
        real_write = transport.write

        def counting_write(data):                   # instrumentation around the real transport
            writes.append(len(data))
            return real_write(data)

        transport.write = counting_write
        collector = Collector(reactor, 1000)

        def burst():                                # runs on the loop: one turn, 1000 sends
            for i in range(1000):
                conn.send(query("SELECT v FROM co%d" % (i % N_PRIMES)), collector.callback(i),
                          timeout=30)

        try:
            reactor.call_soon_threadsafe(burst)
            assert collector.wait(30)
            check_numbered(collector, 1000)
            assert len(writes) == 1 and writes[0] > 1000 * 20
        finally:
            conn.close()

    def test_stop_fails_pending_requests_and_the_reactor_restarts(self, reactor_class, cluster):
        reactor = reactor_class()
        conn = reactor.connect(endpoint_of(cluster))
        collector = delayed_requests(reactor, cluster, conn, 50)
        assert wait_until(reactor, lambda: len(cluster.served(0)) >= 50)
        reactor.stop()
        assert collector.wait(10)
        assert all(isinstance(r, ConnectionShutdown) for r in collector.results.values())
        assert conn.is_closed
        cluster.prime("SELECT v FROM rt0", rows=[[6]], columns=[("v", "int")])
        again = reactor.connect(endpoint_of(cluster))     # first use starts a fresh loop
        assert rows_of(roundtrip(reactor, again)) == [(6,)]
        reactor.stop()

    def test_stop_with_requests_in_flight_releases_threads_and_fds(self, reactor_class,
                                                                   cluster):
        """stop() is final for the stopped loop's work: callbacks queued before it, and the
        timers and callbacks the close listeners schedule (as pools do to reconnect), never
        run and never start a new loop; the loop thread, its polling fds and the sockets are
        gone when stop() returns (the reactor holds nothing any more); after it,
        call_soon_threadsafe / call_later raise ReactorStopped; a new connect starts afresh."""
        from cqlreactor.reactors.base import ReactorStopped
        threads_before = set(threading.enumerate())
        fds_before = _open_fds()
        reactor = reactor_class()
        conns = [reactor.connect(endpoint_of(cluster)) for _ in range(3)]
        ran = []

        def reschedule(conn, error):    # a pool's close listener: reconnect later / soon
            try:
                reactor.call_later(0.05, ran.append, "timer")
                reactor.call_soon_threadsafe(ran.append, "callback")
            except ReactorStopped:
                pass

        for conn in conns:
            conn.add_close_listener(reschedule)
        collectors = [delayed_requests(reactor, cluster, conn, 20) for conn in conns]
        assert wait_until(reactor, lambda: len(cluster.served(0)) >= 60)
        # queued before stop(): uses the reactor again from the loop
        reactor.call_soon_threadsafe(lambda: reactor.call_later(0.05, ran.append, "queued"))
        reactor.stop()
        for collector in collectors:
            assert collector.wait(10)
            assert all(isinstance(r, ConnectionShutdown) for r in collector.results.values())
        _yield_to_the_hub(reactor, 0.3)
        assert ran == []
        with pytest.raises(ReactorStopped):
            reactor.call_soon_threadsafe(ran.append, "after stop")
        with pytest.raises(ReactorStopped):
            reactor.call_later(0.01, ran.append, "after stop")
        with pytest.raises(ConnectionShutdown):    # a request on an old connection fails
            late = Collector(reactor, 1)
            conns[0].send(query("SELECT v FROM slow"), late.callback(0))
            assert late.wait(5)
            raise late.results[0]
        _check_released(reactor, threads_before, fds_before)
        assert ran == []
        cluster.prime("SELECT v FROM rt0", rows=[[6]], columns=[("v", "int")])
        again = reactor.connect(endpoint_of(cluster))     # a new connect starts afresh
        assert rows_of(roundtrip(reactor, again)) == [(6,)]
        again.send(query("SELECT v FROM slow"), lambda r: None, timeout=None)
        reactor.stop()
        _check_released(reactor, threads_before, fds_before)

    def test_interpreter_exit_with_a_live_loop_and_pending_requests(self, reactor, cluster):
        cluster.prime("SELECT v FROM slow", rows=[[1]], columns=[("v", "int")], delay=30)
        make_reactor, path = _reactor_in_a_new_interpreter(type(reactor))
        code = (
            "import warnings; warnings.simplefilter('ignore')\n"
            "from cqlreactor.testing.conformance import query\n"
            "%s\n"
            "conn = reactor.connect((%r, %d))\n"
            "for i in range(100):\n"
            "    conn.send(query('SELECT v FROM slow'), lambda r: None, timeout=None)\n"
            "reactor.call_later(60, print, 'never')\n"
            "print('exiting')\n" % (make_reactor, cluster.contact_points[0], cluster.port))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONFAULTHANDLER="1")
        proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=60, universal_newlines=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "exiting"
        assert "Traceback" not in proc.stderr and "Fatal" not in proc.stderr, proc.stderr
