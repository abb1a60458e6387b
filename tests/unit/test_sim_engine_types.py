"""Every CQL type through the simulated cluster's CQL engine, with cassandra-driver (test oracle)
encoding the bound values and decoding the rows: what a real driver sends comes back equal."""

import datetime
import decimal
import uuid

import pytest

cqltypes = pytest.importorskip("cassandra.cqltypes")
from cassandra import util as dutil  # noqa: E402

from cqlreactor.testing.engine.errors import EngineError  # noqa: E402
from cqlreactor.testing.engine import Engine, NodeInfo  # noqa: E402

VALUES = [
    ("ascii", "abc"),
    ("bigint", -(2 ** 62)),
    ("blob", b"\x00\xff"),
    ("boolean", False),
    ("date", dutil.Date(datetime.date(1999, 12, 31))),
    ("decimal", decimal.Decimal("-12.3456")),
    ("double", 1.0 / 3),
    ("duration", dutil.Duration(1, 2, 3000)),
    ("float", 2.5),
    ("inet", "::1"),
    ("int", -7),
    ("smallint", 32767),
    ("text", "\u2603 snow"),
    ("time", dutil.Time(datetime.time(23, 59, 59, 999999))),
    ("timestamp", datetime.datetime(2024, 2, 29, 12, 0, 0, 123000)),
    ("timeuuid", uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e")),
    ("tinyint", -128),
    ("uuid", uuid.UUID("5d1a6a4e-2f0b-4c38-9f61-1a2b3c4d5e6f")),
    ("varint", -(10 ** 30)),
    ("list<int>", [3, 1, 3]),
    ("set<text>", dutil.SortedSet(["b", "a"])),
    ("map<text, int>", {"z": 1, "a": 2}),
    ("frozen<list<frozen<map<int, text>>>>", [{1: "a"}, {}]),
    ("tuple<int, text, boolean>", (1, "x", None)),
    ("frozen<map<frozen<tuple<int, int>>, frozen<set<int>>>>",
     {(3, 4): dutil.SortedSet([2, 1]), (1, 2): dutil.SortedSet()}),
    ("vector<float, 3>", [0.5, -1.0, 2.0]),
    ("frozen<point>", (1, "y")),
    ("point", (None, "n")),
]


@pytest.fixture(scope="module")
def table():
    e = Engine([NodeInfo(0, "127.0.0.1")], clock=lambda: 1.7e9)
    e.set_release("5.0.2")          # vector columns exist from Cassandra 5.0
    e.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    # (a UDT name whose hex form is all digits trips cassandra-driver's type-name parser)
    e.execute("CREATE TYPE ks.point (a int, b text)")
    e.execute("CREATE TABLE ks.t (k int PRIMARY KEY, %s)" % ", ".join(
        "c%d %s" % (i, t) for i, (t, _) in enumerate(VALUES)))
    return e


def _driver_type(column):
    return cqltypes.lookup_casstype(column.cql_type.cass_name)


@pytest.mark.parametrize("index", range(len(VALUES)), ids=[t for t, _ in VALUES])
def test_driver_encoded_values_round_trip(table, index):
    type_text, value = VALUES[index]
    if type_text.startswith("vector") and not hasattr(cqltypes, "VectorType"):
        pytest.skip("this cassandra-driver predates vector types")
    e = table
    p = e.prepare("INSERT INTO ks.t (k, c%d) VALUES (?, ?)" % index, None)
    key_type, value_type = [_driver_type(c) for c in p.bind_columns]
    e.execute_prepared(p.query_id, [key_type.to_binary(index, 4),
                                    value_type.to_binary(value, 4)])
    rows, _ = e.execute("SELECT c%d FROM ks.t WHERE k = %d" % (index, index))
    column = rows.columns[0]
    got = _driver_type(column).from_binary(rows.rows[0][0], 4)
    expected = value
    if type_text == "inet":
        expected = "::1"
    if type_text.startswith("map") or type_text.startswith("frozen<map"):
        got = dict(got)
    if type_text in ("frozen<point>", "point"):
        got = tuple(got)
    if type_text == "frozen<list<frozen<map<int, text>>>>":
        got = [dict(m) for m in got]
    assert got == expected
    # the literal CQL text form of the same column type is what system_schema shows
    cols, _ = e.execute("SELECT type FROM system_schema.columns WHERE keyspace_name = 'ks' "
                        "AND table_name = 't' AND column_name = 'c%d'" % index)
    shown = cols.columns[0].cql_type.deserialize(cols.rows[0][0])
    assert shown == type_text.replace("tuple<int, text, boolean>",
                                      "frozen<tuple<int, text, boolean>>")


def test_malformed_bound_values_are_invalid(table):
    p = table.prepare("INSERT INTO ks.t (k, c10) VALUES (?, ?)", None)
    for bad in (b"\x00\x00\x01", b"\x00" * 5):
        with pytest.raises(EngineError) as info:
            table.execute_prepared(p.query_id, [b"\x00\x00\x00\x01", bad])
        assert info.value.code == 0x2200
