"""Run many statements with a bounded number in flight (cassandra-driver's
``cassandra.concurrent``).

``execute_concurrent(session, [(statement, parameters), ...])`` keeps ``concurrency`` requests
in flight: each answer (a callback on its ResponseFuture, on the reactor's loop) starts the next
statement, so there is no thread per request.  The caller waits on an event of the session's
reactor (``reactor.make_event()``), so under gevent or eventlet only the calling green thread
blocks.

Results are ``ExecutionResult(success, result_or_exc)`` named tuples in the order of the
statements: ``result_or_exc`` is the ResultSet, or the exception when ``success`` is False.
"""

import collections
import concurrent.futures
import itertools
import threading

from cqlreactor.session import EXEC_PROFILE_DEFAULT

__all__ = ["ExecutionResult", "execute_concurrent", "execute_concurrent_with_args",
           "execute_concurrent_async"]

ExecutionResult = collections.namedtuple("ExecutionResult", ["success", "result_or_exc"])


def execute_concurrent(session, statements_and_parameters, concurrency=100,
                       raise_on_first_error=True, results_generator=False,
                       execution_profile=EXEC_PROFILE_DEFAULT):
    """Execute ``(statement, parameters)`` pairs with at most ``concurrency`` in flight.

    Args:
        session: the Session to execute on.
        statements_and_parameters: an iterable of ``(statement, parameters)``; ``parameters``
            is a sequence, a dict or None, as ``Session.execute_async`` takes them.  It is read
            lazily, as requests complete.
        concurrency: how many requests are in flight at most.
        raise_on_first_error: raise the first failure (and start nothing after it) instead of
            returning it as ``ExecutionResult(False, exc)``.
        results_generator: return a generator that yields each result, in order, as soon as
            it and all before it are in, instead of a list once everything is done.
        execution_profile: passed to ``Session.execute_async``.

    Returns:
        A list (or generator) of ``ExecutionResult(success, result_or_exc)`` in statement order.

    Raises:
        ValueError: ``concurrency`` below 1.
        The first failure's exception, when ``raise_on_first_error`` (the generator raises it
        when it reaches that statement).
    """
    if concurrency <= 0:
        raise ValueError("concurrency must be greater than 0, got %r" % (concurrency,))
    if not statements_and_parameters:
        return []
    executor = _ConcurrentExecutor(session, statements_and_parameters, execution_profile,
                                   raise_on_first_error)
    executor.start(concurrency)
    if results_generator:
        return executor.results_in_order()
    return executor.all_results()


def execute_concurrent_with_args(session, statement, parameters, *args, **kwargs):
    """``execute_concurrent`` of one statement with each item of ``parameters``;
    the other arguments are execute_concurrent's."""
    return execute_concurrent(session, zip(itertools.repeat(statement), parameters),
                              *args, **kwargs)


def execute_concurrent_async(session, statements_and_parameters, concurrency=100,
                             raise_on_first_error=False, execution_profile=EXEC_PROFILE_DEFAULT):
    """Like ``execute_concurrent`` but returns at once a ``concurrent.futures.Future`` of the
    result list (or of the first failure, with ``raise_on_first_error``), as cassandra-driver's.

    Raises:
        ValueError: ``concurrency`` below 1.
    """
    if concurrency <= 0:
        raise ValueError("concurrency must be greater than 0, got %r" % (concurrency,))
    future = _ReactorFuture(session.cluster.reactor.make_event())
    executor = _ConcurrentExecutor(session, statements_and_parameters or (), execution_profile,
                                   raise_on_first_error, on_finished=future)
    try:
        executor.start(concurrency)
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
    return future


class _ReactorFuture(concurrent.futures.Future):
    """A ``concurrent.futures.Future`` whose ``result()`` / ``exception()`` wait on an event of
    the session's reactor first: under gevent or eventlet without monkey-patching, the plain
    Future's wait (an OS-level condition) would block the hub that has to complete it."""

    def __init__(self, done_event):
        concurrent.futures.Future.__init__(self)
        self._done_event = done_event
        self.add_done_callback(_set_done_event)

    def _wait_green(self, timeout):
        if not self.done():
            self._done_event.wait(timeout)
        # settled now, or the wait timed out: the plain Future answers without blocking
        return 0 if not self.done() else None

    def result(self, timeout=None):
        return concurrent.futures.Future.result(self, self._wait_green(timeout))

    def exception(self, timeout=None):
        return concurrent.futures.Future.exception(self, self._wait_green(timeout))


def _set_done_event(future):
    future._done_event.set()


