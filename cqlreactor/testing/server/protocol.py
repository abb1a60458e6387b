"""The CQL side of the simulated server: frames in, answers out (a part of ``ClusterServer``).

Handshake (as Cassandra 4): OPTIONS -> SUPPORTED; STARTUP -> READY, or AUTHENTICATE
(PasswordAuthenticator, SASL PLAIN) -> AUTH_SUCCESS or ERROR 0x0100.  Compression and, on v5,
segments start right after the answer to STARTUP (AUTHENTICATE included), both directions.  A
first frame of a version the node lacks gets ERROR 0x000A naming the supported versions, in a
frame of the highest version it speaks below the one asked (v1/v2: the client's own header).

The framing is the core's ``Framing`` in the server role (one per connection): this module
hands it the bytes read, iterates the frames it completes, and sends through it; it decides
where v5 segments and v3/v4 compression start (right after the answer to STARTUP), so the
simulator and the client apply the same rule.  The server adds its own policy around it:
which versions it speaks, v1/v2 first frames answered in their 8-byte header, and the faults.

Requests go to the primes (``primes.py``) and then to the CQL engine; its results are encoded
with ``cqlreactor.core.results`` (the same classes the client decodes with), the cells already
serialized.  A repeated request whose answer cannot change is answered from the per-node cache
of the fast path (``_process``; loop.py says why).
"""

import hashlib
import re
import struct

from cqlreactor.core import messages, results, wire
from cqlreactor.core.errors import ProtocolError, UnsupportedProtocolVersion
from cqlreactor.core.frames import Frame
from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.testing.engine.parser import parse as parse_statement
from cqlreactor.testing.engine.results import Prepared, Rows, SchemaChange, SetKeyspace, Void
from cqlreactor.testing.server import primes, tracing
from cqlreactor.testing.server.state import (
    AUTH_RESPONSE, AUTH_SUCCESS, AUTHENTICATE, AUTHENTICATING, AUTHENTICATOR, BAD_CREDENTIALS,
    BATCH, ERROR, EXECUTE, NEW, OPCODE_NAMES, OPTIONS, PREPARE, PROTOCOL_ERROR, QUERY,
    READY, READY_PHASE, REGISTER, REQUEST_OPCODES, RESULT, SERVER_ERROR, STARTED, STARTUP,
    SUPPORTED)

__all__ = ["Protocol", "error_body"]

_HEADER = struct.Struct(">BBhBi")
_pack_header = _HEADER.pack
_STREAM = struct.Struct(">h")
_unpack_stream = _STREAM.unpack_from
# Every stream id packed, indexed by the id (a negative one indexes from the end, which is its
# two's complement): a list index is half the cost of packing on the fast path.  About 3 MB.
_STREAM_BYTES = [struct.pack(">H", stream) for stream in range(0x10000)]
_NO_CACHE = {}
_STAMPED_OPCODES = (QUERY, EXECUTE)
_ROWS_KIND = b"\x00\x00\x00\x02"
_DEFAULT_TIMESTAMP = 0x20


def timestampless_key(key):
    """A QUERY or EXECUTE request key (version byte, flags, opcode, body) without the
    client-side default timestamp in its query parameters (the flag cleared, the 8 bytes
    gone): the key a read's answer is cached under.  Any other key, a request with a custom
    payload or one that cannot be read, is returned as it is."""
    version_byte, frame_flags, opcode, body = key
    if opcode not in _STAMPED_OPCODES or frame_flags & 0x04:
        return key
    version = version_byte & 0x7F
    try:
        if opcode == QUERY:
            _, pos = wire.read_long_string(body, 0)
        else:
            _, pos = wire.read_short_bytes(body, 0)
            if version >= 5:
                _, pos = wire.read_short_bytes(body, pos)
        flags_at = pos + 2                          # after the consistency
        width = 4 if version >= 5 else 1
        flags = int.from_bytes(body[flags_at:flags_at + width], "big")
        if not flags & _DEFAULT_TIMESTAMP:
            return key
        pos = flags_at + width
        if flags & 0x01:                            # values
            n, pos = wire.read_short(body, pos)
            for _ in range(n):
                if flags & 0x40:                    # names for values
                    _, pos = wire.read_string(body, pos)
                size = int.from_bytes(body[pos:pos + 4], "big", signed=True)
                pos += 4 + max(size, 0)
        if flags & 0x04:                            # page size
            pos += 4
        if flags & 0x08:                            # paging state
            _, pos = wire.read_bytes(body, pos)
        if flags & 0x10:                            # serial consistency
            pos += 2
        if pos + 8 > len(body):
            return key
    except (ProtocolError, IndexError, ValueError):
        return key
    new_flags = (flags & ~_DEFAULT_TIMESTAMP).to_bytes(width, "big")
    return (version_byte, frame_flags, opcode,
            body[:flags_at] + new_flags + body[flags_at + width:pos] + body[pos + 8:])


