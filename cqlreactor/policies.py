"""Load balancing, retry and reconnection policies, named and behaving as in cassandra-driver."""

import itertools
import logging
import random
import socket
import threading
import warnings

from cqlreactor.core.consistency import ConsistencyLevel

__all__ = [
    "HostDistance", "HostStateListener", "LoadBalancingPolicy", "RoundRobinPolicy",
    "DCAwareRoundRobinPolicy", "TokenAwarePolicy", "WhiteListRoundRobinPolicy",
    "HostFilterPolicy", "WrapperPolicy", "DefaultLoadBalancingPolicy",
    "RetryPolicy", "RetryDecision", "FallthroughRetryPolicy", "NeverRetryPolicy",
    "DowngradingConsistencyRetryPolicy", "ReconnectionPolicy", "ConstantReconnectionPolicy",
    "ExponentialReconnectionPolicy", "WriteType", "AddressTranslator", "IdentityTranslator",
    "EC2MultiRegionTranslator", "SpeculativeExecutionPolicy", "SpeculativeExecutionPlan",
    "NoSpeculativeExecutionPolicy", "NoSpeculativeExecutionPlan",
    "ConstantSpeculativeExecutionPolicy",
]

log = logging.getLogger(__name__)


class HostDistance(object):
    LOCAL = 0
    REMOTE = 1
    IGNORED = -1


class HostStateListener(object):
    """What the cluster tells about hosts: added, up, down, removed."""

    def on_up(self, host):
        pass

    def on_down(self, host):
        pass

    def on_add(self, host):
        pass

    def on_remove(self, host):
        pass


class LoadBalancingPolicy(HostStateListener):
    """Decides which hosts a request tries, in order (the query plan)."""

    def populate(self, cluster, hosts):
        raise NotImplementedError

    def distance(self, host):
        raise NotImplementedError

    def make_query_plan(self, working_keyspace=None, query=None):
        raise NotImplementedError

    def check_supported(self):
        pass

    def why_unused(self, hosts):
        """Why this policy uses none of ``hosts`` (a sentence naming the setting to change), or
        None: the session's NoHostAvailable at connect says it."""
        return None


class RoundRobinPolicy(LoadBalancingPolicy):
    """Every live host, starting one further along on each plan."""

    def __init__(self):
        self._hosts = ()
        self._lock = threading.Lock()
        self._counter = itertools.count(random.randint(0, 1 << 16))

    def populate(self, cluster, hosts):
        with self._lock:
            self._hosts = tuple(hosts)

    def distance(self, host):
        return HostDistance.LOCAL

    def make_query_plan(self, working_keyspace=None, query=None):
        hosts = self._hosts
        if not hosts:
            return
        start = next(self._counter) % len(hosts)
        for i in range(len(hosts)):
            host = hosts[(start + i) % len(hosts)]
            if host.is_up:
                yield host

    def on_up(self, host):
        self.on_add(host)

    def on_add(self, host):
        with self._lock:
            if host not in self._hosts:
                self._hosts = self._hosts + (host,)

    def on_remove(self, host):
        with self._lock:
            self._hosts = tuple(h for h in self._hosts if h is not host)

    def on_down(self, host):
        pass  # kept in the list; plans skip hosts that are down


