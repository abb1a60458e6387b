"""Stream ids, the in-flight table, orphans and request deadlines of one connection.

One small :class:`InFlight` object per request awaiting an answer, keyed by stream id.  An id is
never handed out again while its request is in flight, nor while it is *orphaned*: a request
whose deadline passed has been failed towards the caller, but the server may still answer it,
so its id stays reserved until that late answer arrives (then it is freed silently, never
misrouted to a newer request) or the connection goes away.

Deadlines live on a heap with lazy deletion: answering a request only flips its ``active`` flag,
and dead entries are dropped when they reach the top, so ``next_deadline()`` is O(1) amortised
with thousands in flight.  The heap is rebuilt when dead entries outnumber live ones, which keeps
its size proportional to the requests actually in flight.
"""

import heapq

from .errors import ConnectionBusy, StreamIdsExhausted

__all__ = ["InFlight", "StreamTable", "MAX_STREAMS", "KIND_REQUEST", "KIND_HEARTBEAT"]

MAX_STREAMS = 32768        # ids 0..32767 (the positive half of the signed 16-bit stream field)

KIND_REQUEST = 0           # a caller's request: answered with ResponseReceived / RequestFailed
KIND_HEARTBEAT = 1         # the connection's own OPTIONS heartbeat: answered internally

_heappush = heapq.heappush
_heappop = heapq.heappop


_new_record = object.__new__


class InFlight(object):
    """One request awaiting its answer.

    Attributes:
        stream_id: its stream id.
        opcode: the request's opcode (for error context).
        message: the request message.
        result_metadata: column metadata to decode a Rows answer sent without metadata
            (EXECUTE with skip_metadata), or None.
        deadline: absolute monotonic time after which it times out, or None.
        kind: KIND_REQUEST or KIND_HEARTBEAT.
        orphaned: True once it timed out; its id stays reserved until the late answer.
        active: True while an answer or a timeout is still expected for it.
    """

    __slots__ = ("stream_id", "opcode", "message", "deadline", "kind", "orphaned", "active",
                 "result_metadata")

    def __init__(self, stream_id, opcode, message, deadline, kind, result_metadata=None):
        self.stream_id = stream_id
        self.opcode = opcode
        self.message = message
        self.result_metadata = result_metadata
        self.deadline = deadline
        self.kind = kind
        self.orphaned = False
        self.active = True

    def __repr__(self):
        return "InFlight(stream_id=%d, opcode=0x%02X, deadline=%r%s)" % (
            self.stream_id, self.opcode, self.deadline, ", orphaned" if self.orphaned else "")


