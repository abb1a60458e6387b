"""Client-side write timestamps (``cassandra.timestamps``'s names and behaviour).

Every request a session sends carries a default timestamp from the cluster's
``timestamp_generator`` (as cassandra-driver does by default), so the order of rapid writes from
one client is the order the client made them, whichever coordinator each one reached.
"""

import logging
import threading
import time

__all__ = ["MonotonicTimestampGenerator"]

log = logging.getLogger(__name__)


class MonotonicTimestampGenerator(object):
    """Called, returns microseconds since the epoch, strictly increasing per generator: when the
    clock does not advance (or goes back) the timestamp moves one microsecond past the last one,
    drifting ahead of the clock; a drift beyond ``warning_threshold`` seconds is logged at most
    every ``warning_interval`` seconds when ``warn_on_drift``."""

    def __init__(self, warn_on_drift=True, warning_threshold=1, warning_interval=1):
        self.lock = threading.Lock()
        self.last = 0
        self._last_warn = 0
        self.warn_on_drift = warn_on_drift
        self.warning_threshold = warning_threshold
        self.warning_interval = warning_interval

    def _next_timestamp(self, now, last):
        """The timestamp to hand out at clock ``now`` (microseconds) after ``last``."""
        if now > last:
            self.last = now
            return now
        self._maybe_warn(now)
        self.last = last + 1
        return self.last

    def __call__(self):
        with self.lock:
            return self._next_timestamp(int(time.time() * 1e6), self.last)

    def _maybe_warn(self, now):
        drift = self.last - now
        if (self.warn_on_drift and drift >= self.warning_threshold * 1e6
                and now - self._last_warn >= self.warning_interval * 1e6):
            log.warning("client-side timestamps are %.3f s ahead of the clock: it went back, or "
                        "more than a million requests per second are made", drift / 1e6)
            self._last_warn = now
