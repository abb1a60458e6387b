"""Metadata.get_replicas / the token map per keyspace, against the simulated cluster's own
replica placement (the engine places replicas as Cassandra 4 does: SimpleStrategy along the
ring, NetworkTopologyStrategy per data center with racks).  Random rings of several data
centers and racks, every keyspace strategy, many keys: both must name the same replicas, in
the same order."""

import random
import struct
import uuid

import pytest

from cqlreactor.metadata import Host, KeyspaceMetadata, Metadata

engine_module = pytest.importorskip("cqlreactor.testing.engine")

STRATEGIES = [
    "{'class': 'SimpleStrategy', 'replication_factor': 1}",
    "{'class': 'SimpleStrategy', 'replication_factor': 3}",
    "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}",
    "{'class': 'NetworkTopologyStrategy', 'dc1': 2}",
    "{'class': 'NetworkTopologyStrategy', 'dc1': 5, 'dc2': 1}",    # rf above the rack count
]


def _ring(rng, nodes):
    infos, hosts = [], []
    for i in range(nodes):
        dc = rng.choice(["dc1", "dc2"]) if i > 1 else ("dc1", "dc2")[i]
        rack = rng.choice(["r1", "r2", "r3"])
        tokens = [rng.randrange(-2 ** 63, 2 ** 63) for _ in range(rng.choice([1, 4]))]
        address = "127.0.0.%d" % (i + 1)
        infos.append(engine_module.NodeInfo(i, address, host_id=uuid.uuid4(), data_center=dc,
                                            rack=rack, tokens=tokens))
        hosts.append(Host(address, datacenter=dc, rack=rack, address=address, tokens=tokens))
    return infos, hosts


@pytest.mark.parametrize("seed", range(6))
def test_replicas_match_the_simulators_placement(seed):
    rng = random.Random(seed)
    infos, hosts = _ring(rng, rng.randrange(3, 9))
    engine = engine_module.Engine(infos)
    metadata = Metadata()
    metadata.partitioner = "org.apache.cassandra.dht.Murmur3Partitioner"
    for host in hosts:
        metadata.add_or_return_host(host)
    keyspaces = {}
    for i, strategy in enumerate(STRATEGIES):
        name = "ks%d" % i
        engine.execute("CREATE KEYSPACE %s WITH replication = %s" % (name, strategy))
        keyspaces[name] = KeyspaceMetadata(name, replication=engine.keyspaces[name].replication)
    metadata.replace_keyspaces(keyspaces)
    by_index = dict((i, h) for i, h in enumerate(hosts))
    for name in keyspaces:
        for _ in range(200):
            key = struct.pack(">q", rng.randrange(-2 ** 63, 2 ** 63))
            expected = [by_index[i] for i in engine.replicas_for(name, key)]
            assert metadata.get_replicas(name, key) == expected, (name, key)


def test_no_token_map_when_disabled():
    metadata = Metadata(token_metadata_enabled=False)
    metadata.add_or_return_host(Host("127.0.0.1", datacenter="dc1", tokens=[0]))
    metadata.rebuild_token_map()
    assert metadata.token_map is None
    assert metadata.get_replicas("ks", b"\x00") == []
