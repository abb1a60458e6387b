"""Test infrastructure shipped with cqlreactor: a simulated Cassandra cluster (a real CQL
server process with several nodes), its pytest plugin and a fake Astra.

    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=3) as sim:
        ...  # connect to sim.contact_points / sim.port

Imports are lazy, so ``cqlreactor.testing.engine`` (pure logic) loads without the server.
"""

import sys

__all__ = ["SimulatedCluster"]


def __getattr__(name):
    if name == "SimulatedCluster":
        from cqlreactor.testing.cluster import SimulatedCluster
        return SimulatedCluster
    raise AttributeError("module 'cqlreactor.testing' has no attribute %r" % (name,))


if sys.version_info < (3, 7):     # no module __getattr__ before 3.7
    from cqlreactor.testing.cluster import SimulatedCluster  # noqa: E402,F401
