"""Query traces: what Cassandra recorded in system_traces about a traced request.

``session.execute(query, trace=True)`` asks the coordinator to trace; the answer carries the
trace's session id, and ``ResponseFuture.get_query_trace()`` / ``ResultSet.get_query_trace()``
read it back as a :class:`QueryTrace`.  Cassandra writes traces asynchronously, after it
answered, so reading polls: the session row is read until it is complete (its duration set),
with pauses doubling from 3 ms, until ``max_wait`` (default ``Session.max_trace_wait``, 2 s)
passes, then :class:`~cqlreactor.core.errors.TraceUnavailable`.  That is cassandra-driver's
behaviour.  The pauses use the reactor's event, so gevent/eventlet callers yield to the hub;
call it where blocking is allowed (not in a callback on the loop).
"""

import datetime
import time

from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.errors import OperationTimedOut, TraceUnavailable
from cqlreactor.statements import SimpleStatement

__all__ = ["QueryTrace", "TraceEvent", "TraceUnavailable"]

_FIRST_PAUSE = 0.003
_SESSIONS = "SELECT * FROM system_traces.sessions WHERE session_id = %s"
_EVENTS = "SELECT * FROM system_traces.events WHERE session_id = %s"
_UUID_EPOCH = datetime.datetime(1582, 10, 15, tzinfo=datetime.timezone.utc)


class TraceEvent(object):
    """One event of a trace: description, datetime (aware, UTC: from the event's time uuid),
    source (the node's address), source_elapsed (timedelta since the request reached that
    node, or None), thread_name."""

    __slots__ = ("description", "datetime", "source", "source_elapsed", "thread_name")

    def __init__(self, description, timeuuid, source, source_elapsed, thread_name):
        self.description = description
        self.datetime = _UUID_EPOCH + datetime.timedelta(microseconds=timeuuid.time // 10)
        self.source = source
        self.source_elapsed = None if source_elapsed is None else \
            datetime.timedelta(microseconds=source_elapsed)
        self.thread_name = thread_name

    def __str__(self):
        return "%s on %s[%s] at %s" % (self.description, self.source, self.thread_name,
                                       self.datetime)

    __repr__ = __str__


def _profile():
    from cqlreactor.cluster import ExecutionProfile     # cluster imports response_future
    return ExecutionProfile


class QueryTrace(object):
    """The trace of one request.

    Attributes (None until :meth:`populate`): trace_id (uuid), request_type (e.g. "Execute
    CQL3 query"), duration (timedelta), client, coordinator (addresses), parameters (dict),
    started_at (datetime, UTC), events (tuple of TraceEvent).
    """

    def __init__(self, trace_id, session):
        self.trace_id = trace_id
        self.request_type = None
        self.duration = None
        self.client = None
        self.coordinator = None
        self.parameters = None
        self.started_at = None
        self.events = None
        self._session = session

    def populate(self, max_wait=2.0, wait_for_complete=True, query_cl=None):
        """Read the trace.  Raises TraceUnavailable when it is not there (complete, with
        ``wait_for_complete``) within ``max_wait`` seconds (None: no limit)."""
        if query_cl is None:
            query_cl = ConsistencyLevel.LOCAL_ONE
        start = time.monotonic()
        attempt = 0
        while True:
            spent = time.monotonic() - start
            if max_wait is not None and spent >= max_wait:
                raise TraceUnavailable(
                    "Trace information was not available within %f seconds. Consider "
                    "raising Session.max_trace_wait." % (max_wait,))
            rows = self._read(_SESSIONS, query_cl, spent, max_wait)
            row = rows[0] if rows else None
            complete = row is not None and row.duration is not None and \
                row.started_at is not None
            if row is None or (wait_for_complete and not complete):
                pause = _FIRST_PAUSE * (2 ** attempt)
                if max_wait is not None:
                    pause = min(pause, max(0.0, max_wait - (time.monotonic() - start)))
                self._session.cluster.reactor.make_event().wait(pause)
                attempt += 1
                continue
            self.request_type = row.request
            self.duration = datetime.timedelta(microseconds=row.duration) if complete \
                else None
            self.started_at = row.started_at
            self.coordinator = row.coordinator
            self.parameters = row.parameters
            self.client = getattr(row, "client", None)
            events = self._read(_EVENTS, query_cl, time.monotonic() - start, max_wait)
            self.events = tuple(TraceEvent(e.activity, e.event_id, e.source,
                                           e.source_elapsed, e.thread) for e in events)
            return

    def _read(self, query, consistency, spent, max_wait):
        timeout = None if max_wait is None else max(max_wait - spent, 0.001)
        statement = SimpleStatement(query, consistency_level=consistency)
        # rows with attributes, whatever row factory the session's default profile has
        from cqlreactor.query import named_tuple_factory    # query re-exports this module's names
        profile = _profile()(row_factory=named_tuple_factory)
        try:
            return list(self._session.execute(statement, (self.trace_id,), timeout=timeout,
                                              execution_profile=profile))
        except OperationTimedOut:
            raise TraceUnavailable("Trace information was not available within %f seconds"
                                   % (max_wait,))

    def __str__(self):
        return "%s [%s] coordinator: %s, started at: %s, duration: %s, parameters: %s" % (
            self.request_type, self.trace_id, self.coordinator, self.started_at,
            self.duration, self.parameters)
