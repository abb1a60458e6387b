# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The optional compiled row decoder (see cqlreactor/compiled_rows.py, which builds it).

Each column is described by a spec tuple ``(kind, py_decoder, sub_specs...)`` made by
``compiled_rows.spec_for``; kinds this module decodes natively are the scalar types and the
collections of them; everything else calls ``py_decoder`` (the type's own pure-Python
``_from_bytes``) on the cell's bytes, so the values are those of the pure path.  Any irregular
cell (a fixed-size value of another length, a truncated collection, bad UTF-8...) raises inside;
``RowDecoder`` then runs the pure-Python decoder on the whole body, which raises (or returns)
exactly what the pure path does.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.datetime cimport import_datetime, datetime_new

import_datetime()
_object_new = object.__new__
_object_setattr = object.__setattr__

# kinds (compiled_rows.py uses the same numbers)
DEF K_GENERIC = 0
DEF K_INT = 1
DEF K_BIGINT = 2
DEF K_DOUBLE = 3
DEF K_FLOAT = 4
DEF K_TEXT = 5
DEF K_ASCII = 6
DEF K_BLOB = 7
DEF K_BOOLEAN = 8
DEF K_UUID = 9
DEF K_TIMESTAMP = 10
DEF K_LIST = 11
DEF K_SET = 12
DEF K_MAP = 13
DEF K_DECIMAL = 14


class _Irregular(Exception):
    pass


cdef inline uint32_t _be32(const unsigned char *p) nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint64_t _be64(const unsigned char *p) nogil:
    return ((<uint64_t>_be32(p)) << 32) | _be32(p + 4)


