"""Speculative execution as in cassandra-driver (issue 10): ExecutionProfile(
speculative_execution_policy=ConstantSpeculativeExecutionPolicy(delay, max_attempts)) sends an
idempotent statement again to the next host while the first attempt is still running; the first
answer wins, the loser's late answer frees its stream id (or, past the deadline, the id stays an
orphan until that answer), and ``future.attempted_hosts`` lists every attempt.

The slow node is real: the simulated cluster holds node 0's answer for a primed delay while it
keeps serving everything else."""

import pytest
from _cluster_helpers import wait_until

import cassandra.policies as theirs

from cqlreactor import Cluster, ExecutionProfile, OperationTimedOut, SimpleStatement
from cqlreactor.policies import (ConstantSpeculativeExecutionPolicy, NoSpeculativeExecutionPolicy,
                                 RoundRobinPolicy, SpeculativeExecutionPolicy)

SLOW = 1.0        # node 0 answers the primed query this late (seconds)


class _InAddressOrder(RoundRobinPolicy):
    """A user policy: every plan is the live hosts by address (node 0 first), so the test knows
    which host the first attempt goes to."""

    def make_query_plan(self, working_keyspace=None, query=None):
        for host in sorted(self._hosts, key=lambda h: h.endpoint.address):
            if host.is_up:
                yield host


def _session(sim, reactor, spec, **kwargs):
    profile = ExecutionProfile(load_balancing_policy=_InAddressOrder(),
                               speculative_execution_policy=spec, **kwargs)
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                      connect_timeout=5, execution_profiles={"spec": profile})
    return cluster, cluster.connect()


def _by_address(session):
    return sorted(session.pools, key=lambda h: h.endpoint.address)


def _connection(session, host):
    return session.pools[host].get_connections()[0]


def test_plans_match_cassandra_driver():
    ours = ConstantSpeculativeExecutionPolicy(0.25, 3).new_plan("ks", None)
    oracle = theirs.ConstantSpeculativeExecutionPolicy(0.25, 3).new_plan("ks", None)
    assert [ours.next_execution(None) for _ in range(5)] == \
        [oracle.next_execution(None) for _ in range(5)] == [0.25, 0.25, 0.25, -1, -1]
    assert NoSpeculativeExecutionPolicy().new_plan("ks", None).next_execution(None) == \
        theirs.NoSpeculativeExecutionPolicy().new_plan("ks", None).next_execution(None) == -1
    assert isinstance(ConstantSpeculativeExecutionPolicy(0, 1), SpeculativeExecutionPolicy)
    assert isinstance(ExecutionProfile().speculative_execution_policy,
                      NoSpeculativeExecutionPolicy)
    with pytest.raises(ValueError, match="delay"):
        ConstantSpeculativeExecutionPolicy(-1, 2)
    with pytest.raises(ValueError, match="max_attempts"):
        ConstantSpeculativeExecutionPolicy(0.1, None)


def test_speculative_attempt_wins_and_the_loser_frees_its_stream(clean_sim, reactor):
    sim = clean_sim
    query = "SELECT key, cluster_name FROM system.local"
    sim.prime(query, delay=SLOW, node=0)      # node 0's real answer, late
    cluster, session = _session(sim, reactor, ConstantSpeculativeExecutionPolicy(0.05, 2))
    with cluster:
        h0, h1 = _by_address(session)[:2]
        future = session.execute_async(SimpleStatement(query, is_idempotent=True),
                                       execution_profile="spec")
        assert future.result().one().key == "local"
        # the first attempt went to node 0 and is still there; a later one answered
        assert future.attempted_hosts[:2] == [h0, h1]
        assert future.coordinator_host is not h0
        assert future.coordinator_host in future.attempted_hosts[1:]
        slow = _connection(session, h0)
        assert slow.in_flight == 1             # the loser, not cancelled on the wire
        # node 0's late answer arrives, is dropped, and its stream id is free again
        wait_until(cluster, lambda: slow.in_flight == 0, timeout=SLOW + 10)
        assert slow.orphaned == 0
        assert session.execute("SELECT key FROM system.local", host=h0).one().key == "local"


def test_non_idempotent_statements_are_not_speculated(clean_sim):
    # the session decides (reactor-independent): the default reactor shows it
    sim = clean_sim
    query = "SELECT key, release_version FROM system.local"
    sim.prime(query, delay=SLOW / 4, node=0)
    cluster, session = _session(sim, None, ConstantSpeculativeExecutionPolicy(0.02, 2))
    with cluster:
        h0 = _by_address(session)[0]
        for statement in (query, SimpleStatement(query)):       # is_idempotent=False
            future = session.execute_async(statement, execution_profile="spec")
            future.result()
            assert future.attempted_hosts == [h0]
            assert future.coordinator_host is h0


def test_loser_past_the_deadline_stays_orphaned_until_its_late_answer(clean_sim):
    # the stream bookkeeping is the core's: one reactor (the default) shows it
    sim = clean_sim
    query = "SELECT key, data_center FROM system.local"
    sim.prime(query, delay=SLOW, node=0)
    cluster, session = _session(sim, None, ConstantSpeculativeExecutionPolicy(0.05, 1),
                                request_timeout=SLOW / 3)
    with cluster:
        h0 = _by_address(session)[0]
        future = session.execute_async(SimpleStatement(query, is_idempotent=True),
                                       execution_profile="spec")
        future.result()
        assert future.coordinator_host is not h0
        slow = _connection(session, h0)
        # past the request's deadline the loser is an orphan: not in flight, id still reserved
        wait_until(cluster, lambda: slow.orphaned == 1, timeout=10)
        assert slow.in_flight == 0
        # the late answer releases it
        wait_until(cluster, lambda: slow.orphaned == 0, timeout=SLOW + 10)
        assert session.execute("SELECT key FROM system.local", host=h0).one().key == "local"


def test_every_attempt_slow_times_out_once(clean_sim):
    sim = clean_sim
    query = "SELECT v FROM spec_all_slow"
    sim.prime(query, rows=[], delay=SLOW)
    cluster, session = _session(sim, None, ConstantSpeculativeExecutionPolicy(0.05, 5),
                                request_timeout=SLOW / 3)
    with cluster:
        future = session.execute_async(SimpleStatement(query, is_idempotent=True),
                                       execution_profile="spec")
        with pytest.raises(OperationTimedOut):
            future.result()
        # three hosts: the first attempt and two speculative ones (the plan ran out of hosts)
        assert sorted(h.endpoint.address for h in future.attempted_hosts) == \
            sorted(h.endpoint.address for h in session.pools)
