"""OpenTelemetry spans for cqlreactor requests (``pip install 'cqlreactor[otel]'``).

    from cqlreactor.contrib.otel import CassandraInstrumentor
    instrumentor = CassandraInstrumentor(tracer_provider=None, capture_statement=False)
    instrumentor.instrument(session)          # every execute / execute_async gets a span
    instrumentor.uninstrument(session)

Built on ``Session.add_request_init_listener``: the span starts on the thread that makes the
request (a child of the span current there) and ends when the answer or the error arrives, on the
reactor's loop.  Attributes follow OpenTelemetry's database conventions for Cassandra:
``db.system`` ("cassandra"), ``db.namespace`` (the keyspace), ``db.cassandra.consistency_level``,
``db.cassandra.coordinator.id`` / ``.dc`` and ``server.address`` (the coordinator that
answered), ``db.cassandra.page_size``; ``db.query.text`` (the statement's CQL, never its bound
values) only with ``capture_statement=True``.  A failed request records the exception and sets
the span's status to ERROR.
"""

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cqlreactor.core.consistency import consistency_name

__all__ = ["CassandraInstrumentor"]

_TRACER_NAME = "cqlreactor"


def _query_text(query):
    text = getattr(query, "query_string", None)
    if text is None and getattr(query, "prepared_statement", None) is not None:
        text = query.prepared_statement.query_string
    if text is None and hasattr(query, "_statements_and_parameters"):
        return "BATCH"
    return text


def _operation(text):
    if not text:
        return "CQL"
    return text.lstrip().split(None, 1)[0].upper() if text.strip() else "CQL"


class CassandraInstrumentor(object):
    """Adds an OpenTelemetry span to every request of the sessions it instruments.

    Args:
        tracer_provider: the provider to get the tracer from (default: the global one).
        capture_statement: also record the statement's CQL text as ``db.query.text`` (off by
            default: statements can carry data written inline).
    """

    def __init__(self, tracer_provider: Any = None,
                 capture_statement: bool = False) -> None:
        self.tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self.capture_statement = bool(capture_statement)

    def instrument(self, session: Any) -> Any:
        """Start tracing ``session``'s requests (idempotent)."""
        if not self.is_instrumented(session):
            session.add_request_init_listener(self._on_request)
        return session

    def uninstrument(self, session: Any) -> None:
        """Stop tracing ``session``'s requests (requests in flight still end their spans)."""
        if self.is_instrumented(session):
            session.remove_request_init_listener(self._on_request)

    def is_instrumented(self, session: Any) -> bool:
        return (self._on_request, (), {}) in session._request_init_callbacks

    def _on_request(self, future):
        query = future.query
        text = _query_text(query)
        session = future.session
        keyspace = getattr(query, "keyspace", None) or session.keyspace
        attributes = {"db.system": "cassandra"}
        if keyspace:
            attributes["db.namespace"] = keyspace
        fetch_size = getattr(query, "fetch_size", None)
        if isinstance(fetch_size, int) and fetch_size > 0:
            attributes["db.cassandra.page_size"] = fetch_size
        if self.capture_statement and text:
            attributes["db.query.text"] = text
        name = _operation(text)
        if keyspace:
            name = "%s %s" % (name, keyspace)
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        future.add_callbacks(self._on_answer, self._on_error, callback_args=(future, span),
                             errback_args=(future, span))

    @staticmethod
    def _finish(future, span):
        # a paged result calls back once per page: the span is the first page's request
        consistency = getattr(future, "_consistency", None)
        if consistency is None:
            consistency = getattr(future.query, "consistency_level", None)
        if consistency is not None:
            span.set_attribute("db.cassandra.consistency_level", consistency_name(consistency))
        host = future.coordinator_host
        if host is not None:
            if host.host_id is not None:
                span.set_attribute("db.cassandra.coordinator.id", str(host.host_id))
            if host.datacenter:
                span.set_attribute("db.cassandra.coordinator.dc", host.datacenter)
            span.set_attribute("server.address", str(host.address or host))

    def _on_answer(self, _rows, future, span):
        if not span.is_recording():
            return
        self._finish(future, span)
        span.end()

    def _on_error(self, exc, future, span):
        if not span.is_recording():
            return
        self._finish(future, span)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, "%s: %s" % (type(exc).__name__, exc)))
        span.end()
