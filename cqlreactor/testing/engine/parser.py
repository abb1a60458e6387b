"""A parser for the CQL subset the simulated cluster understands.

Pure functions over text: ``parse(query) -> statement``. Statements are small slotted
classes (``ast_nodes``, re-exported here) that name what was written; nothing here knows the
schema, so literal values stay untyped (``Const``) until the engine binds them to a column
type.

Every problem is a :class:`CqlSyntaxError` (the engine turns it into a protocol
``SyntaxError``, code 0x2000) whose message names the offending token and its position.
"""

import re

from cqlreactor.testing.engine.ast_nodes import (  # noqa: F401  (re-exported: P.Select ...)
    AlterKeyspace, AlterTable, Batch, Bind, Collection, Const, CreateKeyspace, CreateTable,
    CreateType, Delete, Describe, DropKeyspace, DropTable, DropType, FuncCall, Insert,
    InsertJson, NATIVE_TYPES,
    RESERVED, Relation, Select, Selector, Truncate, TypeExpr, Unsupported, Update, Use,
    render_type)
from cqlreactor.testing.engine import schema_objects
from cqlreactor.testing.engine.lexer import CqlSyntaxError, TokenStream, tokenize  # noqa: F401

__all__ = [
    "CqlSyntaxError", "parse", "parse_type", "tokenize", "render_type", "TypeExpr",
    "Const", "Bind", "Collection", "FuncCall", "Relation", "Selector",
    "Use", "CreateKeyspace", "AlterKeyspace", "DropKeyspace", "CreateTable", "DropTable",
    "AlterTable", "CreateType", "DropType", "Insert", "Update", "Delete", "Select", "Truncate",
    "Batch", "Unsupported",
]


# --- parser ------------------------------------------------------------------------------------

