"""Compiled statements ("plans") of the simulated cluster's CQL engine.

A statement is parsed once, then compiled against the current schema into a plan: column
lookups, literal conversions and bind-marker specs are resolved at compile time, so running a
cached plan only evaluates bound values and touches the store. Plans are cached by
(keyspace, query text) and dropped on every schema change.
"""

import bisect
import itertools
import math
import struct
import uuid

from cqlreactor.core import types as T
from cqlreactor.core.murmur3 import murmur3_token
from cqlreactor.testing import cql_parser as P
from cqlreactor.testing import cql_values as V
from cqlreactor.testing.engine import (
    Column, EngineError, Rows, Void, INVALID, SYNTAX_ERROR, PROTOCOL_ERROR, _invalid,
    _FILTERING)
from cqlreactor.testing.store import routing_key, split_routing_key, sort_key_for

_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")
_UNSET = T.UNSET_VALUE
_TRUE = b"\x01"
_FALSE = b"\x00"


class _Plan(object):
    """Base of every compiled statement."""

    cacheable = True
    bind_specs = ()
    marker_names = ()
    pk_indexes = ()
    result_columns = ()

    def bind(self, values, names):
        """Order the bound values by marker; normalise buffers; unknown objects mean unset."""
        n = len(self.bind_specs)
        if names:
            given = {}
            for name, value in zip(names, values or ()):
                given[name] = value
                given.setdefault(name.lower(), value)
            vals = []
            for i in range(n):
                name = self.marker_names[i] or self.bind_specs[i].name
                if name in given:
                    vals.append(given[name])
                elif name.lower() in given:
                    vals.append(given[name.lower()])
                else:
                    raise _invalid("Invalid unset value for %s" % (name,))
        else:
            vals = list(values) if values else []
            if len(vals) != n:
                raise _invalid("Invalid amount of bind variables: expected %d, got %d"
                               % (n, len(vals)))
        for i, v in enumerate(vals):
            if v is None or type(v) is bytes:
                continue
            if isinstance(v, (bytearray, memoryview)):
                vals[i] = bytes(v)
            else:
                vals[i] = _UNSET
        return vals

    def run(self, engine, vals, ctx):
        raise NotImplementedError


# --- compile helpers ---------------------------------------------------------------------------

