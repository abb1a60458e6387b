"""The whole asyncio API (cqlreactor.aio, README "asyncio") on the caller's own loop.

Every scenario runs under asyncio debug mode with ``slow_callback_duration`` 50 ms and a
watchdog (asyncio's own slow-callback reports, plus a ticker coroutine measuring how long the
loop went without running it): a cqlreactor call that blocks the loop longer fails the test.
A block that really is in our code repeats on every run, while a 2-core machine under load can
deschedule the process once: a scenario with reports runs once more, and fails only if it
reports again.  The same scenarios run on uvloop, and assert that no thread is started.
"""

import asyncio
import logging
import os
import ssl
import threading
import time

import pytest
from _cluster_helpers import tls_simulated_cluster

from cqlreactor import Cluster, PlainTextAuthProvider, SimpleStatement
from cqlreactor.aio import execute_concurrent, execute_concurrent_with_args
from cqlreactor.core.errors import (BlockingCallInEventLoop, OperationTimedOut,
                                    RequestCancelled)
from cqlreactor.reactors.asyncio_reactor import AsyncioReactor
from cqlreactor.testing import SimulatedCluster

SLOW = 0.05

try:
    import uvloop
except ImportError:
    uvloop = None

LOOPS = [pytest.param("asyncio", id="asyncio"),
         pytest.param("uvloop", id="uvloop", marks=pytest.mark.skipif(
             uvloop is None, reason="uvloop is not installed for this interpreter "
                                    "(no wheel; see the test extra in pyproject.toml)"))]


class _SlowReports(logging.Handler):
    def __init__(self):
        logging.Handler.__init__(self, logging.WARNING)
        self.reports = []

    def emit(self, record):
        text = record.getMessage()
        if text.startswith("Executing") and "took" in text:
            self.reports.append(text)


def _new_loop(kind):
    loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW
    return loop


def _run_once(kind, scenario):
    """Run ``scenario()`` on a fresh debug loop; return (its value, the watchdog's reports,
    the threads that appeared)."""
    handler = _SlowReports()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    before = set(threading.enumerate())
    seen_threads = set()
    lags = []

    async def ticker(stop):
        loop = asyncio.get_event_loop()
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            if now - last > SLOW + 0.005:
                lags.append("the loop did not run for %.3fs" % (now - last,))
            last = now
            seen_threads.update(set(threading.enumerate()) - before)

    async def main():
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(stop))
        try:
            return await scenario()
        finally:
            stop.set()
            await tick
            seen_threads.update(set(threading.enumerate()) - before)

    loop = _new_loop(kind)
    try:
        value = loop.run_until_complete(main())
    finally:
        logger.removeHandler(handler)
        loop.close()
    # (the fake Astra's in-process SNI proxy serves each connection in a thread of its own;
    # the schema-agreement wait after DDL runs on the caller's loop: no thread of its own)
    ours = [t for t in seen_threads if not t.name.startswith("fake-astra")]
    return value, handler.reports + lags, sorted(ours, key=repr)


def run_watched(kind, scenario):
    """Run ``scenario`` (a coroutine function) under the watchdog; see the module docstring."""
    value, reports, threads = _run_once(kind, scenario)
    if reports:
        value, again, threads = _run_once(kind, scenario)
        assert not again, "the loop was blocked twice in a row: %s / then: %s" % (reports,
                                                                                  again)
    assert not threads, "threads started by the async path: %r" % (threads,)
    return value


def _warm_up():
    # imports and the compat matrix are read once per process, on first use: not per call
    Cluster(["127.0.0.1"], connection_class="asyncio").shutdown()


_counter = [0]


def _keyspace():
    _counter[0] += 1
    return "aio_%d_%d" % (os.getpid(), _counter[0])


