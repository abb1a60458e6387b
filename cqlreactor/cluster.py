"""Cluster: configuration, the reactor, the control connection, host state and sessions.

Arguments and behaviour follow cassandra-driver's ``Cluster`` so code moves over by changing
imports.  The reactor is chosen with ``connection_class`` (a class such as ``GeventReactor`` or a
name such as ``"gevent"``); the default is the fastest reactor compat_matrix.yaml allows here.
"""

import logging
import random
import socket
import threading

from cqlreactor.control import ControlConnection
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import ConnectionException, DriverException
from cqlreactor.metadata import Host, KeyspaceMetadata, Metadata
from cqlreactor.policies import (DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy,
                                 HostDistance, RetryPolicy, TokenAwarePolicy)
from cqlreactor.query import named_tuple_factory
from cqlreactor.session import EXEC_PROFILE_DEFAULT, Session
from cqlreactor.timestamps import MonotonicTimestampGenerator

__all__ = ["Cluster", "ExecutionProfile", "EXEC_PROFILE_DEFAULT", "ProfileManager"]

log = logging.getLogger(__name__)

_NOT_SET = object()


class ExecutionProfile(object):
    """Per-request defaults: load balancing, retries, consistency, timeout, row factory.

    ``consistency_level`` defaults to LOCAL_ONE, or LOCAL_QUORUM once the profile is given to a
    Cluster for Astra (``cloud=``), as cassandra-driver's."""

    def __init__(self, load_balancing_policy=None, retry_policy=None,
                 consistency_level=_NOT_SET, serial_consistency_level=None,
                 request_timeout=10.0, row_factory=named_tuple_factory):
        self.load_balancing_policy = load_balancing_policy
        self.retry_policy = retry_policy or RetryPolicy()
        self._consistency_level_explicit = consistency_level is not _NOT_SET
        self.consistency_level = ConsistencyLevel.LOCAL_ONE if consistency_level is _NOT_SET \
            else consistency_level
        self.serial_consistency_level = serial_consistency_level
        self.request_timeout = request_timeout
        self.row_factory = row_factory


class ProfileManager(object):
    """The cluster's execution profiles (cassandra-driver's ``cluster.profile_manager``):
    ``profiles`` maps names (and EXEC_PROFILE_DEFAULT) to ExecutionProfiles, ``default`` is the
    default one; ``distance(host)`` is the nearest any profile's policy gives."""

    def __init__(self):
        self.profiles = {}

    @property
    def default(self):
        return self.profiles[EXEC_PROFILE_DEFAULT]

    def distance(self, host):
        return min(p.load_balancing_policy.distance(host) for p in self.profiles.values())


def _reactor_class(connection_class, allow_unsupported_reactors):
    from cqlreactor.reactors import get_reactor_class
    return get_reactor_class(connection_class, allow_unsupported_reactors)


