"""Statements: SimpleStatement, PreparedStatement, BoundStatement, BatchStatement.

Names, arguments and behaviour follow cassandra-driver (``cassandra.query``) so that code moves
over by changing imports.  Prepared statements know their bind types, so binding serializes the
values once, here, and computes the routing key token-aware load balancing needs.
"""

import struct
from typing import Any

from cqlreactor.core import types as cqltypes
from cqlreactor.core.messages import BatchType
from cqlreactor.encoder import bind_params

__all__ = ["Statement", "SimpleStatement", "PreparedStatement", "BoundStatement",
           "BatchStatement", "BatchType", "UNSET_VALUE", "FETCH_SIZE_UNSET"]

UNSET_VALUE = cqltypes.UNSET_VALUE


class _FetchSizeUnset(object):
    def __repr__(self):
        return "FETCH_SIZE_UNSET"


FETCH_SIZE_UNSET = _FetchSizeUnset()
_short = struct.Struct(">H")


def _compose_routing_key(parts):
    """One component: its bytes; several: each as [short length][bytes][0x00] (CompositeType)."""
    if len(parts) == 1:
        return parts[0]
    return b"".join(_short.pack(len(p)) + p + b"\x00" for p in parts)


class Statement(object):
    """What every statement carries besides its query: consistency, paging, retries, routing."""

    _routing_key = None

    def __init__(self, retry_policy=None, consistency_level=None, routing_key=None,
                 serial_consistency_level=None, fetch_size=FETCH_SIZE_UNSET, keyspace=None,
                 custom_payload=None, is_idempotent=False, paging_state=None, timeout=None,
                 timestamp=None):
        self.retry_policy = retry_policy
        self.consistency_level = consistency_level
        self.serial_consistency_level = serial_consistency_level
        self.fetch_size = fetch_size
        self.keyspace = keyspace
        self.custom_payload = custom_payload
        self.is_idempotent = is_idempotent
        self.paging_state = paging_state
        self.timeout = timeout
        #: the request's default write timestamp (microseconds) instead of the cluster's
        #: timestamp_generator's; ``USING TIMESTAMP`` in the query still wins over both
        self.timestamp = timestamp
        if routing_key is not None:
            self.routing_key = routing_key

    def _get_routing_key(self):
        return self._routing_key

    def _set_routing_key(self, key):
        if isinstance(key, (list, tuple)):
            key = _compose_routing_key(list(key))
        self._routing_key = key

    routing_key = property(_get_routing_key, _set_routing_key, doc=(
        "The serialized partition key (bytes) token-aware routing hashes, or None."))


class SimpleStatement(Statement):
    """An unprepared query string.  Parameters use ``%s`` / ``%(name)s`` placeholders and are
    rendered client-side as CQL literals (as cassandra-driver does)."""

    def __init__(self, query_string, *args, **kwargs):
        Statement.__init__(self, *args, **kwargs)
        self._query_string = query_string

    @property
    def query_string(self):
        return self._query_string

    def __str__(self):
        return "<SimpleStatement query=%r>" % (self._query_string,)

    __repr__ = __str__


class PreparedStatement(object):
    """The server's answer to PREPARE: the statement id, the bind variables' types, the result
    metadata and which bind variables form the partition key."""

    def __init__(self, query_id, query_string, keyspace, bind_columns, routing_key_indexes,
                 result_metadata, result_metadata_id, protocol_version, session=None):
        self.query_id = query_id
        self.query_string = query_string
        self.keyspace = keyspace
        self.column_metadata = bind_columns          # list of (keyspace, table, name, CqlType)
        self.routing_key_indexes = routing_key_indexes
        self.result_metadata = result_metadata
        self.result_metadata_id = result_metadata_id
        self.protocol_version = protocol_version
        self.consistency_level = None
        self.serial_consistency_level = None
        self.fetch_size = FETCH_SIZE_UNSET
        self.retry_policy = None
        self.custom_payload = None
        self.is_idempotent = False
        self._session = session
        #: the session keyspace when it was prepared (its id depends on it)
        self.prepared_in_keyspace = None
        #: the keyspace its PREPARE carried (v5 ``prepare(keyspace=...)``), sent again when the
        #: statement is re-prepared; None when it carried none
        self.prepare_keyspace = None
        #: the CqlType and the name of each bind variable, in order (what binding serializes by)
        self.bind_types = [col[3] for col in bind_columns]
        self.bind_names = [col[2] for col in bind_columns]

    def bind(self, values=None):
        """A BoundStatement with ``values`` (a sequence, or a dict by bind-variable name)."""
        return BoundStatement(self).bind(values)

    def is_routing_key_index(self, i):
        """Whether bind variable ``i`` is part of the partition key."""
        return bool(self.routing_key_indexes) and i in self.routing_key_indexes

    def __str__(self):
        return "<PreparedStatement query=%r>" % (self.query_string,)

    __repr__ = __str__


