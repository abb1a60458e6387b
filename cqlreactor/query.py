"""Results: row factories and ResultSet (automatic paging), as in cassandra-driver; and, as
``cassandra.query`` has them, the statement classes (defined in cqlreactor.statements) and
``ValueSequence``."""

import collections
import itertools
import keyword
import os
import re
from typing import Any

from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.encoder import ValueSequence
from cqlreactor.statements import (FETCH_SIZE_UNSET, UNSET_VALUE, BatchStatement, BatchType,
                                   BoundStatement, PreparedStatement, SimpleStatement,
                                   Statement)
from cqlreactor.tracing import QueryTrace, TraceEvent, TraceUnavailable

__all__ = ["tuple_factory", "named_tuple_factory", "dict_factory", "ordered_dict_factory",
           "ResultSet", "Statement", "SimpleStatement", "PreparedStatement", "BoundStatement",
           "BatchStatement", "BatchType", "ValueSequence", "UNSET_VALUE", "FETCH_SIZE_UNSET",
           "ConsistencyLevel", "QueryTrace", "TraceEvent", "TraceUnavailable"]


def tuple_factory(colnames, rows):
    """Rows as plain tuples (the cheapest)."""
    return rows


_NAMEDTUPLE_CACHE = {}  # type: dict
# cassandra-driver's cleaning of column names into field names (so ``[applied]`` is
# ``row.applied``): drop what is neither a letter, a digit nor "_" at the end, then anything but
# letters and digits at the start, then turn every other such character into "_"
_BAD_END = re.compile(r"[^a-zA-Z0-9_]*$")
_BAD_START = re.compile(r"^[^a-zA-Z0-9]*")
_NOT_ALNUM = re.compile(r"[^a-zA-Z0-9]")


def clean_column_name(name):
    """The field name of column ``name`` in named-tuple rows (cassandra-driver's cleaning)."""
    return _NOT_ALNUM.sub("_", _BAD_START.sub("", _BAD_END.sub("", name)))


def _valid_field(name):
    return bool(name) and name.isidentifier() and not keyword.iskeyword(name) \
        and not name.startswith("_")


def row_field_names(colnames):
    """The named-tuple field names of a row with ``colnames``, as cassandra-driver's
    named_tuple_factory: the cleaned names; when those cannot all be fields, each invalid one
    becomes ``field_<index>_`` and a repeated one gets "_" appended until it is unique."""
    names = [clean_column_name(n) for n in colnames]
    if all(_valid_field(n) for n in names) and len(set(names)) == len(names):
        return names
    names = [n if _valid_field(n) else "field_%d_" % i for i, n in enumerate(names)]
    seen = set()
    for i, name in enumerate(names):
        while name in seen:
            name += "_"
        names[i] = name
        seen.add(name)
    return names


_ROW_CLASS_BY_ID = {}  # type: dict  # id(colnames list) -> (that list, class): the session shares the lists


def _row_class(colnames):
    entry = _ROW_CLASS_BY_ID.get(id(colnames))
    if entry is not None and entry[0] is colnames:
        return entry[1]
    cls = _row_class_by_names(colnames)
    if len(_ROW_CLASS_BY_ID) > 1024:
        _ROW_CLASS_BY_ID.clear()
    _ROW_CLASS_BY_ID[id(colnames)] = (colnames, cls)    # keeps the list alive: its id stays
    return cls


def _row_class_by_names(colnames):
    key = tuple(colnames)
    cls = _NAMEDTUPLE_CACHE.get(key)
    if cls is None:
        cls = collections.namedtuple("Row", row_field_names(colnames))
        if len(_NAMEDTUPLE_CACHE) > 1024:
            _NAMEDTUPLE_CACHE.clear()
        _NAMEDTUPLE_CACHE[key] = cls
    return cls


_repeat = itertools.repeat
_tuple_new = tuple.__new__
#: rows_as_dicts of the compiled row decoder while it is enabled (cqlreactor.compiled_rows)
_compiled_dicts = None


def named_tuple_factory(colnames, rows):
    """Rows as named tuples (the default): ``row.name`` and ``row[0]`` both work."""
    # what the class's _make does (each row has one value per field), without its Python frame
    return list(map(_tuple_new, _repeat(_row_class(colnames)), rows))


def dict_factory(colnames, rows):
    if _compiled_dicts is not None:
        return _compiled_dicts(colnames, rows)
    return list(map(dict, map(zip, _repeat(colnames), rows)))



