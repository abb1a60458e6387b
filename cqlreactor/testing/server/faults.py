"""Faults, primes and the query log of the simulated cluster: the control operations.

Each public method here is one operation of the control channel (``control.py`` lists them):
  * ``stall(i, s)``: the node keeps reading but answers nothing for ``s`` seconds; then it
    answers what arrived meanwhile (like a long GC pause).
  * ``close_after(i, n)``: the node answers ``n`` more QUERY/PREPARE/EXECUTE/BATCH requests,
    then closes the connection that carries the next one without answering it.
  * ``corrupt_next_frame(i)``: the next response the node sends is corrupted: on a v5
    connection in segment mode one payload byte is flipped after the CRC32 was computed (the
    client sees a checksum mismatch); otherwise the frame's version byte becomes 0xFF.
  * ``prime(...)`` / ``clear()`` / ``served(i)``: canned answers, and what a node was asked.
The faults themselves act in ``protocol.py`` (close_after, corrupt_next_frame) and ``loop.py``
(stall: the loop stops handing a stalled node's bytes to the protocol).
"""

import time

from cqlreactor.testing.server import primes

__all__ = ["Faults"]


class Faults(object):
    """The control operations of ``ClusterServer`` (a mixin over the loop's state)."""

    # --- control operations ------------------------------------------------------------------

    def drop_connections(self, ref=None):
        nodes = self.nodes if ref is None else [self.node(ref)]
        count = 0
        for node in nodes:
            count += len(node.connections)
            self._close_node_connections(node)
        return count

    def stall(self, ref, seconds):
        node = self.node(ref)
        node.stalled_until = time.monotonic() + float(seconds)
        self.call_later(float(seconds), self._end_stall, node)
        return True

    def _end_stall(self, node):
        if node.stalled_until and time.monotonic() >= node.stalled_until - 1e-3:
            node.stalled_until = 0.0
            for conn in list(node.connections):
                if not conn.closed:
                    self._process(conn)

    def close_after(self, ref, n_requests):
        node = self.node(ref)
        node.close_after = int(n_requests)
        return True

    def corrupt_next_frame(self, ref):
        self.node(ref).corrupt_next = True
        return True

    def prime(self, **args):
        prime = primes.prime_from_args(args)
        if prime.node is not None:
            prime.node = self.node(prime.node).index
        self.primes.add(prime)
        return True

    def clear(self):
        self.primes.clear()
        # schema delays set by a test ("never" for a node) are faults too: back to the default
        self.engine.set_schema_delay(self.schema_delay)
        for node in self.nodes:
            node.stalled_until = 0.0
            node.close_after = None
            node.corrupt_next = False
            node.cache.clear()
            node.log.clear()
            for conn in list(node.connections):
                if not conn.closed:
                    self._process(conn)
        return True

    def served(self, ref, clear=False):
        node = self.node(ref)
        entries = [primes.describe_request(entry, self.prepared_text)
                   for entry in node.log]
        if clear:
            node.log.clear()
        return [e for e in entries if e is not None]

    def connections(self, ref=None):
        if ref is None:
            return [len(node.connections) for node in self.nodes]
        return len(self.node(ref).connections)

    def describe_nodes(self):
        infos = [node.describe() for node in self.nodes]
        engine_nodes = getattr(self.engine, "nodes", None) or []
        for info, node in zip(infos, self.nodes):
            engine_node = None
            if node.engine_index is not None and node.engine_index < len(engine_nodes):
                engine_node = engine_nodes[node.engine_index]
            info["tokens"] = [str(t) for t in getattr(engine_node, "tokens", ())]
            info["cached_answers"] = len(node.cache)     # the fast path's entries
        return infos