cdef object _timestamp(int64_t ms, object fallback):
    """The naive UTC datetime ``epoch + ms`` milliseconds, as types_scalar._ts_from_ms; years
    outside 1..9999 go to ``fallback`` (which hands back the raw milliseconds)."""
    cdef int64_t days = ms // 86400000       # C division (cdivision): made a floor below
    cdef int64_t rem = ms - days * 86400000
    if rem < 0:
        days -= 1
        rem += 86400000
    cdef int64_t z, era, doe, yoe, doy, mp, d, m, y
    if days < -719162 or days > 2932896:     # 0001-01-01 .. 9999-12-31
        return fallback(ms)
    # days since 1970-01-01 -> civil date (the proleptic Gregorian calendar)
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return datetime_new(<int>y, <int>m, <int>d, <int>(rem // 3600000), <int>(rem // 60000 % 60),
                        <int>(rem // 1000 % 60), <int>(rem % 1000 * 1000), None)


cdef class _Spec:
    cdef int kind
    cdef object py
    cdef object post      # timestamp: its fallback; uuid: the class; set: SortedSet
    cdef object post2     # uuid: the is_safe value (None: no such attribute)
    cdef _Spec a
    cdef _Spec b

    def __init__(self, kind, py, post, a, b, post2=None):
        self.kind = kind
        self.py = py
        self.post = post
        self.a = a
        self.b = b
        self.post2 = post2


cdef object _decode(_Spec spec, const unsigned char *p, Py_ssize_t n):
    """One non-null cell of ``n`` bytes at ``p``."""
    cdef int kind = spec.kind
    cdef uint64_t u64
    cdef uint32_t u32
    cdef double d
    cdef float f
    cdef int32_t count, i, m
    cdef Py_ssize_t pos
    cdef list items
    cdef dict mapping
    cdef object key
    if kind == K_INT:
        if n != 4:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        return PyLong_FromLong(<int32_t>_be32(p))
    if kind == K_BIGINT:
        if n != 8:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        return PyLong_FromLongLong(<int64_t>_be64(p))
    if kind == K_TEXT:
        return PyUnicode_DecodeUTF8(<const char *>p, n, NULL)
    if kind == K_BLOB:
        return PyBytes_FromStringAndSize(<const char *>p, n)
    if kind == K_DOUBLE:
        if n != 8:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        u64 = _be64(p)
        memcpy(&d, &u64, 8)
        return PyFloat_FromDouble(d)
    if kind == K_FLOAT:
        if n != 4:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        u32 = _be32(p)
        memcpy(&f, &u32, 4)
        return PyFloat_FromDouble(<double>f)
    if kind == K_BOOLEAN:
        if n != 1:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        return p[0] != 0
    if kind == K_ASCII:
        return PyUnicode_DecodeASCII(<const char *>p, n, NULL)
    if kind == K_UUID:
        if n != 16:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        # what types_scalar's fast_uuid does (compiled_rows checks that it gives the same)
        value = _object_new(spec.post)
        _object_setattr(value, "int", ((<object>_be64(p)) << 64) | (<object>_be64(p + 8)))
        if spec.post2 is not None:
            _object_setattr(value, "is_safe", spec.post2)
        return value
    if kind == K_TIMESTAMP:
        if n != 8:
            return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))
        return _timestamp(<int64_t>_be64(p), spec.post)
    if kind == K_LIST or kind == K_SET:
        if n == 0:
            return None
        if n < 4:
            raise _Irregular()
        count = <int32_t>_be32(p)
        if count < 0 or <Py_ssize_t>count * 4 > n - 4:
            raise _Irregular()
        items = [None] * count
        pos = 4
        for i in range(count):
            if pos + 4 > n:
                raise _Irregular()
            m = <int32_t>_be32(p + pos)
            pos += 4
            if m < 0:
                continue
            if pos + m > n:
                raise _Irregular()
            items[i] = _decode(spec.a, p + pos, m)
            pos += m
        if pos != n:
            raise _Irregular()
        if kind == K_SET:
            return spec.post(items)
        return items
    if kind == K_MAP:
        if n == 0:
            return None
        if n < 4:
            raise _Irregular()
        count = <int32_t>_be32(p)
        if count < 0 or <Py_ssize_t>count * 8 > n - 4:
            raise _Irregular()
        mapping = {}
        pos = 4
        for i in range(2 * count):
            if pos + 4 > n:
                raise _Irregular()
            m = <int32_t>_be32(p + pos)
            pos += 4
            if m < 0:
                value = None
            else:
                if pos + m > n:
                    raise _Irregular()
                value = _decode(spec.b if i & 1 else spec.a, p + pos, m)
                pos += m
            if i & 1:
                mapping[key] = value
            else:
                key = value
        if pos != n:
            raise _Irregular()
        return mapping
    return spec.py(PyBytes_FromStringAndSize(<const char *>p, n))


cdef class RowDecoder:
    """``decoder(buf, pos, row_count) -> (rows, new_pos)``, as the pure decoder it wraps."""
    cdef list specs
    cdef Py_ssize_t ncols
    cdef public object pure

    def __init__(self, specs, pure):
        self.specs = list(specs)
        self.ncols = len(self.specs)
        self.pure = pure

    @property
    def source(self):
        return getattr(self.pure, "source", None)

    def __call__(self, buf, Py_ssize_t pos, Py_ssize_t row_count):
        if type(buf) is not bytes:
            buf = bytes(buf)
        try:
            return self._decode(buf, pos, row_count)
        except Exception:
            # irregular data: the pure path decides (same values, same error)
            return self.pure(buf, pos, row_count)

    cdef object _decode(self, bytes buf, Py_ssize_t pos, Py_ssize_t row_count):
        cdef Py_ssize_t size = PyBytes_GET_SIZE(buf)
        cdef const unsigned char *base = <const unsigned char *>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t ncols = self.ncols
        cdef Py_ssize_t r, c
        cdef int32_t n
        cdef list rows
        cdef tuple row
        cdef object value
        cdef _Spec spec
        cdef list specs = self.specs
        if row_count < 0 or pos < 0 or row_count * (4 * ncols if ncols else 1) > size - pos:
            raise _Irregular()
        rows = [None] * row_count
        for r in range(row_count):
            row = PyTuple_New(ncols)
            for c in range(ncols):
                if pos + 4 > size:
                    raise _Irregular()
                n = <int32_t>_be32(base + pos)
                pos += 4
                if n < 0:
                    value = None
                else:
                    if pos + n > size:
                        raise _Irregular()
                    spec = <_Spec>specs[c]
                    # the commonest kinds inline, the rest through _decode
                    if spec.kind == K_TEXT:
                        value = PyUnicode_DecodeUTF8(<const char *>(base + pos), n, NULL)
                    elif spec.kind == K_INT and n == 4:
                        value = PyLong_FromLong(<int32_t>_be32(base + pos))
                    elif spec.kind == K_BIGINT and n == 8:
                        value = PyLong_FromLongLong(<int64_t>_be64(base + pos))
                    else:
                        value = _decode(spec, base + pos, n)
                    pos += n
                Py_INCREF(value)
                PyTuple_SET_ITEM(row, c, value)
            rows[r] = row
        return rows, pos


def rows_as_dicts(colnames, rows):
    """``[dict(zip(colnames, row)) for row in rows]`` (query.dict_factory's rows)."""
    cdef list names = list(colnames)
    cdef Py_ssize_t ncols = len(names)
    cdef Py_ssize_t r, c, width
    cdef list src = rows if type(rows) is list else list(rows)
    cdef list out = [None] * len(src)
    cdef dict d
    cdef tuple row
    r = 0
    for item in src:
        row = item if type(item) is tuple else tuple(item)
        width = len(row)
        if width > ncols:
            width = ncols
        d = {}
        for c in range(width):
            d[names[c]] = row[c]
        out[r] = d
        r += 1
    return out
