"""eventlet-specific behaviour of EventletReactor, against the simulated cluster's real process.

compat_matrix.yaml supports eventlet on Python 3.6 only (eventlet issue 526); on 3.7+ these tests
run the reactor with the documented opt-in (CQLREACTOR_ALLOW_UNSUPPORTED=eventlet), the same way
a user who overrides the gate would.  The gate itself is tested in test_matrix.py.

What only eventlet users see: the reactor lives in the hub of the thread that uses it, works
with and without ``eventlet.monkey_patch()`` (each in a fresh interpreter), many greenthreads
share one connection, a blocking wait lets other greenthreads run, and TLS does not trip
eventlet's SSLContext RecursionError (ssl imported -- and ``SSLContext`` bound -- before
monkey-patching, then contexts configured after it).
"""

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest

eventlet = pytest.importorskip("eventlet")

from cqlreactor.reactors import matrix  # noqa: E402
from cqlreactor.testing.conformance import Collector, endpoint_of, query, rows_of  # noqa: E402

OPT_IN = {matrix.ALLOW_ENV: "eventlet"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_PRIMES = 10


def make_reactor():
    from cqlreactor.reactors.eventlet import EventletReactor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
        return EventletReactor(allow_unsupported_reactors=["eventlet"])


@pytest.fixture
def ereactor():
    reactor = make_reactor()
    yield reactor
    reactor.stop()


def prime_green(cluster):
    for i in range(N_PRIMES):
        cluster.prime("SELECT v FROM egreen%d" % i, rows=[[i]], columns=[("v", "int")])


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pytest.importorskip("cryptography")
    from cqlreactor.testing.astra.certs import make_ca, make_cert
    base = tmp_path_factory.mktemp("epki")
    (base / "ca").mkdir()
    (base / "node").mkdir()
    ca = make_ca(base / "ca")
    make_cert(ca, ["localhost", "127.0.0.1"], base / "node", "node", usage="server")
    return {"ca": ca.cert_path, "node_dir": str(base / "node")}


@pytest.fixture(scope="module")
def tls_cluster(pki):
    from cqlreactor.testing.cluster import SimulatedCluster
    with SimulatedCluster(nodes=1, tls_dir=pki["node_dir"]) as cluster:
        yield cluster


SCRIPT = textwrap.dedent(r"""
    import sys
    import warnings
    warnings.simplefilter("ignore")
    MODE, HOST, PORT, TLS_HOST, TLS_PORT, CA = sys.argv[1:7]
    if MODE == "patch":
        # eventlet issues 371/618: ssl (and SSLContext) bound before monkey_patch, contexts
        # configured after it.  cqlreactor's TLS code is imported before patching too.
        import ssl
        from ssl import SSLContext  # noqa: F401
        import cqlreactor.reactors.driver  # noqa: F401
        import cqlreactor.reactors.tls  # noqa: F401
        import eventlet
        eventlet.monkey_patch()
    import ssl
    import threading
    import time
    import eventlet
    import eventlet.patcher
    from cqlreactor.core.consistency import ConsistencyLevel
    from cqlreactor.core.messages import QueryMessage, QueryParameters
    from cqlreactor.reactors import get_reactor_class
    from cqlreactor.reactors.base import Endpoint

    assert eventlet.patcher.is_monkey_patched("socket") == (MODE == "patch")
    cls = get_reactor_class(None if MODE == "patch" else "eventlet")  # patched: default = eventlet
    assert cls.name == "eventlet", cls
    reactor = cls()

    def execute(conn, text):
        event = reactor.make_event()
        box = []

        def done(result):
            box.append(result)
            event.set()

        conn.send(QueryMessage(text, QueryParameters(ConsistencyLevel.ONE)), done, timeout=30)
        assert event.wait(30), "no answer"
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0].rows

    conn = reactor.connect(Endpoint(HOST, int(PORT)))
    pool = eventlet.GreenPool(100)
    def worker(g):
        return [execute(conn, "SELECT v FROM egreen%d" % ((g * 10 + j) % 10)) for j in range(10)]

    results = list(pool.imap(worker, range(100)))
    assert results == [[[((g * 10 + j) % 10,)] for j in range(10)] for g in range(100)], results

    # TLS through cqlreactor's MemoryBIO layer: a context the driver builds (ssl_options), and one
    # the user builds and configures after patching
    tls_endpoint = Endpoint(TLS_HOST, int(TLS_PORT), server_hostname="localhost")
    tconn = reactor.connect(tls_endpoint, ssl_options={"ca_certs": CA})
    assert execute(tconn, "SELECT v FROM egreen1") == [(1,)]
    tconn.close()
    context = ssl.create_default_context(cafile=CA)
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_COMPRESSION
    if hasattr(ssl, "TLSVersion"):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    tconn = reactor.connect(tls_endpoint, ssl_context=context)
    assert execute(tconn, "SELECT v FROM egreen2") == [(2,)]
    tconn.close()

    if MODE == "patch":
        # patched threads are greenthreads and time.sleep yields
        out = []
        t = threading.Thread(target=lambda: out.append(execute(conn, "SELECT v FROM egreen3")))
        t.start()
        time.sleep(0.2)
        t.join(10)
        assert out == [[(3,)]], out
    conn.close()
    reactor.stop()
    print("OK", cls.name)
""")


@pytest.mark.parametrize("mode", ["plain", "patch"])
def test_greenthreads_and_tls_with_and_without_monkey_patch(cluster, tls_cluster, pki, mode):
    prime_green(cluster)
    prime_green(tls_cluster)
    env = dict(os.environ, PYTHONPATH=ROOT, **OPT_IN)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode, cluster.contact_points[0],
                           str(cluster.port), tls_cluster.contact_points[0],
                           str(tls_cluster.port), pki["ca"]],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "OK eventlet", (proc.stdout, proc.stderr[-2000:])
    assert "RecursionError" not in proc.stderr


