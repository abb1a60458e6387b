"""The simulated cluster's server: CQL nodes on loopback addresses, one event loop, one process.

Architecture: **one thread, one ``selectors`` loop for every node and the control channel.**
On CPython the GIL lets one thread run Python at a time, so a thread per node would only add
lock traffic and context switches on a 2-core machine; one loop keeps the shared in-memory
store (``engine.py``) free of locks, makes faults exact (a ``stop_node`` takes effect between
two requests, never inside one) and leaves the other core to the client being measured.

Per connection the loop reads what the socket has (up to 256 KiB), handles every complete
frame in it and answers all of them with one ``send``.  The hot path does not decode messages:
a per-node cache maps the request frame's bytes (stream id zeroed) to the response frame's
bytes, so a primed or canned answer (primes without delay, OPTIONS) costs a dict lookup and a
stream id patch.  Everything else goes through the slow path: decode, handshake, engine.

Nodes: node ``i`` (0-based) listens on ``127.0.0.<i+1>:port``; all share the port.  Stopping a
node closes its listener (connections are refused) and its client connections, marks it down
for the engine's consistency checks and, 0.25 s later (gossip is never instant, and drivers
ignore a DOWN while their own sockets to the node look open), sends STATUS_CHANGE DOWN to the
connections registered on the other nodes; starting it again listens anew, forgets its prepared
statements (clients get UNPREPARED) and sends STATUS_CHANGE UP.

Stop/start send STATUS_CHANGE only, on purpose: as in Cassandra, a node that goes down and
comes back keeps its host id and its tokens, so it is a status change, not a topology change.
A REMOVED_NODE there would be wrong, and harmful: drivers drop a removed host from their
metadata and token map (its pool, its replicas), where a DOWN host is kept and reconnected to.
Topology changes are their own operations: ``add_node()`` bootstraps node ``len(nodes)`` on
the next loopback address (same port, its own host id and tokens; it listens first, joins the
engine's ring and the others' system.peers, then the others' registered connections get
TOPOLOGY_CHANGE NEW_NODE, so a client told of it can connect at once, as Cassandra 4 delays
NEW_NODE until the node's native transport is up); ``remove_node(i)`` decommissions node ``i``
(its connections and listener close, it leaves system.peers and the ring, its ranges pass to
the next nodes, the others get TOPOLOGY_CHANGE REMOVED_NODE).  Node indexes and addresses
never move: a removed node's index stays taken, ``add_node`` always takes a new one.
SCHEMA_CHANGE goes to every registered connection on every node after DDL.  Prepared
statements are per node, as in Cassandra: a statement prepared on one node is UNPREPARED on
the others until prepared there too.

Handshake (as Cassandra 4): OPTIONS -> SUPPORTED; STARTUP -> READY, or AUTHENTICATE
(PasswordAuthenticator, SASL PLAIN) -> AUTH_SUCCESS or ERROR 0x0100.  Compression and, on v5,
segments start right after the answer to STARTUP (AUTHENTICATE included), both directions.  A
first frame of a version the node lacks gets ERROR 0x000A naming the supported versions, in a
frame of the highest version it speaks below the one asked (v1/v2: the client's own header).
A client that does not read its answers stops being read (backpressure).  An internal error
drops only the connection that met it, with a traceback on stderr.

Faults (see ``control.py`` for the API):
  * ``stall(i, s)``: the node keeps reading but answers nothing for ``s`` seconds; then it
    answers what arrived meanwhile (like a long GC pause).
  * ``close_after(i, n)``: the node answers ``n`` more QUERY/PREPARE/EXECUTE/BATCH requests,
    then closes the connection that carries the next one without answering it.
  * ``corrupt_next_frame(i)``: the next response the node sends is corrupted: on a v5
    connection in segment mode one payload byte is flipped after the CRC32 was computed (the
    client sees a checksum mismatch); otherwise the frame's version byte becomes 0xFF.

TLS (``tls_dir``): ``node.crt`` and ``node.key`` (the certificate every node presents; give it
IP subjectAltNames 127.0.0.1 ... for hostname checks) and optionally ``ca.crt`` (client
certificates are then requested and verified against it when a client offers one;
``client_auth="required"`` makes them mandatory).  TLS runs on ``ssl.MemoryBIO`` so that the
loop's reads and writes stay the same for plain and TLS connections.
"""

