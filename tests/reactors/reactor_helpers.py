"""Helpers shared by the reactor tests (imported by name: pytest puts this directory on
sys.path)."""

import os
import threading

from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.messages import QueryMessage, QueryParameters
from cqlreactor.reactors.base import Endpoint


def endpoint_of(cluster, server_hostname=None):
    return Endpoint(cluster.contact_points[0], cluster.port, server_hostname=server_hostname)


def query(text, values=None, consistency=ConsistencyLevel.ONE):
    return QueryMessage(text, QueryParameters(consistency, values=values))


class Collector(object):
    """Collects request callbacks; ``wait()`` uses the reactor's own wait primitive (so it
    yields to the hub under gevent/eventlet)."""

    def __init__(self, reactor, expected):
        self.expected = expected
        self.results = {}
        self.event = reactor.make_event()
        self.threads = set()

    def callback(self, key):
        def done(result):
            assert key not in self.results, "callback for %r ran twice" % (key,)
            self.results[key] = result
            self.threads.add(threading.get_ident())
            if len(self.results) >= self.expected:
                self.event.set()
        return done

    def wait(self, timeout=30.0):
        return self.event.wait(timeout)


def rows_of(result):
    if isinstance(result, BaseException):
        raise result
    return result.rows


def fork_supported():
    return hasattr(os, "fork")