class _ConcurrentExecutor(object):
    """The state of one execute_concurrent call.

    ``_pump`` starts statements while slots are free.  A result arriving while a pump runs in
    this call stack (a request that failed at once, or answered before its callbacks were
    added) only frees its slot: the running pump starts the next one, so there is no recursion
    however many statements fail at once.
    """

    def __init__(self, session, statements_and_parameters, execution_profile, fail_fast,
                 on_finished=None):
        self._session = session
        self._items = enumerate(iter(statements_and_parameters))
        self._profile = execution_profile
        self._fail_fast = fail_fast
        self._on_finished = on_finished     # a concurrent.futures.Future, for the async form
        self._lock = threading.Lock()
        self._free = 0                      # slots to fill
        self._pumping = False
        self._exhausted = False             # every statement has been started
        self._started = 0
        self._done = 0
        self._results = {}                  # index -> ExecutionResult
        self._first_error = None            # (index, exception)
        self._waiter = None                 # the reactor Event the caller waits on

    # -- starting requests ---------------------------------------------------------------------

    def start(self, concurrency):
        with self._lock:
            self._free = concurrency
            self._pumping = True
        self._pump()
        self._maybe_finish()

    def _pump(self):
        # Only one pump runs at a time (``_pumping``), so it reads the user's iterable outside
        # the lock: a generator that yields to a gevent/eventlet hub must not hold it.
        while True:
            with self._lock:
                if self._free <= 0 or self._exhausted or (
                        self._fail_fast and self._first_error is not None):
                    self._pumping = False
                    return
                self._free -= 1
            try:
                index, item = next(self._items)
            except StopIteration:
                with self._lock:
                    self._free += 1
                    self._exhausted = True
                    self._pumping = False
                return
            except Exception as exc:
                # the iterable itself failed: that is the result of the next statement, and
                # nothing comes after it
                with self._lock:
                    index = self._started
                    self._started += 1
                    self._exhausted = True
                self._put(index, False, exc)
                continue
            with self._lock:
                if self._fail_fast and self._first_error is not None:
                    # a failure arrived while the iterable was read: start nothing more
                    self._pumping = False
                    return
                self._started += 1
            self._launch(index, item)

    def _launch(self, index, item):
        try:
            statement, parameters = item
        except (TypeError, ValueError):
            self._put(index, False, TypeError(
                "execute_concurrent: item %d is %r; each item must be a (statement, parameters) "
                "pair (parameters may be None)" % (index, item)))
            return
        try:
            future = self._session.execute_async(statement, parameters,
                                                 execution_profile=self._profile)
        except Exception as exc:     # bad parameters, unknown profile, session shut down ...
            self._put(index, False, exc)
            return
        future.add_callbacks(self._on_success, self._on_error, callback_args=(future, index),
                             errback_args=(index,))

    def _on_success(self, rows, future, index):
        try:
            result = future.result()
        except Exception as exc:     # (the future settled with rows: not expected)
            self._put(index, False, exc)
            return
        self._put(index, True, result)

    def _on_error(self, exc, index):
        self._put(index, False, exc)

    # -- results -------------------------------------------------------------------------------

    def _put(self, index, success, value):
        with self._lock:
            self._results[index] = ExecutionResult(success, value)
            self._done += 1
            if not success and self._first_error is None:
                self._first_error = (index, value)
            self._free += 1
            pump = not self._pumping
            if pump:
                self._pumping = True
            waiter = self._waiter
        if pump:
            self._pump()
        if waiter is not None:
            waiter.set()
        self._maybe_finish()

    def _finished(self):
        """All started requests are answered and nothing more will start (lock held)."""
        if self._done < self._started:
            return False
        return self._exhausted or (self._fail_fast and self._first_error is not None)

    def _maybe_finish(self):
        target = self._on_finished
        if target is None:
            return
        with self._lock:
            if not self._finished() or self._pumping:
                return
            self._on_finished = None
        if self._fail_fast and self._first_error is not None:
            target.set_exception(self._first_error[1])
        else:
            target.set_result([self._results[i] for i in sorted(self._results)])

    def _wait_until(self, ready):
        """Block (green-thread friendly) until ``ready()`` is true; ``ready`` runs with the
        lock held."""
        while True:
            with self._lock:
                if ready():
                    self._waiter = None
                    return
                event = self._session.cluster.reactor.make_event()
                self._waiter = event
            # every request ends (answer, error or its own timeout) and each end sets the
            # event, so this wait needs no deadline of its own
            event.wait()

    def all_results(self):
        def ready():
            return (self._fail_fast and self._first_error is not None) or self._finished()
        self._wait_until(ready)
        if self._fail_fast and self._first_error is not None:
            raise self._first_error[1]
        return [self._results[i] for i in sorted(self._results)]

    def results_in_order(self):
        index = 0
        while True:
            def ready():
                return index in self._results or (self._finished() and index >= self._started)
            self._wait_until(ready)
            with self._lock:
                result = self._results.pop(index, None)
            if result is None:
                return
            if self._fail_fast and not result.success:
                raise result.result_or_exc
            yield result
            index += 1