class _Compiler(object):
    """Resolves names and terms of one statement; collects bind-marker specs."""

    def __init__(self, engine, stmt, keyspace):
        self.engine = engine
        self.keyspace = keyspace
        count = getattr(stmt, "bind_count", 0) or 0
        self.specs = [None] * count
        self.names = [None] * count

    def user_types(self, ks_name):
        ks = self.engine.keyspaces.get(ks_name)
        return ks.types if ks is not None else {}

    def spec(self, bind, ks, table, name, ctype):
        self.specs[bind.index] = Column(ks, table, bind.name or name, ctype)
        self.names[bind.index] = bind.name

    def finish(self, plan):
        for i, s in enumerate(self.specs):
            if s is None:    # a marker in a position we did not type (should not happen)
                self.specs[i] = Column(self.keyspace or "", "", "[unknown]", T.BLOB)
        plan.bind_specs = self.specs
        plan.marker_names = self.names
        return plan

    def term(self, term, column, table, name=None, type_expr=None, ctype=None):
        """A getter vals -> bytes|None|UNSET for ``term`` typed as ``column`` (a ColumnDef),
        or as (type_expr, ctype) when given."""
        texpr = type_expr if type_expr is not None else column.type_expr
        ctyp = ctype if ctype is not None else column.cql_type
        cname = name or column.name
        udts = self.user_types(table.keyspace)
        if isinstance(term, P.Bind):
            self.spec(term, table.keyspace, table.name, cname, ctyp)
            return _bind_getter(term.index, texpr, ctyp, cname)
        if isinstance(term, P.Const) or (isinstance(term, P.Collection) and
                                         not _has_markers(term)):
            try:
                value = V.python_to_bytes(V.literal_value(term, texpr, cname), texpr, ctyp,
                                          udts, cname)
            except ValueError as exc:
                raise _invalid(str(exc))
            return _const(value)
        if isinstance(term, P.Collection):
            return self.collection(term, column, table, cname, texpr, ctyp)
        if isinstance(term, P.FuncCall):
            return self.function(term, cname, texpr)
        raise _invalid("Invalid term for %s" % cname)

    def collection(self, term, column, table, cname, texpr, ctyp):
        base = texpr
        while base.name == "frozen":
            base = base.params[0]
        kind = term.kind
        if base.name in ("list", "set") and kind in ("list", "set"):
            sub = base.params[0]
            getters = [self.term(i, column, table, cname, sub, ctyp.subtypes[0])
                       for i in term.items]
            is_set = base.name == "set"

            def get(vals):
                cells = []
                for g in getters:
                    v = g(vals)
                    if v is None or v is _UNSET:
                        raise _invalid("null is not supported inside collections")
                    cells.append(v)
                data = V.join_cells(cells)
                return V.normalize(base, data) if is_set else data
            return get
        if base.name == "map" and kind == "map":
            kt, vt = base.params
            pairs = [(self.term(k, column, table, cname, kt, ctyp.subtypes[0]),
                      self.term(v, column, table, cname, vt, ctyp.subtypes[1]))
                     for k, v in term.items]

            def get(vals):
                out = []
                for gk, gv in pairs:
                    k, v = gk(vals), gv(vals)
                    if k is None or v is None or k is _UNSET or v is _UNSET:
                        raise _invalid("null is not supported inside collections")
                    out.append((k, v))
                return V.normalize(base, V.join_pairs(out))
            return get
        if base.name == "tuple" and kind == "tuple":
            getters = [self.term(i, column, table, cname, t, c)
                       for i, t, c in zip(term.items, base.params, ctyp.subtypes)]

            def get(vals):
                out = []
                for g in getters:
                    v = g(vals)
                    if v is None or v is _UNSET:
                        out.append(b"\xff\xff\xff\xff")
                    else:
                        out.append(_I32.pack(len(v)) + v)
                return b"".join(out)
            return get
        if base.name == "udt" and kind == "udt":
            udef = self.user_types(table.keyspace).get(base.params[0])
            given = dict(term.items)
            getters = []
            for i, (fname, ftype) in enumerate(zip(udef.field_names, udef.field_types)):
                t = given.pop(fname, None)
                getters.append(None if t is None else
                               self.term(t, column, table, cname, ftype, ctyp.subtypes[i]))
            if given:
                raise _invalid("Unknown field '%s' in value of user defined type %s"
                               % (sorted(given)[0], udef.name))

            def get(vals):
                out = []
                for g in getters:
                    v = None if g is None else g(vals)
                    if v is None or v is _UNSET:
                        out.append(b"\xff\xff\xff\xff")
                    else:
                        out.append(_I32.pack(len(v)) + v)
                while out and out[-1] == b"\xff\xff\xff\xff":
                    out.pop()
                return b"".join(out)
            return get
        raise _invalid("Invalid %s literal for %s of type %s"
                       % (kind, cname, P.render_type(texpr)))

    def function(self, term, cname, texpr):
        name = term.name
        base = texpr.name
        if name == "now" and not term.args:
            if base == "timeuuid" or base == "uuid":
                return lambda vals: uuid.uuid1().bytes
        elif name == "uuid" and not term.args:
            if base == "uuid":
                return lambda vals: uuid.uuid4().bytes
        elif name in ("currenttimestamp", "totimestamp", "tounixtimestamp", "dateof",
                      "unixtimestampof") and base in ("timestamp", "bigint"):
            engine = self.engine
            return lambda vals: _I64.pack(int(engine.clock() * 1000))
        elif name in ("currentdate", "todate") and base == "date":
            engine = self.engine
            return lambda vals: struct.pack(">I", int(engine.clock() // 86400) + (1 << 31))
        elif name == "currenttimeuuid" and base == "timeuuid":
            return lambda vals: uuid.uuid1().bytes
        else:
            raise _invalid("Unknown function %s called" % (name,))
        raise _invalid("Type error: cannot assign result of function system.%s (type %s) to "
                       "%s (type %s)" % (name, "timeuuid" if name == "now" else "uuid", cname,
                                         P.render_type(texpr)))

    def int_term(self, term, table, name, allow_negative=False):
        if term is None:
            return None
        if isinstance(term, P.Bind):
            self.spec(term, table.keyspace, table.name, name, T.INT)
            i = term.index

            def get(vals):
                v = vals[i]
                if v is None or v is _UNSET:
                    return None
                if len(v) != 4:
                    raise _invalid("Invalid value for %s: expected 4 bytes" % name)
                return _I32.unpack(v)[0]
            return get
        if isinstance(term, P.Const) and term.kind == "int":
            value = term.value
            return lambda vals: value
        raise _invalid("Invalid value for %s" % name)

    def timestamp_term(self, term, table):
        if term is None:
            return None
        if isinstance(term, P.Bind):
            self.spec(term, table.keyspace, table.name, "[timestamp]", T.BIGINT)
            i = term.index

            def get(vals):
                v = vals[i]
                if v is None or v is _UNSET:
                    return None
                if len(v) != 8:
                    raise _invalid("Invalid value for timestamp: expected 8 bytes")
                return _I64.unpack(v)[0]
            return get
        if isinstance(term, P.Const) and term.kind == "int":
            value = term.value
            return lambda vals: value
        raise _invalid("Invalid value for the timestamp")


def _has_markers(term):
    if isinstance(term, P.Bind) or isinstance(term, P.FuncCall):
        return True
    if isinstance(term, P.Collection):
        for item in term.items:
            if isinstance(item, tuple):
                if any(_has_markers(x) for x in item if not isinstance(x, str)):
                    return True
            elif _has_markers(item):
                return True
    return False


def _const(value):
    return lambda vals: value


def _bind_getter(index, texpr, ctype, cname):
    base = texpr
    while base.name == "frozen":
        base = base.params[0]
    normalize = base.name in ("set", "map")
    collection = base.name in ("list", "set", "map")
    deserialize = ctype.deserialize

    def get(vals):
        v = vals[index]
        if v is None or v is _UNSET:
            return v
        if collection and not v:
            return b"\x00\x00\x00\x00"      # an empty collection
        try:
            deserialize(v)
            if normalize:
                return V.normalize(base, v)
        except Exception as exc:  # noqa: BLE001 - any decode complaint is an invalid value
            raise _invalid("Invalid value for column %s of type %s: %s"
                           % (cname, ctype.name, exc))
        return v
    return get


def _column(table, name):
    c = table.columns.get(name)
    if c is None:
        raise _invalid("Undefined column name %s" % (name,))
    return c


def _check_table_name(engine, stmt, keyspace):
    return engine._table(stmt.keyspace, stmt.table, keyspace)


# --- WHERE analysis ----------------------------------------------------------------------------

class _Where(object):
    """Restrictions of a WHERE clause, split by what they restrict."""

    def __init__(self):
        self.pk = {}            # name -> ('eq', getter) | ('in', [getters]) | ('inbind', getter)
        self.token = []         # (op, getter)
        self.ck = {}            # name -> list of (op, getter or list)
        self.filters = []       # (ColumnDef, op, getter or list)


def _analyze_where(comp, table, relations, allow_filtering, for_select=True):
    w = _Where()
    for rel in relations:
        col = rel.column
        if isinstance(col, tuple):      # token(...)
            names = col[1]
            if [c.name for c in table.partition_key] != names:
                raise _invalid("The token function arguments must be in the partition key "
                               "order: %s" % ", ".join(c.name for c in table.partition_key))
            if rel.op not in ("=", "<", "<=", ">", ">="):
                raise _invalid("Unsupported operator %s on the token function" % rel.op)
            w.token.append((rel.op, _token_getter(comp, table, rel.term)))
            continue
        c = _column(table, col)
        if rel.op == "IN":
            if isinstance(rel.term, list):
                getters = [comp.term(t, c, table) for t in rel.term]
                restr = ("in", getters)
            else:
                ltype = T.ListType(c.cql_type)
                lexpr = P.TypeExpr("list", [c.type_expr])
                if isinstance(rel.term, P.Bind):
                    comp.spec(rel.term, table.keyspace, table.name, "in(%s)" % c.name, ltype)
                    idx = rel.term.index

                    def getter(vals, idx=idx, c=c):
                        v = vals[idx]
                        if v is None or v is _UNSET:
                            raise _invalid("Invalid null value for IN restriction on %s"
                                           % c.name)
                        try:
                            return V.split_cells(v)
                        except ValueError as exc:
                            raise _invalid(str(exc))
                    restr = ("inbind", getter)
                else:
                    raise _invalid("Invalid IN restriction on %s" % c.name)
                del ltype, lexpr
        elif rel.op in ("CONTAINS", "CONTAINS KEY"):
            base = c.type_expr
            while base.name == "frozen":
                base = base.params[0]
            if base.name not in ("list", "set", "map"):
                raise _invalid("Cannot use %s on non-collection column %s" % (rel.op, c.name))
            if rel.op == "CONTAINS KEY" and base.name != "map":
                raise _invalid("Cannot use CONTAINS KEY on non-map column %s" % c.name)
            sub = base.params[0] if (rel.op == "CONTAINS KEY" or base.name != "map") \
                else base.params[1]
            subc = c.cql_type.subtypes[0] if (rel.op == "CONTAINS KEY" or base.name != "map") \
                else c.cql_type.subtypes[1]
            g = comp.term(rel.term, c, table, None, sub, subc)
            w.filters.append((c, rel.op, g))
            continue
        elif rel.op == "LIKE":
            raise _invalid("LIKE restriction is only supported on properly indexed columns. "
                           "%s LIKE ... is not valid." % c.name)
        else:
            restr = (rel.op, comp.term(rel.term, c, table))
        if c.kind == "partition_key":
            if restr[0] in ("<", "<=", ">", ">=", "!="):
                raise _invalid("Only EQ and IN relation are supported on the partition key "
                               "(unless you use the token() function)")
            if c.name in w.pk:
                raise _invalid("%s cannot be restricted by more than one relation if it "
                               "includes an Equal" % c.name)
            w.pk[c.name] = restr if restr[0] != "=" else ("eq", restr[1])
        elif c.kind == "clustering":
            if restr[0] == "!=":
                raise _invalid("Unsupported \"!=\" relation: %s != ..." % c.name)
            w.ck.setdefault(c.name, []).append(restr)
        else:
            if restr[0] == "!=":
                raise _invalid("Unsupported \"!=\" relation: %s != ..." % c.name)
            w.filters.append((c, restr[0], restr[1]))
    return w


def _token_getter(comp, table, term):
    if isinstance(term, P.Bind):
        comp.spec(term, table.keyspace, table.name, "partition key token", T.BIGINT)
        i = term.index

        def get(vals):
            v = vals[i]
            if v is None or v is _UNSET or len(v) != 8:
                raise _invalid("Invalid token value")
            return _I64.unpack(v)[0]
        return get
    if isinstance(term, P.Const) and term.kind == "int":
        value = term.value
        return lambda vals: value
    if isinstance(term, P.FuncCall) and term.name == "token":
        raise _invalid("token() on values is not supported by the simulator")
    raise _invalid("Invalid token value")


def _pk_values(table, where, vals):
    """Lists of serialized values per partition key column."""
    out = []
    for c in table.partition_key:
        kind, g = where.pk[c.name]
        if kind == "eq":
            v = g(vals)
            if v is None:
                raise _invalid("Invalid null value in condition for column %s" % c.name)
            if v is _UNSET:
                raise _invalid("Invalid unset value for column %s" % c.name)
            out.append([v])
        elif kind == "in":
            vs = []
            for gi in g:
                v = gi(vals)
                if v is None or v is _UNSET:
                    raise _invalid("Invalid null value in condition for column %s" % c.name)
                vs.append(v)
            out.append(vs)
        else:
            out.append(g(vals))
    return out


def _partition_keys(table, where, vals):
    """[(routing key, components)] sorted as Cassandra returns IN partitions."""
    lists = _pk_values(table, where, vals)
    if len(lists) == 1 and len(lists[0]) == 1:
        v = lists[0][0]
        return [(v, (v,))]
    keyfns = [sort_key_for(c.type_expr) for c in table.partition_key]
    seen = {}
    for comps in itertools.product(*lists):
        comps = tuple(comps)
        seen[routing_key(comps)] = comps
    return sorted(seen.items(), key=lambda kv: tuple(f(x) for f, x in zip(keyfns, kv[1])))


def _compare(op, a, b):
    if op == "=":
        return a == b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "!=":
        return a != b
    return False


# --- SELECT ------------------------------------------------------------------------------------

class _SelectPlan(_Plan):
    pass


def _compile_select(engine, stmt, keyspace):
    table = _check_table_name(engine, stmt, keyspace)
    ks = engine.keyspaces[table.keyspace]
    comp = _Compiler(engine, stmt, keyspace)
    plan = _SelectPlan()
    plan.table = table
    plan.ks = ks
    if stmt.json:
        raise _invalid("SELECT JSON is not supported by the simulator")

    # selection
    outs = []          # (kind, arg) per output column
    cols = []
    aggregate = False
    if stmt.selectors is None:
        for c in table.star:
            outs.append(_accessor(table, c))
            cols.append(Column(table.keyspace, table.name, c.name, c.cql_type))
    else:
        for sel in stmt.selectors:
            if sel.kind == "column":
                c = _column(table, sel.column)
                outs.append(_accessor(table, c))
                cols.append(Column(table.keyspace, table.name, sel.alias or c.name, c.cql_type))
            elif sel.kind == "count":
                if sel.column is not None:
                    c = _column(table, sel.column)
                    outs.append(("count", c))
                    name = "system.count(%s)" % c.name
                else:
                    outs.append(("count", None))
                    name = "count"
                aggregate = True
                cols.append(Column(table.keyspace, table.name, sel.alias or name, T.BIGINT))
            elif sel.kind in ("writetime", "ttl"):
                c = _column(table, sel.column)
                if c.kind in ("partition_key", "clustering"):
                    raise _invalid("Cannot use selection function %s on PRIMARY KEY part %s"
                                   % ("writeTime" if sel.kind == "writetime" else "ttl",
                                      c.name))
                if c.is_multicell:
                    raise _invalid("Cannot use selection function %s on non-frozen "
                                   "collection %s" % (sel.kind, c.name))
                outs.append((sel.kind, c))
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "%s(%s)" % (sel.kind, c.name),
                                   T.BIGINT if sel.kind == "writetime" else T.INT))
            elif sel.kind == "func" and sel.column == "token":
                if sel.args != [c.name for c in table.partition_key]:
                    raise _invalid("Invalid arguments for function token")
                outs.append(("token", None))
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "system.token(%s)" % ", ".join(sel.args),
                                   T.BIGINT))
            else:
                raise _invalid("Unknown function '%s'" % (sel.column,))
    if stmt.distinct:
        for kind, arg in outs:
            if kind not in ("pk", "static", "count", "token"):
                raise _invalid("SELECT DISTINCT queries must only request partition key "
                               "columns and/or static columns (not %s)"
                               % (arg if isinstance(arg, str) else "this selection"))
    plan.outs = outs
    plan.aggregate = aggregate
    plan.distinct = stmt.distinct
    plan.result_columns = cols

    # where
    w = _analyze_where(comp, table, stmt.where, stmt.allow_filtering)
    plan.where = w
    needs_filtering = bool(w.filters)
    pk_names = [c.name for c in table.partition_key]
    if w.pk and all(n in w.pk for n in pk_names):
        plan.mode = "keys"
        if w.token:
            raise _invalid("Cannot use token relation when the partition key is restricted "
                           "by EQ or IN")
    else:
        plan.mode = "scan"
        if w.pk:
            missing = [n for n in pk_names if n not in w.pk]
            if not stmt.allow_filtering:
                raise _invalid("Cannot execute this query as it might involve data filtering "
                               "and thus may have unpredictable performance. If you want to "
                               "execute this query despite the performance unpredictability, "
                               "use ALLOW FILTERING")
            # filter on the given key parts instead
            for n in pk_names:
                if n in w.pk:
                    kind, g = w.pk[n]
                    c = table.columns[n]
                    if kind == "eq":
                        w.filters.append((c, "=", g))
                    elif kind == "in":
                        w.filters.append((c, "IN", g))
                    else:
                        w.filters.append((c, "INBIND", g))
            del missing
            w.pk = {}
        if w.ck:
            needs_filtering = True

    # clustering restrictions: validate the Cassandra prefix rules unless filtering
    plan.ck_preds = []
    plan.ck_full_eq = bool(table.clustering) and plan.mode == "keys"
    seen_non_eq = None
    for c in table.clustering:
        restrs = w.ck.get(c.name)
        if not restrs:
            plan.ck_full_eq = False
            if seen_non_eq is None:
                seen_non_eq = ("missing", c.name)
            continue
        if seen_non_eq is not None and not stmt.allow_filtering:
            if seen_non_eq[0] == "missing":
                raise _invalid("PRIMARY KEY column \"%s\" cannot be restricted as preceding "
                               "column \"%s\" is not restricted" % (c.name, seen_non_eq[1]))
            raise _invalid("Clustering column \"%s\" cannot be restricted (preceding column "
                           "\"%s\" is restricted by a non-EQ relation)"
                           % (c.name, seen_non_eq[1]))
        keyfn = sort_key_for(c.type_expr)
        for op, g in restrs:
            plan.ck_preds.append((c.position, op, g, keyfn))
            if op not in ("=", "in", "inbind"):
                plan.ck_full_eq = False
                seen_non_eq = ("range", c.name)
            elif op != "=":
                plan.ck_full_eq = plan.ck_full_eq and True
        if len(restrs) > 1 and any(op == "=" for op, _ in restrs):
            raise _invalid("%s cannot be restricted by more than one relation if it includes "
                           "an Equal" % c.name)
    if needs_filtering and not stmt.allow_filtering:
        raise _invalid(_FILTERING)
    plan.filters = [(c, op, g, sort_key_for(c.type_expr)) for c, op, g in w.filters]
    plan.token = w.token

    # order by
    plan.reverse = False
    if stmt.order_by:
        if plan.mode != "keys":
            raise _invalid("ORDER BY is only supported when the partition key is restricted "
                           "by an EQ or an IN.")
        reverse = None
        for i, (name, asc) in enumerate(stmt.order_by):
            c = _column(table, name)
            if c.kind != "clustering":
                raise _invalid("Order by is currently only supported on the clustered columns "
                               "of the PRIMARY KEY, got %s" % name)
            if c.position != i:
                raise _invalid("Order by currently only supports the ordering of columns "
                               "following their declared order in the PRIMARY KEY")
            r = asc != (c.order == "asc")
            if reverse is None:
                reverse = r
            elif reverse != r:
                raise _invalid("Unsupported order by relation")
        plan.reverse = bool(reverse)

    plan.limit = comp.int_term(stmt.limit, table, "[limit]")
    plan.ppl = comp.int_term(stmt.per_partition_limit, table, "[per_partition_limit]")
    comp.finish(plan)
    plan.pk_indexes = _pk_indexes(table, w.pk if plan.mode == "keys" else {}, stmt.where)
    plan.run = _run_select.__get__(plan)
    return plan


