"""The asyncio API: an awaitable counterpart of every blocking call.

The names, decided once (README section "asyncio"): the blocking call's name with ``_async``,
as cassandra-driver's own ``execute_async``, on the same objects; ``cqlreactor.concurrent``'s
helpers keep their names here as coroutine functions (``concurrent.execute_concurrent_async``
is cassandra-driver's, a ``concurrent.futures.Future``)::

    async with Cluster(contact_points, connection_class="asyncio") as cluster:
        session = await cluster.connect_async("ks")           # Cluster.connect
        ps = await session.prepare_async("SELECT ...")        # Session.prepare
        rows = await session.execute_async(ps, (1,))          # the ResponseFuture is awaitable
        async for row in rows: ...                            # next pages without blocking
        await rows.fetch_next_page_async()                    # ResultSet.fetch_next_page
        await session.set_keyspace_async("other")             # Session.set_keyspace
        await execute_concurrent(session, [(ps, (i,)) for i in range(100)])
        await session.shutdown_async()                        # also ``async with session``

With :class:`~cqlreactor.reactors.asyncio_reactor.AsyncioReactor` started from a coroutine,
the connections run on the caller's own loop: no thread, no thread hop, answers settle the
awaiting futures directly.  Other reactors are bridged (their callbacks reach the loop with
``call_soon_threadsafe``); a combination that could never make progress (a gevent or eventlet
hub in the thread the asyncio loop blocks) raises :class:`IncompatibleEventLoops` at once.

Cancelling the awaiting task cancels the request (``ResponseFuture.cancel``); timeouts are the
driver's own (``OperationTimedOut``), never a bare ``asyncio.TimeoutError``.
"""

import asyncio
import collections
import logging
import weakref

from cqlreactor.core.errors import (ConnectionException, DriverException, IncompatibleEventLoops,
                                    OperationTimedOut)
from cqlreactor.reactors.asyncio_reactor import AsyncioReactor, running_loop_here
from cqlreactor.reactors.asyncio_reactor import _get_running_loop
from cqlreactor.steps import Stepper

__all__ = ["wait_for_response", "connect_cluster", "run_control_steps", "run_steps",
           "open_pools", "iterate_rows", "execute_concurrent",
           "execute_concurrent_with_args", "shutdown_cluster", "check_bridge",
           "run_in_background", "ExecutionResult"]

log = logging.getLogger(__name__)

#: one result of :func:`execute_concurrent` (as ``cqlreactor.concurrent``'s)
ExecutionResult = collections.namedtuple("ExecutionResult", ["success", "result_or_exc"])

_CancelledError = asyncio.CancelledError


def _loop():
    loop = running_loop_here()
    if loop is None:
        raise RuntimeError("cqlreactor's awaitables must be awaited inside a running asyncio "
                           "loop (asyncio.run(main()))")
    return loop


# --- the bridge between a reactor and the awaiting loop --------------------------------------

def check_bridge(reactor, loop):
    """Raise :class:`IncompatibleEventLoops` when awaiting on ``loop`` could never finish with
    ``reactor``: a green reactor whose hub is this very thread, while the asyncio loop waits in
    a selector that never yields to that hub (no monkey-patching)."""
    if not hasattr(reactor, "hub_thread_ident"):
        return                          # not a green reactor
    from cqlreactor.reactors._osthread import real_get_ident
    ident = reactor.hub_thread_ident    # None: not started, it will bind to this thread's hub
    if ident is not None and ident != real_get_ident()():
        return                          # the hub runs in another thread: bridged normally
    if _hub_library_of(loop) == reactor.name:
        return                          # patched: asyncio's selector waits in that hub
    raise IncompatibleEventLoops(
        "the %s reactor runs in the %s hub of this thread, and this thread is blocked in "
        "the asyncio loop %r, which never lets that hub run: the request could never finish. "
        "Use AsyncioReactor (connection_class='asyncio', the fastest under asyncio), run the "
        "asyncio loop in another thread than the hub's, or monkey-patch (gevent.monkey."
        "patch_all() / eventlet.monkey_patch()) before the asyncio loop is made"
        % (reactor.name, reactor.name, loop))


