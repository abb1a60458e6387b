"""The CQL side of the simulated server: frames in, answers out (a part of ``ClusterServer``).

Handshake (as Cassandra 4): OPTIONS -> SUPPORTED; STARTUP -> READY, or AUTHENTICATE
(PasswordAuthenticator, SASL PLAIN) -> AUTH_SUCCESS or ERROR 0x0100.  Compression and, on v5,
segments start right after the answer to STARTUP (AUTHENTICATE included), both directions.  A
first frame of a version the node lacks gets ERROR 0x000A naming the supported versions, in a
frame of the highest version it speaks below the one asked (v1/v2: the client's own header).

Requests go to the primes (``primes.py``) and then to the CQL engine; its results are encoded
with ``cqlreactor.core.results`` (the same classes the client decodes with), the cells already
serialized.  A repeated request whose answer cannot change is answered from the per-node cache
of the loop's fast path (see ``loop.py``).
"""

import hashlib
import struct

from cqlreactor.core import messages, results, wire
from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.segments import SegmentDecoder, SegmentEncoder
from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.testing.engine.results import Prepared, Rows, SchemaChange, SetKeyspace, Void
from cqlreactor.testing.server import primes
from cqlreactor.testing.server.state import (
    AUTH_RESPONSE, AUTH_SUCCESS, AUTHENTICATE, AUTHENTICATING, AUTHENTICATOR, BAD_CREDENTIALS,
    BATCH, ERROR, EXECUTE, MAX_FRAME, NEW, OPCODE_NAMES, OPTIONS, PREPARE, PROTOCOL_ERROR, QUERY,
    READY, READY_PHASE, REGISTER, REQUEST_OPCODES, RESULT, SERVER_ERROR, STARTED, STARTUP,
    SUPPORTED)

__all__ = ["Protocol", "error_body"]

_HEADER = struct.Struct(">BBhBi")
_unpack_int = struct.Struct(">i").unpack_from
_pack_header = _HEADER.pack