def _pk_indexes(table, pk_restrictions, relations):
    if not pk_restrictions:
        return []
    idx = {}
    for rel in relations:
        if isinstance(rel.column, str) and rel.op == "=" and isinstance(rel.term, P.Bind):
            idx[rel.column] = rel.term.index
    out = []
    for c in table.partition_key:
        if c.name not in idx:
            return []
        out.append(idx[c.name])
    return out


def _accessor(table, c):
    if c.kind == "partition_key":
        return ("pk", c.position)
    if c.kind == "clustering":
        return ("ck", c.position)
    if c.kind == "static":
        return ("static", c.name)
    return ("regular", c.name)


def _cell_of(part, row, name, static):
    src = part.static if static else row
    if src is None:
        return None
    return src.cells.get(name)


def _build(outs, part, row, now):
    out = []
    for kind, arg in outs:
        if kind == "regular":
            if row is None:
                out.append(None)
            else:
                cell = row.cells.get(arg)
                out.append(None if cell is None or (cell[2] is not None and cell[2] <= now)
                           else cell[0])
        elif kind == "pk":
            out.append(part.components[arg])
        elif kind == "ck":
            out.append(None if row is None else row.clustering[arg])
        elif kind == "static":
            out.append(part.static.value(arg, now))
        elif kind == "token":
            out.append(_I64.pack(part.token))
        elif kind in ("writetime", "ttl"):
            cell = _cell_of(part, row, arg.name, arg.kind == "static")
            if cell is None or (cell[2] is not None and cell[2] <= now):
                out.append(None)
            elif kind == "writetime":
                out.append(_I64.pack(cell[1]))
            elif cell[2] is None:
                out.append(None)
            else:
                out.append(_I32.pack(max(0, int(math.ceil(cell[2] - now)))))
        else:
            out.append(None)
    return tuple(out)


