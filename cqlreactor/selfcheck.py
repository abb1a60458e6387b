"""``python -m cqlreactor selfcheck``: drive the sans-IO core end to end, in memory.

A client :class:`~cqlreactor.core.connection.Connection` talks to
:class:`~cqlreactor.testing.memory.MemoryServer`, a tiny CQL server built from the same core
messages and the server role of the core's framing (no sockets, no threads, no clock).  The run
covers the v5 handshake with segments, lz4 when installed, SASL PLAIN auth, a QUERY returning
rows, a request timeout and its orphaned stream id, and the fall back to v4 through
ProtocolVersionRejected.  ``MemoryServer`` and ``pump`` are re-exported here for the code and
docs that import them from this module.
"""

import sys

from .core import messages as m
from .core.auth import PlainTextAuthProvider
from .core.compression import available_compressors
from .core.connection import Connection
from .core.events import (ConnectionReady, ProtocolVersionRejected, RequestFailed,
                          ResponseReceived)
from .core.errors import OperationTimedOut
from .testing.memory import MemoryServer, pump

__all__ = ["MemoryServer", "pump", "run"]


# --- the self check -------------------------------------------------------------------------------

class _Report(object):
    def __init__(self, verbose):
        self.verbose = verbose
        self.failures = 0

    def check(self, label, ok, detail=""):
        if not ok:
            self.failures += 1
        if self.verbose:
            print("%-4s %s%s" % ("ok" if ok else "FAIL", label, (": " + detail) if detail else ""))
        return ok


def _connect(version, server, auth, compression):
    client = Connection(host="memory:9042", protocol_version=version, authenticator=auth,
                        compression=compression)
    client.initiate()
    return client, pump(client, server)


def _check_v5(report, compression):
    server = MemoryServer(versions=(3, 4, 5), credentials=("cassandra", "secret"))
    client, events = _connect(5, server, PlainTextAuthProvider("cassandra", "secret"),
                              compression)
    ready = [e for e in events if isinstance(e, ConnectionReady)]
    report.check("v5 handshake with auth%s" % (" and lz4" if compression else ""),
                 bool(ready) and client.is_ready,
                 "compression=%s, state=%s" % (client.compression, client.state.name))
    if not client.is_ready:
        return
    query = m.QueryMessage("SELECT k, v FROM ks.t", m.QueryParameters(consistency=1))
    stream = client.send_request(query, deadline=10.0)
    events = pump(client, server)
    rows = [e.message.rows for e in events if isinstance(e, ResponseReceived)]
    report.check("v5 QUERY returns rows in segments", rows == [[(1, "one"), (2, "two")]],
                 "stream %d, rows %r" % (stream, rows))

    server.held.add("SELECT slow")
    slow = client.send_request(m.QueryMessage("SELECT slow", m.QueryParameters(consistency=1)),
                               deadline=20.0)
    pump(client, server)
    deadline = client.next_deadline()
    events = client.handle_timeout(20.0)
    timed_out = [e for e in events if isinstance(e, RequestFailed)
                 and isinstance(e.error, OperationTimedOut) and e.stream_id == slow]
    report.check("request timeout fails the request once", deadline == 20.0 and len(timed_out) == 1,
                 str(timed_out[0].error) if timed_out else repr(events))
    report.check("timed-out stream id is kept as an orphan", client.orphaned == 1)
    server.release()
    late = pump(client, server)
    report.check("late answer is dropped and frees the id", late == [] and client.orphaned == 0)


def _check_v4_fallback(report):
    server = MemoryServer(versions=(3, 4))
    client, events = _connect(5, server, None, None)
    rejected = [e for e in events if isinstance(e, ProtocolVersionRejected)]
    report.check("v5 refused by a v4 server -> ProtocolVersionRejected(retry 4)",
                 len(rejected) == 1 and rejected[0].retry_version == 4 and client.is_defunct,
                 rejected[0].error.server_message if rejected else repr(events))
    if not rejected:
        return
    server = MemoryServer(versions=(3, 4))
    client, events = _connect(rejected[0].retry_version, server, None, "lz4" if
                              "lz4" in available_compressors() else None)
    report.check("v4 handshake on a new connection", client.is_ready,
                 "compression=%s" % (client.compression,))
    if client.is_ready:
        client.send_request(m.QueryMessage("SELECT k FROM ks.t", m.QueryParameters(consistency=1)))
        events = pump(client, server)
        report.check("v4 QUERY returns rows",
                     [e.message.rows for e in events if isinstance(e, ResponseReceived)]
                     == [[(1, "one"), (2, "two")]])


def run(verbose=True):
    """Run the in-memory self check; print a short report when ``verbose``.

    Returns:
        0 when every check passed, 1 otherwise.
    """
    report = _Report(verbose)
    lz4 = "lz4" if "lz4" in available_compressors() else None
    try:
        _check_v5(report, lz4)
        _check_v4_fallback(report)
    except Exception as exc:  # a crash is a failed check, reported, not a traceback
        report.check("selfcheck ran to the end", False, repr(exc))
    if verbose:
        print("selfcheck: %s" % ("all checks passed" if not report.failures
                                 else "%d check(s) FAILED" % report.failures))
    return 1 if report.failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
