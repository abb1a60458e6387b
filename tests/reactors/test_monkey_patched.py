"""Every reactor chosen explicitly in a monkey-patched interpreter connects and runs queries.

After ``gevent.monkey.patch_all()`` (or ``eventlet.monkey_patch()``) ``threading.Thread`` starts a
greenlet; a reactor whose loop blocks in C or in a real selector must still get a real OS thread,
or the first blocking call hangs the process.  Each case runs in a fresh interpreter (patching
cannot be undone) bounded by a timeout, so a hang fails the test instead of the run.
"""

import pytest

from cqlreactor.testing.conformance import run_script
from cqlreactor.testing.pytest_plugin import reactor_params


SCRIPT = r"""
import sys, warnings
warnings.simplefilter("ignore")
green, name, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if green == "gevent":
    from gevent import monkey
    monkey.patch_all()
else:
    import eventlet
    eventlet.monkey_patch()
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.messages import QueryMessage, QueryParameters

from cqlreactor.testing.pytest_plugin import reactor_class
reactor = reactor_class(name)()     # a name, or "asyncio-stdlib" (uvloop turned off)
conn = reactor.connect((host, port), connect_timeout=10)
results = []
done = reactor.make_event()

def collect(result):
    results.append(result)
    if len(results) == 20:
        done.set()

for i in range(20):
    text = "SELECT v FROM patchedtable" if i % 2 else "SELECT release_version FROM system.local"
    conn.send(QueryMessage(text, QueryParameters(ConsistencyLevel.ONE)), collect, timeout=10)
assert done.wait(20), results
errors = [r for r in results if isinstance(r, BaseException)]
assert not errors, errors
assert sum(1 for r in results if r.rows == [(7,)]) == 10, results
timer = reactor.make_event()
reactor.call_later(0.02, timer.set)
assert timer.wait(5)
if name not in ("gevent", "eventlet"):
    # a loop thread is a real OS thread: it answers while this greenlet never yields
    import time
    box = []
    conn.send(QueryMessage("SELECT v FROM patchedtable", QueryParameters(ConsistencyLevel.ONE)),
              box.append, timeout=10)
    deadline = time.monotonic() + 10
    while not box and time.monotonic() < deadline:
        pass
    assert box and box[0].rows == [(7,)], box
conn.close()
reactor.stop()
print("ok")
"""


def _cases():
    """reactor_params (skips and ids from the matrix) times the two kinds of patching."""
    cases = []
    for green in ("gevent", "eventlet"):
        for param in reactor_params(stdlib_asyncio=True):
            name = param.values[0]
            if green == "eventlet" and name in ("gevent", "eventlet"):
                continue    # the eventlet reactor under monkey_patch: test_green_eventlet.py
            cases.append(pytest.param(green, name, id="%s-%s" % (green, param.id),
                                      marks=param.marks))
    return cases


@pytest.mark.timeout(120)
@pytest.mark.parametrize("green,name", _cases())
def test_reactor_chosen_explicitly_under_monkey_patching(cluster, green, name):
    pytest.importorskip(green)
    cluster.prime("SELECT v FROM patchedtable", rows=[[7]], columns=[("v", "int")])
    run_script(SCRIPT, (green, name, cluster.contact_points[0], cluster.port))