def _row_matches(plan, part, row, now, vals_ck, vals_f):
    if vals_ck:
        if row is None:
            return False
        cl = row.clustering
        for pos, op, value, keyfn in vals_ck:
            k = keyfn(cl[pos])
            if op == "in":
                if k not in value:
                    return False
            elif not _compare(op, k, value):
                return False
    for c, op, value, keyfn in vals_f:
        if c.kind == "partition_key":
            b = part.components[c.position]
        elif c.kind == "clustering":
            if row is None:
                return False
            b = row.clustering[c.position]
        elif c.kind == "static":
            b = part.static.value(c.name, now)
        else:
            b = None if row is None else row.value(c.name, now)
        if b is None:
            return False
        if op in ("CONTAINS", "CONTAINS KEY"):
            base = c.type_expr
            while base.name == "frozen":
                base = base.params[0]
            try:
                if base.name == "map":
                    pairs = V.split_pairs(b)
                    items = [k for k, _ in pairs] if op == "CONTAINS KEY" else [v for _, v in pairs]
                else:
                    items = V.split_cells(b)
            except ValueError:
                return False
            if value not in items:
                return False
            continue
        k = keyfn(b)
        if op == "in":
            if k not in value:
                return False
        elif not _compare(op, k, value):
            return False
    return True


def _eval_preds(preds, vals, what):
    out = []
    for pos, op, g, keyfn in preds:
        if op in ("in", "inbind", "IN", "INBIND"):
            if op in ("in", "IN"):
                vs = [gi(vals) for gi in g]
            else:
                vs = g(vals)
            if any(v is None or v is _UNSET for v in vs):
                raise _invalid("Invalid null value in condition for column %s" % what(pos))
            out.append((pos, "in", frozenset(keyfn(v) for v in vs), keyfn))
        elif op in ("CONTAINS", "CONTAINS KEY"):
            v = g(vals)
            if v is None or v is _UNSET:
                raise _invalid("Invalid null value in condition for column %s" % what(pos))
            out.append((pos, op, v, keyfn))
        else:
            v = g(vals)
            if v is None:
                raise _invalid("Invalid null value in condition for column %s" % what(pos))
            if v is _UNSET:
                raise _invalid("Invalid unset value for column %s" % what(pos))
            out.append((pos, op, keyfn(v), keyfn))
    return out


# paging state: b"S1" + [int n][pk] + [short count|0xFFFF] [int n][ck]* + [int emitted]
# + [int emitted in partition]
def _encode_paging(part_key, clustering, emitted, in_part):
    out = [b"S1", _I32.pack(len(part_key)), part_key]
    if clustering is None:
        out.append(b"\xff\xff")
    else:
        out.append(struct.pack(">H", len(clustering)))
        for c in clustering:
            out.append(_I32.pack(len(c)))
            out.append(c)
    out.append(_I32.pack(emitted))
    out.append(_I32.pack(in_part))
    return b"".join(out)


def _decode_paging(data):
    try:
        data = bytes(data)
        if data[:2] != b"S1":
            raise ValueError("bad magic")
        pos = 2
        n = _I32.unpack_from(data, pos)[0]
        pos += 4
        if n < 0 or pos + n > len(data):
            raise ValueError("bad length")
        pk = data[pos:pos + n]
        pos += n
        count = struct.unpack_from(">H", data, pos)[0]
        pos += 2
        if count == 0xFFFF:
            ck = None
        else:
            ck = []
            for _ in range(count):
                m = _I32.unpack_from(data, pos)[0]
                pos += 4
                if m < 0 or pos + m > len(data):
                    raise ValueError("bad length")
                ck.append(data[pos:pos + m])
                pos += m
            ck = tuple(ck)
        emitted, in_part = struct.unpack_from(">ii", data, pos)
        if pos + 8 != len(data):
            raise ValueError("trailing bytes")
        return pk, ck, emitted, in_part
    except (ValueError, struct.error, IndexError):
        raise EngineError(PROTOCOL_ERROR, "Invalid value for the paging state")


