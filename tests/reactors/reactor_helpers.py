"""Helpers shared by the reactor tests (imported by name: pytest puts this directory on
sys.path): the importable conformance suite's own."""

from cqlreactor.testing.conformance import Collector, endpoint_of, query, rows_of  # noqa: F401
