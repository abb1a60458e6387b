"""Server-side DESCRIBE, as Cassandra 4.0+ runs it (cqlsh 6.x sends DESCRIBE to every 4.x
server and prints what comes back).

Listings (DESCRIBE KEYSPACES / TABLES / TYPES / FUNCTIONS / AGGREGATES) answer the columns
``keyspace_name, type, name``; elements (DESCRIBE [ONLY] KEYSPACE / TABLE / TYPE / SCHEMA /
FULL SCHEMA / a bare name) add ``create_statement``, the CQL that re-creates the element, in
Cassandra's layout.  The simulator has no functions, aggregates, indexes or views, so those
listings are empty and describing one by name says it does not exist.  DESCRIBE CLUSTER and
WITH INTERNALS are refused with a clear error.
"""

import uuid

from cqlreactor.core import types as T
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine.ast_nodes import quote_identifier
from cqlreactor.testing.engine.errors import EngineError, INVALID, invalid
from cqlreactor.testing.engine.plans import _Plan
from cqlreactor.testing.engine.results import Column, Rows

__all__ = ["compile_describe", "keyspace_cql", "table_cql", "type_cql"]

_LIST_COLUMNS = [Column("system", "describe", name, T.TEXT)
                 for name in ("keyspace_name", "type", "name")]
_ELEMENT_COLUMNS = _LIST_COLUMNS + [Column("system", "describe", "create_statement", T.TEXT)]

# options system_schema.tables keeps that Cassandra 4 no longer prints (or never did)
_HIDDEN_OPTIONS = frozenset(["id", "flags", "dclocal_read_repair_chance", "read_repair_chance"])


# --- CQL of each element ------------------------------------------------------------------------

def _literal(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (_literal(k), _literal(v))
                                  for k, v in sorted(value.items()))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return "'%s'" % (str(value).replace("'", "''"),)


def _qualified(keyspace, name):
    return "%s.%s" % (quote_identifier(keyspace), quote_identifier(name))


def keyspace_cql(ks):
    """``CREATE KEYSPACE ...;`` of a store Keyspace, as Cassandra 4 prints it."""
    return "CREATE KEYSPACE %s WITH replication = %s  AND durable_writes = %s;" % (
        quote_identifier(ks.name), _literal(ks.replication), _literal(bool(ks.durable_writes)))


def _type_text(column):
    if column.type_text is not None:
        return column.type_text
    return P.render_type(column.type_expr)


def table_cql(table):
    """``CREATE TABLE ...;`` of a store Table: columns (key columns first, then the others by
    name), the primary key, CLUSTERING ORDER BY and the options, one per line."""
    pk, ck = table.partition_key, table.clustering
    others = sorted(table.static + table.regular, key=lambda c: c.name)
    lines = []
    single = len(pk) == 1 and not ck
    for c in pk + ck + others:
        line = "    %s %s" % (quote_identifier(c.name), _type_text(c))
        if c.kind == "static":
            line += " static"
        if single and c is pk[0]:
            line += " PRIMARY KEY"
        lines.append(line)
    if not single:
        key = ", ".join(quote_identifier(c.name) for c in pk)
        if len(pk) > 1:
            key = "(%s)" % key
        if ck:
            key += ", " + ", ".join(quote_identifier(c.name) for c in ck)
        lines.append("    PRIMARY KEY (%s)" % key)
    with_parts = []
    if ck:
        with_parts.append("CLUSTERING ORDER BY (%s)" % ", ".join(
            "%s %s" % (quote_identifier(c.name), c.order.upper()) for c in ck))
    if table.compact:
        with_parts.insert(0, "COMPACT STORAGE")
    for name in sorted(table.options):
        if name not in _HIDDEN_OPTIONS:
            with_parts.append("%s = %s" % (name, _literal(table.options[name])))
    text = "CREATE TABLE %s (\n%s\n)" % (_qualified(table.keyspace, table.name),
                                         ",\n".join(lines))
    if with_parts:
        text += " WITH " + "\n    AND ".join(with_parts)
    return text + ";"


def type_cql(udt):
    """``CREATE TYPE ...;`` of a store UserTypeDef."""
    fields = ",\n".join("    %s %s" % (quote_identifier(n), t)
                        for n, t in zip(udt.field_names, udt.field_texts))
    return "CREATE TYPE %s (\n%s\n);" % (_qualified(udt.keyspace, udt.name), fields)


