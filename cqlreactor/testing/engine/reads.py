"""SELECT plans of the simulated cluster's CQL engine: selection, restrictions, ordering,
paging (an opaque paging state that resumes right after the last row returned, on any node)
and COUNT aggregates."""

import bisect
import decimal
import itertools
import math
import struct

from cqlreactor.core import types as T
from cqlreactor.testing.engine import jsoncodec
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import schema_objects
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import EngineError, FILTERING, PROTOCOL_ERROR, invalid
from cqlreactor.testing.engine.results import Column, Rows
from cqlreactor.testing.engine.plans import (
    _Plan, _Compiler, _UNSET, _analyze_where, _check_table_name, _column, _compare,
    _partition_keys)
from cqlreactor.testing.engine.store import sort_key_for, split_routing_key, token_of

_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")

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
                    raise invalid("Cannot use selection function %s on PRIMARY KEY part %s"
                                   % ("writeTime" if sel.kind == "writetime" else "ttl",
                                      c.name))
                if c.is_multicell:
                    raise invalid("Cannot use selection function %s on non-frozen "
                                   "collection %s" % (sel.kind, c.name))
                outs.append((sel.kind, c))
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "%s(%s)" % (sel.kind, c.name),
                                   T.BIGINT if sel.kind == "writetime" else T.INT))
            elif sel.kind == "func" and sel.column == "token":
                if sel.args != [c.name for c in table.partition_key]:
                    raise invalid("Invalid arguments for function token")
                outs.append(("token", None))
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "system.token(%s)" % ", ".join(sel.args),
                                   T.BIGINT))
            elif sel.kind == "func" and sel.column == "tojson":
                if len(sel.args) != 1:
                    raise invalid("Invalid number of arguments in call to function "
                                   "system.tojson: 1 required but %d provided"
                                   % (len(sel.args),))
                c = _column(table, sel.args[0])
                outs.append(("tojson", (_accessor(table, c), _json_encoder(c.cql_type))))
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "system.tojson(%s)" % (c.name,), T.TEXT))
            elif sel.kind == "func" and sel.column == "fromjson":
                raise invalid("fromJson() cannot be used in the selection clause of a SELECT")
            elif sel.kind == "func" and sel.column in ("min", "max", "sum", "avg"):
                if len(sel.args) != 1:
                    raise invalid("Invalid number of arguments in call to function system.%s: "
                                   "1 required but %d provided" % (sel.column, len(sel.args)))
                c = _column(table, sel.args[0])
                base = c.type_expr.name
                if sel.column in ("sum", "avg") and base not in _NUMERIC:
                    raise invalid("Invalid call to function system.%s, none of its type "
                                   "signatures match" % sel.column)
                if base in ("list", "set", "map", "frozen", "udt", "duration"):
                    raise invalid("Invalid call to function system.%s, none of its type "
                                   "signatures match" % sel.column)
                outs.append(("agg", (sel.column, c)))
                aggregate = True
                cols.append(Column(table.keyspace, table.name,
                                   sel.alias or "system.%s(%s)" % (sel.column, c.name),
                                   c.cql_type))
            else:
                schema_objects.refuse_call(engine, table.keyspace, sel.column)
                raise invalid("Unknown function '%s'" % (sel.column,))
    if stmt.distinct:
        for kind, arg in outs:
            if kind not in ("pk", "static", "count", "token", "agg"):
                raise invalid("SELECT DISTINCT queries must only request partition key "
                               "columns and/or static columns (not %s)"
                               % (arg if isinstance(arg, str) else "this selection"))
    plan.outs = outs
    plan.aggregate = aggregate
    plan.distinct = stmt.distinct
    plan.result_columns = cols

    # where
    w = _analyze_where(comp, table, stmt.where, stmt.allow_filtering)
    plan.where = w
    # an EQ on a column a secondary index covers is served by the index (one of them)
    indexed = schema_objects.indexed_columns(engine, table) if w.filters else ()
    served = [f for f in w.filters if f[1] == "=" and f[0].name in indexed][:1]
    needs_filtering = len(w.filters) > len(served)
    pk_names = [c.name for c in table.partition_key]
    if w.pk and all(n in w.pk for n in pk_names):
        plan.mode = "keys"
        if w.token:
            raise invalid("Cannot use token relation when the partition key is restricted "
                           "by EQ or IN")
    else:
        plan.mode = "scan"
        if w.pk:
            if not stmt.allow_filtering:
                raise invalid("Cannot execute this query as it might involve data filtering "
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
                raise invalid("PRIMARY KEY column \"%s\" cannot be restricted as preceding "
                               "column \"%s\" is not restricted" % (c.name, seen_non_eq[1]))
            raise invalid("Clustering column \"%s\" cannot be restricted (preceding column "
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
            raise invalid("%s cannot be restricted by more than one relation if it includes "
                           "an Equal" % c.name)
    if needs_filtering and not stmt.allow_filtering:
        raise invalid(FILTERING)
    plan.filters = [(c, op, g, sort_key_for(c.type_expr)) for c, op, g in w.filters]
    plan.token = w.token

    # order by
    plan.reverse = False
    if stmt.order_by:
        if plan.mode != "keys":
            raise invalid("ORDER BY is only supported when the partition key is restricted "
                           "by an EQ or an IN.")
        reverse = None
        for i, (name, asc) in enumerate(stmt.order_by):
            c = _column(table, name)
            if c.kind != "clustering":
                raise invalid("Order by is currently only supported on the clustered columns "
                               "of the PRIMARY KEY, got %s" % name)
            if c.position != i:
                raise invalid("Order by currently only supports the ordering of columns "
                               "following their declared order in the PRIMARY KEY")
            r = asc != (c.order == "asc")
            if reverse is None:
                reverse = r
            elif reverse != r:
                raise invalid("Unsupported order by relation")
        plan.reverse = bool(reverse)
    # IN on the partition key + ORDER BY: Cassandra merges the partitions' rows in the
    # requested order, which it can only do without paging
    plan.in_order = bool(stmt.order_by) and any(
        kind != "eq" for kind, _ in w.pk.values())

    plan.limit = comp.int_term(stmt.limit, table, "[limit]")
    plan.ppl = comp.int_term(stmt.per_partition_limit, table, "[per_partition_limit]")
    comp.finish(plan)
    plan.pk_indexes = _pk_indexes(table, w.pk if plan.mode == "keys" else {}, stmt.where)
    plan.key_order = _key_order(table)
    plan.ck_name = lambda pos: table.clustering[pos].name
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


def _json_encoder(cql_type):
    """cell bytes -> the UTF-8 JSON text toJson() answers (SELECT JSON's encoding; null ->
    'null', as Cassandra's ToJsonFct)."""

    def encode(cell):
        if cell is None:
            return b"null"
        return jsoncodec.to_json(cql_type, cql_type.deserialize(cell, 4)).encode("utf-8")
    return encode


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
        elif kind == "tojson":
            inner, encode = arg
            out.append(encode(_build([inner], part, row, now)[0]))
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
                raise invalid("Invalid null value in condition for column %s" % what(pos))
            out.append((pos, "in", frozenset(keyfn(v) for v in vs), keyfn))
        elif op in ("CONTAINS", "CONTAINS KEY"):
            v = g(vals)
            if v is None or v is _UNSET:
                raise invalid("Invalid null value in condition for column %s" % what(pos))
            out.append((pos, op, v, keyfn))
        else:
            v = g(vals)
            if v is None:
                raise invalid("Invalid null value in condition for column %s" % what(pos))
            if v is _UNSET:
                raise invalid("Invalid unset value for column %s" % what(pos))
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


def _ring_order(part_key):
    return (token_of(part_key), part_key)


def _key_order(table):
    fns = [sort_key_for(c.type_expr) for c in table.partition_key]
    count = len(fns)

    def order_key(part_key):
        comps = split_routing_key(part_key, count)
        if comps is None:
            return ()
        return tuple(f(x) for f, x in zip(fns, comps))
    return order_key


def _run_select(plan, engine, vals, ctx):
    table = plan.table
    data = engine.table_data(table, ctx.node)
    now = ctx.now
    ks = plan.ks
    cl = ctx.consistency
    if cl == 0:
        raise invalid("ANY ConsistencyLevel is only supported for writes")

    # partitions in order, each with its order key
    partitions = data.partitions
    if plan.mode == "keys":
        keys = _partition_keys(table, plan.where, vals)
        parts = []
        for key, _ in keys:
            p = partitions.get(key)
            engine.check_available(ks, token_of(key) if p is None else p.token, cl,
                                   ctx.node)
            if p is not None:
                parts.append(p)
        order_key = plan.key_order
    else:
        engine.check_available(ks, None, cl, ctx.node)
        parts = data.ring()
        if plan.token:
            bounds = [(op, g(vals)) for op, g in plan.token]
            parts = [p for p in parts if all(_compare(op, p.token, b) for op, b in bounds)]
        order_key = _ring_order

    ck_preds = _eval_preds(plan.ck_preds, vals, plan.ck_name) if plan.ck_preds else ()
    filters = []
    for c, op, g, keyfn in plan.filters:
        filters.extend((c, o, v, k) for (_, o, v, k) in
                       _eval_preds([(0, op, g, keyfn)], vals, lambda pos: c.name))
    limit = plan.limit(vals) if plan.limit is not None else None
    if limit is not None and limit <= 0:
        raise invalid("LIMIT must be strictly positive")
    ppl = plan.ppl(vals) if plan.ppl is not None else None
    if ppl is not None and ppl <= 0:
        raise invalid("PER PARTITION LIMIT must be strictly positive")

    page_size = ctx.page_size
    if plan.aggregate or page_size is None or page_size <= 0:
        page_size = None
    if plan.in_order and page_size is not None:
        raise invalid("Cannot page queries with both ORDER BY and a IN restriction on the "
                       "partition key; you must either remove the ORDER BY or the IN and sort "
                       "client side, or disable paging for this query")

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
    if plan.in_order:
        want = None
        merge_keys = []
    matched = []
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
                matched.append((part, row))
                continue
            rows_out.append(_build(outs, part, row, now))
            positions.append((part.key, None if row is None else row.clustering, in_part))
            if plan.in_order:
                merge_keys.append(() if row is None else row.key)
            if want is not None and len(rows_out) >= want:
                done = True
                break
            if plan.distinct:
                break
        if done:
            break
    if plan.aggregate:
        return Rows(plan.result_columns, [_aggregate(plan, matched, now)], None)
    if plan.in_order:
        order = sorted(range(len(rows_out)), key=merge_keys.__getitem__, reverse=plan.reverse)
        rows_out = [rows_out[i] for i in order]
        if limit is not None:
            rows_out = rows_out[:limit]
        return Rows(plan.result_columns, rows_out, None)
    paging = None
    if page_size is not None and len(rows_out) > page_size:
        rows_out.pop()
        positions.pop()
        key, ck, in_part = positions[-1]
        paging = _encode_paging(key, ck, emitted + len(rows_out), in_part)
    return Rows(plan.result_columns, rows_out, paging)


_NUMERIC = frozenset(["tinyint", "smallint", "int", "bigint", "varint", "float", "double",
                      "decimal", "counter"])
_WIDTH = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64, "counter": 64}


def _aggregate(plan, matched, now):
    """The one row of an aggregate query: count / min / max / sum / avg over ``matched``;
    plain columns take the first row's values (as Cassandra answers)."""
    out = []
    first = matched[0] if matched else (None, None)
    for kind, arg in plan.outs:
        if kind == "count":
            if arg is None:
                n = len(matched)
            else:
                acc = _accessor(plan.table, arg)
                n = sum(1 for p, r in matched if _build([acc], p, r, now)[0] is not None)
            out.append(_I64.pack(n))
        elif kind == "agg":
            fname, c = arg
            acc = _accessor(plan.table, c)
            cells = [v for v in (_build([acc], p, r, now)[0] for p, r in matched)
                     if v is not None]
            out.append(_fold(fname, c, cells))
        elif first[0] is None:
            out.append(None)
        else:
            out.append(_build([(kind, arg)], first[0], first[1], now)[0])
    return tuple(out)


def _fold(fname, column, cells):
    base = column.type_expr.name
    if fname in ("min", "max"):
        if not cells:
            return None
        key = sort_key_for(column.type_expr)
        return (min if fname == "min" else max)(cells, key=key)
    ctype = column.cql_type
    values = [ctype.deserialize(c) for c in cells]
    if base in ("float", "double"):
        zero = 0.0
    elif base == "decimal":
        zero = decimal.Decimal(0)
    else:
        zero = 0
    total = sum(values, zero)
    if fname == "avg":
        if not values:
            total = zero
        elif base in _WIDTH or base == "varint":
            q = abs(total) // len(values)
            total = q if total >= 0 else -q      # Java integer division truncates
        else:
            total = total / len(values)
    if base in _WIDTH:
        bits = _WIDTH[base]
        total = ((total + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))
    if base == "counter":
        return _I64.pack(total)
    return ctype.serialize(total)


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

