"""The DataStax Node.js driver (npm cassandra-driver), written independently of every Python driver, against the
simulated cluster and the fake Astra bundle (see _harness.py for where it comes from; skipped
with that reason when it is not installed).

One run of the client per target (module-scoped), one test per check, so a failure names the
check.  A known, documented difference would be an explicit xfail naming it (none today:
the fake Astra's SNI proxy name is answered by a loopback DNS server the test starts).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _dns import LoopbackDNS                                     # noqa: E402
from _harness import (HERE, RELEASE_CHECKS, RELEASES, assert_check, node_modules,  # noqa
                      run_client, run_release)

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
                   keyspace="fid_node") as astra, LoopbackDNS(_astra_names(astra)) as dns:
        results = run_client(SCRIPT, {"mode": "astra", "bundle": astra.bundle_path,
                                      "nodes": 2, "username": "token",
                                      "password": "AstraCS:x", "dns_server": dns.address},
                             env=ENV)
        results["_dns_queries"] = dns.queries
        yield results


def _astra_names(astra):
    """The host names in the fake's bundle (its SNI proxy and metadata service), all on
    loopback: the names the Node.js driver will ask DNS for."""
    import json
    import zipfile
    with zipfile.ZipFile(astra.bundle_path) as bundle:
        config = json.loads(bundle.read("config.json").decode("utf-8"))
    names = {"localhost": "127.0.0.1"}
    for key in ("host", "sni_host"):
        host = config.get(key)
        if host and not host.replace(".", "").isdigit():
            names[host] = "127.0.0.1"
    return names


@pytest.fixture(scope="module", params=RELEASES)
def release_results(request):
    return run_release(SCRIPT, request.param, env=ENV)


@pytest.mark.parametrize("name", RELEASE_CHECKS)
def test_each_release(release_results, name):
    """3.11 (no system.peers_v2, v4 at most) and 5.0 clusters, as the driver sees them."""
    assert_check(release_results, name)


@pytest.mark.parametrize("name", CLUSTER_CHECKS)
def test_simulated_cluster(cluster_results, name):
    assert_check(cluster_results, name)


# The Node.js driver resolves the SNI proxy's name with dns.resolve4 (a DNS query; /etc/hosts
# is not read), so the fake's "localhost" resolves only where a DNS server answers for it:
# the fixture runs one on loopback (_dns.LoopbackDNS) and the client uses it.
@pytest.mark.parametrize("name", ASTRA_CHECKS)
def test_fake_astra_bundle(astra_results, name):
    assert_check(astra_results, name)


def test_the_sni_proxy_name_was_resolved_over_dns(astra_results):
    assert ("localhost", 1) in astra_results["_dns_queries"]