class DCAwareRoundRobinPolicy(LoadBalancingPolicy):
    """Round robin over the local data center, then ``used_hosts_per_remote_dc`` remote hosts.

    The local DC is the one given, or (cloud) the metadata service's, or else the DC of the first
    contact point that answered.
    """

    def __init__(self, local_dc="", used_hosts_per_remote_dc=0):
        self.local_dc = local_dc
        self.used_hosts_per_remote_dc = used_hosts_per_remote_dc
        self._dc_hosts = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(random.randint(0, 1 << 16))
        self._contact_points = ()

    def populate(self, cluster, hosts):
        with self._lock:
            self._dc_hosts = {}
            for host in hosts:
                self._dc_hosts[host.datacenter] = self._dc_hosts.get(host.datacenter, ()) + (host,)
            if not self.local_dc:
                local = getattr(cluster, "local_dc_hint", None) if cluster is not None else None
                if local:
                    self.local_dc = local
                elif hosts:
                    dcs = [h.datacenter for h in hosts if h.datacenter]
                    if dcs:
                        self.local_dc = dcs[0]
                        log.info("DCAwareRoundRobinPolicy: using %r as the local data center "
                                 "(set local_dc to choose another)", self.local_dc)

    def why_unused(self, hosts):
        dcs = sorted(set(str(h.datacenter) for h in hosts))
        if self.local_dc and self.local_dc not in dcs:
            return ("DCAwareRoundRobinPolicy(local_dc=%r): the cluster has no data center of "
                    "that name; its data centers are %s" % (self.local_dc, ", ".join(
                        repr(dc) for dc in dcs)))
        return None

    def distance(self, host):
        dc = host.datacenter
        if dc == self.local_dc or not self.local_dc:
            return HostDistance.LOCAL
        if not self.used_hosts_per_remote_dc:
            return HostDistance.IGNORED
        remote = self._dc_hosts.get(dc, ())[:self.used_hosts_per_remote_dc]
        return HostDistance.REMOTE if host in remote else HostDistance.IGNORED

    def make_query_plan(self, working_keyspace=None, query=None):
        local = self._dc_hosts.get(self.local_dc, ())
        if not self.local_dc:
            local = tuple(itertools.chain.from_iterable(self._dc_hosts.values()))
        if local:
            start = next(self._counter) % len(local)
            for i in range(len(local)):
                host = local[(start + i) % len(local)]
                if host.is_up:
                    yield host
        if self.used_hosts_per_remote_dc and self.local_dc:
            for dc, hosts in list(self._dc_hosts.items()):
                if dc == self.local_dc:
                    continue
                for host in hosts[:self.used_hosts_per_remote_dc]:
                    if host.is_up:
                        yield host

    def on_up(self, host):
        self.on_add(host)

    def on_add(self, host):
        with self._lock:
            hosts = self._dc_hosts.get(host.datacenter, ())
            if host not in hosts:
                self._dc_hosts[host.datacenter] = hosts + (host,)

    def on_remove(self, host):
        with self._lock:
            hosts = self._dc_hosts.get(host.datacenter, ())
            self._dc_hosts[host.datacenter] = tuple(h for h in hosts if h is not host)


class TokenAwarePolicy(LoadBalancingPolicy):
    """Tries the replicas of the statement's routing key first (local ones, in the child's
    order of preference), then whatever the child policy proposes."""

    def __init__(self, child_policy, shuffle_replicas=False):
        #: the policy whose plan follows the replicas; a plain attribute because the session
        #: reads it on every request without a routing key (and then asks it directly)
        self.child_policy = child_policy
        self.shuffle_replicas = shuffle_replicas
        self._cluster_metadata = None

    def populate(self, cluster, hosts):
        self._cluster_metadata = getattr(cluster, "metadata", None)
        self.child_policy.populate(cluster, hosts)

    def distance(self, host):
        return self.child_policy.distance(host)

    def why_unused(self, hosts):
        return self.child_policy.why_unused(hosts)

    def make_query_plan(self, working_keyspace=None, query=None):
        child_plan = self.child_policy.make_query_plan(working_keyspace, query)
        routing_key = getattr(query, "routing_key", None) if query is not None else None
        keyspace = (getattr(query, "keyspace", None) if query is not None else None) \
            or working_keyspace
        metadata = self._cluster_metadata
        if routing_key is None or keyspace is None or metadata is None:
            for host in child_plan:
                yield host
            return
        replicas = metadata.get_replicas(keyspace, routing_key)
        if self.shuffle_replicas:
            replicas = list(replicas)
            random.shuffle(replicas)
        tried = set()
        for replica in replicas:
            if replica.is_up and self.child_policy.distance(replica) == HostDistance.LOCAL:
                tried.add(id(replica))
                yield replica
        for host in child_plan:
            if id(host) not in tried:
                yield host

    def on_up(self, host):
        self.child_policy.on_up(host)

    def on_down(self, host):
        self.child_policy.on_down(host)

    def on_add(self, host):
        self.child_policy.on_add(host)

    def on_remove(self, host):
        self.child_policy.on_remove(host)


def _host_addresses(host):
    """The addresses a host is known by: where connections go, and its own rpc address."""
    addresses = set()
    endpoint_address = getattr(host.endpoint, "address", None)
    if endpoint_address:
        addresses.add(str(endpoint_address))
    if host.address:
        addresses.add(str(host.address))
    return addresses


