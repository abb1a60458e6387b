"""Secondary indexes, materialized views, user-defined functions and aggregates of the
simulated cluster: their CQL (CREATE / DROP, ALTER MATERIALIZED VIEW), their
system_schema rows (indexes, views, functions, aggregates with Cassandra 4's columns) and the
SCHEMA_CHANGE each answers with (an index change is UPDATED TABLE of its table, a view change
CREATED / UPDATED / DROPPED TABLE of the view, a function or aggregate change names its
argument types), as Cassandra 4/5 do.

Each object carries ``created_gen`` like tables do, so it reaches the other nodes after the
schema propagation delay.  What runs: an EQ on an indexed column needs no ALLOW FILTERING
(reads.py asks :func:`indexed_columns`); a SELECT from a view reads rows derived from its base
table at that moment (:func:`refresh_view`).  A function's body is stored, never run: calling
a user-defined function or aggregate is refused with an error that says so.
"""

from collections import OrderedDict

from cqlreactor.testing.engine import ast_nodes as A
from cqlreactor.testing.engine.errors import ALREADY_EXISTS, EngineError, invalid
from cqlreactor.testing.engine.results import SchemaChange, Void
from cqlreactor.testing.engine.store import ColumnDef, Table, routing_key

SAI_CLASS = "org.apache.cassandra.index.sai.StorageAttachedIndex"
MV_WARNING = ("Materialized views are experimental and are not recommended for production "
              "use.")

CreateIndex = A._node("CreateIndex", ["keyspace", "table", "name", "if_not_exists", "column",
                                      "target_kind", "using", "options"], "")
DropIndex = A._node("DropIndex", ["keyspace", "name", "if_exists"], "")
CreateView = A._node("CreateView", ["keyspace", "name", "if_not_exists", "columns",
                                    "base_keyspace", "base", "where_text", "where_columns",
                                    "partition_key", "clustering", "order", "options"], "")
AlterView = A._node("AlterView", ["keyspace", "name", "options"], "")
DropView = A._node("DropView", ["keyspace", "name", "if_exists"], "")
CreateFunction = A._node("CreateFunction", [
    "keyspace", "name", "or_replace", "if_not_exists", "arguments", "called_on_null",
    "return_type", "language", "body"], "")
CreateAggregate = A._node("CreateAggregate", [
    "keyspace", "name", "or_replace", "if_not_exists", "arg_types", "state_func",
    "state_type", "final_func", "initcond"], "")
DropRoutine = A._node("DropRoutine", ["kind", "keyspace", "name", "if_exists", "arg_types"],
                      "DROP FUNCTION / AGGREGATE (kind), arg_types None when not written")

STATEMENTS = (CreateIndex, DropIndex, CreateView, AlterView, DropView, CreateFunction,
              CreateAggregate, DropRoutine)


class IndexDef(object):
    __slots__ = ("keyspace", "table", "name", "kind", "options", "column", "created_gen")

    def __init__(self, keyspace, table, name, kind, options, column):
        self.keyspace, self.table, self.name = keyspace, table, name
        self.kind, self.options, self.column = kind, options, column
        self.created_gen = 0


class ViewTable(Table):
    """A materialized view: a Table whose rows are derived from its base table on read."""
    __slots__ = ("base", "include_all", "where_text", "where_columns")


class Routine(object):
    """A user-defined function or aggregate: its system_schema row and signature."""
    __slots__ = ("kind", "keyspace", "name", "arg_types", "row", "return_type", "created_gen")

    def __init__(self, kind, keyspace, name, arg_types, return_type, row):
        self.kind, self.keyspace, self.name = kind, keyspace, name
        self.arg_types, self.return_type, self.row = list(arg_types), return_type, row
        self.created_gen = 0


def objects(ks):
    """The keyspace's {'indexes','views','functions','aggregates'} dicts (made on first use)."""
    store = getattr(ks, "schema_objects", None)
    if store is None:
        store = ks.schema_objects = dict(
            (k, OrderedDict()) for k in ("indexes", "views", "functions", "aggregates"))
    return store


# --- parsing (called from parser.p_create / p_drop / p_alter) --------------------------------

