"""The control connection: discovers the cluster and follows its changes.

It reads system.local and system.peers_v2 (system.peers when the server lacks peers_v2) and
system_schema.keyspaces, registers for TOPOLOGY_CHANGE, STATUS_CHANGE and SCHEMA_CHANGE, keeps
the Cluster's host list and up/down state, and moves to another host when its connection dies.
Refreshes triggered by server events run through ``reactor.spawn`` (a greenlet under
gevent/eventlet, a short-lived thread elsewhere), never blocking the loop itself.
"""

import logging
import random
import threading
import time

from cqlreactor.core import messages as msgs
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import (ConnectionException, DriverException, InvalidRequest,
                                    NoHostAvailable, OperationTimedOut)

__all__ = ["ControlConnection"]

log = logging.getLogger(__name__)

SELECT_LOCAL = "SELECT * FROM system.local WHERE key='local'"
SELECT_PEERS = "SELECT * FROM system.peers"
SELECT_PEERS_V2 = "SELECT * FROM system.peers_v2"
SELECT_SCHEMA_LOCAL = "SELECT schema_version FROM system.local WHERE key='local'"
SELECT_SCHEMA_PEERS = "SELECT peer, host_id, rpc_address, schema_version FROM system.peers"
SCHEMA_AGREEMENT_POLL = 0.2     # seconds between two looks at the nodes' schema versions
SELECT_KEYSPACES = "SELECT keyspace_name, durable_writes, replication FROM system_schema.keyspaces"
EVENT_TYPES = ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"]