class Protocol(object):
    """The frame, handshake and request methods of ``ClusterServer`` (a mixin: it uses the
    loop's ``_write``, ``_close_after_flush``, ``call_later`` and the topology's
    ``_broadcast_event``)."""

    # --- frames ------------------------------------------------------------------------------

    def _receive(self, conn, data):
        """Hand bytes read from ``conn`` to its framing (``_process`` takes the frames)."""
        if conn.phase != READY_PHASE:
            # the handshake's first bytes: a v1/v2 header or a bare envelope where segments
            # were due is answered from them (see _framing_failure)
            conn.head = (conn.head + data)[:16] if conn.phase == NEW else data[:16]
        conn.framing.receive_data(data)

    def _process(self, conn):
        """Handle every complete frame received on ``conn``; answer them with one write."""
        if conn.phase == NEW and self._old_client(conn):
            return
        node = conn.node
        if node.cache_version != self.primes.version:
            node.cache.clear()
            node.cache_version = self.primes.version
        cache = node.cache if conn.phase == READY_PHASE and not node.faulty else _NO_CACHE
        framing = conn.framing
        queue = framing.queue
        log = node.log.append
        streams = _STREAM_BYTES
        try:
            for stream, key in framing.raw():
                hit = cache.get(key)
                if hit is None and key[2] in _STAMPED_OPCODES and cache:
                    # a read's answer does not depend on the client's timestamp
                    hit = cache.get(timestampless_key(key))
                if hit is not None:
                    # the fast path: a known answer with this request's stream id; after the
                    # switch, so appending to the queue is all the framing needs
                    queue.append(hit[0] + streams[stream] + hit[1])
                    if hit[2]:
                        log((conn.id, key))
                    continue
                version_byte, flags, opcode, body = key
                self._handle_frame(conn, Frame(version_byte & 0x7F, flags, stream, opcode, body,
                                               version_byte > 0x7F), key)
                if conn.closed or conn.closing:
                    return
                # The slow path may have made the connection ready or started a fault.
                cache = node.cache if conn.phase == READY_PHASE and not node.faulty \
                    else _NO_CACHE
        except ProtocolError as exc:
            self._framing_failure(conn, exc)
            return
        self._flush(conn)

    def _flush(self, conn):
        """Write what the framing has for the peer (segments after a v5 switch)."""
        data = conn.framing.data_to_send()
        if data:
            self._write(conn, data)

    def _old_client(self, conn):
        """A v1/v2 first frame (an 8-byte header the framing does not read): answered here in
        the client's own header, as Cassandra does.  True when the connection is done."""
        head = conn.head
        if not head or not 1 <= head[0] < 3:
            return False
        if len(head) < 3:
            return True
        stream = head[2] if head[2] < 128 else head[2] - 256
        self._unsupported_version(conn, head[0], stream)
        return True

    def _unsupported_version(self, conn, version, stream):
        lower = [v for v in self.protocol_versions if v <= version]
        reply_version = lower[-1] if lower else (version if version < 3
                                                 else self.protocol_versions[0])
        self._protocol_failure(
            conn, stream, "Invalid or unsupported protocol version (%d); supported versions "
            "are (%s)" % (version, ", ".join("%d/v%d" % (v, v) for v in self.protocol_versions)),
            frame_version=reply_version)

    def _framing_failure(self, conn, exc):
        """The framing met bytes it cannot read: answer what the client can read, then close."""
        stream = getattr(exc, "stream_id", None) or 0
        if conn.phase == NEW:
            if isinstance(exc, UnsupportedProtocolVersion):
                self._unsupported_version(conn, exc.requested, stream)
                return
            if not conn.head or conn.head[0] not in self.protocol_versions:
                self._not_cql(conn)
                return
        if conn.phase == AUTHENTICATING and conn.version == 5 and conn.head[:1] == b"\x05":
            # A client that waits for AUTH_SUCCESS before switching: tell it why, in the bare
            # framing it still reads.
            stream = _unpack_stream(conn.head, 2)[0] if len(conn.head) >= 4 else 0
            self._protocol_failure(
                conn, stream, "Invalid frame: protocol v5 switches to segments right after the "
                "answer to STARTUP (AUTHENTICATE included), but a bare envelope arrived",
                frame_version=5)
            return
        self._protocol_failure(conn, stream, exc.message or str(exc))

    def _not_cql(self, conn):
        version = conn.head[0] & 0x7F if conn.head else 0
        self._protocol_failure(conn, 0, "Invalid or unsupported protocol version (%d); this is "
                               "not a CQL request" % (version,),
                               frame_version=self.protocol_versions[-1])

    def _protocol_failure(self, conn, stream, message, frame_version=None):
        """Answer ERROR ProtocolError and close the connection once that is written.

        ``frame_version``: answer in one bare frame of that version, outside the connection's
        framing (the client cannot read that framing: another version, or no switch yet).
        """
        version = frame_version or conn.version or self.protocol_versions[-1]
        body = messages.ErrorMessage(PROTOCOL_ERROR, message).encode_body(version)
        if version < 3:
            frame = struct.pack(">BBbBi", version | 0x80, 0, stream, ERROR, len(body)) + body
        else:
            frame = _pack_header(version | 0x80, 0, stream, ERROR, len(body)) + body
        if frame_version is None:
            conn.framing.send(frame)
            self._flush(conn)
        else:
            self._flush(conn)
            self._write(conn, frame)
        self._close_after_flush(conn)

    def _frame(self, conn, stream, opcode, body, flags=0):
        return _pack_header(conn.version | 0x80, flags, stream, opcode, len(body)) + body

    def _reply(self, conn, stream, opcode, body, cache_key=None, logged=False, flags=0):
        """Queue one response; with cache_key, remember it for the fast path."""
        node = conn.node
        frame = self._frame(conn, stream, opcode, body, flags)
        if node.corrupt_next:
            node.corrupt_next = False
            self._send_corrupted(conn, frame)
            return
        conn.framing.send(frame)
        if cache_key is not None and conn.phase == READY_PHASE and len(node.cache) < 10000:
            node.cache[cache_key] = (frame[:2], frame[4:], logged)

    def _send_corrupted(self, conn, frame):
        """corrupt_next_frame: the frame goes out on its own, broken where the client checks."""
        self._flush(conn)
        framing = conn.framing
        framing.send(frame)
        data = bytearray(framing.data_to_send())
        if conn.version >= 5 and framing.switched:
            # one payload byte flipped after the CRC32 was computed: a checksum mismatch
            data[8 if framing.compressor is not None else 6] ^= 0xFF
        else:
            data[0] = 0xFF          # the version byte
        self._write(conn, bytes(data))

    # --- the slow path -----------------------------------------------------------------------

    def _handle_frame(self, conn, frame, key):
        stream = frame.stream
        opcode = frame.opcode
        if conn.phase == NEW:
            if frame.is_response:
                self._not_cql(conn)
                return
            conn.version = frame.version
            conn.phase = STARTED
        elif frame.is_response or frame.version != conn.version:
            self._protocol_failure(
                conn, stream, "frame of protocol version %d on a connection of version %d"
                % (frame.version, conn.version))
            return
        body = frame.body
        try:
            body = primes.strip_request_extras(frame.flags, body)
            if opcode == OPTIONS:
                self._reply(conn, stream, SUPPORTED, self.supported_body,
                            cache_key=key)
            elif conn.phase == STARTED:
                if opcode == STARTUP:
                    self._on_startup(conn, stream, body)
                else:
                    self._reply_error(conn, stream, PROTOCOL_ERROR,
                                      "Unexpected message %s, expecting STARTUP or OPTIONS"
                                      % (OPCODE_NAMES.get(opcode, "0x%02X" % opcode),))
            elif conn.phase == AUTHENTICATING:
                if opcode == AUTH_RESPONSE:
                    self._on_auth_response(conn, stream, body)
                else:
                    self._reply_error(conn, stream, PROTOCOL_ERROR,
                                      "Unexpected message %s, expecting AUTH_RESPONSE"
                                      % (OPCODE_NAMES.get(opcode, "0x%02X" % opcode),))
            elif opcode == REGISTER:
                events, _ = wire.read_string_list(body, 0)
                for event in events:
                    if event not in ("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"):
                        raise ProtocolError("Invalid value '%s' for Type" % (event,))
                conn.registered = conn.registered | frozenset(events)
                self._reply(conn, stream, READY, b"")
            elif opcode in REQUEST_OPCODES:
                self._on_request(conn, stream, opcode, body, key)
            elif opcode == STARTUP:
                self._reply_error(conn, stream, PROTOCOL_ERROR,
                                  "Unexpected message STARTUP, the connection is already "
                                  "started")
            else:
                self._reply_error(conn, stream, PROTOCOL_ERROR,
                                  "Unknown or unexpected opcode 0x%02X" % (opcode,))
        except ProtocolError as exc:
            self._reply_error(conn, stream, PROTOCOL_ERROR, exc.message or str(exc))
        except EngineError as exc:
            self._reply_error(conn, stream, exc.code, exc.message, exc.fields)
        except Exception as exc:        # the server must survive anything a client sends
            self._reply_error(conn, stream, SERVER_ERROR,
                              "java.lang.RuntimeException: %s: %s" % (type(exc).__name__, exc))

    def _reply_error(self, conn, stream, code, message, fields=None):
        self._reply(conn, stream, ERROR, error_body(code, message, fields, conn.version))

    def _on_startup(self, conn, stream, body):
        options, _ = wire.read_string_map(body, 0)
        options = dict((k.upper(), v) for k, v in options.items())
        if "CQL_VERSION" not in options:
            raise ProtocolError("Missing value CQL_VERSION in STARTUP message")
        name = options.get("COMPRESSION")
        compressor = None
        if name:
            compressor = self.compressors.get(name.lower())
            if compressor is None:
                raise ProtocolError("Unknown compression algorithm: %s" % (name,))
            if conn.version >= 5 and not compressor.supports_segments:
                raise ProtocolError("Compression %s is not supported by protocol version v5"
                                    % (name,))
        # the answer (READY or AUTHENTICATE) switches the framing as it is sent: v5 segments
        # from the next envelope on, both ways (AUTH_RESPONSE already comes in segments, as
        # with Cassandra 4 and cassandra-driver), v3/v4 compression of what we send
        conn.framing.startup(compressor)
        if self.auth:
            conn.phase = AUTHENTICATING
            self._reply(conn, stream, AUTHENTICATE, wire.write_string(AUTHENTICATOR))
        else:
            self._reply(conn, stream, READY, b"")
            conn.phase = READY_PHASE

    def _on_auth_response(self, conn, stream, body):
        token, _ = wire.read_bytes(body, 0)
        parts = (token or b"").split(b"\x00")
        user = parts[1].decode("utf-8", "replace") if len(parts) == 3 else ""
        password = parts[2].decode("utf-8", "replace") if len(parts) == 3 else ""
        if len(parts) != 3 or (user, password) != self.auth:
            self._reply_error(conn, stream, BAD_CREDENTIALS,
                              "Provided username %s and/or password are incorrect" % (user,))
            return
        conn.user = user
        self._reply(conn, stream, AUTH_SUCCESS, wire.write_bytes(None))
        conn.phase = READY_PHASE

    # --- requests ----------------------------------------------------------------------------

    def _on_request(self, conn, stream, opcode, body, key):
        node = conn.node
        if node.close_after is not None:
            if node.close_after <= 0:
                node.close_after = None
                self._flush(conn)
                self._close_after_flush(conn)
                return
            node.close_after -= 1
        node.log.append((conn.id, key))
        # Identical request bodies (a benchmark's repeated SELECT) decode once.
        decoded = self._decoded
        message = decoded.get((conn.version, body))
        if message is None:
            message = messages.OPCODES[opcode].decode_body(body, conn.version)
            if len(decoded) >= 20000:
                decoded.clear()
            decoded[(conn.version, body)] = message
        if opcode == EXECUTE:
            query_text = self.prepared_text.get(bytes(message.query_id))
        elif opcode == BATCH:
            query_text = None
        else:
            query_text = message.query
        prime = None
        if opcode == PREPARE:
            # The engine prepares what it can (real bind metadata); a primed query it cannot
            # prepare (unknown table ...) gets a PREPARED built from the prime.
            try:
                opcode_out, body_out, _ = self._engine_request(conn, message)
            except EngineError:
                prime = self.primes.find(query_text, node.index, node.address, consume=False) \
                    if len(self.primes) else None
                if prime is None or prime.passthrough:
                    raise
                opcode_out, body_out = self._primed_response(conn, opcode, body, prime,
                                                             query_text)
            self._reply(conn, stream, opcode_out, body_out)
            return
        if query_text is not None and len(self.primes):
            prime = self.primes.find(query_text, node.index, node.address)
        if prime is not None and not prime.passthrough:
            opcode_out, body_out = self._primed_response(conn, opcode, body, prime, query_text)
            if prime.delay:
                self.call_later(prime.delay, self._late_reply, conn, stream, opcode_out,
                                body_out)
                return
            cache_key = None
            if prime.times is None:
                # a read (Rows) is cached without the request's timestamp: the primed rows
                # are the same whatever the client stamped on it
                cache_key = timestampless_key(key) if opcode_out == RESULT and \
                    body_out[:4] == _ROWS_KIND else key
            self._reply(conn, stream, opcode_out, body_out, cache_key=cache_key, logged=True)
            return
        traced = tracing.Traced(self, conn, message, query_text) if key[1] & 0x02 else None
        try:
            opcode_out, body_out, events = self._engine_request(conn, message)
        except EngineError as exc:
            opcode_out = ERROR
            body_out = error_body(exc.code, exc.message, exc.fields, conn.version)
            events = ()
        flags = 0
        warnings = self.engine.take_warnings()
        if warnings and opcode_out == RESULT and conn.version >= 4:
            body_out = wire.write_string_list(warnings) + body_out
            flags = 0x08
        if traced is not None and opcode_out == RESULT:   # the trace id leads the body
            body_out = traced.finish().bytes + body_out
            flags |= 0x02
        if prime is not None and prime.delay:
            self.call_later(prime.delay, self._late_reply, conn, stream, opcode_out, body_out,
                            flags)
        else:
            self._reply(conn, stream, opcode_out, body_out, flags=flags)
        for event in events:
            self._broadcast_event(event)

    def _late_reply(self, conn, stream, opcode, body, flags=0):
        if conn.closed or conn.closing:
            return
        self._reply(conn, stream, opcode, body, flags=flags)
        self._flush(conn)

    def _primed_response(self, conn, opcode, body, prime, query_text):
        if prime.error is not None:
            error = dict(prime.error)
            code = error.pop("code")
            message = error.pop("message")
            if code == 0x2500 and "statement_id" not in error and opcode == EXECUTE:
                error["statement_id"] = wire.read_short_bytes(body, 0)[0]
            return ERROR, error_body(code, message, error, conn.version)
        if opcode == PREPARE:
            prepared_id = hashlib.md5(("primed:" + query_text).encode("utf-8")).digest()
            self.prepared_text[prepared_id] = query_text
            self.primed_ids.add(prepared_id)
            return RESULT, primes.primed_prepared_body(prepared_id, prime, conn.version)
        if prime.is_void:
            return RESULT, _VOID_BODY
        return RESULT, primes.rows_body(prime.columns, prime.rows, conn.version)

    def _engine_request(self, conn, message):
        """Run a request through the engine.  Returns (opcode, body, schema change payloads)."""
        engine = self.engine
        node = conn.node.engine_index
        version = conn.version
        opcode = message.opcode
        skip_metadata = False
        new_metadata_id = None
        if not self.keyspace_ddl:
            _refuse_keyspace_ddl(message, conn)
        if opcode == QUERY:
            p = message.parameters
            result, _ = engine.execute(message.query, p.values, p.names,
                                       p.keyspace or conn.keyspace, node, p.consistency,
                                       p.page_size, p.paging_state, version,
                                       timestamp=p.timestamp)
        elif opcode == PREPARE:
            keyspace = message.keyspace or conn.keyspace
            result = engine.prepare(message.query, keyspace, node=node)
            qid = bytes(result.query_id)
            self.prepared_text[qid] = message.query
            self.prepared_meta[qid] = result.result_metadata_id
            self._remember_table(qid, message.query, keyspace)
        elif opcode == EXECUTE:
            p = message.parameters
            query_id = bytes(message.query_id)
            result = engine.execute_prepared(query_id, p.values, p.keyspace or conn.keyspace,
                                             node, p.consistency, p.page_size, p.paging_state,
                                             version, p.names, timestamp=p.timestamp)
            current = self.prepared_meta.get(query_id)
            if version >= 5 and type(result) is Rows and current is not None \
                    and message.result_metadata_id != current:
                # the statement was re-prepared against a changed schema since this client
                # prepared it: full metadata, flagged METADATA_CHANGED with the new id
                new_metadata_id = current
            elif p.skip_metadata:
                skip_metadata = version < 5 or message.result_metadata_id == current
        else:   # BATCH
            statements = [(s[0], not isinstance(s[0], str), s[1]) for s in message.statements]
            result = engine.batch(statements, message.keyspace or conn.keyspace, node,
                                  message.consistency, message.batch_type, message.timestamp)
        if type(result) is SchemaChange:
            self._evict_prepared(result)
        return RESULT, self._result_body(conn, result, skip_metadata, new_metadata_id), \
            self._schema_events(result)

    def _remember_table(self, qid, query, keyspace):
        """Note the table a prepared statement reads or writes, and its columns now (what
        ``_evict_prepared`` compares after a schema change)."""
        try:
            stmt = parse_statement(query)
        except Exception:       # prepared fine, so parseable; a failure here only skips it
            return
        table = getattr(stmt, "table", None)
        ks = getattr(stmt, "keyspace", None) or keyspace
        if table is None or ks is None:
            return
        self.prepared_tables[qid] = (ks, table, self.engine.table_signature(ks, table))

    def _evict_prepared(self, change):
        """Cassandra 4 (QueryProcessor's schema listener) forgets the prepared statements of a
        dropped keyspace or table, and of a table whose columns changed: their next EXECUTE
        answers UNPREPARED and the client re-prepares (getting the new metadata)."""
        if change.target == "KEYSPACE" and change.change_type != "DROPPED":
            return
        if change.target not in ("KEYSPACE", "TABLE"):
            return
        gone = []
        for qid, (ks, table, signature) in list(self.prepared_tables.items()):
            if ks != change.keyspace:
                continue
            if change.target == "TABLE" and table != change.name:
                continue
            if change.target == "KEYSPACE" or change.change_type == "DROPPED" or \
                    self.engine.table_signature(ks, table) != signature:
                gone.append(qid)
        for qid in gone:
            del self.prepared_tables[qid]
            self.prepared_meta.pop(qid, None)
        if gone:
            self.engine.evict_prepared(gone)

    def admin_execute(self, query, keyspace=None):
        """Run ``query`` on the first node past the client refusals (the fake Astra's DevOps
        API creates keyspaces this way); its schema event goes to the registered clients.
        Returns the result kind ("void", "rows", "schema_change", ...)."""
        result, _ = self.engine.execute(query, keyspace=keyspace,
                                        node=self.nodes[0].engine_index)
        if type(result) is SchemaChange:
            self._evict_prepared(result)
        for event in self._schema_events(result):
            self._broadcast_event(event)
        return type(result).__name__

    def _result_body(self, conn, result, skip_metadata=False, new_metadata_id=None):
        version = conn.version
        kind = type(result)
        if kind is Rows:
            columns = result.columns
            return results.rows_body(columns, result.rows, result.paging_state, skip_metadata,
                                     new_metadata_id, version,
                                     None if skip_metadata else _column_specs(columns, version))
        if kind is Void:
            return _VOID_BODY
        if kind is SetKeyspace:
            conn.keyspace = result.keyspace
            return results.SetKeyspaceResult(result.keyspace).encode_body(version)
        if kind is SchemaChange:
            return results.SchemaChangeResult(result.change_type, result.target, result.keyspace,
                                              result.name, result.arg_types).encode_body(version)
        if kind is Prepared:
            columns = _metadata(result.result_columns)
            return results.PreparedResult(
                result.query_id, _metadata(result.bind_columns), result.pk_indexes,
                columns or None, result.result_metadata_id).encode_body(version)
        raise TypeError("unknown engine result %r" % (result,))

    @staticmethod
    def _schema_events(result):
        if type(result) is SchemaChange:
            return (messages.EventMessage("SCHEMA_CHANGE", result.change_type, None,
                                          result.target, result.keyspace, result.name,
                                          result.arg_types),)
        return ()


