"""Request metrics of a Cluster: ``Cluster(metrics_enabled=True)``, then ``cluster.metrics``.

The names follow cassandra-driver's ``cassandra.metrics.Metrics`` (``request_timer``,
``connection_errors``, ``write_timeouts``, ``read_timeouts``, ``unavailables``,
``other_errors``, ``retries``, ``ignores``, ``known_hosts``, ``connected_to``,
``open_connections``, ``get_stats()``, ``set_stats_name()``), without the ``scales``
dependency: counters are plain ints, ``request_timer`` a dict of seconds.  ``snapshot()`` adds
what cassandra-driver lacks: errors by exception class, requests in flight and latency
percentiles per coordinator.

How it is fed: the cluster adds :meth:`Metrics.on_request` as a request init listener to each
session (``Session.add_request_init_listener``), which puts one callback pair on the future; the
future tells :meth:`on_retry` / :meth:`on_ignore` when its retry policy retries or ignores an
error.  Latencies are kept in bounded reservoirs (the most recent ``RESERVOIR`` requests, overall
and per host), so memory stays flat and a snapshot costs one sort per reservoir.
"""

import collections
import math
import threading
import time
from typing import Any, Dict

from cqlreactor.core.errors import (ConnectionException, OperationTimedOut, ReadTimeout,
                                    Unavailable, WriteTimeout)

__all__ = ["Metrics", "RESERVOIR"]

#: latencies kept for the percentiles (overall and per host)
RESERVOIR = 2048

_PERCENTILES = (("median", 0.5), ("75percentile", 0.75), ("95percentile", 0.95),
                ("98percentile", 0.98), ("99percentile", 0.99), ("999percentile", 0.999))
_clock = time.perf_counter


def _percentile(ordered, fraction):
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _timer(count, samples):
    """cassandra-driver's request_timer keys over ``samples`` (seconds)."""
    stats = {"count": count, "min": 0.0, "max": 0.0, "mean": 0.0, "stddev": 0.0}
    stats.update((name, 0.0) for name, _ in _PERCENTILES)
    if samples:
        ordered = sorted(samples)
        mean = sum(ordered) / len(ordered)
        stats.update(min=ordered[0], max=ordered[-1], mean=mean,
                     stddev=math.sqrt(sum((x - mean) ** 2 for x in ordered) / len(ordered)))
        stats.update((name, _percentile(ordered, f)) for name, f in _PERCENTILES)
    return stats


def _error_bucket(exc):
    if isinstance(exc, WriteTimeout):
        return "write_timeouts"
    if isinstance(exc, ReadTimeout):
        return "read_timeouts"
    if isinstance(exc, Unavailable):
        return "unavailables"
    if isinstance(exc, (ConnectionException, OperationTimedOut)):
        return "connection_errors"
    return "other_errors"


