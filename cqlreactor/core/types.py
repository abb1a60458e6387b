"""CQL types: type options, CQL/marshal-class type names, serialization and row decoding.

A ``CqlType`` describes one (possibly parameterised) type; ``serialize(value, protocol_version)``
and ``deserialize(data, protocol_version)`` convert between Python values and the bytes of a
``[bytes]`` cell. Types come from the type options of result/prepared metadata
(``read_type_option``), from CQL text (``parse_cql_type``) and from Cassandra's marshal class
names (``lookup_casstype``). ``make_row_decoder`` compiles, once per column layout, a function
that decodes a whole Rows body in one loop: the hot path of every read.

Python values follow cassandra-driver: int, float, Decimal, str, bytes, bool, uuid.UUID,
naive-UTC datetime for timestamp (aware datetimes and int milliseconds accepted on write),
``Date`` / ``Time`` / ``Duration``, ipaddress objects for inet (strings accepted on write),
list, ``SortedSet`` for set (equal to a set), dict for map (``OrderedMap`` when keys are
unhashable), tuple, a namedtuple per UDT, list for vector.

The implementation lives in ``types_scalar`` (base class and native types), ``types_complex``
(collections, tuple, UDT, vector, custom), ``types_parse`` (the three type sources) and
``types_rows`` (row decoding, bound values); import everything from here.
"""

from cqlreactor.core.types_values import Date, Duration, OrderedMap, SortedSet, Time
from cqlreactor.core.types_scalar import (
    ASCII, BIGINT, BLOB, BOOLEAN, COUNTER, DATE, DECIMAL, DOUBLE, DURATION, FLOAT, INET, INT,
    MARSHAL, NATIVE_TYPES, SMALLINT, TEXT, TIME, TIMESTAMP, TIMEUUID, TINYINT, UNSET_VALUE,
    UUID, VARINT, CqlType, read_unsigned_vint, write_unsigned_vint)
from cqlreactor.core.types_complex import (
    CustomType, ListType, MapType, SetType, TupleType, UserType, VectorType, quote_identifier)
from cqlreactor.core.types_parse import (
    MAX_DEPTH, lookup_casstype, parse_cql_type, read_type_option, write_type_option)
from cqlreactor.core.types_rows import encode_values, make_row_decoder

__all__ = [
    "CqlType", "UNSET_VALUE", "UserType", "TupleType", "ListType", "SetType", "MapType",
    "VectorType", "CustomType", "Date", "Time", "Duration", "SortedSet", "OrderedMap",
    "read_type_option", "write_type_option", "parse_cql_type", "lookup_casstype",
    "make_row_decoder", "encode_values", "read_unsigned_vint", "write_unsigned_vint",
    "MARSHAL", "NATIVE_TYPES", "MAX_DEPTH", "quote_identifier",
    "ASCII", "BIGINT", "BLOB", "BOOLEAN", "COUNTER", "DATE", "DECIMAL", "DOUBLE", "DURATION",
    "FLOAT", "INET", "INT", "SMALLINT", "TEXT", "TIME", "TIMESTAMP", "TIMEUUID", "TINYINT",
    "UUID", "VARINT",
]
