"""ResponseFuture: the eventual result of one statement, and the attempts that produce it.

One ResponseFuture per request.  It walks the load-balancing policy's query plan, borrows the
least busy connection of the host's pool and sends: each send is an ``_Attempt`` (host,
connection, retry number, deadline) whose answer comes back on the reactor's loop.  Rows -> a
ResultSet, a server error -> the retry policy (same host, next host, or raise), UNPREPARED ->
re-prepare on that host and send again, a lost connection -> the retry policy's
``on_request_error``.  Blocking waits (``result()``) use the reactor's wait primitive, so under
gevent/eventlet they yield to the hub instead of blocking the OS thread.

Attempts are separate objects so that several can be in flight for one future (speculative
execution): the first final outcome settles the future exactly once, and an attempt that
answers after that (or after the future moved on to its next page) is ignored.  An attempt is
started when the previous one failed (retry policy), and, for an idempotent statement whose
execution profile has a speculative execution policy, also on that policy's timer while the
earlier ones still run.  A losing attempt is not cancelled on the wire (the server may be
executing it): its late answer frees its stream id and is dropped, or, past the request's
deadline, its id stays reserved as an orphan until that answer (core/streams.py).
"""

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence

from cqlreactor.core import messages as msgs
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import (
    ConnectionBusy, ConnectionException, ConnectionShutdown, DriverException, NoHostAvailable,
    OperationTimedOut, OverloadedErrorMessage, IsBootstrappingErrorMessage, QueryExhausted,
    ReadTimeout, RequestCancelled, ServerException, ServerError, TraceUnavailable, TruncateError,
    Unavailable, Unprepared, WriteTimeout)
from cqlreactor.policies import RetryDecision
from cqlreactor.query import ResultSet
from cqlreactor.statements import BatchStatement, BoundStatement
from cqlreactor.tracing import QueryTrace

__all__ = ["ResponseFuture"]

log = logging.getLogger(__name__)

_NOT_SET = object()
_NO_KWARGS = {}  # type: Dict[str, Any]
_monotonic = time.monotonic
_allocate_lock = threading.Lock
_RowsResult = msgs.RowsResult
_new_attempt = object.__new__

# column names and types of a result's metadata list, by identity (the core shares one list per
# distinct metadata, so this is a dict hit per response instead of two list builds)
_NAMES_AND_TYPES = {}  # type: dict


def _names_and_types(meta):
    if not meta:
        return [], []
    entry = _NAMES_AND_TYPES.get(id(meta))
    if entry is not None and entry[0] is meta:
        return entry[1], entry[2]
    names = [c[2] for c in meta]
    types = [c[3] for c in meta]
    if len(_NAMES_AND_TYPES) >= 1024:
        _NAMES_AND_TYPES.clear()
    _NAMES_AND_TYPES[id(meta)] = (meta, names, types)   # keeps meta alive: the id stays its own
    return names, types


def use_keyspace_message(keyspace):
    """The QUERY ``USE "keyspace"`` (quotes doubled), at consistency ONE."""
    return msgs.QueryMessage('USE "%s"' % keyspace.replace('"', '""'),
                             msgs.QueryParameters(ConsistencyLevel.ONE))