def _run_select(plan, engine, vals, ctx):
    table = plan.table
    data = engine.table_data(table, ctx.node)
    now = ctx.now
    ks = plan.ks
    cl = ctx.consistency

    # partitions in order, each with its order key
    if plan.mode == "keys":
        keys = _partition_keys(table, plan.where, vals)
        for key, _ in keys:
            engine.check_available(ks, murmur3_token(key), cl, ctx.node)
        if len(keys) == 1:
            p = data.partitions.get(keys[0][0])
            parts = [] if p is None else [p]
        else:
            parts = []
            for key, _ in keys:
                p = data.partitions.get(key)
                if p is not None:
                    parts.append(p)

        def order_key(part_key, _fns=[sort_key_for(c.type_expr) for c in table.partition_key]):
            comps = split_routing_key(part_key, len(_fns))
            if comps is None:
                return ()
            return tuple(f(x) for f, x in zip(_fns, comps))
    else:
        engine.check_available(ks, None, cl, ctx.node)
        parts = data.ring()
        if plan.token:
            bounds = [(op, g(vals)) for op, g in plan.token]
            parts = [p for p in parts if all(_compare(op, p.token, b) for op, b in bounds)]

        def order_key(part_key):
            return (murmur3_token(part_key), part_key)

    ck_preds = _eval_preds(plan.ck_preds, vals, lambda pos: table.clustering[pos].name)
    filters = []
    for c, op, g, keyfn in plan.filters:
        filters.extend((c, o, v, k) for (_, o, v, k) in
                       _eval_preds([(0, op, g, keyfn)], vals, lambda pos: c.name))
    limit = plan.limit(vals) if plan.limit is not None else None
    if limit is not None and limit <= 0:
        raise _invalid("LIMIT must be strictly positive")
    ppl = plan.ppl(vals) if plan.ppl is not None else None
    if ppl is not None and ppl <= 0:
        raise _invalid("PER PARTITION LIMIT must be strictly positive")

    page_size = ctx.page_size
    if plan.aggregate or page_size is None or page_size <= 0:
        page_size = None

    emitted = 0
    resume_key = resume_ck = None
    resume_in_part = 0
    start = 0
    if ctx.paging_state and not plan.aggregate:
        resume_key, resume_ck, emitted, resume_in_part = _decode_paging(ctx.paging_state)
        target = order_key(resume_key)
        # first partition at or after the resume position
        start = len(parts)
        for i, p in enumerate(parts):
            k = order_key(p.key)
            if k >= target:
                start = i
                break
    outs = plan.outs
    rows_out = []
    positions = []
    want = None
    if page_size is not None:
        want = page_size + 1
    if limit is not None:
        remaining = limit - emitted
        if remaining <= 0:
            return Rows(plan.result_columns, [], None)
        want = remaining if want is None else min(want, remaining)
    count = 0
    first = None
    done = False
    for i in range(start, len(parts)):
        part = parts[i]
        in_part = 0
        after = None
        if resume_key is not None and part.key == resume_key:
            if resume_ck is None:
                continue      # the static / distinct row of this partition was returned
            after = table.clustering_key(resume_ck)
            in_part = resume_in_part
        for row in _partition_rows(plan, part, now, ck_preds, filters, after, vals):
            if ppl is not None and in_part >= ppl:
                break
            in_part += 1
            if plan.aggregate:
                if first is None:
                    first = (part, row)
                count += 1
                continue
            rows_out.append(_build(outs, part, row, now))
            positions.append((part.key, None if row is None else row.clustering, in_part))
            if want is not None and len(rows_out) >= want:
                done = True
                break
            if plan.distinct:
                break
        if done:
            break
    if plan.aggregate:
        out = []
        fp, fr = first if first is not None else (None, None)
        for kind, arg in outs:
            if kind == "count":
                if arg is None or first is None:
                    out.append(_I64.pack(count))
                else:
                    out.append(_I64.pack(_count_non_null(plan, parts, arg, now, ck_preds,
                                                         filters, vals, ppl)))
            elif fp is None:
                out.append(None)
            else:
                out.append(_build([(kind, arg)], fp, fr, now)[0])
        return Rows(plan.result_columns, [tuple(out)], None)
    paging = None
    if page_size is not None and len(rows_out) > page_size:
        rows_out.pop()
        positions.pop()
        key, ck, in_part = positions[-1]
        paging = _encode_paging(key, ck, emitted + len(rows_out), in_part)
    return Rows(plan.result_columns, rows_out, paging)


def _count_non_null(plan, parts, column, now, ck_preds, filters, vals, ppl):
    n = 0
    for part in parts:
        in_part = 0
        for row in _partition_rows(plan, part, now, ck_preds, filters, None, vals):
            if ppl is not None and in_part >= ppl:
                break
            in_part += 1
            if _build([_accessor(plan.table, column)], part, row, now)[0] is not None:
                n += 1
    return n


def _partition_rows(plan, part, now, ck_preds, filters, after, vals):
    """Live rows of ``part`` matching the restrictions, in query order, after ``after``."""
    rows = part.rows
    keys = part.keys
    if plan.distinct:
        if any(r.is_live(now) for r in rows) or part.static.is_live(now):
            if _row_matches(plan, part, None, now, (), [f for f in filters
                                                        if f[0].kind != "regular"]):
                yield None
        return
    if plan.ck_full_eq and not plan.reverse and after is None:
        # direct lookups of each requested clustering key
        table = plan.table
        lists = []
        for c in table.clustering:
            vs = None
            for pos, op, value, keyfn in ck_preds:
                if pos == c.position:
                    vs = [value] if op == "=" else list(value)
            lists.append(vs)
        if all(v is not None for v in lists) and all(c.order == "asc"
                                                     for c in table.clustering):
            wanted = sorted(set(itertools.product(*lists)))
            for key in wanted:
                i = bisect.bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    row = rows[i]
                    if row.is_live(now) and _row_matches(plan, part, row, now, (), filters):
                        yield row
            return
    if not plan.reverse:
        start = 0 if after is None else bisect.bisect_right(keys, after)
        indexes = range(start, len(rows))
    else:
        end = len(rows) if after is None else bisect.bisect_left(keys, after)
        indexes = range(end - 1, -1, -1)
    any_row = False
    for i in indexes:
        row = rows[i]
        if not row.is_live(now):
            continue
        any_row = True
        if (ck_preds or filters) and not _row_matches(plan, part, row, now, ck_preds, filters):
            continue
        yield row
    if not any_row and after is None and not ck_preds and part.static.is_live(now):
        if not rows or not any(r.is_live(now) for r in rows):
            if _row_matches(plan, part, None, now, (), [f for f in filters
                                                        if f[0].kind != "regular"]):
                yield None


# --- INSERT / UPDATE / DELETE ------------------------------------------------------------------

class _ModificationPlan(_Plan):
    """Base of INSERT / UPDATE / DELETE: ``writes`` evaluates everything first; ``apply``
    changes the store (so a batch checks every statement before applying any)."""

    conditional = False

    def run(self, engine, vals, ctx):
        return _run_batch(engine, [(self, vals)], ctx, None)


class _Write(object):
    """One evaluated partition mutation."""
    __slots__ = ("plan", "key", "comps", "token", "apply", "condition")

    def __init__(self, plan, key, comps, apply, condition=None):
        self.plan = plan
        self.key = key
        self.comps = comps
        self.token = murmur3_token(key)
        self.apply = apply
        self.condition = condition


def _run_batch(engine, items, ctx, kind):
    writes = []
    for plan, vals in items:
        writes.extend(plan.writes(engine, vals, ctx))
    conditional = any(w.condition is not None for w in writes)
    if kind == "COUNTER":
        for plan, _ in items:
            if not plan.table.is_counter:
                raise _invalid("Only counter mutations are allowed in COUNTER batches")
    for w in writes:
        ks = engine.keyspaces[w.plan.table.keyspace]
        if conditional:
            serial = 9 if ctx.consistency in (6, 10) else 8
            engine.check_available(ks, w.token, serial, ctx.node)
        engine.check_available(ks, w.token, ctx.consistency, ctx.node, write=True)
    if conditional:
        keys = set((w.plan.table.keyspace, w.plan.table.name, w.key) for w in writes)
        if len(keys) > 1 and len(items) > 1:
            raise _invalid("Batch with conditions cannot span multiple tables or partitions")
        first = writes[0].plan.table
        applied = True
        extra_cols, extra_rows = [], []
        for w in writes:
            if w.condition is None:
                continue
            ok, cols, row = w.condition(ctx.now)
            if not ok:
                applied = False
                if not extra_cols:
                    extra_cols, extra_rows = cols, ([row] if row is not None else [])
        col = Column(first.keyspace, first.name, "[applied]", T.BOOLEAN)
        if applied:
            for w in writes:
                w.apply(ctx.now)
            return Rows([col], [(_TRUE,)], None)
        row = extra_rows[0] if extra_rows else tuple(None for _ in extra_cols)
        return Rows([col] + extra_cols, [(_FALSE,) + tuple(row)], None)
    for w in writes:
        w.apply(ctx.now)
    return Void()


def _write_cell(cells, name, value, ts, expires, ttl):
    cur = cells.get(name)
    if cur is not None and cur[1] > ts:
        return
    if value is None:
        cells.pop(name, None)
    else:
        cells[name] = (value, ts, expires, ttl)