class WhiteListRoundRobinPolicy(RoundRobinPolicy):
    """Round robin over the hosts whose address is in ``hosts`` (names are resolved once, here);
    every other host is IGNORED: no pool, never in a plan."""

    def __init__(self, hosts):
        if isinstance(hosts, str):
            raise TypeError("WhiteListRoundRobinPolicy takes a list of addresses, not a string")
        RoundRobinPolicy.__init__(self)
        self._allowed_hosts = tuple(hosts)
        resolved = set()
        for name in self._allowed_hosts:
            for info in socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM):
                resolved.add(info[4][0])
        self._allowed_hosts_resolved = frozenset(resolved)

    def _allowed(self, host):
        return bool(_host_addresses(host) & self._allowed_hosts_resolved)

    def populate(self, cluster, hosts):
        RoundRobinPolicy.populate(self, cluster, [h for h in hosts if self._allowed(h)])

    def distance(self, host):
        return HostDistance.LOCAL if self._allowed(host) else HostDistance.IGNORED

    def on_up(self, host):
        if self._allowed(host):
            RoundRobinPolicy.on_up(self, host)

    def on_add(self, host):
        if self._allowed(host):
            RoundRobinPolicy.on_add(self, host)

    def why_unused(self, hosts):
        if not any(self._allowed(h) for h in hosts):
            return ("WhiteListRoundRobinPolicy(%r) allows none of the cluster's hosts (%s)" % (
                list(self._allowed_hosts), ", ".join(sorted(
                    str(h.endpoint) for h in hosts))))
        return None


class HostFilterPolicy(LoadBalancingPolicy):
    """The child policy's plans and distances, minus the hosts ``predicate(host)`` is false for
    (those are IGNORED: no pool, never in a plan)."""

    def __init__(self, child_policy, predicate):
        self._child_policy = child_policy
        self._predicate = predicate

    @property
    def predicate(self):
        """The filter given at construction (read-only)."""
        return self._predicate

    @property
    def child_policy(self):
        return self._child_policy

    def populate(self, cluster, hosts):
        self._child_policy.populate(cluster=cluster, hosts=hosts)

    def distance(self, host):
        if self._predicate(host):
            return self._child_policy.distance(host)
        return HostDistance.IGNORED

    def make_query_plan(self, working_keyspace=None, query=None):
        predicate = self._predicate
        for host in self._child_policy.make_query_plan(working_keyspace=working_keyspace,
                                                       query=query):
            if predicate(host):
                yield host

    def on_up(self, host, *args, **kwargs):
        return self._child_policy.on_up(host, *args, **kwargs)

    def on_down(self, host, *args, **kwargs):
        return self._child_policy.on_down(host, *args, **kwargs)

    def on_add(self, host, *args, **kwargs):
        return self._child_policy.on_add(host, *args, **kwargs)

    def on_remove(self, host, *args, **kwargs):
        return self._child_policy.on_remove(host, *args, **kwargs)

    def check_supported(self):
        return self._child_policy.check_supported()

    def why_unused(self, hosts):
        kept = [h for h in hosts if self._predicate(h)]
        if not kept:
            return "HostFilterPolicy's predicate %r is false for every host" % (
                self._predicate,)
        return self._child_policy.why_unused(kept)


class WrapperPolicy(LoadBalancingPolicy):
    """A policy that hands everything to ``child_policy`` (subclasses change the plans)."""

    def __init__(self, child_policy):
        self._child_policy = child_policy

    @property
    def child_policy(self):
        return self._child_policy

    def distance(self, *args, **kwargs):
        return self._child_policy.distance(*args, **kwargs)

    def populate(self, cluster, hosts):
        self._child_policy.populate(cluster, hosts)

    def make_query_plan(self, working_keyspace=None, query=None):
        return self._child_policy.make_query_plan(working_keyspace, query)

    def on_up(self, *args, **kwargs):
        return self._child_policy.on_up(*args, **kwargs)

    def on_down(self, *args, **kwargs):
        return self._child_policy.on_down(*args, **kwargs)

    def on_add(self, *args, **kwargs):
        return self._child_policy.on_add(*args, **kwargs)

    def on_remove(self, *args, **kwargs):
        return self._child_policy.on_remove(*args, **kwargs)

    def check_supported(self):
        return self._child_policy.check_supported()

    def why_unused(self, hosts):
        return self._child_policy.why_unused(hosts)


