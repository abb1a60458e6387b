"""The framing of one connection, in either role: bare envelopes, then (v5) segments.

Every native protocol connection starts with bare envelopes (the v4-style 9-byte header and a
body).  The STARTUP request names the compression, and its answer marks the switch:

* v5: the answer to STARTUP (READY, or AUTHENTICATE when the server wants SASL) is the last
  bare envelope in each direction; every later envelope, the SASL exchange included, travels in
  segments (CRC-checked, lz4-compressed per segment when negotiated).  Cassandra 4 and
  cassandra-driver switch exactly there.  An ERROR answer switches nothing.
* v3/v4: frames throughout.  Negotiated compression applies to the frames we send after the
  answer to STARTUP; received frames are decompressed from STARTUP on (whatever carries
  FLAG_COMPRESSION), since the spec allows a server to compress its answer to STARTUP.

:class:`Framing` holds that rule for both ends of a connection, like h11's ``our_role``: the
client (:mod:`cqlreactor.core.connection`) and the servers of :mod:`cqlreactor.testing` drive
the same object, so they cannot agree on a mistake.  It knows frames, not messages: the caller
encodes and decodes messages, and says once, with :meth:`Framing.startup`, that STARTUP went
out (client) or was accepted (server) and with which compressor.  The switch then happens by
itself at the right byte: in the client role right after the answer to STARTUP is *returned* by
iteration, so the bytes already buffered behind it are decoded as segments; in the server role
when the answer is passed to :meth:`Framing.send`, so it is the last envelope sent bare and the
client's bytes buffered after STARTUP are read as segments.

API (stable; the simulated server uses it too)::

    framing = Framing(CLIENT, version=5)       # or Framing(SERVER): version learnt from frames
    framing.send(envelope)                     # queue one encoded envelope (bytes)
    wire = framing.data_to_send()              # bare before the switch, segments after
    for frame in framing.receive_data(data):   # complete Frame objects, in order
        ...                                    # STARTUP seen/sent: framing.startup(compressor)
    for stream, head in framing.raw():         # the same, as (stream, (version byte, flags,
        ...                                    #   opcode, body)) tuples: no Frame built
    framing.switched, framing.version, framing.compressor, framing.queue, framing.discard()

Iteration raises what the decoders raise: FrameTooLarge, UnsupportedProtocolVersion
(``requested`` the version byte, ``stream_id`` the frame's: what a server needs to answer a v6
STARTUP), ChecksumMismatch (a segment CRC), ProtocolError (anything else malformed).  A bad
segment does not hide the frames completed before it: iteration yields them, then raises.
Errors are sticky.
"""

from .errors import IllegalStateTransition, ProtocolError
from .frames import (DEFAULT_MAX_FRAME_SIZE, FLAG_COMPRESSION, HEADER_LENGTH, RESPONSE_BIT,
                     SUPPORTED_VERSIONS, FrameDecoder, encode_frame, unpack_header)
from .segments import SegmentDecoder, SegmentEncoder

__all__ = ["Framing", "CLIENT", "SERVER"]

CLIENT = "client"
SERVER = "server"

# Opcodes of the answers to STARTUP that switch the framing (messages.ReadyMessage.opcode and
# AuthenticateMessage.opcode; a unit test checks they agree).  Kept here so that the framing
# layer does not depend on the message layer above it.
_SWITCHING_ANSWERS = frozenset((0x02, 0x03))