def _ttl_and_ts(plan, vals, ctx):
    ttl = plan.ttl(vals) if plan.ttl is not None else None
    if ttl is None:
        ttl = plan.table.options.get("default_time_to_live", 0) or 0
    if ttl < 0:
        raise _invalid("A TTL must be greater or equal to 0, but was %d" % ttl)
    if ttl > 630720000:
        raise _invalid("ttl is too large. requested (%d) maximum (630720000)" % ttl)
    ts = plan.timestamp(vals) if plan.timestamp is not None else None
    if ts is None:
        ts = ctx.timestamp
    expires = ctx.now + ttl if ttl else None
    return ttl, ts, expires


def _key_values(table, getters, vals, what):
    out = []
    for c, g in zip(what, getters):
        v = g(vals)
        if v is None:
            raise _invalid("Invalid null value in condition for column %s" % c.name)
        if v is _UNSET:
            raise _invalid("Invalid unset value for column %s" % c.name)
        out.append(v)
    return tuple(out)


def _compile_insert(engine, stmt, keyspace):
    table = _check_table_name(engine, stmt, keyspace)
    if table.virtual:
        raise EngineError(0x2100, "Modification to table %s.%s is not allowed"
                          % (table.keyspace, table.name))
    if table.is_counter:
        raise _invalid("INSERT statements are not allowed on counter tables, use UPDATE "
                       "instead")
    comp = _Compiler(engine, stmt, keyspace)
    plan = _ModificationPlan()
    plan.table = table
    given = {}
    for name, term in zip(stmt.columns, stmt.values):
        c = _column(table, name)
        if c.name in given:
            raise _invalid("Multiple definitions found for column %s" % c.name)
        given[c.name] = (c, comp.term(term, c, table))
    missing = [c.name for c in table.partition_key if c.name not in given]
    if missing:
        raise _invalid("Some partition key parts are missing: %s" % ", ".join(missing))
    missing = [c.name for c in table.clustering if c.name not in given]
    if missing:
        raise _invalid("Some clustering keys are missing: %s" % ", ".join(missing))
    pk_getters = [given[c.name][1] for c in table.partition_key]
    ck_getters = [given[c.name][1] for c in table.clustering]
    cells = [(c, g) for c, g in given.values() if c.kind in ("regular", "static")]
    plan.ttl = comp.int_term(stmt.ttl, table, "[ttl]")
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    plan.if_not_exists = stmt.if_not_exists
    if stmt.if_not_exists and stmt.timestamp is not None:
        raise _invalid("Cannot provide custom timestamp for conditional updates")
    comp.finish(plan)
    idx = {}
    for name, term in zip(stmt.columns, stmt.values):
        if isinstance(term, P.Bind):
            idx[table.columns[name].name] = term.index
    plan.pk_indexes = ([idx[c.name] for c in table.partition_key]
                       if all(c.name in idx for c in table.partition_key) else [])

    def writes(engine, vals, ctx):
        comps = _key_values(table, pk_getters, vals, table.partition_key)
        ck = _key_values(table, ck_getters, vals, table.clustering)
        values = [(c, g(vals)) for c, g in cells]
        ttl, ts, expires = _ttl_and_ts(plan, vals, ctx)
        key = routing_key(comps)
        ck_key = table.clustering_key(ck)

        def apply(now):
            part = table.get_or_create_partition(key, comps)
            row = part.get_or_create_row(ck, ck_key)
            if row.marker is None or row.marker[0] <= ts:
                row.marker = (ts, expires, ttl)
            for c, v in values:
                if v is _UNSET:
                    continue
                target = part.static.cells if c.kind == "static" else row.cells
                if v is not None and c.is_multicell and _empty_collection(v):
                    v = None
                _write_cell(target, c.name, v, ts, expires, ttl)
            table.generation += 1

        condition = None
        if plan.if_not_exists:
            def condition(now):
                part = table.get_partition(key)
                row = part.get_row(ck_key) if part is not None else None
                if row is not None and row.is_live(now):
                    cols = [Column(table.keyspace, table.name, c.name, c.cql_type)
                            for c in table.star]
                    accs = [_accessor(table, c) for c in table.star]
                    return False, cols, _build(accs, part, row, now)
                return True, [], None
        return [_Write(plan, key, comps, apply, condition)]
    plan.writes = writes
    return plan


def _empty_collection(v):
    return v == b"\x00\x00\x00\x00"


def _where_keys(comp, table, stmt, what):
    """Partition and clustering selection of UPDATE / DELETE."""
    w = _analyze_where(comp, table, stmt.where, False, for_select=False)
    if w.token:
        raise _invalid("The token function cannot be used in WHERE clauses for %s statements"
                       % what)
    if w.filters:
        c = w.filters[0][0]
        raise _invalid("Non PRIMARY KEY columns found in where clause: %s" % c.name)
    missing = [c.name for c in table.partition_key if c.name not in w.pk]
    if missing:
        raise _invalid("Some partition key parts are missing: %s" % ", ".join(missing))
    return w


def _clustering_lists(table, w, vals):
    """For each clustering column: list of values (EQ / IN), or None when unrestricted;
    and the range restrictions [(position, op, value)] if any."""
    lists = []
    ranges = []
    for c in table.clustering:
        restrs = w.ck.get(c.name)
        if not restrs:
            lists.append(None)
            continue
        vs = None
        for op, g in restrs:
            if op == "=":
                v = g(vals)
                if v is None or v is _UNSET:
                    raise _invalid("Invalid null value in condition for column %s" % c.name)
                vs = [v]
            elif op == "in":
                vs = [gi(vals) for gi in g]
            elif op == "inbind":
                vs = g(vals)
            else:
                v = g(vals)
                if v is None or v is _UNSET:
                    raise _invalid("Invalid null value in condition for column %s" % c.name)
                ranges.append((c.position, op, sort_key_for(c.type_expr)(v)))
        lists.append(vs)
    return lists, ranges


def _conditions(comp, table, conds):
    out = []
    for name, op, term in conds:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise _invalid("PRIMARY KEY column '%s' cannot have IF conditions" % c.name)
        if op == "IN":
            out.append((c, "in", [comp.term(t, c, table) for t in term]))
        else:
            out.append((c, op, comp.term(term, c, table)))
    return out


def _make_condition(table, conds, if_exists, evaluated, key, ck_key, static_only):
    cond_cols = []
    for c, _, _ in conds:
        if c.name not in [x.name for x in cond_cols]:
            cond_cols.append(c)

    def condition(now):
        part = table.get_partition(key)
        row = None
        if part is not None and ck_key is not None:
            row = part.get_row(ck_key)
            if row is not None and not row.is_live(now):
                row = None
        exists = row is not None or (static_only and part is not None and
                                     part.static.is_live(now))
        if if_exists:
            if exists:
                return True, [], None
            return False, [], None
        ok = True
        for (c, op, _), value in zip(conds, evaluated):
            src = part.static if (c.kind == "static" and part is not None) else row
            cur = None if src is None else src.value(c.name, now)
            keyfn = sort_key_for(c.type_expr)
            if op == "in":
                if cur is None:
                    if None not in value:
                        ok = False
                elif keyfn(cur) not in set(keyfn(v) for v in value if v is not None):
                    ok = False
            elif value is None or cur is None:
                if op == "=":
                    ok = ok and cur is None and value is None
                elif op == "!=":
                    ok = ok and (cur is None) != (value is None)
                else:
                    if value is None:
                        raise _invalid("Invalid comparison with null for operator \"%s\"" % op)
                    ok = False
            elif not _compare(op, keyfn(cur), keyfn(value)):
                ok = False
        if ok:
            return True, [], None
        cols = [Column(table.keyspace, table.name, c.name, c.cql_type) for c in cond_cols]
        if part is None and row is None:
            return False, cols, tuple(None for _ in cond_cols)
        vals = []
        for c in cond_cols:
            src = part.static if c.kind == "static" else row
            vals.append(None if src is None else src.value(c.name, now))
        return False, cols, tuple(vals)
    return condition