def _hub_library_of(loop):
    """"gevent" or "eventlet" when ``loop`` waits for IO through that library's green selector
    (a loop made after its monkey-patching), so that its hub runs meanwhile; else None."""
    selector = getattr(loop, "_selector", None)         # (uvloop has none: never green)
    if selector is None:
        return None
    select = getattr(type(selector), "_select", None)   # stdlib SelectSelector's function
    for owner in (type(selector), select):
        library = (getattr(owner, "__module__", None) or "").split(".")[0]
        if library in ("gevent", "eventlet"):
            return library
    return None


def _settler(loop, direct):
    """A ``callback(future, value, ok)`` settling asyncio futures: ``direct`` when the
    reactor's callbacks run on ``loop`` itself (no hop), else through
    ``call_soon_threadsafe``."""
    if direct:
        return _settle
    return lambda future, value, ok: _hop(loop, future, value, ok)


def _settle(future, value, ok):
    if future.done():                   # cancelled by its task
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class _RequestFuture(asyncio.Future):
    """The asyncio future of one request, and the callbacks that settle it: cancelling it (the
    awaiting task was cancelled) cancels the request.  (One object per request: a subclass
    rather than a done-callback, which would cost one more loop callback per request.)"""

    __slots__ = ("response_future", "hop_to")

    def cancel(self, *args):
        cancelled = asyncio.Future.cancel(self, *args)
        response_future = self.response_future
        if cancelled and response_future is not None:
            response_future.cancel()
        return cancelled

    # (each drops its link to the ResponseFuture, which holds these callbacks: no reference
    # cycle is left for the cyclic collector, whose pauses show in the latency percentiles)

    def ok(self, _rows):
        response_future, self.response_future = self.response_future, None
        try:
            value = response_future.result()
        except Exception as exc:        # (a row factory failing, for instance)
            self.failed(exc)
            return
        if self.hop_to is None:         # the reactor runs on this loop: settle now
            if not self.done():
                self.set_result(value)
        else:
            _hop(self.hop_to, self, value, True)

    def failed(self, exc):
        self.response_future = None
        if self.hop_to is None:
            if not self.done():
                self.set_exception(exc)
        else:
            _hop(self.hop_to, self, exc, False)


def _hop(loop, fut, value, ok):
    try:
        loop.call_soon_threadsafe(_settle, fut, value, ok)
    except RuntimeError:                # the loop is closed: nobody awaits any more
        pass


def wait_for_response(response_future):
    """An asyncio future of the caller's loop with ``response_future``'s result (a ResultSet,
    or what ``result()`` returns).  Cancelling it cancels the request."""
    loop = _get_running_loop()
    if loop is None:
        loop = _loop()                  # raises, saying where to await
    reactor = response_future.session.cluster.reactor
    fut = _RequestFuture(loop=loop)
    fut.response_future = response_future
    if reactor.__class__ is AsyncioReactor and reactor.on_running_loop and \
            reactor._loop is loop:      # callbacks_run_on(loop), inlined: once per request
        fut.hop_to = None
    elif isinstance(reactor, AsyncioReactor) and reactor.callbacks_run_on(loop):
        fut.hop_to = None
    else:
        check_bridge(reactor, loop)
        fut.hop_to = loop
    if not response_future._set_waiter(fut):     # settled already, or awaited twice
        response_future.add_callbacks(fut.ok, fut.failed)
    return fut


def _callback_future(reactor, loop=None):
    """(asyncio future, ``callback(value_or_exception)``) for reactor-callback APIs."""
    loop = loop or _loop()
    fut = loop.create_future()
    runs_here = getattr(reactor, "callbacks_run_on", None)
    direct = runs_here is not None and runs_here(loop)
    if not direct:
        check_bridge(reactor, loop)
    settle = _settler(loop, direct)

    def callback(value):
        settle(fut, value, not isinstance(value, BaseException))
    return fut, callback