def parse_create(p):
    """After CREATE: an index, view, function or aggregate statement, or None (not ours)."""
    start = p.i
    if p.accept_kw("custom"):
        p.expect_kw("index")
        return _parse_index(p, custom=True)
    if p.accept_kw("index"):
        return _parse_index(p, custom=False)
    if p.accept_kw("materialized"):
        p.expect_kw("view")
        return _parse_view(p)
    or_replace = False
    if p.accept_kw("or"):
        p.expect_kw("replace")
        or_replace = True
    if p.accept_kw("function"):
        return _parse_function(p, or_replace)
    if p.accept_kw("aggregate"):
        return _parse_aggregate(p, or_replace)
    p.i = start
    return None


def _parse_index(p, custom):
    ine = p.if_not_exists()
    name = None
    if not p.at_kw("on"):
        name = p.ident("index name")
    p.expect_kw("on")
    ks, table = p.qualified_name()
    p.expect_op("(")
    target_kind = None
    if p.at_kw("keys", "values", "entries", "full") and p.peek(1)[1] == "(":
        target_kind = p.next()[1]
        p.expect_op("(")
        column = p.ident("column name")
        p.expect_op(")")
    else:
        column = p.ident("column name")
    p.expect_op(")")
    using = options = None
    if p.accept_kw("using"):
        t = p.next()
        if t[0] != "str":
            raise p.error("an index class name", t)
        using = t[1]
        if p.accept_kw("with"):
            p.expect_kw("options")
            p.expect_op("=")
            options = p.option_value()
    elif custom:
        raise p.error("USING")
    return CreateIndex(ks, table, name, ine, column, target_kind, using, options or {})


def _column_list(p):
    out = [p.ident("column name")]
    while p.accept_op(","):
        out.append(p.ident("column name"))
    return out


def _parse_view(p):
    ine = p.if_not_exists()
    ks, name = p.qualified_name()
    p.expect_kw("as")
    p.expect_kw("select")
    columns = None if p.accept_op("*") else _column_list(p)
    p.expect_kw("from")
    base_ks, base = p.qualified_name()
    p.expect_kw("where")
    begin = p.peek()[3]
    where_columns = []
    while not p.at_kw("primary"):
        t = p.next()
        if t[0] == "eof":
            raise p.error("PRIMARY KEY", t)
        if t[0] in ("id", "qid") and p.at_kw("is"):
            where_columns.append(t[1])
    where_text = p.text[begin:p.peek()[3]].strip()
    p.expect_kw("primary")
    p.expect_kw("key")
    p.expect_op("(")
    if p.accept_op("("):
        pk = _column_list(p)
        p.expect_op(")")
    else:
        pk = [p.ident("column name")]
    ck = []
    while p.accept_op(","):
        ck.append(p.ident("column name"))
    p.expect_op(")")
    order, options = _with_options(p)
    return CreateView(ks, name, ine, columns, base_ks, base, where_text, where_columns, pk, ck,
                      order, options)


def _with_options(p):
    order, options = [], {}
    if p.accept_kw("with"):
        while True:
            if p.accept_kw("clustering"):
                p.expect_kw("order")
                p.expect_kw("by")
                p.expect_op("(")
                while True:
                    col = p.ident("column name")
                    order.append((col, "DESC" if p.accept_kw("desc") else
                                  (p.accept_kw("asc") and "ASC") or "ASC"))
                    if p.accept_op(")"):
                        break
                    p.expect_op(",")
            else:
                key = p.ident("table option", allow_reserved=True)
                p.expect_op("=")
                options[key] = p.option_value()
            if not p.accept_kw("and"):
                break
    return order, options


def _parse_function(p, or_replace):
    ine = p.if_not_exists()
    ks, name = p.qualified_name()
    p.expect_op("(")
    arguments = []
    if not p.accept_op(")"):
        while True:
            arg = p.ident("argument name")
            arguments.append((arg, p.type_expr()))
            if p.accept_op(")"):
                break
            p.expect_op(",")
    if p.accept_kw("called"):
        called = True
    else:
        p.expect_kw("returns")
        p.expect_kw("null")
        called = False
    p.expect_kw("on")
    p.expect_kw("null")
    p.expect_kw("input")
    p.expect_kw("returns")
    return_type = p.type_expr()
    p.expect_kw("language")
    language = p.ident("language")
    p.expect_kw("as")
    t = p.next()
    if t[0] != "str":
        raise p.error("the function body (a string)", t)
    return CreateFunction(ks, name, or_replace, ine, arguments, called, return_type, language,
                          t[1])


