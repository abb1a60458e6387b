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
``jsoncodec.from_json_text`` decodes the text as a value of the receiving column).  The
encoding itself lives in ``jsoncodec``; this module holds the two plans.
"""
import decimal
import json

from cqlreactor.core import types as T
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine.errors import invalid
from cqlreactor.testing.engine.jsoncodec import from_json, json_key, to_json
from cqlreactor.testing.engine.plans import _Plan
from cqlreactor.testing.engine.reads import _compile_select
from cqlreactor.testing.engine.results import Column, Rows
from cqlreactor.testing.engine.writes import _compile_insert, _modifiable_table

__all__ = ["compile_select_json", "compile_insert_json"]

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
        keys = [json_key(c.name) for c in columns]
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