def run_in_background(coroutine, what):
    """A task on the running loop whose failure is logged (background refreshes)."""
    def logged(task):
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s failed: %r", what, task.exception())
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(logged)
    return task


# --- connecting -------------------------------------------------------------------------------

async def run_steps(steps, perform):
    """Run a steps generator (cqlreactor/steps.py): ``await perform(step)`` for each step
    (``steps.run_blocking`` is the blocking twin)."""
    stepper = Stepper(steps)
    step = stepper.advance()
    while not stepper.done:
        try:
            answer = await perform(step)
        except _CancelledError:
            stepper.close()
            raise
        except Exception as exc:
            step = stepper.advance(error=exc)
        else:
            step = stepper.advance(answer)
    return stepper.value


async def run_control_steps(control, steps):
    """The control connection's steps (connect, refreshes) awaited on the caller's loop."""
    cluster = control.cluster

    async def query(conn, request):
        fut, callback = _callback_future(cluster.reactor)
        control.send_step(conn, request, callback)
        return await _bounded(fut, control.timeout + 1.0, "control query got no answer",
                              conn.endpoint)

    async def perform(step):
        if step[0] == "sleep":
            await asyncio.sleep(step[1])
            return None
        if step[0] == "open":
            fut, callback = _callback_future(cluster.reactor)
            cluster.connect_endpoint_async(step[1], callback)
            return await fut
        if step[0] == "queries":
            # One after the other here, unlike the blocking path (which sends them together):
            # all the schema answers decoded in one loop turn block the caller's loop longer
            # (the first connect's decoders are compiled then) than its 50 ms budget.
            answers = []
            for request in step[2]:
                try:
                    answers.append(await query(step[1], request))
                except asyncio.CancelledError:      # (an Exception before Python 3.8)
                    raise
                except Exception as exc:    # in its request's place, as the blocking path
                    answers.append(exc)
            return answers
        return await query(step[1], step[2])
    return await run_steps(steps, perform)


async def _bounded(fut, seconds, text, host):
    """``await fut``, OperationTimedOut after ``seconds`` (a dead loop's guard, as the blocking
    waits have; the requests carry their own deadlines)."""
    try:
        return await asyncio.wait_for(fut, seconds)
    except asyncio.TimeoutError:
        raise OperationTimedOut(text, host=str(host))


_starting = weakref.WeakKeyDictionary()     # cluster -> the asyncio future of its start


async def connect_cluster(cluster, keyspace=None, wait_for_all_pools=False):
    """``Cluster.connect_async``: start the cluster (once) and open a session without blocking
    the loop; every pool is opened before it returns (``wait_for_all_pools`` is always met)."""
    loop = _loop()
    if cluster.is_shutdown:
        raise DriverException("the cluster is shut down; make a new Cluster")
    if not cluster.is_started:
        starting = _starting.get(cluster)
        if starting is None:
            starting = _starting[cluster] = loop.create_future()
            try:
                endpoints = cluster.begin_start()
                check_bridge(cluster.reactor, loop)     # at once, not as a host's error
                await run_control_steps(cluster.control_connection,
                                        cluster.control_connection.connect_steps(endpoints))
            except BaseException as exc:
                _starting.pop(cluster, None)
                cluster.abort_start()
                if not starting.done():
                    starting.set_exception(exc)
                    starting.exception()    # retrieved: waiters (if any) raise it too
                raise
            cluster.finish_start()
            starting.set_result(None)
        else:
            await asyncio.shield(starting)
    session = cluster.new_session()
    try:
        await open_pools(session, cluster.metadata.all_hosts())
        if keyspace:
            await session.set_keyspace_async(keyspace)
    except BaseException:
        session.shutdown()
        raise
    return session


