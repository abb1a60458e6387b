"""Test infrastructure shipped with cqlreactor: a simulated Cassandra cluster (a real CQL
server process with several nodes), its pytest plugin and a fake Astra.

    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=3) as sim:
        ...  # connect to sim.contact_points / sim.port

Imports are lazy, so ``cqlreactor.testing.engine`` (pure logic) loads without the server.
"""

from cqlreactor import _install_lazy

__all__ = ["SimulatedCluster"]


def _resolve(name):
    if name == "SimulatedCluster":
        from cqlreactor.testing.cluster import SimulatedCluster
        globals()[name] = SimulatedCluster
        return SimulatedCluster
    raise AttributeError("module 'cqlreactor.testing' has no attribute %r" % (name,))


def _dir():
    return sorted(set(globals()) | set(__all__))


_install_lazy(__name__, _resolve, _dir)
