"""Parameterised CQL types: list, set, map, tuple, user-defined types, vector and custom.

Part of ``cqlreactor.core.types`` (import from there). Every element count read from the wire
is checked against the bytes present before the loop runs, so a value claiming 2**31 elements
in a few bytes fails at once with ``ProtocolError``.
"""

import keyword
import re
import struct
from collections import namedtuple

from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.types_scalar import (
    MARSHAL, CqlType, FLOAT, read_unsigned_vint, write_unsigned_vint)
from cqlreactor.core.types_values import OrderedMap, SortedSet

__all__ = ["ListType", "SetType", "MapType", "TupleType", "UserType", "VectorType",
           "CustomType"]

_INT = struct.Struct(">i")
_unpack_int = _INT.unpack_from
_pack_int = _INT.pack
_NULL = _pack_int(-1)


def _frozen_name(name, frozen):
    return "frozen<%s>" % name if frozen else name


def _frozen_cass(cass, frozen):
    return "%sFrozenType(%s)" % (MARSHAL, cass) if frozen else cass


def _write_cell(out, ctype, value):
    if value is None:
        out.append(_NULL)
    else:
        data = ctype._to_bytes(value)
        out.append(_pack_int(len(data)))
        out.append(data)


def _read_count(data, per_item):
    """The int32 element count at offset 0, bounded by what ``len(data)`` can hold."""
    size = len(data)
    if size < 4:
        raise ProtocolError("collection value too short (%d bytes)" % size)
    count = _unpack_int(data, 0)[0]
    if count < 0 or count * per_item > size - 4:
        raise ProtocolError("collection claims %d elements in %d bytes" % (count, size))
    return count


def _read_cells(data, pos, count, decoders):
    """Decode ``count`` cells from ``data[pos:]``; ``decoders`` is cycled. Returns (list, pos)."""
    size = len(data)
    out = []
    append = out.append
    ndec = len(decoders)
    for k in range(count):
        if pos + 4 > size:
            raise ProtocolError("truncated collection element")
        n = _unpack_int(data, pos)[0]
        pos += 4
        if n < 0:
            append(None)
            continue
        end = pos + n
        if end > size:
            raise ProtocolError("collection element of %d bytes overruns the value" % n)
        append(decoders[k % ndec](data[pos:end]))
        pos = end
    return out, pos


_BULK = {}


def _bulk_struct(elem, count, size):
    """A Struct unpacking ``<count><len><value>...`` of a whole list of ``elem`` when ``elem`` is
    a fixed-size struct scalar and ``size`` is exactly that of ``count`` non-null elements."""
    st = getattr(elem, "_struct", None)
    if st is None or count == 0 or size != 4 + count * (4 + st.size) or count > 4096:
        return None
    key = (st.format, count)
    bulk = _BULK.get(key)
    if bulk is None:
        if len(_BULK) > 256:
            _BULK.clear()
        fmt = st.format if isinstance(st.format, str) else st.format.decode("ascii")  # 3.6: bytes
        bulk = _BULK[key] = struct.Struct(">i" + ("i" + fmt.lstrip(">!")) * count)
    return bulk


def _all_lengths(cells, elem):
    size = elem._struct.size
    return all(n == size for n in cells[1::2])


class ListType(CqlType):
    """``list<T>``; values are Python lists."""

    __slots__ = ("name", "cass_name", "subtypes", "frozen", "_elem")
    type_code = 0x0020
    hashable = False

    def __init__(self, elem, frozen=False):
        self._elem = elem
        self.subtypes = (elem,)
        self.frozen = frozen
        self.name = _frozen_name("list<%s>" % elem.name, frozen)
        self.cass_name = _frozen_cass("%sListType(%s)" % (MARSHAL, elem.cass_name), frozen)

    def _to_bytes(self, value):
        if isinstance(value, (str, bytes, dict)):
            raise TypeError("%s needs a sequence, got %r" % (self.name, value))
        items = list(value)
        out = [_pack_int(len(items))]
        elem = self._elem
        for item in items:
            _write_cell(out, elem, item)
        return b"".join(out)

    def _from_bytes(self, data):
        if not data:
            return None
        count = _read_count(data, 4)
        bulk = _bulk_struct(self._elem, count, len(data))
        if bulk is not None:
            # every element non-null and of the type's size: one unpack for the whole value
            cells = bulk.unpack(data)
            if _all_lengths(cells, self._elem):
                values = list(cells[2::2])
                post = self._elem._post
                return values if post is None else [post(v) for v in values]
        items, pos = _read_cells(data, 4, count, (self._elem._from_bytes,))
        if pos != len(data):
            raise ProtocolError("%s value has %d trailing bytes" % (self.name, len(data) - pos))
        return items


class SetType(ListType):
    """``set<T>``; values are ``SortedSet`` (server order; equal to a ``set``)."""

    __slots__ = ()
    type_code = 0x0022

    def __init__(self, elem, frozen=False):
        ListType.__init__(self, elem, frozen)
        self.name = _frozen_name("set<%s>" % elem.name, frozen)
        self.cass_name = _frozen_cass("%sSetType(%s)" % (MARSHAL, elem.cass_name), frozen)

    def _from_bytes(self, data):
        items = ListType._from_bytes(self, data)
        return None if items is None else SortedSet(items)


