"""The session layer's pure parts: policies, token ring, statements, literal encoder, rows.

No sockets here; the same parts run end to end in tests/integration/test_session_scenarios.py.
Hosts are plain Host objects (real ones, not mocks): nothing else is needed to plan queries.
"""

import datetime
import decimal
import itertools
import uuid

import pytest

from cqlreactor import encoder
from cqlreactor.core import types
from cqlreactor.core.consistency import ConsistencyLevel, required_replicas
from cqlreactor.core.murmur3 import murmur3_token
from cqlreactor.metadata import Host, KeyspaceMetadata, Metadata, replicas_for_token
from cqlreactor.policies import (DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy,
                                 HostDistance, RetryPolicy, RoundRobinPolicy, TokenAwarePolicy)
from cqlreactor.query import ResultSet, dict_factory, named_tuple_factory
from cqlreactor.statements import BatchStatement, PreparedStatement, SimpleStatement
from cqlreactor.user_types import UserTypeMap


def _hosts(spec):
    """spec: list of (dc, tokens)."""
    return [Host("10.0.0.%d:9042" % (i + 1), host_id=uuid.uuid4(), datacenter=dc, rack="r1",
                 address="10.0.0.%d" % (i + 1), tokens=tokens)
            for i, (dc, tokens) in enumerate(spec)]


class _Cluster(object):
    def __init__(self, metadata=None, local_dc_hint=None):
        self.metadata = metadata
        self.local_dc_hint = local_dc_hint


def test_round_robin_rotates_and_skips_down_hosts():
    hosts = _hosts([("dc1", [0]), ("dc1", [1]), ("dc1", [2])])
    policy = RoundRobinPolicy()
    policy.populate(None, hosts)
    plans = [list(policy.make_query_plan()) for _ in range(3)]
    assert {p[0].address for p in plans} == {h.address for h in hosts}
    hosts[1].is_up = False
    assert all(hosts[1] not in policy.make_query_plan() for _ in range(5))


def test_dc_aware_prefers_local_and_limits_remote():
    hosts = _hosts([("dc1", [0]), ("dc2", [1]), ("dc1", [2]), ("dc2", [3])])
    policy = DCAwareRoundRobinPolicy("dc1", used_hosts_per_remote_dc=1)
    policy.populate(_Cluster(), hosts)
    plan = list(policy.make_query_plan())
    assert [h.datacenter for h in plan] == ["dc1", "dc1", "dc2"]
    assert policy.distance(hosts[1]) == HostDistance.REMOTE
    assert policy.distance(hosts[3]) == HostDistance.IGNORED
    # local DC from the cloud metadata hint when none is given
    hinted = DCAwareRoundRobinPolicy()
    hinted.populate(_Cluster(local_dc_hint="dc2"), hosts)
    assert {h.datacenter for h in hinted.make_query_plan()} == {"dc2"}


def test_simple_strategy_replicas_walk_the_ring():
    hosts = _hosts([("dc1", [-100, 200]), ("dc1", [0]), ("dc1", [100])])
    ring = sorted((t, h) for h in hosts for t in h.tokens)
    tokens, owners = [t for t, _ in ring], [h for _, h in ring]
    # token 50 is owned by the first token >= 50 (100: host 3), then the next distinct ones
    got = replicas_for_token(50, tokens, owners, {"class": "SimpleStrategy",
                                                  "replication_factor": "2"})
    assert [h.address for h in got] == ["10.0.0.3", "10.0.0.1"]
    # past the last token wraps to the first
    got = replicas_for_token(300, tokens, owners, {"class": "SimpleStrategy",
                                                   "replication_factor": 1})
    assert [h.address for h in got] == ["10.0.0.1"]


def test_network_topology_replicas_per_dc():
    hosts = _hosts([("dc1", [0]), ("dc2", [10]), ("dc1", [20]), ("dc2", [30])])
    ring = sorted((t, h) for h in hosts for t in h.tokens)
    got = replicas_for_token(5, [t for t, _ in ring], [h for _, h in ring],
                             {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy",
                              "dc1": "1", "dc2": "2"})
    assert sorted(h.datacenter for h in got) == ["dc1", "dc2", "dc2"]
    assert got[0].address == "10.0.0.2"   # the primary replica is the ring owner