def _parse_aggregate(p, or_replace):
    ine = p.if_not_exists()
    ks, name = p.qualified_name()
    p.expect_op("(")
    arg_types = []
    if not p.accept_op(")"):
        while True:
            arg_types.append(p.type_expr())
            if p.accept_op(")"):
                break
            p.expect_op(",")
    p.expect_kw("sfunc")
    sfunc = p.ident("state function name")
    p.expect_kw("stype")
    stype = p.type_expr()
    final = initcond = None
    if p.accept_kw("finalfunc"):
        final = p.ident("final function name")
    if p.accept_kw("initcond"):
        begin = p.peek()[3]
        if p.peek()[0] == "op" and p.peek()[1] in "[(":
            _skip_term(p)
        else:
            p.option_value()
        initcond = p.text[begin:p.peek()[3]].strip()
    return CreateAggregate(ks, name, or_replace, ine, arg_types, sfunc, stype, final, initcond)


def _skip_term(p):
    """A collection or tuple literal ([...], (...)) as INITCOND: skipped (its text is kept)."""
    depth = 0
    while True:
        t = p.next()
        if t[0] == "eof":
            raise p.error("a term", t)
        if t[0] == "op" and t[1] in "[(":
            depth += 1
        elif t[0] == "op" and t[1] in "])":
            depth -= 1
        if depth <= 0:
            return


def parse_drop(p):
    """After DROP: DROP INDEX / MATERIALIZED VIEW / FUNCTION / AGGREGATE, or None."""
    if p.accept_kw("index"):
        ie = p.if_exists()
        ks, name = p.qualified_name()
        return DropIndex(ks, name, ie)
    if p.accept_kw("materialized"):
        p.expect_kw("view")
        ie = p.if_exists()
        ks, name = p.qualified_name()
        return DropView(ks, name, ie)
    for kind in ("function", "aggregate"):
        if p.accept_kw(kind):
            ie = p.if_exists()
            ks, name = p.qualified_name()
            types = None
            if p.accept_op("("):
                types = []
                if not p.accept_op(")"):
                    while True:
                        types.append(p.type_expr())
                        if p.accept_op(")"):
                            break
                        p.expect_op(",")
            return DropRoutine(kind, ks, name, ie, types)
    return None


def parse_alter(p):
    """After ALTER: ALTER MATERIALIZED VIEW name WITH options, or None."""
    if not p.accept_kw("materialized"):
        return None
    p.expect_kw("view")
    ks, name = p.qualified_name()
    p.expect_kw("with")
    return AlterView(ks, name, p.properties())


# --- running --------------------------------------------------------------------------------

def compile_object_ddl(engine, stmt, current, helpers):
    """A run(engine, ctx) function for one of :data:`STATEMENTS` (helpers: ddl's functions)."""
    fn = {CreateIndex: _create_index, DropIndex: _drop_index, CreateView: _create_view,
          AlterView: _alter_view, DropView: _drop_view, CreateFunction: _create_function,
          CreateAggregate: _create_aggregate, DropRoutine: _drop_routine}[type(stmt)]
    return fn(stmt, current, helpers)


def _visible_dict(engine, d):
    return OrderedDict((k, v) for k, v in d.items() if engine.visible(v))


def _find_table(engine, ks, name):
    table = ks.tables.get(name)
    return table if table is not None and engine.visible(table) else None