class Cluster(object):
    """The entry point: ``Cluster(...).connect()`` returns a Session.

    Args (the cassandra-driver names):
        contact_points: addresses to bootstrap from (default ``["127.0.0.1"]``).
        port: native protocol port of every node (default 9042).
        auth_provider: e.g. ``PlainTextAuthProvider(user, password)``.
        connection_class: reactor class or name; None picks the default for this interpreter.
        ssl_context: an ``ssl.SSLContext`` for TLS (hostname checking as configured in it).
        ssl_options: dict used to build an SSLContext when no ssl_context is given.
        protocol_version: None (start at v5, fall back as the server says) or 4/5 exactly.
        execution_profiles: {name: ExecutionProfile}; EXEC_PROFILE_DEFAULT overrides defaults.
        load_balancing_policy: default TokenAwarePolicy(DCAwareRoundRobinPolicy()).
        reconnection_policy: default ExponentialReconnectionPolicy(1.0, 600.0).
        default_retry_policy: default RetryPolicy().
        connect_timeout: seconds for one connection's TCP + TLS + CQL handshake.
        idle_heartbeat_interval: seconds between heartbeats on idle connections (0 disables).
        compression: True (best both sides have), False, or "lz4" / "snappy".
        cloud: {"secure_connect_bundle": path, "use_default_tempdir": bool,
                "connect_timeout": seconds} for DataStax Astra.
        connections_per_host: connections each session keeps to each host (default 1).
        allow_unsupported_reactors: opt in to reactors compat_matrix.yaml gates off here.
        timestamp_generator: callable giving each request's default timestamp in microseconds
            (default ``MonotonicTimestampGenerator()``).
    """

    def __init__(self, contact_points=_NOT_SET, port=9042, auth_provider=None,
                 connection_class=None, ssl_context=None, ssl_options=None,
                 protocol_version=None, execution_profiles=None, load_balancing_policy=None,
                 reconnection_policy=None, default_retry_policy=None, connect_timeout=5.0,
                 idle_heartbeat_interval=30.0, compression=True, cloud=None,
                 control_connection_timeout=5.0, connections_per_host=1,
                 max_requests_per_connection=32768, allow_unsupported_reactors=None,
                 cql_version=None, timestamp_generator=None):
        # Validate everything before a cloud bundle is extracted: nothing would remove the
        # files of a Cluster whose __init__ failed until it is garbage collected.
        if protocol_version not in (None, 3, 4, 5):
            raise ValueError("protocol_version must be None, 3, 4 or 5, not %r"
                             % (protocol_version,))
        reactor_class = _reactor_class(connection_class, allow_unsupported_reactors)
        self._cloud_config = None
        if cloud is not None:
            conflicts = [name for name, given in (
                ("contact_points", contact_points is not _NOT_SET),
                ("ssl_context", ssl_context is not None),
                ("ssl_options", ssl_options is not None)) if given]
            if conflicts:
                raise ValueError(
                    "cloud= cannot be combined with %s: the secure connect bundle provides the "
                    "contact points and the TLS settings; remove %s"
                    % (", ".join(conflicts), " and ".join(conflicts)))
            from cqlreactor.cloud import cloud_config_from
            self._cloud_config = cloud_config_from(cloud)
            ssl_context = self._cloud_config.ssl_context
            if auth_provider is None and self._cloud_config.has_credentials:
                from cqlreactor.core.auth import PlainTextAuthProvider
                auth_provider = PlainTextAuthProvider(self._cloud_config.username,
                                                      self._cloud_config.password)
            contact_points = []
        elif contact_points is _NOT_SET:
            contact_points = ["127.0.0.1"]
        if isinstance(contact_points, str):
            raise TypeError("contact_points must be a list of addresses, not a string")
        self.contact_points = list(contact_points)
        self.port = int(port)
        self.auth_provider = auth_provider
        self.ssl_context = ssl_context
        if ssl_context is None and ssl_options:
            from cqlreactor.reactors.tls import context_from_options
            self.ssl_context = context_from_options(ssl_options)
        self.ssl_options = ssl_options
        self.protocol_version = protocol_version
        self._protocol_version_fixed = protocol_version is not None
        self.connect_timeout = connect_timeout
        self.idle_heartbeat_interval = idle_heartbeat_interval
        self.compression = compression
        self.cql_version = cql_version
        self.control_connection_timeout = control_connection_timeout
        self.connections_per_host = connections_per_host
        self.max_requests_per_connection = max_requests_per_connection
        self.reconnection_policy = reconnection_policy or ExponentialReconnectionPolicy(1.0,
                                                                                        600.0)
        self.connection_class = reactor_class
        #: called per request for its default timestamp (microseconds; see Session
        #: .use_client_timestamp)
        self.timestamp_generator = timestamp_generator or MonotonicTimestampGenerator()
        self._allow_unsupported_reactors = allow_unsupported_reactors
        self.reactor = None
        self.local_dc_hint = self._cloud_config.local_dc if self._cloud_config else None
        #: the consistency of a request when neither its statement nor its profile sets one
        #: (as cassandra-driver: LOCAL_QUORUM for Astra, LOCAL_ONE otherwise)
        self.base_consistency_level = (ConsistencyLevel.LOCAL_QUORUM if self._cloud_config
                                       else ConsistencyLevel.LOCAL_ONE)

        default_lbp = load_balancing_policy or TokenAwarePolicy(
            DCAwareRoundRobinPolicy(self.local_dc_hint or ""))
        self.load_balancing_policy = default_lbp
        self.default_retry_policy = default_retry_policy or RetryPolicy()
        self.profile_manager = ProfileManager()
        self.profiles = self.profile_manager.profiles
        self.profiles[EXEC_PROFILE_DEFAULT] = ExecutionProfile(
            load_balancing_policy=default_lbp, retry_policy=self.default_retry_policy)
        for name, profile in (execution_profiles or {}).items():
            self._adopt_profile(profile)
            self.profiles[name] = profile
        self._adopt_profile(self.profiles[EXEC_PROFILE_DEFAULT])

        self.metadata = Metadata()
        self.control_connection = ControlConnection(self, control_connection_timeout)
        self.sessions = []
        self.is_shutdown = False
        self._started = False
        self._lock = threading.RLock()
        self._reconnectors = {}    # host -> timer handle of its next reconnection attempt

    # -- profiles -------------------------------------------------------------------------------

    def _adopt_profile(self, profile):
        """Fill what ``profile`` left to the cluster: its load-balancing policy and, on Astra,
        its consistency (LOCAL_QUORUM unless it chose one)."""
        if profile.load_balancing_policy is None:
            profile.load_balancing_policy = self.load_balancing_policy
        if self._cloud_config is not None and not profile._consistency_level_explicit:
            profile.consistency_level = ConsistencyLevel.LOCAL_QUORUM

    def profile_for(self, name):
        """The ExecutionProfile registered as ``name``; an ExecutionProfile object itself (its
        load-balancing policy defaulted to the cluster's).

        Raises:
            ValueError: no profile has that name.
        """
        if isinstance(name, ExecutionProfile):
            self._adopt_profile(name)
            return name
        try:
            return self.profiles[name]
        except KeyError:
            raise ValueError("no execution profile named %r (known: %r)"
                             % (name, [n for n in self.profiles if n is not EXEC_PROFILE_DEFAULT]))

    def add_execution_profile(self, name, profile, pool_wait_timeout=5):
        if name in self.profiles:
            raise ValueError("an execution profile named %r exists already" % (name,))
        self._adopt_profile(profile)
        self.profiles[name] = profile
        profile.load_balancing_policy.populate(self, self.metadata.all_hosts())
        for session in self.sessions:
            for host in self.metadata.all_hosts():
                if host not in session.pools:
                    session.add_or_renew_pool(host)

    # -- connections ---------------------------------------------------------------------------

    def _connection_options(self, endpoint):
        options = dict(
            connect_timeout=self.connect_timeout,
            protocol_version=self.protocol_version,
            ssl_context=self.ssl_context,
            heartbeat_interval=self.idle_heartbeat_interval or None,
        )
        options["compression"] = self.compression
        if self.auth_provider is not None:
            address = getattr(endpoint, "address", endpoint)
            options["authenticator"] = self.auth_provider.new_authenticator(address)
        if self.cql_version:
            options["cql_version"] = self.cql_version
        return options

    def connect_endpoint(self, endpoint):
        """A connection to ``endpoint`` with the cluster's options, blocking (from user code:
        ``connect()``, the control connection's spawned refreshes)."""
        conn = self.reactor.connect(endpoint, **self._connection_options(endpoint))
        if self.protocol_version is None:
            # The first connection settles the version every later connection uses.
            self.protocol_version = conn.protocol_version
        return conn

    def connect_host(self, host):
        """A connection to ``host``, blocking (a pool opening in ``Cluster.connect``)."""
        return self.connect_endpoint(host.endpoint)

    def connect_endpoint_async(self, endpoint, callback):
        """:meth:`connect_endpoint` without blocking: ``callback(conn_or_exception)`` on the
        loop (cqlreactor.aio's connect)."""
        def opened(result):
            if self.protocol_version is None and not isinstance(result, BaseException):
                self.protocol_version = result.protocol_version
            callback(result)
        self.reactor.connect_async(endpoint, opened, **self._connection_options(endpoint))

    def connect_host_async(self, host, callback):
        """Open a connection to ``host`` without blocking; ``callback(conn_or_exception)``."""
        self.reactor.connect_async(host.endpoint, callback,
                                   **self._connection_options(host.endpoint))

    def is_host_used(self, host):
        """True when some profile's load-balancing policy does not ignore ``host``: sessions
        keep pools only to those."""
        return any(p.load_balancing_policy.distance(host) != HostDistance.IGNORED
                   for p in self.profiles.values())

    # -- lifecycle ----------------------------------------------------------------------------

    def _contact_endpoints(self):
        if self._cloud_config is not None:
            endpoints = list(self._cloud_config.endpoints)
            random.shuffle(endpoints)
            return endpoints
        endpoints = []
        for point in self.contact_points:
            if isinstance(point, Endpoint):
                endpoints.append(point)
                continue
            address, port = point, self.port
            if isinstance(point, tuple):
                address, port = point
            try:
                infos = socket.getaddrinfo(address, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
                addresses = []
                for info in infos:
                    if info[4][0] not in addresses:
                        addresses.append(info[4][0])
            except socket.gaierror as exc:
                log.warning("contact point %r does not resolve: %s", address, exc)
                continue
            for resolved in addresses:
                endpoints.append(Endpoint(resolved, port))
        if not endpoints:
            raise DriverException("none of the contact points %r resolves to an address"
                                  % (self.contact_points,))
        return endpoints

    def connect(self, keyspace=None, wait_for_all_pools=False):
        """Start (once) and return a new Session, its keyspace set when given."""
        refuse = getattr(self.reactor or self.connection_class, "refuse_blocking", None)
        if refuse is not None:
            refuse(self.reactor, "Cluster.connect()", "await cluster.connect_async()")
        with self._lock:
            if self.is_shutdown:
                raise DriverException("the cluster is shut down; make a new Cluster")
            if not self._started:
                self._start()
        session = self.new_session()
        try:
            session.open_pools(self.metadata.all_hosts())
            if keyspace:
                session.set_keyspace(keyspace)
        except Exception:
            session.shutdown()
            raise
        return session

    def _start(self):
        endpoints = self.begin_start()
        try:
            self.control_connection.connect(endpoints)
        except Exception:
            self.abort_start()
            raise
        self.finish_start()

    # (the three parts of starting, shared by connect() and cqlreactor.aio's connect_async)

    def begin_start(self):
        """Make the reactor; return the contact endpoints the control connection tries."""
        self.reactor = self.connection_class(
            allow_unsupported_reactors=self._allow_unsupported_reactors)
        try:
            return self._contact_endpoints()
        except Exception:
            self.abort_start()
            raise

    def abort_start(self):
        """Starting failed: stop the reactor."""
        if self.reactor is not None:
            self.reactor.stop()
            self.reactor = None

    def finish_start(self):
        """The control connection is up: populate the policies; the cluster is started."""
        hosts = self.metadata.all_hosts()
        for profile in self.profiles.values():
            profile.load_balancing_policy.populate(self, hosts)
        self._started = True

    @property
    def is_started(self):
        return self._started

    def new_session(self):
        """A new Session over the known hosts, registered with the cluster (no pools yet)."""
        with self._lock:
            if self.is_shutdown:
                raise DriverException("the cluster is shut down; make a new Cluster")
            session = Session(self, self.metadata.all_hosts())
            self.sessions.append(session)
        return session

    # -- asyncio (cqlreactor.aio; README "asyncio") ---------------------------------------------

    async def connect_async(self, keyspace=None, wait_for_all_pools=False):
        """Awaitable :meth:`connect`: never blocks the running loop."""
        from cqlreactor import aio
        return await aio.connect_cluster(self, keyspace, wait_for_all_pools)

    async def shutdown_async(self):
        """Awaitable :meth:`shutdown`."""
        from cqlreactor import aio
        await aio.shutdown_cluster(self)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.shutdown_async()

    def shutdown(self):
        """Close every session, the control connection and the reactor; remove cloud files."""
        with self._lock:
            if self.is_shutdown:
                return
            self.is_shutdown = True
            timers, self._reconnectors = list(self._reconnectors.values()), {}
        for timer in timers:
            if timer is not None:   # None: a reconnection is being scheduled right now
                timer.cancel()
        for session in list(self.sessions):
            session.shutdown()
        self.control_connection.shutdown()
        if self.reactor is not None:
            self.reactor.stop()
        if self._cloud_config is not None:
            self._cloud_config.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()

    def on_session_closed(self, session):
        """``Session.shutdown`` tells the cluster to forget the session."""
        with self._lock:
            if session in self.sessions:
                self.sessions.remove(session)

    # -- topology (called by the control connection) --------------------------------------------

    def _endpoint_for(self, row, is_local, conn):
        host_id = row.get("host_id")
        if self._cloud_config is not None:
            return self._cloud_config.endpoint_factory.create_from_row(row)
        if is_local:
            # where the control connection went, named with the host id as the peers rows
            # name every node: after a failover the same node arrives through system.peers
            endpoint = conn.endpoint
            return Endpoint(endpoint.address, endpoint.port,
                            server_hostname=getattr(endpoint, "server_hostname", None),
                            host_id=str(host_id) if host_id else None)
        address = row.get("native_address") or row.get("rpc_address") or row.get("peer")
        address = str(address)
        if address in ("0.0.0.0", "::"):
            address = str(row.get("peer"))
        port = row.get("native_port") or self.port
        return Endpoint(address, port, host_id=str(host_id) if host_id else None)

    def update_topology(self, conn, local, peers):
        """The control connection read system.local (``local``) and the peers rows on ``conn``:
        add, update and remove hosts, then rebuild the token map."""
        self.metadata.cluster_name = local.get("cluster_name")
        self.metadata.partitioner = local.get("partitioner")
        seen = set()
        # One Host per node: a node is known by its host id first (system.local and
        # system.peers may name its endpoint differently), by its endpoint when it has none.
        by_id = dict((h.host_id, h) for h in self.metadata.all_hosts() if h.host_id)
        for row, is_local in [(local, True)] + [(p, False) for p in peers]:
            if not row or (not is_local and not row.get("host_id")):
                continue
            endpoint = self._endpoint_for(row, is_local, conn)
            host_id = row.get("host_id")
            host = by_id.get(host_id) if host_id else None
            if host is None:
                host = self.metadata.get_host(endpoint)
            is_new = False
            if host is None:
                host, is_new = self.metadata.add_or_return_host(Host(endpoint))
            elif host.endpoint != endpoint and not is_local:
                # the node now advertises another address: connect there from now on (the
                # control connection's own endpoint for it stays as it was adopted)
                self.metadata.update_host_endpoint(host, endpoint)
            host.host_id = row.get("host_id")
            host.datacenter = row.get("data_center")
            host.rack = row.get("rack")
            host.release_version = row.get("release_version")
            host.address = str(row.get("rpc_address") or row.get("native_address")
                               or row.get("broadcast_address") or row.get("peer") or "")
            host.tokens = sorted(int(t) for t in (row.get("tokens") or ()))
            seen.add(host)
            if is_new and self._started:
                self._on_host_added(host)
        for host in self.metadata.all_hosts():
            if host not in seen:
                self._on_host_removed(host)
        self.metadata.rebuild_token_map()

    def update_keyspaces(self, rows):
        """The control connection read system_schema.keyspaces: replace the keyspaces."""
        keyspaces = {}
        for row in rows:
            keyspaces[row["keyspace_name"]] = KeyspaceMetadata(
                row["keyspace_name"], row.get("replication") or {}, row.get("durable_writes"))
        self.metadata.keyspaces = keyspaces
        self.metadata.rebuild_token_map()

    def on_schema_change(self, result):
        """A session's request changed the schema (DDL): refresh the replication maps that
        token-aware routing reads."""
        self.control_connection.refresh_in_background("keyspaces")

    # -- host state ------------------------------------------------------------------------------

    def _on_host_added(self, host):
        for profile in self.profiles.values():
            profile.load_balancing_policy.on_add(host)
        for session in list(self.sessions):
            session.add_or_renew_pool(host)

    def _on_host_removed(self, host):
        self.metadata.remove_host(host)
        # A decommissioned host never comes back at that address: stop reconnecting to it
        # (its pool usually lost its connections, and started a reconnector, before the
        # REMOVED_NODE refresh arrived).
        with self._lock:
            timer = self._reconnectors.pop(host, None)
        if timer is not None:
            timer.cancel()
        for profile in self.profiles.values():
            profile.load_balancing_policy.on_remove(host)
        for session in list(self.sessions):
            session.remove_pool(host)

    def on_host_unreachable(self, host, exc):
        """A pool lost its last connection (or could not open one): mark the host down and
        start reconnecting with the reconnection policy."""
        with self._lock:
            if self.is_shutdown or self.metadata.get_host(host.endpoint) is not host:
                return      # shut down, or the host left the cluster (nothing to come back)
            was_up = host.is_up
            host.is_up = False
            if host in self._reconnectors:
                return
            schedule = self.reconnection_policy.new_schedule()
            self._reconnectors[host] = None
        if was_up:
            log.warning("host %s is down: %r", host, exc)
            for profile in self.profiles.values():
                profile.load_balancing_policy.on_down(host)
        self._schedule_reconnect(host, schedule)

    def _schedule_reconnect(self, host, schedule, delay=None):
        if delay is None:
            delay = next(schedule, None)
        if delay is None:
            log.error("giving up reconnecting to %s", host)
            with self._lock:
                self._reconnectors.pop(host, None)
            return
        with self._lock:
            if self.is_shutdown or host not in self._reconnectors:
                return
            self._reconnectors[host] = self.reactor.call_later(
                delay, self._attempt_reconnect, host, schedule)

    def _attempt_reconnect(self, host, schedule):
        if self.is_shutdown:
            return

        def opened(result):
            if isinstance(result, Exception):
                log.debug("reconnecting to %s failed: %r", host, result)
                self._schedule_reconnect(host, schedule)
                return
            result.close()   # the probe worked: pools open their own connections
            self._on_host_up(host)

        try:
            self.connect_host_async(host, opened)
        except ConnectionException as exc:
            opened(exc)

    def _on_host_up(self, host):
        with self._lock:
            timer = self._reconnectors.pop(host, None)
            if self.is_shutdown or self.metadata.get_host(host.endpoint) is not host:
                return      # shut down, or the host was removed while a probe was in flight
            was_down = not host.is_up
            host.is_up = True
        if timer is not None:
            timer.cancel()
        if was_down:
            log.info("host %s is up", host)
            for profile in self.profiles.values():
                profile.load_balancing_policy.on_up(host)
        for session in list(self.sessions):
            session.add_or_renew_pool(host)

    def on_host_reported_up(self, host):
        """The control connection got STATUS_CHANGE UP: try now rather than at the next
        scheduled reconnection attempt.  A host already believed up gets its pools reopened
        where they lost their connections (a failure nobody saw must not keep it unused)."""
        if host.is_up:
            if not self.is_shutdown:
                for session in list(self.sessions):
                    session.add_or_renew_pool(host)
            return
        with self._lock:
            timer = self._reconnectors.get(host)
        if timer is not None:
            timer.cancel()
        self._attempt_reconnect(host, self.reconnection_policy.new_schedule())

    def on_host_reported_down(self, host):
        """The control connection got STATUS_CHANGE DOWN: believe it only when no session
        holds a working connection there."""
        for session in list(self.sessions):
            pool = session.pools.get(host)
            if pool is not None and pool.open_count:
                return
        self.on_host_unreachable(host, ConnectionException("the cluster reported it DOWN",
                                                           host=str(host.endpoint)))
