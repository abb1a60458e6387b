"""Helpers the integration tests of our own Cluster share."""

import contextlib
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


@contextlib.contextmanager
def tls_simulated_cluster(directory, nodes=1, names=None):
    """A simulated cluster of ``nodes`` TLS nodes (127.0.0.1 ...), their certificate signed by
    a new CA in ``directory`` (a path); yields ``(sim, ca)``, ``ca.cert_path`` being what a
    client trusts.  The certificate names the nodes' addresses, or ``names`` (a list) instead.
    Needs cryptography (the ``testing`` extra)."""
    from cqlreactor.testing import SimulatedCluster
    from cqlreactor.testing.astra.certs import make_ca, make_cert
    directory = str(directory)
    ca = make_ca(directory)
    make_cert(ca, names or ["127.0.0.%d" % (i + 1) for i in range(nodes)], directory, "node",
              usage="server")
    with SimulatedCluster(nodes=nodes, tls_dir=directory) as sim:
        yield sim, ca