async def open_pools(session, hosts):
    """``Session.open_pools`` without blocking: every pool opens at the same time."""
    hosts = list(hosts)
    reactor = session.cluster.reactor
    opening = []
    for host, pool in session.new_pools(hosts):
        fut, callback = _callback_future(reactor)
        pool.replenish_async(lambda ok, error, callback=callback: callback((ok, error)))
        opening.append((host, fut))
    errors = {}
    for host, fut in opening:
        opened, error = await fut
        if not opened:
            error = error or ConnectionException("no connection opened", host=str(host))
            errors[host] = error
            session.cluster.on_host_unreachable(host, error)
    session.check_pools_opened(hosts, errors)


async def shutdown_cluster(cluster):
    """``Cluster.shutdown`` without blocking the loop.  On the loop's own reactor it is quick
    and runs here; other reactors join their loop thread, so it runs in the loop's executor."""
    reactor = cluster.reactor
    if reactor is None or getattr(reactor, "callbacks_run_on", lambda loop: False)(_loop()):
        cluster.shutdown()
        return
    await _loop().run_in_executor(None, cluster.shutdown)


# --- results ----------------------------------------------------------------------------------

async def iterate_rows(result_set):
    """``async for row in result_set``: the rows of every page, the next page awaited."""
    while True:
        for row in result_set.current_rows:
            yield row
        if not result_set.has_more_pages:
            return
        await result_set.fetch_next_page_async()


async def execute_concurrent(session, statements_and_parameters, concurrency=100,
                                   raise_on_first_error=True, results_generator=False,
                                   execution_profile=None):
    """``cqlreactor.concurrent.execute_concurrent`` awaited: at most ``concurrency`` requests
    in flight, none of them blocking the loop.

    Args: as cassandra-driver's ``execute_concurrent``.
    Returns:
        a list of ExecutionResult(success, result_or_exc) in the statements' order; with
        ``results_generator=True`` an async iterator of them (``async for``), in order.
    Raises:
        the first error when ``raise_on_first_error`` (no further statement is sent).
    """
    if concurrency <= 0:
        raise ValueError("concurrency must be at least 1, not %r" % (concurrency,))
    runner = _Concurrent(session, iter(statements_and_parameters), concurrency,
                         raise_on_first_error, execution_profile)
    if results_generator:
        return runner.iterate()
    return [result async for result in runner.iterate()]


async def execute_concurrent_with_args(session, statement, parameters, *args, **kwargs):
    """``execute_concurrent_with_args`` awaited: ``statement`` with each of ``parameters``."""
    return await execute_concurrent(session, ((statement, p) for p in parameters),
                                          *args, **kwargs)


class _Concurrent(object):
    """A window of ``concurrency`` awaitable requests, results handed out in order."""

    def __init__(self, session, items, concurrency, raise_on_first_error, execution_profile):
        self.session = session
        self.items = items
        self.concurrency = concurrency
        self.raise_on_first_error = raise_on_first_error
        self.kwargs = {} if execution_profile is None else \
            {"execution_profile": execution_profile}

    def _start(self, item):
        statement, parameters = item
        try:
            return wait_for_response(self.session.execute_async(statement, parameters,
                                                                **self.kwargs))
        except Exception as exc:       # refused at once (bad statement, shut down session)
            fut = _loop().create_future()
            fut.set_exception(exc)
            return fut

    async def iterate(self):
        window = collections.deque()
        items = self.items
        try:
            for item in items:
                window.append(self._start(item))
                if len(window) >= self.concurrency:
                    yield await self._take(window)
            while window:
                yield await self._take(window)
        finally:
            for fut in window:          # stopped early: the rest is not wanted
                fut.cancel()

    async def _take(self, window):
        fut = window.popleft()
        try:
            return ExecutionResult(True, await fut)
        except _CancelledError:
            raise
        except Exception as exc:
            if self.raise_on_first_error:
                raise
            return ExecutionResult(False, exc)
