"""SELECT JSON and INSERT JSON, with Cassandra 4's JSON encoding of each type.

SELECT JSON answers one text column ``[json]``: per row an object whose keys are the selected
column names (a name that is not all lower case is written with its double quotes, as
Cassandra does: ``"\\"Name\\""``), values as Cassandra's ``toJSONString`` writes them: numbers
for the integer, floating point, decimal and counter types (NaN and infinities quoted),
``true``/``false``, strings for text, uuid, inet, ``"yyyy-mm-dd hh:mm:ss.fffZ"`` timestamps,
``"yyyy-mm-dd"`` dates, ``"hh:mm:ss.fffffffff"`` times, ``"0x..."`` blobs and ``"1h30m"``
durations; arrays for list, set, tuple and vector; objects for map (keys as strings) and UDT.

INSERT JSON takes the same shapes back (plus what ``fromJson`` accepts: numbers and booleans
written as strings, integer timestamps/dates/times); omitted columns are null, or left alone
with ``DEFAULT UNSET``.  The same encoding serves ``toJson(column)`` in a SELECT's selection
(``reads``: one text column ``system.tojson(column)``; a null value is the text ``null``) and
``fromJson(text)`` as a term of INSERT VALUES, UPDATE SET and WHERE (``plans``:
:func:`from_json_text` decodes the text as a value of the receiving column).
"""

import datetime
import decimal
import ipaddress
import json
import uuid

from cqlreactor.core import types as T
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import invalid
from cqlreactor.testing.engine.plans import _Plan
from cqlreactor.testing.engine.reads import _compile_select
from cqlreactor.testing.engine.results import Column, Rows
from cqlreactor.testing.engine.writes import _compile_insert, _modifiable_table

__all__ = ["compile_select_json", "compile_insert_json", "to_json", "from_json",
           "from_json_text"]

_EPOCH = datetime.datetime(1970, 1, 1)
_NUMBERS = (0x0002, 0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x000E, 0x0013, 0x0014)


# --- encoding -----------------------------------------------------------------------------------

