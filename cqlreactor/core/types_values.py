"""Python value classes for CQL values that the standard library cannot hold exactly.

``Date`` (CQL ``date``: days around the epoch, wider than ``datetime.date``), ``Time`` (CQL
``time``: nanoseconds since midnight), ``Duration`` (months, days, nanoseconds), ``SortedSet``
(CQL ``set``; keeps the server's order and accepts unhashable elements such as lists) and
``OrderedMap`` (CQL ``map`` whose keys are unhashable, e.g. ``map<frozen<list<int>>, int>``).
Their attribute names follow cassandra-driver's so code written for it keeps working.
"""

import collections.abc
import datetime

__all__ = ["Date", "Time", "Duration", "SortedSet", "sortedset", "OrderedMap",
           "OrderedMapSerializedKey"]

_EPOCH_DATE = datetime.date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH_DATE.toordinal()
_NANOS_PER_DAY = 86400 * 10 ** 9


class Date(object):
    """A CQL ``date``: a signed number of days from 1970-01-01.

    CQL dates reach far beyond ``datetime.date`` (years 1..9999), so the day count is the value;
    ``date()`` converts when the day is in range.
    """

    __slots__ = ("days_from_epoch",)

    # seconds, and the text format, as cassandra-driver's Date has them
    MINUTE = 60
    HOUR = 60 * MINUTE
    DAY = 24 * HOUR
    date_format = "%Y-%m-%d"

    def __init__(self, value):
        if isinstance(value, Date):
            days = value.days_from_epoch
        elif isinstance(value, datetime.datetime):
            days = value.date().toordinal() - _EPOCH_ORDINAL
        elif isinstance(value, datetime.date):
            days = value.toordinal() - _EPOCH_ORDINAL
        elif isinstance(value, int) and not isinstance(value, bool):
            days = value
        elif isinstance(value, str):
            days = datetime.datetime.strptime(value, "%Y-%m-%d").date().toordinal() - _EPOCH_ORDINAL
        else:
            raise TypeError("cannot make a Date from %r" % (value,))
        self.days_from_epoch = days

    @property
    def seconds(self):
        """Seconds from the epoch to the start of the day (cassandra-driver's ``seconds``)."""
        return self.days_from_epoch * 86400

    def date(self):
        """The ``datetime.date``; raises ValueError outside years 1..9999."""
        ordinal = self.days_from_epoch + _EPOCH_ORDINAL
        if not 1 <= ordinal <= 3652059:
            raise ValueError("%d days from the epoch is outside datetime.date's range"
                             % self.days_from_epoch)
        return datetime.date.fromordinal(ordinal)

    def __eq__(self, other):
        if isinstance(other, Date):
            return self.days_from_epoch == other.days_from_epoch
        if isinstance(other, datetime.date) and not isinstance(other, datetime.datetime):
            return self.days_from_epoch == other.toordinal() - _EPOCH_ORDINAL
        if isinstance(other, int) and not isinstance(other, bool):
            return self.days_from_epoch == other
        return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __lt__(self, other):
        return self.days_from_epoch < Date(other).days_from_epoch

    def __hash__(self):
        return hash(self.days_from_epoch)

    def __repr__(self):
        return "Date(%d)" % self.days_from_epoch

    def __str__(self):
        try:
            return str(self.date())
        except ValueError:
            return str(self.days_from_epoch)