# --- Astra's refusals ------------------------------------------------------------------------

_KEYSPACE_DDL = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(CREATE|ALTER|DROP)\s+"
                           r"(KEYSPACE|SCHEMA)\b", re.IGNORECASE | re.DOTALL)
UNAUTHORIZED = 0x2100


def _refuse_keyspace_ddl(message, conn):
    """Astra manages keyspaces outside CQL: its roles lack CREATE/ALTER/DROP on
    <all keyspaces>, so those statements fail with Unauthorized whoever runs them."""
    if message.opcode == BATCH:
        texts = [s[0] for s in message.statements if isinstance(s[0], str)]
    else:
        texts = [getattr(message, "query", None) or ""]
    for text in texts:
        match = _KEYSPACE_DDL.match(text)
        if match:
            raise EngineError(
                UNAUTHORIZED, "User %s has no %s permission on <all keyspaces> or any of its "
                "parents (this database manages keyspaces outside CQL: create them with the "
                "DevOps API or the console; in the fake Astra, FakeAstra.create_keyspace)"
                % (conn.user or "anonymous", match.group(1).upper()))


# --- body helpers -----------------------------------------------------------------------------

_VOID_BODY = results.VoidResult().encode_body(4)

_ERROR_DEFAULTS = {
    "consistency": 4, "required_replicas": 2, "alive_replicas": 1, "received_responses": 0,
    "required_responses": 2, "write_type": "SIMPLE", "data_retrieved": False, "failures": 1,
    "error_code_map": None, "keyspace": "", "table": "", "function": "", "arg_types": [],
    "query_id": b"",
}
# Field names accepted besides cassandra-driver's (used by primes and by the engine).
_ERROR_ALIASES = {"required": "required_replicas", "alive": "alive_replicas",
                  "received": "received_responses", "block_for": "required_responses",
                  "blockfor": "required_responses", "data_present": "data_retrieved",
                  "statement_id": "query_id", "id": "query_id"}


