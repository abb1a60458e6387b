"""Schema statements of the simulated cluster's CQL engine: USE, CREATE / DROP / ALTER.

Each compiles to a plan whose ``run`` changes the engine's schema and answers as Cassandra 4
does (SCHEMA_CHANGE, or VOID when ``IF [NOT] EXISTS`` made it a no-op; AlreadyExists 0x2400,
Invalid 0x2200 and ConfigurationException 0x2300 otherwise).
"""

import re
import uuid

from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import schema_objects
from cqlreactor.testing.engine import system_tables as S
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.errors import (
    EngineError, INVALID, CONFIG_ERROR, ALREADY_EXISTS, SYNTAX_ERROR, UNAVAILABLE, invalid)
from cqlreactor.testing.engine.plans import _Plan
from cqlreactor.testing.engine.results import SchemaChange, SetKeyspace, Void
from cqlreactor.testing.engine.store import ColumnDef, Keyspace, Table, UserTypeDef

_NAME_RE = re.compile(r"^\w{1,48}$")
_STRATEGIES = {
    "SimpleStrategy": S.SIMPLE_STRATEGY,
    "NetworkTopologyStrategy": S.NTS,
}
_TABLE_OPTIONS = {
    "additional_write_policy": str, "bloom_filter_fp_chance": float, "caching": dict,
    "cdc": bool, "comment": str, "compaction": dict, "compression": dict,
    "crc_check_chance": float,
    "default_time_to_live": int, "extensions": dict, "gc_grace_seconds": int,
    "max_index_interval": int, "memtable_flush_period_in_ms": int, "min_index_interval": int,
    "read_repair": str, "speculative_retry": str,
}


class _DdlPlan(_Plan):
    cacheable = False

    def __init__(self, fn):
        self._fn = fn
        self.bind_specs = []
        self.marker_names = []
        self.pk_indexes = []
        self.result_columns = []

    def run(self, engine, vals, ctx):
        return self._fn(engine, ctx)


def _check_name(name, what):
    if not _NAME_RE.match(name):
        raise invalid("%s name must not be empty, more than 48 characters long, or contain "
                       "non-alphanumeric-underscore characters (got \"%s\")" % (what, name))


def _replication(options):
    repl = options.get("replication")
    if not isinstance(repl, dict):
        raise EngineError(CONFIG_ERROR, "Missing mandatory option 'replication'" if repl is None
                          else "Invalid value for property 'replication'")
    cls = repl.get("class")
    if not cls:
        raise EngineError(CONFIG_ERROR, "Missing replication strategy class")
    full = _STRATEGIES.get(cls, cls if "." in cls else None)
    if full not in (S.SIMPLE_STRATEGY, S.NTS):
        if full == S.LOCAL_STRATEGY or cls == "LocalStrategy":
            raise EngineError(CONFIG_ERROR, "Unable to use given strategy class: LocalStrategy "
                                            "is reserved for internal use.")
        raise EngineError(CONFIG_ERROR, "Unable to find replication strategy class "
                                        "'org.apache.cassandra.locator.%s'" % cls)
    out = {"class": full}
    for k, v in repl.items():
        if k == "class":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise EngineError(CONFIG_ERROR, "Replication factor must be an integer, got %r"
                              % (v,))
        text = str(v)
        if not re.match(r"^\d+(/\d+)?$", text):
            raise EngineError(CONFIG_ERROR, "Replication factor must be non-negative; found %s"
                              % text)
        out[k] = text
    if full == S.SIMPLE_STRATEGY:
        if "replication_factor" not in out:
            raise EngineError(CONFIG_ERROR, "SimpleStrategy requires a replication_factor "
                                            "strategy option.")
        extra = [k for k in out if k not in ("class", "replication_factor")]
        if extra:
            raise EngineError(CONFIG_ERROR, "Unrecognized strategy option {%s} passed to "
                                            "SimpleStrategy for keyspace" % extra[0])
    return out


def _nts_expand(engine, repl):
    if repl.get("class") == S.NTS and "replication_factor" in repl:
        rf = repl.pop("replication_factor")
        for n in engine.nodes:
            repl.setdefault(n.data_center, rf)
    return repl


def _check_keyspace_options(options):
    unknown = [k for k in options if k not in ("replication", "durable_writes")]
    if unknown:
        raise EngineError(SYNTAX_ERROR, "Unknown property '%s'" % unknown[0])


