"""cqlreactor.concurrent (cassandra-driver's execute_concurrent*, issue 10) against the simulated
cluster's real server process, on every reactor: order, concurrency bound, errors, the results
generator, the async form and the Session methods; on gevent and eventlet the caller's wait
lets other green threads run."""

import concurrent.futures
import inspect
import warnings

import pytest
from _cluster_helpers import cluster_for as _cluster

from cqlreactor import InvalidRequest, SimpleStatement, SyntaxException
from cqlreactor.concurrent import (ExecutionResult, execute_concurrent,
                                   execute_concurrent_async, execute_concurrent_with_args)

KEYSPACE = "conc_ks"


def _table(session, table):
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                    "'SimpleStrategy', 'replication_factor': 3}" % KEYSPACE)
    session.execute("CREATE TABLE IF NOT EXISTS %s.%s (k int PRIMARY KEY, v text)"
                    % (KEYSPACE, table))
    session.execute("TRUNCATE %s.%s" % (KEYSPACE, table))


def test_results_in_order_and_every_write_applied(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        _table(session, "ordered")
        insert = session.prepare("INSERT INTO %s.ordered (k, v) VALUES (?, ?)" % KEYSPACE)
        written = execute_concurrent_with_args(session, insert,
                                               [(k, "v%d" % k) for k in range(60)],
                                               concurrency=7)
        assert len(written) == 60
        assert all(isinstance(r, ExecutionResult) and r.success for r in written)
        select = "SELECT k, v FROM %s.ordered WHERE k = %%s" % KEYSPACE
        keys = list(range(59, -1, -3))
        results = execute_concurrent(session, [(select, (k,)) for k in keys], concurrency=4)
        assert [r.result_or_exc.one() for r in results] == [(k, "v%d" % k) for k in keys]
        # as cassandra-driver: the result is the ResultSet, a generator input is read lazily
        assert all(hasattr(r.result_or_exc, "current_rows") for r in results)
        lazy = ((select, (k,)) for k in range(5))
        assert [r.result_or_exc.one().k for r in execute_concurrent(session, lazy)] == \
            list(range(5))
        assert execute_concurrent(session, []) == []


def test_no_more_than_concurrency_requests_in_flight(sim, reactor):
    sim.clear()
    sim.prime("SELECT v FROM conc_slow", rows=[[1]], columns=[("v", "int")], delay=0.3)
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        real_execute_async = session.execute_async
        state = {"now": 0, "max": 0}

        # a spy on the real method (counting, then calling it): what is in flight
        def counting_execute_async(*args, **kwargs):
            future = real_execute_async(*args, **kwargs)
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])

            def finished(_):
                state["now"] -= 1
            future.add_callbacks(finished, finished)
            return future

        session.execute_async = counting_execute_async
        results = execute_concurrent(session, [("SELECT v FROM conc_slow", None)] * 8,
                                     concurrency=4)
        assert [r.result_or_exc.one().v for r in results] == [1] * 8
        # the four first go out at once (each waits 0.3s on the server), never a fifth
        assert state["max"] == 4
    sim.clear()