class Framing(object):
    """Framing state of one connection: bytes in, frames out; envelopes in, bytes out.

    Args:
        our_role: CLIENT or SERVER.
        version: the client's protocol version (3, 4 or 5); in the server role leave it None:
            it follows the frames received before the switch (the STARTUP's version wins).
        max_frame_size: the largest envelope body accepted.
        versions: the versions accepted in received headers before the switch (a client gets
            errors in the version the server speaks; a server must see a version it refuses
            to answer it).  After the switch only ``version`` is accepted.

    Attributes:
        our_role: CLIENT or SERVER.
        version: the connection's protocol version (server role: None until a frame arrived).
        compressor: the negotiated compressor (from :meth:`startup`), or None.
        switched: True once the answer to STARTUP has passed (v5: segments from here on).
        queue: the encoded envelopes waiting for :meth:`data_to_send`.  :meth:`send` appends
            to it; a hot path that needs no answer spotting (the client role always) may append
            to it directly.  Never rebind it.
    """

    __slots__ = ("our_role", "version", "compressor", "switched", "queue", "max_frame_size",
                 "_frames", "_segments", "_seg_encoder", "_frame_compressor", "_bare",
                 "_awaiting", "_error")

    def __init__(self, our_role, version=None, max_frame_size=DEFAULT_MAX_FRAME_SIZE,
                 versions=SUPPORTED_VERSIONS):
        if our_role != CLIENT and our_role != SERVER:
            raise ValueError("our_role must be CLIENT or SERVER, not %r" % (our_role,))
        if our_role == CLIENT and version not in SUPPORTED_VERSIONS:
            raise ValueError("a client framing needs a protocol version among %s, not %r"
                             % (", ".join(map(str, SUPPORTED_VERSIONS)), version))
        self.our_role = CLIENT if our_role == CLIENT else SERVER
        self.version = version
        self.max_frame_size = max_frame_size
        self.compressor = None
        self.switched = False
        self.queue = []
        self._frames = FrameDecoder(max_frame_size, versions=versions)
        self._segments = None           # v5, once switched: segments in
        self._seg_encoder = None        # v5, once switched: segments out
        self._frame_compressor = None   # v3/v4, once switched: compress what we send
        self._bare = b""                # bytes encoded before the switch, not yet taken
        self._awaiting = False          # STARTUP passed, its answer not yet
        self._error = None              # a segment error, raised after the frames before it

    def __repr__(self):
        return "<Framing %s v%s %s>" % (self.our_role, self.version,
                                        "switched" if self.switched else "bare")

    # --- negotiation --------------------------------------------------------------------------

    def startup(self, compressor=None):
        """STARTUP went out (client role) or was accepted (server role), naming ``compressor``.

        From now on received v3/v4 frames may be compressed; the next answer to STARTUP (the
        client receiving it, the server sending it) switches the framing when it is READY or
        AUTHENTICATE.

        Raises:
            IllegalStateTransition: the framing has already switched (STARTUP is sent once).
            ValueError: a v5 connection and a compressor that cannot compress segments, or a
                server role that has received no frame yet (no version).
        """
        if self.switched:
            raise IllegalStateTransition("STARTUP after the framing switched")
        version = self.version
        if version is None:
            raise ValueError("startup() before any frame: the protocol version is not known")
        if compressor is not None and version >= 5 and not compressor.supports_segments:
            raise ValueError("%s compression cannot be used with v5 segments" % (compressor.name,))
        self.compressor = compressor
        if version < 5:
            self._frames.compressor = compressor
        self._awaiting = True

    # --- receiving ----------------------------------------------------------------------------

    def receive_data(self, data):
        """Feed received bytes; return an iterator over the frames now complete.

        Once switched (and no segment error pending) the iterator is the frame decoder itself,
        so the per-frame cost is the decoder's alone.  Iterating the framing (``for frame in
        framing``) is the same.
        """
        frames = self._frames
        segments = self._segments
        if segments is not None:
            segments.add_data(data)
            try:
                for payload in segments:
                    frames.add_data(payload)
            except ProtocolError as exc:
                self._error = exc
        else:
            frames.add_data(data)
        if self.switched and self._error is None:
            return frames
        return self

    def __iter__(self):
        if self.switched and self._error is None:
            return self._frames
        return self

    def raw(self):
        """Iterate the frames now complete as ``FrameDecoder.raw`` does: ``(stream, (version
        byte, flags, opcode, body))`` tuples, the framing switching as it does for frames.
        Once switched (and no segment error pending) this is the frame decoder's own raw
        iteration, the cheapest way through a connection's frames."""
        if self.switched and self._error is None:
            return self._frames.raw()
        return self._raw_before_switch()

    def _raw_before_switch(self):
        for frame in self:
            yield frame.stream, (frame.version | (RESPONSE_BIT if frame.is_response else 0),
                                 frame.flags, frame.opcode, frame.body)

    def __next__(self):
        try:
            frame = next(self._frames)
        except StopIteration:
            if self._error is not None:
                raise self._error
            raise
        if not self.switched:
            if self.our_role is SERVER:
                self.version = frame.version
            elif self._awaiting:        # the first frame after STARTUP is its answer
                self._answered(frame.opcode)
        return frame

    # --- sending ------------------------------------------------------------------------------

    def send(self, envelope):
        """Queue one encoded envelope (bytes, uncompressed: v3/v4 compression is applied by
        :meth:`data_to_send` once switched; an envelope already carrying FLAG_COMPRESSION is
        sent as it is)."""
        self.queue.append(envelope)
        if self._awaiting and self.our_role is SERVER and envelope[0] & RESPONSE_BIT:
            self._answered(envelope[4])

    def data_to_send(self):
        """Return (and forget) the bytes for the peer: the envelopes queued so far, bare before
        the switch, after it coalesced into self-contained segments (an envelope over one
        segment's payload is split over non-self-contained ones), or compressed (v3/v4).
        b"" when nothing is queued."""
        queue = self.queue
        if not queue:
            bare = self._bare
            if bare:
                self._bare = b""
            return bare
        if self._seg_encoder is not None:
            data = self._seg_encoder.encode(queue)
        elif self._frame_compressor is not None:
            data = b"".join(self._compressed(queue))
        elif len(queue) == 1:
            data = queue[0]
        else:
            data = b"".join(queue)
        del queue[:]
        if self._bare:
            data = self._bare + data
            self._bare = b""
        return data

    def discard(self):
        """Forget everything queued for sending (the connection is closing or failed)."""
        del self.queue[:]
        self._bare = b""

    # --- the switch ---------------------------------------------------------------------------

    def _answered(self, opcode):
        self._awaiting = False
        if opcode in _SWITCHING_ANSWERS:
            self._switch()

    def _switch(self):
        # What is queued was encoded before the switch: it goes out bare, before anything else.
        queue = self.queue
        if queue:
            self._bare += b"".join(queue)
            del queue[:]
        self.switched = True
        version = self.version
        frames = self._frames
        if version < 5:
            frames.versions = frozenset((version,))
            self._frame_compressor = self.compressor
            return
        rest = frames.drain()       # bytes behind the answer to STARTUP: already segments
        self._frames = FrameDecoder(self.max_frame_size, versions=(version,))
        self._segments = SegmentDecoder(self.compressor)
        self._seg_encoder = SegmentEncoder(self.compressor)
        if rest:
            self.receive_data(rest)

    def _compressed(self, envelopes):
        compressor = self._frame_compressor
        for envelope in envelopes:
            version_byte, flags, stream, opcode, _ = unpack_header(envelope, 0)
            if flags & FLAG_COMPRESSION:
                yield envelope
                continue
            yield encode_frame(version_byte & 0x7F, stream, opcode,
                               envelope[HEADER_LENGTH:], flags,
                               bool(version_byte & RESPONSE_BIT), compressor)
