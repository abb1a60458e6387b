"""Session and ResponseFuture: what users call to run statements.

One ResponseFuture per request.  It walks the load-balancing policy's query plan, borrows the
least busy connection of the host's pool, sends, and handles the answer on the reactor's loop:
rows -> a ResultSet, a server error -> the retry policy (same host, next host, or raise),
UNPREPARED -> re-prepare on that host and send again, a lost connection -> the next host for
idempotent statements.  Blocking waits (``result()``) use the reactor's wait primitive, so under
gevent/eventlet they yield to the hub instead of blocking the OS thread.
"""

import functools
import logging
import struct
import threading
import time

from cqlreactor import encoder
from cqlreactor.core import messages as msgs
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.wire import UNSET_VALUE, write_short_bytes, write_value
from cqlreactor.core.errors import (
    ConnectionBusy, ConnectionException, DriverException, NoHostAvailable, OperationTimedOut,
    OverloadedErrorMessage, IsBootstrappingErrorMessage, ReadTimeout,
    RequestExecutionException, ServerError,
    TruncateError, Unavailable, Unprepared, WriteTimeout)
from cqlreactor.policies import RetryDecision, TokenAwarePolicy
from cqlreactor.query import ResultSet
from cqlreactor.statements import (
    BatchStatement, BoundStatement, FETCH_SIZE_UNSET, PreparedStatement, SimpleStatement,
    Statement)

__all__ = ["Session", "ResponseFuture"]

log = logging.getLogger(__name__)

_NOT_SET = object()
EXEC_PROFILE_DEFAULT = object()
_NO_KWARGS = {}
_monotonic = time.monotonic
_allocate_lock = threading.Lock
_RowsResult = msgs.RowsResult
_PreEncodedRequest = msgs.PreEncodedRequest
_QUERY = msgs.QueryMessage.opcode
_EXECUTE = msgs.ExecuteMessage.opcode
_int32 = struct.Struct(">i").pack
_uint16 = struct.Struct(">H").pack
_NULL = _int32(-1)
_UNSET = _int32(-2)
_EMPTY_VALUES = b"\x00\x00"

# column names and types of a result's metadata list, by identity (the core shares one list per
# distinct metadata, so this is a dict hit per response instead of two list builds)
_NAMES_AND_TYPES = {}


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


def _statement_template():
    """The attributes SimpleStatement(text) gets besides its text, when that is all its
    constructor does (checked on two statements); else None."""
    one, two = SimpleStatement("a"), SimpleStatement("b")
    first, second = dict(vars(one)), dict(vars(two))
    if first.pop("_query_string", None) != "a" or second.pop("_query_string", None) != "b" \
            or first != second or one.query_string != "a":
        return None
    for value in first.values():    # shared by every copy: only immutable values will do
        if not (value is None or value is FETCH_SIZE_UNSET
                or isinstance(value, (bool, int, float, str, bytes, frozenset))):
            return None
    return first


_STATEMENT_TEMPLATE = _statement_template()


def _simple_statement(text):
    """SimpleStatement(text), made by copying a template instead of running the constructor
    (two Python calls and a dozen attribute stores on every execute_async of a string)."""
    if _STATEMENT_TEMPLATE is None:
        return SimpleStatement(text)
    statement = _new_object(SimpleStatement)
    attributes = statement.__dict__
    attributes.update(_STATEMENT_TEMPLATE)
    attributes["_query_string"] = text
    return statement


_new_object = object.__new__