def test_errors_returned_in_place_or_raised_first(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        good = "SELECT key FROM system.local"
        bad = "SELEC nothing FROM nowhere"
        statements = [(good, None), (bad, None), (good, None), ("SELECT x FROM no_ks.t", None)]
        results = execute_concurrent(session, statements, raise_on_first_error=False)
        assert [r.success for r in results] == [True, False, True, False]
        assert isinstance(results[1].result_or_exc, SyntaxException)
        assert isinstance(results[3].result_or_exc, InvalidRequest)
        assert results[0].result_or_exc.one().key == "local"
        # raised: the first failure to arrive (as cassandra-driver), here either of the two
        with pytest.raises((SyntaxException, InvalidRequest)):
            execute_concurrent(session, statements)
        with pytest.raises(SyntaxException):    # one at a time: the first one in order
            session.execute_concurrent(statements, concurrency=1)
        # an item that is not a (statement, parameters) pair is that item's failure
        results = execute_concurrent(session, [(good, None), good], raise_on_first_error=False)
        assert results[0].success and not results[1].success
        assert "pair" in str(results[1].result_or_exc)


def test_thousands_of_immediate_failures_do_not_recurse(sim, reactor):
    """A statement that fails before it is sent (wrong number of values) completes inside
    execute_async: the next one must not start from that stack frame, or 3000 of them would
    exceed the recursion limit."""
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        prepared = session.prepare("SELECT key FROM system.local WHERE key = ?")
        items = [(prepared, ("local", "x", "y"))] * 3000
        results = execute_concurrent(session, items, concurrency=1, raise_on_first_error=False)
        assert len(results) == 3000
        assert not any(r.success for r in results)
        assert all("too many values" in str(r.result_or_exc) for r in results)


def test_results_generator_yields_in_order_and_raises_at_the_failure(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        select = "SELECT key FROM system.local WHERE key = %s"
        generator = execute_concurrent(session, [(select, ("local",))] * 20, concurrency=3,
                                       results_generator=True)
        assert inspect.isgenerator(generator)
        assert [r.result_or_exc.one().key for r in generator] == ["local"] * 20
        items = [(select, ("local",))] * 3 + [("SELEC broken", None)] + [(select, ("local",))]
        seen = []
        with pytest.raises(SyntaxException):
            for result in execute_concurrent(session, items, results_generator=True):
                seen.append(result.success)
        assert seen == [True, True, True]
        results = list(session.execute_concurrent(items, raise_on_first_error=False,
                                                  results_generator=True))
        assert [r.success for r in results] == [True, True, True, False, True]


def test_async_form_and_session_methods(sim, reactor):
    with _cluster(sim, reactor) as cluster:
        session = cluster.connect()
        select = SimpleStatement("SELECT key FROM system.local WHERE key = %s")
        future = execute_concurrent_async(session, [(select, ("local",))] * 5)
        assert isinstance(future, concurrent.futures.Future)
        assert [r.result_or_exc.one().key for r in future.result(timeout=30)] == ["local"] * 5
        failing = session.execute_concurrent_async([("SELEC x", None)],
                                                   raise_on_first_error=True)
        with pytest.raises(SyntaxException):
            failing.result(timeout=30)
        assert session.execute_concurrent_async([]).result(timeout=30) == []
        results = session.execute_concurrent_with_args(select, [("local",), ("nope",)],
                                                       concurrency=2)
        assert [len(r.result_or_exc.current_rows) for r in results] == [1, 0]
        with pytest.raises(ValueError, match="concurrency"):
            execute_concurrent(session, [(select, ("local",))], concurrency=0)


def _green_reactor(name):
    if name == "gevent":
        pytest.importorskip("gevent")
        return "gevent", {}
    pytest.importorskip("eventlet")
    # eventlet is gated off on 3.7+ for its green ssl only; plain CQL works with the opt-in
    return "eventlet", {"allow_unsupported_reactors": ["eventlet"]}


@pytest.mark.parametrize("green", ["gevent", "eventlet"])
def test_green_wait_lets_other_green_threads_run(sim, green):
    name, options = _green_reactor(green)
    if name == "gevent":
        import gevent
        spawn, sleep = gevent.spawn, gevent.sleep
    else:
        import eventlet
        spawn, sleep = eventlet.spawn, eventlet.sleep
    sim.clear()
    sim.prime("SELECT v FROM conc_green", rows=[[7]], columns=[("v", "int")], delay=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = _cluster(sim, name, **options)
    ticks = []
    running = [True]

    def ticker():
        while running[0]:
            ticks.append(1)
            sleep(0.01)
    try:
        session = cluster.connect()
        other = spawn(ticker)
        results = execute_concurrent(session, [("SELECT v FROM conc_green", None)] * 6,
                                     concurrency=2)
        running[0] = False
        assert [r.result_or_exc.one().v for r in results] == [7] * 6
        # three rounds of 0.2s on the server: the ticker ran while this greenlet waited
        assert len(ticks) >= 3
        if name == "gevent":
            other.join()
        else:
            other.wait()
    finally:
        running[0] = False
        cluster.shutdown()
        sim.clear()