class DefaultLoadBalancingPolicy(WrapperPolicy):
    """The child's plan, with the statement's ``target_host`` (an address, an Endpoint or a
    Host) first when that host is known and up.  ``Session.execute(..., host=...)`` is the
    direct way to pick one host."""

    _cluster_metadata = None

    def populate(self, cluster, hosts):
        self._cluster_metadata = cluster.metadata
        self._child_policy.populate(cluster, hosts)

    def _target(self, query):
        target = getattr(query, "target_host", None) if query is not None else None
        metadata = self._cluster_metadata
        if target is None or metadata is None:
            return None
        if hasattr(target, "endpoint") and hasattr(target, "is_up"):     # a Host
            return target
        return metadata.get_host(target) or metadata.get_host_by_address(target)

    def make_query_plan(self, working_keyspace=None, query=None):
        keyspace = (getattr(query, "keyspace", None) if query is not None else None) \
            or working_keyspace
        target = self._target(query)
        child_plan = self._child_policy.make_query_plan(keyspace, query)
        if target is not None and target.is_up:
            yield target
            for host in child_plan:
                if host is not target:
                    yield host
            return
        for host in child_plan:
            yield host


# --- retries ---------------------------------------------------------------------------------

class WriteType(object):
    """The write types a WriteTimeout names."""
    SIMPLE = "SIMPLE"
    BATCH = "BATCH"
    UNLOGGED_BATCH = "UNLOGGED_BATCH"
    COUNTER = "COUNTER"
    BATCH_LOG = "BATCH_LOG"
    CAS = "CAS"
    VIEW = "VIEW"
    CDC = "CDC"

    # the protocol sends the names and they are the values here, so both maps are identities
    # (cassandra-driver numbers the types; docs/migrating.md)
    name_to_value = {}  # type: dict
    value_to_name = {}  # type: dict


for _name in ("SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"):
    WriteType.name_to_value[_name] = WriteType.value_to_name[_name] = _name
del _name


class RetryDecision(object):
    """What a retry policy decides (the numbers are cassandra-driver's RetryPolicy constants)."""
    RETRY = 0
    RETHROW = 1
    IGNORE = 2
    RETRY_NEXT_HOST = 3


class RetryPolicy(object):
    """The default retry policy; its decisions are cassandra-driver's for the same arguments
    (tests/unit/test_retry_oracle.py compares them).

    - read timeout: retry once on the same host when enough replicas answered but the data was
      not among the answers (the data is most likely there now);
    - write timeout: retry once when the batch log write timed out (BATCH_LOG: the batch was
      not applied yet); rethrow every other write type;
    - unavailable: try the next host once (another coordinator may see more live replicas);
    - request error (connection lost, overloaded, bootstrapping, server error): the next host,
      whatever the statement and however often (as cassandra-driver, which notes it keeps this
      for compatibility).  A non-idempotent write whose connection was lost may then be
      applied twice: subclass and return RETHROW (``is_read(query)`` and
      ``query.is_idempotent`` tell the cases apart) when that matters.
    Each method returns ``(decision, consistency_level_or_None)``.
    """

    RETRY = RetryDecision.RETRY
    RETHROW = RetryDecision.RETHROW
    IGNORE = RetryDecision.IGNORE
    RETRY_NEXT_HOST = RetryDecision.RETRY_NEXT_HOST

    def on_read_timeout(self, query, consistency, required_responses, received_responses,
                        data_retrieved, retry_num):
        if retry_num != 0:
            return self.RETHROW, None
        if received_responses >= required_responses and not data_retrieved:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_write_timeout(self, query, consistency, write_type, required_responses,
                         received_responses, retry_num):
        if retry_num == 0 and write_type == WriteType.BATCH_LOG:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
        if retry_num == 0:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_request_error(self, query, consistency, error, retry_num):
        return self.RETRY_NEXT_HOST, None


