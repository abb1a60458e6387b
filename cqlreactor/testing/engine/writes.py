"""INSERT / UPDATE / DELETE / BATCH plans of the simulated cluster's CQL engine.

A modification plan first evaluates every bound value into partition writes (``_Write``),
then the batch runner checks availability and conditions (LWT) and only then applies them, so
an invalid statement in a batch leaves the store untouched.
"""

import itertools
import struct

from cqlreactor.core import types as T
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import EngineError, invalid
from cqlreactor.testing.engine.results import Column, Rows, Void
from cqlreactor.testing.engine.plans import (
    _Plan, _Compiler, _UNSET, _TRUE, _FALSE, _analyze_where, _check_table_name, _column,
    _compare, _partition_keys)
from cqlreactor.testing.engine.reads import _accessor, _build, _pk_indexes
from cqlreactor.testing.engine.store import routing_key, sort_key_for, token_of

_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")

# --- INSERT / UPDATE / DELETE ------------------------------------------------------------------

class ModificationPlan(_Plan):
    """Base of INSERT / UPDATE / DELETE: ``writes`` evaluates everything first; ``apply``
    changes the store (so a batch checks every statement before applying any)."""

    conditional = False

    def run(self, engine, vals, ctx):
        return run_batch(engine, [(self, vals)], ctx, None)


class _Write(object):
    """One evaluated partition mutation."""
    __slots__ = ("plan", "key", "comps", "token", "apply", "condition")

    def __init__(self, plan, key, comps, apply, condition=None):
        self.plan = plan
        self.key = key
        self.comps = comps
        self.token = token_of(key)
        self.apply = apply
        self.condition = condition


def run_batch(engine, items, ctx, kind):
    writes = []
    for plan, vals in items:
        writes.extend(plan.writes(engine, vals, ctx))
    conditional = any(w.condition is not None for w in writes)
    if ctx.consistency in (8, 9):
        if conditional:
            raise invalid("%s is not supported as conditional update commit consistency. "
                           "Use ANY if you mean \"make sure it is accepted but I don't care "
                           "how many replicas commit it for non-SERIAL reads\""
                           % ("SERIAL" if ctx.consistency == 8 else "LOCAL_SERIAL"))
        raise invalid("You must use conditional updates for serializable writes")
    counters = [plan.table.is_counter for plan, _ in items]
    if kind == "COUNTER" and not all(counters):
        raise invalid("Only counter mutations are allowed in COUNTER batches")
    if kind is not None and any(counters):
        if not all(counters):
            raise invalid("Counter and non-counter mutations cannot exist in the same batch")
        if kind == "LOGGED":
            raise invalid("Cannot include a counter statement in a logged batch")
    for w in writes:
        ks = engine.keyspaces[w.plan.table.keyspace]
        if conditional:
            serial = 9 if ctx.consistency in (6, 10) else 8
            engine.check_available(ks, w.token, serial, ctx.node)
        engine.check_available(ks, w.token, ctx.consistency, ctx.node, write=True)
    if conditional:
        keys = set((w.plan.table.keyspace, w.plan.table.name, w.key) for w in writes)
        if len(keys) > 1 and len(items) > 1:
            raise invalid("Batch with conditions cannot span multiple tables or partitions")
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
        raise invalid("A TTL must be greater or equal to 0, but was %d" % ttl)
    if ttl > 630720000:
        raise invalid("ttl is too large. requested (%d) maximum (630720000)" % ttl)
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
            raise invalid("Invalid null value in condition for column %s" % c.name)
        if v is _UNSET:
            raise invalid("Invalid unset value for column %s" % c.name)
        out.append(v)
    return tuple(out)


def _modifiable_table(engine, stmt, keyspace):
    table = _check_table_name(engine, stmt, keyspace)
    if table.virtual:
        raise EngineError(0x2100, "Modification to table %s.%s is not allowed"
                          % (table.keyspace, table.name))
    return table


