"""The one compile entry of the simulated cluster's CQL engine: a parsed statement to a plan.

It sits above the plan modules (``reads``, ``writes``, ``ddl``) and below ``engine``, so a
plan module never needs to import its way back up; a BATCH's inner statements are compiled
here and handed down.
"""

from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine.ddl import compile_ddl
from cqlreactor.testing.engine.describe import compile_describe
from cqlreactor.testing.engine.jsonrows import compile_insert_json, compile_select_json
from cqlreactor.testing.engine.errors import EngineError, INVALID, SYNTAX_ERROR
from cqlreactor.testing.engine.reads import _compile_select
from cqlreactor.testing.engine.writes import (
    _compile_batch, _compile_delete, _compile_insert, _compile_update)

__all__ = ["compile_statement"]


def compile_statement(engine, stmt, keyspace):
    """The plan for ``stmt`` against the engine's current schema (raises EngineError)."""
    if isinstance(stmt, P.Select):
        if stmt.json:
            return compile_select_json(engine, stmt, keyspace)
        return _compile_select(engine, stmt, keyspace)
    if isinstance(stmt, P.InsertJson):
        return compile_insert_json(engine, stmt, keyspace)
    if isinstance(stmt, P.Insert):
        return _compile_insert(engine, stmt, keyspace)
    if isinstance(stmt, P.Update):
        return _compile_update(engine, stmt, keyspace)
    if isinstance(stmt, P.Delete):
        return _compile_delete(engine, stmt, keyspace)
    if isinstance(stmt, P.Batch):
        subs = []
        for sub in stmt.statements:
            sub.bind_count = stmt.bind_count    # markers are numbered across the whole batch
            subs.append(compile_statement(engine, sub, keyspace))
        return _compile_batch(engine, stmt, keyspace, subs)
    if isinstance(stmt, P.Describe):
        if not engine.release.has_server_describe:
            raise EngineError(SYNTAX_ERROR, "line 1:0 no viable alternative at input "
                              "'DESCRIBE' (Cassandra %s runs no DESCRIBE on the server: "
                              "cqlsh describes 3.11 from its schema metadata)"
                              % (engine.release.version,))
        return compile_describe(engine, stmt, keyspace)
    if isinstance(stmt, (P.CreateTable, P.AlterTable, P.CreateType)) and \
            not engine.release.has_vector and _uses_vector(stmt):
        raise EngineError(SYNTAX_ERROR, "line 1:0 no viable alternative at input 'vector' "
                          "(the vector type exists from Cassandra 5.0; this simulated cluster "
                          "is release %s: SimulatedCluster(release_version=\"5.0.2\"))"
                          % (engine.release.version,))
    if isinstance(stmt, P.Unsupported):
        raise EngineError(INVALID if stmt.what != "DESCRIBE" else SYNTAX_ERROR,
                          "%s is not supported by the simulated cluster" % stmt.what)
    return compile_ddl(engine, stmt, keyspace)


def _uses_vector(node):
    """Whether a statement's type expressions name ``vector`` anywhere."""
    if isinstance(node, P.TypeExpr):
        return node.name == "vector" or any(_uses_vector(p) for p in node.params or ())
    if isinstance(node, (list, tuple)):
        return any(_uses_vector(item) for item in node)
    if isinstance(node, dict):
        return any(_uses_vector(item) for item in node.values())
    slots = getattr(type(node), "__slots__", None)
    if slots and hasattr(node, "__eq__") and type(node).__module__ == P.TypeExpr.__module__:
        return any(_uses_vector(getattr(node, s, None)) for s in slots)
    return False
