"""Fixtures for the integration tests: simulated clusters (real server processes).

Clusters are module-scoped: starting one costs about a tenth of a second, and tests that change
its state (stopped nodes, primes, faults) undo it or call ``sim.clear()``.
"""

import pytest

from cqlreactor.testing import SimulatedCluster


@pytest.fixture(scope="module")
def sim():
    """A 3-node simulated cluster, protocol v3-v5, no auth, no TLS."""
    with SimulatedCluster(nodes=3) as cluster:
        yield cluster


@pytest.fixture
def reactor(cql_reactor):
    """The reactor name under test: the pytest plugin's ``cql_reactor``, one run per reactor
    available here (skipped with the matrix's reason otherwise)."""
    return cql_reactor


@pytest.fixture
def clean_sim(sim):
    """The module's cluster, cleared (primes, faults, logs) and with every node up, before and
    after the test."""
    _reset(sim)
    yield sim
    _reset(sim)


def _reset(sim):
    sim.clear()
    for i, info in enumerate(sim.node_info()):
        if not info["up"]:
            sim.start_node(i)


@pytest.fixture
def raw_client(sim):
    """A factory of raw CQL clients connected to a node of the module's cluster."""
    from _rawcql import RawClient
    clients = []

    def connect(node=0, version=4, cluster=None, **kw):
        cluster = cluster or sim
        client = RawClient(cluster.contact_points[node], cluster.port, version=version, **kw)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