import collections
import errno
import hashlib
import heapq
import itertools
import json
import os
import selectors
import signal
import socket
import ssl
import struct
import sys
import time
import uuid

from cqlreactor.core import messages, wire
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.errors import EngineError, ProtocolError
from cqlreactor.core.segments import SegmentDecoder, SegmentEncoder

from cqlreactor.testing import control

__all__ = ["ClusterServer", "NodeState", "run_cluster"]

# Opcodes.
ERROR, STARTUP, READY, AUTHENTICATE, OPTIONS, SUPPORTED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
QUERY, RESULT, PREPARE, EXECUTE, REGISTER, EVENT, BATCH = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
AUTH_CHALLENGE, AUTH_RESPONSE, AUTH_SUCCESS = 0x0E, 0x0F, 0x10
OPCODE_NAMES = {ERROR: "ERROR", STARTUP: "STARTUP", READY: "READY",
                AUTHENTICATE: "AUTHENTICATE", OPTIONS: "OPTIONS", SUPPORTED: "SUPPORTED",
                QUERY: "QUERY", RESULT: "RESULT", PREPARE: "PREPARE", EXECUTE: "EXECUTE",
                REGISTER: "REGISTER", EVENT: "EVENT", BATCH: "BATCH",
                AUTH_CHALLENGE: "AUTH_CHALLENGE", AUTH_RESPONSE: "AUTH_RESPONSE",
                AUTH_SUCCESS: "AUTH_SUCCESS"}
REQUEST_OPCODES = (QUERY, PREPARE, EXECUTE, BATCH)

PROTOCOL_ERROR = 0x000A
BAD_CREDENTIALS = 0x0100
SERVER_ERROR = 0x0000

CQL_VERSION = "3.4.5"
RELEASE_VERSION = "4.0.11"
AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
MAX_FRAME = 256 * 1024 * 1024
READ_SIZE = 256 * 1024
LOG_LIMIT = 200000
DOWN_EVENT_DELAY = 0.25

_HEADER = struct.Struct(">BBhBi")
_INT = struct.Struct(">i")
_unpack_int = _INT.unpack_from
_pack_header = _HEADER.pack

# Connection phases.
NEW, STARTED, AUTHENTICATING, READY_PHASE, CLOSED = range(5)


def _hostport(addr):
    return "%s:%d" % (addr[0], addr[1])


class NodeState(object):
    """One node: its listener, its connections, its faults, its query log."""

    def __init__(self, index, address, port):
        self.index = index
        self.address = address
        self.port = port
        self.engine_index = index         # position in the engine's ring (moves on removals)
        self.removed = False              # decommissioned: never listens again
        self.host_id = uuid.uuid5(uuid.NAMESPACE_DNS, "cqlreactor-node-%d" % (index + 1,))
        self.datacenter = "datacenter1"
        self.rack = "rack1"
        self.up = True
        self.listener = None
        self.connections = set()
        self.stalled_until = 0.0
        self.close_after = None
        self.corrupt_next = False
        self.caches = {}                  # compression name -> {request bytes: response parts}
        self.cache_version = -1
        self.log = collections.deque(maxlen=LOG_LIMIT)
        self.accepted = 0

    @property
    def faulty(self):
        return bool(self.stalled_until or self.close_after is not None or self.corrupt_next)

    def describe(self):
        return {"index": self.index, "address": self.address, "port": self.port,
                "host_id": str(self.host_id), "datacenter": self.datacenter,
                "rack": self.rack, "up": self.up, "connections": len(self.connections),
                "accepted": self.accepted, "removed": self.removed}


class _NoEngine(object):
    """Stands in when the engine cannot be imported: every statement is refused."""

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            if name in ("set_node_up", "forget_prepared", "remove_node"):
                return None
            if name == "add_node":
                return args[0].index
            raise EngineError(0x2200, "the CQL engine is not available")
        return refuse


class _Timer(object):
    __slots__ = ("when", "seq", "fn", "args", "cancelled")

    def __init__(self, when, seq, fn, args):
        self.when = when
        self.seq = seq
        self.fn = fn
        self.args = args
        self.cancelled = False

    def __lt__(self, other):
        return (self.when, self.seq) < (other.when, other.seq)