class _Attempt(object):
    """One send of a future's request to one host (a part of ResponseFuture, hence its calls
    to the future's private handlers).

    An answer is wanted only while the future is not settled and the attempt still belongs to
    its current page: a late answer (another attempt won, or the future moved on) is dropped.
    The future detaches all its attempts when it settles, which also breaks the reference
    cycle future <-> attempt (no request may leave garbage for the cyclic collector: its pauses
    show in the latency percentiles).

    Attributes:
        future: the ResponseFuture, or None once the future settled or moved on to its next
            page.
        host, connection: where it was sent.
        retry_num: how many retries came before it (0 for the first send).
        deadline: monotonic time its connection gives up (the request's timeout), or None.
        previous: the attempt the future made before this one for the same page, or None.
        done: True once its answer (or its failure) arrived, or it could not be sent.
    """

    __slots__ = ("future", "host", "connection", "retry_num", "deadline", "previous", "done")

    def __init__(self, future, host, connection, retry_num, deadline, previous):
        self.future = future
        self.host = host
        self.connection = connection
        self.retry_num = retry_num
        self.deadline = deadline
        self.previous = previous
        self.done = False

    def wanted(self):
        future = self.future
        return future is not None and future._final is _NOT_SET

    def on_response(self, response):
        """The connection's callback (on the reactor loop): a response message or an error."""
        self.done = True
        future = self.future
        if future is None:        # settled (every attempt is detached then) or moved on
            return
        try:
            future._handle_response(self, response)
        except Exception as exc:   # never let a bug here leave the future hanging
            log.exception("error handling a response")
            future._set_final_exception(exc)


