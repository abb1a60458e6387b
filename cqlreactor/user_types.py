"""Classes the user registered for user-defined types (``Cluster.register_user_type``).

A registered class is what rows give for that UDT (``klass(**fields)``, nested in collections,
tuples and other UDTs too) and what statements accept for it: prepared statements bind it by
its attributes (core ``UserType`` does that for any object), simple statements render it as a
``{field: value, ...}`` literal, which needs the type's field names: the cluster reads them
from ``system_schema.types`` when the class is registered (or at connect, for a class
registered before).

Rows are converted after decoding, and only for column layouts holding a registered type:
results without one cost one dict lookup more.
"""

import threading

from cqlreactor.core.errors import DriverException
from cqlreactor.core.types import ListType, MapType, SetType, TupleType, UserType

__all__ = ["UserTypeDoesNotExist", "UserTypeMap"]

_CONVERTERS_MAX = 512


class UserTypeDoesNotExist(DriverException):
    """register_user_type named a keyspace or a type the cluster does not have."""


class UserTypeMap(object):
    """The registry of one Cluster: (keyspace, type name) -> class, class -> field names."""

    def __init__(self):
        self._classes = {}          # (keyspace, udt name) -> class
        self.fields_by_class = {}   # class -> field names, once known (simple statements)
        self._converters = {}       # column types tuple -> row converter or None
        self._lock = threading.Lock()
        #: True once a class is registered (a plain attribute: read for every page of rows)
        self.active = False

    def register(self, keyspace, name, klass, field_names):
        with self._lock:
            self._classes[(keyspace, name)] = klass
            self.active = True
            if field_names is not None:
                self.fields_by_class[klass] = tuple(field_names)
            self._converters = {}

    def registered(self):
        """[(keyspace, name, class)] in registration order."""
        return [(ks, name, klass) for (ks, name), klass in self._classes.items()]

    def convert_rows(self, column_types, rows):
        """Rows with every value of a registered UDT (at any depth) made an instance of its
        class; the same list when no column holds one."""
        key = tuple(column_types)
        converters = self._converters
        convert = converters.get(key, False)
        if convert is False:
            convert = self._row_converter(key)
            if len(converters) >= _CONVERTERS_MAX:
                converters.clear()
            converters[key] = convert
        if convert is None:
            return rows
        return [convert(row) for row in rows]

    def _row_converter(self, column_types):
        cells = [self._value_converter(t) for t in column_types]
        if not any(cells):
            return None
        cells = [(i, c) for i, c in enumerate(cells) if c is not None]

        def convert(row):
            out = list(row)
            for i, cell in cells:
                value = out[i]
                if value is not None:
                    out[i] = cell(value)
            return tuple(out)       # decoded rows are plain tuples (row factories come after)
        return convert

    def _value_converter(self, ctype):
        """A function converting one decoded value of ``ctype``, or None when nothing in it
        is registered."""
        subs = [self._value_converter(t) for t in getattr(ctype, "subtypes", ())]
        if isinstance(ctype, UserType):
            klass = self._classes.get((ctype.keyspace, ctype.udt_name))
            if klass is None and not any(subs):
                return None
            names = ctype.field_names
            fields = _each(subs)

            if klass is None:
                return lambda value: value.__class__(*fields(value))

            def to_class(value):
                return klass(**dict(zip(names, fields(value))))
            return to_class
        if not any(subs):
            return None
        if isinstance(ctype, MapType):
            key, val = (s or _same for s in subs)

            def to_map(value):
                pairs = [(key(k) if k is not None else k, val(v) if v is not None else v)
                         for k, v in value.items()]
                return _rebuilt(value, pairs)
            return to_map
        if isinstance(ctype, (ListType, SetType)):
            elem = subs[0]

            def to_items(value):
                return _rebuilt(value, [elem(v) if v is not None else v for v in value])
            return to_items
        if isinstance(ctype, TupleType):
            fields = _each(subs)
            return lambda value: tuple(fields(value))
        return None


def _same(value):
    return value


def _each(subs):
    subs = [s or _same for s in subs]

    def fields(value):
        return [s(v) if v is not None else v for s, v in zip(subs, value)]
    return fields


def _rebuilt(original, items):
    # the collection's own type when it can hold the converted items (a set of unhashable
    # instances cannot: a list then)
    if isinstance(original, list):
        return items
    try:
        return original.__class__(items)
    except TypeError:
        return items