class StreamTable(object):
    """Allocates stream ids and keeps the requests in flight on one connection.

    Args:
        max_streams: how many ids exist (ids are 0 .. max_streams-1).
        max_in_flight: backpressure limit on requests in flight (orphans not counted).
        host: names the connection in errors.
    """

    __slots__ = ("max_streams", "max_in_flight", "host", "_records", "_free", "_next_fresh",
                 "_heap", "_seq", "_timed", "in_flight", "orphaned")

    def __init__(self, max_streams=MAX_STREAMS, max_in_flight=MAX_STREAMS, host=""):
        if not 1 <= max_streams <= MAX_STREAMS:
            raise ValueError("max_streams must be within 1..%d" % (MAX_STREAMS,))
        self.max_streams = max_streams
        self.max_in_flight = max_in_flight
        self.host = host
        self._records = {}          # stream id -> InFlight (in flight or orphaned)
        self._free = []             # ids freed after use (reused LIFO)
        self._next_fresh = 0        # ids >= this were never handed out
        self._heap = []             # (deadline, seq, InFlight); dead entries dropped lazily
        self._seq = 0
        self._timed = 0             # active records with a deadline (live heap entries)
        self.in_flight = 0          # active records (awaiting an answer, not orphaned)
        self.orphaned = 0

    def __len__(self):
        """Ids in use (in flight + orphaned)."""
        return len(self._records)

    def __contains__(self, stream_id):
        return stream_id in self._records

    def get(self, stream_id):
        """The record on ``stream_id`` or None."""
        return self._records.get(stream_id)

    def allocate(self, opcode, message=None, deadline=None, kind=KIND_REQUEST,
                 result_metadata=None):
        """Reserve a stream id for a new request and return its :class:`InFlight`.

        Raises:
            ConnectionBusy: ``max_in_flight`` requests are in flight (KIND_REQUEST only).
            StreamIdsExhausted: every id is in flight or orphaned.
        """
        free = self._free
        if not free and self._next_fresh >= self.max_streams:
            raise StreamIdsExhausted(
                "all %d stream ids are in use (%d in flight, %d orphaned by timeouts)" % (
                    self.max_streams, self.in_flight, self.orphaned),
                host=self.host, opcode=opcode)
        if kind == KIND_REQUEST and self.in_flight >= self.max_in_flight:
            raise ConnectionBusy("%d requests in flight (max_in_flight)" % (self.in_flight,),
                                 host=self.host, opcode=opcode)
        if free:
            stream_id = free.pop()
        else:
            stream_id = self._next_fresh
            self._next_fresh = stream_id + 1
        # InFlight(...) written out (keep in step with its __init__): once per request
        record = _new_record(InFlight)
        record.stream_id = stream_id
        record.opcode = opcode
        record.message = message
        record.result_metadata = result_metadata
        record.deadline = deadline
        record.kind = kind
        record.orphaned = False
        record.active = True
        self._records[stream_id] = record
        self.in_flight += 1
        if deadline is not None:
            self._seq += 1
            heap = self._heap
            _heappush(heap, (deadline, self._seq, record))
            self._timed += 1
            if len(heap) > 1024 and len(heap) > 2 * self._timed:
                self._compact()
        return record

    def release(self, stream_id):
        """An answer arrived on ``stream_id``: free the id and return its record (None when the
        id was not in use).  The caller checks ``record.orphaned`` to drop late answers."""
        record = self._records.pop(stream_id, None)
        if record is None:
            return None
        self._free.append(stream_id)
        if record.orphaned:
            self.orphaned -= 1
        else:
            record.active = False
            self.in_flight -= 1
            if record.deadline is not None:
                self._timed -= 1
        return record

    def next_deadline(self):
        """The earliest deadline of an active request, or None."""
        heap = self._heap
        while heap:
            entry = heap[0]
            if entry[2].active:
                return entry[0]
            _heappop(heap)
        return None

    def expire(self, now):
        """Orphan every active request whose deadline is <= ``now``; return them (oldest
        first).  Their ids stay reserved until their late answers arrive."""
        heap = self._heap
        expired = []
        while heap and heap[0][0] <= now:
            record = _heappop(heap)[2]
            if record.active:
                record.active = False
                record.orphaned = True
                self.in_flight -= 1
                self.orphaned += 1
                self._timed -= 1
                expired.append(record)
        return expired

    def orphan(self, stream_id):
        """The caller gave up on the request on ``stream_id`` (cancelled): treat it as timed out
        now -- no longer in flight, its id reserved until the late answer.  Returns the record,
        or None when the id is not awaiting an answer (answered, already orphaned)."""
        record = self._records.get(stream_id)
        if record is None or not record.active:
            return None
        record.active = False
        record.orphaned = True
        self.in_flight -= 1
        self.orphaned += 1
        if record.deadline is not None:
            self._timed -= 1
        return record

    def drain(self):
        """Forget every record (the connection is going away); return the ones still awaiting
        an answer (not orphaned: those were already failed), in stream id order."""
        pending = [r for r in self._records.values() if r.active]
        pending.sort(key=lambda r: r.stream_id)
        for record in pending:
            record.active = False
        self._records.clear()
        self._free = []
        self._next_fresh = 0
        self._heap = []
        self._timed = 0
        self.in_flight = 0
        self.orphaned = 0
        return pending

    def _compact(self):
        heap = [entry for entry in self._heap if entry[2].active]
        heapq.heapify(heap)
        self._heap = heap
