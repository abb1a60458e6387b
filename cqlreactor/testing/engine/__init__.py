"""The CQL engine behind the simulated Cassandra cluster: pure logic, no sockets.

The simulated server process (networking, protocol, faults) decodes requests and calls this
engine; the engine answers with result objects, or raises :class:`EngineError` carrying the
protocol error code. Values cross the interface serialized (bytes as on the wire, ``None`` for
null); ``cqlreactor.core.types`` decodes and encodes them.

Interface::

    NodeInfo(index, address, host_id=None, data_center="datacenter1", rack="rack1",
             tokens=None, release_version="4.0.11", schema_version=None, up=True,
             rpc_port=9042)
    Column: keyspace, table, name, cql_type (core.types.CqlType)
    Rows: columns (list[Column]), rows (list[tuple of bytes|None]), paging_state (bytes|None)
    Void; SetKeyspace(keyspace)
    SchemaChange(change_type 'CREATED'|'UPDATED'|'DROPPED', target 'KEYSPACE'|'TABLE'|'TYPE',
                 keyspace, name=None)
    Prepared: query_id (md5 of keyspace+query), result_metadata_id, bind_columns,
              pk_indexes, result_columns
    EngineError(code, message, fields)  (engine.errors; fields e.g. consistency /
              required / alive for Unavailable 0x1000, keyspace / table for AlreadyExists
              0x2400, statement_id for Unprepared 0x2500)

    Engine(nodes, cluster_name="cqlreactor-sim",
           partitioner="org.apache.cassandra.dht.Murmur3Partitioner", clock=time.time,
           schema_delay=0.0)          # seconds a DDL takes to reach non-coordinators
      .set_schema_delay(seconds or "never", index=None); .node_schema(index) -> generation
      .node_schema_version(index) -> uuid   # what system.local / peers report for the node
      .execute(query, values=None, names=None, keyspace=None, node=0, consistency=1,
               page_size=None, paging_state=None, protocol_version=4, timestamp=None)
               -> (result, schema_changed)      # timestamp: client default, micros
      .prepare(query, keyspace=None, node=None) -> Prepared   # node None: on every node
      .execute_prepared(query_id, values, keyspace=None, node=0, consistency=1,
                        page_size=None, paging_state=None, protocol_version=4,
                        names=None, timestamp=None) -> result # unknown id: 0x2500
      .batch(statements [(query_or_id, is_prepared, values)], keyspace=None, node=0,
             consistency=1, batch_type=0, timestamp=None) -> result   # 0 LOGGED 1 UNLOGGED
                                                                      # 2 COUNTER
      .forget_prepared(node)          # a restarted node forgets its prepared ids
      .replicas_for(keyspace, routing_key) -> [node index]
      .set_node_up(index, up)
      .add_node(NodeInfo) -> index     # joins the ring (tokens: widest range split if none)
      .remove_node(index) -> NodeInfo  # leaves the ring; later nodes' indexes move down one

Node indexes are positions in ``Engine.nodes`` (the ring members); the simulated server maps
its own stable node numbers onto them.

Consistency: a read or write first counts the live replicas of its partition
(``replicas_for`` + ``NodeInfo.up``) and raises Unavailable (0x1000) when the consistency
level needs more. Unsupported or malformed CQL raises SyntaxError (0x2000) or Invalid
(0x2200); an unexpected internal failure becomes ServerError (0x0000), never a Python crash.
Layout (each module imports only the ones below it; nothing imports upward)::

    engine.py         Engine: nodes, ring, replicas, plan cache, the entry points above
    compile.py        compile_statement: the one dispatch from a parsed statement to a plan
    reads.py          SELECT plans           writes.py   INSERT / UPDATE / DELETE / BATCH
    ddl.py            USE, CREATE / ALTER / DROP
    plans.py          the plan base, term compilation, WHERE analysis
    system_tables.py  system.local / peers / schema_* rows generated from the engine's state
    schema_objects.py indexes, views, functions, aggregates: their CQL, rows and behaviour
    values.py         CQL literals and bound values to serialized cells
    store.py          keyspaces, tables, partitions, rows (sorted by clustering key)
    parser.py         CQL text to statements (``ast_nodes``), ``lexer.py`` its tokens
    results.py        NodeInfo, Column, Rows, Void, SetKeyspace, SchemaChange, Prepared
    errors.py         EngineError and the error codes
"""

from cqlreactor.testing.engine.engine import Engine
from cqlreactor.testing.engine.errors import (
    ALREADY_EXISTS, CONFIG_ERROR, EngineError, INVALID, PROTOCOL_ERROR, SERVER_ERROR,
    SYNTAX_ERROR, UNAVAILABLE, UNPREPARED)
from cqlreactor.testing.engine.results import (
    Column, NodeInfo, Prepared, Rows, SchemaChange, SetKeyspace, Void)

__all__ = ["Engine", "NodeInfo", "Column", "Rows", "Void", "SetKeyspace", "SchemaChange",
           "Prepared", "EngineError",
           "SERVER_ERROR", "PROTOCOL_ERROR", "UNAVAILABLE", "SYNTAX_ERROR", "INVALID",
           "CONFIG_ERROR", "ALREADY_EXISTS", "UNPREPARED"]
