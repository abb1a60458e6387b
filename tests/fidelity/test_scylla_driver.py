"""scylla-driver, an independently maintained fork of the DataStax Python driver, against the
simulated cluster and the fake Astra bundle (see _harness.py for where it comes from; skipped
with that reason when it is not installed).

One run of the client per target (module-scoped), one test per check, so a failure names the
check.  A known, documented difference would be an explicit xfail naming it (none today).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import (HERE, RELEASE_CHECKS, RELEASES, assert_check, run_client,  # noqa
                      run_release, scylla_python)

PYTHON, REASON = scylla_python()
pytestmark = pytest.mark.skipif(PYTHON is None, reason=REASON or "")

SCRIPT = [PYTHON, os.path.join(HERE, "scylla_client.py")] if PYTHON else None
CLUSTER_CHECKS = ["connect", "discovery", "ddl", "prepared", "paging", "batch", "lwt",
                  "every_type", "errors", "node_down_up"]
ASTRA_CHECKS = ["connect", "astra", "discovery", "ddl", "prepared", "paging", "batch", "lwt",
                "every_type", "errors"]


@pytest.fixture(scope="module")
def cluster_results():
    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=3) as sim:
        yield run_client(SCRIPT, {"mode": "cluster", "contact_points": sim.contact_points,
                                  "port": sim.port, "nodes": 3}, sim=sim)


@pytest.fixture(scope="module")
def astra_results():
    pytest.importorskip("cryptography")
    from cqlreactor.testing.astra import FakeAstra
    with FakeAstra(nodes=2, username="token", password="AstraCS:x",
                   keyspace="fid_scylla") as astra:
        yield run_client(SCRIPT, {"mode": "astra", "bundle": astra.bundle_path, "nodes": 2,
                                  "username": "token", "password": "AstraCS:x"})


@pytest.fixture(scope="module", params=RELEASES)
def release_results(request):
    return run_release(SCRIPT, request.param, env=None)


@pytest.mark.parametrize("name", RELEASE_CHECKS)
def test_each_release(release_results, name):
    """3.11 (no system.peers_v2, v4 at most) and 5.0 clusters, as the driver sees them."""
    assert_check(release_results, name)


@pytest.mark.parametrize("name", CLUSTER_CHECKS)
def test_simulated_cluster(cluster_results, name):
    assert_check(cluster_results, name)


@pytest.mark.parametrize("name", ASTRA_CHECKS)
def test_fake_astra_bundle(astra_results, name):
    assert_check(astra_results, name)
