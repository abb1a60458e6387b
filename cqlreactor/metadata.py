"""What the driver knows about the cluster: hosts, keyspaces' replication, and the token ring.

The control connection fills this from system.local, system.peers(_v2) and
system_schema.keyspaces; load balancing reads it (token-aware routing asks the TokenMap for the
replicas of a routing key).
"""

import bisect
import threading

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.murmur3 import murmur3_token

__all__ = ["Host", "TokenMap", "Metadata", "KeyspaceMetadata", "replicas_for_token"]


class Host(object):
    """One node as the driver sees it.

    ``endpoint`` is where connections go (a core.endpoint.Endpoint or, for cloud, an SNI
    endpoint); ``address`` is the node's own rpc/broadcast address.
    """

    def __init__(self, endpoint, host_id=None, datacenter=None, rack=None, address=None,
                 release_version=None, tokens=(), is_up=True):
        self.endpoint = endpoint
        self.host_id = host_id
        self.datacenter = datacenter
        self.rack = rack
        self.address = address
        self.release_version = release_version
        self.tokens = list(tokens)
        self.is_up = is_up

    def __repr__(self):
        return "<Host %s dc=%s rack=%s %s>" % (self.endpoint, self.datacenter, self.rack,
                                               "up" if self.is_up else "down")

    def __str__(self):
        return str(self.endpoint)


class KeyspaceMetadata(object):
    """A keyspace's name and replication map (as system_schema.keyspaces stores it)."""

    def __init__(self, name, replication=None, durable_writes=True):
        self.name = name
        self.replication = dict(replication or {})
        self.durable_writes = durable_writes

    @property
    def strategy(self):
        return self.replication.get("class", "").rsplit(".", 1)[-1]


def replicas_for_token(token, ring, owners, replication, host_dc=None):
    """The replicas of ``token``: Cassandra's SimpleStrategy / NetworkTopologyStrategy placement.

    Args:
        token: the Murmur3 token of the partition key.
        ring: sorted list of tokens.
        owners: list parallel to ``ring``, the Host owning each token.
        replication: the keyspace's replication map ({'class': ..., 'replication_factor': ..}).
        host_dc: function Host -> data center name (defaults to ``host.datacenter``).
    Returns:
        list of Hosts, primary replica first.
    """
    if not ring:
        return []
    host_dc = host_dc or (lambda h: h.datacenter)
    strategy = replication.get("class", "SimpleStrategy").rsplit(".", 1)[-1]
    start = bisect.bisect_left(ring, token) % len(ring)
    n = len(ring)
    replicas = []
    if strategy == "NetworkTopologyStrategy":
        wanted = {}
        for key, value in replication.items():
            if key in ("class", "replication_factor"):
                continue
            try:
                wanted[key] = int(str(value).split("/")[0])
            except ValueError:
                continue
        taken = dict((dc, 0) for dc in wanted)
        for i in range(n):
            host = owners[(start + i) % n]
            if host in replicas:
                continue
            dc = host_dc(host)
            if taken.get(dc, 0) < wanted.get(dc, 0):
                replicas.append(host)
                taken[dc] += 1
            if all(taken[dc] >= wanted[dc] for dc in wanted):
                break
        return replicas
    if strategy in ("LocalStrategy", "EverywhereStrategy"):
        # Every node holds the data (system keyspaces): the owner first, then the rest.
        rf = n
    else:
        try:
            rf = int(str(replication.get("replication_factor", 1)).split("/")[0])
        except ValueError:
            rf = 1
    for i in range(n):
        host = owners[(start + i) % n]
        if host not in replicas:
            replicas.append(host)
            if len(replicas) >= rf:
                break
    return replicas


class TokenMap(object):
    """The Murmur3 token ring built from every host's tokens, with per-keyspace replica caches."""

    def __init__(self, hosts, keyspaces):
        pairs = []
        for host in hosts:
            for token in host.tokens:
                pairs.append((int(token), host))
        pairs.sort(key=lambda p: p[0])
        self.ring = [p[0] for p in pairs]
        self.owners = [p[1] for p in pairs]
        self.keyspaces = keyspaces
        self._cache = {}

    def get_replicas(self, keyspace, routing_key):
        """Hosts holding the partition whose serialized key is ``routing_key``."""
        ks = self.keyspaces.get(keyspace)
        if ks is None or not self.ring:
            return []
        token = murmur3_token(routing_key)
        # Replicas only change at token-ring boundaries: cache by the ring position.
        position = bisect.bisect_left(self.ring, token) % len(self.ring)
        key = (keyspace, position)
        replicas = self._cache.get(key)
        if replicas is None:
            replicas = replicas_for_token(token, self.ring, self.owners, ks.replication)
            self._cache[key] = replicas
        return replicas


class Metadata(object):
    """Hosts (by endpoint, one per host id), keyspaces and the token map; updated by the
    control connection."""

    def __init__(self):
        self.cluster_name = None
        self.partitioner = None
        #: True when the control connection's server says it is Astra (SUPPORTED's
        #: PRODUCT_TYPE), as cassandra-driver's ``Metadata.dbaas``
        self.dbaas = False
        self._hosts = {}
        self.keyspaces = {}
        self.token_map = None
        self._lock = threading.RLock()

    def all_hosts(self):
        with self._lock:
            return list(self._hosts.values())

    def get_host(self, endpoint_or_address, port=None):
        """The Host at an Endpoint, or at an address (and ``port``, when given), or None."""
        if isinstance(endpoint_or_address, Endpoint):
            return self._hosts.get(endpoint_or_address)
        for host in self.all_hosts():
            endpoint = host.endpoint
            if getattr(endpoint, "address", None) == endpoint_or_address and (
                    port is None or getattr(endpoint, "port", None) == port):
                return host
        return None

    def get_host_by_id(self, host_id):
        for host in self.all_hosts():
            if host.host_id == host_id:
                return host
        return None

    def get_host_by_address(self, address):
        """The host whose address (or endpoint address) is ``address`` (an IP, or an
        ``(ip, port)`` tuple as in server events), or None."""
        if address is None:
            return None
        ip = str(address[0] if isinstance(address, tuple) else address)
        for host in self.all_hosts():
            if host.address == ip or getattr(host.endpoint, "address", None) == ip:
                return host
        return None

    def add_or_return_host(self, host):
        """Returns (host, is_new)."""
        with self._lock:
            existing = self._hosts.get(host.endpoint)
            if existing is not None:
                return existing, False
            self._hosts[host.endpoint] = host
            return host, True

    def update_host_endpoint(self, host, endpoint):
        """``host`` (a node known by its host id) is now reached at ``endpoint``."""
        with self._lock:
            if self._hosts.get(host.endpoint) is host:
                del self._hosts[host.endpoint]
            host.endpoint = endpoint
            self._hosts[endpoint] = host

    def remove_host(self, host):
        with self._lock:
            if self._hosts.get(host.endpoint) is not host:
                return False
            del self._hosts[host.endpoint]
            return True

    def rebuild_token_map(self):
        with self._lock:
            if self.partitioner and not self.partitioner.endswith("Murmur3Partitioner"):
                self.token_map = None   # only Murmur3 routing is supported
                return
            self.token_map = TokenMap(list(self._hosts.values()), dict(self.keyspaces))

    def get_replicas(self, keyspace, key):
        """The replicas of the partition whose serialized key (a routing key) is ``key``."""
        token_map = self.token_map
        if token_map is None or keyspace is None or key is None:
            return []
        return token_map.get_replicas(keyspace, key)