def _durable(value):
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _create_keyspace(stmt):
    def run(engine, ctx):
        _check_name(stmt.name, "Keyspace")
        repl = _nts_expand(engine, _replication(stmt.options))
        _check_keyspace_options(stmt.options)
        durable = _durable(stmt.options.get("durable_writes", True))
        if stmt.name in engine.keyspaces:
            if stmt.if_not_exists:
                return Void()
            raise EngineError(ALREADY_EXISTS, "Keyspace '%s' already exists" % stmt.name,
                              {"keyspace": stmt.name, "table": ""})
        ks = engine.keyspaces[stmt.name] = Keyspace(stmt.name, repl, durable)
        ks.created_gen = engine._schema_changed(ctx.node)
        return SchemaChange("CREATED", "KEYSPACE", stmt.name)
    return run


def _alter_keyspace(stmt):
    def run(engine, ctx):
        ks = engine.find_keyspace(stmt.name)
        if ks is None:
            if stmt.if_exists:
                return Void()
            raise invalid("Keyspace '%s' doesn't exist" % stmt.name)
        if ks.system and ks.replication.get("class") == S.LOCAL_STRATEGY:
            raise EngineError(0x2100, "%s keyspace is not user-modifiable." % stmt.name)
        _check_keyspace_options(stmt.options)
        if "replication" in stmt.options:
            ks.replication = _nts_expand(engine, _replication(stmt.options))
        if "durable_writes" in stmt.options:
            ks.durable_writes = _durable(stmt.options["durable_writes"])
        engine._schema_changed(ctx.node)
        return SchemaChange("UPDATED", "KEYSPACE", stmt.name)
    return run


def _drop_keyspace(stmt):
    def run(engine, ctx):
        ks = engine.find_keyspace(stmt.name)
        if ks is None:
            if stmt.if_exists:
                return Void()
            raise EngineError(CONFIG_ERROR, "Cannot drop non existing keyspace '%s'."
                              % stmt.name)
        if ks.system:
            raise EngineError(0x2100, "%s keyspace is not user-modifiable." % stmt.name)
        del engine.keyspaces[stmt.name]
        engine._schema_changed(ctx.node)
        return SchemaChange("DROPPED", "KEYSPACE", stmt.name)
    return run


def _keyspace_for(engine, name, current):
    name = name or current
    if name is None:
        raise invalid("No keyspace has been specified. USE a keyspace, or explicitly specify "
                       "keyspace.tablename")
    ks = engine.find_keyspace(name)
    if ks is None:
        raise invalid("Keyspace %s doesn't exist" % name)
    if ks.system:
        raise EngineError(0x2100, "%s keyspace is not user-modifiable." % name)
    return ks


def _canonical(texpr, ks, in_collection=False, frozen=False):
    """Cassandra's normal form of a column type: varchar is text, tuples are frozen, UDTs
    must exist; returns the new TypeExpr."""
    name = texpr.name
    if name == "varchar":
        return P.TypeExpr("text", [])
    if name == "udt":
        tname = texpr.params[0]
        if texpr.keyspace is not None and texpr.keyspace != ks.name:
            raise invalid("Statement on keyspace %s cannot refer to a user type in keyspace "
                           "%s; user types can only be used in the keyspace they are defined in"
                           % (ks.name, texpr.keyspace))
        if tname not in ks.types:
            raise invalid("Unknown type %s.%s" % (ks.name, tname))
        if in_collection and not frozen:
            raise invalid("Non-frozen UDTs are not allowed inside collections: %s"
                           % tname)
        return P.TypeExpr("udt", [tname], None)
    if name == "frozen":
        inner = texpr.params[0]
        if inner.name not in ("list", "set", "map", "tuple", "udt"):
            raise invalid("frozen<> is only allowed on collections, tuples, and user-defined "
                           "types (got %s)" % P.render_type(inner))
        return P.TypeExpr("frozen", [_canonical(inner, ks, False, True)])
    if name == "tuple":
        subs = [_canonical(p, ks, True, True) for p in texpr.params]
        t = P.TypeExpr("tuple", subs)
        return t if frozen else P.TypeExpr("frozen", [t])
    if name in ("list", "set", "map"):
        subs = []
        for p in texpr.params:
            if p.name in ("list", "set", "map") and not frozen:
                raise invalid("Non-frozen collections are not allowed inside collections: %s"
                               % P.render_type(texpr))
            if p.name == "counter":
                raise invalid("Counters are not allowed inside collections: %s"
                               % P.render_type(texpr))
            subs.append(_canonical(p, ks, True, frozen))
        return P.TypeExpr(name, subs)
    if name == "vector":
        return P.TypeExpr("vector", [_canonical(texpr.params[0], ks, True, True),
                                     texpr.params[1]])
    if name == "custom":
        raise invalid("Custom types are not supported by the simulated cluster")
    return texpr


