"""The optional compiled row decoder gives exactly the pure-Python decoder's rows.

Random schemas and values (the shared strategies), plus cells of random bytes (so that empty,
short, long and malformed cells reach both paths): every value must have the same type and
repr on both paths, and a body the pure path refuses must be refused with the same error.
Skipped where the compiled decoder cannot be built (no Cython / compiler): that is reported by
``doctor``, never an error.  Also the pure decoder's edge cases and the row factories.
"""

import datetime
import decimal
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqlreactor import compiled_rows, query
from cqlreactor.core import types as T
from cqlreactor.core import types_rows
from cqlreactor.core.errors import ProtocolError
from cqlreactor.core.results import ResultMessage, rows_body

from tests.unit.test_types_strategies import cql_types, values_for


def _compiled_module():
    try:
        return compiled_rows._load()
    except RuntimeError as exc:
        pytest.skip("compiled row decoder unavailable here: %s" % (exc,))


def _canon(value):
    """Type and repr at every level (equal values of other types or forms differ here)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_canon(v) for v in value])
    if isinstance(value, dict):
        return (type(value).__name__, [(_canon(k), _canon(v)) for k, v in value.items()])
    if isinstance(value, T.SortedSet):
        return ("SortedSet", [_canon(v) for v in value])
    return (type(value).__name__, repr(value), getattr(value, "__dict__", None))


def _outcome(decoder, body, pos, count):
    try:
        rows, end = decoder(body, pos, count)
    except ProtocolError as exc:
        return ("error", str(exc))
    return ("rows", _canon(rows), end)


def _cells(ctype):
    serialized = values_for(ctype).map(lambda v: ctype.serialize(v, 4))
    return st.one_of(st.none(), serialized, serialized, st.binary(max_size=12))


@st.composite
def _schema_and_rows(draw):
    col_types = draw(st.lists(cql_types(max_leaves=4), min_size=1, max_size=4))
    rows = draw(st.lists(st.tuples(*[_cells(t) for t in col_types]), max_size=4))
    return col_types, rows


def _body(rows):
    out = []
    for row in rows:
        for cell in row:
            out.append(b"\xff\xff\xff\xff" if cell is None else struct.pack(">i", len(cell)) + cell)
    return b"".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(_schema_and_rows(), st.integers(-1, 1))
def test_compiled_and_pure_give_identical_rows(schema, count_delta):
    _compiled_module()
    col_types, rows = schema
    pure = types_rows._build(tuple(col_types))
    compiled = compiled_rows._wrap(tuple(col_types), pure)
    body = b"\x00\x07" + _body(rows)
    count = len(rows) + count_delta
    assert _outcome(compiled, body, 2, count) == _outcome(pure, body, 2, count)


def test_compiled_decodes_mixed_types_natively_like_the_pure_path():
    _compiled_module()
    col_types = [T.UUID, T.TIMESTAMP, T.BIGINT, T.DOUBLE, T.TEXT, T.BOOLEAN, T.DECIMAL,
                 T.parse_cql_type("list<int>"), T.parse_cql_type("map<text, int>"), T.BLOB,
                 T.FLOAT, T.ASCII, T.INT, T.parse_cql_type("set<bigint>")]
    values = [None, None, -2 ** 63, -0.0, "", False, decimal.Decimal("-1E-30"), [], {}, b"",
              1.5, "a", -2 ** 31, T.SortedSet([3, 1])]
    stamps = [datetime.datetime(1, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59, 999000),
              datetime.datetime(1969, 12, 31, 23, 59, 59, 1000), datetime.datetime(2000, 2, 29)]
    rows = []
    for stamp in stamps:
        cells = [t.serialize(v) if v is not None else None for t, v in zip(col_types, values)]
        cells[1] = T.TIMESTAMP.serialize(stamp)
        rows.append(cells)
    rows.append([b""] * len(col_types))                         # empty cells
    rows.append([struct.pack(">q", 2 ** 62) if t is T.TIMESTAMP else None for t in col_types])
    body = _body(rows)
    pure = types_rows._build(tuple(col_types))
    compiled = compiled_rows._wrap(tuple(col_types), pure)
    assert _outcome(compiled, body, 0, len(rows)) == _outcome(pure, body, 0, len(rows))
    def no_fallback(*args):
        raise AssertionError("a regular body went to the pure path")
    strict = compiled_rows._wrap(tuple(col_types), no_fallback)     # decoded natively
    assert _outcome(strict, body, 0, len(rows)) == _outcome(pure, body, 0, len(rows))
    assert compiled(body, 0, len(rows))[0][0][1] == stamps[0]
    assert compiled(body, 0, len(rows))[0][-1][1] == 2 ** 62     # beyond datetime: raw ms


def test_enable_switches_results_and_dict_factory_and_disable_restores():
    _compiled_module()
    columns = [("ks", "t", "k", T.INT), ("ks", "t", "v", T.TEXT)]
    body = rows_body(columns, [[T.INT.serialize(1), T.TEXT.serialize("a")], [None, b""]])
    before = ResultMessage.decode_body(body, 4).rows
    assert compiled_rows.enable()
    try:
        assert compiled_rows.status()[0] == "active"
        message = ResultMessage.decode_body(body, 4)
        assert message.rows == before == [(1, "a"), (None, "")]
        assert query.dict_factory(["k", "v"], message.rows) == [{"k": 1, "v": "a"},
                                                                 {"k": None, "v": ""}]
    finally:
        compiled_rows.disable()
    assert not types_rows.compiled_active() and query._compiled_dicts is None
    assert ResultMessage.decode_body(body, 4).rows == before


# --- the pure path's edge cases and the row factories (always run) ---------------------------

def _decode(col_types, cells, protocol_version=4):
    columns = [("ks", "t", "c%d" % i, t) for i, t in enumerate(col_types)]
    return ResultMessage.decode_body(rows_body(columns, [cells], protocol_version=protocol_version),
                                     protocol_version).rows[0]


@pytest.mark.parametrize("protocol_version", [4, 5])
def test_pure_decoder_edge_cases(protocol_version):
    nested = T.parse_cql_type("map<text, frozen<list<frozen<set<int>>>>>")
    udt = T.UserType("ks", "u", [("a", T.INT), ("b", T.TEXT)], frozen=True)
    tup = T.TupleType([T.VARINT, T.DECIMAL], frozen=True)
    col_types = [T.INT, T.TEXT, T.BLOB, nested, udt, tup, T.VARINT, T.DECIMAL, T.DURATION]
    values = [None, "", b"", {"x": [T.SortedSet([2, 1]), T.SortedSet()]}, udt.value_class(-1, None),
              (-2 ** 70, decimal.Decimal("-0.001")), -1, decimal.Decimal("-12.5"),
              T.Duration(-1, 2, -3 * 10 ** 9)]
    cells = [None if v is None else t.serialize(v, protocol_version)
             for t, v in zip(col_types, values)]
    row = _decode(col_types, cells, protocol_version)
    assert row[0] is None and row[1] == "" and row[2] == b""
    assert row[3] == {"x": [{1, 2}, set()]}
    assert tuple(row[4]) == (-1, None)
    assert row[5] == (-2 ** 70, decimal.Decimal("-0.001"))
    assert row[6] == -1 and row[7] == decimal.Decimal("-12.5")
    assert row[8] == T.Duration(-1, 2, -3 * 10 ** 9)
    # empty cells of fixed-size and number types decode as None (Cassandra's EMPTY)
    assert _decode([T.INT, T.VARINT, T.DECIMAL, T.UUID], [b"", b"", b"", b""]) == (None,) * 4


def test_row_factories():
    rows = [(1, "a"), (2, None)]
    named = query.named_tuple_factory(["k", "[applied]"], rows)
    assert [tuple(r) for r in named] == rows and named[0].applied == "a"
    assert type(named[0]).__name__ == "Row"
    assert query.named_tuple_factory(["k", "v"], iter(rows))[1].v is None
    assert query.dict_factory(["k", "v"], rows) == [{"k": 1, "v": "a"}, {"k": 2, "v": None}]
    assert query.dict_factory(["k", "v"], iter(rows))[0] == {"k": 1, "v": "a"}
    assert query.tuple_factory(["k", "v"], rows) is rows


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=5))
def test_compiled_timestamps_natively_equal_the_pure_path(millis):
    _compiled_module()

    def no_fallback(*args):
        raise AssertionError("a regular body went to the pure path")
    body = b"".join(struct.pack(">iq", 8, ms) for ms in millis)
    key = (T.TIMESTAMP,)
    assert _outcome(compiled_rows._wrap(key, no_fallback), body, 0, len(millis)) == \
        _outcome(types_rows._build(key), body, 0, len(millis))