class _Parser(TokenStream):
    __slots__ = ()

    # entry point
    def statement(self):
        t = self.peek()
        if t[0] != "id":
            raise self.error("a statement keyword (SELECT, INSERT, UPDATE, DELETE, CREATE ...)")
        word = t[1]
        handler = _STATEMENTS.get(word)
        if handler is None:
            raise self.error("a statement keyword (SELECT, INSERT, UPDATE, DELETE, CREATE ...)")
        self.i += 1
        return handler(self)

    # --- DDL ---
    def p_use(self):
        name = self.ident("keyspace name")
        return Use(name)

    def p_create(self):
        if self.accept_kw("keyspace") or self.accept_kw("schema"):
            ine = self.if_not_exists()
            name = self.ident("keyspace name")
            self.expect_kw("with")
            options = self.properties()
            return CreateKeyspace(name, ine, options)
        if self.accept_kw("table") or self.accept_kw("columnfamily"):
            return self.create_table()
        if self.accept_kw("type"):
            ine = self.if_not_exists()
            ks, name = self.qualified_name()
            self.expect_op("(")
            fields = []
            while True:
                fname = self.ident("field name")
                fields.append((fname, self.type_expr()))
                if self.accept_op(")"):
                    break
                self.expect_op(",")
            return CreateType(ks, name, ine, fields)
        ours = schema_objects.parse_create(self)
        if ours is not None:
            return ours
        t = self.peek()
        if t[0] == "id":
            what = t[1]
            if what == "custom":
                what = "custom index"
            elif what == "or":
                what = "create or replace"
            elif what == "materialized":
                what = "materialized view"
            self.i = len(self.toks) - 1
            return Unsupported("CREATE " + what.upper())
        raise self.error("KEYSPACE, TABLE or TYPE")

    def if_not_exists(self):
        if self.accept_kw("if"):
            self.expect_kw("not")
            self.expect_kw("exists")
            return True
        return False

    def if_exists(self):
        if self.accept_kw("if"):
            self.expect_kw("exists")
            return True
        return False

    def create_table(self):
        ine = self.if_not_exists()
        ks, name = self.qualified_name()
        self.expect_op("(")
        columns = []
        pk = None
        ck = []
        while True:
            if self.at_kw("primary") and self.peek(1)[0] == "id" and self.peek(1)[1] == "key":
                self.i += 2
                if pk is not None:
                    raise CqlSyntaxError("Multiple PRIMARY KEYs specified (exactly one required)")
                self.expect_op("(")
                if self.accept_op("("):
                    pk = [self.ident("column name")]
                    while self.accept_op(","):
                        pk.append(self.ident("column name"))
                    self.expect_op(")")
                else:
                    pk = [self.ident("column name")]
                while self.accept_op(","):
                    ck.append(self.ident("column name"))
                self.expect_op(")")
            else:
                cname = self.ident("column name")
                ctype = self.type_expr()
                static = self.accept_kw("static")
                if self.accept_kw("primary"):
                    self.expect_kw("key")
                    if pk is not None:
                        raise CqlSyntaxError(
                            "Multiple PRIMARY KEYs specified (exactly one required)")
                    pk = [cname]
                columns.append((cname, ctype, static))
            if self.accept_op(")"):
                break
            self.expect_op(",")
        options = {}
        order = []
        compact = False
        if self.accept_kw("with"):
            while True:
                if self.accept_kw("clustering"):
                    self.expect_kw("order")
                    self.expect_kw("by")
                    self.expect_op("(")
                    while True:
                        col = self.ident("column name")
                        if self.accept_kw("desc"):
                            order.append((col, "DESC"))
                        else:
                            self.accept_kw("asc")
                            order.append((col, "ASC"))
                        if self.accept_op(")"):
                            break
                        self.expect_op(",")
                elif self.accept_kw("compact"):
                    self.expect_kw("storage")
                    compact = True
                else:
                    key = self.ident("table option", allow_reserved=True)
                    self.expect_op("=")
                    options[key] = self.option_value()
                if not self.accept_kw("and"):
                    break
        if pk is None:
            raise CqlSyntaxError("No PRIMARY KEY specifed for table '%s' (exactly one required)"
                                 % name)
        return CreateTable(ks, name, ine, columns, pk, ck, order, options, compact)

    def properties(self):
        options = {}
        while True:
            key = self.ident("property name", allow_reserved=True)
            self.expect_op("=")
            options[key] = self.option_value()
            if not self.accept_kw("and"):
                break
        return options

    def option_value(self):
        t = self.peek()
        if t[0] == "op" and t[1] == "{":
            self.i += 1
            out = {}
            if self.accept_op("}"):
                return out
            while True:
                k = self.option_value()
                self.expect_op(":")
                v = self.option_value()
                out[str(k)] = v
                if self.accept_op("}"):
                    return out
                self.expect_op(",")
        if t[0] in ("str", "int", "float"):
            self.i += 1
            return t[1]
        if t[0] == "op" and t[1] == "-" and self.peek(1)[0] in ("int", "float"):
            self.i += 2
            return -self.toks[self.i - 1][1]
        if t[0] == "id" and t[1] in ("true", "false"):
            self.i += 1
            return t[1] == "true"
        if t[0] in ("id", "qid"):
            self.i += 1
            return t[1]
        raise self.error("a property value")

    def type_expr(self):
        t = self.peek()
        if t[0] == "str":
            self.i += 1
            return TypeExpr("custom", [t[1]])
        if t[0] not in ("id", "qid"):
            raise self.error("a type")
        self.i += 1
        name = t[1]
        if t[0] == "id":
            if name in NATIVE_TYPES:
                return TypeExpr(name, [])
            if name in ("list", "set", "frozen"):
                self.expect_op("<")
                sub = self.type_expr()
                self.expect_op(">")
                return TypeExpr(name, [sub])
            if name == "map":
                self.expect_op("<")
                k = self.type_expr()
                self.expect_op(",")
                v = self.type_expr()
                self.expect_op(">")
                return TypeExpr("map", [k, v])
            if name == "tuple":
                self.expect_op("<")
                subs = [self.type_expr()]
                while self.accept_op(","):
                    subs.append(self.type_expr())
                self.expect_op(">")
                return TypeExpr("tuple", subs)
            if name == "vector":
                self.expect_op("<")
                sub = self.type_expr()
                self.expect_op(",")
                dim = self.int_value("vector dimension")
                self.expect_op(">")
                return TypeExpr("vector", [sub, dim])
            if name in RESERVED:
                raise self.error("a type", t)
        # a user-defined type, maybe keyspace-qualified
        ks = None
        if self.accept_op("."):
            ks = name
            name = self.ident("type name")
        return TypeExpr("udt", [name], ks)

    def p_describe(self):
        """DESC[RIBE] as Cassandra 4 runs it on the server (DescribeStatement's grammar)."""
        only = full = False
        kind = keyspace = name = None
        if self.accept_kw("full"):
            full = True
            self.expect_kw("schema")
            kind = "schema"
        elif self.accept_kw("only"):
            only = True
            if not (self.accept_kw("keyspace") or self.accept_kw("schema")):
                raise self.error("KEYSPACE")
            kind = "keyspace"
        for words, k in ((("keyspaces",), "keyspaces"), (("tables", "columnfamilies"), "tables"),
                         (("types",), "types"), (("functions",), "functions"),
                         (("aggregates",), "aggregates"), (("cluster",), "cluster")):
            if kind is None and self.at_kw(*words) and self.peek(1)[0] in ("eof", "op"):
                self.i += 1
                kind = k
        if kind is None and self.accept_kw("schema"):
            kind = "schema"
        if kind is None and self.accept_kw("keyspace"):
            kind = "keyspace"
        if kind == "keyspace" and self.peek()[0] in ("id", "qid") and not self.at_kw("with"):
            keyspace = self.ident("keyspace name", allow_reserved=True)
        if kind is None:
            for words, k in ((("table", "columnfamily"), "table"), (("type",), "type"),
                             (("function",), "function"), (("aggregate",), "aggregate"),
                             (("index",), "index"),
                             (("materialized",), "materialized view")):
                if self.at_kw(*words):
                    self.i += 1
                    if k == "materialized view":
                        self.expect_kw("view")
                    kind = k
                    break
            if kind is None:
                kind = "name"
            keyspace, name = self.qualified_name()
        internals = False
        if self.accept_kw("with"):
            self.expect_kw("internals")
            internals = True
        return Describe(kind, keyspace, name, only, full, internals)

    def p_drop(self):
        if self.accept_kw("keyspace") or self.accept_kw("schema"):
            ie = self.if_exists()
            return DropKeyspace(self.ident("keyspace name"), ie)
        if self.accept_kw("table") or self.accept_kw("columnfamily"):
            ie = self.if_exists()
            ks, name = self.qualified_name()
            return DropTable(ks, name, ie)
        if self.accept_kw("type"):
            ie = self.if_exists()
            ks, name = self.qualified_name()
            return DropType(ks, name, ie)
        ours = schema_objects.parse_drop(self)
        if ours is not None:
            return ours
        t = self.peek()
        self.i = len(self.toks) - 1
        return Unsupported("DROP " + str(t[2]).upper())

    def p_alter(self):
        if self.accept_kw("keyspace") or self.accept_kw("schema"):
            ie = self.if_exists()
            name = self.ident("keyspace name")
            self.expect_kw("with")
            return AlterKeyspace(name, ie, self.properties())
        ours = schema_objects.parse_alter(self)
        if ours is not None:
            return ours
        if not (self.accept_kw("table") or self.accept_kw("columnfamily")):
            t = self.peek()
            self.i = len(self.toks) - 1
            return Unsupported("ALTER " + str(t[2]).upper())
        ks, name = self.qualified_name()
        if self.accept_kw("add"):
            paren = self.accept_op("(")
            cols = []
            while True:
                cname = self.ident("column name")
                cols.append((cname, self.type_expr(), self.accept_kw("static")))
                if not (paren and self.accept_op(",")):
                    break
            if paren:
                self.expect_op(")")
            return AlterTable(ks, name, "add", cols)
        if self.accept_kw("drop"):
            paren = self.accept_op("(")
            cols = [self.ident("column name")]
            while paren and self.accept_op(","):
                cols.append(self.ident("column name"))
            if paren:
                self.expect_op(")")
            return AlterTable(ks, name, "drop", cols)
        if self.accept_kw("with"):
            return AlterTable(ks, name, "with", self.properties())
        t = self.peek()
        self.i = len(self.toks) - 1
        return Unsupported("ALTER TABLE ... " + str(t[2]).upper())

    def p_truncate(self):
        self.accept_kw("table") or self.accept_kw("columnfamily")
        ks, name = self.qualified_name()
        return Truncate(ks, name)

    # --- terms ---
    def terms_until(self, close):
        """Comma-separated terms up to ``close`` (which is consumed); maybe none."""
        items = []
        if not self.accept_op(close):
            while True:
                items.append(self.term())
                if self.accept_op(close):
                    break
                self.expect_op(",")
        return items

    def term(self):
        t = self.peek()
        kind = t[0]
        if kind == "op":
            op = t[1]
            if op == "?":
                self.i += 1
                b = Bind(self.binds, None)
                self.binds += 1
                return b
            if op == ":":
                self.i += 1
                name = self.ident("bind marker name", allow_reserved=True)
                b = Bind(self.binds, name)
                self.binds += 1
                return b
            if op == "-":
                nxt = self.peek(1)
                if nxt[0] in ("int", "float"):
                    self.i += 2
                    return Const(nxt[0], -nxt[1], "-" + nxt[2])
                if nxt[0] == "duration" or (nxt[0] == "id" and _ISO_DURATION.match(nxt[2])):
                    self.i += 2
                    return Const("duration", "-" + nxt[2])
                if nxt[0] == "id" and nxt[1] in ("nan", "infinity"):
                    self.i += 2
                    return Const("float", float("-inf") if nxt[1] == "infinity" else float("nan"))
            if op == "[":
                self.i += 1
                return Collection("list", self.terms_until("]"))
            if op == "{":
                self.i += 1
                return self.brace_literal()
            if op == "(":
                # a tuple literal, or a type cast "(int) ?" (cast is unsupported)
                self.i += 1
                items = [self.term()]
                while self.accept_op(","):
                    items.append(self.term())
                self.expect_op(")")
                return Collection("tuple", items)
            raise self.error("a value")
        if kind in ("int", "float", "str", "uuid", "blob", "duration"):
            self.i += 1
            return Const(kind, t[1], t[2])
        if kind == "id":
            w = t[1]
            if w in ("true", "false"):
                self.i += 1
                return Const("bool", w == "true")
            if w == "null":
                self.i += 1
                return Const("null", None)
            if w == "nan":
                self.i += 1
                return Const("float", float("nan"))
            if w == "infinity":
                self.i += 1
                return Const("float", float("inf"))
            if self.peek(1)[0] == "op" and self.peek(1)[1] == "(":
                self.i += 2
                return FuncCall(w, self.terms_until(")"))
            if _ISO_DURATION.match(t[2]):
                self.i += 1
                return Const("duration", t[2], t[2])
        raise self.error("a value")

    def brace_literal(self):
        # {} | {a, b} (set) | {k: v} (map) | {field: v} (udt)
        if self.accept_op("}"):
            return Collection("map", [])   # empty: set or map, decided by the column type
        t0 = self.peek()
        t1 = self.peek(1)
        if t0[0] in ("id", "qid") and t1[0] == "op" and t1[1] == ":" and not (
                t0[0] == "id" and t0[1] in ("true", "false", "null", "nan", "infinity")):
            items = []
            while True:
                f = self.ident("field name", allow_reserved=True)
                self.expect_op(":")
                items.append((f, self.term()))
                if self.accept_op("}"):
                    return Collection("udt", items)
                self.expect_op(",")
        first = self.term()
        if self.accept_op(":"):
            items = [(first, self.term())]
            while not self.accept_op("}"):
                self.expect_op(",")
                k = self.term()
                self.expect_op(":")
                items.append((k, self.term()))
            return Collection("map", items)
        items = [first]
        while not self.accept_op("}"):
            self.expect_op(",")
            items.append(self.term())
        return Collection("set", items)

    # --- DML ---
    def using(self):
        ttl = timestamp = None
        if self.accept_kw("using"):
            while True:
                if self.accept_kw("ttl"):
                    ttl = self.term()
                elif self.accept_kw("timestamp"):
                    timestamp = self.term()
                else:
                    raise self.error("TTL or TIMESTAMP")
                if not self.accept_kw("and"):
                    break
        return ttl, timestamp

    def p_insert(self):
        self.expect_kw("into")
        ks, table = self.qualified_name()
        if self.accept_kw("json"):
            doc = self.term()
            if not (isinstance(doc, Bind) or (isinstance(doc, Const) and doc.kind == "str")):
                raise CqlSyntaxError("INSERT JSON takes a string literal or a bind marker")
            unset = False
            if self.accept_kw("default"):
                if self.accept_kw("unset"):
                    unset = True
                elif not self.accept_kw("null"):
                    raise self.error("NULL or UNSET")
            ine = self.if_not_exists()
            ttl, ts = self.using()
            if not ine:
                ine = self.if_not_exists()
            return InsertJson(ks, table, doc, unset, ine, ttl, ts, self.binds)
        self.expect_op("(")
        cols = [self.ident("column name")]
        while self.accept_op(","):
            cols.append(self.ident("column name"))
        self.expect_op(")")
        self.expect_kw("values")
        self.expect_op("(")
        vals = [self.term()]
        while self.accept_op(","):
            vals.append(self.term())
        self.expect_op(")")
        ine = self.if_not_exists()
        ttl, ts = self.using()
        if not ine:
            ine = self.if_not_exists()
        if len(cols) != len(vals):
            raise CqlSyntaxError("Unmatched column names/values")
        return Insert(ks, table, cols, vals, ine, ttl, ts, self.binds)

    def where(self):
        rels = []
        if not self.accept_kw("where"):
            return rels
        while True:
            rels.append(self.relation())
            if not self.accept_kw("and"):
                return rels

    def relation(self):
        if self.at_kw("token") and self.peek(1)[0] == "op" and self.peek(1)[1] == "(":
            self.i += 2
            cols = [self.ident("column name")]
            while self.accept_op(","):
                cols.append(self.ident("column name"))
            self.expect_op(")")
            col = ("token", cols)
        elif self.at_op("("):
            raise CqlSyntaxError("multi-column relations are not supported by the simulator")
        else:
            col = self.ident("column name")
        t = self.next()
        if t[0] == "op" and t[1] in ("=", "<", "<=", ">", ">=", "!="):
            return Relation(col, t[1], self.term())
        if t[0] == "id" and t[1] == "in":
            if self.at_op("?") or self.at_op(":"):
                return Relation(col, "IN", self.term())
            self.expect_op("(")
            return Relation(col, "IN", self.terms_until(")"))
        if t[0] == "id" and t[1] == "contains":
            if self.accept_kw("key"):
                return Relation(col, "CONTAINS KEY", self.term())
            return Relation(col, "CONTAINS", self.term())
        if t[0] == "id" and t[1] == "like":
            return Relation(col, "LIKE", self.term())
        raise self.error("a relation operator", t)

    def if_clause(self):
        """UPDATE / DELETE: [IF EXISTS | IF conditions] -> (if_exists, conditions)."""
        if not self.accept_kw("if"):
            return False, []
        if self.accept_kw("exists"):
            return True, []
        return False, self.conditions()

    def conditions(self):
        # after IF (not EXISTS): col op term [AND ...]
        conds = []
        while True:
            col = self.ident("column name")
            t = self.next()
            if t[0] == "op" and t[1] in ("=", "<", "<=", ">", ">=", "!="):
                conds.append((col, t[1], self.term()))
            elif t[0] == "id" and t[1] == "in":
                self.expect_op("(")
                items = [self.term()]
                while self.accept_op(","):
                    items.append(self.term())
                self.expect_op(")")
                conds.append((col, "IN", items))
            else:
                raise self.error("a condition operator", t)
            if not self.accept_kw("and"):
                return conds

    def p_update(self):
        ks, table = self.qualified_name()
        ttl, ts = self.using()
        self.expect_kw("set")
        assigns = []
        while True:
            col = self.ident("column name")
            key = None
            if self.accept_op("["):
                key = self.term()
                self.expect_op("]")
            self.expect_op("=")
            t = self.peek()
            if key is None and t[0] in ("id", "qid") and t[1] == col and self.peek(1)[0] == "op" \
                    and self.peek(1)[1] in ("+", "-"):
                self.i += 2
                op = "+=" if self.toks[self.i - 1][1] == "+" else "-="
                assigns.append((col, op, self.term(), None))
            else:
                value = self.term()
                if key is None and self.accept_op("+"):
                    other = self.ident("column name")
                    if other != col:
                        raise CqlSyntaxError("Only expressions of the form X = <value> + X are "
                                             "supported.")
                    assigns.append((col, "prepend", value, None))
                else:
                    assigns.append((col, "=", value, key))
            if not self.accept_op(","):
                break
        where = self.where()
        if_exists, conds = self.if_clause()
        return Update(ks, table, assigns, where, ttl, ts, if_exists, conds, self.binds)

    def p_delete(self):
        cols = []
        if not self.at_kw("from"):
            while True:
                c = self.ident("column name")
                key = None
                if self.accept_op("["):
                    key = self.term()
                    self.expect_op("]")
                cols.append((c, key))
                if not self.accept_op(","):
                    break
        self.expect_kw("from")
        ks, table = self.qualified_name()
        ttl, ts = self.using()
        if ttl is not None:
            raise CqlSyntaxError("line 1:0 mismatched input 'TTL' expecting TIMESTAMP")
        where = self.where()
        if_exists, conds = self.if_clause()
        return Delete(ks, table, cols, where, ts, if_exists, conds, self.binds)

    def p_select(self):
        json = self.accept_kw("json")
        distinct = self.accept_kw("distinct")
        if self.accept_op("*"):
            selectors = None
        else:
            selectors = []
            while True:
                selectors.append(self.selector())
                if not self.accept_op(","):
                    break
        self.expect_kw("from")
        ks, table = self.qualified_name()
        where = self.where()
        order = []
        if self.accept_kw("group"):
            return Unsupported("GROUP BY")
        if self.accept_kw("order"):
            self.expect_kw("by")
            while True:
                c = self.ident("column name")
                if self.accept_kw("desc"):
                    order.append((c, False))
                else:
                    self.accept_kw("asc")
                    order.append((c, True))
                if not self.accept_op(","):
                    break
        ppl = limit = None
        if self.accept_kw("per"):
            self.expect_kw("partition")
            self.expect_kw("limit")
            ppl = self.term()
        if self.accept_kw("limit"):
            limit = self.term()
        allow = False
        if self.accept_kw("allow"):
            self.expect_kw("filtering")
            allow = True
        return Select(ks, table, selectors, where, order, limit, ppl, allow, distinct, json,
                      self.binds)

    def selector(self):
        t = self.peek()
        nxt = self.peek(1)
        if t[0] == "id" and nxt[0] == "op" and nxt[1] == "(":
            fname = t[1]
            self.i += 2
            if fname == "count":
                if self.accept_op("*"):
                    arg = None
                else:
                    a = self.peek()
                    if a[0] == "int":
                        self.i += 1
                        arg = None
                    else:
                        arg = self.ident("column name")
                self.expect_op(")")
                sel = Selector("count", arg, None, None)
            elif fname in ("writetime", "ttl"):
                col = self.ident("column name")
                self.expect_op(")")
                sel = Selector(fname, col, None, None)
            else:
                args = []
                if not self.accept_op(")"):
                    while True:
                        args.append(self.ident("column name"))
                        if self.accept_op(")"):
                            break
                        self.expect_op(",")
                sel = Selector("func", fname, None, args)
        else:
            sel = Selector("column", self.ident("column name or selector"), None, None)
        if self.accept_kw("as"):
            sel.alias = self.ident("alias")
        return sel

    def p_begin(self):
        kind = "LOGGED"
        if self.accept_kw("unlogged"):
            kind = "UNLOGGED"
        elif self.accept_kw("counter"):
            kind = "COUNTER"
        elif self.accept_kw("logged"):
            kind = "LOGGED"
        self.expect_kw("batch")
        ts = None
        if self.accept_kw("using"):
            self.expect_kw("timestamp")
            ts = self.term()
        stmts = []
        while True:
            while self.accept_op(";"):
                pass
            if self.accept_kw("apply"):
                self.expect_kw("batch")
                break
            t = self.peek()
            if t[0] == "id" and t[1] in ("insert", "update", "delete"):
                self.i += 1
                stmts.append(_STATEMENTS[t[1]](self))
            else:
                raise self.error("INSERT, UPDATE, DELETE or APPLY BATCH")
        return Batch(kind, stmts, ts, self.binds)