def ordered_dict_factory(colnames, rows):
    return [collections.OrderedDict(zip(colnames, r)) for r in rows]


class ResultSet(object):
    """The rows of one response; iterating it fetches further pages lazily (blocking with the
    reactor's wait primitive, so a green thread yields instead of blocking its OS thread)."""

    def __init__(self, response_future, initial_rows):
        self.response_future = response_future
        self.column_names = response_future.column_names
        self.column_types = response_future.column_types
        self._current_rows = initial_rows
        self._page_iter = None
        self._list_mode = False

    @property
    def current_rows(self) -> list:
        return self._current_rows or []

    @property
    def has_more_pages(self) -> bool:
        return self.response_future.has_more_pages

    @property
    def paging_state(self):
        return self.response_future.paging_state

    def get_query_trace(self, max_wait_sec=None):
        """The last page's QueryTrace (see ResponseFuture.get_query_trace)."""
        return self.response_future.get_query_trace(max_wait_sec)

    def get_all_query_traces(self, max_wait_sec_per=None):
        """Every traced page's QueryTrace (see ResponseFuture.get_all_query_traces)."""
        return self.response_future.get_all_query_traces(max_wait_sec_per)

    def fetch_next_page(self) -> None:
        """Block until the next page arrives and make it current."""
        if self.response_future.has_more_pages:
            self.response_future.start_fetching_next_page()
            result = self.response_future.result()
            self._current_rows = result._current_rows
        else:
            self._current_rows = []

    async def fetch_next_page_async(self):
        """Awaitable :meth:`fetch_next_page` (README "asyncio")."""
        if self.response_future.has_more_pages:
            self.response_future.start_fetching_next_page()
            result = await self.response_future
            self._current_rows = result._current_rows
        else:
            self._current_rows = []

    def __aiter__(self):
        """``async for row in result``: every page's rows, the next page awaited."""
        from cqlreactor.aio import iterate_rows
        return iterate_rows(self)

    def __iter__(self):
        if self._list_mode:
            return iter(self._current_rows)
        return self._iter_pages()

    def _iter_pages(self):
        # A fresh generator per iteration: list() calls iter() and then len(), and len()
        # fetches every page into _current_rows, which this loop then reads whole.
        while True:
            for row in self._current_rows or ():
                yield row
            if self._list_mode or not self.response_future.has_more_pages:
                return
            self.fetch_next_page()

    def __next__(self):
        """The next row, fetching pages as needed (the ResultSet as its own iterator)."""
        if self._page_iter is None:
            self._page_iter = iter(self)
        return next(self._page_iter)

    next = __next__

    def _fetch_all(self):
        # Page by page, not list(self): list() asks len() first, which would come back here.
        if self._list_mode:
            return
        rows = list(self._current_rows or ())
        while self.response_future.has_more_pages:
            self.fetch_next_page()
            rows.extend(self._current_rows)
        self._current_rows = rows
        self._list_mode = True

    def all(self) -> list:
        """Every row of every page, as a list."""
        return list(self)

    def one(self) -> Any:
        """The first row, or None."""
        rows = self.current_rows
        return rows[0] if rows else None

    def __getitem__(self, i):
        self._fetch_all()
        return self._current_rows[i]

    def __len__(self):
        self._fetch_all()
        return len(self._current_rows)

    def __bool__(self):
        return bool(self._current_rows) or self.response_future.has_more_pages

    __nonzero__ = __bool__

    @property
    def was_applied(self):
        """For conditional (LWT) statements: whether the condition held."""
        rows = self.current_rows
        if not rows:
            raise RuntimeError("was_applied needs a result of a conditional statement")
        row = rows[0]
        if isinstance(row, dict):
            return row.get("[applied]", True)
        if hasattr(row, "_fields") and row._fields and "applied" in row._fields[0]:
            return row[0]
        if isinstance(row, tuple) and self.column_names and self.column_names[0] == "[applied]":
            return row[0]
        raise RuntimeError("was_applied needs a result of a conditional statement")

    def __repr__(self):
        return "<ResultSet rows=%d more_pages=%s>" % (len(self.current_rows),
                                                      self.response_future.has_more_pages)


if os.environ.get("CQLREACTOR_COMPILED_ROWS", "") not in ("", "0"):
    # opt-in (see cqlreactor.compiled_rows); a failed build is logged, and rows stay pure
    from cqlreactor import compiled_rows as _compiled_rows
    _compiled_rows.enable()