class ControlConnection(object):
    """One connection the cluster uses for metadata; see the module docstring."""

    def __init__(self, cluster, timeout=5.0):
        self.cluster = cluster
        self.timeout = timeout
        self._connection = None
        self._uses_peers_v2 = True
        self._lock = threading.RLock()
        self._is_shutdown = False
        self._reconnecting = False
        self._reconnect_timer = None

    @property
    def connection(self):
        return self._connection

    # -- connecting ------------------------------------------------------------------------

    def connect(self, endpoints):
        """Connect to the first endpoint that answers and load the cluster's topology.

        Raises:
            NoHostAvailable: naming every endpoint's error.
        """
        errors = {}
        for endpoint in endpoints:
            # a reconnect runs beside Cluster.shutdown: connecting after it would restart
            # the stopped reactor and leave the connection open
            self._check_not_shut_down()
            try:
                conn = self.cluster.connect_endpoint(endpoint)
            except (ConnectionException, DriverException, OSError) as exc:
                errors[endpoint] = exc
                log.debug("control connection to %s failed: %r", endpoint, exc)
                continue
            try:
                self._adopt(conn)
                return conn
            except (ConnectionException, DriverException) as exc:
                errors[endpoint] = exc
                conn.close()
                self._check_not_shut_down()
        raise NoHostAvailable("Unable to connect to any servers", errors)

    def _check_not_shut_down(self):
        if self._is_shutdown:
            raise DriverException("the control connection is shut down")

    def _adopt(self, conn):
        """Make ``conn`` the control connection.  Raises DriverException (the caller closes
        ``conn``) when the control connection was shut down meanwhile."""
        self._check_not_shut_down()
        conn.set_event_listener(self._on_event)
        self._query(conn, msgs.RegisterMessage(EVENT_TYPES))
        with self._lock:
            self._check_not_shut_down()    # shutdown() found no connection to close
            self._connection = conn
        self.refresh_topology(conn)
        self.refresh_keyspaces(conn)
        conn.add_close_listener(self._on_connection_closed)
        with self._lock:
            if self._is_shutdown and self._connection is conn:
                self._connection = None
                raise DriverException("the control connection is shut down")

    def _query(self, conn, message, timeout=None):
        """Send ``message`` and wait (reactor's wait primitive) for its answer."""
        event = self.cluster.reactor.make_event()
        box = []

        def done(response):
            box.append(response)
            event.set()

        if isinstance(message, str):
            message = msgs.QueryMessage(message, msgs.QueryParameters(ConsistencyLevel.ONE))
        conn.send(message, done, timeout or self.timeout)
        if not event.wait((timeout or self.timeout) + 1.0):
            raise OperationTimedOut("control query got no answer", host=str(conn.endpoint))
        response = box[0]
        if isinstance(response, Exception):   # the driver hands a server ERROR over as one
            raise response
        return response

    def _rows(self, conn, query):
        result = self._query(conn, query)
        names = [c[2] for c in result.column_metadata or ()]
        return [dict(zip(names, row)) for row in result.rows]

    # -- refreshes -------------------------------------------------------------------------

    def refresh_topology(self, conn=None):
        conn = conn or self._connection
        if conn is None:
            return
        local_rows = self._rows(conn, SELECT_LOCAL)
        peers = None
        if self._uses_peers_v2:
            try:
                peers = self._rows(conn, SELECT_PEERS_V2)
            except InvalidRequest:
                self._uses_peers_v2 = False
        if peers is None:
            peers = self._rows(conn, SELECT_PEERS)
        self.cluster.update_topology(conn, local_rows[0] if local_rows else {}, peers)

    def refresh_keyspaces(self, conn=None):
        conn = conn or self._connection
        if conn is None:
            return
        try:
            rows = self._rows(conn, SELECT_KEYSPACES)
        except InvalidRequest:   # a server without system_schema: no token-aware routing
            rows = []
        self.cluster.update_keyspaces(rows)

    def refresh_in_background(self, what):
        """Refresh ``"topology"`` or ``"keyspaces"`` through ``reactor.spawn`` (never blocking
        the loop: server events and the session's schema changes call this from it)."""
        if what not in ("topology", "keyspaces"):
            raise ValueError("refresh_in_background(%r): 'topology' or 'keyspaces'" % (what,))

        def run():
            try:
                if what == "topology":
                    self.refresh_topology()
                else:
                    self.refresh_keyspaces()
            except Exception as exc:   # logged; the next event or reconnect refreshes again
                log.debug("control connection refresh (%s) failed: %r", what, exc)
        if not self._is_shutdown:
            self.cluster.reactor.spawn(run)

    # -- schema agreement --------------------------------------------------------------------

    def wait_for_schema_agreement(self, connection=None, preloaded_results=None,
                                  wait_time=None):
        """Wait until every up host reports one schema version (cassandra-driver's name).

        Reads system.local and system.peers over ``connection`` (the control connection when
        None) every 0.2 s.  Peers that the cluster's metadata does not know or holds down are
        left out, as are rows without a version.  The pauses use the reactor's event, so a
        gevent/eventlet caller yields to its hub; call this where blocking is allowed (never
        in a loop callback: ``reactor.spawn`` it).

        Args:
            connection: where to read the versions (a ready connection).
            preloaded_results: (peers rows, local rows) already read, as dicts, for the first
                look (cassandra-driver passes query results; dict rows here).
            wait_time: seconds before giving up; None: the Cluster's
                ``max_schema_agreement_wait``.  0 (or less) returns True at once.

        Returns:
            True when the versions agree, False when ``wait_time`` passed first (logged as a
            warning, with the versions seen) or no connection can be had.
        """
        if wait_time is None:
            wait_time = self.cluster.max_schema_agreement_wait
        if not wait_time or wait_time <= 0:
            return True
        if self._is_shutdown:
            return False
        conn = connection or self._connection
        if conn is None:
            log.warning("schema agreement: no connection to read the schema versions from")
            return False
        deadline = time.monotonic() + wait_time
        versions = None
        while True:
            if preloaded_results is not None:
                peers, local = preloaded_results
                preloaded_results = None
            else:
                local = self._rows(conn, SELECT_SCHEMA_LOCAL)
                peers = self._rows(conn, SELECT_SCHEMA_PEERS)
            versions = self._schema_versions(conn, local, peers)
            if len(versions) <= 1:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.cluster.reactor.make_event().wait(min(SCHEMA_AGREEMENT_POLL, remaining))
        log.warning("Node %s is reporting a schema disagreement: %s", conn.endpoint,
                    dict((str(v), sorted(hosts)) for v, hosts in versions.items()))
        return False

    def _schema_versions(self, conn, local, peers):
        """{schema version: set of host descriptions} of the up hosts (see above)."""
        versions = {}
        if local and local[0].get("schema_version") is not None:
            versions.setdefault(local[0]["schema_version"], set()).add(str(conn.endpoint))
        metadata = self.cluster.metadata
        by_id = dict((h.host_id, h) for h in metadata.all_hosts() if h.host_id)
        for row in peers:
            version = row.get("schema_version")
            if version is None:
                continue
            host = by_id.get(row.get("host_id")) if row.get("host_id") else None
            address = str(row.get("rpc_address") or row.get("peer") or "")
            if host is None:
                host = metadata.get_host_by_address(address)
            if host is None or not host.is_up:
                continue
            versions.setdefault(version, set()).add(address)
        return versions

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, event):
        kind = getattr(event, "event_type", None)
        change = getattr(event, "change_type", None)
        if kind == "TOPOLOGY_CHANGE":
            self.refresh_in_background("topology")
        elif kind == "STATUS_CHANGE":
            address = getattr(event, "address", None)
            host = self.cluster.metadata.get_host_by_address(address)
            if host is None:
                self.refresh_in_background("topology")
            elif change == "UP":
                self.cluster.on_host_reported_up(host)
            elif change == "DOWN":
                self.cluster.on_host_reported_down(host)
        elif kind == "SCHEMA_CHANGE":
            self.refresh_in_background("keyspaces")

    # -- failover ----------------------------------------------------------------------------

    def _on_connection_closed(self, conn, exc):
        if self._is_shutdown or conn is not self._connection:
            return
        log.info("control connection to %s lost (%r); reconnecting", conn.endpoint, exc)
        self._connection = None
        self._schedule_reconnect(self.cluster.reconnection_policy.new_schedule(), 0.0)

    def _schedule_reconnect(self, schedule, delay):
        with self._lock:
            if self._is_shutdown:
                return
            self._reconnect_timer = self.cluster.reactor.call_later(
                delay, self.cluster.reactor.spawn, self._reconnect, schedule)

    def _reconnect(self, schedule):
        if self._is_shutdown:
            return
        hosts = self.cluster.metadata.all_hosts()
        up = [h for h in hosts if h.is_up]
        random.shuffle(up)          # spread the control connections of many clients
        hosts = up + [h for h in hosts if not h.is_up]
        try:
            self.connect([h.endpoint for h in hosts])
        except DriverException as exc:   # NoHostAvailable, or shut down meanwhile
            if self._is_shutdown:
                return
            delay = next(schedule, None)
            if delay is None:
                log.error("control connection could not reconnect: %s", exc)
                return
            log.debug("control connection reconnect failed; retrying in %.2fs", delay)
            self._schedule_reconnect(schedule, delay)

    def shutdown(self):
        with self._lock:
            self._is_shutdown = True
            timer, self._reconnect_timer = self._reconnect_timer, None
            conn, self._connection = self._connection, None
        if timer is not None:
            timer.cancel()
        if conn is not None:
            conn.close()