def is_read(query):
    """True for a SELECT: running it twice changes nothing, so it may be retried even when
    the statement was not marked idempotent."""
    text = getattr(query, "query_string", None)
    if not isinstance(text, str):
        return False
    return text.lstrip().lstrip("(").lstrip()[:6].upper() == "SELECT"


class FallthroughRetryPolicy(RetryPolicy):
    """Never retries."""

    def on_read_timeout(self, *args, **kwargs):
        return self.RETHROW, None

    def on_write_timeout(self, *args, **kwargs):
        return self.RETHROW, None

    def on_unavailable(self, *args, **kwargs):
        return self.RETHROW, None

    def on_request_error(self, *args, **kwargs):
        return self.RETHROW, None


class NeverRetryPolicy(RetryPolicy):
    """Rethrows timeouts and unavailable errors; request errors (a lost connection, an
    overloaded coordinator) are handled as by RetryPolicy."""

    def _rethrow(self, *args, **kwargs):
        return self.RETHROW, None

    on_read_timeout = _rethrow
    on_write_timeout = _rethrow
    on_unavailable = _rethrow


class DowngradingConsistencyRetryPolicy(RetryPolicy):
    """*Deprecated* (as in cassandra-driver): RetryPolicy's retries, plus retries at a lower
    consistency when the requested one cannot be reached -- which can break the guarantees the
    application asked for (a QUORUM read may miss a QUORUM write).

    - read timeout: fewer replicas answered than required -> retry at THREE/TWO/ONE (as many as
      answered); enough answered but without data -> retry at the same consistency;
    - write timeout: SIMPLE/BATCH/COUNTER acknowledged by at least one replica -> IGNORE;
      UNLOGGED_BATCH -> retry at as many replicas as acknowledged; BATCH_LOG -> retry;
    - unavailable: serial consistency -> next host; otherwise retry at as many as are alive.
    Only the first failure of a request is retried; serial reads are never downgraded.
    """

    def __init__(self, *args, **kwargs):
        super(DowngradingConsistencyRetryPolicy, self).__init__(*args, **kwargs)
        warnings.warn("DowngradingConsistencyRetryPolicy is deprecated (as in "
                      "cassandra-driver): it silently lowers the consistency level",
                      DeprecationWarning, stacklevel=2)

    def _pick_consistency(self, num_responses):
        if num_responses >= 3:
            return self.RETRY, ConsistencyLevel.THREE
        if num_responses == 2:
            return self.RETRY, ConsistencyLevel.TWO
        if num_responses == 1:
            return self.RETRY, ConsistencyLevel.ONE
        return self.RETHROW, None

    def on_read_timeout(self, query, consistency, required_responses, received_responses,
                        data_retrieved, retry_num):
        if retry_num != 0 or ConsistencyLevel.is_serial(consistency):
            return self.RETHROW, None
        if received_responses < required_responses:
            return self._pick_consistency(received_responses)
        if not data_retrieved:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_write_timeout(self, query, consistency, write_type, required_responses,
                         received_responses, retry_num):
        if retry_num != 0:
            return self.RETHROW, None
        if write_type in (WriteType.SIMPLE, WriteType.BATCH, WriteType.COUNTER):
            if received_responses > 0:
                return self.IGNORE, None     # persisted on at least one replica
            return self.RETHROW, None
        if write_type == WriteType.UNLOGGED_BATCH:
            return self._pick_consistency(received_responses)
        if write_type == WriteType.BATCH_LOG:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
        if retry_num != 0:
            return self.RETHROW, None
        if ConsistencyLevel.is_serial(consistency):
            return self.RETRY_NEXT_HOST, None   # the paxos phase failed: another coordinator
        return self._pick_consistency(alive_replicas)


# --- reconnection ----------------------------------------------------------------------------

class ReconnectionPolicy(object):
    def new_schedule(self):
        """An iterator of delays (seconds) between reconnection attempts."""
        raise NotImplementedError


class ConstantReconnectionPolicy(ReconnectionPolicy):
    """``delay`` seconds between attempts, ``max_attempts`` times; None (or 0, as in
    cassandra-driver) tries forever."""

    def __init__(self, delay, max_attempts=64):
        if delay < 0:
            raise ValueError("delay must not be negative")
        if max_attempts is not None and max_attempts < 0:
            raise ValueError("max_attempts must not be negative (None retries forever)")
        self.delay = delay
        self.max_attempts = max_attempts

    def new_schedule(self):
        if not self.max_attempts:
            return itertools.repeat(self.delay)
        return itertools.repeat(self.delay, self.max_attempts)


