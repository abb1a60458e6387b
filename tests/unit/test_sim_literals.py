"""Literals the simulated cluster's engine reads as Cassandra 4 does: decimals keep every digit
written, durations are unquoted constants (``1h30m``, ISO 8601 ``P1DT2H``) and a quoted
string is refused for a duration column (Cassandra's Constants.Literal.testAssignment)."""

import decimal

import pytest

from cqlreactor.core import types as T
from cqlreactor.testing.engine import Engine, NodeInfo, Rows
from cqlreactor.testing.engine.errors import EngineError

H = 3600 * 10 ** 9


@pytest.fixture
def engine():
    e = Engine([NodeInfo(0, "127.0.0.1")])
    e.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    e.execute("CREATE TABLE ks.t (k int PRIMARY KEY, de decimal, du duration, do double)")
    return e


def _one(engine, column):
    result, _ = engine.execute("SELECT %s FROM ks.t WHERE k = 1" % column)
    assert isinstance(result, Rows)
    (row,) = result.rows
    return result.columns[0].cql_type.deserialize(row[0])


@pytest.mark.parametrize("literal, expected", [
    ("3.14159265358979323846264338327950288", "3.14159265358979323846264338327950288"),
    ("-0.1000000000000000000001", "-0.1000000000000000000001"),
    ("12345678901234567890.5", "12345678901234567890.5"),
    ("1e-30", "1E-30"),
    ("123456789012345678901234567890", "123456789012345678901234567890"),
])
def test_decimal_literals_keep_their_precision(engine, literal, expected):
    engine.execute("INSERT INTO ks.t (k, de) VALUES (1, %s)" % literal)
    assert _one(engine, "de") == decimal.Decimal(expected)


def test_a_double_still_reads_a_float_literal(engine):
    engine.execute("INSERT INTO ks.t (k, do) VALUES (1, 0.1)")
    assert _one(engine, "do") == 0.1


@pytest.mark.parametrize("literal, expected", [
    ("1y2mo3d1h2m3s9ns", T.Duration(14, 3, H + 123 * 10 ** 9 + 9)),
    ("1h30m", T.Duration(0, 0, 90 * 60 * 10 ** 9)),
    ("2w", T.Duration(0, 14, 0)),
    ("1H30M", T.Duration(0, 0, 90 * 60 * 10 ** 9)),
    ("5ms7us", T.Duration(0, 0, 5 * 10 ** 6 + 7000)),
    ("-1d", T.Duration(0, -1, 0)),
    ("P1Y2M3DT4H5M6S", T.Duration(14, 3, 4 * H + 306 * 10 ** 9)),
    ("PT30M", T.Duration(0, 0, 30 * 60 * 10 ** 9)),
    ("P2W", T.Duration(0, 14, 0)),
    ("-P1D", T.Duration(0, -1, 0)),
])
def test_unquoted_duration_literals(engine, literal, expected):
    engine.execute("INSERT INTO ks.t (k, du) VALUES (1, %s)" % literal)
    assert _one(engine, "du") == expected


def test_a_quoted_string_is_not_a_duration(engine):
    with pytest.raises(EngineError) as info:
        engine.execute("INSERT INTO ks.t (k, du) VALUES (1, '1h')")
    assert info.value.code == 0x2200
    assert info.value.message == 'Invalid STRING constant (1h) for "du" of type duration'


def test_an_integer_is_offered_to_duration_and_refused_as_cassandra_does(engine):
    with pytest.raises(EngineError) as info:
        engine.execute("INSERT INTO ks.t (k, du) VALUES (1, 5)")
    assert "Unable to convert '5' to a duration" in info.value.message


def test_a_duration_constant_for_another_type(engine):
    with pytest.raises(EngineError) as info:
        engine.execute("INSERT INTO ks.t (k, de) VALUES (1, 1h)")
    assert info.value.message == 'Invalid DURATION constant (1h) for "de" of type decimal'


def test_identifiers_that_look_like_iso_durations_stay_identifiers(engine):
    engine.execute("CREATE TABLE ks.p (p1d int PRIMARY KEY, pt1h int)")
    engine.execute("INSERT INTO ks.p (p1d, pt1h) VALUES (1, 2)")
    result, _ = engine.execute("SELECT pt1h FROM ks.p WHERE p1d = 1")
    assert [c.name for c in result.columns] == ["pt1h"]
