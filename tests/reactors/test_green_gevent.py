"""gevent-specific behaviour of GeventReactor, against the simulated cluster's real process.

The conformance suite covers the contract; these cover what only gevent users see: the reactor
lives in the hub of the thread that uses it, works with and without monkey-patching (each in its
own interpreter, since patching cannot be undone), many greenlets share one connection, and a
blocking wait lets other greenlets run.
"""

import subprocess
import sys
import textwrap
import threading

import pytest

gevent = pytest.importorskip("gevent")

from cqlreactor.reactors import matrix  # noqa: E402
from cqlreactor.testing.conformance import Collector, endpoint_of, query, rows_of  # noqa: E402

if matrix.reactor_status("gevent").state != "available":
    pytest.skip("gevent reactor not available here", allow_module_level=True)

from cqlreactor.reactors.gevent import GeventReactor  # noqa: E402

N_PRIMES = 10


def prime_green(cluster):
    for i in range(N_PRIMES):
        cluster.prime("SELECT v FROM green%d" % i, rows=[[i]], columns=[("v", "int")])


@pytest.fixture
def greactor():
    reactor = GeventReactor()
    yield reactor
    reactor.stop()


# One script, run in a fresh interpreter with and without gevent.monkey.patch_all(): 100 greenlets
# x 10 queries on one connection, each greenlet blocking on its own answer.
SCRIPT = textwrap.dedent(r"""
    import sys
    PATCH = sys.argv[1] == "patch"
    if PATCH:
        from gevent import monkey
        monkey.patch_all()
    import threading
    import time
    import gevent
    import gevent.monkey
    from cqlreactor.core.consistency import ConsistencyLevel
    from cqlreactor.core.messages import QueryMessage, QueryParameters
    from cqlreactor.reactors import get_reactor_class
    from cqlreactor.reactors.base import Endpoint

    assert gevent.monkey.is_module_patched("socket") == PATCH
    # patched: the default choice must be gevent (the matrix's patched_first)
    cls = get_reactor_class(None if PATCH else "gevent")
    assert cls.name == "gevent", cls
    reactor = cls()
    conn = reactor.connect(Endpoint(sys.argv[2], int(sys.argv[3])))

    def execute(i):
        event = reactor.make_event()
        box = []

        def done(result):
            box.append(result)
            event.set()

        conn.send(QueryMessage("SELECT v FROM green%d" % (i % 10),
                               QueryParameters(ConsistencyLevel.ONE)), done, timeout=30)
        assert event.wait(30), "no answer"
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0].rows

    def worker(g):
        return [execute(g * 10 + j) for j in range(10)]

    greenlets = [gevent.spawn(worker, g) for g in range(100)]
    gevent.joinall(greenlets, raise_error=True)
    for g, greenlet in enumerate(greenlets):
        assert greenlet.value == [[((g * 10 + j) % 10,)] for j in range(10)], greenlet.value

    if PATCH:
        # patched threads are greenlets and time.sleep yields: a "thread" queries while the main
        # greenlet sleeps the standard library way
        out = []
        t = threading.Thread(target=lambda: out.append(execute(3)))
        t.start()
        time.sleep(0.2)
        t.join(10)
        assert out == [[(3,)]], out
    conn.close()
    reactor.stop()
    print("OK", cls.name, len(greenlets))
""")


