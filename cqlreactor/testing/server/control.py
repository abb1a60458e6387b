"""The control channel of the simulated cluster: primes, faults and the loopback JSON protocol.

The server process (``loop.py``) listens on a loopback TCP port besides its CQL nodes.  A
client sends one JSON object per line, ``{"op": "stop_node", "args": {"node": 1}}``, and gets
one JSON line back, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
``ControlClient`` is that client; ``SimulatedCluster`` (``cluster.py``) wraps it in methods.

Operations (``args`` in brackets; ``node`` is a 0-based index or an address "127.0.0.2"):

    prime        [query, rows, columns, error, delay, node, regex, times, params]
    stop_node    [node]            closes its connections, refuses new ones, tells the others
    start_node   [node]            listens again; its prepared statements are forgotten
    add_node     [datacenter, rack, tokens]   bootstraps a node on the next address; its index
    remove_node  [node]            decommissions the node (TOPOLOGY_CHANGE REMOVED_NODE)
    drop_connections [node=None]   closes the client connections (all nodes when None)
    stall        [node, seconds]   reads requests but answers nothing for that long
    close_after  [node, n]         answers n more requests, closes the connection of the next
    corrupt_next_frame [node]      corrupts the next response frame (see faults.py)
    clear        []                removes primes and faults, empties the query logs
    served       [node, clear]     the requests the node served (a list of dicts)
    connections  [node=None]       open client connection count(s)
    nodes        []                address, host id, dc, rack, up/down, removed, tokens of
                                   every node (removed ones included: indexes never move)
    set_schema_delay [seconds, node=None]  how long a DDL takes to reach the nodes other than
                                   its coordinator: seconds >= 0, or "never" (a partitioned
                                   node; setting a delay again lets it catch up); node None
                                   sets every node's
    schema_versions []             per node: the schema version it reports now (str, None for
                                   a removed node) and its delay (seconds or "never")

Values in primed rows and in query logs travel through JSON with a small tagging scheme
(``encode_value`` / ``decode_value``): bytes, UUIDs, Decimals, datetimes, dates, times, sets,
tuples and maps with non-string keys are tagged objects such as ``{"$bytes": "00ff"}``.
"""

import datetime
import decimal
import ipaddress
import json
import socket
import uuid

__all__ = ["ControlClient", "ControlError", "ControlConnection", "CONTROL_OPS", "encode_value",
           "decode_value", "encode_rows_for_json"]


class ControlError(Exception):
    """The control channel refused an operation or could not be reached."""


# --- JSON value tagging ---------------------------------------------------------------------

def encode_value(value):
    """Turn a Python CQL value into something ``json.dumps`` accepts (tagged where needed)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$time": value.isoformat()}
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return {"$inet": str(value)}
    if isinstance(value, dict):
        # as pairs: map keys may be ints, UUIDs, tuples ...
        return {"$map": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {"$set": [encode_value(v) for v in value]}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"$tuple": [encode_value(v) for v in value]}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    if hasattr(value, "days") and hasattr(value, "microseconds"):   # datetime.timedelta
        return {"$seconds": value.total_seconds()}
    # Driver-specific wrappers (Date, Time, Duration, SortedSet …): fall back to their text.
    return {"$str": str(value)}


_DECODERS = {
    "$bytes": lambda v: bytes.fromhex(v),
    "$uuid": lambda v: uuid.UUID(v),
    "$decimal": lambda v: decimal.Decimal(v),
    "$datetime": lambda v: _parse_datetime(v),
    "$date": lambda v: datetime.date(*(int(p) for p in v.split("-"))),
    "$time": lambda v: _parse_time(v),
    "$inet": lambda v: ipaddress.ip_address(v),
    "$map": lambda v: dict((decode_value(k), decode_value(x)) for k, x in v),
    "$set": lambda v: set(decode_value(x) for x in v),
    "$tuple": lambda v: tuple(decode_value(x) for x in v),
    "$seconds": lambda v: datetime.timedelta(seconds=v),
    "$str": lambda v: v,
}


def _parse_datetime(text):
    date_part, _, time_part = text.partition("T")
    d = datetime.date(*(int(p) for p in date_part.split("-")))
    t = _parse_time(time_part or "00:00:00")
    return datetime.datetime.combine(d, t)


def _parse_time(text):
    text = text.split("+")[0]
    main, _, frac = text.partition(".")
    h, m, s = (int(p) for p in main.split(":"))
    micro = int((frac + "000000")[:6]) if frac else 0
    return datetime.time(h, m, s, micro)


def decode_value(value):
    """Inverse of ``encode_value``."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            decoder = _DECODERS.get(tag)
            if decoder is not None:
                return decoder(inner)
        return dict((k, decode_value(v)) for k, v in value.items())
    return value