class ServerConnection(object):
    """A client connection to one node."""

    __slots__ = ("server", "node", "sock", "peer", "inbuf", "phase", "version", "compressor",
                 "segments", "seg_decoder", "seg_encoder", "envbuf", "registered", "wbuf",
                 "writing", "tls", "tls_in", "tls_out", "tls_done", "closing", "closed",
                 "cache_name", "keyspace", "id", "corrupt_segment")

    _ids = itertools.count(1)

    def __init__(self, server, node, sock, peer, tls_context=None):
        self.server = server
        self.node = node
        self.sock = sock
        self.peer = peer
        self.inbuf = bytearray()
        self.phase = NEW
        self.version = None
        self.compressor = None
        self.segments = False
        self.seg_decoder = None
        self.seg_encoder = None
        self.envbuf = bytearray()
        self.registered = frozenset()
        self.wbuf = []
        self.writing = False
        self.closing = False
        self.closed = False
        self.cache_name = None
        self.keyspace = None
        self.id = next(self._ids)
        self.corrupt_segment = False
        if tls_context is not None:
            self.tls_in = ssl.MemoryBIO()
            self.tls_out = ssl.MemoryBIO()
            self.tls = tls_context.wrap_bio(self.tls_in, self.tls_out, server_side=True)
            self.tls_done = False
        else:
            self.tls = self.tls_in = self.tls_out = None
            self.tls_done = True