async def _whole_api(make_cluster, sim=None):
    """Every awaitable, in the order an application uses them."""
    keyspace = _keyspace()
    async with make_cluster() as cluster:
        session = await cluster.connect_async()
        assert cluster.reactor.on_running_loop       # the caller's loop, no thread
        assert cluster.reactor.loop is asyncio.get_event_loop()
        async with session:
            rows = await session.execute_async("SELECT key FROM system.local")
            assert rows.one().key == "local"
            await session.execute_async(
                "CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', "
                "'replication_factor': 1}" % keyspace)
            await session.set_keyspace_async(keyspace)
            await session.execute_async("CREATE TABLE t (k int, c int, v text, "
                                        "PRIMARY KEY (k, c))")
            insert = await session.prepare_async("INSERT INTO t (k, c, v) VALUES (?, ?, ?)")
            results = await execute_concurrent_with_args(
                session, insert, [(1, c, "v%d" % c) for c in range(40)], concurrency=8)
            assert [r.success for r in results] == [True] * 40
            select = await session.prepare_async("SELECT c FROM t WHERE k = ?")
            paged = await session.execute_async(SimpleStatement(
                "SELECT c FROM t WHERE k = 1", fetch_size=7))
            assert [row.c async for row in paged] == list(range(40))
            paged = await session.execute_async(select, (1,))
            first = [r.c for r in paged.current_rows]
            assert first == list(range(40))      # default fetch size: one page
            paged = await session.execute_async(SimpleStatement(
                "SELECT c FROM t WHERE k = 1", fetch_size=15))
            assert paged.has_more_pages
            await paged.fetch_next_page_async()
            assert [r.c for r in paged.current_rows] == list(range(15, 30))
            generator = await execute_concurrent(
                session, [(select, (1,))] * 5, results_generator=True)
            assert [len(r.result_or_exc.current_rows) async for r in generator] == [40] * 5
            # a blocking call here would deadlock: refused at once, naming the awaitable
            with pytest.raises(BlockingCallInEventLoop, match="execute_async"):
                session.execute("SELECT key FROM system.local")
            with pytest.raises(BlockingCallInEventLoop, match="connect_async"):
                cluster.connect()
            other = await cluster.connect_async(keyspace)
            assert (await other.execute_async("SELECT v FROM t WHERE k = 1 AND c = 3")
                    ).one().v == "v3"
            await other.shutdown_async()
            await session.execute_async("DROP KEYSPACE %s" % keyspace)
    assert cluster.is_shutdown and cluster.reactor.stopped
    return True


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    pytest.importorskip("cryptography")
    with tls_simulated_cluster(tmp_path_factory.mktemp("aio-tls"), nodes=2) as (sim, ca):
        sim.ca_path = ca.cert_path
        yield sim


@pytest.fixture(scope="module")
def astra():
    pytest.importorskip("cryptography")
    from cqlreactor.testing.astra import FakeAstra
    # the scenario's DDL runs over CQL, which Astra (and so the fake, by default) refuses
    # Named by IP: asyncio's loop.getaddrinfo for the default "localhost" name runs in the
    # loop's default executor threads (a known gap of the no-thread promise, issue 12 note).
    with FakeAstra(nodes=2, username="astra", password="pw", host="127.0.0.1",
                   cluster_options={"keyspace_ddl": True}) as fake:
        yield fake


@pytest.mark.parametrize("kind", LOOPS)
def test_the_whole_async_api_on_the_callers_loop(sim, kind):
    _warm_up()

    def make():
        return Cluster(sim.contact_points, port=sim.port, connection_class="asyncio")
    assert run_watched(kind, lambda: _whole_api(make))


@pytest.mark.parametrize("kind", LOOPS)
def test_the_whole_async_api_over_tls(tls_sim, kind):
    _warm_up()
    context = ssl.create_default_context(cafile=tls_sim.ca_path)

    def make():
        return Cluster(tls_sim.contact_points, port=tls_sim.port, ssl_context=context,
                       connection_class="asyncio")
    assert run_watched(kind, lambda: _whole_api(make))


@pytest.mark.parametrize("kind", LOOPS)
def test_the_whole_async_api_against_the_fake_astra(astra, kind):
    _warm_up()
    # Cluster(cloud=...) reads the bundle and asks the metadata service in its constructor
    # (synchronously, as cassandra-driver): made before the loop, connected inside it
    clusters = []

    def make():
        return clusters.pop()

    for _ in range(2):                  # one per run of the scenario (the watchdog may rerun)
        clusters.append(Cluster(cloud={"secure_connect_bundle": astra.bundle_path},
                                auth_provider=PlainTextAuthProvider("astra", "pw"),
                                connection_class="asyncio"))
    try:
        assert run_watched(kind, lambda: _whole_api(make))
    finally:
        for cluster in clusters:
            cluster.shutdown()