# --- the statement --------------------------------------------------------------------------

def _text(value):
    return value.encode("utf-8")


def _keyspace_rows(ks, only=False):
    rows = [(ks.name, "keyspace", ks.name, keyspace_cql(ks))]
    if only:
        return rows
    for name, udt in ks.types.items():
        rows.append((ks.name, "type", name, type_cql(udt)))
    for name in sorted(ks.tables):
        rows.append((ks.name, "table", name, table_cql(ks.tables[name])))
    return rows


class _DescribePlan(_Plan):
    cacheable = False

    def __init__(self, stmt, keyspace):
        self.stmt = stmt
        self.keyspace = keyspace
        self.bind_specs = []
        self.marker_names = []
        self.pk_indexes = []
        listing = stmt.kind in ("keyspaces", "tables", "types", "functions", "aggregates")
        self.result_columns = _LIST_COLUMNS if listing else _ELEMENT_COLUMNS

    def run(self, engine, vals, ctx):
        rows = [tuple(_text(v) for v in row) for row in self._rows(engine)]
        return Rows(self.result_columns, rows)

    def _keyspace(self, engine, name):
        name = name or self.keyspace
        if name is None:
            raise invalid("No keyspace specified and no current keyspace")
        ks = engine.keyspaces.get(name)
        if ks is None:
            raise invalid("'%s' not found in keyspaces" % (name,))
        return ks

    def _user_keyspaces(self, engine, full):
        return [ks for name, ks in sorted(engine.keyspaces.items())
                if full or not ks.system]

    def _rows(self, engine):
        stmt = self.stmt
        kind = stmt.kind
        scope = ([self._keyspace(engine, None)] if self.keyspace
                 else [ks for _, ks in sorted(engine.keyspaces.items())])
        if kind == "keyspaces":
            return [(ks.name, "keyspace", ks.name) for _, ks in sorted(engine.keyspaces.items())]
        if kind == "tables":
            return [(ks.name, "table", t) for ks in scope for t in sorted(ks.tables)]
        if kind == "types":
            return [(ks.name, "type", t) for ks in scope for t in sorted(ks.types)]
        if kind in ("functions", "aggregates"):
            return []
        if kind == "schema":
            out = []
            for ks in self._user_keyspaces(engine, stmt.full):
                out.extend(_keyspace_rows(ks))
            return out
        if kind == "keyspace":
            return _keyspace_rows(self._keyspace(engine, stmt.keyspace), stmt.only)
        if kind == "table":
            ks = self._keyspace(engine, stmt.keyspace)
            table = ks.tables.get(stmt.name)
            if table is None:
                raise invalid("Table '%s' not found in keyspace '%s'" % (stmt.name, ks.name))
            return [(ks.name, "table", table.name, table_cql(table))]
        if kind == "type":
            ks = self._keyspace(engine, stmt.keyspace)
            udt = ks.types.get(stmt.name)
            if udt is None:
                raise invalid("User defined type '%s' not found in '%s'" % (stmt.name, ks.name))
            return [(ks.name, "type", udt.name, type_cql(udt))]
        if kind == "name":
            if stmt.keyspace is None and stmt.name in engine.keyspaces:
                return _keyspace_rows(engine.keyspaces[stmt.name])
            ks = self._keyspace(engine, stmt.keyspace)
            if stmt.name in ks.tables:
                return [(ks.name, "table", stmt.name, table_cql(ks.tables[stmt.name]))]
            if stmt.name in ks.types:
                return [(ks.name, "type", stmt.name, type_cql(ks.types[stmt.name]))]
            raise invalid("'%s' not found in keyspace '%s'" % (stmt.name, ks.name))
        raise invalid("%s '%s' not found in keyspace '%s'"
                      % (kind.capitalize(), stmt.name, stmt.keyspace or self.keyspace))


def compile_describe(engine, stmt, keyspace):
    """The plan of a DESCRIBE statement (EngineError for what the simulator cannot describe)."""
    if stmt.internals:
        raise EngineError(INVALID, "DESCRIBE ... WITH INTERNALS is not supported by the "
                          "simulated cluster (it keeps no dropped-column or table-id history)")
    if stmt.kind == "cluster":
        raise EngineError(INVALID, "DESCRIBE CLUSTER is not supported by the simulated "
                          "cluster; read system.local and system.peers instead")
    return _DescribePlan(stmt, keyspace)