def _duration_text(d):
    parts = []
    months, days, nanos = d.months, d.days, d.nanoseconds
    sign = "-" if (months < 0 or days < 0 or nanos < 0) else ""
    months, days, nanos = abs(months), abs(days), abs(nanos)
    for amount, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d")):
        if amount:
            parts.append("%d%s" % (amount, unit))
    for size, unit in ((3600 * 10 ** 9, "h"), (60 * 10 ** 9, "m"), (10 ** 9, "s"),
                       (10 ** 6, "ms"), (1000, "us"), (1, "ns")):
        if nanos >= size:
            parts.append("%d%s" % (nanos // size, unit))
            nanos %= size
    return sign + "".join(parts)


def _key(name):
    """A column or field name as Cassandra writes it as a JSON key."""
    if name != name.lower():
        name = '"%s"' % name
    return json.dumps(name, ensure_ascii=False)


def to_json(cql_type, value):
    """JSON text of one deserialized value of ``cql_type``, as Cassandra's toJSONString."""
    if value is None:
        return "null"
    code = cql_type.type_code
    if isinstance(cql_type, T.UserType):
        return "{%s}" % ", ".join("%s: %s" % (_key(n), to_json(t, v)) for n, t, v in zip(
            cql_type.field_names, cql_type.subtypes, value))
    if isinstance(cql_type, T.TupleType):
        return "[%s]" % ", ".join(to_json(t, v) for t, v in zip(cql_type.subtypes, value))
    if isinstance(cql_type, T.MapType):
        kt, vt = cql_type.subtypes
        items = []
        for k, v in value.items():
            key = to_json(kt, k)
            if not key.startswith('"'):
                key = json.dumps(key, ensure_ascii=False)
            items.append("%s: %s" % (key, to_json(vt, v)))
        return "{%s}" % ", ".join(items)
    if isinstance(cql_type, (T.ListType, T.SetType, T.VectorType)):
        sub = cql_type.subtypes[0]
        return "[%s]" % ", ".join(to_json(sub, v) for v in value)
    if code == 0x0004:
        return "true" if value else "false"
    if code in _NUMBERS:
        if isinstance(value, float) and (value != value or value in (float("inf"),
                                                                     float("-inf"))):
            return '"%s"' % ("NaN" if value != value else
                             ("Infinity" if value > 0 else "-Infinity"))
        return str(value) if isinstance(value, decimal.Decimal) else repr(value)
    if code == 0x000B:
        text = value.strftime("%Y-%m-%d %H:%M:%S") + ".%03dZ" % (value.microsecond // 1000)
    elif code == 0x0011:
        text = str(value)
    elif code == 0x0012:
        ns = value.nanosecond_time if hasattr(value, "nanosecond_time") else int(value)
        secs, frac = divmod(ns, 10 ** 9)
        text = "%02d:%02d:%02d.%09d" % (secs // 3600, secs // 60 % 60, secs % 60, frac)
    elif code == 0x0003:
        text = "0x" + bytes(value).hex()
    elif code == 0x0015:
        text = _duration_text(value)
    else:
        text = str(value)
    return json.dumps(text, ensure_ascii=False)


# --- decoding ---------------------------------------------------------------------------------

def _bad(value, cql_type, column):
    return invalid("Error decoding JSON value for %s: Unable to make %s from %s"
                   % (column, cql_type.name, json.dumps(value)))


def from_json(cql_type, value, column):
    """The Python value (for ``cql_type.serialize``) of a JSON value, as Cassandra's
    fromJSONObject takes it; EngineError (Invalid) naming the column otherwise."""
    if value is None:
        return None
    code = cql_type.type_code
    try:
        if isinstance(cql_type, T.UserType):
            if not isinstance(value, dict):
                raise _bad(value, cql_type, column)
            fields = {}
            for k, v in value.items():
                name = k[1:-1] if len(k) > 1 and k[0] == k[-1] == '"' else k.lower()
                if name not in cql_type.field_names:
                    raise invalid("Unknown field '%s' in value of user defined type %s"
                                  % (name, cql_type.udt_name))
                fields[name] = v
            return tuple(from_json(t, fields.get(n), column)
                         for n, t in zip(cql_type.field_names, cql_type.subtypes))
        if isinstance(cql_type, T.TupleType):
            if not isinstance(value, list) or len(value) != len(cql_type.subtypes):
                raise _bad(value, cql_type, column)
            return tuple(from_json(t, v, column) for t, v in zip(cql_type.subtypes, value))
        if isinstance(cql_type, T.MapType):
            if not isinstance(value, dict):
                raise _bad(value, cql_type, column)
            kt, vt = cql_type.subtypes
            out = {}
            for k, v in value.items():
                key = k
                if kt.type_code not in (0x0001, 0x000D):
                    try:
                        key = json.loads(k, parse_float=decimal.Decimal)
                    except ValueError:
                        key = k
                out[from_json(kt, key, column)] = from_json(vt, v, column)
            return out
        if isinstance(cql_type, (T.ListType, T.SetType, T.VectorType)):
            if not isinstance(value, list):
                raise _bad(value, cql_type, column)
            items = [from_json(cql_type.subtypes[0], v, column) for v in value]
            return set(items) if isinstance(cql_type, T.SetType) else items
        if code == 0x0004:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _bad(value, cql_type, column)
        if code in (0x0002, 0x0005, 0x0009, 0x000E, 0x0013, 0x0014):
            if isinstance(value, (bool, float, decimal.Decimal)):
                raise _bad(value, cql_type, column)
            return int(value)
        if code in (0x0007, 0x0008):
            if isinstance(value, bool):
                raise _bad(value, cql_type, column)
            return float(value)
        if code == 0x0006:
            if isinstance(value, bool):
                raise _bad(value, cql_type, column)
            return decimal.Decimal(str(value))
        if code in (0x0001, 0x000D):
            if not isinstance(value, str):
                raise _bad(value, cql_type, column)
            return value
        if code in (0x000C, 0x000F):
            return uuid.UUID(value)
        if code == 0x000B:
            return value if isinstance(value, int) else V.parse_timestamp(value)
        if code == 0x0011:
            if isinstance(value, int):
                return T.Date(value)
            return datetime.datetime.strptime(value.strip(), "%Y-%m-%d").date()
        if code == 0x0012:
            if isinstance(value, int):
                return T.Time(value)
            return T.Time(V._parse_time(value))
        if code == 0x0003:
            if not isinstance(value, str) or not value.startswith("0x"):
                raise invalid("Value '%s' is not a valid blob representation: String "
                              "representation of blob is missing 0x prefix: %s"
                              % (value, value))
            return bytes.fromhex(value[2:])
        if code == 0x0010:
            return str(ipaddress.ip_address(value))
        if code == 0x0015:
            return V._parse_duration(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise invalid("Error decoding JSON value for %s: %s" % (column, exc))
    raise invalid("INSERT JSON of a %s column is not supported by the simulator"
                  % (cql_type.name,))


def from_json_text(cql_type, text, column):
    """fromJson(text) for a ``cql_type`` receiver: the serialized value (None for JSON null),
    or EngineError (Invalid) as Cassandra's FromJsonFct words it."""
    try:
        document = json.loads(text, parse_float=decimal.Decimal)
    except ValueError as exc:
        raise invalid("Could not decode JSON string '%s': %s" % (text, exc))
    value = from_json(cql_type, document, column)
    return None if value is None else cql_type.serialize(value)


# --- plans ------------------------------------------------------------------------------------

class _SelectJsonPlan(_Plan):
    """A SELECT's plan whose rows come back as one ``[json]`` text column."""

    def __init__(self, inner, table):
        self.inner = inner
        self.cacheable = inner.cacheable
        self.bind_specs = inner.bind_specs
        self.marker_names = inner.marker_names
        self.pk_indexes = inner.pk_indexes
        self.result_columns = [Column(table.keyspace, table.name, "[json]", T.TEXT)]

    def run(self, engine, vals, ctx):
        result = self.inner.run(engine, vals, ctx)
        if not isinstance(result, Rows):
            return result
        columns = result.columns
        keys = [_key(c.name) for c in columns]
        rows = []
        for row in result.rows:
            text = "{%s}" % ", ".join("%s: %s" % (k, to_json(c.cql_type, c.cql_type.deserialize(
                cell, ctx.protocol_version))) for k, c, cell in zip(keys, columns, row))
            rows.append((text.encode("utf-8"),))
        return Rows(self.result_columns, rows, result.paging_state)


def compile_select_json(engine, stmt, keyspace):
    stmt.json = False
    try:
        inner = _compile_select(engine, stmt, keyspace)
    finally:
        stmt.json = True
    return _SelectJsonPlan(inner, inner.table)


class _InsertJsonPlan(_Plan):
    """INSERT ... JSON: the JSON map, decoded when the statement runs (a bind marker's value
    arrives then), becomes an INSERT of every named column (and nulls, unless DEFAULT UNSET)."""

    cacheable = False

    def __init__(self, engine, stmt, keyspace):
        self.stmt = stmt
        self.keyspace = keyspace
        probe = P.Insert(stmt.keyspace, stmt.table, [], [], False, None, None, 0)
        # the table must exist now (PREPARE fails as for any INSERT)
        self.table = _modifiable_table(engine, probe, keyspace)
        if isinstance(stmt.ttl, P.Bind) or isinstance(stmt.timestamp, P.Bind):
            raise invalid("INSERT JSON with a bind marker in USING is not supported by the "
                          "simulator; write the TTL/TIMESTAMP as literals")
        if isinstance(stmt.json, P.Bind):
            self.bind_specs = [Column(self.table.keyspace, self.table.name, "[json]", T.TEXT)]
            self.marker_names = [stmt.json.name]
        else:
            self.bind_specs = []
            self.marker_names = []
        self.pk_indexes = []
        self.result_columns = []

    def run(self, engine, vals, ctx):
        stmt = self.stmt
        if isinstance(stmt.json, P.Bind):
            raw = vals[0]
            if raw is None or not isinstance(raw, bytes):
                raise invalid("Got null for INSERT JSON values")
            text = raw.decode("utf-8")
        else:
            text = stmt.json.value
        try:
            # decimals keep every digit written; float() takes them for double columns
            document = json.loads(text, parse_float=decimal.Decimal)
        except ValueError as exc:
            raise invalid("Could not decode JSON string as a map: %s. (String was: %s)"
                          % (exc, text))
        if not isinstance(document, dict):
            raise invalid("Could not decode JSON string as a map: not an object. "
                          "(String was: %s)" % (text,))
        table = engine.keyspaces[self.table.keyspace].tables[self.table.name]
        given = {}
        for key, value in document.items():
            name = key[1:-1] if len(key) > 1 and key[0] == key[-1] == '"' else key.lower()
            if name not in table.columns:
                raise invalid("JSON values map contains unrecognized column: %s" % (key,))
            given[name] = value
        names = list(given)
        if not stmt.default_unset:
            names += [c.name for c in table.star if c.name not in given]
        cells = []
        for name in names:
            column = table.columns[name]
            value = from_json(column.cql_type, given.get(name), name)
            cells.append(None if value is None else column.cql_type.serialize(value))
        insert = P.Insert(table.keyspace, table.name, names,
                          [P.Bind(i, None) for i in range(len(names))], stmt.if_not_exists,
                          stmt.ttl, stmt.timestamp, len(names))
        plan = _compile_insert(engine, insert, self.keyspace)
        self.result_columns = plan.result_columns
        return plan.run(engine, plan.bind(cells, None), ctx)


def compile_insert_json(engine, stmt, keyspace):
    return _InsertJsonPlan(engine, stmt, keyspace)
