"""Compiled statements ("plans") of the simulated cluster's CQL engine: the shared parts.

A statement is parsed once, then compiled against the current schema into a plan: column
lookups, literal conversions and bind-marker specs are resolved at compile time, so running a
cached plan only evaluates bound values and touches the store. Plans are cached by
(keyspace, query text) and dropped on every schema change. SELECT lives in
``reads``, INSERT/UPDATE/DELETE/BATCH in ``writes``, schema statements in
``ddl``; this module holds the plan base class, term compilation and WHERE analysis.
"""

import itertools
import struct
import uuid

from cqlreactor.core import types as T
from cqlreactor.testing.engine import jsoncodec
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import invalid
from cqlreactor.testing.engine.results import Column
from cqlreactor.testing.engine.store import routing_key, sort_key_for

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
                    raise invalid("Invalid unset value for %s" % (name,))
        else:
            vals = list(values) if values else []
            if len(vals) != n:
                raise invalid("Invalid amount of bind variables: expected %d, got %d"
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
                raise invalid(str(exc))
            return _const(value)
        if isinstance(term, P.Collection):
            return self.collection(term, column, table, cname, texpr, ctyp)
        if isinstance(term, P.FuncCall):
            if term.name == "fromjson":
                return self.from_json(term, table, cname, texpr, ctyp)
            return self.function(term, cname, texpr)
        raise invalid("Invalid term for %s" % cname)

    def from_json(self, term, table, cname, texpr, ctyp):
        """fromJson(text) typed as the column it is assigned to / compared with: the text is
        decoded as INSERT JSON decodes a column's value (jsoncodec.from_json)."""
        if len(term.args) != 1:
            raise invalid("Invalid number of arguments in call to function system.fromjson: "
                          "1 required but %d provided" % (len(term.args),))
        arg = term.args[0]
        if isinstance(arg, P.Bind):
            self.spec(arg, table.keyspace, table.name, "arg0(system.fromjson)", T.TEXT)
            index = arg.index

            def text_of(vals):
                raw = vals[index]
                return None if raw is None or raw is _UNSET else raw.decode("utf-8")
        elif isinstance(arg, P.Const) and arg.kind == "str":
            literal = arg.value
            text_of = lambda vals: literal                      # noqa: E731
        elif isinstance(arg, P.Const) and arg.kind == "null":
            text_of = lambda vals: None                         # noqa: E731
        else:
            raise invalid("Type error: %s cannot be passed as argument 0 of function "
                          "system.fromjson of type text"
                          % (getattr(arg, "text", None) or "this term",))

        checked = _bind_getter(0, texpr, ctyp, cname)       # sets/maps in their order

        def get(vals):
            text = text_of(vals)
            if text is None:
                return None
            return checked([jsoncodec.from_json_text(ctyp, text, cname)])
        return get

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
                        raise invalid("null is not supported inside collections")
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
                        raise invalid("null is not supported inside collections")
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
                raise invalid("Unknown field '%s' in value of user defined type %s"
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
        raise invalid("Invalid %s literal for %s of type %s"
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
            raise invalid("Unknown function %s called" % (name,))
        raise invalid("Type error: cannot assign result of function system.%s (type %s) to "
                       "%s (type %s)" % (name, "timeuuid" if name == "now" else "uuid", cname,
                                         P.render_type(texpr)))

    def int_term(self, term, table, name, allow_negative=False):
        return self._number_term(term, table, name, T.INT, _I32, name,
                                 "Invalid value for %s" % name)

    def timestamp_term(self, term, table):
        return self._number_term(term, table, "[timestamp]", T.BIGINT, _I64, "timestamp",
                                 "Invalid value for the timestamp")

    def _number_term(self, term, table, spec_name, ctype, codec, what, wrong_literal):
        """A USING TTL / TIMESTAMP value: a getter of the int, or None when not given."""
        if term is None:
            return None
        if isinstance(term, P.Bind):
            self.spec(term, table.keyspace, table.name, spec_name, ctype)
            i = term.index
            size = codec.size
            unpack = codec.unpack

            def get(vals):
                v = vals[i]
                if v is None or v is _UNSET:
                    return None
                if len(v) != size:
                    raise invalid("Invalid value for %s: expected %d bytes" % (what, size))
                return unpack(v)[0]
            return get
        if isinstance(term, P.Const) and term.kind == "int":
            value = term.value
            return lambda vals: value
        raise invalid(wrong_literal)


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
            raise invalid("Invalid value for column %s of type %s: %s"
                           % (cname, ctype.name, exc))
        return v
    return get


def _column(table, name):
    c = table.columns.get(name)
    if c is None:
        raise invalid("Undefined column name %s" % (name,))
    return c


def _check_table_name(engine, stmt, keyspace):
    table = engine._table(stmt.keyspace, stmt.table, keyspace)
    if getattr(table, "base", None) is not None and not isinstance(stmt, P.Select):
        raise invalid("Cannot directly modify a materialized view")
    return table


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
                raise invalid("The token function arguments must be in the partition key "
                               "order: %s" % ", ".join(c.name for c in table.partition_key))
            if rel.op not in ("=", "<", "<=", ">", ">="):
                raise invalid("Unsupported operator %s on the token function" % rel.op)
            w.token.append((rel.op, _token_getter(comp, table, rel.term)))
            continue
        c = _column(table, col)
        if rel.op == "IN":
            if isinstance(rel.term, list):
                getters = [comp.term(t, c, table) for t in rel.term]
                restr = ("in", getters)
            else:
                ltype = T.ListType(c.cql_type)
                if isinstance(rel.term, P.Bind):
                    comp.spec(rel.term, table.keyspace, table.name, "in(%s)" % c.name, ltype)
                    idx = rel.term.index

                    def getter(vals, idx=idx, c=c):
                        v = vals[idx]
                        if v is None or v is _UNSET:
                            raise invalid("Invalid null value for IN restriction on %s"
                                           % c.name)
                        try:
                            items = V.split_cells(v)
                            for item in items:
                                c.cql_type.deserialize(item)
                        except Exception as exc:  # noqa: BLE001 - malformed bound value
                            raise invalid("Invalid value for IN restriction on %s: %s"
                                           % (c.name, exc))
                        return items
                    restr = ("inbind", getter)
                else:
                    raise invalid("Invalid IN restriction on %s" % c.name)
        elif rel.op in ("CONTAINS", "CONTAINS KEY"):
            base = c.type_expr
            while base.name == "frozen":
                base = base.params[0]
            if base.name not in ("list", "set", "map"):
                raise invalid("Cannot use %s on non-collection column %s" % (rel.op, c.name))
            if rel.op == "CONTAINS KEY" and base.name != "map":
                raise invalid("Cannot use CONTAINS KEY on non-map column %s" % c.name)
            sub = base.params[0] if (rel.op == "CONTAINS KEY" or base.name != "map") \
                else base.params[1]
            subc = c.cql_type.subtypes[0] if (rel.op == "CONTAINS KEY" or base.name != "map") \
                else c.cql_type.subtypes[1]
            g = comp.term(rel.term, c, table, None, sub, subc)
            w.filters.append((c, rel.op, g))
            continue
        elif rel.op == "LIKE":
            raise invalid("LIKE restriction is only supported on properly indexed columns. "
                           "%s LIKE ... is not valid." % c.name)
        else:
            restr = (rel.op, comp.term(rel.term, c, table))
        if c.kind == "partition_key":
            if restr[0] in ("<", "<=", ">", ">=", "!="):
                raise invalid("Only EQ and IN relation are supported on the partition key "
                               "(unless you use the token() function)")
            if c.name in w.pk:
                raise invalid("%s cannot be restricted by more than one relation if it "
                               "includes an Equal" % c.name)
            w.pk[c.name] = restr if restr[0] != "=" else ("eq", restr[1])
        elif c.kind == "clustering":
            if restr[0] == "!=":
                raise invalid("Unsupported \"!=\" relation: %s != ..." % c.name)
            w.ck.setdefault(c.name, []).append(restr)
        else:
            if restr[0] == "!=":
                raise invalid("Unsupported \"!=\" relation: %s != ..." % c.name)
            w.filters.append((c, restr[0], restr[1]))
    return w


def _token_getter(comp, table, term):
    if isinstance(term, P.Bind):
        comp.spec(term, table.keyspace, table.name, "partition key token", T.BIGINT)
        i = term.index

        def get(vals):
            v = vals[i]
            if v is None or v is _UNSET or len(v) != 8:
                raise invalid("Invalid token value")
            return _I64.unpack(v)[0]
        return get
    if isinstance(term, P.Const) and term.kind == "int":
        value = term.value
        return lambda vals: value
    if isinstance(term, P.FuncCall) and term.name == "token":
        raise invalid("token() on values is not supported by the simulator")
    raise invalid("Invalid token value")


def _pk_values(table, where, vals):
    """Lists of serialized values per partition key column."""
    out = []
    for c in table.partition_key:
        kind, g = where.pk[c.name]
        if kind == "eq":
            v = g(vals)
            if v is None:
                raise invalid("Invalid null value in condition for column %s" % c.name)
            if v is _UNSET:
                raise invalid("Invalid unset value for column %s" % c.name)
            out.append([v])
        elif kind == "in":
            vs = []
            for gi in g:
                v = gi(vals)
                if v is None or v is _UNSET:
                    raise invalid("Invalid null value in condition for column %s" % c.name)
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