class Protocol(object):
    """The frame, handshake and request methods of ``ClusterServer`` (a mixin: it uses the
    loop's ``_write``, ``_close_after_flush``, ``call_later`` and the topology's
    ``_broadcast_event``)."""

    # --- frames ------------------------------------------------------------------------------

    def _receive(self, conn, data):
        """Bytes read from ``conn`` into its envelope buffer; False when the connection failed."""
        if conn.segments:
            try:
                conn.seg_decoder.add_data(data)
                for payload in conn.seg_decoder:
                    conn.envbuf += payload
            except ProtocolError as exc:
                if conn.phase == AUTHENTICATING and data[:1] == b"\x05":
                    # A client that waits for AUTH_SUCCESS before switching: tell it why, in
                    # the bare framing it still reads.
                    stream = struct.unpack_from(">h", data, 2)[0] if len(data) >= 4 else 0
                    self._protocol_failure(
                        conn, stream, "Invalid frame: protocol v5 switches to segments right "
                        "after the answer to STARTUP (AUTHENTICATE included), but a bare "
                        "envelope arrived", frame_version=5)
                    return False
                self._protocol_failure(conn, 0, str(exc))
                return False
        else:
            conn.envbuf += data
        return True

    def _process(self, conn):
        """Handle every complete frame buffered on ``conn``; answer them with one write."""
        buf = conn.envbuf
        n = len(buf)
        if conn.phase == NEW:
            if not self._check_first_frame(conn, buf):
                return
        node = conn.node
        if node.cache_version != self.primes.version:
            node.caches.clear()
            node.cache_version = self.primes.version
        cache = None
        if conn.phase == READY_PHASE and not node.faulty:
            cache = node.caches.get(conn.cache_name)
        if cache is None:
            cache = {}
        out = []
        log = node.log.append
        pos = 0
        expected = conn.version
        was_segments = conn.segments
        while n - pos >= 9:
            length = _unpack_int(buf, pos + 5)[0]
            if length < 0 or length > MAX_FRAME:
                self._send_envelopes(conn, out)
                self._protocol_failure(conn, 0, "invalid frame body length %d" % (length,))
                return
            end = pos + 9 + length
            if end > n:
                break
            stream = buf[pos + 2:pos + 4]
            buf[pos + 2] = 0
            buf[pos + 3] = 0
            key = bytes(buf[pos:end])
            pos = end
            hit = cache.get(key)
            if hit is not None:
                out.append(hit[0])
                out.append(stream)
                out.append(hit[1])
                if hit[2]:
                    log((conn.id, conn.version, conn.cache_name, key))
                continue
            stream_id = struct.unpack(">h", bytes(stream))[0]
            if key[0] != expected:
                self._send_envelopes(conn, out)
                self._protocol_failure(
                    conn, stream_id, "frame of protocol version %d on a connection of "
                    "version %d" % (key[0] & 0x7F, expected))
                return
            self._handle_frame(conn, stream_id, key, out)
            if conn.closed or conn.closing:
                del buf[:pos]
                return
            # The slow path may have made the connection ready, a fault may have started, or
            # the answer may just have been cached: pick the cache for the next frames.
            if conn.phase != READY_PHASE or node.faulty:
                cache = {}
            else:
                cache = node.caches.get(conn.cache_name) or cache
            if conn.segments and not was_segments:
                # The handshake just switched to segments: the rest is segment bytes.
                rest = bytes(buf[pos:])
                del buf[:]
                self._send_envelopes(conn, out)
                out = []
                if not rest:
                    return
                conn.seg_decoder.add_data(rest)
                try:
                    for payload in conn.seg_decoder:
                        buf += payload
                except ProtocolError as exc:
                    self._protocol_failure(conn, 0, str(exc))
                    return
                self._process(conn)
                return
        del buf[:pos]
        if out:
            self._send_envelopes(conn, out)

    def _send_envelopes(self, conn, parts):
        if not parts or conn.closed:
            return
        if conn.segments:
            data = b"".join(parts)
            if len(data) <= 131071 and not conn.corrupt_segment:
                data = conn.seg_encoder.encode([data])
            else:
                data = self._encode_big_segments(conn, data)
        else:
            data = b"".join(parts)
        self._write(conn, data)

    def _encode_big_segments(self, conn, data):
        # Split at envelope boundaries so no envelope straddles two self-contained segments.
        envelopes = []
        pos = 0
        while pos < len(data):
            length = _unpack_int(data, pos + 5)[0]
            envelopes.append(data[pos:pos + 9 + length])
            pos += 9 + length
        encoded = conn.seg_encoder.encode(envelopes)
        if conn.corrupt_segment:
            conn.corrupt_segment = False
            header = 8 if conn.seg_encoder.compressor is not None else 6
            encoded = bytearray(encoded)
            encoded[header] ^= 0xFF
            encoded = bytes(encoded)
        return encoded

    def _check_first_frame(self, conn, buf):
        """Negotiate the protocol version from the first frame; False when not decided."""
        if not buf:
            return False
        version = buf[0] & 0x7F
        if buf[0] & 0x80 or version == 0 or version > 0x3F:
            self._protocol_failure(conn, 0, "Invalid or unsupported protocol version (%d); "
                                   "this is not a CQL request" % (version,),
                                   frame_version=self.protocol_versions[-1])
            return False
        if version in self.protocol_versions:
            conn.version = version
            conn.phase = STARTED
            return True
        if version < 3:
            if len(buf) < 3:
                return False
            stream = buf[2] if buf[2] < 128 else buf[2] - 256
        else:
            if len(buf) < 4:
                return False
            stream = struct.unpack_from(">h", buf, 2)[0]
        lower = [v for v in self.protocol_versions if v <= version]
        # A v1/v2 client reads 8-byte headers: answer in its own version, as Cassandra does.
        reply_version = lower[-1] if lower else (version if version < 3
                                                 else self.protocol_versions[0])
        self._protocol_failure(
            conn, stream, "Invalid or unsupported protocol version (%d); supported versions "
            "are (%s)" % (version, ", ".join("%d/v%d" % (v, v) for v in self.protocol_versions)),
            frame_version=reply_version)
        return False

    def _protocol_failure(self, conn, stream, message, frame_version=None):
        """Answer ERROR ProtocolError and close the connection once that is written."""
        version = frame_version or conn.version or self.protocol_versions[-1]
        body = messages.ErrorMessage(PROTOCOL_ERROR, message).encode_body(version)
        if version < 3:
            frame = struct.pack(">BBbBi", version | 0x80, 0, stream, ERROR, len(body)) + body
        else:
            frame = _pack_header(version | 0x80, 0, stream, ERROR, len(body)) + body
        if conn.segments and frame_version is None:
            try:
                frame = conn.seg_encoder.encode([frame])
            except Exception:       # pragma: no cover - best effort
                pass
        self._write(conn, frame)
        self._close_after_flush(conn)

    def _frame(self, conn, stream, opcode, body, flags=0):
        if conn.compressor is not None and conn.version < 5 and conn.phase == READY_PHASE:
            body = conn.compressor.compress_frame(body)
            flags |= 0x01
        return _pack_header(conn.version | 0x80, flags, stream, opcode, len(body)) + body

    def _reply(self, conn, out, stream, opcode, body, cache_key=None, logged=False):
        """Queue one response; with cache_key, remember it for the fast path."""
        node = conn.node
        if node.corrupt_next:
            node.corrupt_next = False
            frame = self._frame(conn, stream, opcode, body)
            if conn.segments:
                conn.corrupt_segment = True
                self._send_envelopes(conn, out)
                del out[:]
                self._send_envelopes(conn, [frame])
                return
            out.append(b"\xff" + frame[1:])
            return
        frame = self._frame(conn, stream, opcode, body)
        out.append(frame)
        if cache_key is not None and conn.phase == READY_PHASE:
            cache = node.caches.get(conn.cache_name)
            if cache is None:
                cache = node.caches[conn.cache_name] = {}
            if len(cache) < 10000:
                cache[cache_key] = (frame[:2], frame[4:], logged)

    # --- the slow path -----------------------------------------------------------------------

    def _handle_frame(self, conn, stream, key, out):
        flags = key[1]
        opcode = key[4]
        body = key[9:]
        if flags & 0x01 and conn.version < 5:
            if conn.compressor is None:
                self._protocol_failure(conn, stream, "Compressed frame received but no "
                                       "compression was negotiated")
                return
            try:
                body = conn.compressor.decompress_frame(body)
            except ProtocolError as exc:
                self._protocol_failure(conn, stream, "Bad compressed frame: %s" % (exc,))
                return
        try:
            body = primes.strip_request_extras(flags, body)
            if opcode == OPTIONS:
                self._reply(conn, out, stream, SUPPORTED, self.supported_body,
                            cache_key=key)
            elif conn.phase == STARTED:
                if opcode == STARTUP:
                    self._on_startup(conn, stream, body, out)
                else:
                    self._reply_error(conn, out, stream, PROTOCOL_ERROR,
                                      "Unexpected message %s, expecting STARTUP or OPTIONS"
                                      % (OPCODE_NAMES.get(opcode, "0x%02X" % opcode),))
            elif conn.phase == AUTHENTICATING:
                if opcode == AUTH_RESPONSE:
                    self._on_auth_response(conn, stream, body, out)
                else:
                    self._reply_error(conn, out, stream, PROTOCOL_ERROR,
                                      "Unexpected message %s, expecting AUTH_RESPONSE"
                                      % (OPCODE_NAMES.get(opcode, "0x%02X" % opcode),))
            elif opcode == REGISTER:
                events, _ = wire.read_string_list(body, 0)
                for event in events:
                    if event not in ("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"):
                        raise ProtocolError("Invalid value '%s' for Type" % (event,))
                conn.registered = conn.registered | frozenset(events)
                self._reply(conn, out, stream, READY, b"")
            elif opcode in REQUEST_OPCODES:
                self._on_request(conn, stream, opcode, body, key, out)
            elif opcode == STARTUP:
                self._reply_error(conn, out, stream, PROTOCOL_ERROR,
                                  "Unexpected message STARTUP, the connection is already "
                                  "started")
            else:
                self._reply_error(conn, out, stream, PROTOCOL_ERROR,
                                  "Unknown or unexpected opcode 0x%02X" % (opcode,))
        except ProtocolError as exc:
            self._reply_error(conn, out, stream, PROTOCOL_ERROR, exc.message or str(exc))
        except EngineError as exc:
            self._reply_error(conn, out, stream, exc.code, exc.message, exc.fields)
        except Exception as exc:        # the server must survive anything a client sends
            self._reply_error(conn, out, stream, SERVER_ERROR,
                              "java.lang.RuntimeException: %s: %s" % (type(exc).__name__, exc))

    def _reply_error(self, conn, out, stream, code, message, fields=None):
        self._reply(conn, out, stream, ERROR, error_body(code, message, fields, conn.version))

    def _on_startup(self, conn, stream, body, out):
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
        conn.compressor = compressor
        if self.auth:
            conn.phase = AUTHENTICATING
            self._reply(conn, out, stream, AUTHENTICATE, wire.write_string(AUTHENTICATOR))
            # Cassandra 4 (and cassandra-driver) switch v5 to segments after the answer to
            # STARTUP, whether READY or AUTHENTICATE: AUTH_RESPONSE already comes in segments.
            self._enable_segments(conn, out)
        else:
            self._reply(conn, out, stream, READY, b"")
            self._become_ready(conn, out)

    def _on_auth_response(self, conn, stream, body, out):
        token, _ = wire.read_bytes(body, 0)
        parts = (token or b"").split(b"\x00")
        user = parts[1].decode("utf-8", "replace") if len(parts) == 3 else ""
        password = parts[2].decode("utf-8", "replace") if len(parts) == 3 else ""
        if len(parts) != 3 or (user, password) != self.auth:
            self._reply_error(conn, out, stream, BAD_CREDENTIALS,
                              "Provided username %s and/or password are incorrect" % (user,))
            return
        self._reply(conn, out, stream, AUTH_SUCCESS, wire.write_bytes(None))
        self._become_ready(conn, out)

    def _become_ready(self, conn, out):
        conn.phase = READY_PHASE
        self._enable_segments(conn, out)
        if conn.version < 5:
            conn.cache_name = conn.compressor.name if conn.compressor is not None else None

    def _enable_segments(self, conn, out):
        """v5: the answer to STARTUP goes out as a bare envelope, everything after it (both
        directions) in segments."""
        if conn.version < 5 or conn.segments:
            return
        self._send_envelopes(conn, out)
        del out[:]
        conn.seg_decoder = SegmentDecoder(conn.compressor)
        conn.seg_encoder = SegmentEncoder(conn.compressor)
        conn.segments = True
        conn.cache_name = None

    # --- requests ----------------------------------------------------------------------------

    def _on_request(self, conn, stream, opcode, body, key, out):
        node = conn.node
        if node.close_after is not None:
            if node.close_after <= 0:
                node.close_after = None
                self._send_envelopes(conn, out)
                del out[:]
                self._close_after_flush(conn)
                return
            node.close_after -= 1
        node.log.append((conn.id, conn.version, conn.cache_name, key))
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
            self._reply(conn, out, stream, opcode_out, body_out)
            return
        if query_text is not None and len(self.primes):
            prime = self.primes.find(query_text, node.index, node.address)
        if prime is not None and not prime.passthrough:
            opcode_out, body_out = self._primed_response(conn, opcode, body, prime, query_text)
            if prime.delay:
                self.call_later(prime.delay, self._late_reply, conn, stream, opcode_out,
                                body_out)
                return
            cacheable = prime.times is None
            self._reply(conn, out, stream, opcode_out, body_out,
                        cache_key=key if cacheable else None, logged=True)
            return
        try:
            opcode_out, body_out, events = self._engine_request(conn, message)
        except EngineError as exc:
            opcode_out = ERROR
            body_out = error_body(exc.code, exc.message, exc.fields, conn.version)
            events = ()
        if prime is not None and prime.delay:
            self.call_later(prime.delay, self._late_reply, conn, stream, opcode_out, body_out)
        else:
            self._reply(conn, out, stream, opcode_out, body_out)
        for event in events:
            self._broadcast_event(event)

    def _late_reply(self, conn, stream, opcode, body):
        if conn.closed or conn.closing:
            return
        out = []
        self._reply(conn, out, stream, opcode, body)
        self._send_envelopes(conn, out)

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
        if opcode == QUERY:
            p = message.parameters
            result, _ = engine.execute(message.query, p.values, p.names,
                                       p.keyspace or conn.keyspace, node, p.consistency,
                                       p.page_size, p.paging_state, version)
        elif opcode == PREPARE:
            result = engine.prepare(message.query, message.keyspace or conn.keyspace, node=node)
            self.prepared_text[bytes(result.query_id)] = message.query
            self.prepared_meta[bytes(result.query_id)] = result.result_metadata_id
        elif opcode == EXECUTE:
            p = message.parameters
            query_id = bytes(message.query_id)
            result = engine.execute_prepared(query_id, p.values, p.keyspace or conn.keyspace,
                                             node, p.consistency, p.page_size, p.paging_state,
                                             version, p.names)
            if p.skip_metadata:
                skip_metadata = version < 5 or (
                    message.result_metadata_id == self.prepared_meta.get(query_id))
        else:   # BATCH
            statements = [(s[0], not isinstance(s[0], str), s[1]) for s in message.statements]
            result = engine.batch(statements, message.keyspace or conn.keyspace, node,
                                  message.consistency, message.batch_type, message.timestamp)
        return RESULT, self._result_body(conn, result, skip_metadata), \
            self._schema_events(result)

    def _result_body(self, conn, result, skip_metadata=False):
        version = conn.version
        kind = type(result)
        if kind is Rows:
            columns = result.columns
            return results.rows_body(columns, result.rows, result.paging_state, skip_metadata,
                                     None, version,
                                     None if skip_metadata else _column_specs(columns, version))
        if kind is Void:
            return _VOID_BODY
        if kind is SetKeyspace:
            conn.keyspace = result.keyspace
            return results.SetKeyspaceResult(result.keyspace).encode_body(version)
        if kind is SchemaChange:
            return results.SchemaChangeResult(result.change_type, result.target, result.keyspace,
                                              result.name).encode_body(version)
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
                                          result.target, result.keyspace, result.name),)
        return ()


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