def _create_index(stmt, current, h):
    def run(engine, ctx):
        ks = h.keyspace_for(engine, stmt.keyspace, current)
        table = _find_table(engine, ks, stmt.table)
        if table is None:
            if stmt.table in objects(ks)["views"]:
                raise invalid("Secondary indexes are not supported on materialized views")
            raise invalid("Table '%s' doesn't exist" % stmt.table)
        column = table.columns.get(stmt.column)
        if column is None:
            raise invalid("Column '%s' doesn't exist" % stmt.column)
        if column.kind == "partition_key" and len(table.partition_key) == 1:
            raise invalid("Cannot create secondary index on the only partition key column %s"
                          % column.name)
        kind_word = stmt.target_kind
        if kind_word in ("keys", "entries") and column.type_expr.name != "map":
            raise invalid("Cannot create index on %s of column %s with non-map type"
                          % (kind_word, column.name))
        if kind_word == "full" and column.type_expr.name != "frozen":
            raise invalid("full() indexes can only be created on frozen collections")
        if kind_word is None and column.type_expr.name in ("list", "set", "map"):
            kind_word = "values"
        target = "%s(%s)" % (kind_word, column.name) if kind_word else column.name
        name = stmt.name or "%s_%s_idx" % (table.name, column.name)
        h.check_name(name, "Index")
        indexes = objects(ks)["indexes"]
        existing = indexes.get(name)
        if existing is not None:
            if stmt.if_not_exists:
                return Void()
            raise invalid("Index '%s' already exists" % name)
        if stmt.using is None:
            kind, options = "COMPOSITES", {"target": target}
        else:
            cls = SAI_CLASS if stmt.using.lower() in ("sai", "storageattachedindex") \
                else stmt.using
            if cls == SAI_CLASS and not engine.release.has_vector:
                raise invalid("Unable to find custom indexer class '%s'" % stmt.using)
            kind = "CUSTOM"
            options = dict((str(k), str(v)) for k, v in stmt.options.items())
            options.update({"class_name": cls, "target": target})
        for other in indexes.values():
            if other.table == table.name and other.kind == kind and \
                    other.options == options:
                if stmt.if_not_exists:
                    return Void()
                raise invalid("Index %s is a duplicate of existing index %s"
                              % (name, other.name))
        index = indexes[name] = IndexDef(ks.name, table.name, name, kind, options,
                                         column.name)
        index.created_gen = engine._schema_changed(ctx.node)
        return SchemaChange("UPDATED", "TABLE", ks.name, table.name)
    return run


def _drop_index(stmt, current, h):
    def run(engine, ctx):
        name = stmt.keyspace or current
        ks = engine.find_keyspace(name) if name else None
        index = objects(ks)["indexes"].get(stmt.name) if ks is not None else None
        if index is None or not engine.visible(index):
            if stmt.if_exists:
                return Void()
            raise invalid("Index '%s.%s' doesn't exist" % (name, stmt.name))
        del objects(ks)["indexes"][stmt.name]
        engine._schema_changed(ctx.node)
        return SchemaChange("UPDATED", "TABLE", ks.name, index.table)
    return run


def indexed_columns(engine, table):
    """Names of ``table``'s columns an index covers (as the running request's coordinator
    sees the schema)."""
    ks = engine.keyspaces.get(table.keyspace)
    store = getattr(ks, "schema_objects", None) if ks is not None else None
    if not store:
        return ()
    return set(i.column for i in store["indexes"].values()
               if i.table == table.name and engine.visible(i))


def _create_view(stmt, current, h):
    def run(engine, ctx):
        ks = h.keyspace_for(engine, stmt.keyspace, current)
        if stmt.base_keyspace not in (None, ks.name):
            raise invalid("Cannot create a materialized view on a table in a separate "
                          "keyspace")
        h.check_name(stmt.name, "View")
        views = objects(ks)["views"]
        if stmt.name in views or stmt.name in ks.tables:
            if stmt.if_not_exists:
                return Void()
            raise EngineError(ALREADY_EXISTS, "Cannot add already existing table \"%s\" to "
                              "keyspace \"%s\"" % (stmt.name, ks.name),
                              {"keyspace": ks.name, "table": stmt.name})
        base = _find_table(engine, ks, stmt.base)
        if base is None:
            raise invalid("Base table '%s' doesn't exist" % stmt.base)
        if base.is_counter:
            raise invalid("Materialized views are not supported on counter tables")
        selected = list(base.columns) if stmt.columns is None else stmt.columns
        for n in selected + stmt.partition_key + stmt.clustering:
            if n not in base.columns:
                raise invalid("Unknown column name detected in CREATE MATERIALIZED VIEW "
                              "statement: %s" % n)
        keys = stmt.partition_key + stmt.clustering
        base_keys = [c.name for c in base.partition_key + base.clustering]
        missing = [n for n in base_keys if n not in keys]
        if missing:
            raise invalid("Cannot create Materialized View %s without primary key columns "
                          "from base %s (%s)" % (stmt.name, base.name, ",".join(missing)))
        extra = [n for n in keys if n not in base_keys]
        if len(extra) > 1:
            raise invalid("Cannot include more than one non-primary key column in "
                          "materialized view primary key (got %s)" % ", ".join(extra))
        for n in keys:
            if n not in stmt.where_columns:
                raise invalid("Primary key columns %s must be restricted with 'IS NOT NULL' "
                              "or otherwise" % n)
        order = dict(stmt.order)
        cols = []
        for i, n in enumerate(stmt.partition_key):
            c = base.columns[n]
            cols.append(ColumnDef(n, c.type_expr, c.cql_type, "partition_key", i,
                                  type_text=c.type_text))
        for i, n in enumerate(stmt.clustering):
            c = base.columns[n]
            cols.append(ColumnDef(n, c.type_expr, c.cql_type, "clustering", i,
                                  order.get(n, "ASC").lower(), type_text=c.type_text))
        for n in selected:
            if n not in keys:
                c = base.columns[n]
                cols.append(ColumnDef(n, c.type_expr, c.cql_type, "regular",
                                      type_text=c.type_text))
        options = h.option_defaults(None)
        options.pop("flags", None)
        options.pop("id", None)
        h.apply_options(options, stmt.options)
        view = ViewTable(ks.name, stmt.name, cols, options=options)
        view.base = base.name
        view.include_all = stmt.columns is None
        view.where_text = stmt.where_text
        view.where_columns = list(stmt.where_columns)
        views[stmt.name] = view
        view.created_gen = engine._schema_changed(ctx.node)
        engine._warnings.append(MV_WARNING)
        return SchemaChange("CREATED", "TABLE", ks.name, stmt.name)
    return run