class Metrics(object):
    """Counters and latencies of one Cluster's requests (every session of it)."""

    _instances = 0

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._lock = threading.Lock()
        Metrics._instances += 1
        self.stats_name = "cqlreactor-%d" % Metrics._instances
        self._requests = 0          # finished, either way
        self._started = 0
        self._counts = dict.fromkeys(("connection_errors", "write_timeouts", "read_timeouts",
                                      "unavailables", "other_errors", "retries", "ignores"), 0)
        self._by_kind = collections.Counter()  # type: collections.Counter
        self._latencies = collections.deque(maxlen=RESERVOIR)  # type: collections.deque
        self._per_host = {}  # type: Dict[str, collections.deque]

    # -- feeding (the request listener and the future's retry decisions) ---------------------

    def on_request(self, future: Any) -> None:
        """The request init listener: time ``future`` until its answer or error."""
        started = _clock()
        with self._lock:
            self._started += 1
        future.add_callbacks(self._on_success, self._on_error, callback_args=(future, started),
                             errback_args=(future, started))

    def _finish(self, host, elapsed):
        self._requests += 1
        self._latencies.append(elapsed)
        if host is not None:
            key = str(host)
            samples = self._per_host.get(key)
            if samples is None:
                samples = self._per_host[key] = collections.deque(maxlen=RESERVOIR)
            samples.append(elapsed)

    def _on_success(self, _rows, future, started):
        elapsed = _clock() - started
        with self._lock:
            self._finish(future.coordinator_host, elapsed)

    def _on_error(self, exc, future, started):
        elapsed = _clock() - started
        with self._lock:
            self._finish(future.coordinator_host or future._host(), elapsed)
            self._count_error(exc)

    def _count_error(self, exc):
        self._counts[_error_bucket(exc)] += 1
        self._by_kind[type(exc).__name__] += 1

    def on_retry(self, exc: Any = None) -> None:
        """The retry policy retried after ``exc`` (counted as an error of its kind too)."""
        with self._lock:
            self._counts["retries"] += 1
            if exc is not None:
                self._count_error(exc)

    def on_ignore(self, exc: Any = None) -> None:
        """The retry policy ignored ``exc`` (the request succeeded with no rows)."""
        with self._lock:
            self._counts["ignores"] += 1
            if exc is not None:
                self._count_error(exc)

    # -- cassandra-driver's names --------------------------------------------------------------

    @property
    def request_timer(self) -> Dict[str, float]:
        """count, min, max, mean, stddev, median, 75/95/98/99/999percentile (seconds)."""
        with self._lock:
            return _timer(self._requests, list(self._latencies))

    connection_errors = property(lambda self: self._counts["connection_errors"])
    write_timeouts = property(lambda self: self._counts["write_timeouts"])
    read_timeouts = property(lambda self: self._counts["read_timeouts"])
    unavailables = property(lambda self: self._counts["unavailables"])
    other_errors = property(lambda self: self._counts["other_errors"])
    retries = property(lambda self: self._counts["retries"])
    ignores = property(lambda self: self._counts["ignores"])

    @property
    def known_hosts(self) -> int:
        return len(self._cluster.metadata.all_hosts())

    @property
    def connected_to(self) -> int:
        return len(set(host for s in list(self._cluster.sessions) for host, pool
                       in list(s.pools.items()) if pool.open_count))

    @property
    def open_connections(self) -> int:
        return sum(pool.open_count for s in list(self._cluster.sessions)
                   for pool in list(s.pools.values()))

    @property
    def in_flight(self) -> int:
        """Requests started and not yet answered."""
        with self._lock:
            return self._started - self._requests

    def get_stats(self) -> Dict[str, Any]:
        """Every cassandra-driver metric by name (``request_timer`` a dict)."""
        stats = dict(self._counts)  # type: Dict[str, Any]
        stats.update(request_timer=self.request_timer, known_hosts=self.known_hosts,
                     connected_to=self.connected_to, open_connections=self.open_connections)
        return stats

    def set_stats_name(self, stats_name: str) -> None:
        """Rename this cluster's metrics (cassandra-driver registers them with scales under it;
        here the name is only this attribute)."""
        if not isinstance(stats_name, str) or not stats_name:
            raise ValueError("stats_name must be a non-empty string, not %r" % (stats_name,))
        self.stats_name = stats_name

    # -- the snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> Dict[str, Any]:
        """One consistent view: requests, errors (total, cassandra-driver's buckets and by
        exception class), retries, ignores, in_flight, latency (the request_timer dict) and
        per_host ({host: {"count", "median", "99percentile", ...}} of its recent requests)."""
        with self._lock:
            counts = dict(self._counts)
            by_kind = dict(self._by_kind)
            requests, in_flight = self._requests, self._started - self._requests
            latencies = list(self._latencies)
            per_host = dict((host, list(samples)) for host, samples in self._per_host.items())
        buckets = ("connection_errors", "write_timeouts", "read_timeouts", "unavailables",
                   "other_errors")
        return {
            "requests": requests,
            "errors": dict([("total", sum(by_kind.values())), ("by_kind", by_kind)]
                           + [(name, counts[name]) for name in buckets]),
            "retries": counts["retries"],
            "ignores": counts["ignores"],
            "in_flight": in_flight,
            "latency": _timer(requests, latencies),
            "per_host": dict((host, _timer(len(samples), samples))
                             for host, samples in per_host.items()),
        }

    def __repr__(self):
        return "<Metrics %s requests=%d in_flight=%d>" % (self.stats_name, self._requests,
                                                           self._started - self._requests)
