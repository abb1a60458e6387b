"""The simulated cluster's server: CQL nodes on loopback addresses, one event loop, one process.

Architecture: **one thread, one ``selectors`` loop for every node and the control channel.**
On CPython the GIL lets one thread run Python at a time, so a thread per node would only add
lock traffic and context switches on a 2-core machine; one loop keeps the shared in-memory
store (the ``engine`` package) free of locks, makes faults exact (a ``stop_node`` takes effect
between two requests, never inside one) and leaves the other core to the client being measured.

Per connection the loop reads what the socket has (up to 256 KiB), handles every complete
frame in it and answers all of them with one ``send``.  The hot path runs no message code: a
per-node cache maps a request (version byte, flags, opcode, body as the framing delivered it:
``Framing.raw()`` items, no Frame built) to its answer envelope, so a primed or canned answer
(primes without delay, OPTIONS) costs a dict lookup and a stream id patch.  Everything else goes through the slow path: decode,
handshake, engine.

The server is one object, ``ClusterServer``, written in parts: this module is the loop and
the sockets (accept, read, write, TLS, timers, the control channel's listener);
``protocol.py`` frames, the handshake and requests; ``topology.py`` nodes stopping, starting,
joining and leaving, and the events; ``faults.py`` the control operations (faults, primes, the
query log).  ``state.py`` holds the records they share, ``control.py`` the control channel.

A client that does not read its answers stops being read (backpressure).  An internal error
drops only the connection that met it, with a traceback on stderr.

TLS (``tls_dir``): ``node.crt`` and ``node.key`` (the certificate every node presents; give it
IP subjectAltNames 127.0.0.1 ... for hostname checks) and optionally ``ca.crt`` (client
certificates are then requested and verified against it when a client offers one;
``client_auth="required"`` makes them mandatory).  TLS runs on ``ssl.MemoryBIO`` so that the
loop's reads and writes stay the same for plain and TLS connections.
"""

import errno
import heapq
import itertools
import json
import os
import selectors
import signal
import socket
import ssl
import sys
import time
import traceback

from cqlreactor.core import wire
from cqlreactor.core.compression import available_compressors
from cqlreactor.testing.engine import releases
from cqlreactor.testing.engine.engine import DEFAULT_SCHEMA_DELAY, schema_delay_value
from cqlreactor.testing.server import control, primes
from cqlreactor.testing.server.faults import Faults
from cqlreactor.testing.server.protocol import Protocol
from cqlreactor.testing.server.state import (
    CLOSED, READ_SIZE, NodeState, ServerConnection)
from cqlreactor.testing.server.topology import Topology

__all__ = ["ClusterServer", "NodeState", "run_cluster"]


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


class ClusterServer(Protocol, Topology, Faults):
    """Every node of a simulated cluster, the control channel and the engine, in one loop.

    Args:
        nodes: number of nodes.
        port: the CQL port every node listens on; 0 picks one free on every node address.
        auth: ``(user, password)`` to require PasswordAuthenticator, or None.
        tls_dir: directory with node.crt / node.key (and optionally ca.crt), or None.
        protocol_versions: the versions the nodes speak (subset of 3, 4, 5).
        base_address: node i listens on base_address + str(i + 1).
        client_auth: with TLS and ca.crt: "optional" (default) or "required".
        product_type: advertised in SUPPORTED as PRODUCT_TYPE (Astra: "DATASTAX_APOLLO",
            which drivers read to turn their Astra defaults on); None advertises none.
        keyspace_ddl: False refuses CREATE/ALTER/DROP KEYSPACE over CQL as Astra does
            (keyspaces come from ``admin_execute``, Astra's DevOps API in the fake).
        release_version: the Cassandra release the nodes report and whose features the
            engine follows ("4.0.11" by default, "4.1.x", "5.0.x"; see ``engine.releases``).
        schema_delay: seconds a DDL takes to reach the nodes besides its coordinator, or
            "never" (see topology.py).
    """

    def __init__(self, nodes=3, port=0, auth=None, tls_dir=None, protocol_versions=(3, 4, 5),
                 base_address="127.0.0.", client_auth="optional", engine=None,
                 product_type=None, keyspace_ddl=True, release_version=None,
                 schema_delay=DEFAULT_SCHEMA_DELAY):
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
        self.primes = primes.PrimeTable()
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
        self.prepared_tables = {}         # prepared id -> (keyspace, table, column signature)
        self._decoded = {}                # (version, request body) -> decoded message
        self.engine = engine
        self.release = releases.release(release_version)     # ValueError: a clear message
        # a release speaks its own versions (3.11: v3/v4): the rest of protocol_versions drop
        self.protocol_versions = tuple(v for v in self.protocol_versions
                                       if v in self.release.protocol_versions)
        if not self.protocol_versions:
            raise ValueError("Cassandra %s speaks protocol versions %s, none of %s: choose "
                             "protocol_versions among those or another release_version"
                             % (self.release.version, self.release.protocol_versions,
                                tuple(protocol_versions)))
        self.schema_delay = schema_delay_value(schema_delay)   # topology._make_engine uses it
        supported = {"CQL_VERSION": [self.release.cql_version],
                     "COMPRESSION": [name for name in ("lz4", "snappy")
                                     if name in self.compressors],
                     "PROTOCOL_VERSIONS": [
                         text for text in self.release.supported_protocol_versions
                         if int(text.split("/")[0]) in self.protocol_versions or
                         text.endswith("-beta")]}
        if product_type:
            supported["PRODUCT_TYPE"] = [product_type]
        self.supported_body = wire.write_string_multimap(supported)
        self.keyspace_ddl = keyspace_ddl

    # --- setup -------------------------------------------------------------------------------

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
        self._receive(conn, data)
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


# --- process entry ----------------------------------------------------------------------------

def run_cluster(nodes=3, port=0, auth=None, tls_dir=None, protocol_versions=(3, 4, 5),
                client_auth="optional", stdout=None, parent_pid=None, product_type=None,
                keyspace_ddl=True, release_version=None, schema_delay=DEFAULT_SCHEMA_DELAY):
    """Serve a simulated cluster until SIGTERM/SIGINT; prints the ready JSON line first.

    Args:
        parent_pid: exit when this process is gone (SimulatedCluster passes its own pid, so a
            killed test run leaves no server behind).

    Returns the process exit status (0 on a clean shutdown, 1 when it cannot start).
    """
    stdout = stdout or sys.stdout
    try:
        server = ClusterServer(nodes=nodes, port=port, auth=auth, tls_dir=tls_dir,
                               protocol_versions=protocol_versions, client_auth=client_auth,
                               product_type=product_type, keyspace_ddl=keyspace_ddl,
                               release_version=release_version, schema_delay=schema_delay)
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