def _compile_insert(engine, stmt, keyspace):
    table = _modifiable_table(engine, stmt, keyspace)
    if table.is_counter:
        raise invalid("INSERT statements are not allowed on counter tables, use UPDATE "
                       "instead")
    comp = _Compiler(engine, stmt, keyspace)
    plan = ModificationPlan()
    plan.table = table
    given = {}
    for name, term in zip(stmt.columns, stmt.values):
        c = _column(table, name)
        if c.name in given:
            raise invalid("Multiple definitions found for column %s" % c.name)
        given[c.name] = (c, comp.term(term, c, table))
    missing = [c.name for c in table.partition_key if c.name not in given]
    if missing:
        raise invalid("Some partition key parts are missing: %s" % ", ".join(missing))
    missing = [c.name for c in table.clustering if c.name not in given]
    # an INSERT of only the partition key and static columns writes the static row
    static_only = len(missing) == len(table.clustering) and bool(table.clustering) and all(
        c.kind in ("partition_key", "static") for c, _ in given.values())
    if missing and not static_only:
        raise invalid("Some clustering keys are missing: %s" % ", ".join(missing))
    pk_getters = [given[c.name][1] for c in table.partition_key]
    ck_getters = [] if static_only else [given[c.name][1] for c in table.clustering]
    cells = [(c, g) for c, g in given.values() if c.kind in ("regular", "static")]
    plan.ttl = comp.int_term(stmt.ttl, table, "[ttl]")
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    plan.if_not_exists = stmt.if_not_exists
    if stmt.if_not_exists and stmt.timestamp is not None:
        raise invalid("Cannot provide custom timestamp for conditional updates")
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
            row = part.static if static_only else part.get_or_create_row(ck, ck_key)
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

        def condition(now):
            part = table.get_partition(key)
            if static_only:
                row = part.static if part is not None else None
            else:
                row = part.get_row(ck_key) if part is not None else None
            if row is not None and row.is_live(now):
                cols = [Column(table.keyspace, table.name, c.name, c.cql_type)
                        for c in table.star]
                accs = [_accessor(table, c) for c in table.star]
                return False, cols, _build(accs, part, row, now)
            return True, [], None
        return [_Write(plan, key, comps, apply, condition if plan.if_not_exists else None)]
    plan.writes = writes
    return plan


def _empty_collection(v):
    return v == b"\x00\x00\x00\x00"


def _where_keys(comp, table, stmt, what):
    """Partition and clustering selection of UPDATE / DELETE."""
    w = _analyze_where(comp, table, stmt.where, False, for_select=False)
    if w.token:
        raise invalid("The token function cannot be used in WHERE clauses for %s statements"
                       % what)
    if w.filters:
        c = w.filters[0][0]
        raise invalid("Non PRIMARY KEY columns found in where clause: %s" % c.name)
    missing = [c.name for c in table.partition_key if c.name not in w.pk]
    if missing:
        raise invalid("Some partition key parts are missing: %s" % ", ".join(missing))
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
                    raise invalid("Invalid null value in condition for column %s" % c.name)
                vs = [v]
            elif op == "in":
                vs = [gi(vals) for gi in g]
            elif op == "inbind":
                vs = g(vals)
            else:
                v = g(vals)
                if v is None or v is _UNSET:
                    raise invalid("Invalid null value in condition for column %s" % c.name)
                ranges.append((c.position, op, sort_key_for(c.type_expr)(v)))
        lists.append(vs)
    return lists, ranges


