"""The control connection: discovers the cluster and follows its changes.

It reads system.local and system.peers_v2 (system.peers when the server lacks peers_v2) and
the schema (system_schema, system_virtual_schema: cqlreactor.schema builds the model),
registers for TOPOLOGY_CHANGE, STATUS_CHANGE and SCHEMA_CHANGE, keeps the Cluster's host list,
up/down state and schema metadata (SCHEMA_CHANGE refreshes what it names, debounced), waits for
schema agreement after DDL, and moves to another host when its connection dies.
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
from cqlreactor.schema import SCHEMA_TABLES, build_keyspaces
from cqlreactor.steps import run_blocking, run_with_callbacks

__all__ = ["ControlConnection"]

log = logging.getLogger(__name__)

SELECT_LOCAL = "SELECT * FROM system.local WHERE key='local'"
SELECT_PEERS = "SELECT * FROM system.peers"
SELECT_PEERS_V2 = "SELECT * FROM system.peers_v2"
SELECT_SCHEMA_LOCAL = "SELECT schema_version FROM system.local WHERE key='local'"
SELECT_SCHEMA_PEERS = "SELECT peer, host_id, rpc_address, schema_version FROM system.peers"
# seconds between two looks at the nodes' schema versions: 10 ms, doubling up to 200 ms (a
# DDL usually settles within milliseconds; a lagging node is then not asked five times a second)
SCHEMA_AGREEMENT_FIRST_POLL = 0.01
SCHEMA_AGREEMENT_POLL = 0.2
SELECT_KEYSPACES = "SELECT keyspace_name, durable_writes, replication FROM system_schema.keyspaces"
EVENT_TYPES = ["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"]
#: the PRODUCT_TYPE Astra advertises in SUPPORTED (cassandra-driver detects Astra by it too)
DBAAS_PRODUCT_TYPE = "DATASTAX_APOLLO"


def _literal(text):
    return "'%s'" % text.replace("'", "''")


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
        self._pending_schema = []       # (target, keyspace, name) of events not yet refreshed
        self._schema_timer = None

    @property
    def connection(self):
        return self._connection

    # -- connecting ------------------------------------------------------------------------
    #
    # Connecting and refreshing are written once, as generators of steps: each ``yield`` is one
    # step, ("open", endpoint), ("query", conn, message_or_query_text) or ("queries", conn,
    # [message_or_query_text, ...]) (sent together; its answer is the list of answers, an
    # error standing in its place, never thrown), and gets back its
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
        if step[0] == "sleep":
            self.cluster.reactor.make_event().wait(step[1])
            return None
        if step[0] == "open":
            return self.cluster.connect_endpoint(step[1])
        if step[0] == "queries":
            return self._wait_for(step[1], self.send_queries_step, step[2], None)
        return self._query(step[1], step[2])

    def send_queries_step(self, conn, requests, done):
        """Send a "queries" step's ``requests`` on ``conn`` at once, without blocking:
        ``done(answers)`` once every one is answered (each answer as ``send_step`` gives it;
        an error in the place of its request)."""
        answers = [None] * len(requests)
        left = [len(requests)]

        def answered_at(index):
            def answered(response):     # (on the loop; a send refused, in the caller's thread)
                answers[index] = response
                left[0] -= 1
                if not left[0]:
                    done(answers)
            return answered
        if not requests:
            done(answers)
        for index, request in enumerate(requests):
            answered = answered_at(index)
            try:
                self.send_step(conn, request, answered)
            except (ConnectionException, DriverException) as exc:
                answered(exc)

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
        product = ((getattr(conn, "supported", None) or {}).get("PRODUCT_TYPE") or [None])[0]
        self.cluster.metadata.dbaas = product == DBAAS_PRODUCT_TYPE
        yield from self._topology_steps(conn)
        yield from self._keyspaces_steps(conn)
        conn.add_close_listener(self._on_connection_closed)
        with self._lock:
            if self._is_shutdown and self._connection is conn:
                self._connection = None
                raise DriverException("the control connection is shut down")

    def _query(self, conn, message, timeout=None):
        """Send a step's request and wait (reactor's wait primitive) for its answer."""
        response = self._wait_for(conn, self.send_step, message, timeout)
        if isinstance(response, Exception):   # the driver hands a server ERROR over as one
            raise response
        return response

    def _wait_for(self, conn, send, request, timeout):
        """``send(conn, request, done)`` and wait (reactor's wait primitive) for ``done``'s
        value."""
        event = self.cluster.reactor.make_event()
        box = []

        def done(response):
            box.append(response)
            event.set()

        send(conn, request, done)
        if not event.wait((timeout or self.timeout) + 1.0):
            raise OperationTimedOut("control query got no answer", host=str(conn.endpoint))
        return box[0]

    def _rows(self, conn, query):
        """The rows (dicts) of the query text ``query`` on ``conn``, blocking."""
        return self._query(conn, query)

    def select(self, query):
        """The rows (dicts) of ``query`` run on the control connection.

        Raises:
            ConnectionException: there is no control connection right now.
        """
        conn = self._connection
        if conn is None:
            raise ConnectionException("no control connection to run %r on" % (query,))
        return self._rows(conn, query)

    # -- refreshes -------------------------------------------------------------------------

    def refresh_topology(self, conn=None):
        conn = conn or self._connection
        if conn is not None:
            self.run_steps(self._topology_steps(conn))

    def _topology_steps(self, conn):
        peers = None
        if self._uses_peers_v2:     # both at once: one round trip
            local_rows, peers = yield ("queries", conn, [SELECT_LOCAL, SELECT_PEERS_V2])
            if isinstance(local_rows, Exception):
                raise local_rows
            if isinstance(peers, InvalidRequest):
                self._uses_peers_v2 = False
                peers = None
            elif isinstance(peers, Exception):
                raise peers
        else:
            local_rows = yield ("query", conn, SELECT_LOCAL)
        if peers is None:
            peers = yield ("query", conn, SELECT_PEERS)
        self.cluster.update_topology(conn, local_rows[0] if local_rows else {}, peers)

    def refresh_keyspaces(self, conn=None):
        """Read the whole schema again (every keyspace); see :meth:`refresh_schema`."""
        return self.refresh_schema(conn=conn)

    def refresh_schema(self, target_type=None, keyspace=None, name=None, conn=None):
        """Read system_schema again and update the cluster's metadata.

        Args:
            target_type: None (everything), "KEYSPACE", "TABLE" (a table or a view), or
                "TYPE" / "FUNCTION" / "AGGREGATE" (their keyspace is read again).
            keyspace, name: what the target names.
        Returns True when the refresh ran, False without a connection.  Raises what the
        queries raise (the callers log it; a bad row never raises: see cqlreactor.schema).

        With ``Cluster(schema_metadata_enabled=False)`` only the keyspaces' replication is
        read (what token-aware routing needs).
        """
        conn = conn or self._connection
        if conn is None:
            return False
        return self.run_steps(self.schema_steps(conn, target_type, keyspace, name))

    def schema_steps(self, conn, target_type=None, keyspace=None, name=None):
        """:meth:`refresh_schema` as steps (see connect_steps): blocking or awaited."""
        metadata = self.cluster.metadata
        if not self.cluster.schema_metadata_enabled:
            try:
                rows = yield ("query", conn, SELECT_KEYSPACES)
            except InvalidRequest:   # a server without system_schema: no token-aware routing
                rows = []
            metadata.replace_keyspaces(build_keyspaces({"keyspaces": rows}))
            return True
        if target_type is None or keyspace is None:
            rows = yield from self._schema_rows(conn, None)
            virtual = yield from self._virtual_rows(conn)
            metadata.replace_keyspaces(build_keyspaces(rows, virtual))
            return True
        if target_type == "TABLE" and name and keyspace in metadata.keyspaces:
            rows = yield from self._schema_rows(conn, keyspace, name)
            built = build_keyspaces(rows).get(keyspace)
            if built is not None:
                element = built.tables.get(name) or built.views.get(name)
                metadata.update_table(keyspace, name, element)
                return True
        rows = yield from self._schema_rows(conn, keyspace)
        metadata.update_keyspace(keyspace, build_keyspaces(rows).get(keyspace))
        return True

    def _schema_rows(self, conn, keyspace, table=None):
        """{system_schema table: rows}, of one keyspace (and one table or view) when given:
        every table's query sent at once (one round trip, not one per table)."""
        kinds = []
        queries = []
        for kind in SCHEMA_TABLES:
            if table is not None and kind in ("functions", "aggregates"):
                continue
            where = ""
            if keyspace is not None:
                where = " WHERE keyspace_name = %s" % _literal(keyspace)
                if table is not None and kind in ("tables", "columns", "indexes", "triggers"):
                    where += " AND table_name = %s" % _literal(table)
                elif table is not None and kind == "views":
                    where += " AND view_name = %s" % _literal(table)
            kinds.append(kind)
            queries.append("SELECT * FROM system_schema.%s%s" % (kind, where))
        answers = yield ("queries", conn, queries)
        out = {}
        for kind, answer in zip(kinds, answers):
            if isinstance(answer, InvalidRequest):      # an older Cassandra without that table
                answer = []
            elif isinstance(answer, Exception):
                raise answer
            out[kind] = answer
        return out

    def _virtual_rows(self, conn):
        """system_virtual_schema's rows (Cassandra 4.0+), or None where it does not exist."""
        kinds = ("keyspaces", "tables", "columns")
        answers = yield ("queries", conn,
                         ["SELECT * FROM system_virtual_schema.%s" % kind for kind in kinds])
        out = {}
        for kind, answer in zip(kinds, answers):
            if isinstance(answer, InvalidRequest):
                return None
            if isinstance(answer, Exception):
                raise answer
            out[kind] = answer
        return out

    def _keyspaces_steps(self, conn):
        """The whole schema read again, as steps (a control connection's first refresh)."""
        yield from self.schema_steps(conn)

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
                    self.refresh_schema()
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

    # -- schema agreement --------------------------------------------------------------------

    def wait_for_schema_agreement(self, connection=None, preloaded_results=None,
                                  wait_time=None):
        """Wait until every up host reports one schema version (cassandra-driver's name).

        Reads system.local and system.peers over ``connection`` (the control connection when
        None), pausing 10 ms, then twice as long each time, at most 0.2 s.  Peers that the
        cluster's metadata does not know or holds down are left out, as are rows without a
        version.  This blocks (the reactor's event: a gevent/eventlet caller yields to its
        hub); a loop callback runs :meth:`schema_agreement_steps` with :meth:`run_in_loop`.

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
        return self.run_steps(self.schema_agreement_steps(connection, preloaded_results,
                                                          wait_time))

    def schema_agreement_steps(self, connection=None, preloaded_results=None, wait_time=None):
        """:meth:`wait_for_schema_agreement` as steps: ("query", ...) and ("sleep", seconds)
        steps, run blocking, awaited, or from loop callbacks (:meth:`run_in_loop`)."""
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
        pause = SCHEMA_AGREEMENT_FIRST_POLL
        while True:
            if preloaded_results is not None:
                peers, local = preloaded_results
                preloaded_results = None
            else:
                local = yield ("query", conn, SELECT_SCHEMA_LOCAL)
                peers = yield ("query", conn, SELECT_SCHEMA_PEERS)
            versions = self._schema_versions(conn, local, peers)
            if len(versions) <= 1:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._is_shutdown:
                break
            yield ("sleep", min(pause, remaining))
            pause = min(pause * 2, SCHEMA_AGREEMENT_POLL)
        log.warning("Node %s is reporting a schema disagreement: %s", conn.endpoint,
                    dict((str(v), sorted(hosts)) for v, hosts in versions.items()))
        return False

    def after_schema_change_steps(self, connection, response, wait_time):
        """A DDL's follow-up as steps: wait for agreement (up to ``wait_time``; 0: no wait),
        then refresh what ``response`` (its SchemaChangeResult) names on the control
        connection.  Its value: whether the schema agreed.  Never raises: a failed look or
        refresh is logged (the next event or reconnect refreshes again)."""
        agreed = True
        if wait_time:
            try:
                agreed = yield from self.schema_agreement_steps(connection, None, wait_time)
            except Exception as exc:   # the connection went: the schema may not be agreed
                log.warning("could not check schema agreement after a schema change on %s: "
                            "%r", getattr(connection, "endpoint", connection), exc)
                agreed = False
        conn = self._connection
        if conn is not None and not self._is_shutdown:
            try:   # the metadata is current when the statement returns, as cassandra-driver's
                yield from self.schema_steps(conn, response.target, response.keyspace,
                                             response.name)
            except Exception as exc:
                log.warning("schema metadata refresh (%s %s.%s) failed: %r", response.target,
                            response.keyspace, response.name, exc)
        return agreed

    def run_in_loop(self, steps, done):
        """Run ``steps`` from the reactor's loop callbacks (no thread, nothing blocks): each
        query is sent with :meth:`send_step`, each pause is a ``reactor.call_later`` timer
        (a hub timer under gevent/eventlet, the caller's loop in asyncio native mode);
        ``done(value, error)`` runs on the loop at the end."""
        reactor = self.cluster.reactor

        def start(step, answered):
            if step[0] == "sleep":
                reactor.call_later(step[1], answered, None)
            elif step[0] == "query":
                self.send_step(step[1], step[2], answered)
            elif step[0] == "queries":
                self.send_queries_step(step[1], step[2], answered)
            else:
                raise DriverException("step %r cannot run in the loop" % (step[0],))
        run_with_callbacks(steps, start, done)

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
            self.schedule_schema_refresh(event.target, event.keyspace, event.name)

    def schedule_schema_refresh(self, target_type, keyspace, name):
        """Refresh what a SCHEMA_CHANGE names, debounced: changes arriving within
        ``Cluster.schema_event_refresh_window`` seconds of the first are refreshed together
        (each keyspace or table once; everything when too many).  A window below 0 turns
        event refreshes off, as in cassandra-driver."""
        window = self.cluster.schema_event_refresh_window
        if window is None or window < 0 or self._is_shutdown:
            return
        with self._lock:
            self._pending_schema.append((target_type, keyspace, name))
            if self._schema_timer is not None:
                return
            reactor = self.cluster.reactor
            self._schema_timer = reactor.call_later(window, reactor.spawn,
                                                    self._refresh_pending_schema)

    def _refresh_pending_schema(self):
        with self._lock:
            pending, self._pending_schema = self._pending_schema, []
            self._schema_timer = None
        if self._is_shutdown or not pending:
            return
        keyspaces = set(k for t, k, n in pending if t != "TABLE")
        tables = set((k, n) for t, k, n in pending if t == "TABLE" and k not in keyspaces)
        try:
            if len(keyspaces) + len(tables) > 10 or None in keyspaces:
                self.refresh_schema()
                return
            for keyspace in sorted(keyspaces):
                self.refresh_schema("KEYSPACE", keyspace)
            for keyspace, table in sorted(tables):
                self.refresh_schema("TABLE", keyspace, table)
        except Exception as exc:   # logged; the next event or reconnect refreshes again
            log.warning("schema refresh after SCHEMA_CHANGE failed: %r", exc)

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
            schema_timer, self._schema_timer = self._schema_timer, None
            conn, self._connection = self._connection, None
        if schema_timer is not None:
            schema_timer.cancel()
        if timer is not None:
            timer.cancel()
        if conn is not None:
            conn.close()