def error_body(code, message, fields, version):
    """The body of an ERROR message; ``fields`` named as cassandra-driver or with aliases."""
    info = dict(_ERROR_DEFAULTS)
    for key, value in (fields or {}).items():
        key = _ERROR_ALIASES.get(key, key)
        if code == 0x1000 and key == "required_responses":
            key = "required_replicas"
        info[key] = value
    info["consistency"] = primes.consistency_code(info["consistency"])
    if isinstance(info["query_id"], str):
        info["query_id"] = bytes.fromhex(info["query_id"])
    if info["error_code_map"] is None and version >= 5 and code in (0x1300, 0x1500):
        info["error_code_map"] = {}
    return messages.ErrorMessage(code, message, info).encode_body(version)


def _metadata(columns):
    return [(c.keyspace, c.table, c.name, c.cql_type) for c in columns]


_SPECS_CACHE = {}


def _column_specs(columns, version):
    """``results.write_column_specs`` of engine columns, cached per list of Column objects (a
    plan keeps its list, so a repeated SELECT encodes its metadata once; the entry holds the
    list, so its id cannot be reused while the entry exists)."""
    key = (id(columns), version)
    hit = _SPECS_CACHE.get(key)
    if hit is not None and hit[0] is columns:
        return hit[1]
    if len(_SPECS_CACHE) > 5000:
        _SPECS_CACHE.clear()
    specs = results.write_column_specs(_metadata(columns), version)
    _SPECS_CACHE[key] = (columns, specs)
    return specs
