"""Test infrastructure shipped with cqlreactor: a simulated Cassandra cluster (a real CQL
server process with several nodes), its pytest plugin and a fake Astra.

    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=3) as sim:
        ...  # connect to sim.contact_points / sim.port
"""

from cqlreactor.testing.cluster import SimulatedCluster

__all__ = ["SimulatedCluster"]