class ResponseFuture(object):
    """The eventual result of one statement; ``result()`` blocks (green-thread friendly),
    callbacks run on the reactor's loop, ``await future`` works inside asyncio."""

    __slots__ = ("session", "query", "_build", "_consistency", "_sent_paging_state", "message",
                 "timeout", "_deadline", "row_factory", "_retry_policy", "_query_plan",
                 "_current_host", "_connection", "_errors", "_retry_num", "_final",
                 "_final_exception", "_result_set", "_callbacks", "_errbacks", "_event",
                 "_lock", "_paging_state", "has_more_pages", "_col_names", "_col_types",
                 "coordinator_host", "warnings", "custom_payload", "_trace_id",
                 "_result_metadata", "__weakref__")

    def __init__(self, session, query, message_builder, timeout, row_factory, retry_policy,
                 query_plan, consistency_level, message=None, result_metadata=None):
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
        self._current_host = None
        self._connection = None
        self._errors = None                  # host -> error, made on the first error
        self._retry_num = 0
        self._final = _NOT_SET
        self._final_exception = None
        self._result_set = None
        self._callbacks = None               # [(fn, args, kwargs)], made on the first add
        self._errbacks = None
        self._event = None
        self._lock = _allocate_lock()
        self._paging_state = None
        self.has_more_pages = False
        self._col_names = None
        self._col_types = None
        self.coordinator_host = None
        self.warnings = None
        self.custom_payload = None
        self._trace_id = None

    def _error_on(self, host, exc):
        errors = self._errors
        if errors is None:
            errors = self._errors = {}
        errors[host] = exc

    # -- sending ------------------------------------------------------------------------------

    def send_request(self):
        """Send to the next usable host of the plan; False (and NoHostAvailable) when none is."""
        session = self.session
        for host in self._query_plan:
            pool = session._pools.get(host)
            if pool is None or pool.is_shutdown:
                continue
            try:
                conn = pool.borrow_connection()
            except ConnectionException as exc:
                self._error_on(host, exc)
                continue
            self._current_host = host
            if self._send_on(conn):
                return True
        self._set_final_exception(NoHostAvailable(
            "Unable to complete the operation against any hosts", self._errors or {}))
        return False

    def _remaining(self):
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - _monotonic())

    def _send_on(self, conn, message=None):
        self._connection = conn
        keyspace = self.session.keyspace
        try:
            if not keyspace or conn.keyspace == keyspace:    # the usual case first
                deadline = self._deadline
                conn.send(message or self.message, self._on_response,
                          None if deadline is None else max(0.0, deadline - _monotonic()),
                          self._result_metadata)
            else:                       # this connection is in another keyspace: USE first
                use = msgs.QueryMessage('USE "%s"' % keyspace.replace('"', '""'),
                                        msgs.QueryParameters(ConsistencyLevel.ONE))
                conn.send(use, lambda resp: self._on_keyspace_set(conn, keyspace, resp),
                          self._remaining())
            return True
        except ConnectionException as exc:   # ConnectionBusy, closed, defunct
            self._error_on(self._current_host, exc)
            return False

    def _on_keyspace_set(self, conn, keyspace, response):
        if isinstance(response, msgs.SetKeyspaceResult) or isinstance(response, msgs.VoidResult):
            conn.keyspace = keyspace
            try:
                conn.send(self.message, self._on_response, self._remaining(),
                          self._result_metadata)
            except ConnectionException as exc:
                self._on_response(exc)
            return
        self._on_response(response)

    # -- answers (on the reactor loop) ------------------------------------------------------

    def _on_response(self, response):
        try:
            self._handle_response(response)
        except Exception as exc:   # never let a bug here leave the future hanging
            log.exception("error handling a response")
            self._set_final_exception(exc)

    def _handle_response(self, response):
        host = self._current_host
        if response.__class__ is _RowsResult or isinstance(response, _RowsResult):
            self.warnings = response.warnings
            self.custom_payload = response.custom_payload
            self._trace_id = response.tracing_id
            self.coordinator_host = host
            paging_state = self._paging_state = response.paging_state
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
            names, types = _names_and_types(meta)
            self._col_names = names
            self._col_types = types
            self._set_final_result(self.row_factory(names, response.rows))
            return
        if isinstance(response, (msgs.VoidResult, msgs.SchemaChangeResult)):
            self.coordinator_host = host
            self.warnings = getattr(response, "warnings", None)
            self._paging_state = None
            self.has_more_pages = False
            if isinstance(response, msgs.SchemaChangeResult):
                self.session.cluster._on_schema_change_result(response)
            self._set_final_result([])
            return
        if isinstance(response, msgs.SetKeyspaceResult):
            self.coordinator_host = host
            if self._connection is not None:
                self._connection.keyspace = response.keyspace
            self.session._keyspace_changed(response.keyspace)
            self._set_final_result([])
            return
        if isinstance(response, msgs.PreparedResult):
            self.coordinator_host = host
            self._set_final_result(response)
            return
        if isinstance(response, msgs.ErrorMessage):
            self._handle_error(response.to_exception(str(host.endpoint) if host else None))
            return
        if isinstance(response, Exception):
            # the driver hands server ERRORs over as their exception classes
            if isinstance(response, RequestExecutionException):
                self._handle_error(response)
            else:
                self._handle_connection_error(response)
            return
        self._set_final_exception(DriverException(
            "unexpected response %r from %s" % (response, host)))

    def _handle_connection_error(self, exc):
        host = self._current_host
        if isinstance(exc, OperationTimedOut):
            self._set_final_exception(exc)
            return
        self._error_on(host, exc)
        if isinstance(exc, ConnectionBusy):
            self.send_request()
            return
        decision, _ = self._retry_policy.on_request_error(
            self.query, self._consistency, exc, self._retry_num)
        self._apply_decision(decision, None, exc)

    def _handle_error(self, exc):
        query = self.query
        if isinstance(exc, Unprepared):
            self._reprepare(exc)
            return
        policy = self._retry_policy
        if isinstance(exc, ReadTimeout):
            decision, cl = policy.on_read_timeout(
                query, exc.info.get("consistency", self._consistency),
                exc.info.get("required_responses", 0), exc.info.get("received_responses", 0),
                exc.info.get("data_retrieved", False), self._retry_num)
        elif isinstance(exc, WriteTimeout):
            decision, cl = policy.on_write_timeout(
                query, exc.info.get("consistency", self._consistency),
                exc.info.get("write_type"), exc.info.get("required_responses", 0),
                exc.info.get("received_responses", 0), self._retry_num)
        elif isinstance(exc, Unavailable):
            decision, cl = policy.on_unavailable(
                query, exc.info.get("consistency", self._consistency),
                exc.info.get("required_replicas", 0), exc.info.get("alive_replicas", 0),
                self._retry_num)
        elif isinstance(exc, (OverloadedErrorMessage, IsBootstrappingErrorMessage, TruncateError,
                              ServerError)):
            self._error_on(self._current_host, exc)
            decision, cl = policy.on_request_error(query, self._consistency, exc,
                                                   self._retry_num)
        else:
            self._set_final_exception(exc)
            return
        self._apply_decision(decision, cl, exc)

    def _apply_decision(self, decision, consistency, exc):
        if decision == RetryDecision.RETHROW:
            self._set_final_exception(exc)
            return
        if decision == RetryDecision.IGNORE:
            self._set_final_result([])
            return
        self._retry_num += 1
        if consistency is not None and consistency != self._consistency:
            self._consistency = consistency
            self.message = self._build(consistency, self._paging_state_for_retry())
        if decision == RetryDecision.RETRY and self._current_host is not None:
            pool = self.session._pools.get(self._current_host)
            if pool is not None:
                try:
                    if self._send_on(pool.borrow_connection()):
                        return
                except ConnectionException as busy:
                    self._error_on(self._current_host, busy)
        self.send_request()   # RETRY_NEXT_HOST, or the same host could not take it

    def _paging_state_for_retry(self):
        return self._sent_paging_state

    def _reprepare(self, exc):
        """The host forgot the statement (e.g. it restarted): prepare it there, send again."""
        query = self.query
        prepared = getattr(query, "prepared_statement", None)
        if prepared is None and isinstance(query, BatchStatement):
            prepared = self.session._prepared_by_id.get(exc.info.get("statement_id"))
        if prepared is None:
            self._set_final_exception(exc)
            return
        if self._retry_num > 3:
            self._set_final_exception(exc)
            return
        self._retry_num += 1
        conn = self._connection
        prepare = msgs.PrepareMessage(prepared.query_string, keyspace=None)

        def reprepared(response):
            if isinstance(response, msgs.PreparedResult):
                if isinstance(query, BoundStatement) and \
                        response.query_id != prepared.query_id:
                    # the host computed another id (another keyspace context): use it here
                    self.message = self._build(self._consistency, self._sent_paging_state,
                                               response.query_id)
                try:
                    conn.send(self.message, self._on_response, self._remaining())
                except ConnectionException as send_error:
                    self._on_response(send_error)
            elif isinstance(response, msgs.ErrorMessage):
                self._set_final_exception(response.to_exception(str(self._current_host)))
            else:
                self._on_response(response)

        keyspace = prepared.prepared_in_keyspace
        if keyspace and conn.keyspace != keyspace:
            use = msgs.QueryMessage('USE "%s"' % keyspace, msgs.QueryParameters(1))

            def used(response):
                if isinstance(response, msgs.SetKeyspaceResult):
                    conn.keyspace = keyspace
                    conn.send(prepare, reprepared, self._remaining())
                else:
                    self._on_response(response)
            conn.send(use, used, self._remaining())
        else:
            conn.send(prepare, reprepared, self._remaining())

    # -- completion ---------------------------------------------------------------------------

    def _set_final_result(self, rows):
        with self._lock:
            self._final = rows
            self._final_exception = None
            callbacks = self._callbacks
            event = self._event
        if event is not None:
            event.set()
        if callbacks:
            for fn, args, kwargs in callbacks:
                try:
                    fn(rows, *args, **kwargs)
                except Exception:
                    log.exception("a result callback failed")

    def _set_final_exception(self, exc):
        with self._lock:
            if self._final is not _NOT_SET and self._final_exception is None:
                return   # already succeeded
            self._final_exception = exc
            self._final = None
            errbacks = self._errbacks
            event = self._event
        if event is not None:
            event.set()
        if errbacks:
            for fn, args, kwargs in errbacks:
                try:
                    fn(exc, *args, **kwargs)
                except Exception:
                    log.exception("an error callback failed")

    @property
    def done(self):
        return self._final is not _NOT_SET

    def result(self, timeout=None):
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
                    raise OperationTimedOut("no answer within %.3fs" % (wait_for,),
                                            host=str(self._current_host))
        if self._final_exception is not None:
            raise self._final_exception
        if isinstance(self._final, list):
            if self._result_set is None:
                self._result_set = ResultSet(self, self._final)
            return self._result_set
        return self._final

    def get_query_trace_ids(self):
        return [self._trace_id] if self._trace_id else []

    def add_callback(self, fn, *args, **kwargs):
        with self._lock:
            done = self._final is not _NOT_SET and self._final_exception is None
            if not done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append((fn, args, kwargs))
        if done:
            fn(self._final, *args, **kwargs)
        return self

    def add_errback(self, fn, *args, **kwargs):
        with self._lock:
            failed = self._final_exception is not None
            if not failed:
                if self._errbacks is None:
                    self._errbacks = []
                self._errbacks.append((fn, args, kwargs))
        if failed:
            fn(self._final_exception, *args, **kwargs)
        return self

    def add_callbacks(self, callback, errback, callback_args=(), callback_kwargs=None,
                      errback_args=(), errback_kwargs=None):
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

    def start_fetching_next_page(self):
        """Ask for the next page; ``result()`` then returns it."""
        if not self._paging_state:
            raise DriverException("there are no more pages")
        with self._lock:
            self._final = _NOT_SET
            self._final_exception = None
            self._result_set = None
            self._event = None
            self._callbacks = None
            self._errbacks = None
        self._sent_paging_state = self._paging_state
        self.message = self._build(self._consistency, self._paging_state)
        self._retry_num = 0
        self._errors = None
        if self.timeout:
            self._deadline = _monotonic() + self.timeout
        self._query_plan = iter(self.session._query_plan(self.query))
        self.send_request()

    def __await__(self):
        import asyncio
        loop = asyncio.get_event_loop()
        fut = loop.create_future()

        def ok(_rows):
            loop.call_soon_threadsafe(_resolve, fut, self, None)

        def failed(exc):
            loop.call_soon_threadsafe(_resolve, fut, self, exc)

        self.add_callbacks(ok, failed)
        return fut.__await__()

    def __repr__(self):
        state = "pending" if self._final is _NOT_SET else (
            "error" if self._final_exception is not None else "done")
        return "<ResponseFuture %s query=%r host=%s>" % (state, self.query, self._current_host)


