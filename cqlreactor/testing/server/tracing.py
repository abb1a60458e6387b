"""Query tracing in the simulated cluster: what a traced request leaves in system_traces.

A request whose frame carries the tracing flag is timed; when it is answered with a RESULT,
``Traced.finish`` records its session (coordinator, client, command, parameters, duration)
and a few events (parsing, preparing, the read or the mutation, completion, with the threads
Cassandra names) in the engine (``Engine.record_trace``), and the answer's body starts with
the session id (the response's tracing flag set).  The rows become readable a moment later
(``Engine.TRACE_DELAY``), the session row first without its duration, as with Cassandra's
asynchronous trace writes, so clients must poll as cassandra-driver does.
"""

import time

__all__ = ["Traced"]

_CONSISTENCY = {0: "ANY", 1: "ONE", 2: "TWO", 3: "THREE", 4: "QUORUM", 5: "ALL",
                6: "LOCAL_QUORUM", 7: "EACH_QUORUM", 8: "SERIAL", 9: "LOCAL_SERIAL",
                10: "LOCAL_ONE"}
_REQUESTS = {0x07: ("QUERY", "Execute CQL3 query"),
             0x0A: ("EXECUTE", "Execute CQL3 prepared query"),
             0x0D: ("BATCH", "Execute batch of CQL3 queries"),
             0x09: ("PREPARE", "Preparing CQL3 query")}


class Traced(object):
    """One traced request, from its start (construction) to its answer (``finish``)."""

    def __init__(self, server, conn, message, query_text):
        self.server = server
        self.conn = conn
        self.message = message
        self.query_text = query_text
        self.started_at = time.time()
        self._t0 = time.monotonic()

    def finish(self):
        """Record the trace; returns its session id (uuid)."""
        message = self.message
        duration = max(1, int((time.monotonic() - self._t0) * 1e6))
        command, request = _REQUESTS.get(message.opcode, ("QUERY", "Execute CQL3 query"))
        parameters = {}
        params = getattr(message, "parameters", None)
        consistency = params.consistency if params is not None else \
            getattr(message, "consistency", None)
        if consistency is not None:
            parameters["consistency_level"] = _CONSISTENCY.get(consistency, str(consistency))
        if params is not None and params.page_size:
            parameters["page_size"] = str(params.page_size)
        if params is not None and params.serial_consistency is not None:
            parameters["serial_consistency_level"] = _CONSISTENCY.get(
                params.serial_consistency, str(params.serial_consistency))
        text = self.query_text or ""
        if text:
            parameters["query"] = text
        verb = text.lstrip().split(None, 1)[0].upper() if text.strip() else command
        activities = [("Parsing %s" % text if text else "Parsing batch", 0.05),
                      ("Preparing statement", 0.15)]
        if verb == "SELECT":
            activities += [("Executing single-partition query", 0.35),
                           ("Acquiring sstable references", 0.45),
                           ("Merged data from memtables and 0 sstables", 0.7)]
            stage = "ReadStage-2"
        else:
            activities += [("Determining replicas for mutation", 0.35),
                           ("Appending to commitlog", 0.5), ("Adding to memtable", 0.7)]
            stage = "MutationStage-2"
        threads = ["Native-Transport-Requests-1", "Native-Transport-Requests-1", stage,
                   stage, stage]
        events = [(a, threads[i], duration * share)
                  for i, (a, share) in enumerate(activities)]
        events.append(("Request complete", "Native-Transport-Requests-1", duration))
        client = self.conn.peer[0] if isinstance(self.conn.peer, tuple) else None
        return self.server.engine.record_trace(
            self.conn.node.engine_index, client, command, request, parameters,
            self.started_at, duration, events)
