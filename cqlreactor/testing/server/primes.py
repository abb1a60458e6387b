"""Primed answers and the query log of the simulated cluster.

A prime is a canned answer (rows, an error, a delay) for a query text; ``PrimeTable`` holds a
cluster's primes, newest first.  The answers are encoded with ``cqlreactor.core.results`` like
the engine's.  ``describe_request`` turns a logged request frame into the dict ``served()``
returns.
"""

import datetime
import decimal
import hashlib
import re
import uuid

from cqlreactor.core import messages, results, types as cql_types, wire
from cqlreactor.testing.server.control import decode_value, encode_value

__all__ = ["Prime", "PrimeTable", "prime_from_args", "describe_request", "rows_body",
           "primed_prepared_body", "ERROR_CODES"]

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


def _primed_columns(columns):
    """(name, CQL type text or CqlType) pairs -> (keyspace, table, name, CqlType) metadata."""
    return [("primed", "primed", name,
             cql_types.parse_cql_type(ctype) if isinstance(ctype, str) else ctype)
            for name, ctype in columns]


def rows_body(columns, rows, version):
    """The Rows RESULT body of a prime: ``rows`` hold Python values."""
    metadata = _primed_columns(columns)
    serialized = [[None if value is None else column[3].serialize(value, version)
                   for column, value in zip(metadata, row)] for row in rows]
    return results.rows_body(metadata, serialized, protocol_version=version)


def primed_prepared_body(prepared_id, prime, version):
    """PREPARED for a primed query the engine cannot prepare: bind markers from
    ``prime.params``, result columns from ``prime.columns``."""
    columns = _primed_columns(prime.columns or [])
    return results.PreparedResult(
        prepared_id, _primed_columns(prime.params or []), (), columns or None,
        hashlib.md5(prepared_id).digest()).encode_body(version)


def _describe_parameters(info, parameters):
    consistency = parameters.consistency
    info["consistency"] = CONSISTENCY_NAMES[consistency] \
        if 0 <= consistency < len(CONSISTENCY_NAMES) else consistency
    if parameters.values is not None:
        info["values"] = [bytes(v).hex() if isinstance(v, (bytes, bytearray, memoryview))
                          else None for v in parameters.values]
        if parameters.names:
            info["names"] = list(parameters.names)
    serial = getattr(parameters, "serial_consistency", None)
    if serial is not None:
        info["serial_consistency"] = CONSISTENCY_NAMES[serial] \
            if 0 <= serial < len(CONSISTENCY_NAMES) else serial
    _describe_shared(info, parameters)


def _describe_shared(info, fields):
    """The default timestamp and the v5 keyspace, when the request carried them."""
    if fields.timestamp is not None:
        info["timestamp"] = fields.timestamp
    if fields.keyspace is not None:
        info["keyspace"] = fields.keyspace


def describe_request(entry, prepared_text):
    """One query-log entry (connection id, (version, flags, opcode, body)) as a dict; the body
    is as the framing delivered it (decompressed)."""
    conn_id, (version, flags, opcode, body) = entry
    try:
        info = {"connection": conn_id, "opcode": _OPCODE_NAMES.get(opcode, opcode)}
        if flags & 0x02:
            info["tracing"] = True
        if flags & 0x04:
            payload, _ = wire.read_bytes_map(body, 0)
            info["custom_payload"] = dict((k, bytes(v).hex()) for k, v in payload.items())
        body = strip_request_extras(flags, body)
        if opcode in (QUERY, PREPARE, EXECUTE, BATCH):
            message = messages.OPCODES[opcode].decode_body(body, version)
        if opcode in (QUERY, PREPARE):
            info["query"] = message.query
            if opcode == QUERY:
                _describe_parameters(info, message.parameters)
        elif opcode == EXECUTE:
            prepared_id = bytes(message.query_id)
            info["prepared_id"] = prepared_id.hex()
            info["query"] = prepared_text.get(prepared_id)
            _describe_parameters(info, message.parameters)
        elif opcode == BATCH:
            info["queries"] = [s[0] if isinstance(s[0], str) else prepared_text.get(bytes(s[0]))
                               for s in message.statements]
            _describe_shared(info, message)
        return info
    except Exception as exc:         # a malformed request is still logged
        return {"connection": conn_id, "opcode": _OPCODE_NAMES.get(opcode, opcode),
                "error": str(exc)}