@pytest.mark.parametrize("mode", ["plain", "patch"])
def test_100_greenlets_share_one_connection_with_and_without_patching(cluster, mode):
    prime_green(cluster)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode, cluster.contact_points[0],
                           str(cluster.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "OK gevent 100", (proc.stdout, proc.stderr[-2000:])


def test_100_greenlets_on_one_connection_in_process(greactor, cluster):
    prime_green(cluster)
    conn = greactor.connect(endpoint_of(cluster))
    try:
        answers = {}

        def worker(g):
            for j in range(10):
                i = g * 10 + j
                collector = Collector(greactor, 1)
                conn.send(query("SELECT v FROM green%d" % (i % N_PRIMES)), collector.callback(0),
                          timeout=30)
                assert collector.wait(30)
                answers[i] = rows_of(collector.results[0])

        gevent.joinall([gevent.spawn(worker, g) for g in range(100)], raise_error=True)
        assert answers == dict((i, [(i % N_PRIMES,)]) for i in range(1000))
        assert conn.in_flight == 0
    finally:
        conn.close()


def test_blocking_wait_yields_to_the_hub(greactor, cluster):
    cluster.prime("SELECT v FROM slowgreen", rows=[[1]], columns=[("v", "int")], delay=0.3)
    conn = greactor.connect(endpoint_of(cluster))
    ticks = []
    stop = []

    def ticker():
        while not stop:
            ticks.append(1)
            gevent.sleep(0.01)

    other = gevent.spawn(ticker)
    try:
        collector = Collector(greactor, 1)
        conn.send(query("SELECT v FROM slowgreen"), collector.callback(0), timeout=10)
        before = len(ticks)
        assert collector.wait(10)                   # the main greenlet blocks here ...
        assert rows_of(collector.results[0]) == [(1,)]
        assert len(ticks) - before >= 3             # ... and the other one kept running
    finally:
        stop.append(1)
        other.join(5)
        conn.close()


def test_event_waited_from_another_os_thread(greactor, cluster):
    """make_event() works across OS threads: a real thread waits, the hub's thread sets it."""
    cluster.prime("SELECT v FROM green1", rows=[[1]], columns=[("v", "int")])
    conn = greactor.connect(endpoint_of(cluster))
    try:
        collector = Collector(greactor, 1)
        outcome = []
        waiter = threading.Thread(target=lambda: outcome.append(collector.wait(10)))
        waiter.start()
        conn.send(query("SELECT v FROM green1"), collector.callback(0), timeout=10)
        # the hub runs while this greenlet waits on a gevent-aware primitive
        done = greactor.make_event()
        while waiter.is_alive() and not done.wait(0.01):
            pass
        waiter.join(10)
        assert outcome == [True]
        assert rows_of(collector.results[0]) == [(1,)]
    finally:
        conn.close()


def test_call_soon_threadsafe_from_an_os_thread_wakes_an_idle_hub(greactor):
    greactor.start()
    event = greactor.make_event()
    ran_in = []

    def from_thread():
        greactor.call_soon_threadsafe(lambda: (ran_in.append(threading.get_ident()),
                                               event.set()))

    t = threading.Thread(target=from_thread)
    t.start()
    t.join()
    assert event.wait(10)                           # nothing else would wake the hub
    assert ran_in == [threading.get_ident()]        # ran in the hub's (this) thread


def test_stop_fails_pending_requests_and_is_idempotent(cluster):
    from cqlreactor.core.errors import ConnectionShutdown
    cluster.prime("SELECT v FROM slowgreen", rows=[[1]], columns=[("v", "int")], delay=30)
    reactor = GeventReactor()
    conn = reactor.connect(endpoint_of(cluster))
    collector = Collector(reactor, 20)
    for i in range(20):
        conn.send(query("SELECT v FROM slowgreen"), collector.callback(i))
    gevent.sleep(0.05)                              # let them go out
    reactor.stop()
    reactor.stop()
    assert collector.wait(5)
    assert all(isinstance(r, ConnectionShutdown) for r in collector.results.values())
    assert conn.is_closed


def test_session_execute_from_many_greenlets(cluster):
    """The user's view: Cluster(connection_class="gevent"); blocking session.execute in 50
    greenlets at once, each yielding to the hub while it waits."""
    from cqlreactor import Cluster
    prime_green(cluster)
    db = Cluster(cluster.contact_points, port=cluster.port, connection_class="gevent")
    try:
        session = db.connect()

        def worker(g):
            return [session.execute("SELECT v FROM green%d" % ((g + j) % N_PRIMES)).one()[0]
                    for j in range(10)]

        greenlets = [gevent.spawn(worker, g) for g in range(50)]
        gevent.joinall(greenlets, raise_error=True)
        assert [g.value for g in greenlets] == [[(g + j) % N_PRIMES for j in range(10)]
                                                for g in range(50)]
    finally:
        db.shutdown()


FORK_SCRIPT = textwrap.dedent(r"""
    import sys
    from gevent import monkey
    monkey.patch_all()                  # os.fork is gevent's: it reinitialises the hub as well
    import os
    import gevent
    from cqlreactor.core.consistency import ConsistencyLevel
    from cqlreactor.core.messages import QueryMessage, QueryParameters
    from cqlreactor.reactors.gevent import GeventReactor

    def roundtrip(reactor, conn):
        event = reactor.make_event()
        box = []
        conn.send(QueryMessage("SELECT v FROM green1", QueryParameters(ConsistencyLevel.ONE)),
                  lambda r: (box.append(r), event.set()), timeout=5)
        assert event.wait(10)
        return box[0]

    address = (sys.argv[1], int(sys.argv[2]))
    reactor = GeventReactor()
    conn = reactor.connect(address)
    assert roundtrip(reactor, conn).rows == [(1,)]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            inherited = roundtrip(reactor, conn)
            assert "fork" in str(inherited), inherited
            fresh = reactor.connect(address)
            assert roundtrip(reactor, fresh).rows == [(1,)]
            code = 0
            gevent.sleep(1.0)              # run the child's hub while the parent works
        finally:
            os._exit(code)
    # the parent's answers must all reach the parent: a child still watching the inherited
    # socket would steal some of them
    for _ in range(20):
        assert roundtrip(reactor, conn).rows == [(1,)]
        gevent.sleep(0.05)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    assert roundtrip(reactor, conn).rows == [(1,)]   # the child left the parent's loop alone
    print("OK")
""")


def test_fork_under_patch_all_keeps_the_parent_connection(cluster):
    cluster.prime("SELECT v FROM green1", rows=[[1]], columns=[("v", "int")])
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, cluster.contact_points[0],
                           str(cluster.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr[-3000:]