def _compile_update(engine, stmt, keyspace):
    table = _check_table_name(engine, stmt, keyspace)
    if table.virtual:
        raise EngineError(0x2100, "Modification to table %s.%s is not allowed"
                          % (table.keyspace, table.name))
    comp = _Compiler(engine, stmt, keyspace)
    plan = _ModificationPlan()
    plan.table = table
    plan.ttl = comp.int_term(stmt.ttl, table, "[ttl]")
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    assigns = []
    for name, op, term, key in stmt.assignments:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise _invalid("PRIMARY KEY part %s found in SET part" % c.name)
        base = c.type_expr
        if c.is_counter:
            if op not in ("+=", "-="):
                raise _invalid("Cannot set the value of counter column %s (counters can only "
                               "be incremented/decremented, not set)" % c.name)
            assigns.append((c, op, comp.term(term, c, table, None, P.TypeExpr("bigint", []),
                                             T.BIGINT), None))
            continue
        if op in ("+=", "-=") and not c.is_multicell:
            raise _invalid("Invalid operation (%s = %s %s ...) for non counter column %s"
                           % (c.name, c.name, op[0], c.name))
        if key is not None:
            if base.name == "map":
                kg = comp.term(key, c, table, "key(%s)" % c.name, base.params[0],
                               c.cql_type.subtypes[0])
                vg = comp.term(term, c, table, "value(%s)" % c.name, base.params[1],
                               c.cql_type.subtypes[1])
            elif base.name == "list":
                kg = comp.term(key, c, table, "idx(%s)" % c.name, P.TypeExpr("int", []),
                               T.INT)
                vg = comp.term(term, c, table, "value(%s)" % c.name, base.params[0],
                               c.cql_type.subtypes[0])
            else:
                raise _invalid("Invalid operation (%s[?] = ...) for non list or map column %s"
                               % (c.name, c.name))
            assigns.append((c, "put", vg, kg))
            continue
        if op == "-=" and base.name == "map":
            sexpr = P.TypeExpr("set", [base.params[0]])
            g = comp.term(term, c, table, None, sexpr, T.SetType(c.cql_type.subtypes[0]))
        else:
            g = comp.term(term, c, table)
        assigns.append((c, op, g, None))
    w = _where_keys(comp, table, stmt, "UPDATE")
    static_only = all(c.kind == "static" for c, _, _, _ in assigns)
    if not static_only:
        missing = [c.name for c in table.clustering if c.name not in w.ck]
        if missing:
            raise _invalid("Some clustering keys are missing: %s" % ", ".join(missing))
    for c in table.clustering:
        for op, _ in w.ck.get(c.name, ()):
            if op not in ("=", "in", "inbind"):
                raise _invalid("Slice restrictions are not supported on the clustering "
                               "columns in UPDATE statements")
    conds = _conditions(comp, table, stmt.conditions or [])
    if (conds or stmt.if_exists) and stmt.timestamp is not None:
        raise _invalid("Cannot provide custom timestamp for conditional updates")
    if table.is_counter and stmt.ttl is not None:
        raise _invalid("Cannot provide custom TTL for counter updates")
    comp.finish(plan)
    plan.pk_indexes = _pk_indexes(table, w.pk, stmt.where)
    conditional = bool(conds) or stmt.if_exists

    def writes(engine, vals, ctx):
        ttl, ts, expires = _ttl_and_ts(plan, vals, ctx)
        evaluated = [(c, op, g(vals), None if k is None else k(vals)) for c, op, g, k in assigns]
        lists, _ = _clustering_lists(table, w, vals)
        cond_vals = []
        for c, op, g in conds:
            cond_vals.append([gi(vals) for gi in g] if op == "in" else g(vals))
        out = []
        for key, comps in _partition_keys(table, w, vals):
            if static_only and all(v is None for v in lists):
                cks = [None]
            else:
                cks = [tuple(x) for x in itertools.product(*lists)]
            for ck in cks:
                ck_key = None if ck is None else table.clustering_key(ck)
                apply = _update_apply(table, key, comps, ck, ck_key, evaluated, ts, expires, ttl)
                condition = None
                if conditional:
                    condition = _make_condition(table, conds, stmt.if_exists, cond_vals, key,
                                                ck_key, static_only)
                out.append(_Write(plan, key, comps, apply, condition))
        return out
    plan.writes = writes
    return plan


def _update_apply(table, key, comps, ck, ck_key, evaluated, ts, expires, ttl):
    def apply(now):
        part = table.get_or_create_partition(key, comps)
        row = None
        for c, op, v, k in evaluated:
            if v is _UNSET or k is _UNSET:
                continue
            if c.kind == "static":
                cells = part.static.cells
            else:
                if row is None:
                    row = part.get_or_create_row(ck, ck_key)
                cells = row.cells
            cur = cells.get(c.name)
            if cur is not None and cur[2] is not None and cur[2] <= now:
                cur = None
            curv = None if cur is None else cur[0]
            if c.is_counter:
                if v is None:
                    raise _invalid("Invalid null value for counter increment")
                n = _I64.unpack(v)[0]
                base = 0 if curv is None else _I64.unpack(curv)[0]
                total = base + n if op == "+=" else base - n
                total = ((total + (1 << 63)) % (1 << 64)) - (1 << 63)
                cells[c.name] = (_I64.pack(total), ts, None, 0)
                continue
            new = _collection_op(c, op, curv, v, k)
            if new is not None and c.is_multicell and _empty_collection(new):
                new = None
            _write_cell(cells, c.name, new, ts, expires, ttl)
        if row is not None and not row.cells and row.marker is None:
            part.remove_row(ck_key)
        table.drop_partition_if_empty(part)
        table.generation += 1
    return apply


def _collection_op(c, op, cur, v, k):
    base = c.type_expr
    if op == "=":
        return v
    name = base.name
    if op == "put":
        if v is None:
            if name == "map":
                if cur is None:
                    return None
                return V.join_pairs([(kk, vv) for kk, vv in V.split_pairs(cur) if kk != k])
            raise _invalid("Invalid null value for list element")
        if name == "map":
            pairs = V.split_pairs(cur) if cur else []
            pairs = [(kk, vv) for kk, vv in pairs if kk != k] + [(k, v)]
            return V.normalize(base, V.join_pairs(pairs))
        idx = _I32.unpack(k)[0] if k and len(k) == 4 else -1
        cells = V.split_cells(cur) if cur else []
        if idx < 0 or idx >= len(cells):
            raise _invalid("List index %d out of bound, list has size %d" % (idx, len(cells)))
        cells[idx] = v
        return V.join_cells(cells)
    if v is None:
        if op in ("+=", "-="):
            return cur
        return None
    if name == "list":
        cur_cells = V.split_cells(cur) if cur else []
        new_cells = V.split_cells(v)
        if op == "+=":
            return V.join_cells(cur_cells + new_cells)
        if op == "prepend":
            return V.join_cells(new_cells + cur_cells)
        drop = set(new_cells)
        return V.join_cells([x for x in cur_cells if x not in drop])
    if name == "set":
        cur_cells = V.split_cells(cur) if cur else []
        new_cells = V.split_cells(v)
        if op == "+=":
            return V.normalize(base, V.join_cells(cur_cells + new_cells))
        drop = set(new_cells)
        return V.join_cells([x for x in cur_cells if x not in drop])
    if name == "map":
        pairs = V.split_pairs(cur) if cur else []
        if op == "+=":
            return V.normalize(base, V.join_pairs(pairs + V.split_pairs(v)))
        drop = set(V.split_cells(v))
        return V.join_pairs([(kk, vv) for kk, vv in pairs if kk not in drop])
    raise _invalid("Invalid operation for column %s" % c.name)


