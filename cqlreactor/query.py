"""Results: row factories and ResultSet (automatic paging), as in cassandra-driver."""

import collections
import keyword
import re

__all__ = ["tuple_factory", "named_tuple_factory", "dict_factory", "ordered_dict_factory",
           "ResultSet"]


def tuple_factory(colnames, rows):
    """Rows as plain tuples (the cheapest)."""
    return rows


_NAMEDTUPLE_CACHE = {}
_BAD_CHARS = re.compile(r"\W")


def _clean_name(name, index):
    cleaned = _BAD_CHARS.sub("_", name)
    if not cleaned or cleaned[0].isdigit() or cleaned[0] == "_" or keyword.iskeyword(cleaned):
        cleaned = "field_%d_%s" % (index, cleaned.strip("_")) if cleaned.strip("_") \
            else "field_%d" % index
    return cleaned


_ROW_CLASS_BY_ID = {}   # id(colnames list) -> (that list, class): the session shares the lists


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
        names = [_clean_name(n, i) for i, n in enumerate(colnames)]
        seen = set()
        for i, n in enumerate(names):   # duplicate column names (SELECT a, a) stay addressable
            if n in seen:
                names[i] = "%s_%d" % (n, i)
            seen.add(names[i])
        cls = collections.namedtuple("Row", names)
        if len(_NAMEDTUPLE_CACHE) > 1024:
            _NAMEDTUPLE_CACHE.clear()
        _NAMEDTUPLE_CACHE[key] = cls
    return cls


def named_tuple_factory(colnames, rows):
    """Rows as named tuples (the default): ``row.name`` and ``row[0]`` both work."""
    make = _row_class(colnames)._make
    return [make(r) for r in rows]


def dict_factory(colnames, rows):
    return [dict(zip(colnames, r)) for r in rows]


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
    def current_rows(self):
        return self._current_rows or []

    @property
    def has_more_pages(self):
        return self.response_future.has_more_pages

    @property
    def paging_state(self):
        return self.response_future.paging_state

    def fetch_next_page(self):
        """Block until the next page arrives and make it current."""
        if self.response_future.has_more_pages:
            self.response_future.start_fetching_next_page()
            result = self.response_future.result()
            self._current_rows = result._current_rows
        else:
            self._current_rows = []

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

    def all(self):
        """Every row of every page, as a list."""
        return list(self)

    def one(self):
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