def _view_of(engine, stmt, current, h):
    name = stmt.keyspace or current
    ks = engine.find_keyspace(name) if name else None
    view = objects(ks)["views"].get(stmt.name) if ks is not None else None
    if view is not None and not engine.visible(view):
        view = None
    return name, ks, view


def _alter_view(stmt, current, h):
    def run(engine, ctx):
        name, ks, view = _view_of(engine, stmt, current, h)
        if view is None:
            raise invalid("Materialized view '%s.%s' doesn't exist" % (name, stmt.name))
        if "default_time_to_live" in stmt.options:
            raise invalid("Cannot set or alter default_time_to_live for a materialized view. "
                          "Data in a materialized view always expire at the same time than "
                          "the corresponding data in the parent table.")
        h.apply_options(view.options, stmt.options)
        engine._schema_changed(ctx.node)
        return SchemaChange("UPDATED", "TABLE", ks.name, stmt.name)
    return run


def _drop_view(stmt, current, h):
    def run(engine, ctx):
        name, ks, view = _view_of(engine, stmt, current, h)
        if view is None:
            if stmt.if_exists:
                return Void()
            raise invalid("Materialized view '%s.%s' doesn't exist" % (name, stmt.name))
        del objects(ks)["views"][stmt.name]
        engine._schema_changed(ctx.node)
        return SchemaChange("DROPPED", "TABLE", ks.name, stmt.name)
    return run


def views_of_table(ks, table_name):
    store = getattr(ks, "schema_objects", None)
    return [v for v in store["views"].values() if v.base == table_name] if store else []


def drop_table_indexes(ks, table_name):
    """A dropped table's indexes go with it (as in Cassandra)."""
    store = getattr(ks, "schema_objects", None)
    if store:
        for name in [n for n, i in store["indexes"].items() if i.table == table_name]:
            del store["indexes"][name]


def find_view(engine, ks, name):
    store = getattr(ks, "schema_objects", None)
    view = store["views"].get(name) if store else None
    return view if view is not None and engine.visible(view) else None


def refresh_view(engine, view):
    """Fill ``view`` with its base table's rows now (each base row whose view key columns are
    all set becomes one view row, keyed by the view's primary key)."""
    ks = engine.keyspaces[view.keyspace]
    base = ks.tables.get(view.base)
    view.truncate()
    if base is None:
        return
    now = engine.clock()
    pk_names = [c.name for c in view.partition_key]
    ck_names = [c.name for c in view.clustering]
    base_pk = [c.name for c in base.partition_key]
    base_ck = [c.name for c in base.clustering]
    wanted = [c.name for c in view.regular]
    for part in base.partitions.values():
        for row in part.rows:
            if not row.is_live(now):
                continue

            def value(n):
                if n in base_pk:
                    return part.components[base_pk.index(n)]
                if n in base_ck:
                    return row.clustering[base_ck.index(n)]
                v = row.value(n, now)
                return v if v is not None else part.static.value(n, now)
            pk = [value(n) for n in pk_names]
            ck = tuple(value(n) for n in ck_names)
            if any(v is None for v in pk) or any(v is None for v in ck):
                continue
            vpart = view.get_or_create_partition(routing_key(pk), tuple(pk))
            vrow = vpart.get_or_create_row(ck, view.clustering_key(ck))
            vrow.marker = row.marker or (0, None, None)
            for n in wanted:
                cell = row.cells.get(n) or part.static.cells.get(n)
                if cell is not None:
                    vrow.cells[n] = list(cell)


