"""Astra through a secure connect bundle in a monkey-patched interpreter (issue 17).

This is how gevent users run on Astra: ``gevent.monkey.patch_all()`` first, then
``Cluster(cloud={"secure_connect_bundle": ...})``.  The fake Astra names its SNI proxy
``localhost`` here, so every node connection looks a name up (``SniEndpoint.resolve()``, a
patched ``getaddrinfo``); a lookup inside a loop callback fails under gevent ("Impossible to call
blocking function in the event loop callback") and the cluster never connects.  Each case runs
in a fresh interpreter (patching cannot be undone) with a timeout, on every reactor the matrix
allows here, under gevent's ``patch_all`` and eventlet's ``monkey_patch``.
"""

import pytest

pytest.importorskip("cryptography")

from cqlreactor.testing.astra import FakeAstra                  # noqa: E402
from cqlreactor.testing.conformance import run_script          # noqa: E402
from cqlreactor.testing.pytest_plugin import reactor_params     # noqa: E402

USER, PASSWORD = "astra", "s3cret"

SCRIPT = r"""
import sys, warnings
warnings.simplefilter("ignore")
green, name, bundle, user, password = sys.argv[1:6]
if green == "gevent":
    from gevent import monkey
    monkey.patch_all()
else:
    import eventlet
    eventlet.monkey_patch()
import threading
from cqlreactor import Cluster, PlainTextAuthProvider
from cqlreactor.cloud import SniEndpoint
from cqlreactor.testing.pytest_plugin import reactor_class

cluster = Cluster(cloud={"secure_connect_bundle": bundle}, connection_class=reactor_class(name),
                  auth_provider=PlainTextAuthProvider(user, password), connect_timeout=10)
session = cluster.connect()
hosts = cluster.metadata.all_hosts()
assert len(hosts) == 3, hosts
for host in hosts:      # every node through the proxy, by its name: a lookup on each connect
    assert isinstance(host.endpoint, SniEndpoint) and host.endpoint.address == "localhost"
import time
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not (
        len(session.get_pools()) == 3 and all(p.open_count for p in session.get_pools())):
    time.sleep(0.05)    # the pools connect from loop callbacks (connect_async): green sleep
assert all(p.open_count for p in session.get_pools()), session.get_pools()
table = "patched.t_%s_%s" % (green, name.replace("-", "_"))    # made by the parent
insert = session.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % table)
for k in range(10):
    session.execute(insert, (k, "v%d" % k))
assert sorted(r.k for r in session.execute("SELECT k FROM %s" % table)) == list(range(10))
assert session.execute("SELECT release_version FROM system.local").one()
cluster.shutdown()
print("ok")
"""


@pytest.fixture(scope="module")
def astra():
    """The fake, with one table per case made beforehand (schema changes are not what runs
    under patching here; connecting and querying are)."""
    from cqlreactor import Cluster, PlainTextAuthProvider
    with FakeAstra(nodes=3, username=USER, password=PASSWORD, keyspace="patched") as fake:
        cluster = Cluster(cloud={"secure_connect_bundle": fake.bundle_path},
                          auth_provider=PlainTextAuthProvider(USER, PASSWORD))
        try:
            session = cluster.connect()
            for param in _cases():
                session.execute("CREATE TABLE IF NOT EXISTS patched.t_%s_%s "
                                "(k int PRIMARY KEY, v text)"
                                % (param.values[0], param.values[1].replace("-", "_")))
        finally:
            cluster.shutdown()
        yield fake


def _cases():
    """reactor_params (skips and ids from the matrix) times the two kinds of patching; the
    eventlet reactor under eventlet's patching only where the matrix allows it (3.6, or opted
    into), the gevent reactor only under gevent's."""
    cases = []
    for green in ("gevent", "eventlet"):
        for param in reactor_params():
            name = param.values[0]
            if name in ("gevent", "eventlet") and name != green:
                continue
            cases.append(pytest.param(green, name, id="%s-%s" % (green, param.id),
                                      marks=param.marks))
    return cases


@pytest.mark.timeout(150)
@pytest.mark.parametrize("green,name", _cases())
def test_cloud_cluster_connects_queries_and_shuts_down_under_patching(astra, green, name):
    pytest.importorskip(green)
    run_script(SCRIPT, (green, name, astra.bundle_path, USER, PASSWORD), timeout=120)