class MapType(CqlType):
    """``map<K, V>``; values are dicts (wire order), ``OrderedMap`` if keys are unhashable."""

    __slots__ = ("name", "cass_name", "subtypes", "frozen", "_key", "_value")
    type_code = 0x0021
    hashable = False

    def __init__(self, key, value, frozen=False):
        self._key = key
        self._value = value
        self.subtypes = (key, value)
        self.frozen = frozen
        self.name = _frozen_name("map<%s, %s>" % (key.name, value.name), frozen)
        self.cass_name = _frozen_cass(
            "%sMapType(%s,%s)" % (MARSHAL, key.cass_name, value.cass_name), frozen)

    def _to_bytes(self, value):
        items = list(value.items())
        out = [_pack_int(len(items))]
        key_type, value_type = self._key, self._value
        for key, item in items:
            _write_cell(out, key_type, key)
            _write_cell(out, value_type, item)
        return b"".join(out)

    def _from_bytes(self, data):
        if not data:
            return None
        count = _read_count(data, 8)
        if self._key.hashable:
            # the common map, without the list of cells in between (same checks and errors)
            key_dec, value_dec = self._key._from_bytes, self._value._from_bytes
            size = len(data)
            pos = 4
            out = {}
            for _ in range(count):
                if pos + 4 > size:
                    raise ProtocolError("truncated collection element")
                n = _unpack_int(data, pos)[0]
                pos += 4
                if n < 0:
                    key = None
                else:
                    end = pos + n
                    if end > size:
                        raise ProtocolError("collection element of %d bytes overruns the value"
                                            % n)
                    key = key_dec(data[pos:end])
                    pos = end
                if pos + 4 > size:
                    raise ProtocolError("truncated collection element")
                n = _unpack_int(data, pos)[0]
                pos += 4
                if n < 0:
                    out[key] = None
                else:
                    end = pos + n
                    if end > size:
                        raise ProtocolError("collection element of %d bytes overruns the value"
                                            % n)
                    out[key] = value_dec(data[pos:end])
                    pos = end
            if pos != size:
                raise ProtocolError("%s value has %d trailing bytes" % (self.name, size - pos))
            return out
        cells, pos = _read_cells(data, 4, 2 * count,
                                 (self._key._from_bytes, self._value._from_bytes))
        if pos != len(data):
            raise ProtocolError("%s value has %d trailing bytes" % (self.name, len(data) - pos))
        return OrderedMap(zip(cells[0::2], cells[1::2]))


class TupleType(CqlType):
    """``tuple<A, B, ...>``; values are tuples. Fewer fields on the wire decode as None."""

    __slots__ = ("name", "cass_name", "subtypes", "frozen")
    type_code = 0x0031

    def __init__(self, subtypes, frozen=False):
        self.subtypes = tuple(subtypes)
        self.frozen = frozen
        self.name = _frozen_name("tuple<%s>" % ", ".join(t.name for t in self.subtypes), frozen)
        self.cass_name = _frozen_cass("%sTupleType(%s)" % (
            MARSHAL, ",".join(t.cass_name for t in self.subtypes)), frozen)

    @property
    def hashable(self):
        return all(t.hashable for t in self.subtypes)

    def _fields_to_bytes(self, values):
        if len(values) > len(self.subtypes):
            raise ValueError("%s takes %d fields, got %d" % (
                self.name, len(self.subtypes), len(values)))
        out = []
        for ctype, item in zip(self.subtypes, values):
            _write_cell(out, ctype, item)
        return b"".join(out)

    def _to_bytes(self, value):
        return self._fields_to_bytes(tuple(value))

    def _fields_from_bytes(self, data):
        size = len(data)
        out = []
        pos = 0
        for ctype in self.subtypes:
            if pos == size:
                out.append(None)
                continue
            if pos + 4 > size:
                raise ProtocolError("truncated %s field" % self.name)
            n = _unpack_int(data, pos)[0]
            pos += 4
            if n < 0:
                out.append(None)
                continue
            end = pos + n
            if end > size:
                raise ProtocolError("%s field of %d bytes overruns the value" % (self.name, n))
            out.append(ctype._from_bytes(data[pos:end]))
            pos = end
        return out

    def _from_bytes(self, data):
        if not data:
            return None
        return tuple(self._fields_from_bytes(data))


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_identifier(name):
    """A CQL identifier as CQL text: bare when lower-case, else double-quoted."""
    if re.match(r"^[a-z_][a-z0-9_]*$", name):
        return name
    return '"%s"' % name.replace('"', '""')