def _conditions(comp, table, conds):
    out = []
    for name, op, term in conds:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise invalid("PRIMARY KEY column '%s' cannot have IF conditions" % c.name)
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
                        raise invalid("Invalid comparison with null for operator \"%s\"" % op)
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
    table = _modifiable_table(engine, stmt, keyspace)
    comp = _Compiler(engine, stmt, keyspace)
    plan = ModificationPlan()
    plan.table = table
    plan.ttl = comp.int_term(stmt.ttl, table, "[ttl]")
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    assigns = []
    for name, op, term, key in stmt.assignments:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise invalid("PRIMARY KEY part %s found in SET part" % c.name)
        base = c.type_expr
        if c.is_counter:
            if op not in ("+=", "-="):
                raise invalid("Cannot set the value of counter column %s (counters can only "
                               "be incremented/decremented, not set)" % c.name)
            assigns.append((c, op, comp.term(term, c, table, None, P.TypeExpr("bigint", []),
                                             T.BIGINT), None))
            continue
        if op in ("+=", "-=") and not c.is_multicell:
            raise invalid("Invalid operation (%s = %s %s ...) for non counter column %s"
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
                raise invalid("Invalid operation (%s[?] = ...) for non list or map column %s"
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
            raise invalid("Some clustering keys are missing: %s" % ", ".join(missing))
    for c in table.clustering:
        for op, _ in w.ck.get(c.name, ()):
            if op not in ("=", "in", "inbind"):
                raise invalid("Slice restrictions are not supported on the clustering "
                               "columns in UPDATE statements")
    conds = _conditions(comp, table, stmt.conditions or [])
    if (conds or stmt.if_exists) and stmt.timestamp is not None:
        raise invalid("Cannot provide custom timestamp for conditional updates")
    if table.is_counter and stmt.ttl is not None:
        raise invalid("Cannot provide custom TTL for counter updates")
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
                    raise invalid("Invalid null value for counter increment")
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
            raise invalid("Invalid null value for list element")
        if name == "map":
            pairs = V.split_pairs(cur) if cur else []
            pairs = [(kk, vv) for kk, vv in pairs if kk != k] + [(k, v)]
            return V.normalize(base, V.join_pairs(pairs))
        idx = _I32.unpack(k)[0] if k and len(k) == 4 else -1
        cells = V.split_cells(cur) if cur else []
        if idx < 0 or idx >= len(cells):
            raise invalid("List index %d out of bound, list has size %d" % (idx, len(cells)))
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
    raise invalid("Invalid operation for column %s" % c.name)


def _compile_delete(engine, stmt, keyspace):
    table = _modifiable_table(engine, stmt, keyspace)
    comp = _Compiler(engine, stmt, keyspace)
    plan = ModificationPlan()
    plan.table = table
    plan.ttl = None
    plan.timestamp = comp.timestamp_term(stmt.timestamp, table)
    targets = []
    for name, key in stmt.columns:
        c = _column(table, name)
        if c.kind in ("partition_key", "clustering"):
            raise invalid("Invalid identifier %s for deletion (should not be a PRIMARY KEY "
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
                raise invalid("Invalid element deletion on non-collection column %s" % c.name)
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
            raise invalid("Some clustering keys are missing: %s" % ", ".join(missing))

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
            raise invalid("Attempted to delete an element from a list which a size of %d"
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


def _compile_batch(engine, stmt, keyspace, subs):
    """``subs``: the batch's statements, already compiled (by ``compile.compile_statement``,
    which is above this module)."""
    comp = _Compiler(engine, stmt, keyspace)
    for sub in subs:
        for i, spec in enumerate(sub.bind_specs):
            if spec is not None and spec.name != "[unknown]":
                comp.specs[i] = spec
                comp.names[i] = sub.marker_names[i]
    plan = _BatchPlan()
    plan.subs = subs
    plan.kind = stmt.kind
    if stmt.timestamp is not None:
        if not isinstance(stmt.timestamp, P.Const) or stmt.timestamp.kind != "int":
            raise invalid("Invalid batch timestamp")
        plan.batch_ts = stmt.timestamp.value
    else:
        plan.batch_ts = None
    comp.finish(plan)

    def run(engine, vals, ctx):
        if plan.batch_ts is not None:
            ctx.timestamp = plan.batch_ts
        return run_batch(engine, [(sub, vals) for sub in subs], ctx, plan.kind)
    plan.run = run
    return plan

