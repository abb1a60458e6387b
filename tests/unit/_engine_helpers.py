"""What the simulator engine's unit tests share: a clock they move by hand and the three-node
engine with keyspace ``ks`` (replication factor 3) the per-node schema tests start from."""

from cqlreactor.testing.engine import Engine, NodeInfo


class Clock(object):
    """An injected clock (seconds) the tests move by hand."""

    def __init__(self, now=1700000000.0):
        self.now = now

    def __call__(self):
        return self.now


def three_node_engine_with_ks(clock, schema_delay=0.5):
    """Three nodes whose DDL propagates after ``schema_delay``; ``ks`` created on node 0."""
    engine = Engine([NodeInfo(i, "127.0.0.%d" % (i + 1)) for i in range(3)], clock=clock,
                    schema_delay=schema_delay)
    engine.execute("CREATE KEYSPACE ks WITH replication = "
                   "{'class': 'SimpleStrategy', 'replication_factor': 3}", node=0)
    return engine
