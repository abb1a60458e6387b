"""Bridges for applications that keep another Cassandra driver but want cqlreactor's IO.

    from cqlreactor.compat.cassandra_driver import GeventConnection
    cluster = cassandra.cluster.Cluster(..., connection_class=GeventConnection)

Nothing here is imported by ``import cqlreactor``; each bridge needs its driver installed
(``pip install 'cqlreactor[cassandra-driver]'``).
"""

__all__ = []
