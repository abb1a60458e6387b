"""The control channel of the simulated cluster: primes, faults and the loopback JSON protocol.

The server process (``server.py``) listens on a loopback TCP port besides its CQL nodes.  A
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
    corrupt_next_frame [node]      corrupts the next response frame (see server.py)
    clear        []                removes primes and faults, empties the query logs
    served       [node, clear]     the requests the node served (a list of dicts)
    connections  [node=None]       open client connection count(s)
    nodes        []                address, host id, dc, rack, up/down, removed, tokens of
                                   every node (removed ones included: indexes never move)

Values in primed rows and in query logs travel through JSON with a small tagging scheme
(``encode_value`` / ``decode_value``): bytes, UUIDs, Decimals, datetimes, dates, times, sets,
tuples and maps with non-string keys are tagged objects such as ``{"$bytes": "00ff"}``.
"""

import datetime
import decimal
import hashlib
import ipaddress
import json
import re
import socket
import struct
import uuid

from cqlreactor.core import wire

__all__ = ["Prime", "PrimeTable", "ControlClient", "ControlError", "ControlConnection",
           "CONTROL_OPS", "encode_value", "decode_value", "describe_request", "ERROR_CODES"]

_INT = struct.Struct(">i")
QUERY, PREPARE, EXECUTE, BATCH = 0x07, 0x09, 0x0A, 0x0D
_OPCODE_NAMES = {0x07: "QUERY", 0x09: "PREPARE", 0x0A: "EXECUTE", 0x0D: "BATCH",
                 0x05: "OPTIONS", 0x0B: "REGISTER", 0x01: "STARTUP"}

# Error names accepted by prime(error="unavailable") (or {"code": "unavailable", ...}).
ERROR_CODES = {
    "server_error": 0x0000, "protocol_error": 0x000A, "bad_credentials": 0x0100,
    "unavailable": 0x1000, "overloaded": 0x1001, "is_bootstrapping": 0x1002,
    "truncate_error": 0x1003, "write_timeout": 0x1100, "read_timeout": 0x1200,
    "read_failure": 0x1300, "function_failure": 0x1400, "write_failure": 0x1500,
    "cdc_write_failure": 0x1600, "cas_write_unknown": 0x1700, "syntax_error": 0x2000,
    "unauthorized": 0x2100, "invalid": 0x2200, "config_error": 0x2300,
    "already_exists": 0x2400, "unprepared": 0x2500,
}


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


# --- primes -----------------------------------------------------------------------------------

def _normalise(query):
    return " ".join(query.split()).rstrip(";").strip()


_INFERRED_TYPES = ((bool, "boolean"), (int, "bigint"), (float, "double"), (str, "text"),
                   (bytes, "blob"), (uuid.UUID, "uuid"), (decimal.Decimal, "decimal"),
                   (datetime.datetime, "timestamp"), (datetime.date, "date"),
                   (datetime.time, "time"))


def _infer_type(value):
    for py_type, cql in _INFERRED_TYPES:
        if isinstance(value, py_type):
            return cql
    if isinstance(value, dict):
        return "map<text, text>"
    if isinstance(value, (list, tuple)):
        return "list<text>"
    if isinstance(value, (set, frozenset)):
        return "set<text>"
    return "text"


class Prime(object):
    """One primed answer.

    Args:
        query: the CQL text to match.  Matched after collapsing whitespace and dropping a
            trailing ``;``; exact by default, a regular expression (``re.fullmatch``, ignoring
            case) with ``regex=True``.
        rows: the rows to return: a list of dicts (column -> value) or of sequences (in
            ``columns`` order).  ``rows=[]`` without ``columns`` returns a VOID result (what an
            INSERT answers).
        columns: ``[(name, cql_type), ...]`` or an ordered dict; inferred from the first
            dict row when omitted (int -> bigint, str -> text, float -> double, ...).
        error: an error name from ``ERROR_CODES`` or a dict ``{"code": name-or-int,
            "message": text, ...}`` with the code's extra fields (``consistency``, ``required``,
            ``alive``, ``received``, ``block_for``, ``write_type``, ``data_present``,
            ``keyspace``, ``table``, ``statement_id``).
        delay: seconds to wait before answering (the node keeps serving others meanwhile).
            A prime with only a delay (no rows, no error) delays the engine's real answer.
        node: only on this node (index or address); every node when None.
        times: answer this way this many times, then the prime expires; forever when None.
        params: ``[(name, cql_type), ...]`` bind markers announced when a client PREPAREs the
            query and the engine cannot prepare it itself (e.g. its table does not exist).

    Primes answer QUERY and EXECUTE (an EXECUTE matches by the text it was prepared from).
    PREPARE is answered by the engine when it can, else from the prime (rows or void ones).
    """

    def __init__(self, query, rows=None, columns=None, error=None, delay=None, node=None,
                 regex=False, times=None, params=None):
        self.query = query
        if isinstance(params, dict):
            params = list(params.items())
        self.params = [(str(n), str(t)) for n, t in params] if params else None
        self.regex = bool(regex)
        self._pattern = re.compile(_normalise(query), re.IGNORECASE | re.DOTALL) if regex else None
        self._text = _normalise(query)
        self.delay = float(delay) if delay else 0.0
        self.node = node
        self.times = times
        self.error = _normalise_error(error) if error is not None else None
        self.columns = None
        self.rows = None
        if rows is not None or columns is not None:
            self.columns, self.rows = _normalise_rows(rows or [], columns)

    @property
    def passthrough(self):
        """True when the prime only delays the engine's own answer."""
        return self.error is None and self.rows is None

    @property
    def is_void(self):
        return self.error is None and self.rows is not None and not self.columns

    def matches(self, query_text):
        text = _normalise(query_text)
        if self._pattern is not None:
            return self._pattern.fullmatch(text) is not None
        return text == self._text

    def to_dict(self):
        return {"query": self.query, "regex": self.regex, "delay": self.delay,
                "node": self.node, "times": self.times, "error": self.error,
                "columns": self.columns, "rows": None if self.rows is None else
                [[encode_value(v) for v in row] for row in self.rows]}