def _type_text(h, ks, texpr):
    return A.render_type(h.canonical(texpr, ks))


def _signature(name, types):
    return "%s(%s)" % (name, ", ".join(types))


def _create_function(stmt, current, h):
    def run(engine, ctx):
        ks = h.keyspace_for(engine, stmt.keyspace, current)
        language = stmt.language.lower()
        if language not in ("java", "javascript"):
            raise invalid("Invalid language '%s' for function '%s.%s'"
                          % (stmt.language, ks.name, stmt.name))
        names = [a for a, _ in stmt.arguments]
        if len(set(names)) != len(names):
            raise invalid("Duplicate argument names for given function %s.%s with argument "
                          "names %s" % (ks.name, stmt.name, names))
        types = [_type_text(h, ks, t) for _, t in stmt.arguments]
        functions = objects(ks)["functions"]
        key = (stmt.name, tuple(types))
        if key in functions and engine.visible(functions[key]):
            if stmt.if_not_exists:
                return Void()
            if not stmt.or_replace:
                raise EngineError(ALREADY_EXISTS, "Function %s.%s already exists" % (
                    ks.name, _signature(stmt.name, types)),
                    {"keyspace": ks.name, "table": stmt.name})
        ret = _type_text(h, ks, stmt.return_type)
        row = {"keyspace_name": ks.name, "function_name": stmt.name, "argument_types": types,
               "argument_names": names, "body": stmt.body,
               "called_on_null_input": stmt.called_on_null, "language": language,
               "return_type": ret}
        change = "UPDATED" if key in functions else "CREATED"
        fn = functions[key] = Routine("function", ks.name, stmt.name, types, ret, row)
        fn.created_gen = engine._schema_changed(ctx.node)
        return SchemaChange(change, "FUNCTION", ks.name, stmt.name, types)
    return run


def _create_aggregate(stmt, current, h):
    def run(engine, ctx):
        ks = h.keyspace_for(engine, stmt.keyspace, current)
        types = [_type_text(h, ks, t) for t in stmt.arg_types]
        stype = _type_text(h, ks, stmt.state_type)
        functions = objects(ks)["functions"]
        state = functions.get((stmt.state_func, tuple([stype] + types)))
        if state is None or not engine.visible(state):
            raise invalid("State function %s does not exist" % _signature(
                "%s.%s" % (ks.name, stmt.state_func), [stype] + types))
        if state.return_type != stype:
            raise invalid("State function %s return type must be the same as the first "
                          "argument type - check STYPE, argument and return types"
                          % _signature(stmt.state_func, [stype] + types))
        ret = stype
        if stmt.final_func:
            final = functions.get((stmt.final_func, (stype,)))
            if final is None or not engine.visible(final):
                raise invalid("Final function %s does not exist" % _signature(
                    "%s.%s" % (ks.name, stmt.final_func), [stype]))
            ret = final.return_type
        aggregates = objects(ks)["aggregates"]
        key = (stmt.name, tuple(types))
        if key in aggregates and engine.visible(aggregates[key]):
            if stmt.if_not_exists:
                return Void()
            if not stmt.or_replace:
                raise EngineError(ALREADY_EXISTS, "Aggregate %s.%s already exists" % (
                    ks.name, _signature(stmt.name, types)),
                    {"keyspace": ks.name, "table": stmt.name})
        row = {"keyspace_name": ks.name, "aggregate_name": stmt.name, "argument_types": types,
               "final_func": stmt.final_func, "initcond": stmt.initcond, "return_type": ret,
               "state_func": stmt.state_func, "state_type": stype}
        change = "UPDATED" if key in aggregates else "CREATED"
        agg = aggregates[key] = Routine("aggregate", ks.name, stmt.name, types, ret, row)
        agg.created_gen = engine._schema_changed(ctx.node)
        return SchemaChange(change, "AGGREGATE", ks.name, stmt.name, types)
    return run