def _resolve(fut, response_future, exc):
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        try:
            fut.set_result(response_future.result())
        except Exception as error:
            fut.set_exception(error)


class Session(object):
    """Runs statements against the cluster; made by ``Cluster.connect()``."""

    def __init__(self, cluster, hosts, keyspace=None):
        self.cluster = cluster
        self.hosts = hosts
        self.keyspace = None
        self._pools = {}
        self._prepared = {}          # (query, keyspace) -> PreparedStatement
        self._prepared_by_id = {}    # query id -> PreparedStatement
        self.is_shutdown = False
        self._lock = threading.Lock()
        self.default_fetch_size = 5000
        # (text, consistency, page size, serial, version) -> (builder, pre-encoded QUERY)
        self._encoded_queries = {}
        # (query id, result metadata id, consistency, page size, serial, version)
        #   -> (EXECUTE body head, tail): the values go between them
        self._execute_parts = {}

    # -- defaults read from the default execution profile (cassandra-driver compatible) ----

    @property
    def row_factory(self):
        return self.cluster._profile(EXEC_PROFILE_DEFAULT).row_factory

    @row_factory.setter
    def row_factory(self, factory):
        self.cluster._profile(EXEC_PROFILE_DEFAULT).row_factory = factory

    @property
    def default_timeout(self):
        return self.cluster._profile(EXEC_PROFILE_DEFAULT).request_timeout

    @default_timeout.setter
    def default_timeout(self, value):
        self.cluster._profile(EXEC_PROFILE_DEFAULT).request_timeout = value

    @property
    def default_consistency_level(self):
        return self.cluster._profile(EXEC_PROFILE_DEFAULT).consistency_level

    @default_consistency_level.setter
    def default_consistency_level(self, value):
        self.cluster._profile(EXEC_PROFILE_DEFAULT).consistency_level = value

    # -- pools -------------------------------------------------------------------------------

    def _open_pools(self, hosts):
        errors = {}
        for host in hosts:
            if not host.is_up or not self.cluster._is_used(host):
                continue
            pool = self.cluster._new_pool(host, self)
            try:
                pool.open_blocking()
            except Exception as exc:
                errors[host] = exc
                self.cluster._on_host_unreachable(host, exc)
            self._pools[host] = pool
        if not any(p.open_count for p in self._pools.values()):
            raise NoHostAvailable("Unable to connect to any servers", errors)

    def _add_or_renew_pool(self, host):
        """A host came up (or was added): (re)open its pool without blocking."""
        if self.is_shutdown or not self.cluster._is_used(host):
            return
        pool = self._pools.get(host)
        if pool is None or pool.is_shutdown:
            pool = self.cluster._new_pool(host, self)
            self._pools[host] = pool
        pool.replenish_async()

    def _remove_pool(self, host):
        pool = self._pools.pop(host, None)
        if pool is not None:
            pool.shutdown()

    def _query_plan(self, query, profile=None):
        profile = profile or self.cluster._profile(EXEC_PROFILE_DEFAULT)
        return profile.load_balancing_policy.make_query_plan(self.keyspace, query)

    # -- statements ----------------------------------------------------------------------------

    def execute(self, query, parameters=None, timeout=_NOT_SET, trace=False,
                custom_payload=None, execution_profile=EXEC_PROFILE_DEFAULT, paging_state=None,
                host=None):
        """Run ``query`` and wait for its ResultSet (see ``execute_async``)."""
        return self.execute_async(query, parameters, trace, custom_payload, timeout,
                                  execution_profile, paging_state, host).result()

    def execute_async(self, query, parameters=None, trace=False, custom_payload=None,
                      timeout=_NOT_SET, execution_profile=EXEC_PROFILE_DEFAULT,
                      paging_state=None, host=None):
        """Send ``query`` and return its ResponseFuture at once.

        Args:
            query: a string, SimpleStatement, BoundStatement, PreparedStatement or
                BatchStatement.
            parameters: values for a string/SimpleStatement (``%s`` placeholders) or a
                PreparedStatement.
            timeout: seconds, or None for no timeout; defaults to the profile's request_timeout.
            execution_profile: a name registered with the Cluster, or an ExecutionProfile.
            paging_state: resume paging where an earlier result stopped.
            host: send to this Host only.
        Returns:
            ResponseFuture.
        """
        if self.is_shutdown:
            raise DriverException("the session is shut down")
        cluster = self.cluster
        try:
            profile = cluster.profiles[execution_profile]
        except (KeyError, TypeError):   # an ExecutionProfile object, or an unknown name
            profile = cluster._profile(execution_profile)
        if query.__class__ is str:
            query = _simple_statement(query)
        elif isinstance(query, PreparedStatement):
            query = query.bind(parameters)
            parameters = None
        if paging_state is not None:
            query.paging_state = paging_state
        if timeout is _NOT_SET:
            timeout = query.timeout if getattr(query, "timeout", None) else \
                profile.request_timeout
        consistency = query.consistency_level
        if consistency is None:
            consistency = profile.consistency_level
            if consistency is None:
                consistency = cluster._default_consistency
        serial = query.serial_consistency_level
        if serial is None:
            serial = profile.serial_consistency_level
        fetch_size = query.fetch_size
        if fetch_size is FETCH_SIZE_UNSET:
            fetch_size = self.default_fetch_size
        page_size = fetch_size if fetch_size and fetch_size > 0 else None
        message = result_metadata = None
        cls = query.__class__
        if cls is SimpleStatement and not parameters and query.paging_state is None:
            # The hot path: a query text sent again and again is encoded once; the connection
            # only adds the frame header with its stream id.
            key = (query.query_string, consistency, page_size, serial,
                   cluster.protocol_version)
            entry = self._encoded_queries.get(key)
            if entry is None:
                entry = self._cache_simple(key, query)
            builder, message = entry
        elif cls is BoundStatement:
            ps = query.prepared_statement
            builder = functools.partial(self._build_execute, ps, query.values, page_size,
                                        serial, cluster.protocol_version)
            if query.paging_state is None:
                message = builder(consistency, None)
            meta = ps.result_metadata
            if meta and cluster.protocol_version >= 5:
                result_metadata = meta
        else:
            builder = self._message_builder(query, parameters, serial, fetch_size,
                                            custom_payload, trace)
        retry_policy = query.retry_policy or profile.retry_policy
        if host is not None:
            plan = iter([host])
        else:
            policy = profile.load_balancing_policy
            if policy.__class__ is TokenAwarePolicy and query.routing_key is None:
                # what TokenAwarePolicy does without a routing key, minus one generator
                policy = policy._child_policy
            plan = iter(policy.make_query_plan(self.keyspace, query))
        future = ResponseFuture(self, query, builder, timeout, profile.row_factory,
                                retry_policy, plan, consistency, message, result_metadata)
        future.send_request()
        return future

    def _cache_simple(self, key, query):
        """(builder, pre-encoded QUERY) for a statement without parameters or paging state."""
        text, consistency, page_size, serial, version = key
        builder = self._message_builder(query, None, serial, page_size, None, False)
        entry = (builder, builder(consistency, None))
        cache = self._encoded_queries
        if len(cache) >= 2048:
            cache.clear()
        cache[key] = entry
        return entry

    def _build_execute(self, ps, values, page_size, serial, version, consistency, paging_state,
                       query_id=None):
        """The EXECUTE of a bound statement.  Without a paging state it is pre-encoded from a
        head and tail built once per prepared statement and settings, around the values."""
        skip = version >= 5 and bool(ps.result_metadata)
        if paging_state is not None or query_id is not None:
            params = msgs.QueryParameters(
                consistency, values=values, page_size=page_size, paging_state=paging_state,
                serial_consistency=serial, skip_metadata=skip)
            return msgs.ExecuteMessage(query_id or ps.query_id, params,
                                       result_metadata_id=ps.result_metadata_id)
        key = (ps.query_id, ps.result_metadata_id, consistency, page_size, serial, version)
        cache = self._execute_parts
        parts = cache.get(key)
        if parts is None:
            params = msgs.QueryParameters(consistency, values=[], page_size=page_size,
                                          serial_consistency=serial, skip_metadata=skip)
            body = msgs.ExecuteMessage(ps.query_id, params,
                                       result_metadata_id=ps.result_metadata_id
                                       ).encode_body(version)
            at = len(write_short_bytes(ps.query_id)) + 2 + (4 if version >= 5 else 1)
            if version >= 5:
                at += len(write_short_bytes(ps.result_metadata_id or b""))
            if body[at:at + 2] != _EMPTY_VALUES:   # never expected: the layout is fixed
                raise DriverException("cannot locate the values of an EXECUTE body")
            parts = (body[:at], body[at + 2:])
            if len(cache) >= 2048:
                cache.clear()
            cache[key] = parts
        chunks = [parts[0], _uint16(len(values))]
        append = chunks.append
        for value in values:
            if value.__class__ is bytes:
                append(_int32(len(value)))
                append(value)
            elif value is None:
                append(_NULL)
            elif value is UNSET_VALUE:
                append(_UNSET)
            else:
                append(write_value(value))
        append(parts[1])
        return _PreEncodedRequest(_EXECUTE, b"".join(chunks))

    def _message_builder(self, query, parameters, serial, fetch_size, custom_payload, trace):
        page_size = fetch_size if fetch_size and fetch_size > 0 else None
        version = self.cluster.protocol_version
        if isinstance(query, BoundStatement):
            return functools.partial(self._build_execute, query.prepared_statement,
                                     query.values, page_size, serial, version)
        if isinstance(query, BatchStatement):
            statements = []
            for is_prepared, query_or_id, values in query._statements_and_parameters:
                if is_prepared:
                    statements.append((query_or_id, values))
                else:
                    statements.append((encoder.bind_params(query_or_id, values), []))

            def build(consistency, paging_state):
                return msgs.BatchMessage(query.batch_type, statements, consistency,
                                         serial_consistency=serial)
            return build
        if isinstance(query, SimpleStatement):
            text = encoder.bind_params(query.query_string, parameters) if parameters \
                else query.query_string

            def build(consistency, paging_state):
                params = msgs.QueryParameters(
                    consistency, page_size=page_size, paging_state=paging_state,
                    serial_consistency=serial)
                if paging_state is None:
                    return _PreEncodedRequest(
                        _QUERY, msgs.QueryMessage(text, params).encode_body(version))
                return msgs.QueryMessage(text, params)
            return build
        raise TypeError("cannot execute %r: expected a string, SimpleStatement, "
                        "PreparedStatement, BoundStatement or BatchStatement" % (query,))

    def prepare(self, query, custom_payload=None, keyspace=None):
        """Prepare ``query`` (cached per session) and return its PreparedStatement."""
        if isinstance(query, SimpleStatement):
            query = query.query_string
        keyspace = keyspace or self.keyspace
        key = (query, keyspace)
        cached = self._prepared.get(key)
        if cached is not None:
            return cached
        profile = self.cluster._profile(EXEC_PROFILE_DEFAULT)
        plan = list(profile.load_balancing_policy.make_query_plan(keyspace, None))
        future = self._prepare_on(query, iter(plan), profile)
        response = future.result()
        bind_meta = response.bind_metadata
        prepared = PreparedStatement(
            response.query_id, query, keyspace or _keyspace_of(bind_meta), bind_meta,
            response.pk_indexes, response.result_metadata,
            getattr(response, "result_metadata_id", None), self.cluster.protocol_version,
            session=self)
        # The id depends on the keyspace the connection had (USE): re-prepare in the same one.
        prepared.prepared_in_keyspace = self.keyspace
        with self._lock:
            self._prepared[key] = prepared
            self._prepared_by_id[prepared.query_id] = prepared
        # Prepare on every other host too (as cassandra-driver's prepare_on_all_hosts), so
        # the first executes there need no UNPREPARED round trip; failures only cost that.
        others = [self._prepare_on(query, iter([h]), profile)
                  for h in plan if h is not future.coordinator_host]
        for other in others:
            try:
                other.result()
            except DriverException as exc:
                log.debug("preparing %r on %s failed: %r", query, other._current_host, exc)
        return prepared

    def _prepare_on(self, query, plan, profile):
        message = msgs.PrepareMessage(query, keyspace=None)
        future = ResponseFuture(self, SimpleStatement(query), lambda cl, ps: message,
                                profile.request_timeout, None, profile.retry_policy, plan,
                                ConsistencyLevel.ONE)
        future.send_request()
        return future

    def set_keyspace(self, keyspace):
        """Make ``keyspace`` the default of every statement of this session (``USE``)."""
        self.execute('USE "%s"' % keyspace.replace('"', '""'))

    def _keyspace_changed(self, keyspace):
        self.keyspace = keyspace

    def get_pools(self):
        return list(self._pools.values())

    def get_pool_state(self):
        return dict((host, {"open_count": pool.open_count,
                            "in_flights": [c.in_flight for c in pool.get_connections()]})
                    for host, pool in self._pools.items())

    def shutdown(self):
        """Close this session's connections; pending requests fail with ConnectionShutdown."""
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
        for pool in list(self._pools.values()):
            pool.shutdown()
        self._pools.clear()
        self.cluster._session_closed(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()


def _keyspace_of(bind_meta):
    for col in bind_meta or ():
        if col[0]:
            return col[0]
    return None