class UserType(TupleType):
    """A user-defined type: ``UserType(keyspace, name, fields)``, fields ``[(name, CqlType)]``.

    Values decode as instances of a namedtuple class (``.value_class``) with one attribute per
    field (names that are not identifiers get positional names, as namedtuple renames them).
    On write it accepts that class, any tuple (positional), a mapping or an object with the
    field names as attributes; missing fields are written as null.
    """

    __slots__ = ("keyspace", "udt_name", "field_names", "value_class")
    type_code = 0x0030

    def __init__(self, keyspace, name, fields, frozen=False):
        if hasattr(fields, "items"):
            fields = list(fields.items())
        fields = list(fields)
        TupleType.__init__(self, [t for _, t in fields], frozen)
        self.keyspace = keyspace
        self.udt_name = name
        self.field_names = tuple(f for f, _ in fields)
        self.name = _frozen_name(quote_identifier(name), frozen)
        self.cass_name = _frozen_cass("%sUserType(%s,%s%s)" % (
            MARSHAL, keyspace, name.encode("utf-8").hex(),
            "".join(",%s:%s" % (f.encode("utf-8").hex(), t.cass_name) for f, t in fields)),
            frozen)
        class_name = name if _IDENTIFIER.match(name) and not keyword.iskeyword(name) else "udt"
        self.value_class = namedtuple(class_name, self.field_names or ("_empty",), rename=True)

    def _to_bytes(self, value):
        if isinstance(value, tuple):
            return self._fields_to_bytes(value)
        if hasattr(value, "get") and hasattr(value, "items"):
            unknown = set(value) - set(self.field_names)
            if unknown:
                raise ValueError("%s has no fields %s" % (self.name, sorted(unknown)))
            return self._fields_to_bytes(tuple(value.get(f) for f in self.field_names))
        return self._fields_to_bytes(tuple(getattr(value, f, None) for f in self.field_names))

    def _from_bytes(self, data):
        if not data:
            return None
        if not self.field_names:
            return self.value_class(None)
        return self.value_class(*self._fields_from_bytes(data))


class VectorType(CqlType):
    """``vector<T, n>`` (Cassandra 5): a custom type on the wire; values are lists of n items.

    Fixed-size elements (float, int, bigint, double, boolean, uuid, timestamp …) are packed
    back to back; variable-size ones each carry an unsigned vint length. No nulls inside.
    """

    __slots__ = ("name", "cass_name", "subtypes", "dimension", "fixed_size", "_elem")
    type_code = 0x0000
    hashable = False

    def __init__(self, elem, dimension):
        if not isinstance(dimension, int) or dimension <= 0:
            raise ValueError("vector dimension must be a positive int, got %r" % (dimension,))
        self._elem = elem
        self.subtypes = (elem,)
        self.dimension = dimension
        self.fixed_size = elem.fixed_size * dimension if elem.fixed_size >= 0 else -1
        self.name = "vector<%s, %d>" % (elem.name, dimension)
        self.cass_name = "%sVectorType(%s,%d)" % (MARSHAL, elem.cass_name, dimension)

    def _to_bytes(self, value):
        items = list(value)
        if len(items) != self.dimension:
            raise ValueError("%s needs %d elements, got %d" % (
                self.name, self.dimension, len(items)))
        elem = self._elem
        if elem is FLOAT:
            return struct.pack(">%df" % self.dimension, *items)
        out = []
        for item in items:
            if item is None:
                raise ValueError("%s cannot hold null elements" % self.name)
            data = elem._to_bytes(item)
            if elem.fixed_size < 0:
                out.append(write_unsigned_vint(len(data)))
            out.append(data)
        return b"".join(out)

    def _from_bytes(self, data):
        size = len(data)
        if not size:
            return None
        elem = self._elem
        dim = self.dimension
        if self.fixed_size >= 0:
            if size != self.fixed_size:
                raise ProtocolError("%s value must be %d bytes, got %d" % (
                    self.name, self.fixed_size, size))
            if elem is FLOAT:
                return list(struct.unpack(">%df" % dim, data))
            step = elem.fixed_size
            dec = elem._from_bytes
            return [dec(data[i:i + step]) for i in range(0, size, step)]
        if dim > size:  # every element needs at least its one-byte length
            raise ProtocolError("%s claims %d elements in %d bytes" % (self.name, dim, size))
        out = []
        pos = 0
        dec = elem._from_bytes
        for _ in range(dim):
            n, pos = read_unsigned_vint(data, pos)
            end = pos + n
            if end > size:
                raise ProtocolError("%s element of %d bytes overruns the value" % (self.name, n))
            out.append(dec(data[pos:end]))
            pos = end
        if pos != size:
            raise ProtocolError("%s value has %d trailing bytes" % (self.name, size - pos))
        return out


class CustomType(CqlType):
    """A custom (unknown marshal class) type: values pass through as bytes."""

    __slots__ = ("name", "cass_name", "class_name")
    type_code = 0x0000

    def __init__(self, class_name):
        self.class_name = class_name
        self.cass_name = class_name
        self.name = "'%s'" % class_name.replace("'", "''")

    def _to_bytes(self, value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError("custom type %s needs bytes, got %r" % (self.class_name, value))

    def _from_bytes(self, data):
        return data