def _drop_routine(stmt, current, h):
    def run(engine, ctx):
        name = stmt.keyspace or current
        ks = engine.find_keyspace(name) if name else None
        what = "functions" if stmt.kind == "function" else "aggregates"
        found = []
        if ks is not None:
            types = None if stmt.arg_types is None else tuple(
                _type_text(h, ks, t) for t in stmt.arg_types)
            found = [k for k, r in objects(ks)[what].items()
                     if k[0] == stmt.name and engine.visible(r)
                     and (types is None or k[1] == types)]
        if not found:
            if stmt.if_exists:
                return Void()
            raise invalid("Unconfigured %s %s.%s" % (stmt.kind, name, stmt.name))
        if len(found) > 1:
            raise invalid("'DROP %s %s' matches multiple function definitions; specify the "
                          "argument types by issuing a statement like 'DROP %s %s "
                          "(type, type, ...)'. Hint: use cqlsh 'DESCRIBE %s %s' command to "
                          "find all overloads" % (stmt.kind.upper(), stmt.name,
                                                  stmt.kind.upper(), stmt.name,
                                                  stmt.kind.upper(), stmt.name))
        if what == "functions":
            for agg in objects(ks)["aggregates"].values():
                if stmt.name in (agg.row["state_func"], agg.row["final_func"]):
                    raise invalid("Function %s.%s is still referenced by aggregate %s.%s"
                                  % (ks.name, stmt.name, ks.name, agg.name))
        del objects(ks)[what][found[0]]
        engine._schema_changed(ctx.node)
        return SchemaChange("DROPPED", stmt.kind.upper(), ks.name, stmt.name,
                            list(found[0][1]))
    return run


def refuse_call(engine, keyspace, name):
    """Raise the simulator's refusal when ``name`` is a user-defined function or aggregate of
    ``keyspace`` (its body is stored, never run); return quietly otherwise."""
    ks = engine.keyspaces.get(keyspace) if keyspace else None
    store = getattr(ks, "schema_objects", None) if ks is not None else None
    if not store:
        return
    for what in ("functions", "aggregates"):
        if any(k[0] == name for k in store[what]):
            raise invalid("%s.%s is a user-defined %s: the simulated cluster stores its "
                          "definition but cannot run it (call it against a real Cassandra)"
                          % (keyspace, name, what[:-1]))


# --- system_schema rows ---------------------------------------------------------------------

def _stores(engine, node, visible_keyspaces):
    for ks in visible_keyspaces(engine, node):
        store = getattr(ks, "schema_objects", None)
        if store:
            yield ks, store


def _vis(engine, obj, node):
    return node is None or engine.visible(obj, node)


def index_rows(engine, node, visible_keyspaces):
    return [{"keyspace_name": ks.name, "table_name": i.table, "index_name": i.name,
             "kind": i.kind, "options": i.options}
            for ks, store in _stores(engine, node, visible_keyspaces)
            for i in store["indexes"].values() if _vis(engine, i, node)]


def view_rows(engine, node, visible_keyspaces):
    out = []
    for ks, store in _stores(engine, node, visible_keyspaces):
        for v in store["views"].values():
            if not _vis(engine, v, node):
                continue
            row = dict(v.options)
            base = ks.tables.get(v.base)
            row.update({"keyspace_name": ks.name, "view_name": v.name, "id": v.id,
                        "base_table_id": base.id if base is not None else None,
                        "base_table_name": v.base, "include_all_columns": v.include_all,
                        "where_clause": v.where_text})
            out.append(row)
    return out


def view_tables(engine, node, visible_keyspaces):
    """The views as tables (their system_schema.columns rows)."""
    for ks, store in _stores(engine, node, visible_keyspaces):
        for v in store["views"].values():
            if _vis(engine, v, node):
                yield ks, v


def routine_rows(engine, node, visible_keyspaces, what):
    return [dict(r.row) for ks, store in _stores(engine, node, visible_keyspaces)
            for r in store[what].values() if _vis(engine, r, node)]
