"""The policies cassandra-driver users configure (issue 10), with cassandra-driver's signatures
and decisions (it is installed in the test environment and used as the oracle), then each one in
use against the simulated cluster: which hosts get pools, which node serves each request.

Load balancing and retries are decided by the session, not the reactor: these scenarios run on
the default reactor."""

import inspect
import itertools
import warnings

import pytest
from _cluster_helpers import wait_until

import cassandra.policies as theirs
from cassandra import ConsistencyLevel as TheirConsistency

from cqlreactor import Cluster, ConsistencyLevel, ExecutionProfile, NoHostAvailable
from cqlreactor.statements import SimpleStatement
from cqlreactor.policies import (
    AddressTranslator, ConstantReconnectionPolicy, DCAwareRoundRobinPolicy,
    DefaultLoadBalancingPolicy, DowngradingConsistencyRetryPolicy, EC2MultiRegionTranslator,
    FallthroughRetryPolicy, HostDistance, HostFilterPolicy, IdentityTranslator,
    NeverRetryPolicy, RetryPolicy, RoundRobinPolicy, TokenAwarePolicy, WhiteListRoundRobinPolicy,
    WriteType)


# --- signatures and decisions, cassandra-driver as the oracle ----------------------------------

def _parameters(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", [
    "WhiteListRoundRobinPolicy", "HostFilterPolicy", "DefaultLoadBalancingPolicy",
    "TokenAwarePolicy", "DCAwareRoundRobinPolicy", "ConstantReconnectionPolicy",
    "ConstantSpeculativeExecutionPolicy", "DowngradingConsistencyRetryPolicy",
    "IdentityTranslator", "EC2MultiRegionTranslator", "NeverRetryPolicy", "WrapperPolicy"])
def test_constructor_signatures_match(name):
    import cqlreactor.policies as ours
    assert _parameters(getattr(ours, name).__init__) == \
        _parameters(getattr(theirs, name).__init__)


@pytest.mark.parametrize("method", ["on_read_timeout", "on_write_timeout", "on_unavailable",
                                    "on_request_error"])
def test_retry_policy_methods_match(method):
    assert _parameters(getattr(RetryPolicy, method)) == \
        _parameters(getattr(theirs.RetryPolicy, method))
    for decision in ("RETRY", "RETHROW", "IGNORE", "RETRY_NEXT_HOST"):
        assert getattr(RetryPolicy, decision) == getattr(theirs.RetryPolicy, decision)


def test_token_aware_shuffle_default_matches():
    assert TokenAwarePolicy(RoundRobinPolicy()).shuffle_replicas is \
        theirs.TokenAwarePolicy(theirs.RoundRobinPolicy()).shuffle_replicas is False


def test_downgrading_policy_decides_as_cassandra_driver():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = DowngradingConsistencyRetryPolicy()
        oracle = theirs.DowngradingConsistencyRetryPolicy()
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    levels = [ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.ALL,
              ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_SERIAL]
    assert levels == [TheirConsistency.ONE, TheirConsistency.QUORUM, TheirConsistency.ALL,
                      TheirConsistency.SERIAL, TheirConsistency.LOCAL_SERIAL]
    counts = range(0, 5)
    for cl, req, rec, data, retry in itertools.product(levels, counts, counts, (False, True),
                                                       (0, 1)):
        assert ours.on_read_timeout(None, cl, req, rec, data, retry) == \
            oracle.on_read_timeout(None, cl, req, rec, data, retry)
    write_types = ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW",
                   "CDC"]
    for cl, wt, req, rec, retry in itertools.product(levels, write_types, counts, counts, (0, 1)):
        ours_wt = getattr(WriteType, wt)
        assert ours.on_write_timeout(None, cl, ours_wt, req, rec, retry) == \
            oracle.on_write_timeout(None, cl, getattr(theirs.WriteType, wt), req, rec, retry)
    for cl, req, alive, retry in itertools.product(levels, counts, counts, (0, 1)):
        assert ours.on_unavailable(None, cl, req, alive, retry) == \
            oracle.on_unavailable(None, cl, req, alive, retry)


def test_never_and_fallthrough_retry_policies_match():
    for ours, oracle in ((NeverRetryPolicy(), theirs.NeverRetryPolicy()),
                         (FallthroughRetryPolicy(), theirs.FallthroughRetryPolicy())):
        assert ours.on_read_timeout(None, 1, 2, 2, False, 0) == \
            oracle.on_read_timeout(None, 1, 2, 2, False, 0)
        assert ours.on_write_timeout(None, 1, "BATCH_LOG", 2, 1, 0) == \
            oracle.on_write_timeout(None, 1, "BATCH_LOG", 2, 1, 0)
        assert ours.on_unavailable(None, 1, 2, 1, 0) == oracle.on_unavailable(None, 1, 2, 1, 0)