class ClusterServer(object):
    """Every node of a simulated cluster, the control channel and the engine, in one loop.

    Args:
        nodes: number of nodes.
        port: the CQL port every node listens on; 0 picks one free on every node address.
        auth: ``(user, password)`` to require PasswordAuthenticator, or None.
        tls_dir: directory with node.crt / node.key (and optionally ca.crt), or None.
        protocol_versions: the versions the nodes speak (subset of 3, 4, 5).
        base_address: node i listens on base_address + str(i + 1).
        client_auth: with TLS and ca.crt: "optional" (default) or "required".
    """

    def __init__(self, nodes=3, port=0, auth=None, tls_dir=None, protocol_versions=(3, 4, 5),
                 base_address="127.0.0.", client_auth="optional", engine=None):
        if nodes < 1 or nodes > 250:
            raise ValueError("nodes must be between 1 and 250")
        self.protocol_versions = tuple(sorted(set(int(v) for v in protocol_versions)))
        for v in self.protocol_versions:
            if v not in (3, 4, 5):
                raise ValueError("unsupported protocol version %r (choose from 3, 4, 5)" % (v,))
        self.auth = tuple(auth) if auth else None
        self.port = port
        self.base_address = base_address
        self.nodes = [NodeState(i, "%s%d" % (base_address, i + 1), port) for i in range(nodes)]
        self.selector = selectors.DefaultSelector()
        self.primes = control.PrimeTable()
        self.compressors = available_compressors()
        self.tls_context = self._make_tls_context(tls_dir, client_auth) if tls_dir else None
        self.timers = []
        self._timer_seq = itertools.count()
        self._stopping = False
        self.control_listener = None
        self.control_address = None
        self._wakeup_r = self._wakeup_w = None
        self.prepared_text = {}           # prepared id -> query text (for logs and primes)
        self.prepared_meta = {}           # prepared id -> result metadata id (v5)
        self.primed_ids = set()           # ids of PREPARED answers built from primes
        self._decoded = {}                # (version, request body) -> decoded message
        self.engine = engine
        supported = {"CQL_VERSION": [CQL_VERSION],
                     "COMPRESSION": [name for name in ("lz4", "snappy")
                                     if name in self.compressors],
                     "PROTOCOL_VERSIONS": ["%d/v%d" % (v, v) for v in (3, 4, 5)
                                           if v in self.protocol_versions]}
        self.supported_body = wire.write_string_multimap(supported)

    # --- setup -------------------------------------------------------------------------------

    def _make_engine(self):
        """The CQL engine; built once the port is known (system.peers names it)."""
        try:
            from cqlreactor.testing import engine as engine_module
        except ImportError as exc:      # only while the engine is being written
            sys.stderr.write("CQL engine unavailable: %s\n" % (exc,))
            return _NoEngine()
        return engine_module.Engine([self._node_info(node, engine_module)
                                     for node in self.nodes])

    @staticmethod
    def _node_info(node, engine_module=None, tokens=None):
        if engine_module is None:
            from cqlreactor.testing import engine as engine_module
        return engine_module.NodeInfo(node.engine_index, node.address, host_id=node.host_id,
                                      data_center=node.datacenter, rack=node.rack,
                                      rpc_port=node.port, tokens=tokens)

    @staticmethod
    def _make_tls_context(tls_dir, client_auth):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "node.crt"), os.path.join(tls_dir, "node.key"))
        ca = os.path.join(tls_dir, "ca.crt")
        if os.path.exists(ca):
            ctx.load_verify_locations(ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" \
                else ssl.CERT_OPTIONAL
        return ctx

    def open(self):
        """Bind every node and the control channel.  Raises OSError when a port is taken."""
        if self.port == 0:
            self.port = self._bind_all_free()
        else:
            for node in self.nodes:
                node.port = self.port
                node.listener = self._listen(node.address, self.port)
        for node in self.nodes:
            node.port = self.port
            self.selector.register(node.listener, selectors.EVENT_READ, ("accept", node))
        if self.engine is None:
            self.engine = self._make_engine()
        self.control_listener = self._listen("127.0.0.1", 0)
        self.control_address = "127.0.0.1:%d" % (self.control_listener.getsockname()[1],)
        self.selector.register(self.control_listener, selectors.EVENT_READ, ("control", None))
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._wakeup_w.setblocking(False)
        self.selector.register(self._wakeup_r, selectors.EVENT_READ, ("wakeup", None))

    def _listen(self, address, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL:
                # Linux routes all of 127/8 to lo; macOS and BSDs need each alias added.
                raise OSError(exc.errno, "%s: %s is not a local address (on macOS: sudo "
                              "ifconfig lo0 alias %s up)" % (exc.strerror, address, address))
            raise
        return sock

    def _bind_all_free(self):
        last = None
        for _ in range(50):
            first = self._listen(self.nodes[0].address, 0)
            port = first.getsockname()[1]
            socks = [first]
            try:
                for node in self.nodes[1:]:
                    socks.append(self._listen(node.address, port))
            except OSError as exc:
                last = exc
                for s in socks:
                    s.close()
                continue
            for node, s in zip(self.nodes, socks):
                node.listener = s
            return port
        raise OSError("no port free on every node address: %s" % (last,))

    def ready_info(self):
        return {"contact_points": [n.address for n in self.nodes], "port": self.port,
                "control": self.control_address}

    # --- loop --------------------------------------------------------------------------------

    def call_later(self, delay, fn, *args):
        timer = _Timer(time.monotonic() + delay, next(self._timer_seq), fn, args)
        heapq.heappush(self.timers, timer)
        return timer

    def request_stop(self, *_):
        self._stopping = True
        try:
            self._wakeup_w.send(b"x")
        except (OSError, AttributeError):
            pass

    def serve_forever(self):
        """Run the loop until request_stop() (signal handlers call it)."""
        select = self.selector.select
        timers = self.timers
        while not self._stopping:
            timeout = None
            if timers:
                timeout = max(0.0, timers[0].when - time.monotonic())
            for key, mask in select(timeout):
                kind, obj = key.data
                try:
                    if kind == "conn":
                        if mask & selectors.EVENT_READ:
                            self._on_readable(obj)
                        if mask & selectors.EVENT_WRITE and not obj.closed:
                            self._on_writable(obj)
                    elif kind == "accept":
                        self._accept(obj)
                    elif kind == "control":
                        self._accept_control()
                    elif kind == "ctrl":
                        obj.on_readable()
                    elif kind == "wakeup":
                        try:
                            self._wakeup_r.recv(4096)
                        except OSError:
                            pass
                except Exception:
                    self._internal_error(obj if kind == "conn" else None)
            if timers:
                now = time.monotonic()
                while timers and timers[0].when <= now:
                    timer = heapq.heappop(timers)
                    if not timer.cancelled:
                        try:
                            timer.fn(*timer.args)
                        except Exception:
                            self._internal_error(None)

    def _internal_error(self, conn):
        """A bug of ours met by one connection: report it, drop that connection, keep serving."""
        import traceback
        sys.stderr.write("simulated cluster: internal error (connection dropped):\n")
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        if conn is not None:
            self._close(conn)

    def close(self):
        """Close every socket."""
        for node in self.nodes:
            self._close_node_connections(node)
            if node.listener is not None:
                self._unregister(node.listener)
                node.listener.close()
                node.listener = None
        for sock in (self.control_listener, self._wakeup_r, self._wakeup_w):
            if sock is not None:
                self._unregister(sock)
                sock.close()
        for key in list(self.selector.get_map().values()):
            kind, obj = key.data
            if kind == "ctrl":
                obj.close()
        self.selector.close()

    def _unregister(self, sock):
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    # --- control channel ----------------------------------------------------------------------

    def _accept_control(self):
        try:
            sock, _ = self.control_listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        ctrl = control.ControlConnection(self, sock)
        self.selector.register(sock, selectors.EVENT_READ, ("ctrl", ctrl))

    def control_call(self, op, args):
        """Run one control operation (the control channel's dispatcher)."""
        handler = control.CONTROL_OPS.get(op)
        if handler is None:
            raise ValueError("unknown control operation %r" % (op,))
        return handler(self, **args)

    # --- connections -------------------------------------------------------------------------

    def _accept(self, node):
        for _ in range(64):
            try:
                sock, peer = node.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not node.up:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = ServerConnection(self, node, sock, peer, self.tls_context)
            node.connections.add(conn)
            node.accepted += 1
            self.selector.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _close(self, conn):
        if conn.closed:
            return
        conn.closed = True
        conn.phase = CLOSED
        conn.node.connections.discard(conn)
        self._unregister(conn.sock)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _close_node_connections(self, node):
        for conn in list(node.connections):
            self._close(conn)

    def _on_readable(self, conn):
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        if conn.tls is not None:
            data = self._tls_receive(conn, data)
            if data is None or conn.closed:
                return
        if conn.closing:
            return
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
                    return
                self._protocol_failure(conn, 0, str(exc))
                return
        else:
            conn.envbuf += data
        node = conn.node
        if node.stalled_until:
            if time.monotonic() < node.stalled_until:
                return
            node.stalled_until = 0.0
        self._process(conn)

    def _tls_receive(self, conn, data):
        conn.tls_in.write(data)
        out = []
        try:
            if not conn.tls_done:
                conn.tls.do_handshake()
                conn.tls_done = True
            while True:
                chunk = conn.tls.read(READ_SIZE)
                if not chunk:
                    break
                out.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            self._flush_tls(conn)
            self._close(conn)
            return None
        self._flush_tls(conn)
        return b"".join(out)

    def _flush_tls(self, conn):
        pending = conn.tls_out.read()
        if pending:
            self._write_raw(conn, pending)

    def _write(self, conn, data):
        if conn.closed or not data:
            return
        if conn.tls is not None:
            try:
                conn.tls.write(data)
            except ssl.SSLError:
                self._close(conn)
                return
            data = conn.tls_out.read()
        self._write_raw(conn, data)

    def _write_raw(self, conn, data):
        if conn.closed:
            return
        if conn.wbuf:
            conn.wbuf.append(data)
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            conn.wbuf.append(memoryview(data)[sent:])
            if not conn.writing:
                # Backpressure: a client that does not read its answers is not read from
                # until the kernel buffer drains.
                conn.writing = True
                self.selector.modify(conn.sock, selectors.EVENT_WRITE, ("conn", conn))
        elif conn.closing:
            self._close(conn)

    def _on_writable(self, conn):
        while conn.wbuf:
            data = conn.wbuf[0]
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(conn)
                return
            if sent < len(data):
                conn.wbuf[0] = memoryview(data)[sent:]
                return
            conn.wbuf.pop(0)
        conn.writing = False
        if conn.closing:
            self._close(conn)
            return
        self.selector.modify(conn.sock, selectors.EVENT_READ, ("conn", conn))

    def _close_after_flush(self, conn):
        conn.closing = True
        if not conn.wbuf:
            self._close(conn)

    # --- frames ------------------------------------------------------------------------------

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
        body = _INT.pack(PROTOCOL_ERROR) + wire.write_string(message)
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
            body = control.strip_request_extras(flags, body)
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
        self._reply(conn, out, stream, ERROR, _error_body(code, message, fields, conn.version))

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
            body_out = _error_body(exc.code, exc.message, exc.fields, conn.version)
            events = ()
        if prime is not None and prime.delay:
            self.call_later(prime.delay, self._late_reply, conn, stream, opcode_out, body_out)
        else:
            self._reply(conn, out, stream, opcode_out, body_out)
        for event in events:
            self._broadcast_event("SCHEMA_CHANGE", event)

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
            return ERROR, _error_body(code, message, error, conn.version)
        if opcode == PREPARE:
            prepared_id = hashlib.md5(("primed:" + query_text).encode("utf-8")).digest()
            self.prepared_text[prepared_id] = query_text
            self.primed_ids.add(prepared_id)
            return RESULT, control.primed_prepared_body(prepared_id, prime, conn.version)
        if prime.is_void:
            return RESULT, _INT.pack(1)
        return RESULT, control.rows_body(prime.columns, prime.rows, conn.version)

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
        kind = type(result).__name__
        if kind == "Rows":
            return _rows_result_body(result.columns, result.rows, result.paging_state,
                                     skip_metadata)
        if kind == "Void":
            return _INT.pack(1)
        if kind == "SetKeyspace":
            conn.keyspace = result.keyspace
            return _INT.pack(3) + wire.write_string(result.keyspace)
        if kind == "SchemaChange":
            return _INT.pack(5) + _schema_change_payload(result)
        if kind == "Prepared":
            bind = [(c.keyspace, c.table, c.name, c.cql_type) for c in result.bind_columns]
            columns = [(c.keyspace, c.table, c.name, c.cql_type) for c in result.result_columns]
            return messages.PreparedResult(
                result.query_id, bind, result.pk_indexes, columns or None,
                result.result_metadata_id).encode_body(version)
        raise TypeError("unknown engine result %r" % (result,))

    @staticmethod
    def _schema_events(result):
        if type(result).__name__ == "SchemaChange":
            return (_schema_change_payload(result),)
        return ()

    # --- events and topology -----------------------------------------------------------------

    def _broadcast_event(self, kind, payload, exclude_node=None):
        body = wire.write_string(kind) + payload
        for node in self.nodes:
            if node is exclude_node or not node.up:
                continue
            for conn in list(node.connections):
                if kind in conn.registered and conn.phase == READY_PHASE:
                    frame = self._frame(conn, -1, EVENT, body)
                    self._send_envelopes(conn, [frame])

    def _node_event_payload(self, node, change):
        return wire.write_string(change) + wire.write_inet(node.address, node.port)

    def node(self, ref):
        """The NodeState for an index (0-based int) or an address string."""
        if isinstance(ref, NodeState):
            return ref
        if isinstance(ref, str) and not ref.isdigit():
            for node in self.nodes:
                if node.address == ref:
                    return node
            raise ValueError("no node with address %r" % (ref,))
        index = int(ref)
        if not 0 <= index < len(self.nodes):
            raise ValueError("node index %d out of range 0..%d" % (index, len(self.nodes) - 1))
        return self.nodes[index]

    def stop_node(self, ref):
        node = self.node(ref)
        if not node.up:
            return False
        node.up = False
        if node.listener is not None:
            self._unregister(node.listener)
            node.listener.close()
            node.listener = None
        self._close_node_connections(node)
        self.engine.set_node_up(node.engine_index, False)
        # Like gossip, the others notice a little after the node's sockets closed; clients
        # (cassandra-driver among them) ignore a DOWN event while they still see open
        # connections to the node.
        self.call_later(DOWN_EVENT_DELAY, self._announce_down, node)
        return True

    def _announce_down(self, node):
        if not node.up and not node.removed:
            self._broadcast_event("STATUS_CHANGE", self._node_event_payload(node, "DOWN"),
                                  exclude_node=node)

    def start_node(self, ref):
        node = self.node(ref)
        if node.removed:
            raise ValueError("node %d (%s) was removed from the cluster; add_node() makes a "
                             "new one" % (node.index, node.address))
        if node.up:
            return False
        node.listener = self._listen(node.address, node.port)
        self.selector.register(node.listener, selectors.EVENT_READ, ("accept", node))
        node.up = True
        node.caches.clear()
        self.engine.set_node_up(node.engine_index, True)
        self.engine.forget_prepared(node.engine_index)
        self._broadcast_event("STATUS_CHANGE", self._node_event_payload(node, "UP"),
                              exclude_node=node)
        return True

    def add_node(self, datacenter=None, rack=None, tokens=None):
        """Bootstrap a new node on the next loopback address, same port; returns its index.

        The node listens first, then joins the engine's ring (it shows in the others'
        system.peers and owns token ranges), then the others' registered connections get
        TOPOLOGY_CHANGE NEW_NODE: as in Cassandra 4, a client told of a node can connect to it.
        Raises OSError when the port is taken on the new address (nothing changes then).
        """
        index = len(self.nodes)
        if index >= 250:
            raise ValueError("a simulated cluster has at most 250 node addresses")
        node = NodeState(index, "%s%d" % (self.base_address, index + 1), self.port)
        if datacenter:
            node.datacenter = str(datacenter)
        if rack:
            node.rack = str(rack)
        token_list = [int(t) for t in tokens] if tokens else None
        listener = self._listen(node.address, self.port)    # the port must be free there
        try:
            if isinstance(self.engine, _NoEngine):
                node.engine_index = self.engine.add_node(node)
            else:
                node.engine_index = self.engine.add_node(self._node_info(node,
                                                                         tokens=token_list))
        except Exception:
            listener.close()
            raise
        node.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, ("accept", node))
        self.nodes.append(node)
        self._broadcast_event("TOPOLOGY_CHANGE", self._node_event_payload(node, "NEW_NODE"),
                              exclude_node=node)
        return index

    def remove_node(self, ref):
        """Decommission a node: it leaves the ring for good; the others are told.

        Its listener and connections close, it disappears from the others' system.peers, its
        token ranges pass to the next nodes on the ring, and the others' registered
        connections get TOPOLOGY_CHANGE REMOVED_NODE.  Its index stays taken (node indexes
        and addresses never move).  Returns False when it was already removed.
        """
        node = self.node(ref)
        if node.removed:
            return False
        if sum(1 for n in self.nodes if not n.removed) <= 1:
            raise ValueError("cannot remove the last node of the cluster")
        if node.listener is not None:
            self._unregister(node.listener)
            node.listener.close()
            node.listener = None
        self._close_node_connections(node)
        node.up = False
        node.removed = True
        self.engine.remove_node(node.engine_index)
        node.engine_index = None
        position = 0
        for other in self.nodes:        # the engine's indexes are ring positions
            if not other.removed:
                other.engine_index = position
                position += 1
        self._broadcast_event("TOPOLOGY_CHANGE",
                              self._node_event_payload(node, "REMOVED_NODE"),
                              exclude_node=node)
        return True

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
                if not conn.closed and conn.envbuf:
                    self._process(conn)

    def close_after(self, ref, n_requests):
        node = self.node(ref)
        node.close_after = int(n_requests)
        return True

    def corrupt_next_frame(self, ref):
        self.node(ref).corrupt_next = True
        return True

    def prime(self, **args):
        prime = control.prime_from_args(args)
        if prime.node is not None:
            prime.node = self.node(prime.node).index
        self.primes.add(prime)
        return True

    def clear(self):
        self.primes.clear()
        for node in self.nodes:
            node.stalled_until = 0.0
            node.close_after = None
            node.corrupt_next = False
            node.caches.clear()
            node.log.clear()
            for conn in list(node.connections):
                if conn.envbuf and not conn.closed:
                    self._process(conn)
        return True

    def served(self, ref, clear=False):
        node = self.node(ref)
        entries = [control.describe_request(entry, self.compressors, self.prepared_text)
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
        return infos



# --- body helpers -----------------------------------------------------------------------------

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


def _error_body(code, message, fields, version):
    """The body of an ERROR message; ``fields`` named as cassandra-driver or with aliases."""
    info = dict(_ERROR_DEFAULTS)
    for key, value in (fields or {}).items():
        key = _ERROR_ALIASES.get(key, key)
        if code == 0x1000 and key == "required_responses":
            key = "required_replicas"
        info[key] = value
    info["consistency"] = control.consistency_code(info["consistency"])
    if isinstance(info["query_id"], str):
        info["query_id"] = bytes.fromhex(info["query_id"])
    if info["error_code_map"] is None and version >= 5 and code in (0x1300, 0x1500):
        info["error_code_map"] = {}
    return messages.ErrorMessage(code, message, info).encode_body(version)


def _schema_change_payload(change):
    parts = [wire.write_string(change.change_type), wire.write_string(change.target),
             wire.write_string(change.keyspace)]
    if change.target != "KEYSPACE":
        parts.append(wire.write_string(change.name or ""))
        if change.target in ("FUNCTION", "AGGREGATE"):
            parts.append(wire.write_string_list(list(getattr(change, "arg_types", None) or [])))
    return b"".join(parts)


_METADATA_CACHE = {}


def _column_specs(columns):
    """(flags, bytes) of the column specs; cached per list of Column objects (the cache holds
    the objects, so their ids cannot be reused while an entry exists)."""
    key = tuple(map(id, columns))
    hit = _METADATA_CACHE.get(key)
    if hit is not None:
        return hit[1]
    parts = []
    flags = 0
    tables = set((c.keyspace, c.table) for c in columns)
    if len(tables) == 1:
        flags = 0x0001
        ks, table = tables.pop()
        parts.append(wire.write_string(ks) + wire.write_string(table))
        for c in columns:
            parts.append(wire.write_string(c.name) + _type_bytes(c.cql_type))
    else:
        for c in columns:
            parts.append(wire.write_string(c.keyspace) + wire.write_string(c.table)
                         + wire.write_string(c.name) + _type_bytes(c.cql_type))
    if len(_METADATA_CACHE) > 5000:
        _METADATA_CACHE.clear()
    result = (flags, b"".join(parts))
    _METADATA_CACHE[key] = (list(columns), result)
    return result


def _rows_result_body(columns, rows, paging_state, no_metadata):
    """A ROWS result from engine columns and rows of serialized cells."""
    if no_metadata:
        flags, specs = 0x0004, b""
    else:
        flags, specs = _column_specs(columns)
    paging = b""
    if paging_state is not None:
        flags |= 0x0002
        paging = wire.write_bytes(paging_state)
    cells = [_INT.pack(2), _INT.pack(flags), _INT.pack(len(columns)), paging, specs,
             _INT.pack(len(rows))]
    append = cells.append
    pack = _INT.pack
    for row in rows:
        for value in row:
            if value is None:
                append(b"\xff\xff\xff\xff")
            else:
                append(pack(len(value)))
                append(value)
    return b"".join(cells)


_TYPE_BYTES = {}


def _type_bytes(ctype):
    # Keyed by the type object (columns keep theirs for the table's life); the object is kept
    # in the value so that a reused id() can never match a different type.
    cached = _TYPE_BYTES.get(id(ctype))
    if cached is None or cached[0] is not ctype:
        from cqlreactor.core import types as cql_types
        if len(_TYPE_BYTES) > 10000:
            _TYPE_BYTES.clear()
        cached = _TYPE_BYTES[id(ctype)] = (ctype, cql_types.write_type_option(ctype))
    return cached[1]


# --- process entry ----------------------------------------------------------------------------

def run_cluster(nodes=3, port=0, auth=None, tls_dir=None, protocol_versions=(3, 4, 5),
                client_auth="optional", stdout=None, parent_pid=None):
    """Serve a simulated cluster until SIGTERM/SIGINT; prints the ready JSON line first.

    Args:
        parent_pid: exit when this process is gone (SimulatedCluster passes its own pid, so a
            killed test run leaves no server behind).

    Returns the process exit status (0 on a clean shutdown, 1 when it cannot start).
    """
    stdout = stdout or sys.stdout
    try:
        server = ClusterServer(nodes=nodes, port=port, auth=auth, tls_dir=tls_dir,
                               protocol_versions=protocol_versions, client_auth=client_auth)
    except (OSError, ssl.SSLError, ValueError) as exc:
        sys.stderr.write("cannot start: %s\n" % (exc,))
        return 1
    try:
        server.open()
    except OSError as exc:
        server.close()
        sys.stderr.write("cannot listen: %s\n" % (exc,))
        return 1
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, server.request_stop)
    if parent_pid:
        _watch_parent(server, parent_pid)
    try:
        stdout.write(json.dumps(server.ready_info()) + "\n")
        stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _watch_parent(server, parent_pid):
    if os.getppid() != parent_pid:
        server.request_stop()
        return
    server.call_later(1.0, _watch_parent, server, parent_pid)