def _create_table(stmt, current):
    def run(engine, ctx):
        ks = _keyspace_for(engine, stmt.keyspace, current)
        _check_name(stmt.name, "Table")
        if stmt.name in ks.tables:
            if stmt.if_not_exists:
                return Void()
            raise EngineError(ALREADY_EXISTS, "Cannot add already existing table \"%s\" to "
                              "keyspace \"%s\"" % (stmt.name, ks.name),
                              {"keyspace": ks.name, "table": stmt.name})
        if stmt.compact:
            raise invalid("COMPACT STORAGE tables are not supported by the simulated cluster")
        defs = {}
        order = []
        for name, texpr, static in stmt.columns:
            if name in defs:
                raise invalid("Multiple definition of identifier %s" % name)
            defs[name] = (_canonical(texpr, ks), static)
            order.append(name)
        for n in stmt.partition_key + stmt.clustering:
            if n not in defs:
                raise invalid("Unknown definition %s referenced in PRIMARY KEY" % n)
        keys = stmt.partition_key + stmt.clustering
        if len(set(keys)) != len(keys):
            raise invalid("Duplicate column in PRIMARY KEY")
        clustering_order = dict(stmt.clustering_order)
        if stmt.clustering_order:
            names = [n for n, _ in stmt.clustering_order]
            for n in names:
                if n not in stmt.clustering:
                    raise invalid("Only clustering key columns can be defined in CLUSTERING "
                                   "ORDER directive")
            if names != stmt.clustering[:len(names)]:
                raise invalid("The order of columns in the CLUSTERING ORDER directive must "
                               "match that of the clustering columns (%s must appear before "
                               "%s)" % (stmt.clustering[0], names[0]))
        counters = [n for n in order if defs[n][0].name == "counter"]
        if counters and len(counters) != len([n for n in order if n not in keys]):
            raise invalid("Cannot mix counter and non counter columns in the same table")
        cols = []
        for i, n in enumerate(stmt.partition_key):
            t = defs[n][0]
            _key_type_ok(t, n)
            cols.append(_coldef(engine, ks, n, t, "partition_key", i))
        for i, n in enumerate(stmt.clustering):
            t = defs[n][0]
            _key_type_ok(t, n)
            cols.append(_coldef(engine, ks, n, t, "clustering", i,
                                clustering_order.get(n, "ASC").lower()))
        for n in order:
            if n in keys:
                if defs[n][1]:
                    raise invalid("Static column %s cannot be part of the PRIMARY KEY" % n)
                continue
            t, static = defs[n]
            if static and not stmt.clustering:
                raise invalid("Static columns are only useful (and thus allowed) if the table "
                               "has at least one clustering column")
            cols.append(_coldef(engine, ks, n, t, "static" if static else "regular"))
        table_id = uuid.uuid4()
        options = S.table_option_defaults(table_id, bool(counters), engine.release)
        _apply_options(options, stmt.options)
        table = Table(ks.name, stmt.name, cols, table_id=table_id, options=options)
        ks.tables[stmt.name] = table
        table.created_gen = engine._schema_changed(ctx.node)
        return SchemaChange("CREATED", "TABLE", ks.name, stmt.name)
    return run


def _key_type_ok(texpr, name):
    if texpr.name in ("list", "set", "map") or (texpr.name == "udt"):
        raise invalid("Invalid non-frozen %s type for PRIMARY KEY component %s"
                       % ("user-defined" if texpr.name == "udt" else "collection", name))
    if texpr.name == "counter":
        raise invalid("counter type is not supported for PRIMARY KEY column '%s'" % name)
    if texpr.name == "duration":
        raise invalid("duration type is not supported for PRIMARY KEY column '%s'" % name)


def _coldef(engine, ks, name, texpr, kind, position=-1, order="none"):
    try:
        ctype = V.type_for(texpr, ks.types)
    except ValueError as exc:
        raise invalid(str(exc))
    return ColumnDef(name, texpr, ctype, kind, position, order, type_text=P.render_type(texpr))