def _compile_delete(engine, stmt, keyspace):
    table = _check_table_name(engine, stmt, keyspace)
    if table.virtual:
        raise EngineError(0x2100, "Modification to table %s.%s is not allowed"
                          % (table.keyspace, table.name))
    comp = _Compiler(engine, stmt, keyspace)
    plan = _ModificationPlan()
    plan.table = table
    plan.ttl = None
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    targets = []
    for name, key in stmt.columns:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise _invalid("Invalid identifier %s for deletion (should not be a PRIMARY KEY "
                           "part)" % c.name)
        kg = None
        if key is not None:
            base = c.type_expr
            if base.name == "map":
                kg = comp.term(key, c, table, "key(%s)" % c.name, base.params[0],
                               c.cql_type.subtypes[0])
            elif base.name == "list":
                kg = comp.term(key, c, table, "idx(%s)" % c.name, P.TypeExpr("int", []), T.INT)
            elif base.name == "set":
                kg = comp.term(key, c, table, "key(%s)" % c.name, base.params[0],
                               c.cql_type.subtypes[0])
            else:
                raise _invalid("Invalid element deletion on non-collection column %s" % c.name)
        targets.append((c, kg))
    w = _where_keys(comp, table, stmt, "DELETE")
    static_only = bool(targets) and all(c.kind == "static" for c, _ in targets)
    conds = _conditions(comp, table, stmt.conditions or [])
    comp.finish(plan)
    plan.pk_indexes = _pk_indexes(table, w.pk, stmt.where)
    conditional = bool(conds) or stmt.if_exists
    if targets and not static_only:
        missing = [c.name for c in table.clustering if c.name not in w.ck]
        if missing:
            raise _invalid("Some clustering keys are missing: %s" % ", ".join(missing))

    def writes(engine, vals, ctx):
        ts = plan.timestamp(vals) if plan.timestamp is not None else None
        if ts is None:
            ts = ctx.timestamp
        lists, ranges = _clustering_lists(table, w, vals)
        keyvals = [(c, None if kg is None else kg(vals)) for c, kg in targets]
        cond_vals = []
        for c, op, g in conds:
            cond_vals.append([gi(vals) for gi in g] if op == "in" else g(vals))
        out = []
        for key, comps in _partition_keys(table, w, vals):
            full = all(v is not None for v in lists) and not ranges
            if full and table.clustering:
                cks = [tuple(x) for x in itertools.product(*lists)]
            elif not table.clustering:
                cks = [()]
            else:
                cks = [None]      # a prefix / range / whole partition
            for ck in cks:
                ck_key = None if ck is None else table.clustering_key(ck)

                def apply(now, key=key, ck=ck, ck_key=ck_key):
                    part = table.get_partition(key)
                    if part is None:
                        return
                    if targets:
                        rows = []
                        if ck_key is not None:
                            r = part.get_row(ck_key)
                            rows = [r] if r is not None else []
                        for c, kv in keyvals:
                            if c.kind == "static":
                                _delete_cell(part.static.cells, c, kv, ts)
                            else:
                                for r in rows:
                                    _delete_cell(r.cells, c, kv, ts)
                        for r in rows:
                            if not r.cells and r.marker is None:
                                part.remove_row(r.key)
                    elif ck_key is not None:
                        r = part.get_row(ck_key)
                        if r is not None and (r.marker is None or r.marker[0] <= ts):
                            part.remove_row(ck_key)
                    else:
                        _delete_slice(table, part, lists, ranges)
                    table.drop_partition_if_empty(part)
                    table.generation += 1

                condition = None
                if conditional:
                    condition = _make_condition(table, conds, stmt.if_exists, cond_vals, key,
                                                ck_key if ck_key is not None else (
                                                    () if not table.clustering else None),
                                                static_only or ck_key is None)
                out.append(_Write(plan, key, comps, apply, condition))
        return out
    plan.writes = writes
    return plan


def _delete_cell(cells, c, kv, ts):
    cur = cells.get(c.name)
    if cur is None or cur[1] > ts:
        return
    if kv is None:
        del cells[c.name]
        return
    base = c.type_expr
    if base.name == "map":
        pairs = [(k, v) for k, v in V.split_pairs(cur[0]) if k != kv]
        new = V.join_pairs(pairs) if pairs else None
    elif base.name == "set":
        items = [x for x in V.split_cells(cur[0]) if x != kv]
        new = V.join_cells(items) if items else None
    else:
        items = V.split_cells(cur[0])
        idx = _I32.unpack(kv)[0] if kv and len(kv) == 4 else -1
        if idx < 0 or idx >= len(items):
            raise _invalid("Attempted to delete an element from a list which a size of %d"
                           % len(items))
        del items[idx]
        new = V.join_cells(items) if items else None
    if new is None:
        del cells[c.name]
    else:
        cells[c.name] = (new, cur[1], cur[2], cur[3])


def _delete_slice(table, part, lists, ranges):
    if all(v is None for v in lists) and not ranges:
        part.rows[:] = []
        part.keys[:] = []
        part.static.cells.clear()
        part.static.marker = None
        return
    keep_rows, keep_keys = [], []
    fns = [sort_key_for(c.type_expr) for c in table.clustering]
    for row, key in zip(part.rows, part.keys):
        hit = True
        for pos, vs in enumerate(lists):
            if vs is not None and row.clustering[pos] not in vs:
                hit = False
                break
        if hit:
            for pos, op, value in ranges:
                if not _compare(op, fns[pos](row.clustering[pos]), value):
                    hit = False
                    break
        if not hit:
            keep_rows.append(row)
            keep_keys.append(key)
    part.rows[:] = keep_rows
    part.keys[:] = keep_keys


# --- BATCH in a query string --------------------------------------------------------------------

class _BatchPlan(_Plan):
    pass


def _compile_batch(engine, stmt, keyspace):
    comp = _Compiler(engine, stmt, keyspace)
    subs = []
    for s in stmt.statements:
        s.bind_count = stmt.bind_count
        sub = _compile(engine, s, keyspace)
        for i, spec in enumerate(sub.bind_specs):
            if spec is not None and spec.name != "[unknown]":
                comp.specs[i] = spec
                comp.names[i] = sub.marker_names[i]
        subs.append(sub)
    plan = _BatchPlan()
    plan.subs = subs
    plan.kind = stmt.kind
    if stmt.timestamp is not None:
        if not isinstance(stmt.timestamp, P.Const) or stmt.timestamp.kind != "int":
            raise _invalid("Invalid batch timestamp")
        plan.batch_ts = stmt.timestamp.value
    else:
        plan.batch_ts = None
    comp.finish(plan)

    def run(engine, vals, ctx):
        if plan.batch_ts is not None:
            ctx.timestamp = plan.batch_ts
        return _run_batch(engine, [(sub, vals) for sub in subs], ctx, plan.kind)
    plan.run = run
    return plan


# --- dispatch ------------------------------------------------------------------------------------

def _compile(engine, stmt, keyspace):
    if isinstance(stmt, P.Select):
        return _compile_select(engine, stmt, keyspace)
    if isinstance(stmt, P.Insert):
        return _compile_insert(engine, stmt, keyspace)
    if isinstance(stmt, P.Update):
        return _compile_update(engine, stmt, keyspace)
    if isinstance(stmt, P.Delete):
        return _compile_delete(engine, stmt, keyspace)
    if isinstance(stmt, P.Batch):
        return _compile_batch(engine, stmt, keyspace)
    if isinstance(stmt, P.Unsupported):
        raise EngineError(INVALID if stmt.what != "DESCRIBE" else SYNTAX_ERROR,
                          "%s is not supported by the simulated cluster" % stmt.what)
    from cqlreactor.testing.engine_ddl import compile_ddl
    return compile_ddl(engine, stmt, keyspace)


__all__ = ["_compile", "_ModificationPlan", "_run_batch", "SYNTAX_ERROR"]
