"""Every reactor awaited from asyncio: each combination of reactor x where the asyncio loop runs
(unpatched, under gevent's patch_all, under eventlet's monkey_patch) either works or raises
IncompatibleEventLoops at once naming the combination -- none hangs.

The patched combinations need a fresh interpreter each: one child per patching runs every
reactor in turn (bounded by the child's timeout), printing one outcome line per reactor.
"""

import asyncio
import time

import pytest

from cqlreactor import Cluster
from cqlreactor.core.errors import IncompatibleEventLoops
from cqlreactor.reactors import matrix
from cqlreactor.testing.conformance import run_script
from cqlreactor.testing.pytest_plugin import reactor_class


async def _roundtrip(sim, reactor):
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor_class(reactor))
    try:
        session = await cluster.connect_async()
        rows = await session.execute_async("SELECT key FROM system.local")
        return rows.one().key
    finally:
        await cluster.shutdown_async()


def test_await_every_reactor_from_an_unpatched_loop(sim, reactor):
    loop = asyncio.new_event_loop()
    started = time.monotonic()
    try:
        if reactor in ("gevent", "eventlet"):
            # their hub is this thread, which asyncio's own selector blocks: it never runs
            with pytest.raises(IncompatibleEventLoops, match=reactor):
                loop.run_until_complete(_roundtrip(sim, reactor))
            assert time.monotonic() - started < 5.0      # at once, not after a timeout
        else:
            assert loop.run_until_complete(_roundtrip(sim, reactor)) == "local"
    finally:
        loop.close()


_PATCHED_SCRIPT = r'''
import sys
patching = sys.argv[1]
if patching == "gevent":
    import gevent.monkey
    gevent.monkey.patch_all()
else:
    import eventlet
    eventlet.monkey_patch()
import asyncio
from cqlreactor import Cluster
from cqlreactor.core.errors import IncompatibleEventLoops
from cqlreactor.testing import SimulatedCluster

async def roundtrip(sim, name):
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=name,
                      allow_unsupported_reactors=True)
    try:
        session = await asyncio.wait_for(cluster.connect_async(), 10)
        rows = await asyncio.wait_for(session.execute_async("SELECT key FROM system.local"), 10)
        return rows.one().key
    finally:
        await cluster.shutdown_async()

outcomes = []
with SimulatedCluster(nodes=1) as sim:
    for name in sys.argv[2:]:
        try:
            key = asyncio.new_event_loop().run_until_complete(roundtrip(sim, name))
            outcomes.append("%s:%s" % (name, "ok" if key == "local" else key))
        except IncompatibleEventLoops as exc:
            outcomes.append("%s:refused" % (name,) if name in str(exc) else repr(exc))
        except asyncio.TimeoutError:
            outcomes.append("%s:HUNG" % (name,))
        except Exception as exc:
            outcomes.append("%s:%r" % (name, exc))
print(" ".join(outcomes))
'''


def _runnable(names):
    """The reactors of the matrix whose packages load here (gated ones opted into)."""
    found = []
    for name in names:
        try:
            reactor_class(name)
        except Exception:
            continue
        found.append(name)
    return found


@pytest.mark.parametrize("patching", ["gevent", "eventlet"])
def test_await_every_reactor_from_a_monkey_patched_loop(patching):
    pytest.importorskip(patching)
    names = _runnable(matrix.reactor_names())
    # after patching, asyncio's selector waits in that library's hub: every reactor works,
    # that green one included; the other green library's hub still never runs: refused
    other = {"gevent": "eventlet", "eventlet": "gevent"}[patching]
    expect = " ".join("%s:%s" % (n, "refused" if n == other else "ok") for n in names)
    run_script(_PATCHED_SCRIPT, [patching] + names, timeout=120, expect=expect)


_STARVING_SCRIPT = r'''
import gevent.monkey
gevent.monkey.patch_all()
import sys, warnings
import gevent
from cqlreactor import Cluster
from cqlreactor.reactors._osthread import HubStarvationWarning
from cqlreactor.testing import SimulatedCluster

ticks = []
def ticker():
    while True:
        ticks.append(1)
        gevent.sleep(0.001)

with SimulatedCluster(nodes=1) as sim:
    sim.prime("SELECT v FROM slow", columns=[("v", "int")], rows=[{"v": 1}], delay=0.3)
    with warnings.catch_warnings(record=True) as caught, \
            Cluster(sim.contact_points, port=sim.port, connection_class=sys.argv[1]) as cluster:
        warnings.simplefilter("always")
        session = cluster.connect()         # (reported on the first blocking wait: once)
        gevent.spawn(ticker)
        gevent.sleep(0.01)
        before = len(ticks)
        session.execute("SELECT v FROM slow")
        starved = len(ticks) - before
        reported = [w for w in caught if issubclass(w.category, HubStarvationWarning)]
        # the ticker greenlet did not run while the call blocked, and that was reported
        print("starved" if starved <= 1 else "ran %d" % starved,
              "reported" if reported and sys.argv[1] in str(reported[0].message) else "silent")
'''


@pytest.mark.parametrize("name", ["asyncio", "asyncore", "libev"])
def test_a_blocking_call_starving_the_gevent_hub_is_reported(name):
    pytest.importorskip("gevent")
    try:
        reactor_class(name)
    except Exception as exc:
        pytest.skip("%s does not run here: %s" % (name, exc))
    run_script(_STARVING_SCRIPT, [name], timeout=120, expect="starved reported")
