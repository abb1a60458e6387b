"""Helpers the integration tests of our own Cluster share."""

import time

from cqlreactor import Cluster


def cluster_for(sim, reactor, **kwargs):
    """Our Cluster pointed at the simulated cluster ``sim``, on ``reactor``."""
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


def wait_until(cluster, predicate, timeout=15.0):
    """Poll ``predicate`` until true or ``timeout``; returns whether it became true.

    Sleeps with the cluster reactor's own wait primitive: under gevent or eventlet without
    monkey-patching, ``time.sleep`` would block the hub the driver runs in.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        cluster.reactor.make_event().wait(0.05)
    return True
