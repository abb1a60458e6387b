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

from cqlreactor.core import messages as msgs
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import (ConnectionException, DriverException, InvalidRequest,
                                    NoHostAvailable, OperationTimedOut)
from cqlreactor.steps import run_blocking

__all__ = ["ControlConnection"]

log = logging.getLogger(__name__)

SELECT_LOCAL = "SELECT * FROM system.local WHERE key='local'"
SELECT_PEERS = "SELECT * FROM system.peers"
SELECT_PEERS_V2 = "SELECT * FROM system.peers_v2"
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
    #
    # Connecting and refreshing are written once, as generators of steps: each ``yield`` is one
    # step, ("open", endpoint) or ("query", conn, message_or_query_text), and gets back its
    # answer (a connection; a response, or rows as dicts for query text) or has its error
    # thrown in.  The blocking API runs them with ``run_steps`` (the reactor's wait primitive);
    # cqlreactor.aio runs the same generators awaiting each step on the caller's loop.

    def connect(self, endpoints):
        """Connect to the first endpoint that answers and load the cluster's topology.

        Raises:
            NoHostAvailable: naming every endpoint's error.
        """
        return self.run_steps(self.connect_steps(endpoints))

    def connect_steps(self, endpoints):
        """:meth:`connect` as steps (see above); its value is the connection."""
        errors = {}
        for endpoint in endpoints:
            # a reconnect runs beside Cluster.shutdown: connecting after it would restart
            # the stopped reactor and leave the connection open
            self._check_not_shut_down()
            try:
                conn = yield ("open", endpoint)
            except (ConnectionException, DriverException, OSError) as exc:
                errors[endpoint] = exc
                log.debug("control connection to %s failed: %r", endpoint, exc)
                continue
            try:
                yield from self._adopt_steps(conn)
                return conn
            except (ConnectionException, DriverException) as exc:
                errors[endpoint] = exc
                conn.close()
                self._check_not_shut_down()
        raise NoHostAvailable("Unable to connect to any servers", errors)

    def run_steps(self, steps):
        """Run a steps generator blocking (the reactor's wait primitive); return its value."""
        return run_blocking(steps, self._perform)

    def _perform(self, step):
        if step[0] == "open":
            return self.cluster.connect_endpoint(step[1])
        return self._query(step[1], step[2])

    def send_step(self, conn, request, done):
        """Send a "query" step's ``request`` on ``conn`` without blocking: ``done(answer)`` on
        the loop (the response, rows as dicts for query text, or the exception)."""
        rows = isinstance(request, str)
        if rows:
            request = msgs.QueryMessage(request, msgs.QueryParameters(ConsistencyLevel.ONE))

        def answered(response):
            if rows and not isinstance(response, Exception):
                names = [c[2] for c in response.column_metadata or ()]
                response = [dict(zip(names, row)) for row in response.rows]
            done(response)
        conn.send(request, answered, self.timeout)

    def _check_not_shut_down(self):
        if self._is_shutdown:
            raise DriverException("the control connection is shut down")

    def _adopt_steps(self, conn):
        """Make ``conn`` the control connection.  Raises DriverException (the caller closes
        ``conn``) when the control connection was shut down meanwhile."""
        self._check_not_shut_down()
        conn.set_event_listener(self._on_event)
        yield ("query", conn, msgs.RegisterMessage(EVENT_TYPES))
        with self._lock:
            self._check_not_shut_down()    # shutdown() found no connection to close
            self._connection = conn
        yield from self._topology_steps(conn)
        yield from self._keyspaces_steps(conn)
        conn.add_close_listener(self._on_connection_closed)
        with self._lock:
            if self._is_shutdown and self._connection is conn:
                self._connection = None
                raise DriverException("the control connection is shut down")

    def _query(self, conn, message, timeout=None):
        """Send a step's request and wait (reactor's wait primitive) for its answer."""
        event = self.cluster.reactor.make_event()
        box = []

        def done(response):
            box.append(response)
            event.set()

        self.send_step(conn, message, done)
        if not event.wait((timeout or self.timeout) + 1.0):
            raise OperationTimedOut("control query got no answer", host=str(conn.endpoint))
        response = box[0]
        if isinstance(response, Exception):   # the driver hands a server ERROR over as one
            raise response
        return response

    # -- refreshes -------------------------------------------------------------------------

    def refresh_topology(self, conn=None):
        conn = conn or self._connection
        if conn is not None:
            self.run_steps(self._topology_steps(conn))

    def _topology_steps(self, conn):
        local_rows = yield ("query", conn, SELECT_LOCAL)
        peers = None
        if self._uses_peers_v2:
            try:
                peers = yield ("query", conn, SELECT_PEERS_V2)
            except InvalidRequest:
                self._uses_peers_v2 = False
        if peers is None:
            peers = yield ("query", conn, SELECT_PEERS)
        self.cluster.update_topology(conn, local_rows[0] if local_rows else {}, peers)

    def refresh_keyspaces(self, conn=None):
        conn = conn or self._connection
        if conn is not None:
            self.run_steps(self._keyspaces_steps(conn))

    def _keyspaces_steps(self, conn):
        try:
            rows = yield ("query", conn, SELECT_KEYSPACES)
        except InvalidRequest:   # a server without system_schema: no token-aware routing
            rows = []
        self.cluster.update_keyspaces(rows)

    def refresh_steps(self, what, conn=None):
        """``"topology"`` or ``"keyspaces"`` refresh as steps (nothing when not connected)."""
        conn = conn or self._connection
        if conn is None:
            return iter(())
        return self._topology_steps(conn) if what == "topology" else self._keyspaces_steps(conn)

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
        if self._is_shutdown:
            return
        if getattr(self.cluster.reactor, "on_running_loop", False):
            # the connections run on the application's asyncio loop: refresh in a task there
            # (no thread, nothing blocks the loop)
            from cqlreactor import aio
            aio.run_in_background(aio.run_control_steps(self, self.refresh_steps(what)),
                                  "control connection refresh (%s)" % (what,))
            return
        self.cluster.reactor.spawn(run)

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
            reactor = self.cluster.reactor
            if getattr(reactor, "on_running_loop", False):
                # on the application's asyncio loop: reconnect in a task there, no thread
                self._reconnect_timer = reactor.call_later(delay, self._reconnect_in_loop,
                                                           schedule)
            else:
                self._reconnect_timer = reactor.call_later(delay, reactor.spawn,
                                                           self._reconnect, schedule)

    def _reconnect(self, schedule):
        self.run_steps(self._reconnect_steps(schedule))

    def _reconnect_in_loop(self, schedule):
        from cqlreactor import aio
        aio.run_in_background(aio.run_control_steps(self, self._reconnect_steps(schedule)),
                              "control connection reconnect")

    def _reconnect_steps(self, schedule):
        if self._is_shutdown:
            return
        hosts = self.cluster.metadata.all_hosts()
        up = [h for h in hosts if h.is_up]
        random.shuffle(up)          # spread the control connections of many clients
        hosts = up + [h for h in hosts if not h.is_up]
        try:
            yield from self.connect_steps([h.endpoint for h in hosts])
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
