"""The control channel of the simulated cluster: primes, faults and the loopback JSON protocol.

The server process (``server.py``) listens on a loopback TCP port besides its CQL nodes.  A
client sends one JSON object per line, ``{"op": "stop_node", "args": {"node": 1}}``, and gets
one JSON line back, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
``ControlClient`` is that client; ``SimulatedCluster`` (``cluster.py``) wraps it in methods.

Operations (``args`` in brackets; ``node`` is a 0-based index or an address "127.0.0.2"):

    prime        [query, rows, columns, error, delay, node, regex, times, params]
    stop_node    [node]            closes its connections, refuses new ones, tells the others
    start_node   [node]            listens again; its prepared statements are forgotten
    drop_connections [node=None]   closes the client connections (all nodes when None)
    stall        [node, seconds]   reads requests but answers nothing for that long
    close_after  [node, n]         answers n more requests, closes the connection of the next
    corrupt_next_frame [node]      corrupts the next response frame (see server.py)
    clear        []                removes primes and faults, empties the query logs
    served       [node, clear]     the requests the node served (a list of dicts)
    connections  [node=None]       open client connection count(s)
    nodes        []                address, host id, dc, rack, up/down of every node

Values in primed rows and in query logs travel through JSON with a small tagging scheme
(``encode_value`` / ``decode_value``): bytes, UUIDs, Decimals, datetimes, dates, times, sets,
tuples and maps with non-string keys are tagged objects such as ``{"$bytes": "00ff"}``.
"""

import datetime
import decimal
import ipaddress
import json
import re
import socket
import uuid

__all__ = ["Prime", "PrimeTable", "ControlClient", "ControlError", "encode_value",
           "decode_value", "ERROR_CODES"]

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
        if all(isinstance(k, str) for k in value):
            return {"$map": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
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

