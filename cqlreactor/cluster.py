"""Cluster: configuration, the reactor, the control connection, host state and sessions.

Arguments and behaviour follow cassandra-driver's ``Cluster`` so code moves over by changing
imports.  The reactor is chosen with ``connection_class`` (a class such as ``GeventReactor`` or a
name such as ``"gevent"``); the default is the fastest reactor compat_matrix.yaml allows here.
"""

import logging
import random
import socket
import ssl
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Union

from cqlreactor.control import ControlConnection
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import (ConnectionException, DriverException, NoHostAvailable,
                                    OperationTimedOut, QueryExhausted)
from cqlreactor.metadata import Host, Metadata
from cqlreactor.policies import (DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy,
                                 HostDistance, IdentityTranslator, NoSpeculativeExecutionPolicy,
                                 RetryPolicy, TokenAwarePolicy)
from cqlreactor.query import ResultSet, named_tuple_factory
from cqlreactor.response_future import ResponseFuture
from cqlreactor.session import EXEC_PROFILE_DEFAULT, Session
from cqlreactor.statements import FETCH_SIZE_UNSET
from cqlreactor.timestamps import MonotonicTimestampGenerator
from cqlreactor.user_types import UserTypeDoesNotExist, UserTypeMap

# besides what is defined here, the names cassandra-driver users import from cassandra.cluster
__all__ = ["Cluster", "ExecutionProfile", "EXEC_PROFILE_DEFAULT", "ProfileManager", "Session",
           "CLUSTER_ARGUMENTS_NOT_TAKEN",
           "ResponseFuture", "ResultSet", "NoHostAvailable", "QueryExhausted",
           "FETCH_SIZE_UNSET", "UserTypeDoesNotExist"]

log = logging.getLogger(__name__)
# Silent unless the application configures logging (as cassandra-driver's "cassandra" logger):
# without a handler anywhere, Python's last-resort handler would print our warnings to stderr.
logging.getLogger("cqlreactor").addHandler(logging.NullHandler())

_NOT_SET = object()


class ExecutionProfile(object):
    """Per-request defaults: load balancing, retries, consistency, timeout, row factory.

    ``consistency_level`` defaults to LOCAL_ONE, or LOCAL_QUORUM once the profile is given to a
    Cluster for Astra (``cloud=``), as cassandra-driver's."""

    def __init__(self, load_balancing_policy=None, retry_policy=None,
                 consistency_level=_NOT_SET, serial_consistency_level=None,
                 request_timeout=10.0, row_factory=named_tuple_factory,
                 speculative_execution_policy=None):
        self.load_balancing_policy = load_balancing_policy
        #: extra attempts for idempotent statements (policies.SpeculativeExecutionPolicy)
        self.speculative_execution_policy = speculative_execution_policy or \
            NoSpeculativeExecutionPolicy()
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


