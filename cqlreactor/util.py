"""Value classes and time/UUID helpers, where cassandra-driver users import them
(``cassandra.util``).

The value classes are the ones the decoders hand out (``cqlreactor.core.types_values``):
``date`` columns decode to :class:`Date`, ``time`` to :class:`Time`, ``duration`` to
:class:`Duration`, ``set`` to :class:`SortedSet`.  A ``map`` decodes to a ``dict`` in wire
order, and to an :class:`OrderedMap` only when its keys cannot be dict keys (lists, sets,
maps); cassandra-driver hands out ``OrderedMapSerializedKey`` for every map (docs/migrating.md).

The helpers below are written for this module and keep cassandra-driver's arguments and results
(naive UTC datetimes, seconds or milliseconds as named).
"""

import calendar
import datetime
import random
import uuid

from cqlreactor.core.types_values import (Date, Duration, OrderedMap, OrderedMapSerializedKey,
                                          SortedSet, Time, sortedset)

__all__ = ["Date", "Time", "Duration", "SortedSet", "sortedset", "OrderedMap",
           "OrderedMapSerializedKey", "DATETIME_EPOC", "UTC_DATETIME_EPOC",
           "datetime_from_timestamp", "utc_datetime_from_ms_timestamp",
           "ms_timestamp_from_datetime", "unix_time_from_uuid1", "datetime_from_uuid1",
           "uuid_from_time", "min_uuid_from_time", "max_uuid_from_time", "LOWEST_TIME_UUID",
           "HIGHEST_TIME_UUID"]

#: 1970-01-01 00:00 as a naive datetime (the spelling is cassandra-driver's)
DATETIME_EPOC = datetime.datetime(1970, 1, 1)
#: the same instant, read as UTC (naive, as cassandra-driver's)
UTC_DATETIME_EPOC = datetime.datetime(1970, 1, 1)

# 100-nanosecond intervals from the UUID epoch (1582-10-15) to the Unix epoch
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def datetime_from_timestamp(timestamp):
    """The naive datetime ``timestamp`` seconds after the epoch (negative and far values too,
    where ``datetime.utcfromtimestamp`` fails on some platforms)."""
    return DATETIME_EPOC + datetime.timedelta(seconds=timestamp)


def utc_datetime_from_ms_timestamp(timestamp):
    """The naive UTC datetime ``timestamp`` milliseconds after the epoch (what ``timestamp``
    columns decode to).  Raises OverflowError outside datetime's range."""
    return UTC_DATETIME_EPOC + datetime.timedelta(milliseconds=timestamp)


def ms_timestamp_from_datetime(dt):
    """Milliseconds from the epoch to the naive (UTC) datetime ``dt``, rounded."""
    return int(round((dt - UTC_DATETIME_EPOC).total_seconds() * 1000))


def unix_time_from_uuid1(uuid_arg):
    """The seconds since the epoch (a float, as ``time.time()``) in a version 1 UUID."""
    return (uuid_arg.time - _UUID_EPOCH_OFFSET) / 1e7


def datetime_from_uuid1(uuid_arg):
    """The naive UTC datetime in a version 1 UUID."""
    return datetime_from_timestamp(unix_time_from_uuid1(uuid_arg))


def uuid_from_time(time_arg, node=None, clock_seq=None):
    """A version 1 UUID for ``time_arg`` (a datetime, read as UTC when naive, or seconds since
    the epoch); ``node`` (48 bits) and ``clock_seq`` (14 bits) are random when not given."""
    if hasattr(time_arg, "utctimetuple"):
        micros = (calendar.timegm(time_arg.utctimetuple()) * 10 ** 6
                  + time_arg.time().microsecond)
    else:
        micros = int(time_arg * 1e6)
    intervals = int(micros * 10) + _UUID_EPOCH_OFFSET
    if clock_seq is None:
        clock_seq = random.getrandbits(14)
    elif not 0 <= clock_seq <= 0x3FFF:
        raise ValueError("clock_seq is out of range (need a 14-bit value), got %r"
                         % (clock_seq,))
    if node is None:
        node = random.getrandbits(48)
    return uuid.UUID(fields=(intervals & 0xFFFFFFFF, (intervals >> 32) & 0xFFFF,
                             (intervals >> 48) & 0x0FFF, 0x80 | ((clock_seq >> 8) & 0x3F),
                             clock_seq & 0xFF, node), version=1)


def min_uuid_from_time(timestamp):
    """The smallest timeuuid of ``timestamp`` as Cassandra orders them (its clock and node
    bytes compare signed, so each is 0x80)."""
    return uuid_from_time(timestamp, 0x808080808080, 0x80)


def max_uuid_from_time(timestamp):
    """The largest timeuuid of ``timestamp`` as Cassandra orders them (bytes of 0x7f)."""
    return uuid_from_time(timestamp, 0x7F7F7F7F7F7F, 0x3F7F)


#: the smallest timeuuid Cassandra can sort
LOWEST_TIME_UUID = uuid.UUID("00000000-0000-1000-8080-808080808080")
#: the largest timeuuid Cassandra can sort
HIGHEST_TIME_UUID = uuid.UUID("ffffffff-ffff-1fff-bf7f-7f7f7f7f7f7f")
