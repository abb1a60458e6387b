"""pytest plugin (entry point ``pytest11``): a simulated Cassandra cluster as a fixture.

    def test_something(cql_cluster):
        cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
        cql_cluster.prime("SELECT * FROM ks.t", rows=[{"k": 1}])
        ...

Fixtures:
  * ``cql_cluster``: one cluster for the whole test session (started on first use), handed to
    each test after ``clear()`` and with every node up, so primes and faults of one test never
    leak into the next.  Its data (keyspaces, rows) is shared by the session.
  * ``cql_cluster_factory``: ``cql_cluster_factory(nodes=1, auth=("u", "p"), ...)`` starts a
    private cluster (any ``SimulatedCluster`` argument), stopped when the test ends.

Options (command line, or the same names in the ini file with underscores):
  ``--cql-cluster-nodes N`` (3), ``--cql-cluster-protocol-versions 4,5`` (3,4,5),
  ``--cql-cluster-auth USER:PASS`` (none).
"""

import pytest

__all__ = ["cql_cluster", "cql_cluster_factory"]


def pytest_addoption(parser):
    group = parser.getgroup("cqlreactor", "simulated Cassandra cluster (cqlreactor.testing)")
    group.addoption("--cql-cluster-nodes", type=int, default=None,
                    help="nodes of the cql_cluster fixture (default 3)")
    group.addoption("--cql-cluster-protocol-versions", default=None,
                    help="protocol versions its nodes speak, e.g. 4,5 (default 3,4,5)")
    group.addoption("--cql-cluster-auth", default=None, metavar="USER:PASS",
                    help="require password authentication")
    parser.addini("cql_cluster_nodes", "nodes of the cql_cluster fixture", default="3")
    parser.addini("cql_cluster_protocol_versions", "protocol versions of its nodes",
                  default="3,4,5")
    parser.addini("cql_cluster_auth", "USER:PASS for password authentication", default="")


def _option(config, name):
    value = config.getoption("--cql-cluster-" + name.replace("_", "-"))
    if value is None:
        value = config.getini("cql_cluster_" + name)
    return value


@pytest.fixture(scope="session")
def _cql_cluster_session(request):
    from cqlreactor.testing.cluster import SimulatedCluster
    config = request.config
    versions = str(_option(config, "protocol_versions"))
    cluster = SimulatedCluster(
        nodes=int(_option(config, "nodes")),
        auth=_option(config, "auth") or None,
        protocol_versions=tuple(int(v) for v in versions.split(",") if v.strip()))
    cluster.start()
    yield cluster
    cluster.stop()


def _reset(cluster):
    cluster.clear()
    for index, info in enumerate(cluster.node_info()):
        if not info["up"]:
            cluster.start_node(index)


@pytest.fixture
def cql_cluster(_cql_cluster_session):
    """The session's simulated cluster, cleared of primes and faults, every node up."""
    _reset(_cql_cluster_session)
    yield _cql_cluster_session
    _reset(_cql_cluster_session)


@pytest.fixture
def cql_cluster_factory():
    """Start private simulated clusters: ``cql_cluster_factory(nodes=1, ...)``."""
    from cqlreactor.testing.cluster import SimulatedCluster
    started = []

    def start(**options):
        cluster = SimulatedCluster(**options)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.stop()