# cassandra-driver's Cluster arguments this driver does not take, and what to do instead
# (docs/migrating.md has the same table): Cluster(...) refuses them naming the alternative
CLUSTER_ARGUMENTS_NOT_TAKEN = {
    "executor_threads": "there is no executor: callbacks run on the reactor's loop",
    "conviction_policy_factory": "hosts are marked down when their connection fails or the "
                                 "cluster reports them down (reconnection_policy reconnects)",
    "sockopts": "socket options are not supported",
    "topology_event_refresh_window": "events are applied as they arrive",
    "status_event_refresh_window": "events are applied as they arrive",
    "prepare_on_all_hosts": "statements are prepared on the host that runs them and "
                            "re-prepared where a host answers UNPREPARED",
    "reprepare_on_up": "statements are re-prepared where a host answers UNPREPARED",
    "allow_beta_protocol_version": "protocol v5 is final; beta versions are not offered",
    "idle_heartbeat_timeout": "a heartbeat unanswered by the next idle_heartbeat_interval "
                              "fails the connection",
    "no_compact": "NO_COMPACT is not supported",
    "endpoint_factory": "contact_points take addresses, (address, port) pairs or "
                        "cqlreactor.connection.DefaultEndPoint",
    "application_name": "Insights reporting is not supported",
    "application_version": "Insights reporting is not supported",
    "client_id": "Insights reporting is not supported",
    "monitor_reporting_enabled": "Insights reporting is not supported",
    "monitor_reporting_interval": "Insights reporting is not supported",
    "column_encryption_policy": "client-side column encryption is not supported",
}


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
        address_translator: ``translate(address)`` applied to the addresses peers advertise
            (default ``IdentityTranslator()``; e.g. ``EC2MultiRegionTranslator()``).
        max_schema_agreement_wait: seconds a schema-altering statement waits, after its
            answer, for every up host to report the same schema version (default 10; 0 or
            None: no wait).  See ``ResponseFuture.is_schema_agreed``.
        schema_metadata_enabled: read the whole schema into ``metadata.keyspaces`` (default
            True); False reads only the keyspaces' replication (for token-aware routing).
        token_metadata_enabled: build the token map (``metadata.token_map``, replicas for
            token-aware routing; default True).
        schema_event_refresh_window: seconds SCHEMA_CHANGE events are gathered before their
            refresh (default 2); below 0 they refresh nothing.
    """

    def __new__(cls, *args, **kwargs):
        # Before __init__, whose own TypeError would not say what to do instead.
        refused = sorted(name for name in kwargs if name in CLUSTER_ARGUMENTS_NOT_TAKEN)
        if refused:
            raise TypeError("Cluster(%s) is a cassandra-driver argument cqlreactor does not "
                            "take: %s (docs/migrating.md)" % (
                                ", ".join(n + "=..." for n in refused),
                                "; ".join("%s: %s" % (n, CLUSTER_ARGUMENTS_NOT_TAKEN[n])
                                          for n in refused)))
        if len(args) > 2:
            raise TypeError("Cluster() takes contact_points and port positionally, %d given: "
                            "name the other arguments (compression=..., auth_provider=...); "
                            "cassandra-driver's positional order has arguments cqlreactor does "
                            "not take" % (len(args),))
        return super(Cluster, cls).__new__(cls)

    # Keyword arguments after ``port``: cassandra-driver's positional order has parameters
    # this driver does not take, so a positional call raises TypeError instead of binding a
    # value to the wrong parameter (docs/migrating.md).
    def __init__(self, contact_points: Any = _NOT_SET, port: int = 9042, *,
                 auth_provider: Any = None, connection_class: Any = None,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 ssl_options: Optional[Dict[str, Any]] = None,
                 protocol_version: Optional[int] = None,
                 execution_profiles: Optional[Dict[Any, "ExecutionProfile"]] = None,
                 load_balancing_policy: Any = None, reconnection_policy: Any = None,
                 default_retry_policy: Any = None, connect_timeout: float = 5.0,
                 idle_heartbeat_interval: Optional[float] = 30.0,
                 compression: Union[bool, str] = True, cloud: Optional[Dict[str, Any]] = None,
                 control_connection_timeout: float = 5.0, connections_per_host: int = 1,
                 max_requests_per_connection: int = 32768,
                 allow_unsupported_reactors: Optional[Sequence[str]] = None,
                 cql_version: Optional[str] = None, timestamp_generator: Any = None,
                 address_translator: Any = None, metrics_enabled: bool = False,
                 max_schema_agreement_wait: Optional[float] = 10,
                 schema_metadata_enabled: bool = True, token_metadata_enabled: bool = True,
                 schema_event_refresh_window: float = 2) -> None:
        # Validate everything before a cloud bundle is extracted: nothing would remove the
        # files of a Cluster whose __init__ failed until it is garbage collected.
        if protocol_version not in (None, 3, 4, 5):
            raise ValueError("protocol_version must be None, 3, 4 or 5, not %r"
                             % (protocol_version,))
        if address_translator is not None and \
                not callable(getattr(address_translator, "translate", None)):
            raise TypeError("address_translator must have a translate(address) method "
                            "(see cqlreactor.policies.AddressTranslator), not %r"
                            % (address_translator,))
        if max_schema_agreement_wait is not None and (
                isinstance(max_schema_agreement_wait, bool) or
                not isinstance(max_schema_agreement_wait, (int, float)) or
                max_schema_agreement_wait < 0):
            raise ValueError("max_schema_agreement_wait must be seconds >= 0 (0 or None: no "
                             "wait), not %r" % (max_schema_agreement_wait,))
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
        self.max_schema_agreement_wait = max_schema_agreement_wait or 0
        self.schema_metadata_enabled = bool(schema_metadata_enabled)
        self.token_metadata_enabled = bool(token_metadata_enabled)
        self.schema_event_refresh_window = schema_event_refresh_window
        self.reconnection_policy = reconnection_policy or ExponentialReconnectionPolicy(1.0,
                                                                                        600.0)
        self.connection_class = reactor_class
        #: called per request for its default timestamp (microseconds; see Session
        #: .use_client_timestamp)
        self.timestamp_generator = timestamp_generator or MonotonicTimestampGenerator()
        #: turns the addresses peers advertise into the ones connections go to (policies
        #: .AddressTranslator); contact points are not translated, as in cassandra-driver
        self.address_translator = address_translator or IdentityTranslator()
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

        self.metadata = Metadata(token_metadata_enabled=self.token_metadata_enabled)
        self.control_connection = ControlConnection(self, control_connection_timeout)
        self.sessions = []  # type: List[Session]
        self.is_shutdown = False
        self._started = False
        self._lock = threading.RLock()
        self._reconnectors = {}  # type: dict  # host -> timer handle of its next reconnection attempt
        #: classes registered for user-defined types (register_user_type)
        self.user_types = UserTypeMap()
        #: request metrics (cqlreactor.metrics.Metrics) with ``metrics_enabled``, else None
        self.metrics_enabled = bool(metrics_enabled)
        self.metrics = None
        if metrics_enabled:
            from cqlreactor.metrics import Metrics
            self.metrics = Metrics(self)

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

    def get_control_connection_host(self):
        """The Host the control connection is connected to, or None (cassandra-driver's)."""
        endpoint = getattr(self.control_connection.connection, "endpoint", None)
        if endpoint is None:
            return None
        metadata = self.metadata
        # the endpoint it connected to may be a contact point's (no host id) or, on Astra, the
        # SNI proxy's with the host id as its server name
        return (metadata.get_host(endpoint)
                or metadata.get_host_by_id(endpoint.host_id or endpoint.server_hostname)
                or (metadata.get_host(endpoint.address, endpoint.port)
                    if endpoint.server_hostname is None else None))

    def add_execution_profile(self, name, profile, pool_wait_timeout=5):
        """Register ``profile`` as ``name`` and open the pools its load-balancing policy needs
        in every session, waiting up to ``pool_wait_timeout`` seconds (None: no limit) for them
        so that the profile is usable on return.

        Raises:
            TypeError: ``profile`` is not an ExecutionProfile.
            ValueError: a profile of that name exists.
            OperationTimedOut: some pools were not opened within ``pool_wait_timeout`` (they
                keep opening in the background).
        """
        if not isinstance(profile, ExecutionProfile):
            raise TypeError("profile must be an ExecutionProfile, not %r" % (profile,))
        if name in self.profiles:
            raise ValueError("an execution profile named %r exists already" % (name,))
        self._adopt_profile(profile)
        self.profiles[name] = profile
        if not self._started:
            return      # connect() populates every profile's policy
        profile.load_balancing_policy.populate(self, self.metadata.all_hosts())
        waits = []
        for session in list(self.sessions):
            waits.extend(session.update_created_pools())
        deadline = None if pool_wait_timeout is None else time.monotonic() + pool_wait_timeout
        for event in waits:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not event.wait(left):
                raise OperationTimedOut("the pools of execution profile %r did not all open "
                                        "within pool_wait_timeout=%ss" % (name,
                                                                          pool_wait_timeout))

    # -- connections ---------------------------------------------------------------------------

    def _connection_options(self, endpoint):
        options = dict(
            connect_timeout=self.connect_timeout,
            protocol_version=self.protocol_version,
            ssl_context=self.ssl_context,
            heartbeat_interval=self.idle_heartbeat_interval or None,
        )
        options["compression"] = self.compression
        if self._cloud_config is not None and self._cloud_config.check_hostname_as:
            # the user's cloud["ssl_context"]: the proxy's name is checked by the TLS layer
            options["check_hostname_as"] = self._cloud_config.check_hostname_as
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

    def connect(self, keyspace: Optional[str] = None,
                wait_for_all_pools: bool = False) -> Session:
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
        for keyspace, name, klass in self.user_types.registered():
            self.user_types.register(keyspace, name, klass, self._user_type_fields(keyspace, name))

    # -- user-defined types ----------------------------------------------------------------------

    def register_user_type(self, keyspace, user_type, klass):
        """Use ``klass`` for the user-defined type ``keyspace.user_type``, as cassandra-driver.

        Rows give its values as ``klass(**fields)`` (at any depth: in collections, tuples and
        other UDTs), and statements accept instances of it: prepared ones bind them by
        attribute, simple ones render them as ``{field: value, ...}`` literals. ``klass`` needs
        one attribute per field and a constructor taking each field as a keyword.

        Once connected, the type's fields are read from ``system_schema.types`` now; a class
        registered before ``connect()`` is checked there at connect.

        Raises:
            UserTypeDoesNotExist: the keyspace or the type is unknown to the cluster.
            TypeError: ``klass`` is not a class.
        """
        if not isinstance(klass, type):
            raise TypeError("register_user_type needs a class (called with each field as a "
                            "keyword), not %r" % (klass,))
        fields = self._user_type_fields(keyspace, user_type) if self._started else None
        self.user_types.register(keyspace, user_type, klass, fields)

    def _user_type_fields(self, keyspace, user_type):
        from cqlreactor.encoder import cql_literal
        rows = self.control_connection.select(
            "SELECT field_names FROM system_schema.types WHERE keyspace_name = %s AND "
            "type_name = %s" % (cql_literal(keyspace), cql_literal(user_type)))
        if not rows:
            if keyspace not in self.metadata.keyspaces:
                raise UserTypeDoesNotExist("Keyspace %s does not exist or has not been "
                                           "discovered by the driver" % (keyspace,))
            raise UserTypeDoesNotExist("User type %s does not exist in keyspace %s; create it "
                                       "before registering a class for it"
                                       % (user_type, keyspace))
        return list(rows[0]["field_names"] or ())

    @property
    def is_started(self):
        return self._started

    def new_session(self):
        """A new Session over the known hosts, registered with the cluster (no pools yet)."""
        with self._lock:
            if self.is_shutdown:
                raise DriverException("the cluster is shut down; make a new Cluster")
            session = Session(self, self.metadata.all_hosts())
            if self.metrics is not None:
                session.add_request_init_listener(self.metrics.on_request)
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

    def shutdown(self) -> None:
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

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc_info: Any) -> None:
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
        address = str(self.address_translator.translate(address))
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

    def on_schema_change(self, result):
        """A session's request changed the schema (DDL; on the loop): refresh what it names
        from loop callbacks (ControlConnection.run_in_loop: no thread, nothing blocks)."""
        control = self.control_connection
        control.run_in_loop(control.after_schema_change_steps(None, result, 0),
                            lambda value, error: None)

    # -- schema metadata (cassandra-driver's refresh_* methods) ----------------------------------

    def _refresh(self, what, max_schema_agreement_wait, target_type=None, keyspace=None,
                 name=None):
        control = self.control_connection
        wait = self.max_schema_agreement_wait if max_schema_agreement_wait is None \
            else max_schema_agreement_wait
        if wait and not control.wait_for_schema_agreement(wait_time=wait):
            log.warning("refreshing %s metadata without schema agreement", what)
        try:
            if control.refresh_schema(target_type, keyspace, name):
                return
        except Exception as exc:
            log.warning("%s metadata refresh failed: %r", what, exc)
        raise DriverException("%s metadata was not refreshed. See log for details." % (
            what[:1].upper() + what[1:],))

    def refresh_schema_metadata(self, max_schema_agreement_wait=None):
        """Read the whole schema again now (after waiting for agreement, up to
        ``max_schema_agreement_wait`` or the cluster's).  Raises DriverException on failure."""
        self._refresh("schema", max_schema_agreement_wait)

    def refresh_keyspace_metadata(self, keyspace, max_schema_agreement_wait=None):
        """Read one keyspace's schema again now (see refresh_schema_metadata)."""
        self._refresh("keyspace", max_schema_agreement_wait, "KEYSPACE", keyspace)

    def refresh_table_metadata(self, keyspace, table, max_schema_agreement_wait=None):
        """Read one table's schema again now (see refresh_schema_metadata)."""
        self._refresh("table", max_schema_agreement_wait, "TABLE", keyspace, table)

    def refresh_materialized_view_metadata(self, keyspace, view,
                                           max_schema_agreement_wait=None):
        """Read one materialized view's schema again now (see refresh_schema_metadata)."""
        self._refresh("view", max_schema_agreement_wait, "TABLE", keyspace, view)

    def refresh_user_type_metadata(self, keyspace, user_type, max_schema_agreement_wait=None):
        """Read a user type's keyspace again now (see refresh_schema_metadata)."""
        self._refresh("user type", max_schema_agreement_wait, "TYPE", keyspace, user_type)

    def refresh_user_function_metadata(self, keyspace, function,
                                       max_schema_agreement_wait=None):
        """Read a function's keyspace again now (``function``: its signature descriptor;
        see refresh_schema_metadata)."""
        self._refresh("user function", max_schema_agreement_wait, "FUNCTION", keyspace)

    def refresh_user_aggregate_metadata(self, keyspace, aggregate,
                                        max_schema_agreement_wait=None):
        """Read an aggregate's keyspace again now (see refresh_user_function_metadata)."""
        self._refresh("user aggregate", max_schema_agreement_wait, "AGGREGATE", keyspace)

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
