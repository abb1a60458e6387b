"""Pure parts of the simulated cluster's control channel: value tagging and prime matching."""

import datetime
import decimal
import ipaddress
import json
import uuid

import pytest

from cqlreactor.testing.server.control import decode_value, encode_value
from cqlreactor.testing.server.primes import Prime, PrimeTable


@pytest.mark.parametrize("value", [
    None, True, 7, -1.5, "text", b"\x00\xff", uuid.UUID(int=5), decimal.Decimal("-1.25"),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6), datetime.date(1999, 12, 31),
    datetime.time(23, 59, 58, 123456), ipaddress.ip_address("10.0.0.1"),
    {1: "a", 2: "b"}, {"k": [1, 2]}, {1, 2, 3}, (1, "a", None), [b"x", None],
    datetime.timedelta(seconds=90),
])
def test_values_survive_json(value):
    assert decode_value(json.loads(json.dumps(encode_value(value)))) == value


def test_prime_matching_exact_and_regex():
    exact = Prime("SELECT  a FROM t\n WHERE k = ?;", rows=[{"a": 1}])
    assert exact.matches("SELECT a FROM t WHERE k = ?")
    assert not exact.matches("SELECT a FROM t WHERE k = 1")
    pattern = Prime(r"select a from t where k = \d+", regex=True, rows=[])
    assert pattern.matches("SELECT a FROM t WHERE k = 42")
    assert not pattern.matches("SELECT a FROM t WHERE k = 42 LIMIT 1")
    assert pattern.is_void and not exact.is_void
    assert exact.columns == [("a", "bigint")]


def test_prime_table_newest_first_node_and_times():
    table = PrimeTable()
    table.add(Prime("Q", rows=[{"a": 1}]))
    table.add(Prime("Q", error="overloaded", times=2, node=1))
    assert table.find("Q", 0, "127.0.0.1").error is None
    version = table.version
    assert table.find("Q", 1, "127.0.0.2").error["code"] == 0x1001
    assert table.find("Q", 1, "127.0.0.2", consume=False).error["code"] == 0x1001
    assert table.find("Q", 1, "127.0.0.2").error["code"] == 0x1001
    assert table.version > version                   # the expired prime invalidates caches
    assert table.find("Q", 1, "127.0.0.2").error is None
    assert table.find("other", 0, "127.0.0.1") is None


def test_prime_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown error name"):
        Prime("Q", error="nope")
    with pytest.raises(ValueError, match="need columns"):
        Prime("Q", rows=[[1, 2]])
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        Prime("Q", rows=[[1, 2]], columns=[("a", "int")])
    assert Prime("Q", error={"code": 0x1000, "alive": 0}).error == {
        "code": 0x1000, "alive": 0, "message": "primed error"}
    assert Prime("Q", delay=0.5).passthrough
