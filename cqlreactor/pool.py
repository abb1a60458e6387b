"""Connection pools: a few connections per host, requests to the least busy one.

A pool opens ``core_connections`` connections to its host.  When every connection of a pool is
gone the host is marked down and the cluster schedules reconnection with its reconnection policy
(exponential backoff with jitter by default); a successful reconnect marks the host up again.
Everything that runs from reactor callbacks here is non-blocking (``connect_async``), because a
gevent or eventlet hub must never block.
"""

import logging
import threading

from cqlreactor.core.errors import ConnectionBusy, ConnectionException

__all__ = ["HostConnectionPool", "NoConnectionsAvailable"]

log = logging.getLogger(__name__)


class NoConnectionsAvailable(ConnectionException):
    """The host's pool has no open connection right now."""


class HostConnectionPool(object):
    """The connections one session holds to one host."""

    def __init__(self, host, session, core_connections=1, max_requests_per_connection=32768):
        self.host = host
        self.session = session
        self.core_connections = max(1, int(core_connections))
        self.max_requests_per_connection = max_requests_per_connection
        self._connections = []
        self._lock = threading.Lock()
        self._opening = 0
        self.is_shutdown = False

    # -- opening ---------------------------------------------------------------------------

    def open_blocking(self):
        """Open the core connections now (from a user call such as ``cluster.connect()``).

        Raises the first connection error when no connection could be opened."""
        first_error = None
        for _ in range(self.core_connections - len(self._connections)):
            try:
                conn = self.session.cluster.connect_host(self.host)
            except Exception as exc:   # report below, after trying the others
                first_error = first_error or exc
                continue
            self._adopt(conn)
        if not self._connections and first_error is not None:
            raise first_error

    def replenish_async(self, on_done=None):
        """Open the missing connections without blocking; ``on_done(ok, error)`` when settled."""
        missing = self.core_connections - len(self._connections) - self._opening
        if missing <= 0 or self.is_shutdown:
            if on_done:
                on_done(bool(self._connections), None)
            return
        state = {"pending": missing, "error": None}

        def opened(result):
            with self._lock:
                self._opening -= 1
            if isinstance(result, Exception):
                state["error"] = result
            elif self.is_shutdown:
                result.close()
            else:
                self._adopt(result)
            state["pending"] -= 1
            if state["pending"] != 0:
                return
            if on_done:
                on_done(bool(self._connections), state["error"])
            elif state["error"] is not None and not self._connections and \
                    not self.is_shutdown:
                # nothing opened: the host is unreachable for this pool, so the cluster
                # marks it down and reconnects (else it would stay "up" with no connection)
                self.session.cluster.on_host_unreachable(self.host, state["error"])

        with self._lock:
            self._opening += missing
        for _ in range(missing):
            self.session.cluster.connect_host_async(self.host, opened)

    def _adopt(self, conn):
        conn.keyspace = getattr(conn, "keyspace", None)
        with self._lock:
            if self.is_shutdown:
                conn.close()
                return
            self._connections.append(conn)
        conn.add_close_listener(self._on_connection_closed)

    def _on_connection_closed(self, conn, exc):
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
            empty = not self._connections
        if self.is_shutdown or exc is None:
            return            # closed on purpose (shutdown, pool removed): nothing to replace
        if empty:
            log.debug("pool for %s lost its last connection: %r", self.host, exc)
            self.session.cluster.on_host_unreachable(self.host, exc)
        else:
            # one connection failed (e.g. too many unanswered requests) while the host still
            # answers on the others: open a replacement
            log.debug("pool for %s replaces a failed connection: %r", self.host, exc)
            self.replenish_async()

    # -- use ------------------------------------------------------------------------------------

    def borrow_connection(self):
        """The least busy open connection.

        Raises:
            ConnectionBusy: every connection has max_requests_per_connection in flight.
            NoConnectionsAvailable: the pool has no open connection.
        """
        conns = self._connections
        if len(conns) == 1:
            best = conns[0]
            load = best.load_if_open()          # the usual case: one call, both checks
            if load is not None:
                if load >= self.max_requests_per_connection:
                    raise ConnectionBusy("all 1 connections have %d requests in flight"
                                         % (self.max_requests_per_connection,),
                                         host=str(self.host.endpoint))
                return best
        elif not conns:
            raise NoConnectionsAvailable("no open connection in the pool",
                                         host=str(self.host.endpoint))
        else:
            best = min(conns, key=_in_flight)
        if best.is_defunct or best.is_closed:
            with self._lock:
                self._connections = [c for c in self._connections
                                     if not (c.is_defunct or c.is_closed)]
            if not self._connections:
                raise NoConnectionsAvailable("every connection of the pool is closed",
                                             host=str(self.host.endpoint))
            return self.borrow_connection()
        if best.in_flight >= self.max_requests_per_connection:
            raise ConnectionBusy("all %d connections have %d requests in flight"
                                 % (len(conns), self.max_requests_per_connection),
                                 host=str(self.host.endpoint))
        return best

    @property
    def open_count(self):
        return len(self._connections)

    def get_connections(self):
        return list(self._connections)

    def shutdown(self):
        with self._lock:
            self.is_shutdown = True
            conns, self._connections = self._connections, []
        for conn in conns:
            try:
                conn.close()
            except Exception:   # closing is best effort; the socket is gone either way
                log.debug("error closing %r", conn, exc_info=True)


def _in_flight(conn):
    return conn.in_flight