class ExponentialReconnectionPolicy(ReconnectionPolicy):
    """base_delay * 2**n, capped at max_delay, with +/-15% jitter so hosts don't reconnect in
    lockstep."""

    def __init__(self, base_delay=1.0, max_delay=600.0, max_attempts=64):
        if base_delay < 0 or max_delay < 0:
            raise ValueError("delays must not be negative")
        if max_delay < base_delay:
            raise ValueError("max_delay must be at least base_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts

    def new_schedule(self):
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            delay = min(self.base_delay * (2 ** min(attempt, 62)), self.max_delay)
            yield min(self.max_delay, delay * random.uniform(0.85, 1.15))
            attempt += 1


# --- address translation ---------------------------------------------------------------------

class AddressTranslator(object):
    """Turns the address a node advertises (system.peers / system.local rpc address) into the
    one this client connects to.  Contact points are not translated, as in cassandra-driver."""

    def translate(self, addr):
        raise NotImplementedError


class IdentityTranslator(AddressTranslator):
    """Connects where the nodes say (the default)."""

    def translate(self, addr):
        return addr


class EC2MultiRegionTranslator(AddressTranslator):
    """For EC2 clusters whose nodes advertise public addresses: a reverse lookup of the address
    gives the instance's public DNS name, whose forward lookup inside the same region gives the
    private address (and the public one elsewhere).  The address is kept when a lookup fails."""

    def translate(self, addr):
        try:
            family = socket.getaddrinfo(addr, 0, socket.AF_UNSPEC, socket.SOCK_STREAM)[0][0]
            name = socket.getfqdn(addr)
            for info in socket.getaddrinfo(name, 0, family, socket.SOCK_STREAM):
                return info[4][0]
        except (socket.error, UnicodeError) as exc:
            log.debug("EC2MultiRegionTranslator kept %s: %r", addr, exc)
        return addr


# --- speculative execution ---------------------------------------------------------------------

class SpeculativeExecutionPlan(object):
    """One request's schedule of extra attempts."""

    def next_execution(self, host):
        """Seconds to wait before the next extra attempt (``host``: the latest one's), or a
        negative number for no more."""
        raise NotImplementedError


class NoSpeculativeExecutionPlan(SpeculativeExecutionPlan):
    def next_execution(self, host):
        return -1


class SpeculativeExecutionPolicy(object):
    """Decides when an idempotent request (``Statement.is_idempotent``) is sent again to the
    next host of its plan while the earlier attempts are still running; the first answer wins
    and the others' answers are dropped when they arrive (their stream ids are freed then, or
    stay reserved as orphans past the request's deadline).  Set it on an ExecutionProfile's
    ``speculative_execution_policy``."""

    def new_plan(self, keyspace, statement):
        """A SpeculativeExecutionPlan for one request of ``statement``."""
        raise NotImplementedError


class NoSpeculativeExecutionPolicy(SpeculativeExecutionPolicy):
    """One attempt at a time (the default)."""

    def new_plan(self, keyspace, statement):
        return NoSpeculativeExecutionPlan()


class ConstantSpeculativeExecutionPolicy(SpeculativeExecutionPolicy):
    """Up to ``max_attempts`` extra attempts, each ``delay`` seconds after the previous one."""

    def __init__(self, delay, max_attempts):
        if delay is None or delay < 0:
            raise ValueError("delay must be a number of seconds >= 0, not %r" % (delay,))
        if max_attempts is None or max_attempts < 0:
            raise ValueError("max_attempts must be a count >= 0, not %r" % (max_attempts,))
        self.delay = delay
        self.max_attempts = max_attempts

    class ConstantSpeculativeExecutionPlan(SpeculativeExecutionPlan):
        def __init__(self, delay, max_attempts):
            self.delay = delay
            self.remaining = max_attempts

        def next_execution(self, host):
            if self.remaining > 0:
                self.remaining -= 1
                return self.delay
            return -1

    def new_plan(self, keyspace, statement):
        return self.ConstantSpeculativeExecutionPlan(self.delay, self.max_attempts)
