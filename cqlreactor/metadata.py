"""What the driver knows about the cluster: hosts, the schema, and the token ring.

The control connection fills this from system.local, system.peers(_v2) and system_schema (the
schema model is ``cqlreactor.schema``, re-exported here under cassandra.metadata's names); load
balancing reads it (token-aware routing asks the TokenMap for the replicas of a routing key).
"""

import bisect
import threading

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.murmur3 import murmur3_token
from cqlreactor.schema import (  # noqa: F401 - re-exported: cassandra.metadata's names
    Aggregate, ColumnMetadata, Function, IndexMetadata, KeyspaceMetadata,
    MaterializedViewMetadata, TableMetadata, TriggerMetadata, UserType, protect_name,
    protect_value, is_valid_name)

__all__ = ["Host", "TokenMap", "Metadata", "KeyspaceMetadata", "TableMetadata",
           "ColumnMetadata", "IndexMetadata", "MaterializedViewMetadata", "UserType",
           "Function", "Aggregate", "TriggerMetadata", "replicas_for_token", "protect_name",
           "protect_value", "is_valid_name"]


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
        return _nts_replicas(start, owners, replication, host_dc)
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


def _nts_replicas(start, owners, replication, host_dc):
    """NetworkTopologyStrategy as Cassandra 4 places it: per data center, walk the ring from
    ``start``; a host of a rack not taken yet is a replica; a host of a taken rack only while
    the DC's replication factor exceeds its number of racks (that many repeats at most)."""
    n = len(owners)
    state = {}
    dc_hosts = {}
    dc_racks = {}
    for host in owners:
        dc = host_dc(host)
        dc_hosts.setdefault(dc, set()).add(host)
        dc_racks.setdefault(dc, set()).add(getattr(host, "rack", None))
    for key, value in replication.items():
        if key in ("class", "replication_factor"):
            continue
        try:
            rf = int(str(value).split("/")[0])
        except ValueError:
            continue
        rf = min(rf, len(dc_hosts.get(key, ())))
        # [replicas still wanted, rack repeats allowed, racks taken]
        state[key] = [rf, max(0, rf - len(dc_racks.get(key, ()))), set()]
    replicas = []
    for i in range(n):
        if all(st[0] <= 0 for st in state.values()):
            break
        host = owners[(start + i) % n]
        st = state.get(host_dc(host))
        if st is None or st[0] <= 0 or host in replicas:
            continue
        rack = getattr(host, "rack", None)
        if rack not in st[2]:
            st[2].add(rack)
        elif st[1] > 0:
            st[1] -= 1
        else:
            continue
        st[0] -= 1
        replicas.append(host)
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


def _sort_by_name(mapping):
    """Reorder an OrderedDict by key as system_schema orders its rows (UTF-8 bytes), so a
    table read alone lands where a full read would put it."""
    items = sorted(mapping.items(), key=lambda item: item[0].encode("utf-8"))
    mapping.clear()
    mapping.update(items)


class Metadata(object):
    """Hosts (by endpoint, one per host id), keyspaces and the token map; updated by the
    control connection."""

    def __init__(self, token_metadata_enabled=True):
        self.cluster_name = None
        self.partitioner = None
        #: True when the control connection's server says it is Astra (SUPPORTED's
        #: PRODUCT_TYPE), as cassandra-driver's ``Metadata.dbaas``
        self.dbaas = False
        self._hosts = {}
        self.keyspaces = {}
        self.token_map = None
        self.token_metadata_enabled = token_metadata_enabled
        self._lock = threading.RLock()

    # -- schema ----------------------------------------------------------------------------

    def replace_keyspaces(self, keyspaces):
        """The whole schema was read again: ``keyspaces`` is {name: KeyspaceMetadata}."""
        with self._lock:
            self.keyspaces = dict(keyspaces)
            self.rebuild_token_map()

    def update_keyspace(self, name, keyspace):
        """One keyspace was read again (``keyspace`` None: it no longer exists)."""
        with self._lock:
            keyspaces = dict(self.keyspaces)
            if keyspace is None:
                keyspaces.pop(name, None)
            else:
                keyspaces[name] = keyspace
            self.keyspaces = keyspaces
            self.rebuild_token_map()

    def update_table(self, keyspace, name, element):
        """One table or materialized view of ``keyspace`` was read again (``element`` None:
        it no longer exists).  A table keeps the views it had; its indexes are replaced."""
        with self._lock:
            ks = self.keyspaces.get(keyspace)
            if ks is None:
                return
            old = ks.tables.pop(name, None)
            old_view = ks.views.pop(name, None)
            for index in (old.indexes if old is not None else ()):
                ks.indexes.pop(index, None)
            if old_view is not None:
                base = ks.tables.get(old_view.base_table_name)
                if base is not None:
                    base.views.pop(name, None)
            if element is None:
                for view in (old.views if old is not None else ()):
                    ks.views.pop(view, None)
                return
            if isinstance(element, TableMetadata):
                if old is not None:
                    element.views = old.views
                ks.tables[name] = element
                _sort_by_name(ks.tables)
                ks.indexes.update(element.indexes)
            else:
                ks.views[name] = element
                _sort_by_name(ks.views)
                base = ks.tables.get(element.base_table_name)
                if base is not None:
                    base.views[name] = element

    def export_schema_as_string(self):
        """CQL that re-creates every keyspace (system ones included)."""
        return "\n\n".join(ks.export_as_string() for ks in self.keyspaces.values())

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
            if not self.token_metadata_enabled:
                self.token_map = None     # Cluster(token_metadata_enabled=False)
                return
            if self.partitioner and not self.partitioner.endswith("Murmur3Partitioner"):
                self.token_map = None   # only Murmur3 routing is supported
                return
            self.token_map = TokenMap(list(self._hosts.values()), dict(self.keyspaces))

    def get_replicas(self, keyspace, key):
        """The hosts holding the partition whose serialized routing key is ``key`` in
        ``keyspace``, primary replica first ([] without a token map)."""
        token_map = self.token_map
        if token_map is None or keyspace is None or key is None:
            return []
        return token_map.get_replicas(keyspace, key)