def _normalise_error(error):
    if isinstance(error, str):
        error = {"code": error}
    error = dict(error)
    code = error.get("code", "server_error")
    if isinstance(code, str):
        if code.lower() not in ERROR_CODES:
            raise ValueError("unknown error name %r; known: %s" % (code, sorted(ERROR_CODES)))
        code = ERROR_CODES[code.lower()]
    error["code"] = int(code)
    error.setdefault("message", "primed error")
    return error


def _normalise_rows(rows, columns):
    if columns is None:
        if rows and isinstance(rows[0], dict):
            columns = [(name, _infer_type(value)) for name, value in rows[0].items()]
        elif rows:
            raise ValueError("rows given as sequences need columns=[(name, type), ...]")
        else:
            columns = []
    elif isinstance(columns, dict):
        columns = list(columns.items())
    columns = [(str(name), str(ctype)) for name, ctype in columns]
    names = [name for name, _ in columns]
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append([row.get(name) for name in names])
        else:
            row = list(row)
            if len(row) != len(names):
                raise ValueError("row %r has %d values for %d columns" % (row, len(row),
                                                                         len(names)))
            out.append(row)
    return columns, out


class PrimeTable(object):
    """The primes of a cluster, newest first wins."""

    def __init__(self):
        self._primes = []
        self.version = 0          # bumped on every change (invalidates the fast-path caches)

    def add(self, prime):
        self._primes.insert(0, prime)
        self.version += 1

    def clear(self):
        del self._primes[:]
        self.version += 1

    def __len__(self):
        return len(self._primes)

    def find(self, query_text, node_index, node_address, consume=True):
        """The prime answering ``query_text`` on that node, or None; counts down ``times``
        (unless ``consume`` is false)."""
        for prime in self._primes:
            if prime.node is not None and prime.node != node_index and \
                    prime.node != node_address:
                continue
            if prime.matches(query_text):
                if prime.times is not None and consume:
                    prime.times -= 1
                    if prime.times <= 0:
                        self._primes.remove(prime)
                        self.version += 1
                return prime
        return None

    def has_expiring(self):
        return any(p.times is not None or p.delay for p in self._primes)


def prime_from_args(args):
    """Build a Prime from control-channel arguments (values tagged as by encode_value)."""
    args = dict(args)
    rows = args.pop("rows", None)
    if rows is not None:
        rows = [dict((k, decode_value(v)) for k, v in r.items()) if isinstance(r, dict)
                else [decode_value(v) for v in r] for r in rows]
    return Prime(rows=rows, **args)


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
    "ping": lambda self: True,
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


# --- primed answers and the query log ---------------------------------------------------------

CONSISTENCY_NAMES = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM",
                      "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE")


def consistency_code(value):
    """A consistency level code from a code or a name ('QUORUM')."""
    if isinstance(value, str):
        return CONSISTENCY_NAMES.index(value.upper())
    return int(value)


def strip_request_extras(flags, body):
    """A request body without its custom payload (flag 0x04); tracing adds nothing."""
    if flags & 0x04:
        _, pos = wire.read_bytes_map(body, 0)
        return body[pos:]
    return body


def type_option(cql_type):
    from cqlreactor.core import types as cql_types
    ctype = cql_types.parse_cql_type(cql_type) if isinstance(cql_type, str) else cql_type
    return ctype, cql_types.write_type_option(ctype)