def _apply_options(options, given):
    for key, value in given.items():
        kind = _TABLE_OPTIONS.get(key)
        if kind is None or key == "id":
            raise EngineError(SYNTAX_ERROR, "Unknown property '%s'" % key)
        try:
            if kind is dict:
                if not isinstance(value, dict):
                    raise ValueError
                if key == "extensions":
                    value = dict((str(k), str(v).encode("utf-8")) for k, v in value.items())
                else:
                    value = dict((str(k), str(v)) for k, v in value.items())
                if key == "compaction" and "class" in value and "." not in value["class"]:
                    value["class"] = ("org.apache.cassandra.db.compaction." + value["class"])
            elif kind is bool:
                if isinstance(value, str):
                    value = value.lower() == "true"
                value = bool(value)
            elif kind is str:
                value = str(value)
            else:
                if isinstance(value, str):
                    value = kind(value)
                value = kind(value)
        except (TypeError, ValueError):
            raise EngineError(SYNTAX_ERROR, "Invalid value for property '%s'" % key)
        options[key] = value


def _drop_table(stmt, current):
    def run(engine, ctx):
        name = stmt.keyspace or current
        if name is None:
            raise invalid("No keyspace has been specified. USE a keyspace, or explicitly "
                           "specify keyspace.tablename")
        ks = engine.find_keyspace(name)
        table = ks.tables.get(stmt.name) if ks is not None else None
        if table is None or not engine.visible(table):
            if stmt.if_exists:
                return Void()
            if ks is None:
                raise invalid("Keyspace '%s' doesn't exist" % name)
            raise invalid("Table '%s.%s' doesn't exist" % (name, stmt.name))
        if ks.system:
            raise EngineError(0x2100, "%s keyspace is not user-modifiable." % name)
        views = schema_objects.views_of_table(ks, stmt.name)
        if views:
            raise invalid("Cannot drop a table when materialized views still depend on it "
                          "(%s.{%s})" % (ks.name, ", ".join(v.name for v in views)))
        schema_objects.drop_table_indexes(ks, stmt.name)
        del ks.tables[stmt.name]
        engine._schema_changed(ctx.node)
        return SchemaChange("DROPPED", "TABLE", ks.name, stmt.name)
    return run


def _create_type(stmt, current):
    def run(engine, ctx):
        ks = _keyspace_for(engine, stmt.keyspace, current)
        if stmt.name in ks.types:
            if stmt.if_not_exists:
                return Void()
            raise EngineError(ALREADY_EXISTS, "A user type with name '%s' already exists"
                              % stmt.name, {"keyspace": ks.name, "table": stmt.name})
        names = [f for f, _ in stmt.fields]
        if len(set(names)) != len(names):
            raise invalid("Duplicate field name in type %s" % stmt.name)
        types = []
        for fname, texpr in stmt.fields:
            t = _canonical(texpr, ks, True, True)
            if t.name in ("list", "set", "map"):
                pass
            if t.name == "udt" and t.params[0] == stmt.name:
                raise invalid("Type %s cannot refer to itself" % stmt.name)
            if t.name == "counter":
                raise invalid("A user type cannot contain counters")
            types.append(t)
        texts = [P.render_type(t) for t in types]
        ks.types[stmt.name] = UserTypeDef(ks.name, stmt.name, names, types, texts)
        try:
            V.type_for(P.TypeExpr("udt", [stmt.name]), ks.types)
        except ValueError as exc:
            del ks.types[stmt.name]
            raise invalid(str(exc))
        ks.types[stmt.name].created_gen = engine._schema_changed(ctx.node)
        return SchemaChange("CREATED", "TYPE", ks.name, stmt.name)
    return run


def _uses_type(texpr, name):
    if texpr.name == "udt":
        return texpr.params[0] == name
    return any(isinstance(p, P.TypeExpr) and _uses_type(p, name) for p in texpr.params or ())


def _drop_type(stmt, current):
    def run(engine, ctx):
        name = stmt.keyspace or current
        ks = engine.find_keyspace(name) if name else None
        if ks is None or stmt.name not in ks.types:
            if stmt.if_exists:
                return Void()
            raise invalid("Type '%s.%s' doesn't exist" % (name, stmt.name))
        for t in ks.tables.values():
            for c in t.columns.values():
                if _uses_type(c.type_expr, stmt.name):
                    raise invalid("Cannot drop user type %s.%s as it is still used by table "
                                   "%s.%s" % (ks.name, stmt.name, ks.name, t.name))
        for u in ks.types.values():
            if u.name != stmt.name and any(_uses_type(f, stmt.name) for f in u.field_types):
                raise invalid("Cannot drop user type %s.%s as it is still used by user type "
                               "%s" % (ks.name, stmt.name, u.name))
        del ks.types[stmt.name]
        engine._schema_changed(ctx.node)
        return SchemaChange("DROPPED", "TYPE", ks.name, stmt.name)
    return run


