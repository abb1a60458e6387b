"""MonotonicTimestampGenerator against cassandra-driver's (the oracle): same sequence for the
same clock readings, including a clock that stands still or goes back."""

import logging

import pytest

from cqlreactor.timestamps import MonotonicTimestampGenerator

theirs = pytest.importorskip("cassandra.timestamps")


def test_sequence_matches_cassandra_driver_when_the_clock_goes_back():
    clock = [100, 100, 101, 99, 50, 200, 200, 150, 300]
    ours, oracle = MonotonicTimestampGenerator(), theirs.MonotonicTimestampGenerator()
    got = [ours._next_timestamp(now, ours.last) for now in clock]
    expected = [oracle._next_timestamp(now=now, last=oracle.last) for now in clock]
    assert got == expected == [100, 101, 102, 103, 104, 200, 201, 202, 300]


def test_calls_are_microseconds_and_strictly_increasing(monkeypatch):
    import time
    generator = MonotonicTimestampGenerator()
    monkeypatch.setattr(time, "time", lambda: 1500000000.0)
    assert [generator() for _ in range(3)] == [1500000000000000 + i for i in range(3)]


def test_drift_is_logged(caplog):
    generator = MonotonicTimestampGenerator(warning_threshold=0.000001, warning_interval=0)
    generator.last = 10 ** 7
    with caplog.at_level(logging.WARNING, logger="cqlreactor.timestamps"):
        generator._next_timestamp(10, generator.last)
    assert "ahead of the clock" in caplog.text
