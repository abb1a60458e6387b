"""Nothing outlives a Cluster, on every reactor (issue 17): after connect / load / shutdown
cycles the process has the threads, file descriptors, greenlets and armed timers it had after
the first cycle (the first warms up what a process keeps once: a hub, a resolver pool); under
gevent's ``patch_all`` the cycles leave no greenlet either; and memory stays flat over many
requests. Extracted secure-connect-bundle files are checked by test_cloud_cluster.py
(``systmp`` and the files next to the bundle: empty after every test).
"""

import asyncio
import gc
import os
import sys
import threading
import time
import tracemalloc

import pytest
from _cluster_helpers import live_objects

from cqlreactor import Cluster
from cqlreactor.reactors.base import LoopTimer
from cqlreactor.testing.conformance import run_script
from cqlreactor.testing.faultload import Load
from cqlreactor.testing.pytest_plugin import reactor_params

QUERY = "SELECT release_version FROM system.local"


def _fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:         # not Linux: threads, greenlets and timers still count
        return 0


def _live_greenlets():
    if "greenlet" not in sys.modules:
        return 0
    import greenlet
    return sum(1 for g in live_objects(greenlet.greenlet) if not g.dead)


def _armed_timers():
    count = 0
    for obj in live_objects(LoopTimer, asyncio.TimerHandle):
        if isinstance(obj, LoopTimer):
            count += obj._native is not None
        elif isinstance(obj, asyncio.TimerHandle):
            count += not obj.cancelled()
    return count


def _census():
    gc.collect()
    return {"threads": sorted(t.name for t in threading.enumerate()), "fds": _fds(),
            "greenlets": _live_greenlets(), "timers": _armed_timers()}


def _cycle(sim, reactor, requests=100):
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor)
    try:
        session = cluster.connect()
        prepared = session.prepare(QUERY)
        futures = [session.execute_async(prepared if i % 2 else QUERY) for i in range(requests)]
        for future in futures:
            future.result()
    finally:
        cluster.shutdown()


def test_connect_load_shutdown_cycles_leave_nothing(sim, reactor):
    _cycle(sim, reactor)
    before = _census()
    for _ in range(2):
        _cycle(sim, reactor)
    deadline = time.monotonic() + 10.0
    after = _census()
    while after != before and time.monotonic() < deadline:
        time.sleep(0.1)     # every Cluster is shut down: no reactor needs this thread
        after = _census()
    assert after == before


def _memory_growth(sim, reactor, warmup, measured):
    """Traced memory (bytes) gained over ``measured`` requests after ``warmup`` ones."""
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor)
    try:
        session = cluster.connect()
        prepared = session.prepare(QUERY)
        load = Load(session, prepared, in_flight=32, timeout=10.0)
        load.start()
        load.wait_successes(warmup, within=120.0)
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            load.wait_successes(measured, within=600.0)
            stats = load.stop()
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
    finally:
        cluster.shutdown()
    assert stats.lost == 0 and not stats.failures, stats
    return growth


def test_memory_is_flat_over_requests(sim, reactor):
    growth = _memory_growth(sim, reactor, warmup=300, measured=1200)
    print("memory growth over 1200 requests on %s: %d bytes" % (reactor, growth))
    assert growth < 120 * 1024, "%d bytes more after 1200 requests" % growth


@pytest.mark.slow
def test_memory_is_flat_over_100000_requests(sim, reactor):
    growth = _memory_growth(sim, reactor, warmup=5000, measured=100000)
    assert growth < 1024 * 1024, "%d bytes more after 100000 requests" % growth


PATCHED = r"""
import sys, gc, os, time, warnings
warnings.simplefilter("ignore")
from gevent import monkey
monkey.patch_all()
import greenlet, threading
from cqlreactor import Cluster
from cqlreactor.testing.pytest_plugin import reactor_class
address, port = sys.argv[1], int(sys.argv[2])
names = sys.argv[3:]


def census():
    gc.collect()
    return (sum(1 for g in gc.get_objects() if isinstance(g, greenlet.greenlet) and not g.dead),
            len(threading.enumerate()), len(os.listdir("/proc/self/fd")))


def cycle(name):
    cluster = Cluster([address], port=port, connection_class=reactor_class(name))
    session = cluster.connect()
    for _ in range(20):
        session.execute("SELECT release_version FROM system.local")
    cluster.shutdown()


for name in names:
    cycle(name)
    time.sleep(0.2)         # patched: lets finished greenlets end
    before = census()
    for _ in range(5):
        cycle(name)
    deadline = time.monotonic() + 10
    while census() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert census() == before, (name, before, census())
print("ok")
"""


def _patchable_reactors():
    names = []
    for param in reactor_params():
        if param.marks:         # gated off or missing here
            continue
        if param.values[0] != "eventlet":   # gevent's patching: eventlet is not a guest here
            names.append(param.values[0])
    return names


@pytest.mark.timeout(180)
def test_patch_all_cycles_leave_no_greenlet(sim):
    pytest.importorskip("gevent")
    names = _patchable_reactors()
    run_script(PATCHED, [sim.contact_points[0], sim.port] + names, timeout=150)