def _alter_table(stmt, current):
    def run(engine, ctx):
        ks = _keyspace_for(engine, stmt.keyspace, current)
        table = ks.tables.get(stmt.name)
        if table is None or not engine.visible(table):
            raise invalid("Table '%s.%s' doesn't exist" % (ks.name, stmt.name))
        if stmt.action == "add":
            for name, texpr, static in stmt.payload:
                if name in table.columns:
                    raise invalid("Column with name '%s' already exists" % name)
                t = _canonical(texpr, ks)
                if static and not table.clustering:
                    raise invalid("Static columns are only useful (and thus allowed) if the "
                                   "table has at least one clustering column")
                if (t.name == "counter") != table.is_counter and table.regular + table.static:
                    raise invalid("Cannot mix counter and non counter columns in the same "
                                   "table")
                table.add_column(_coldef(engine, ks, name, t, "static" if static else
                                         "regular"))
        elif stmt.action == "drop":
            for name in stmt.payload:
                c = table.columns.get(name)
                if c is None:
                    raise invalid("Column %s was not found in table %s" % (name, stmt.name))
                if c.kind in ("partition_key", "clustering"):
                    raise invalid("Cannot drop PRIMARY KEY part %s" % name)
                table.drop_column(name)
        else:
            _apply_options(table.options, stmt.payload)
        engine._schema_changed(ctx.node)
        return SchemaChange("UPDATED", "TABLE", ks.name, stmt.name)
    return run


def _use(stmt):
    def run(engine, ctx):
        if engine.find_keyspace(stmt.keyspace) is None:
            raise invalid("Keyspace '%s' does not exist" % stmt.keyspace)
        return SetKeyspace(stmt.keyspace)
    return run


def _truncate(stmt, current):
    def run(engine, ctx):
        table = engine._table(stmt.keyspace, stmt.table, current)
        if table.virtual:
            raise EngineError(0x2100, "Cannot TRUNCATE system table %s.%s"
                              % (table.keyspace, table.name))
        down = [n for n in engine.nodes if not n.up]
        if down:
            raise EngineError(UNAVAILABLE, "Cannot achieve consistency level ALL",
                              {"consistency": 5, "required": len(engine.nodes),
                               "alive": len(engine.nodes) - len(down)})
        table.truncate()
        return Void()
    return run


def compile_ddl(engine, stmt, keyspace):
    """A plan for a schema statement (never cached: it reads the schema when it runs)."""
    if isinstance(stmt, P.Use):
        return _DdlPlan(_use(stmt))
    if isinstance(stmt, P.CreateKeyspace):
        return _DdlPlan(_create_keyspace(stmt))
    if isinstance(stmt, P.AlterKeyspace):
        return _DdlPlan(_alter_keyspace(stmt))
    if isinstance(stmt, P.DropKeyspace):
        return _DdlPlan(_drop_keyspace(stmt))
    if isinstance(stmt, P.CreateTable):
        return _DdlPlan(_create_table(stmt, keyspace))
    if isinstance(stmt, P.DropTable):
        return _DdlPlan(_drop_table(stmt, keyspace))
    if isinstance(stmt, P.CreateType):
        return _DdlPlan(_create_type(stmt, keyspace))
    if isinstance(stmt, P.DropType):
        return _DdlPlan(_drop_type(stmt, keyspace))
    if isinstance(stmt, P.AlterTable):
        return _DdlPlan(_alter_table(stmt, keyspace))
    if isinstance(stmt, P.Truncate):
        return _DdlPlan(_truncate(stmt, keyspace))
    if isinstance(stmt, schema_objects.STATEMENTS):
        return _DdlPlan(schema_objects.compile_object_ddl(engine, stmt, keyspace, _HELPERS))
    raise EngineError(INVALID, "%s statements are not supported by the simulated cluster"
                      % type(stmt).__name__)


class _Helpers(object):
    """ddl's checks, lent to cqlreactor.testing.engine.schema_objects."""
    keyspace_for = staticmethod(lambda engine, name, current: _keyspace_for(engine, name,
                                                                            current))
    check_name = staticmethod(lambda name, what: _check_name(name, what))
    apply_options = staticmethod(lambda options, given: _apply_options(options, given))
    canonical = staticmethod(lambda texpr, ks: _canonical(texpr, ks, False, True))
    option_defaults = staticmethod(S.table_option_defaults)


_HELPERS = _Helpers()
