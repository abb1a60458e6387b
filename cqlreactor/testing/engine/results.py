"""What the simulated cluster's CQL engine answers with: results and node descriptions.

Plain slotted records, built by the plans and read by the simulated server (which encodes
them with ``cqlreactor.core.results``).  Nothing here imports the rest of the engine.
"""

import uuid

__all__ = ["NodeInfo", "Column", "Rows", "Void", "SetKeyspace", "SchemaChange", "Prepared"]


class NodeInfo(object):
    """One simulated node as the engine and the system tables see it."""

    __slots__ = ("index", "address", "host_id", "data_center", "rack", "tokens",
                 "release_version", "schema_version", "up", "rpc_port", "schema_generation",
                 "schema_delay")

    def __init__(self, index, address, host_id=None, data_center="datacenter1", rack="rack1",
                 tokens=None, release_version="4.0.11", schema_version=None, up=True,
                 rpc_port=9042):
        self.index = index
        self.address = address
        self.host_id = host_id or uuid.uuid4()
        self.data_center = data_center
        self.rack = rack
        self.tokens = list(tokens) if tokens else []
        self.release_version = release_version
        self.schema_version = schema_version
        self.up = up
        self.rpc_port = rpc_port
        # the engine's schema generation applied on this node, and this node's propagation
        # delay (None: the engine's default; float("inf"): never, a partitioned node)
        self.schema_generation = 0
        self.schema_delay = None

    def __repr__(self):
        return "NodeInfo(%d, %r, dc=%r, up=%r)" % (self.index, self.address, self.data_center,
                                                    self.up)


class Column(object):
    """Result or bind column metadata."""

    __slots__ = ("keyspace", "table", "name", "cql_type")

    def __init__(self, keyspace, table, name, cql_type):
        self.keyspace = keyspace
        self.table = table
        self.name = name
        self.cql_type = cql_type

    def __repr__(self):
        return "Column(%s.%s.%s %s)" % (self.keyspace, self.table, self.name, self.cql_type.name)

    def __eq__(self, other):
        return isinstance(other, Column) and (
            self.keyspace, self.table, self.name, self.cql_type) == (
            other.keyspace, other.table, other.name, other.cql_type)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


class Rows(object):
    """A ROWS result: rows are tuples of serialized values (None for null)."""

    __slots__ = ("columns", "rows", "paging_state")

    def __init__(self, columns, rows, paging_state=None):
        self.columns = columns
        self.rows = rows
        self.paging_state = paging_state

    def __repr__(self):
        return "Rows(%d columns, %d rows, paging_state=%r)" % (
            len(self.columns), len(self.rows), self.paging_state)


class Void(object):
    """A VOID result."""
    __slots__ = ()

    def __repr__(self):
        return "Void()"


class SetKeyspace(object):
    """A SET_KEYSPACE result (USE)."""
    __slots__ = ("keyspace",)

    def __init__(self, keyspace):
        self.keyspace = keyspace

    def __repr__(self):
        return "SetKeyspace(%r)" % (self.keyspace,)


class SchemaChange(object):
    """A SCHEMA_CHANGE result."""
    __slots__ = ("change_type", "target", "keyspace", "name", "arg_types")

    def __init__(self, change_type, target, keyspace, name=None, arg_types=None):
        self.change_type = change_type
        self.target = target
        self.keyspace = keyspace
        self.name = name
        self.arg_types = arg_types   # FUNCTION / AGGREGATE: the argument types (CQL text)

    def __repr__(self):
        return "SchemaChange(%s %s %s %s)" % (self.change_type, self.target, self.keyspace,
                                              self.name)


class Prepared(object):
    """A PREPARED result."""
    __slots__ = ("query_id", "result_metadata_id", "bind_columns", "pk_indexes",
                 "result_columns")

    def __init__(self, query_id, result_metadata_id, bind_columns, pk_indexes, result_columns):
        self.query_id = query_id
        self.result_metadata_id = result_metadata_id
        self.bind_columns = bind_columns
        self.pk_indexes = pk_indexes
        self.result_columns = result_columns

    def __repr__(self):
        return "Prepared(%s, %d binds, pk_indexes=%r)" % (
            self.query_id.hex(), len(self.bind_columns), self.pk_indexes)