def encode_rows_for_json(rows):
    """Rows (dicts or sequences) with every value tagged for JSON."""
    if rows is None:
        return None
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append(dict((str(k), encode_value(v)) for k, v in row.items()))
        else:
            out.append([encode_value(v) for v in row])
    return out


# --- the client -------------------------------------------------------------------------------

class ControlClient(object):
    """A blocking client of the control channel (one request at a time, thread-safe enough for
    tests that use it from one thread).

    Args:
        address: ``"host:port"`` as printed in the ready line.
        timeout: seconds to wait for connect and for each answer.
    """

    def __init__(self, address, timeout=30.0):
        host, _, port = address.rpartition(":")
        self.address = address
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rb")

    def call(self, op, **args):
        """Send one operation; returns its result or raises ControlError."""
        line = json.dumps({"op": op, "args": args}).encode("utf-8") + b"\n"
        try:
            self._sock.sendall(line)
            answer = self._file.readline()
        except (OSError, socket.timeout) as exc:
            raise ControlError("control channel %s: %s" % (self.address, exc))
        if not answer:
            raise ControlError("control channel %s closed" % (self.address,))
        reply = json.loads(answer.decode("utf-8"))
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "control operation %s failed" % (op,)))
        return reply.get("result")

    def close(self):
        try:
            self._file.close()
        finally:
            self._sock.close()


# --- the server side of the channel (runs in the server's loop) -----------------------------

CONTROL_OPS = {
    "prime": lambda self, **args: self.prime(**args),
    "stop_node": lambda self, node: self.stop_node(node),
    "start_node": lambda self, node: self.start_node(node),
    "add_node": lambda self, datacenter=None, rack=None, tokens=None: self.add_node(
        datacenter, rack, tokens),
    "remove_node": lambda self, node: self.remove_node(node),
    "drop_connections": lambda self, node=None: self.drop_connections(node),
    "stall": lambda self, node, seconds: self.stall(node, seconds),
    "close_after": lambda self, node, n: self.close_after(node, n),
    "corrupt_next_frame": lambda self, node: self.corrupt_next_frame(node),
    "clear": lambda self: self.clear(),
    "served": lambda self, node, clear=False: self.served(node, clear),
    "connections": lambda self, node=None: self.connections(node),
    "nodes": lambda self: self.describe_nodes(),
    "set_schema_delay": lambda self, seconds, node=None: self.set_schema_delay(seconds, node),
    "schema_versions": lambda self: self.schema_versions(),
    "ping": lambda self: True,
    "admin_execute": lambda self, query, keyspace=None: self.admin_execute(query, keyspace),
}


class ControlConnection(object):
    """One control-channel client: JSON lines in, JSON lines out (blocking sends are fine:
    answers are small and the client reads them at once)."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.buf = b""

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.strip():
                self._answer(line)

    def _answer(self, line):
        try:
            request = json.loads(line.decode("utf-8"))
            result = self.server.control_call(request.get("op"), request.get("args") or {})
            reply = {"ok": True, "result": result}
        except Exception as exc:
            reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        data = json.dumps(reply, default=str).encode("utf-8") + b"\n"
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()
            return
        finally:
            if self.sock.fileno() >= 0:
                self.sock.setblocking(False)

    def close(self):
        try:
            self.server.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
