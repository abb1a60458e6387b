"""Session: what users call to run statements.

The session chooses what each request says -- the statement, its values, consistency, page
size, paging state, serial consistency -- from the statement, the execution profile and the
cluster's defaults, and hands the request to a ResponseFuture (response_future.py), which sends
it and handles the answers.  How a request is laid out in bytes is the core's: QUERY bodies are
pre-encoded once per text and settings (``core.requests.pre_encode``), EXECUTE bodies come from
an ``ExecuteTemplate`` per prepared statement and settings, with the values spliced in.
"""

import copy
import functools
import logging
import threading
from typing import Any, Callable, Dict, List, Optional, Union

from cqlreactor import encoder
from cqlreactor.core import messages as msgs
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import DriverException, NoHostAvailable, UnsupportedOperation
from cqlreactor.core.requests import ExecuteTemplate, StampedTemplate, pre_encode
from cqlreactor.metadata import Host
from cqlreactor.policies import NoSpeculativeExecutionPolicy, TokenAwarePolicy
from cqlreactor.pool import HostConnectionPool
from cqlreactor.query import ResultSet
from cqlreactor.response_future import ResponseFuture
from cqlreactor.user_types import UserTypeMap
from cqlreactor.steps import run_blocking
from cqlreactor.statements import (
    BatchStatement, BoundStatement, FETCH_SIZE_UNSET, PreparedStatement, SimpleStatement,
    Statement, simple_statement)

__all__ = ["Session", "ResponseFuture"]

log = logging.getLogger(__name__)

_NOT_SET = object()
EXEC_PROFILE_DEFAULT = object()

#: the custom payload key that asks the server to run a request as another role (execute_as)
_PROXY_EXECUTE_KEY = "ProxyExecute"