class Time(object):
    """A CQL ``time``: nanoseconds since midnight (0 .. 86399999999999)."""

    __slots__ = ("nanosecond_time",)

    # units in nanoseconds, as cassandra-driver's Time has them
    MICRO = 1000
    MILLI = 1000 * MICRO
    SECOND = 1000 * MILLI
    MINUTE = 60 * SECOND
    HOUR = 60 * MINUTE
    DAY = 24 * HOUR

    def __init__(self, value):
        if isinstance(value, Time):
            nanos = value.nanosecond_time
        elif isinstance(value, datetime.time):
            nanos = (((value.hour * 60 + value.minute) * 60 + value.second) * 10 ** 9
                     + value.microsecond * 1000)
        elif isinstance(value, int) and not isinstance(value, bool):
            nanos = value
        elif isinstance(value, str):
            nanos = _parse_time_text(value)
        else:
            raise TypeError("cannot make a Time from %r" % (value,))
        if not 0 <= nanos < _NANOS_PER_DAY:
            raise ValueError("time out of range (nanoseconds since midnight): %r" % (nanos,))
        self.nanosecond_time = nanos

    @property
    def hour(self):
        return self.nanosecond_time // (3600 * 10 ** 9)

    @property
    def minute(self):
        return self.nanosecond_time // (60 * 10 ** 9) % 60

    @property
    def second(self):
        return self.nanosecond_time // 10 ** 9 % 60

    @property
    def nanosecond(self):
        return self.nanosecond_time % 10 ** 9

    def time(self):
        """The ``datetime.time`` (nanoseconds truncated to microseconds)."""
        return datetime.time(self.hour, self.minute, self.second, self.nanosecond // 1000)

    def __eq__(self, other):
        if isinstance(other, Time):
            return self.nanosecond_time == other.nanosecond_time
        if isinstance(other, datetime.time):
            return self.nanosecond_time == Time(other).nanosecond_time
        if isinstance(other, int) and not isinstance(other, bool):
            return self.nanosecond_time == other
        return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __lt__(self, other):
        return self.nanosecond_time < Time(other).nanosecond_time

    def __hash__(self):
        return hash(self.nanosecond_time)

    def __repr__(self):
        return "Time(%d)" % self.nanosecond_time

    def __str__(self):
        return "%02d:%02d:%02d.%09d" % (self.hour, self.minute, self.second, self.nanosecond)


def _parse_time_text(text):
    head, _, frac = text.strip().partition(".")
    parts = head.split(":")
    if len(parts) != 3 or len(frac) > 9 or (frac and not frac.isdigit()):
        raise ValueError("time text must be HH:MM:SS[.fffffffff], got %r" % (text,))
    hours, minutes, seconds = (int(p) for p in parts)
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 60):
        raise ValueError("time text out of range: %r" % (text,))
    return ((hours * 60 + minutes) * 60 + seconds) * 10 ** 9 + int((frac or "0").ljust(9, "0"))


class Duration(object):
    """A CQL ``duration``: months, days and nanoseconds, each signed (all of one sign)."""

    __slots__ = ("months", "days", "nanoseconds")

    def __init__(self, months=0, days=0, nanoseconds=0):
        self.months = months
        self.days = days
        self.nanoseconds = nanoseconds

    def __eq__(self, other):
        if not hasattr(other, "months") or not hasattr(other, "nanoseconds"):
            return NotImplemented
        return (self.months, self.days, self.nanoseconds) == (
            other.months, other.days, other.nanoseconds)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash((self.months, self.days, self.nanoseconds))

    def __repr__(self):
        return "Duration(months=%d, days=%d, nanoseconds=%d)" % (
            self.months, self.days, self.nanoseconds)

    def __str__(self):
        """The CQL literal (``1mo2d3ns``, ``-1mo2d3ns``), as cassandra-driver prints it."""
        negative = self.months < 0 or self.days < 0 or self.nanoseconds < 0
        return "%s%dmo%dd%dns" % ("-" if negative else "", abs(self.months), abs(self.days),
                                  abs(self.nanoseconds))