def test_token_aware_puts_the_owner_first():
    hosts = _hosts([("dc1", [-(2 ** 62)]), ("dc1", [0]), ("dc1", [2 ** 62])])
    metadata = Metadata()
    for h in hosts:
        metadata.add_or_return_host(h)
    # cassandra-driver's signature: name, durable_writes, strategy_class, strategy_options
    metadata.keyspaces = {"ks": KeyspaceMetadata("ks", True, "SimpleStrategy",
                                                 {"replication_factor": "1"})}
    metadata.rebuild_token_map()
    policy = TokenAwarePolicy(DCAwareRoundRobinPolicy("dc1"))
    policy.populate(_Cluster(metadata), hosts)
    for key in (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02", b"user-42"):
        token = murmur3_token(key)
        expected = min((t for h in hosts for t in h.tokens if t >= token),
                       default=min(t for h in hosts for t in h.tokens))
        owner = [h for h in hosts if expected in h.tokens][0]
        statement = SimpleStatement("SELECT 1", keyspace="ks")
        statement.routing_key = key
        plan = list(policy.make_query_plan("ks", statement))
        assert plan[0] is owner
        assert sorted(h.address for h in plan) == sorted(h.address for h in hosts)


def test_exponential_reconnection_grows_with_jitter_and_caps():
    delays = list(itertools.islice(ExponentialReconnectionPolicy(1.0, 10.0).new_schedule(), 8))
    assert 0.85 <= delays[0] <= 1.15
    assert 1.7 <= delays[1] <= 2.3
    assert all(d <= 10.0 for d in delays) and delays[-1] >= 8.5
    assert len(set(delays)) > 1
    assert list(ExponentialReconnectionPolicy(1, 2, max_attempts=3).new_schedule()).__len__() == 3
    with pytest.raises(ValueError):
        ExponentialReconnectionPolicy(5, 1)


def test_consistency_arithmetic():
    assert required_replicas(ConsistencyLevel.QUORUM, 3) == 2
    assert required_replicas(ConsistencyLevel.ALL, 5) == 5
    assert required_replicas(ConsistencyLevel.LOCAL_ONE, 3) == 1


@pytest.mark.parametrize("value, literal", [
    (None, "NULL"), (True, "true"), (12, "12"), (1.5, "1.5"), (float("nan"), "NaN"),
    (decimal.Decimal("1.10"), "1.10"), ("it's", "'it''s'"), (b"\x01\xff", "0x01ff"),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (datetime.datetime(1970, 1, 1, 0, 0, 1), "1000"),
    (datetime.date(2020, 1, 2), "'2020-01-02'"),
    ([1, "a"], "[1, 'a']"), ({"k": 1}, "{'k': 1}"), ((1, 2), "(1, 2)"),
])
def test_cql_literals(value, literal):
    assert encoder.cql_literal(value) == literal


def test_bind_params_positional_named_and_mismatch():
    assert encoder.bind_params("SELECT * FROM t WHERE k = %s AND v = %s", (1, "x")) == \
        "SELECT * FROM t WHERE k = 1 AND v = 'x'"
    assert encoder.bind_params("k = %(k)s", {"k": 7}) == "k = 7"
    with pytest.raises(TypeError, match="do not match"):
        encoder.bind_params("k = %s AND v = %s", (1,))
    with pytest.raises(TypeError, match="no CQL literal"):
        encoder.cql_literal(object())


def _prepared(types_by_name, pk_indexes):
    columns = [("ks", "t", name, types.parse_cql_type(cql)) for name, cql in types_by_name]
    return PreparedStatement(b"id", "INSERT ...", "ks", columns, pk_indexes, [], None, 5)


def test_bind_serializes_values_and_computes_routing_key():
    ps = _prepared([("k", "int"), ("v", "text")], [0])
    bound = ps.bind((5, "five"))
    assert bound.values == [b"\x00\x00\x00\x05", b"five"]
    assert bound.routing_key == b"\x00\x00\x00\x05"
    named = ps.bind({"v": "x", "k": 1})
    assert named.values == [b"\x00\x00\x00\x01", b"x"]
    partial = ps.bind({"k": 1})   # left-out names are unset (protocol v4+)
    assert partial.values[1] is types.UNSET_VALUE
    with pytest.raises(ValueError, match="too many values"):
        ps.bind((1, "a", "extra"))
    with pytest.raises(ValueError, match="not in the statement"):
        ps.bind({"nope": 1})
    with pytest.raises(TypeError, match="cannot bind"):
        ps.bind(("not an int", "a"))


def test_composite_routing_key_matches_cassandra_layout():
    ps = _prepared([("a", "int"), ("b", "text"), ("v", "int")], [0, 1])
    key = ps.bind((1, "xy", 0)).routing_key
    assert key == b"\x00\x04\x00\x00\x00\x01\x00" + b"\x00\x02xy\x00"


def test_batch_statement_collects_prepared_and_simple():
    ps = _prepared([("k", "int"), ("v", "text")], [0])
    batch = BatchStatement()
    batch.add(ps, (1, "a"))
    batch.add("INSERT INTO t (k) VALUES (%s)", (2,))
    assert len(batch) == 2
    assert batch.routing_key == b"\x00\x00\x00\x01"
    with pytest.raises(TypeError):
        batch.add(42)


class _DoneFuture(object):
    has_more_pages = False
    paging_state = None
    column_names = ["k", "select"]
    column_types = None


def test_row_factories_and_result_set():
    rows = named_tuple_factory(["k", "select", "with space"], [(1, 2, 3)])
    assert rows[0].k == 1 and rows[0][1] == 2 and len(rows[0]) == 3
    assert dict_factory(["a", "b"], [(1, 2)]) == [{"a": 1, "b": 2}]
    result = ResultSet(_DoneFuture(), named_tuple_factory(["k", "select"], [(1, 2), (3, 4)]))
    assert [r.k for r in result] == [1, 3]
    assert result.one().k == 1 and len(result) == 2 and result[1].k == 3
    applied = ResultSet(_DoneFuture(), named_tuple_factory(["[applied]"], [(False,)]))
    assert applied.was_applied is False


class _PagedFuture(object):
    """Serves pages from a list, as ResponseFuture does after each page's round trip."""

    column_names = ["n"]
    column_types = None

    def __init__(self, pages):
        self._pages = list(pages)
        self.paging_state = b"more" if self._pages else None

    @property
    def has_more_pages(self):
        return bool(self._pages)

    def start_fetching_next_page(self):
        self._next = self._pages.pop(0)
        self.paging_state = b"more" if self._pages else None

    def result(self):
        return ResultSet(self, self._next)


@pytest.mark.parametrize("consume", [list, len, lambda r: r[4], lambda r: [x for x in r]])
def test_result_set_pages_through_every_consumer(consume):
    result = ResultSet(_PagedFuture([[3, 4], [5]]), [1, 2])
    value = consume(result)
    assert value in ([1, 2, 3, 4, 5], 5)
    assert list(result) == [1, 2, 3, 4, 5] or consume is not list


class _Conn(object):
    """Keeps each request's callback, to answer later (or never)."""
    keyspace = None

    def __init__(self):
        self.sent = []

    def send(self, message, callback, timeout=None, result_metadata=None):
        self.sent.append(callback)


class _Pool(object):
    is_shutdown = False

    def __init__(self, conn):
        self.conn = conn

    def borrow_connection(self):
        return self.conn


class _Session(object):
    keyspace = None
    user_types = UserTypeMap()      # no class registered for a UDT

    def __init__(self, host, conn):
        self.host = host
        self.pools = {host: _Pool(conn)}

    def query_plan(self, query):
        return [self.host]


def test_a_future_settles_once_and_drops_late_answers_of_its_attempts():
    from cqlreactor.core.messages import RowsResult
    from cqlreactor.core.errors import ServerError
    from cqlreactor.response_future import ResponseFuture
    (host,) = _hosts([("dc1", [0])])
    conn = _Conn()
    future = ResponseFuture(_Session(host, conn), SimpleStatement("SELECT 1"),
                            lambda cl, paging_state: object(), None, named_tuple_factory,
                            RetryPolicy(), iter([host, host]), ConsistencyLevel.ONE)
    results, errors = [], []
    future.add_callbacks(results.append, errors.append)
    assert future.send_request()
    first = future._attempt
    assert (first.host, first.connection, first.retry_num) == (host, conn, 0)
    # a second attempt in flight at the same time (what speculative execution will do)
    assert future.send_request(1)
    second = future._attempt
    assert second is not first and second.retry_num == 1 and len(conn.sent) == 2
    assert second.previous is first
    meta = [("ks", "t", "n", types.INT)]
    conn.sent[1](RowsResult(meta, [(1,)], paging_state=b"page 2"))   # the second wins
    assert [list(r) for r in results] == [[(1,)]] and future.done
    conn.sent[0](RowsResult(meta, [(9,)]))    # the first answers late: dropped, changes nothing
    conn.sent[0](ServerError("late"))
    assert len(results) == 1 and errors == [] and future.result().current_rows[0].n == 1
    assert future.paging_state == b"page 2" and future.has_more_pages
    future._set_final_exception(ServerError("after the result"))   # the first outcome stays
    assert errors == [] and future.result().current_rows[0].n == 1
    # the next page: answers of the first page's attempts are not for it
    future.start_fetching_next_page()
    assert first.future is None and second.future is None and len(conn.sent) == 3
    conn.sent[0](RowsResult(meta, [(8,)]))
    assert not future.done
    conn.sent[2](RowsResult(meta, [(2,)]))
    assert future.result()[0].n == 2 and not future.has_more_pages


@pytest.mark.parametrize("outcome", ["rows", "error"])
def test_a_settled_future_is_freed_without_the_cyclic_collector(outcome):
    # a reference cycle per request (future <-> attempt) would leave every request to the
    # cyclic collector, whose pauses show in the latency percentiles
    import gc
    import weakref
    from cqlreactor.core.errors import InvalidRequest
    from cqlreactor.core.messages import RowsResult
    from cqlreactor.response_future import ResponseFuture
    (host,) = _hosts([("dc1", [0])])
    conn = _Conn()
    gc.disable()
    try:
        future = ResponseFuture(_Session(host, conn), SimpleStatement("SELECT 1"),
                                lambda cl, paging_state: object(), None, named_tuple_factory,
                                RetryPolicy(), iter([host]), ConsistencyLevel.ONE)
        future.add_callbacks(lambda rows: None, lambda exc: None)
        future.send_request()
        answer = conn.sent.pop()
        answer(RowsResult([("ks", "t", "n", types.INT)], [(1,)]) if outcome == "rows"
               else InvalidRequest("no"))
        assert future.done
        freed = weakref.ref(future)
        del future, answer
        assert freed() is None
    finally:
        gc.enable()
