"""Helpers the integration tests of our own Cluster share."""

import contextlib
import time

from cqlreactor import Cluster


def cluster_for(sim, reactor, **kwargs):
    """Our Cluster pointed at the simulated cluster ``sim``, on ``reactor``."""
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


def poll(predicate, timeout=15.0, interval=0.05, sleep=time.sleep):
    """Call ``predicate`` every ``interval`` seconds until it is true or ``timeout`` passed;
    returns whether it became true.  For what has no event to wait on (a log line, a host's
    state in cassandra-driver, a span exported by another thread)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        sleep(interval)
    return True


def wait_until(cluster, predicate, timeout=15.0):
    """:func:`poll` for our Cluster: sleeps with the cluster reactor's own wait primitive
    (under gevent or eventlet without monkey-patching, ``time.sleep`` would block the hub the
    driver runs in)."""
    return poll(predicate, timeout, sleep=lambda seconds: cluster.reactor.make_event().wait(
        seconds))


def live_objects(*classes):
    """The objects the garbage collector tracks that are instances of ``classes``.  Weak
    proxies are skipped: isinstance() on a proxy whose referent is gone raises ReferenceError
    (cassandra-driver leaves such proxies behind)."""
    import gc
    import weakref
    return [o for o in gc.get_objects()
            if type(o) not in weakref.ProxyTypes and isinstance(o, classes)]


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
