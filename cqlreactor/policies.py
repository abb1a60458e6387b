"""Load balancing, retry and reconnection policies, named and behaving as in cassandra-driver."""

import itertools
import logging
import random
import threading

__all__ = [
    "HostDistance", "LoadBalancingPolicy", "RoundRobinPolicy", "DCAwareRoundRobinPolicy",
    "TokenAwarePolicy", "RetryPolicy", "RetryDecision", "FallthroughRetryPolicy",
    "ReconnectionPolicy", "ConstantReconnectionPolicy", "ExponentialReconnectionPolicy",
    "WriteType",
]

log = logging.getLogger(__name__)


class HostDistance(object):
    LOCAL = 0
    REMOTE = 1
    IGNORED = -1


class LoadBalancingPolicy(object):
    """Decides which hosts a request tries, in order (the query plan)."""

    def populate(self, cluster, hosts):
        raise NotImplementedError

    def distance(self, host):
        raise NotImplementedError

    def make_query_plan(self, working_keyspace=None, query=None):
        raise NotImplementedError

    def on_up(self, host):
        pass

    def on_down(self, host):
        pass

    def on_add(self, host):
        pass

    def on_remove(self, host):
        pass

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
    name_to_value = {}
    value_to_name = {}


for _name in ("SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"):
    WriteType.name_to_value[_name] = WriteType.value_to_name[_name] = _name
del _name


class RetryDecision(object):
    RETHROW = 0
    RETRY = 1
    IGNORE = 2
    RETRY_NEXT_HOST = 3


class RetryPolicy(object):
    """The default retry policy.

    - read timeout: retry once on the same host when enough replicas answered but the data was
      not among the answers (the data is most likely there now);
    - write timeout: retry once only for idempotent statements whose batch log write timed out;
      never retry a non-idempotent write;
    - unavailable: try the next host once (another coordinator may see more live replicas);
    - request error (connection lost, overloaded, …): next host for idempotent statements and
      reads (SELECT) only.
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
        if retry_num != 0 or not getattr(query, "is_idempotent", False):
            return self.RETHROW, None
        if write_type == WriteType.BATCH_LOG:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
        if retry_num == 0:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_request_error(self, query, consistency, error, retry_num):
        if getattr(query, "is_idempotent", False) or is_read(query):
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None


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


# --- reconnection ----------------------------------------------------------------------------

class ReconnectionPolicy(object):
    def new_schedule(self):
        """An iterator of delays (seconds) between reconnection attempts."""
        raise NotImplementedError


class ConstantReconnectionPolicy(ReconnectionPolicy):
    def __init__(self, delay, max_attempts=64):
        if delay < 0:
            raise ValueError("delay must not be negative")
        self.delay = delay
        self.max_attempts = max_attempts

    def new_schedule(self):
        if self.max_attempts is None:
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