def _unsupported(word):
    def handler(parser):
        parser.i = len(parser.toks) - 1
        return Unsupported(word)
    return handler


# ISO 8601 durations as Cassandra's lexer takes them unquoted: P1Y2M3DT4H5M6S, P2W (the
# alternative format P0001-02-03T04:05:06 lexes as several tokens here: not supported)
_ISO_DURATION = re.compile(r"^(?:P(?=\d|T\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?"
                           r"(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?|P\d+W)$", re.IGNORECASE)

_STATEMENTS = {
    "use": _Parser.p_use,
    "create": _Parser.p_create,
    "drop": _Parser.p_drop,
    "alter": _Parser.p_alter,
    "truncate": _Parser.p_truncate,
    "insert": _Parser.p_insert,
    "update": _Parser.p_update,
    "delete": _Parser.p_delete,
    "select": _Parser.p_select,
    "begin": _Parser.p_begin,
    "grant": _unsupported("GRANT"),
    "revoke": _unsupported("REVOKE"),
    "list": _unsupported("LIST"),
    "describe": _Parser.p_describe,
    "desc": _Parser.p_describe,
}


def parse(text):
    """Parse one CQL statement. Returns a statement node; raises CqlSyntaxError.

    A statement node carries ``bind_count`` (DML) — the number of bind markers, numbered in
    order of appearance (``Bind.index``).
    """
    if not isinstance(text, str):
        raise CqlSyntaxError("query must be text")
    p = _Parser(text)
    stmt = p.statement()
    p.end()
    return stmt


def parse_type(text):
    """Parse a CQL type expression (e.g. ``map<text, frozen<list<int>>>``)."""
    p = _Parser(text)
    t = p.type_expr()
    if p.peek()[0] != "eof":
        raise p.error("<EOF>")
    return t