def rows_body(columns, rows, version, keyspace="primed", table="primed"):
    parts = [_INT.pack(2), _INT.pack(0x0001), _INT.pack(len(columns)),
             wire.write_string(keyspace), wire.write_string(table)]
    ctypes = []
    for name, cql_type in columns:
        ctype, option = type_option(cql_type)
        ctypes.append(ctype)
        parts.append(wire.write_string(name))
        parts.append(option)
    parts.append(_INT.pack(len(rows)))
    for row in rows:
        for ctype, value in zip(ctypes, row):
            if value is None:
                parts.append(_INT.pack(-1))
            else:
                parts.append(wire.write_bytes(ctype.serialize(value, version)))
    return b"".join(parts)


def primed_prepared_body(prepared_id, prime, version):
    """PREPARED for a primed query the engine cannot prepare: bind markers from
    ``prime.params``, result columns from ``prime.columns``."""
    params = prime.params or []
    parts = [_INT.pack(4), wire.write_short_bytes(prepared_id)]
    if version >= 5:
        parts.append(wire.write_short_bytes(hashlib.md5(prepared_id).digest()))
    parts.append(_INT.pack(0x0001) + _INT.pack(len(params)))
    if version >= 4:
        parts.append(_INT.pack(0))                      # no partition key indexes known
    parts.append(wire.write_string("primed") + wire.write_string("primed"))
    for name, cql_type in params:
        parts.append(wire.write_string(name) + type_option(cql_type)[1])
    columns = prime.columns or []
    if columns:
        parts.append(_INT.pack(0x0001) + _INT.pack(len(columns)) + wire.write_string("primed")
                     + wire.write_string("primed"))
        for name, cql_type in columns:
            parts.append(wire.write_string(name) + type_option(cql_type)[1])
    else:
        parts.append(_INT.pack(0x0004) + _INT.pack(0))
    return b"".join(parts)


def describe_params(body, pos, version):
    consistency = struct.unpack_from(">H", body, pos)[0]
    pos += 2
    if version >= 5:
        flags = _INT.unpack_from(body, pos)[0]
        pos += 4
    else:
        flags = body[pos]
        pos += 1
    info = {"consistency": CONSISTENCY_NAMES[consistency]
            if consistency < len(CONSISTENCY_NAMES) else consistency}
    if flags & 0x01:
        count = struct.unpack_from(">H", body, pos)[0]
        pos += 2
        values = []
        names = []
        for _ in range(count):
            if flags & 0x40:
                name, pos = wire.read_string(body, pos)
                names.append(name)
            length = _INT.unpack_from(body, pos)[0]
            pos += 4
            if length < 0:
                values.append(None)
            else:
                values.append(bytes(body[pos:pos + length]).hex())
                pos += length
        info["values"] = values
        if names:
            info["names"] = names
    return info


def describe_batch(body, prepared_text):
    pos = 1
    count = struct.unpack_from(">H", body, pos)[0]
    pos += 2
    queries = []
    for _ in range(count):
        kind = body[pos]
        pos += 1
        if kind == 0:
            text, pos = wire.read_long_string(body, pos)
        else:
            prepared_id, pos = wire.read_short_bytes(body, pos)
            text = prepared_text.get(bytes(prepared_id))
        n = struct.unpack_from(">H", body, pos)[0]
        pos += 2
        for _ in range(n):
            length = _INT.unpack_from(body, pos)[0]
            pos += 4 + max(length, 0)
        queries.append(text)
    return queries


def describe_request(entry, compressors, prepared_text):
    """One query-log entry (connection id, version, compression, request frame) as a dict."""
    conn_id, version, compression, key = entry
    flags = key[1]
    opcode = key[4]
    body = key[9:]
    try:
        if flags & 0x01 and version < 5 and compression:
            body = compressors[compression].decompress_frame(body)
        body = strip_request_extras(flags, body)
        info = {"connection": conn_id, "opcode": _OPCODE_NAMES.get(opcode, opcode)}
        if opcode in (QUERY, PREPARE):
            info["query"], pos = wire.read_long_string(body, 0)
            if opcode == QUERY:
                info.update(describe_params(body, pos, version))
        elif opcode == EXECUTE:
            prepared_id, pos = wire.read_short_bytes(body, 0)
            info["prepared_id"] = bytes(prepared_id).hex()
            info["query"] = prepared_text.get(bytes(prepared_id))
            if version >= 5:
                _, pos = wire.read_short_bytes(body, pos)
            info.update(describe_params(body, pos, version))
        elif opcode == BATCH:
            info["queries"] = describe_batch(body, prepared_text)
        return info
    except Exception as exc:         # a malformed request is still logged
        return {"connection": conn_id, "opcode": _OPCODE_NAMES.get(opcode, opcode),
                "error": str(exc)}