class ResponseFuture(object):
    """The eventual result of one statement; ``result()`` blocks (green-thread friendly),
    callbacks run on the reactor's loop, ``await future`` works inside asyncio.

    ``attempted_hosts`` lists the host of every attempt sent, in order: retries, speculative
    executions and later pages included (as cassandra-driver).

    Attributes besides the cassandra-driver ones: ``column_names`` / ``column_types`` of the
    last page received, and ``paging_state``, the state that resumes after it (None at the end).
    """

    __slots__ = ("session", "query", "_build", "_consistency", "_sent_paging_state", "message",
                 "timeout", "_deadline", "row_factory", "_retry_policy", "_query_plan",
                 "_attempt", "_errors", "_final", "_final_exception", "_result_set",
                 "_callbacks", "_errbacks", "_event", "_lock", "paging_state", "has_more_pages",
                 "column_names", "column_types", "coordinator_host", "_warnings",
                 "custom_payload", "_trace_id", "_result_metadata", "attempted_hosts",
                 "_new_spec_plan", "_spec_plan", "_spec_timer", "is_schema_agreed",
                 "_query_traces", "_plan_source", "_waiter", "__weakref__")

    def __init__(self, session, query, message_builder, timeout, row_factory, retry_policy,
                 query_plan, consistency_level, message=None, result_metadata=None,
                 new_speculative_plan=None):
        self.session = session
        self.query = query
        self._build = message_builder        # (consistency, paging_state) -> message
        self._consistency = consistency_level
        # what the first message was built with (execute_async passes the message it built)
        self._sent_paging_state = query.paging_state if message is not None else \
            getattr(query, "paging_state", None)
        if message is None:
            message = message_builder(consistency_level, self._sent_paging_state)
        self.message = message
        # columns of a Rows answer sent without metadata (EXECUTE with skip_metadata)
        self._result_metadata = result_metadata
        self.timeout = timeout
        self._deadline = (_monotonic() + timeout) if timeout else None
        self.row_factory = row_factory
        self._retry_policy = retry_policy
        self._query_plan = query_plan
        #: where later pages' plans come from: the execution profile's load-balancing policy,
        #: or the Host of execute(host=...) (set by Session.execute_async); None: the default
        #: profile's policy
        self._plan_source = None
        self._attempt = None                 # the latest attempt
        self._errors = None                  # host -> error, made on the first error
        self._final = _NOT_SET
        self._final_exception = None
        self._result_set = None
        self._callbacks = None               # [(fn, args, kwargs)], made on the first add
        self._errbacks = None
        # the asyncio future of an ``await`` (cqlreactor.aio._RequestFuture): settled after
        # the callbacks, with no callback tuples or lock round of its own
        self._waiter = None
        self._event = None
        self._lock = _allocate_lock()
        self.paging_state = None
        self.has_more_pages = False
        self.column_names = None
        self.column_types = None
        self.coordinator_host = None
        self._warnings = None
        self.custom_payload = None
        self._trace_id = None
        self.attempted_hosts = []
        # () -> SpeculativeExecutionPlan for each page, or None (no speculative execution)
        self._new_spec_plan = new_speculative_plan
        self._spec_plan = new_speculative_plan() if new_speculative_plan is not None else None
        self._spec_timer = None
        self._query_traces = None            # a QueryTrace per traced answer (page)
        #: False when a schema change's agreement wait ran out (see Cluster
        #: max_schema_agreement_wait); True otherwise, as cassandra-driver's
        self.is_schema_agreed = True

    def _error_on(self, host, exc):
        errors = self._errors
        if errors is None:
            errors = self._errors = {}
        errors[host] = exc

    def _host(self):
        attempt = self._attempt
        return attempt.host if attempt is not None else None

    # -- sending ------------------------------------------------------------------------------

    def send_request(self, retry_num=0, speculative=False):
        """Send to the next usable host of the plan; False (and NoHostAvailable) when none is.

        ``retry_num``: how many retries came before this attempt (the retry policy's count).
        ``speculative``: an extra attempt (speculative execution): no host left is no error.
        While another attempt of a speculating future still runs, no host left is no error
        either: that attempt's answer settles the future."""
        pools = self.session.pools
        for host in self._query_plan:
            pool = pools.get(host)
            if pool is None or pool.is_shutdown:
                self._error_on(host, ConnectionException(
                    "no connection pool to this host in the session (it is down, removed or "
                    "ignored by the load-balancing policy)", host=str(host)))
                continue
            try:
                conn = pool.borrow_connection()
            except ConnectionException as exc:
                self._error_on(host, exc)
                continue
            if self._send_on(host, conn, retry_num):
                return True
        if speculative or (self._spec_plan is not None and self._attempt_running()):
            return False
        self._set_final_exception(NoHostAvailable(
            "Unable to complete the operation against any hosts", self._errors or {}))
        return False

    def _attempt_running(self):
        attempt = self._attempt
        while attempt is not None:
            if not attempt.done:
                return True
            attempt = attempt.previous
        return False

    def _remaining(self):
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - _monotonic())

    def _send_on(self, host, conn, retry_num):
        """Start an attempt on ``conn``; False (the error recorded) when it cannot take it."""
        deadline = self._deadline
        # _Attempt(...) written out (keep in step with its __init__): a Python __init__ call
        # costs this once-per-request path as much as all the rest of the attempt
        attempt = _new_attempt(_Attempt)
        attempt.future = self
        attempt.host = host
        attempt.connection = conn
        attempt.retry_num = retry_num
        attempt.deadline = deadline
        attempt.previous = self._attempt
        attempt.done = False
        self._attempt = attempt
        keyspace = self.session.keyspace
        try:
            if not keyspace or conn.keyspace == keyspace:    # the usual case first
                conn.send(self.message, attempt.on_response,
                          None if deadline is None else max(0.0, deadline - _monotonic()),
                          self._result_metadata)
            else:                       # this connection is in another keyspace: USE first
                conn.send(use_keyspace_message(keyspace),
                          lambda resp: self._on_keyspace_set(attempt, keyspace, resp),
                          self._remaining())
        except ConnectionException as exc:   # ConnectionBusy, closed, defunct
            attempt.done = True
            self._error_on(host, exc)
            return False
        self.attempted_hosts.append(host)
        return True

    # -- speculative execution ----------------------------------------------------------------

    def start_speculative_execution(self):
        """Arm the timer of the next extra attempt, as the speculative plan says (the session
        calls this once the first attempt went out; no-op without a plan)."""
        plan = self._spec_plan
        if plan is None or self._final is not _NOT_SET:
            return
        delay = plan.next_execution(self._host())
        if delay is None or delay < 0:
            return
        remaining = self._remaining()
        if remaining is not None and remaining <= delay:
            return        # the request times out first
        try:
            timer = self.session.cluster.reactor.call_later(delay, self._on_speculative_timer,
                                                            plan)
        except ConnectionShutdown:     # ReactorStopped: the cluster is shutting down
            return
        with self._lock:
            if self._final is _NOT_SET and self._spec_plan is plan:
                self._spec_timer = timer
                return
        timer.cancel()    # settled meanwhile

    def _on_speculative_timer(self, plan):
        """(loop thread) Send one more attempt to the next host of the plan."""
        with self._lock:
            if self._final is not _NOT_SET or self._spec_plan is not plan:
                return
            self._spec_timer = None
        if self.session.is_shutdown:
            return
        if self.send_request(0, speculative=True):
            if self._final is not _NOT_SET:
                # settled from another thread while it was sent: detach it as settling does
                self._attempt.future = None
                return
            self.start_speculative_execution()

    def _on_keyspace_set(self, attempt, keyspace, response):
        if not attempt.wanted():
            return
        if isinstance(response, (msgs.SetKeyspaceResult, msgs.VoidResult)):
            conn = attempt.connection
            conn.keyspace = keyspace
            try:
                conn.send(self.message, attempt.on_response, self._remaining(),
                          self._result_metadata)
            except ConnectionException as exc:
                attempt.on_response(exc)
            return
        attempt.on_response(response)

    # -- answers (on the reactor loop) ------------------------------------------------------

    def _handle_response(self, attempt, response):
        host = attempt.host
        if response.__class__ is _RowsResult or isinstance(response, _RowsResult):
            warnings = self._warnings = response.warnings
            self.custom_payload = response.custom_payload
            trace_id = self._trace_id = response.tracing_id
            if trace_id is not None or warnings:
                self._note_extras(trace_id, warnings)
            self.coordinator_host = host
            paging_state = self.paging_state = response.paging_state
            self.has_more_pages = paging_state is not None
            meta = response.column_metadata
            if meta is None and isinstance(self.query, BoundStatement):
                meta = self.query.prepared_statement.result_metadata
            elif response.result_metadata_id is not None and \
                    isinstance(self.query, BoundStatement):
                # v5: the table changed since PREPARE; later EXECUTEs name the new metadata
                ps = self.query.prepared_statement
                ps.result_metadata = meta
                ps.result_metadata_id = response.result_metadata_id
            entry = _NAMES_AND_TYPES.get(id(meta))    # _names_and_types' hit, inlined
            if entry is not None and entry[0] is meta:
                self.column_names = names = entry[1]
                self.column_types = entry[2]
            else:
                names, self.column_types = _names_and_types(meta)
                self.column_names = names
            rows = response.rows
            user_types = self.session.user_types
            if user_types.active:   # classes registered for UDTs (register_user_type)
                rows = user_types.convert_rows(self.column_types, rows)
            self._set_final_result(self.row_factory(names, rows))
            return
        if isinstance(response, msgs.ResultMessage):
            self._trace_id = response.tracing_id
            self._warnings = response.warnings
            self.custom_payload = response.custom_payload
            if response.tracing_id is not None or response.warnings:
                self._note_extras(response.tracing_id, response.warnings)
        if isinstance(response, (msgs.VoidResult, msgs.SchemaChangeResult)):
            self.coordinator_host = host
            self.paging_state = None
            self.has_more_pages = False
            if isinstance(response, msgs.SchemaChangeResult):
                self._wait_for_schema_agreement(attempt.connection, response)
                return
            self._set_final_result([])
            return
        if isinstance(response, msgs.SetKeyspaceResult):
            self.coordinator_host = host
            attempt.connection.keyspace = response.keyspace
            self.session.keyspace = response.keyspace
            self._set_final_result([])
            return
        if isinstance(response, msgs.PreparedResult):
            self.coordinator_host = host
            self._set_final_result(response)
            return
        if isinstance(response, Exception):
            # the connection driver hands every server ERROR over as its exception class
            if isinstance(response, ServerException):
                self._handle_error(attempt, response)
            else:
                self._handle_connection_error(attempt, response)
            return
        self._set_final_exception(DriverException(
            "unexpected response %r from %s" % (response, host)))

    def _wait_for_schema_agreement(self, connection, response):
        """A DDL's answer (on the loop): settle once every up host has the new schema, or
        ``max_schema_agreement_wait`` passed (``is_schema_agreed`` False, a warning), and the
        metadata was refreshed.  The wait runs from loop callbacks and reactor timers
        (ControlConnection.run_in_loop): no thread, green under gevent/eventlet, on the
        caller's own loop in asyncio native mode."""
        cluster = self.session.cluster
        wait = cluster.max_schema_agreement_wait
        if not wait:
            cluster.on_schema_change(response)
            self._set_final_result([])
            return
        # result() without its own timeout waits for the agreement too, not only the request
        if self._deadline is not None:
            self._deadline = max(self._deadline, _monotonic() + wait)
        control = cluster.control_connection

        def settle(agreed, error):
            self.is_schema_agreed = bool(agreed) and error is None
            if error is not None:
                log.warning("could not wait for schema agreement: %r", error)
            self._set_final_result([])
        try:
            control.run_in_loop(control.after_schema_change_steps(connection, response, wait),
                                settle)
        except Exception as exc:      # e.g. the reactor stopped: settle unagreed, never hang
            settle(False, exc)

    def _handle_connection_error(self, attempt, exc):
        if isinstance(exc, OperationTimedOut):
            self._set_final_exception(exc)
            return
        if self.session.is_shutdown:
            # the session closed its pools under the request: no retry could go anywhere,
            # and Session.shutdown promises ConnectionShutdown
            if not isinstance(exc, ConnectionShutdown):
                exc = ConnectionShutdown("the session was shut down while the request was "
                                         "pending", host=str(attempt.host))
            self._set_final_exception(exc)
            return
        self._error_on(attempt.host, exc)
        if isinstance(exc, ConnectionBusy):
            self.send_request(attempt.retry_num)
            return
        decision, _ = self._retry_policy.on_request_error(
            self.query, self._consistency, exc, attempt.retry_num)
        self._apply_decision(attempt, decision, None, exc)

    def _handle_error(self, attempt, exc):
        query = self.query
        if isinstance(exc, Unprepared):
            self._reprepare(attempt, exc)
            return
        policy = self._retry_policy
        retry_num = attempt.retry_num
        info = exc.info
        if isinstance(exc, ReadTimeout):
            decision, cl = policy.on_read_timeout(
                query, info.get("consistency", self._consistency),
                info.get("required_responses", 0), info.get("received_responses", 0),
                info.get("data_retrieved", False), retry_num)
        elif isinstance(exc, WriteTimeout):
            decision, cl = policy.on_write_timeout(
                query, info.get("consistency", self._consistency), info.get("write_type"),
                info.get("required_responses", 0), info.get("received_responses", 0),
                retry_num)
        elif isinstance(exc, Unavailable):
            decision, cl = policy.on_unavailable(
                query, info.get("consistency", self._consistency),
                info.get("required_replicas", 0), info.get("alive_replicas", 0), retry_num)
        elif isinstance(exc, (OverloadedErrorMessage, IsBootstrappingErrorMessage, TruncateError,
                              ServerError)):
            self._error_on(attempt.host, exc)
            decision, cl = policy.on_request_error(query, self._consistency, exc, retry_num)
        else:
            self._set_final_exception(exc)
            return
        self._apply_decision(attempt, decision, cl, exc)

    def _apply_decision(self, attempt, decision, consistency, exc):
        if decision == RetryDecision.RETHROW:
            self._set_final_exception(exc)
            return
        metrics = getattr(self.session.cluster, "metrics", None)
        if decision == RetryDecision.IGNORE:
            if metrics is not None:
                metrics.on_ignore(exc)
            self._set_final_result([])
            return
        if metrics is not None:
            metrics.on_retry(exc)
        log.debug("retry %d (%s) after %s from %s: %s", attempt.retry_num + 1,
                  "same host" if decision == RetryDecision.RETRY else "next host",
                  type(exc).__name__, attempt.host, exc)
        retry_num = attempt.retry_num + 1
        if consistency is not None and consistency != self._consistency:
            self._consistency = consistency
            self.message = self._build(consistency, self._sent_paging_state)
        host = attempt.host
        if decision == RetryDecision.RETRY and host is not None:
            pool = self.session.pools.get(host)
            if pool is not None:
                try:
                    if self._send_on(host, pool.borrow_connection(), retry_num):
                        return
                except ConnectionException as busy:
                    self._error_on(host, busy)
        self.send_request(retry_num)   # RETRY_NEXT_HOST, or the same host could not take it

    def _reprepare(self, attempt, exc):
        """The host forgot the statement (e.g. it restarted): prepare it there, send again."""
        query = self.query
        prepared = getattr(query, "prepared_statement", None)
        if prepared is None and isinstance(query, BatchStatement):
            prepared = self.session.prepared_by_id(exc.info.get("statement_id"))
        if prepared is None or attempt.retry_num > 3:
            self._set_final_exception(exc)
            return
        # the EXECUTE goes again on the same connection, as the next attempt; the PREPARE's
        # answer (or its error, through the retry policy) already belongs to that attempt
        conn = attempt.connection
        again = self._attempt = _Attempt(self, attempt.host, conn, attempt.retry_num + 1,
                                         self._deadline, self._attempt)
        self.attempted_hosts.append(attempt.host)
        prepare = msgs.PrepareMessage(prepared.query_string, keyspace=prepared.prepare_keyspace)

        def reprepared(response):
            if not again.wanted():
                return
            if isinstance(response, msgs.PreparedResult):
                if isinstance(query, BoundStatement) and \
                        response.query_id != prepared.query_id:
                    # the host computed another id (another keyspace context): use it here
                    self.message = self._build(self._consistency, self._sent_paging_state,
                                               response.query_id)
                try:
                    # the EXECUTE still skips the metadata (v5): its Rows answer is decoded
                    # with the statement's, as on the first send
                    conn.send(self.message, again.on_response, self._remaining(),
                              self._result_metadata)
                except ConnectionException as send_error:
                    again.on_response(send_error)
            else:
                again.on_response(response)

        keyspace = prepared.prepared_in_keyspace
        if keyspace and conn.keyspace != keyspace:
            def used(response):
                if not again.wanted():
                    return
                if isinstance(response, msgs.SetKeyspaceResult):
                    conn.keyspace = keyspace
                    try:
                        conn.send(prepare, reprepared, self._remaining())
                    except ConnectionException as send_error:
                        again.on_response(send_error)
                else:
                    again.on_response(response)
            conn.send(use_keyspace_message(keyspace), used, self._remaining())
        else:
            conn.send(prepare, reprepared, self._remaining())

    # -- completion ---------------------------------------------------------------------------

    # The first outcome wins, once: a later one (another attempt's, or an error after a result)
    # finds _final set and is dropped; the attempts are detached (see _Attempt).  (Written out
    # twice: this runs once per request.)

    def _set_final_result(self, rows):
        with self._lock:
            if self._final is not _NOT_SET:
                return
            self._final = rows
            attempt = self._attempt
            while attempt is not None:
                attempt.future, attempt = None, attempt.previous
            callbacks = self._callbacks
            event = self._event
            timer = self._spec_timer
            waiter = self._waiter
            self._waiter = None
        if timer is not None:
            self._spec_timer = None
            timer.cancel()
        if event is not None:
            event.set()
        if callbacks:
            for fn, args, kwargs in callbacks:
                try:
                    fn(rows, *args, **kwargs)
                except Exception:
                    log.exception("a result callback failed")
        if waiter is not None:
            waiter.ok(rows)

    def _set_final_exception(self, exc):
        with self._lock:
            if self._final is not _NOT_SET:
                return
            self._final_exception = exc
            self._final = None
            attempt = self._attempt
            while attempt is not None:
                attempt.future, attempt = None, attempt.previous
            errbacks = self._errbacks
            event = self._event
            timer = self._spec_timer
            waiter = self._waiter
            self._waiter = None
        if timer is not None:
            self._spec_timer = None
            timer.cancel()
        if event is not None:
            event.set()
        if errbacks:
            for fn, args, kwargs in errbacks:
                try:
                    fn(exc, *args, **kwargs)
                except Exception:
                    log.exception("an error callback failed")
        if waiter is not None:
            waiter.failed(exc)

    @property
    def done(self) -> bool:
        return self._final is not _NOT_SET

    def result(self, timeout: Optional[float] = None) -> Any:
        """The ResultSet; raises the request's exception.  ``timeout`` bounds this wait only."""
        if self._final is _NOT_SET:
            with self._lock:
                if self._final is _NOT_SET and self._event is None:
                    self._event = self.session.cluster.reactor.make_event()
                event = self._event
            if event is not None and self._final is _NOT_SET:
                wait_for = timeout
                if wait_for is None and self._deadline is not None:
                    # the request's own timeout fires first; the margin covers the loop's lag
                    wait_for = self._remaining() + 5.0
                if not event.wait(wait_for) and self._final is _NOT_SET:
                    raise OperationTimedOut(
                        "no answer within %.3fs" % (wait_for,),  # type: ignore[str-format]
                        host=str(self._host()))
        if self._final_exception is not None:
            raise self._final_exception
        if isinstance(self._final, list):
            if self._result_set is None:
                self._result_set = ResultSet(self, self._final)
            return self._result_set
        return self._final

    def _note_extras(self, trace_id, warnings):
        """A traced answer's trace id (one QueryTrace per page); the server's warnings,
        logged as cassandra-driver logs them."""
        if trace_id is not None:
            if self._query_traces is None:
                self._query_traces = []
            self._query_traces.append(QueryTrace(trace_id, self.session))
        for warning in warnings or ():
            log.warning("Server warning: %s", warning)

    @property
    def warnings(self):
        """The warnings the server sent with the answer (protocol v4+), or None.  Raises
        DriverException before the future is done, as cassandra-driver's."""
        if self._final is _NOT_SET:
            raise DriverException("warnings cannot be retrieved before ResponseFuture is "
                                  "finalized")
        return self._warnings

    def get_query_trace_ids(self):
        """The trace session ids of the traced answers (pages), without reading them."""
        return [trace.trace_id for trace in self._query_traces or ()]

    def get_query_trace(self, max_wait=None, query_cl=ConsistencyLevel.LOCAL_ONE):
        """The QueryTrace of the last answer, read from system_traces (None when the request
        was not traced).  ``max_wait`` seconds (None: ``Session.max_trace_wait``) before
        TraceUnavailable; also raised before the future is done."""
        if self._final is _NOT_SET:
            raise TraceUnavailable("Trace information was not available. The ResponseFuture "
                                   "is not done.")
        if self._query_traces:
            return self._populated(self._query_traces[-1], max_wait, query_cl)
        return None

    def get_all_query_traces(self, max_wait_per=None, query_cl=ConsistencyLevel.LOCAL_ONE):
        """A QueryTrace per traced answer (every page so far), each read as in
        get_query_trace."""
        return [self._populated(trace, max_wait_per, query_cl)
                for trace in self._query_traces or ()]

    def _populated(self, trace, max_wait, query_cl):
        if trace.events is None:
            trace.populate(max_wait=self.session.max_trace_wait if max_wait is None
                           else max_wait, query_cl=query_cl)
        return trace

    def add_callback(self, fn: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> "ResponseFuture":
        with self._lock:
            done = self._final is not _NOT_SET and self._final_exception is None
            if not done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append((fn, args, kwargs))
        if done:
            fn(self._final, *args, **kwargs)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any,
                    **kwargs: Any) -> "ResponseFuture":
        with self._lock:
            failed = self._final_exception is not None
            if not failed:
                if self._errbacks is None:
                    self._errbacks = []
                self._errbacks.append((fn, args, kwargs))
        if failed:
            fn(self._final_exception, *args, **kwargs)
        return self

    def add_callbacks(self, callback: Callable[..., Any], errback: Callable[..., Any],
                      callback_args: Sequence[Any] = (),
                      callback_kwargs: Optional[Dict[str, Any]] = None,
                      errback_args: Sequence[Any] = (),
                      errback_kwargs: Optional[Dict[str, Any]] = None) -> "ResponseFuture":
        callback_kwargs = callback_kwargs or _NO_KWARGS
        errback_kwargs = errback_kwargs or _NO_KWARGS
        # one lock round for both (this is on every request's path)
        with self._lock:
            final = self._final
            if final is _NOT_SET:
                self._callbacks = [(callback, callback_args, callback_kwargs)] \
                    if self._callbacks is None \
                    else self._callbacks + [(callback, callback_args, callback_kwargs)]
                self._errbacks = [(errback, errback_args, errback_kwargs)] \
                    if self._errbacks is None \
                    else self._errbacks + [(errback, errback_args, errback_kwargs)]
                return self
        # already settled: the same as the two calls one after the other
        self.add_callback(callback, *callback_args, **callback_kwargs)
        self.add_errback(errback, *errback_args, **errback_kwargs)
        return self

    def clear_callbacks(self) -> None:
        """Forget the callbacks and errbacks added so far (cassandra-driver's)."""
        with self._lock:
            self._callbacks = None
            self._errbacks = None

    def start_fetching_next_page(self) -> None:
        """Ask for the next page; ``result()`` then returns it."""
        if not self.paging_state:
            raise QueryExhausted("there are no more pages (has_more_pages is False)")
        with self._lock:
            self._final = _NOT_SET
            self._final_exception = None
            self._result_set = None
            self._event = None
            self._callbacks = None
            self._errbacks = None
            self._attempt = None     # (its attempts were detached when it settled)
        self._sent_paging_state = self.paging_state
        self.message = self._build(self._consistency, self.paging_state)
        self._errors = None
        if self.timeout:
            self._deadline = _monotonic() + self.timeout
        source = self._plan_source
        if source is None:
            plan = self.session.query_plan(self.query)
        elif hasattr(source, "make_query_plan"):     # the profile's policy, as for page one
            plan = source.make_query_plan(self.session.keyspace, self.query)
        else:                                        # execute(host=...): that host only
            plan = (source,)
        self._query_plan = iter(plan)
        if self._new_spec_plan is not None:
            self._spec_plan = self._new_spec_plan()
        if self.send_request():
            self.start_speculative_execution()

    def cancel(self):
        """Give up on the request: the future fails with RequestCancelled at once, and the
        connection drops it (not sent if still queued, else its stream id is orphaned until
        the late answer).  False when the future had already settled."""
        if self._final is not _NOT_SET:
            return False
        attempt = self._attempt
        self._set_final_exception(RequestCancelled("the request was cancelled",
                                                   host=str(self._host())))
        if attempt is not None and attempt.connection is not None:
            attempt.connection.cancel(attempt.on_response)
        return True

    def __await__(self):
        # cqlreactor.aio: settled on the awaiting loop (directly when the reactor runs on it),
        # cancelling the awaiting task cancels the request
        aio = _aio_module if _aio_module is not None else _aio()
        return aio.wait_for_response(self).__await__()

    def _set_waiter(self, waiter):
        """Make ``waiter`` (an object with ``ok(rows)`` and ``failed(exc)``) the one settled
        after the callbacks; False when the future is already settled or has a waiter (then
        use add_callbacks)."""
        with self._lock:
            if self._final is not _NOT_SET or self._waiter is not None:
                return False
            self._waiter = waiter
            return True

    def __repr__(self):
        state = "pending" if self._final is _NOT_SET else (
            "error" if self._final_exception is not None else "done")
        return "<ResponseFuture %s query=%r host=%s>" % (state, self.query, self._host())


def _aio():
    """cqlreactor.aio, imported on the first ``await`` (it imports asyncio)."""
    global _aio_module
    if _aio_module is None:
        from cqlreactor import aio
        _aio_module = aio
    return _aio_module


_aio_module = None