class SortedSet(collections.abc.MutableSet):
    """A CQL ``set`` value: elements in the order the server sent them (its sort order).

    Unlike ``set`` it holds unhashable elements (``set<frozen<list<int>>>``). It compares equal
    to a ``set``/``frozenset``/``SortedSet`` with the same elements, in any order, and has the
    ``set`` API (``|``, ``&``, ``-``, ``^``, ``union()``, ``issubset()`` ...), as
    cassandra-driver's ``sortedset``.
    """

    __slots__ = ("_items",)

    def __init__(self, iterable=()):
        self._items = []
        for item in iterable:
            self.add(item)

    def add(self, item):
        if item not in self._items:
            self._items.append(item)

    def discard(self, item):
        try:
            self._items.remove(item)
        except ValueError:
            pass

    def remove(self, item):
        try:
            self._items.remove(item)
        except ValueError:
            raise KeyError(item)

    def __iter__(self):
        return iter(self._items)

    def __reversed__(self):
        return reversed(self._items)

    def __len__(self):
        return len(self._items)

    def __contains__(self, item):
        return item in self._items

    def __getitem__(self, index):
        return self._items[index]

    def __eq__(self, other):
        if isinstance(other, (SortedSet, set, frozenset)):
            return len(self) == len(other) and all(item in other for item in self._items)
        return NotImplemented

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def copy(self):
        return SortedSet(self._items)

    def update(self, *iterables):
        for iterable in iterables:
            for item in iterable:
                self.add(item)

    def union(self, *others):
        result = self.copy()
        result.update(*others)
        return result

    def intersection(self, *others):
        others = [SortedSet(o) for o in others]
        return SortedSet(i for i in self._items if all(i in o for o in others))

    def difference(self, *others):
        others = [SortedSet(o) for o in others]
        return SortedSet(i for i in self._items if not any(i in o for o in others))

    def symmetric_difference(self, other):
        other = SortedSet(other)
        return SortedSet([i for i in self._items if i not in other]
                         + [i for i in other if i not in self])

    def issubset(self, other):
        other = SortedSet(other)
        return all(i in other for i in self._items)

    def issuperset(self, other):
        return all(i in self for i in other)

    def __repr__(self):
        return "SortedSet(%r)" % (self._items,)


#: cassandra-driver's other name for the class
sortedset = SortedSet


class OrderedMap(collections.abc.Mapping):
    """A CQL ``map`` value whose keys are unhashable (lists, sets, maps); keeps wire order.

    Built as ``dict`` is (``OrderedMap([(k, v), ...])``, ``OrderedMap(mapping)``, keywords).
    Lookups compare keys with ``==`` (linear; such maps are small in practice). Maps with
    hashable keys are returned as plain ``dict`` instead.
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, *args, **kwargs):
        if len(args) > 1:
            raise TypeError("OrderedMap expected at most 1 positional argument, got %d"
                            % len(args))
        self._keys = []
        self._values = []
        items = args[0] if args else ()
        if hasattr(items, "items"):
            items = items.items()
        for key, value in items:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def _index(self, key):
        for i, k in enumerate(self._keys):
            if k == key:
                return i
        return -1

    def __setitem__(self, key, value):
        i = self._index(key)
        if i < 0:
            self._keys.append(key)
            self._values.append(value)
        else:
            self._values[i] = value

    def __getitem__(self, key):
        i = self._index(key)
        if i < 0:
            raise KeyError(key)
        return self._values[i]

    def __delitem__(self, key):
        i = self._index(key)
        if i < 0:
            raise KeyError(key)
        del self._keys[i]
        del self._values[i]

    def popitem(self):
        """Remove and return the last ``(key, value)``."""
        if not self._keys:
            raise KeyError("popitem(): OrderedMap is empty")
        return self._keys.pop(), self._values.pop()

    def get(self, key, default=None):
        i = self._index(key)
        return default if i < 0 else self._values[i]

    def __contains__(self, key):
        return self._index(key) >= 0

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def keys(self):
        return list(self._keys)

    def values(self):
        return list(self._values)

    def items(self):
        return list(zip(self._keys, self._values))

    def __eq__(self, other):
        if not hasattr(other, "items"):
            return NotImplemented
        other_items = list(other.items())
        if len(other_items) != len(self._keys):
            return False
        for key, value in other_items:
            i = self._index(key)
            if i < 0 or self._values[i] != value:
                return False
        return True

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return "OrderedMap(%r)" % (self.items(),)

    def __str__(self):
        return "{%s}" % ", ".join("%r: %r" % item for item in self.items())


class OrderedMapSerializedKey(OrderedMap):
    """An OrderedMap that knows its key type, as cassandra-driver's map values are:
    ``OrderedMapSerializedKey(cass_type, protocol_version)``.  Keys compare by value, as in
    every OrderedMap, so their serialized form is not needed to look them up."""

    __slots__ = ("cass_key_type", "protocol_version")

    def __init__(self, cass_type, protocol_version):
        OrderedMap.__init__(self)
        self.cass_key_type = cass_type
        self.protocol_version = protocol_version