@pytest.mark.parametrize("args", [(0.5,), (0.5, 3), (0.0, 1), (2, None), (1, 0)])
def test_constant_reconnection_schedule_matches(args):
    ours = ConstantReconnectionPolicy(*args).new_schedule()
    oracle = theirs.ConstantReconnectionPolicy(*args).new_schedule()
    assert list(itertools.islice(ours, 100)) == list(itertools.islice(oracle, 100))


def test_constant_reconnection_refuses_as_cassandra_driver():
    for args in ((-1,), (1, -1)):
        with pytest.raises(ValueError):
            theirs.ConstantReconnectionPolicy(*args)
        with pytest.raises(ValueError):
            ConstantReconnectionPolicy(*args)


def test_translators_match():
    assert IdentityTranslator().translate("10.1.2.3") == "10.1.2.3"
    assert isinstance(EC2MultiRegionTranslator(), AddressTranslator)
    # loopback only: a reverse lookup of 127.0.0.1 and the forward lookup of its name
    assert EC2MultiRegionTranslator().translate("127.0.0.1") == \
        theirs.EC2MultiRegionTranslator().translate("127.0.0.1")


# --- in use against the simulated cluster ------------------------------------------------------

def _cluster(sim, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("contact_points", sim.contact_points)
    return Cluster(port=sim.port, **kwargs)


def _served_by(sim, marker):
    """node index -> how many requests whose text contains ``marker`` it executed."""
    counts = {}
    for i in range(len(sim.node_info())):
        for entry in sim.served(i):
            if marker in (entry.get("query") or ""):
                counts[i] = counts.get(i, 0) + 1
    return counts


def _addresses(hosts):
    return sorted(h.endpoint.address for h in hosts)


def test_white_list_round_robin_uses_only_the_listed_hosts(clean_sim):
    sim = clean_sim
    listed = sim.contact_points[1]
    with _cluster(sim, load_balancing_policy=WhiteListRoundRobinPolicy([listed])) as cluster:
        session = cluster.connect()
        assert _addresses(session.pools) == [listed]
        for _ in range(6):
            session.execute("SELECT key FROM system.local -- whitelist")
        assert _served_by(sim, "-- whitelist") == {1: 6}
        host = cluster.metadata.get_host_by_address(sim.contact_points[0])
        assert cluster.load_balancing_policy.distance(host) == HostDistance.IGNORED
    with _cluster(sim, load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.77"])) as none:
        with pytest.raises(NoHostAvailable, match="WhiteListRoundRobinPolicy"):
            none.connect()


def test_host_filter_policy_ignores_filtered_hosts(clean_sim):
    sim = clean_sim
    excluded = sim.contact_points[0]
    policy = HostFilterPolicy(RoundRobinPolicy(),
                              predicate=lambda host: host.endpoint.address != excluded)
    assert policy.predicate(cluster_host_stub(excluded)) is False
    with _cluster(sim, load_balancing_policy=policy) as cluster:
        session = cluster.connect()
        assert _addresses(session.pools) == sorted(sim.contact_points[1:])
        for _ in range(8):
            session.execute("SELECT key FROM system.local -- filtered")
        served = _served_by(sim, "-- filtered")
        assert sorted(served) == [1, 2] and sum(served.values()) == 8
    with _cluster(sim, load_balancing_policy=HostFilterPolicy(RoundRobinPolicy(),
                                                              lambda host: False)) as none:
        with pytest.raises(NoHostAvailable, match="HostFilterPolicy"):
            none.connect()


def cluster_host_stub(address):
    from cqlreactor.core.endpoint import Endpoint
    from cqlreactor.metadata import Host
    return Host(Endpoint(address, 9042))


def test_default_load_balancing_policy_puts_the_target_host_first(clean_sim):
    sim = clean_sim
    policy = DefaultLoadBalancingPolicy(RoundRobinPolicy())
    with _cluster(sim, load_balancing_policy=policy) as cluster:
        session = cluster.connect()
        target = sim.contact_points[2]
        statement = SimpleStatement("SELECT key FROM system.local -- targeted")
        statement.target_host = target
        for _ in range(5):
            session.execute(statement)
        assert _served_by(sim, "-- targeted") == {2: 5}
        # without a target: the child's round robin over every host
        for _ in range(9):
            session.execute("SELECT key FROM system.local -- untargeted")
        assert sorted(_served_by(sim, "-- untargeted")) == [0, 1, 2]


def test_token_aware_shuffle_replicas(clean_sim):
    sim = clean_sim
    with _cluster(sim) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS dropin_shuffle WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE IF NOT EXISTS dropin_shuffle.t (k int PRIMARY KEY, v int)")
        cluster.control_connection.refresh_keyspaces()
        bound = session.prepare("SELECT v FROM dropin_shuffle.t WHERE k = ?").bind((7,))
        assert len(cluster.metadata.get_replicas("dropin_shuffle", bound.routing_key)) == 3
        firsts = {}
        for shuffle in (False, True):
            policy = TokenAwarePolicy(DCAwareRoundRobinPolicy(), shuffle_replicas=shuffle)
            policy.populate(cluster, cluster.metadata.all_hosts())
            firsts[shuffle] = set(next(iter(policy.make_query_plan(None, bound))).endpoint.address
                                  for _ in range(40))
        assert len(firsts[False]) == 1          # the ring's order, every time
        assert len(firsts[True]) > 1            # 40 shuffles of 3 replicas


def test_downgrading_policy_retries_a_read_timeout_at_one(clean_sim):
    sim = clean_sim
    query = "SELECT key FROM system.local -- downgraded"
    sim.prime(query, times=1, error={"code": "read_timeout", "message": "primed",
                                     "consistency": "QUORUM", "received": 1, "block_for": 2,
                                     "data_present": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        retry = DowngradingConsistencyRetryPolicy()
    profile = ExecutionProfile(retry_policy=retry, consistency_level=ConsistencyLevel.QUORUM,
                               load_balancing_policy=RoundRobinPolicy())
    with _cluster(sim, execution_profiles={"down": profile}) as cluster:
        session = cluster.connect()
        assert session.execute(query, execution_profile="down").one().key == "local"
    sent = [e for i in range(3) for e in sim.served(i) if e.get("query") == query]
    assert [e["consistency"] for e in sent] in (["QUORUM", "ONE"], [4, 1])


class _Recording(AddressTranslator):
    """Sends connections for one node to an address where nothing listens; records the rest."""

    def __init__(self, moved, to):
        self.moved, self.to, self.seen = moved, to, []

    def translate(self, addr):
        self.seen.append(addr)
        return self.to if addr == self.moved else addr


def test_address_translator_applies_to_peers_only(clean_sim):
    sim = clean_sim
    moved, nowhere = sim.contact_points[2], "127.0.0.99"
    translator = _Recording(moved, nowhere)
    cluster = _cluster(sim, contact_points=[sim.contact_points[0]],
                       address_translator=translator)
    with cluster:
        session = cluster.connect()
        # the contact point (the control connection's system.local) is not translated
        assert sorted(set(translator.seen)) == sorted(sim.contact_points[1:])
        assert _addresses(cluster.metadata.all_hosts()) == sorted(
            [sim.contact_points[0], sim.contact_points[1], nowhere])
        moved_host = cluster.metadata.get_host_by_address(nowhere)
        # connections really go to the translated address: nothing listens there
        assert wait_until(cluster, lambda: not moved_host.is_up, 10)
        for _ in range(6):
            session.execute("SELECT key FROM system.local -- translated")
        assert 2 not in _served_by(sim, "-- translated")
    assert isinstance(Cluster(["127.0.0.1"]).address_translator, IdentityTranslator)
    with pytest.raises(TypeError, match="translate"):
        Cluster(["127.0.0.1"], address_translator=lambda address: address)


def test_later_pages_use_the_execution_profiles_policy_and_settings(clean_sim):
    """A paged query run with execution_profile=X fetches every page with X's load-balancing
    policy and consistency (cassandra-driver remakes the plan from the same profile per page);
    with execute(host=...) every page goes to that host."""
    sim = clean_sim
    table = "pages_ks.rows"
    listed = sim.contact_points[2]
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([listed]),
                               consistency_level=ConsistencyLevel.TWO)
    with _cluster(sim, execution_profiles={"x": profile}) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS pages_ks WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        session.execute("CREATE TABLE IF NOT EXISTS %s (k int PRIMARY KEY)" % table)
        for k in range(10):
            session.execute("INSERT INTO %s (k) VALUES (%d)" % (table, k))
        for i in range(3):
            sim.served(i, clear=True)
        marker = "SELECT k FROM %s -- paged by x" % table
        rows = list(session.execute(SimpleStatement(marker, fetch_size=3),
                                    execution_profile="x"))
        assert sorted(r.k for r in rows) == list(range(10))
        sent = [(i, e) for i in range(3) for e in sim.served(i) if e.get("query") == marker]
        assert [i for i, _ in sent] == [2, 2, 2, 2]           # four pages, all on the listed node
        assert set(str(e["consistency"]) for _, e in sent) <= {"TWO", "2"}

        host = cluster.metadata.get_host_by_address(sim.contact_points[1])
        marker = "SELECT k FROM %s -- paged on one host" % table
        future = session.execute_async(SimpleStatement(marker, fetch_size=4), host=host)
        assert len(list(future.result())) == 10
        assert _served_by(sim, marker) == {1: 3}
        assert _addresses(future.attempted_hosts) == [host.endpoint.address] * 3