class BoundStatement(Statement):
    """A prepared statement with its values, serialized at bind time."""

    def __init__(self, prepared_statement, retry_policy=None, consistency_level=None,
                 routing_key=None, serial_consistency_level=None, fetch_size=FETCH_SIZE_UNSET,
                 keyspace=None, custom_payload=None, is_idempotent=None, paging_state=None,
                 timeout=None, timestamp=None):
        ps = prepared_statement
        Statement.__init__(
            self, retry_policy if retry_policy is not None else ps.retry_policy,
            consistency_level if consistency_level is not None else ps.consistency_level,
            routing_key,
            serial_consistency_level if serial_consistency_level is not None
            else ps.serial_consistency_level,
            fetch_size if fetch_size is not FETCH_SIZE_UNSET else ps.fetch_size,
            keyspace or ps.keyspace,
            custom_payload if custom_payload is not None else ps.custom_payload,
            ps.is_idempotent if is_idempotent is None else is_idempotent,
            paging_state, timeout, timestamp)
        self.prepared_statement = ps
        self.values = []

    def bind(self, values):
        ps = self.prepared_statement
        types = ps.bind_types
        if values is None:
            values = ()
        if isinstance(values, dict):     # bind variables left out are sent unset
            names = ps.bind_names
            unknown = [k for k in values if k not in names]
            if unknown:
                raise ValueError("bind variables %r are not in the statement %r (it has %r)"
                                 % (unknown, ps.query_string, names))
            values = [values.get(n, UNSET_VALUE) for n in names]
        values = list(values)
        if len(values) > len(types):
            raise ValueError("too many values: the statement %r has %d bind variables, got %d"
                             % (ps.query_string, len(types), len(values)))
        if len(values) < len(types):
            values.extend([UNSET_VALUE] * (len(types) - len(values)))
        try:
            self.values = cqltypes.encode_values(types, values, ps.protocol_version)
        except (TypeError, ValueError, OverflowError, struct.error) as exc:
            raise TypeError("cannot bind values %r to %r: %s" % (values, ps.query_string, exc))
        indexes = ps.routing_key_indexes
        if indexes:
            parts = [self.values[i] for i in indexes]
            if any(p is None or p is UNSET_VALUE for p in parts):
                self._routing_key = None
            else:
                self._routing_key = _compose_routing_key(parts)
        return self

    @property
    def query_string(self):
        return self.prepared_statement.query_string

    def __str__(self):
        return "<BoundStatement query=%r>" % (self.prepared_statement.query_string,)

    __repr__ = __str__


class BatchStatement(Statement):
    """Several statements applied together; ``add`` takes query strings, SimpleStatements,
    PreparedStatements (with parameters) and BoundStatements."""

    def __init__(self, batch_type=BatchType.LOGGED, retry_policy=None, consistency_level=None,
                 serial_consistency_level=None, session=None, custom_payload=None,
                 timestamp=None):
        Statement.__init__(self, retry_policy=retry_policy, consistency_level=consistency_level,
                           serial_consistency_level=serial_consistency_level,
                           custom_payload=custom_payload, timestamp=timestamp)
        self.batch_type = batch_type
        self._statements_and_parameters = []   # (is_prepared, query string or id, values)
        # ``session``: its registered user types render instances of their classes (add())
        self._session = session

    @property
    def entries(self):
        """The statements added, in order, as ``(is_prepared, query_or_id, values)``: a
        prepared statement's id (bytes) with its serialized values, or a query string with its
        parameters already rendered into it (values None)."""
        return list(self._statements_and_parameters)

    def add(self, statement: Any, parameters: Any = None) -> "BatchStatement":
        if isinstance(statement, str):
            statement = SimpleStatement(statement)
        if isinstance(statement, PreparedStatement):
            statement = statement.bind(parameters or ())
            parameters = None
        if isinstance(statement, BoundStatement):
            if parameters:
                raise ValueError("parameters cannot be given with a BoundStatement")
            self._statements_and_parameters.append(
                (True, statement.prepared_statement.query_id, statement.values))
            if self._routing_key is None and statement.routing_key is not None:
                self._routing_key = statement.routing_key
                self.keyspace = self.keyspace or statement.keyspace
        elif isinstance(statement, SimpleStatement):
            # Rendered now, as cassandra-driver does (a bad value raises here, and later changes
            # to a mutable parameter do not reach the batch).
            # Rendered now, with the session's registered user types when given; a value that
            # only a registered class explains (no session yet) is rendered by the session
            # that executes the batch.
            user_types = getattr(self._session, "user_types", None)
            fields = user_types.fields_by_class if user_types is not None else None
            try:
                entry = (False, bind_params(statement.query_string, parameters, fields), None)
            except TypeError:
                if self._session is not None or not parameters:
                    raise
                entry = (False, statement.query_string, parameters)
            self._statements_and_parameters.append(entry)
        else:
            raise TypeError("cannot add %r to a batch" % (statement,))
        if getattr(statement, "is_idempotent", False) is False:
            self.is_idempotent = False
        return self

    def add_all(self, statements, parameters):
        for statement, value in zip(statements, parameters):
            self.add(statement, value)
        return self

    def clear(self):
        del self._statements_and_parameters[:]
        self._routing_key = None

    def __len__(self):
        return len(self._statements_and_parameters)

    def __str__(self):
        return "<BatchStatement type=%s statements=%d>" % (self.batch_type, len(self))

    __repr__ = __str__


def _simple_statement_template():
    """The attributes SimpleStatement(text) gets besides its text, when that is all its
    constructor does (checked on two statements); else None."""
    one, two = SimpleStatement("a"), SimpleStatement("b")
    first, second = dict(vars(one)), dict(vars(two))
    if first.pop("_query_string", None) != "a" or second.pop("_query_string", None) != "b" \
            or first != second or one.query_string != "a":
        return None
    for value in first.values():    # shared by every copy: only immutable values will do
        if not (value is None or value is FETCH_SIZE_UNSET
                or isinstance(value, (bool, int, float, str, bytes, frozenset))):
            return None
    return first


_SIMPLE_TEMPLATE = _simple_statement_template()
_new_object = object.__new__


def simple_statement(text):
    """``SimpleStatement(text)``, made by copying a template instead of running the constructor
    (two Python calls and a dozen attribute stores on every ``execute_async`` of a string)."""
    if _SIMPLE_TEMPLATE is None:
        return SimpleStatement(text)
    statement = _new_object(SimpleStatement)
    attributes = statement.__dict__
    attributes.update(_SIMPLE_TEMPLATE)
    attributes["_query_string"] = text
    return statement