def test_blocking_wait_yields_to_the_hub(ereactor, cluster):
    cluster.prime("SELECT v FROM eslow", rows=[[1]], columns=[("v", "int")], delay=0.3)
    conn = ereactor.connect(endpoint_of(cluster))
    ticks = []
    stop = []

    def ticker():
        while not stop:
            ticks.append(1)
            eventlet.sleep(0.01)

    other = eventlet.spawn(ticker)
    try:
        collector = Collector(ereactor, 1)
        conn.send(query("SELECT v FROM eslow"), collector.callback(0), timeout=10)
        before = len(ticks)
        assert collector.wait(10)                   # this greenthread blocks here ...
        assert rows_of(collector.results[0]) == [(1,)]
        assert len(ticks) - before >= 3             # ... and the other one kept running
    finally:
        stop.append(1)
        other.wait()
        conn.close()


def test_event_waited_from_another_os_thread(ereactor, cluster):
    cluster.prime("SELECT v FROM egreen1", rows=[[1]], columns=[("v", "int")])
    conn = ereactor.connect(endpoint_of(cluster))
    try:
        collector = Collector(ereactor, 1)
        outcome = []
        waiter = threading.Thread(target=lambda: outcome.append(collector.wait(10)))
        waiter.start()
        conn.send(query("SELECT v FROM egreen1"), collector.callback(0), timeout=10)
        idle = ereactor.make_event()
        while waiter.is_alive() and not idle.wait(0.01):   # lets the hub run
            pass
        waiter.join(10)
        assert outcome == [True]
        assert rows_of(collector.results[0]) == [(1,)]
    finally:
        conn.close()


def test_stop_fails_pending_requests_and_is_idempotent(cluster):
    from cqlreactor.core.errors import ConnectionShutdown
    cluster.prime("SELECT v FROM eslow", rows=[[1]], columns=[("v", "int")], delay=30)
    reactor = make_reactor()
    conn = reactor.connect(endpoint_of(cluster))
    collector = Collector(reactor, 20)
    for i in range(20):
        conn.send(query("SELECT v FROM eslow"), collector.callback(i))
    eventlet.sleep(0.05)
    reactor.stop()
    reactor.stop()
    assert collector.wait(5)
    assert all(isinstance(r, ConnectionShutdown) for r in collector.results.values())
    assert conn.is_closed


def test_session_execute_from_many_greenthreads(cluster):
    """The user's view: Cluster(connection_class="eventlet"); blocking session.execute in 50
    greenthreads at once."""
    from cqlreactor import Cluster
    prime_green(cluster)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
        db = Cluster(cluster.contact_points, port=cluster.port, connection_class="eventlet",
                     allow_unsupported_reactors=["eventlet"])
        try:
            session = db.connect()
            pool = eventlet.GreenPool(50)
            results = list(pool.imap(
                lambda g: [session.execute("SELECT v FROM egreen%d" % ((g + j) % N_PRIMES))
                           .one()[0] for j in range(10)], range(50)))
            assert results == [[(g + j) % N_PRIMES for j in range(10)] for g in range(50)]
        finally:
            db.shutdown()


FORK_SCRIPT = textwrap.dedent(r"""
    import sys
    import warnings
    warnings.simplefilter("ignore")
    import eventlet
    eventlet.monkey_patch()
    import os
    from cqlreactor.core.consistency import ConsistencyLevel
    from cqlreactor.core.messages import QueryMessage, QueryParameters
    from cqlreactor.reactors.eventlet import EventletReactor

    def roundtrip(reactor, conn):
        event = reactor.make_event()
        box = []
        conn.send(QueryMessage("SELECT v FROM egreen1", QueryParameters(ConsistencyLevel.ONE)),
                  lambda r: (box.append(r), event.set()), timeout=5)
        assert event.wait(10)
        return box[0]

    address = (sys.argv[1], int(sys.argv[2]))
    reactor = EventletReactor(allow_unsupported_reactors=["eventlet"])
    conn = reactor.connect(address)
    assert roundtrip(reactor, conn).rows == [(1,)]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            inherited = roundtrip(reactor, conn)
            assert "fork" in str(inherited), inherited
            fresh = reactor.connect(address)        # on the child's own, fresh hub
            assert roundtrip(reactor, fresh).rows == [(1,)]
            code = 0
            eventlet.sleep(1.0)              # run the child's hub while the parent works
        finally:
            os._exit(code)
    # the parent's answers must all reach the parent: a child still watching the inherited
    # socket would steal some of them
    for _ in range(20):
        assert roundtrip(reactor, conn).rows == [(1,)]
        eventlet.sleep(0.05)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    assert roundtrip(reactor, conn).rows == [(1,)]   # the child left the parent's epoll set alone
    print("OK")
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_under_monkey_patch_keeps_the_parent_connection(cluster):
    prime_green(cluster)
    env = dict(os.environ, PYTHONPATH=ROOT, **OPT_IN)
    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, cluster.contact_points[0],
                           str(cluster.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "OK", proc.stderr[-3000:]