class Session(object):
    """Runs statements against the cluster; made by ``Cluster.connect()``."""

    def __init__(self, cluster, hosts, keyspace=None):
        self.cluster = cluster
        #: the cluster's UserTypeMap (register_user_type); the futures convert rows with it
        self.user_types = cluster.user_types if cluster is not None else UserTypeMap()
        self.hosts = hosts
        self.keyspace = None
        #: host -> HostConnectionPool; read by the cluster and the futures, changed only here
        self.pools = {}
        self._prepared = {}          # (query, keyspace) -> PreparedStatement
        self._prepared_by_id = {}    # query id -> PreparedStatement
        self.is_shutdown = False
        self._lock = threading.Lock()
        self.default_fetch_size = 5000
        # (text, consistency, page size, serial, version, stamped, keyspace)
        #   -> (builder, pre-encoded QUERY or, stamped, its StampedTemplate)
        self._encoded_queries = {}
        # (query id, result metadata id, consistency, page size, serial, version, stamped)
        #   -> core.requests.ExecuteTemplate: the values are spliced into it per request
        self._execute_templates = {}
        #: send a client-side default timestamp (the cluster's ``timestamp_generator``) with
        #: every request whose statement has none of its own (as cassandra-driver)
        self.use_client_timestamp = True
        #: (fn, args, kwargs) called with each ResponseFuture before it is sent; replaced, never
        #: changed in place, so a request reading it needs no lock
        self._request_init_callbacks = ()
        #: seconds ``ResponseFuture.get_query_trace()`` waits for a trace by default
        self.max_trace_wait = 2.0

    # -- defaults read from the default execution profile (cassandra-driver compatible) ----

    @property
    def row_factory(self):
        return self.cluster.profile_for(EXEC_PROFILE_DEFAULT).row_factory

    @row_factory.setter
    def row_factory(self, factory):
        self.cluster.profile_for(EXEC_PROFILE_DEFAULT).row_factory = factory

    @property
    def default_timeout(self):
        return self.cluster.profile_for(EXEC_PROFILE_DEFAULT).request_timeout

    @default_timeout.setter
    def default_timeout(self, value):
        self.cluster.profile_for(EXEC_PROFILE_DEFAULT).request_timeout = value

    @property
    def default_consistency_level(self):
        return self.cluster.profile_for(EXEC_PROFILE_DEFAULT).consistency_level

    @default_consistency_level.setter
    def default_consistency_level(self, value):
        self.cluster.profile_for(EXEC_PROFILE_DEFAULT).consistency_level = value

    @property
    def default_serial_consistency_level(self):
        """The serial consistency of conditional (LWT) statements that set none: the default
        execution profile's ``serial_consistency_level`` (None: the server's, SERIAL)."""
        return self.cluster.profile_for(EXEC_PROFILE_DEFAULT).serial_consistency_level

    @default_serial_consistency_level.setter
    def default_serial_consistency_level(self, value):
        if value is not None and not ConsistencyLevel.is_serial(value):
            raise ValueError("default_serial_consistency_level must be ConsistencyLevel.SERIAL "
                             "or ConsistencyLevel.LOCAL_SERIAL (or None), not %r" % (value,))
        self.cluster.profile_for(EXEC_PROFILE_DEFAULT).serial_consistency_level = value

    def get_execution_profile(self, name):
        """The ExecutionProfile registered with the cluster as ``name`` (or EXEC_PROFILE_DEFAULT).

        Raises:
            ValueError: no profile has that name (the message lists those that exist).
        """
        profiles = self.cluster.profile_manager.profiles
        try:
            return profiles[name]
        except (KeyError, TypeError):
            raise ValueError("Invalid execution_profile: %r; valid profiles are: %s" % (
                name, ", ".join("EXEC_PROFILE_DEFAULT" if n is EXEC_PROFILE_DEFAULT else repr(n)
                                for n in profiles)))

    def execution_profile_clone_update(self, ep, **kwargs):
        """A shallow copy of the profile ``ep`` (a name or an ExecutionProfile) with ``kwargs``
        set on it; the policies it refers to are shared with the original."""
        profile = ep if not isinstance(ep, (str, bytes)) and hasattr(ep, "row_factory") \
            else self.get_execution_profile(ep)
        clone = copy.copy(profile)
        for name, value in kwargs.items():
            if not hasattr(clone, name):
                raise AttributeError("ExecutionProfile has no attribute %r" % (name,))
            setattr(clone, name, value)
        return clone

    # -- pools -------------------------------------------------------------------------------

    def open_pools(self, hosts):
        """Open a pool to each of ``hosts`` that is up and used, blocking (``Cluster.connect``).

        Raises:
            NoHostAvailable: no pool could open a connection.
        """
        errors = {}
        hosts = list(hosts)
        for host, pool in self.new_pools(hosts):
            try:
                pool.open_blocking()
            except Exception as exc:
                errors[host] = exc
                self.cluster.on_host_unreachable(host, exc)
        self.check_pools_opened(hosts, errors)

    def new_pools(self, hosts):
        """Yield (host, new pool) for each of ``hosts`` that is up and used; each pool is the
        session's once the caller opened it (or resumed the generator)."""
        for host in hosts:
            if not host.is_up or not self.cluster.is_host_used(host):
                continue
            pool = self._new_pool(host)
            yield host, pool
            self.pools[host] = pool

    def check_pools_opened(self, hosts, errors):
        """Raise NoHostAvailable (``errors``: host -> why) when no pool has a connection."""
        if not any(p.open_count for p in self.pools.values()):
            message = "Unable to connect to any servers"
            if not self.pools:       # no host was tried: the policies ignore every one
                reasons = set()
                for profile in self.cluster.profiles.values():
                    why = getattr(profile.load_balancing_policy, "why_unused", None)
                    reason = why(hosts) if why is not None else None
                    if reason:
                        reasons.add(reason)
                message += ": the load-balancing policies use none of the %d hosts" % (
                    len(hosts),)
                if reasons:
                    message += " (%s)" % "; ".join(sorted(reasons))
            raise NoHostAvailable(message, errors)

    def add_or_renew_pool(self, host):
        """A host came up (or was added): (re)open its pool without blocking (the cluster calls
        this from the reactor loop)."""
        if self.is_shutdown or not self.cluster.is_host_used(host):
            return
        pool = self.pools.get(host)
        if pool is None or pool.is_shutdown:
            pool = self._new_pool(host)
            self.pools[host] = pool
        pool.replenish_async()

    def update_created_pools(self):
        """Open pools, without blocking, to the up hosts some profile uses that this session
        has no open pool for (``Cluster.add_execution_profile``); returns one event per pool,
        set when its opening settled (a host that could not be reached is marked down)."""
        events = []
        cluster = self.cluster
        if self.is_shutdown:
            return events
        for host in cluster.metadata.all_hosts():
            if not host.is_up or not cluster.is_host_used(host):
                continue
            pool = self.pools.get(host)
            if pool is not None and not pool.is_shutdown and pool.open_count:
                continue
            if pool is None or pool.is_shutdown:
                pool = self._new_pool(host)
                self.pools[host] = pool
            event = cluster.reactor.make_event()

            def settled(ok, error, host=host, event=event):
                if not ok and error is not None and not self.is_shutdown:
                    cluster.on_host_unreachable(host, error)
                event.set()
            pool.replenish_async(settled)
            events.append(event)
        return events

    def remove_pool(self, host):
        """The host left the cluster: close its pool."""
        pool = self.pools.pop(host, None)
        if pool is not None:
            pool.shutdown()

    def _new_pool(self, host):
        cluster = self.cluster
        return HostConnectionPool(host, self, cluster.connections_per_host,
                                  cluster.max_requests_per_connection)

    def query_plan(self, query, profile=None):
        """The hosts to try for ``query``, from the profile's (default: the default profile's)
        load-balancing policy."""
        profile = profile or self.cluster.profile_for(EXEC_PROFILE_DEFAULT)
        return profile.load_balancing_policy.make_query_plan(self.keyspace, query)

    def prepared_by_id(self, query_id):
        """The PreparedStatement this session prepared with ``query_id``, or None."""
        return self._prepared_by_id.get(query_id)

    # -- statements ----------------------------------------------------------------------------

    def execute(self, query: "Union[str, Statement]", parameters: Any = None,
                timeout: Any = _NOT_SET, trace: bool = False,
                custom_payload: Optional[Dict[str, bytes]] = None,
                execution_profile: Any = EXEC_PROFILE_DEFAULT,
                paging_state: Optional[bytes] = None, host: Any = None,
                execute_as: Optional[str] = None) -> ResultSet:
        """Run ``query`` and wait for its ResultSet (see ``execute_async``)."""
        return self.execute_async(query, parameters, trace, custom_payload, timeout,
                                  execution_profile, paging_state, host, execute_as).result()

    def execute_async(self, query: Any, parameters: Any = None,
                      trace: bool = False, custom_payload: Optional[Dict[str, bytes]] = None,
                      timeout: Any = _NOT_SET, execution_profile: Any = EXEC_PROFILE_DEFAULT,
                      paging_state: Optional[bytes] = None,
                      host: Any = None, execute_as: Optional[str] = None) -> ResponseFuture:
        """Send ``query`` and return its ResponseFuture at once.

        Args:
            query: a string, SimpleStatement, BoundStatement, PreparedStatement or
                BatchStatement.
            parameters: values for a string/SimpleStatement (``%s`` placeholders) or a
                PreparedStatement.
            timeout: seconds, or None for no timeout; defaults to the profile's request_timeout.
            execution_profile: a name registered with the Cluster, or an ExecutionProfile.
            paging_state: resume paging where an earlier result stopped.
            host: send to this Host only (one of ``cluster.metadata.all_hosts()``): no retry
                elsewhere, no speculative execution; NoHostAvailable when it has no connection.
            execute_as: run the request as this role (proxy execution: the custom payload
                ``ProxyExecute``; the server must allow it, and protocol v4+ carries it).
        Returns:
            ResponseFuture.
        """
        if self.is_shutdown:
            raise DriverException("the session is shut down")
        if host is not None and not isinstance(host, Host):
            raise TypeError("host must be a Host of this cluster (cluster.metadata.all_hosts(), "
                            "or cluster.metadata.get_host_by_address(address)), not %r"
                            % (host,))
        if execute_as:
            custom_payload = dict(custom_payload or ())
            custom_payload[_PROXY_EXECUTE_KEY] = execute_as.encode("utf-8") \
                if isinstance(execute_as, str) else bytes(execute_as)
        cluster = self.cluster
        try:
            profile = cluster.profiles[execution_profile]
        except (KeyError, TypeError):   # an ExecutionProfile object, or an unknown name
            profile = cluster.profile_for(execution_profile)
        from_text = query.__class__ is str
        if from_text:         # a statement with no timeout, routing key or other settings
            query = simple_statement(query)
        elif isinstance(query, PreparedStatement):
            query = query.bind(parameters)
            parameters = None
        if paging_state is not None:
            query.paging_state = paging_state
        if timeout is _NOT_SET:
            timeout = profile.request_timeout if from_text or not getattr(query, "timeout", None) \
                else query.timeout
        consistency = query.consistency_level
        if consistency is None:
            consistency = profile.consistency_level
            if consistency is None:
                consistency = cluster.base_consistency_level
        serial = query.serial_consistency_level
        if serial is None:
            serial = profile.serial_consistency_level
        fetch_size = query.fetch_size
        if fetch_size is FETCH_SIZE_UNSET:
            fetch_size = self.default_fetch_size
        page_size = fetch_size if fetch_size and fetch_size > 0 else None
        message = result_metadata = None
        cls = query.__class__
        version = cluster.protocol_version
        timestamp = None if from_text else query.timestamp
        if timestamp is None and self.use_client_timestamp:
            timestamp = cluster.timestamp_generator()
        if not from_text and query.custom_payload or custom_payload or trace:
            # frame-level extras live on the message object: never on a cached, shared one
            cls = None
        if cls is SimpleStatement and not parameters and query.paging_state is None:
            # The hot path: a query text sent again and again is encoded once (around the
            # place of its timestamp); the connection only adds the frame header.
            keyspace = query.keyspace if version >= 5 else None
            key = (query.query_string, consistency, page_size, serial, version,
                   timestamp is not None, keyspace)
            entry = self._encoded_queries.get(key)
            if entry is None:
                entry = self._cache_simple(key, query)
            builder, message = entry
            if timestamp is not None:
                message = message.request(timestamp)
                builder = functools.partial(builder, timestamp=timestamp)
        elif cls is BoundStatement:
            ps = query.prepared_statement
            builder = functools.partial(self._build_execute, ps, query.values, page_size,
                                        serial, version, timestamp=timestamp)
            if query.paging_state is None:     # _build_execute's usual case, one call less
                template = self._execute_templates.get(
                    (ps.query_id, ps.result_metadata_id, consistency, page_size, serial, version,
                     timestamp is not None))
                if template is None:
                    template = self._execute_template(ps, consistency, page_size, serial,
                                                      version, timestamp is not None)
                message = template.request(query.values, timestamp)
            meta = ps.result_metadata
            if meta and version >= 5:
                result_metadata = meta
        else:
            builder = functools.partial(
                self._message_builder(query, parameters, serial, fetch_size),
                timestamp=timestamp)
            if cls is None:
                builder = _with_extras(builder, self._request_payload(query, custom_payload),
                                       trace)
                if isinstance(query, BoundStatement) and version >= 5:
                    # its EXECUTE skips the metadata, as on the hot path
                    result_metadata = query.prepared_statement.result_metadata or None
        retry_policy = query.retry_policy or profile.retry_policy
        new_spec_plan = None
        if host is not None:
            plan = iter([host])
        else:
            spec = profile.speculative_execution_policy
            if spec.__class__ is not NoSpeculativeExecutionPolicy and spec is not None and \
                    query.is_idempotent:
                new_spec_plan = functools.partial(spec.new_plan, query.keyspace or self.keyspace,
                                                  query)
            policy = profile.load_balancing_policy
            if policy.__class__ is TokenAwarePolicy and (from_text or query.routing_key is None):
                # what TokenAwarePolicy does without a routing key, minus one generator
                policy = policy.child_policy
            plan = iter(policy.make_query_plan(self.keyspace, query))
        future = ResponseFuture(self, query, builder, timeout, profile.row_factory,
                                retry_policy, plan, consistency, message, result_metadata,
                                new_spec_plan)
        future._plan_source = host if host is not None else profile.load_balancing_policy
        if self._request_init_callbacks:
            self._on_request(future)
        if future.send_request() and new_spec_plan is not None:
            future.start_speculative_execution()
        return future

    # -- request listeners (cassandra-driver's extension hook) ----------------------------------

    def add_request_init_listener(self, fn: Callable[..., Any], *args: Any,
                                  **kwargs: Any) -> None:
        """Call ``fn(response_future, *args, **kwargs)`` for every request made by
        ``execute``/``execute_async``, on the thread making it, after the ResponseFuture is
        created and before it is sent (add callbacks to it there; they run on the reactor's
        loop)."""
        with self._lock:
            self._request_init_callbacks = self._request_init_callbacks + ((fn, args, kwargs),)

    def remove_request_init_listener(self, fn: Callable[..., Any], *args: Any,
                                     **kwargs: Any) -> None:
        """Remove a listener added with the same ``fn``, ``args`` and ``kwargs``.

        Raises:
            ValueError: no such listener.
        """
        with self._lock:
            listeners = list(self._request_init_callbacks)
            try:
                listeners.remove((fn, args, kwargs))
            except ValueError:
                raise ValueError("no request init listener %r with args %r and kwargs %r"
                                 % (fn, args, kwargs))
            self._request_init_callbacks = tuple(listeners)

    def _on_request(self, future):
        for fn, args, kwargs in self._request_init_callbacks:
            fn(future, *args, **kwargs)

    def _cache_simple(self, key, query):
        """(builder, pre-encoded QUERY) for a statement without parameters or paging state; a
        StampedTemplate instead of the QUERY when requests carry timestamps."""
        text, consistency, page_size, serial, version, stamped, keyspace = key
        builder = self._message_builder(query, None, serial, page_size)
        if stamped:
            entry = (builder, StampedTemplate(builder(consistency, None, 0, encode=False),
                                              version))
        else:
            entry = (builder, builder(consistency, None))
        cache = self._encoded_queries
        if len(cache) >= 2048:
            cache.clear()
        cache[key] = entry
        return entry

    def _build_execute(self, ps, values, page_size, serial, version, consistency, paging_state,
                       query_id=None, timestamp=None):
        """The EXECUTE of a bound statement: from the statement's template when it has no paging
        state (and the host did not hand out another id), else a plain message."""
        if paging_state is not None or query_id is not None:
            params = msgs.QueryParameters(
                consistency, values=values, page_size=page_size, paging_state=paging_state,
                serial_consistency=serial, skip_metadata=version >= 5 and bool(ps.result_metadata),
                timestamp=timestamp)
            return msgs.ExecuteMessage(query_id or ps.query_id, params,
                                       result_metadata_id=ps.result_metadata_id)
        stamped = timestamp is not None
        template = self._execute_templates.get(
            (ps.query_id, ps.result_metadata_id, consistency, page_size, serial, version,
             stamped))
        if template is None:
            template = self._execute_template(ps, consistency, page_size, serial, version,
                                              stamped)
        return template.request(values, timestamp)

    def _execute_template(self, ps, consistency, page_size, serial, version, stamped):
        """A new core ExecuteTemplate for ``ps`` and these settings, cached."""
        template = ExecuteTemplate(
            ps.query_id, ps.result_metadata_id, version, consistency, page_size=page_size,
            serial_consistency=serial, skip_metadata=version >= 5 and bool(ps.result_metadata),
            stamped=stamped)
        cache = self._execute_templates
        if len(cache) >= 2048:
            cache.clear()
        cache[(ps.query_id, ps.result_metadata_id, consistency, page_size, serial, version,
               stamped)] = template
        return template

    def _request_payload(self, query, custom_payload):
        """The statement's custom payload updated with ``execute``'s (as cassandra-driver), or
        None; refused below protocol v4, which has no place for it."""
        payload = None
        if query.custom_payload or custom_payload:
            payload = dict(query.custom_payload or ())
            payload.update(custom_payload or ())
            if (self.cluster.protocol_version or 5) < 4:
                raise UnsupportedOperation(
                    "custom payloads need protocol v4 or later; this cluster uses v%d"
                    % (self.cluster.protocol_version,))
        return payload

    def _message_builder(self, query, parameters, serial, fetch_size):
        page_size = fetch_size if fetch_size and fetch_size > 0 else None
        version = self.cluster.protocol_version
        # v5 sends a statement's keyspace with it (QUERY, BATCH; as cassandra-driver)
        keyspace = query.keyspace if version >= 5 else None
        if isinstance(query, BoundStatement):
            return functools.partial(self._build_execute, query.prepared_statement,
                                     query.values, page_size, serial, version)
        if isinstance(query, BatchStatement):
            statements = []
            for is_prepared, query_or_id, values in query.entries:
                if is_prepared:
                    statements.append((query_or_id, values))
                else:
                    statements.append((encoder.bind_params(
                        query_or_id, values, self.user_types.fields_by_class), []))

            def build(consistency, paging_state, timestamp=None):
                return msgs.BatchMessage(query.batch_type, statements, consistency,
                                         serial_consistency=serial, timestamp=timestamp,
                                         keyspace=keyspace)
            return build
        if isinstance(query, SimpleStatement):
            text = encoder.bind_params(query.query_string, parameters,
                                       self.user_types.fields_by_class) if parameters \
                else query.query_string

            def build(consistency, paging_state, timestamp=None, encode=True):  # type: ignore[misc]
                params = msgs.QueryParameters(
                    consistency, page_size=page_size, paging_state=paging_state,
                    serial_consistency=serial, timestamp=timestamp, keyspace=keyspace)
                if paging_state is None and encode:
                    return pre_encode(msgs.QueryMessage(text, params), version)
                return msgs.QueryMessage(text, params)
            return build
        raise TypeError("cannot execute %r: expected a string, SimpleStatement, "
                        "PreparedStatement, BoundStatement or BatchStatement" % (query,))

    def execute_concurrent(self, statements_and_parameters, concurrency=100,
                           raise_on_first_error=True, results_generator=False,
                           execution_profile=EXEC_PROFILE_DEFAULT):
        """``cqlreactor.concurrent.execute_concurrent`` on this session."""
        from cqlreactor.concurrent import execute_concurrent
        return execute_concurrent(self, statements_and_parameters, concurrency,
                                  raise_on_first_error, results_generator, execution_profile)

    def execute_concurrent_with_args(self, statement, parameters, *args, **kwargs):
        """``cqlreactor.concurrent.execute_concurrent_with_args`` on this session."""
        from cqlreactor.concurrent import execute_concurrent_with_args
        return execute_concurrent_with_args(self, statement, parameters, *args, **kwargs)

    def execute_concurrent_async(self, statements_and_parameters, concurrency=100,
                                 raise_on_first_error=False,
                                 execution_profile=EXEC_PROFILE_DEFAULT):
        """``cqlreactor.concurrent.execute_concurrent_async`` on this session."""
        from cqlreactor.concurrent import execute_concurrent_async
        return execute_concurrent_async(self, statements_and_parameters, concurrency,
                                        raise_on_first_error, execution_profile)

    def prepare(self, query: str, custom_payload: Optional[Dict[str, bytes]] = None,
                keyspace: Optional[str] = None) -> PreparedStatement:
        """Prepare ``query`` (cached per session) and return its PreparedStatement.

        ``keyspace``: the keyspace its unqualified table names belong to; protocol v5 sends it
        with the PREPARE (as cassandra-driver).  Below v5 only the session's own keyspace can be
        named: another one raises UnsupportedOperation."""
        return run_blocking(self.prepare_steps(query, custom_payload, keyspace), _result_of)

    async def prepare_async(self, query, custom_payload=None, keyspace=None):
        """Awaitable :meth:`prepare` (README "asyncio")."""
        from cqlreactor import aio

        async def wait(future):
            return await aio.wait_for_response(future)
        return await aio.run_steps(self.prepare_steps(query, custom_payload, keyspace), wait)

    def prepare_steps(self, query, custom_payload=None, keyspace=None):
        """:meth:`prepare` as a generator yielding ResponseFutures and sent their results
        (their errors thrown in): run blocking or awaited, one body for both."""
        if isinstance(query, SimpleStatement):
            query = query.query_string
        message_keyspace = None
        if keyspace:
            if (self.cluster.protocol_version or 5) >= 5:
                message_keyspace = keyspace
            elif keyspace != self.keyspace:
                raise UnsupportedOperation(
                    "prepare(keyspace=%r) needs protocol v5 to send the keyspace (this cluster "
                    "uses v%d): qualify the table names (%s.table) or call "
                    "session.set_keyspace(%r) first" % (
                        keyspace, self.cluster.protocol_version, keyspace, keyspace))
        keyspace = keyspace or self.keyspace
        key = (query, keyspace)
        cached = self._prepared.get(key)
        if cached is not None:
            return cached
        profile = self.cluster.profile_for(EXEC_PROFILE_DEFAULT)
        plan = list(profile.load_balancing_policy.make_query_plan(keyspace, None))
        future = self._prepare_on(query, iter(plan), profile, custom_payload, message_keyspace)
        response = yield future
        bind_meta = response.bind_metadata
        prepared = PreparedStatement(
            response.query_id, query, keyspace or _keyspace_of(bind_meta), bind_meta,
            response.pk_indexes, response.result_metadata,
            getattr(response, "result_metadata_id", None), self.cluster.protocol_version,
            session=self)
        # The id depends on the keyspace the connection had (USE): re-prepare in the same one.
        prepared.prepared_in_keyspace = self.keyspace
        prepared.prepare_keyspace = message_keyspace
        with self._lock:
            self._prepared[key] = prepared
            self._prepared_by_id[prepared.query_id] = prepared
        # Prepare on every other host too (as cassandra-driver's prepare_on_all_hosts), so
        # the first executes there need no UNPREPARED round trip; failures only cost that.
        others = [self._prepare_on(query, iter([h]), profile, custom_payload, message_keyspace)
                  for h in plan if h is not future.coordinator_host]
        for other in others:
            try:
                yield other
            except DriverException as exc:
                log.debug("preparing %r failed: %r (%r)", query, exc, other)
        return prepared

    def _prepare_on(self, query, plan, profile, custom_payload=None, keyspace=None):
        message = msgs.PrepareMessage(query, keyspace=keyspace)
        if custom_payload:
            message.custom_payload = self._request_payload(SimpleStatement(query),
                                                           custom_payload)
        future = ResponseFuture(self, SimpleStatement(query), lambda cl, ps: message,
                                profile.request_timeout, None, profile.retry_policy, plan,
                                ConsistencyLevel.ONE)
        future.send_request()
        return future

    def set_keyspace(self, keyspace: str) -> None:
        """Make ``keyspace`` the default of every statement of this session (``USE``)."""
        self.execute(_use_statement(keyspace))

    async def set_keyspace_async(self, keyspace):
        """Awaitable :meth:`set_keyspace`."""
        await self.execute_async(_use_statement(keyspace))

    def get_pools(self) -> List[HostConnectionPool]:
        return list(self.pools.values())

    def get_pool_state(self):
        return dict((host, {"open_count": pool.open_count,
                            "in_flights": [c.in_flight for c in pool.get_connections()]})
                    for host, pool in self.pools.items())

    def shutdown(self) -> None:
        """Close this session's connections; pending requests fail with ConnectionShutdown."""
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
        for pool in list(self.pools.values()):
            pool.shutdown()
        self.pools.clear()
        self.cluster.on_session_closed(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    async def shutdown_async(self):
        """Awaitable :meth:`shutdown` (closing never blocks: it is the same call)."""
        self.shutdown()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.shutdown()


def _use_statement(keyspace):
    return 'USE "%s"' % keyspace.replace('"', '""')


def _result_of(future):
    return future.result()


def _with_extras(builder, custom_payload, trace):
    """``builder`` whose every message (first send, retries, next pages) carries the custom
    payload and asks for tracing."""
    def build(*args, **kwargs):
        message = builder(*args, **kwargs)
        message.custom_payload = custom_payload
        message.tracing = bool(trace)
        return message
    return build


def _keyspace_of(bind_meta):
    for col in bind_meta or ():
        if col[0]:
            return col[0]
    return None
