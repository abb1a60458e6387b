"""The DataStax Node.js driver (npm cassandra-driver), written independently of every Python driver, against the
simulated cluster and the fake Astra bundle (see _harness.py for where it comes from; skipped
with that reason when it is not installed).

One run of the client per target (module-scoped), one test per check, so a failure names the
check.  A known, documented difference would be an explicit xfail naming it (none today).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import HERE, node_modules, run_client             # noqa: E402

NODE, REASON = node_modules()
pytestmark = pytest.mark.skipif(NODE is None, reason=REASON or "")

SCRIPT = [NODE[0], os.path.join(HERE, "node_client.js")] if NODE else None
ENV = {"NODE_PATH": NODE[1]} if NODE else None
CLUSTER_CHECKS = ["connect", "discovery", "ddl", "prepared", "paging", "batch", "lwt",
                  "every_type", "errors", "node_down_up"]
ASTRA_CHECKS = ["connect", "astra", "discovery", "ddl", "prepared", "paging", "batch", "lwt",
                "every_type", "errors"]


@pytest.fixture(scope="module")
def cluster_results():
    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=3) as sim:
        yield run_client(SCRIPT, {"mode": "cluster", "contact_points": sim.contact_points,
                                  "port": sim.port, "nodes": 3}, sim=sim, env=ENV)


@pytest.fixture(scope="module")
def astra_results():
    pytest.importorskip("cryptography")
    from cqlreactor.testing.astra import FakeAstra
    with FakeAstra(nodes=2, username="token", password="AstraCS:x",
                   keyspace="fid_node") as astra:
        yield run_client(SCRIPT, {"mode": "astra", "bundle": astra.bundle_path, "nodes": 2,
                                  "username": "token", "password": "AstraCS:x"}, env=ENV)


def _assert(results, name):
    result = results.get(name)
    assert result is not None, "the client never reported %r; its stderr:\n%s" % (
        name, results["_stderr"]["error"])
    assert result["ok"], "%s: %s\n%s" % (name, result.get("error"), result.get("trace", ""))


@pytest.mark.parametrize("name", CLUSTER_CHECKS)
def test_simulated_cluster(cluster_results, name):
    _assert(cluster_results, name)


# A known limitation, not a fake-Astra defect: the Node.js driver resolves the SNI proxy's
# name with dns.resolve4 (a DNS query; /etc/hosts is not read), so the fake's "localhost"
# resolves only where a DNS server answers for it.  Real Astra names resolve in public DNS.
NODE_SNI_DNS = ("the Node.js driver resolves the SNI proxy name with dns.resolve4, which "
                "skips /etc/hosts: 'localhost' needs a DNS server answering for it")


@pytest.mark.parametrize("name", ASTRA_CHECKS)
def test_fake_astra_bundle(astra_results, name):
    connect = astra_results.get("connect") or {}
    if not connect.get("ok") and "ENOTFOUND" in (connect.get("error") or ""):
        pytest.xfail(NODE_SNI_DNS)
    _assert(astra_results, name)