async def _cancel_and_timeout(sim):
    async with Cluster(sim.contact_points, port=sim.port, connection_class="asyncio") as cluster:
        session = await cluster.connect_async()
        [conn] = [c for p in session.get_pools() for c in p.get_connections()][:1]
        sim.prime("SELECT v FROM held", rows=[], columns=[("v", "int")], delay=0.5)
        # cancelled while its answer is held: the task sees CancelledError, the request
        # fails with RequestCancelled, and its stream id stays reserved (orphaned)
        task = asyncio.ensure_future(_await(session.execute_async("SELECT v FROM held")))
        await _until(lambda: conn._core.in_flight == 1)      # sent, the task awaiting it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await _until(lambda: conn.in_flight == 0)
        assert conn._core.orphaned == 1
        # the late answer frees the id; the connection stays healthy
        await _until(lambda: conn._core.orphaned == 0, timeout=10)
        assert not conn.is_closed
        assert (await session.execute_async("SELECT key FROM system.local")).one().key == \
            "local"
        # ResponseFuture.cancel() itself: the future fails with RequestCancelled at once
        future = session.execute_async("SELECT v FROM held")
        assert future.cancel() and not future.cancel()
        with pytest.raises(RequestCancelled):
            await future
        # timeouts are the driver's own, not asyncio.TimeoutError
        with pytest.raises(OperationTimedOut) as info:
            await session.execute_async("SELECT v FROM held", timeout=0.2)
        assert not isinstance(info.value, RequestCancelled)
        await _until(lambda: conn._core.orphaned == 0, timeout=10)
        assert (await session.execute_async("SELECT key FROM system.local")).one().key == \
            "local"
    return True


async def _await(future):
    return await future


async def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within %ss" % (timeout,)
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def one_node():
    with SimulatedCluster(nodes=1) as sim:
        yield sim


@pytest.mark.parametrize("kind", LOOPS)
def test_cancelling_the_task_cancels_the_request(one_node, kind):
    one_node.clear()
    try:
        assert run_watched(kind, lambda: _cancel_and_timeout(one_node))
    finally:
        one_node.clear()


def test_outside_a_loop_the_reactor_keeps_its_loop_thread(sim):
    with Cluster(sim.contact_points, port=sim.port, connection_class="asyncio") as cluster:
        session = cluster.connect()
        assert not cluster.reactor.on_running_loop
        assert any(t.name.startswith("cqlreactor-asyncio") for t in threading.enumerate())

        async def main():
            return (await session.execute_async("SELECT key FROM system.local")).one().key
        assert asyncio.new_event_loop().run_until_complete(main()) == "local"


def test_use_running_loop_false_keeps_a_loop_thread_inside_a_loop(sim):
    class OwnThread(AsyncioReactor):
        def __init__(self, **kwargs):
            kwargs["use_running_loop"] = False
            super(OwnThread, self).__init__(**kwargs)

    async def main():
        cluster = Cluster(sim.contact_points, port=sim.port, connection_class=OwnThread)
        session = await cluster.connect_async()
        try:
            assert not cluster.reactor.on_running_loop
            return (await session.execute_async("SELECT key FROM system.local")).one().key
        finally:
            await cluster.shutdown_async()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == "local"
    finally:
        loop.close()


def test_shutdown_after_the_loop_is_gone(sim, caplog):
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class="asyncio")

    async def main():
        session = await cluster.connect_async()
        return (await session.execute_async("SELECT key FROM system.local")).one().key
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(main()) == "local"
    loop.close()
    with caplog.at_level(logging.WARNING):
        cluster.shutdown()                  # quietly: the loop that ran it is closed
    assert cluster.reactor.stopped
    assert not [r for r in caplog.records if r.name.startswith("cqlreactor")], caplog.text


async def _control_failover(sim):
    from cqlreactor.policies import ConstantReconnectionPolicy
    async with Cluster(sim.contact_points, port=sim.port, connection_class="asyncio",
                       reconnection_policy=ConstantReconnectionPolicy(0.1, None)) as cluster:
        session = await cluster.connect_async()
        first = cluster.control_connection.connection.endpoint
        index = sim.contact_points.index(first.address)
        sim.stop_node(index)
        try:
            await _until(lambda: cluster.control_connection.connection is not None and
                         cluster.control_connection.connection.endpoint != first, timeout=15)
        finally:
            sim.start_node(index)
        rows = await session.execute_async("SELECT key FROM system.local")
        return rows.one().key == "local"


@pytest.mark.parametrize("kind", LOOPS)
def test_the_control_connection_fails_over_on_the_loop(clean_sim, kind):
    # the reconnect runs as a task on the application's loop: no thread, no blocking
    assert run_watched(kind, lambda: _control_failover(clean_sim))
