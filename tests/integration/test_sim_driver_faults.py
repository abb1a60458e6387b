"""Injected faults as cassandra-driver sees them (v5, lz4 segments): realistic enough that
a production driver reacts the way it does to a real misbehaving node."""

import time

import pytest

cassandra = pytest.importorskip("cassandra")
pytest.importorskip("cqlreactor.testing.engine")

from cassandra import OperationTimedOut  # noqa: E402
from cassandra.cluster import (EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile,  # noqa: E402
                               NoHostAvailable)
from cassandra.connection import ConnectionShutdown  # noqa: E402
from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: E402

from cqlreactor.testing import SimulatedCluster  # noqa: E402

pytestmark = pytest.mark.oracle
Q = "SELECT release_version FROM system.local"


@pytest.fixture(scope="module")
def pinned():
    """A driver whose requests all go to node 0 (its control connection too)."""
    with SimulatedCluster(nodes=2) as sim:
        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([sim.contact_points[0]]),
            request_timeout=5)
        cluster = Cluster([sim.contact_points[0]], port=sim.port, protocol_version=5,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        session = cluster.connect()
        try:
            yield sim, cluster, session
        finally:
            cluster.shutdown()


def _eventually(fn, timeout=15.0):
    """fn()'s first truthy result, retrying on exceptions and falsy results until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
        else:
            if result or time.monotonic() > deadline:
                return result
        time.sleep(0.1)


def test_stall_times_out_then_recovers(pinned):
    sim, cluster, session = pinned
    sim.clear()
    sim.stall(0, 1.0)
    with pytest.raises(OperationTimedOut):
        session.execute(Q, timeout=0.3)
    time.sleep(1.0)
    assert session.execute(Q).one().release_version.startswith("4.")


def test_close_after_fails_the_request_then_recovers(pinned):
    sim, cluster, session = pinned
    sim.clear()
    sim.close_after(0, 1)
    assert session.execute(Q).one() is not None           # answered
    with pytest.raises(NoHostAvailable) as info:
        session.execute(Q)                                # its connection closes under it
    # the request failed with the closed connection, or (racing it) the driver had already
    # marked the only host down and had nowhere to send it
    for error in info.value.errors.values():
        assert isinstance(error, ConnectionShutdown) and "was closed" in str(error)
    assert _eventually(lambda: session.execute(Q).one()) is not None


def test_corrupt_frame_is_a_checksum_error_for_the_driver(pinned):
    sim, cluster, session = pinned
    sim.clear()
    before = sim.node_info()[0]["accepted"]
    sim.corrupt_next_frame(0)
    try:
        session.execute(Q)
    except NoHostAvailable as exc:
        for error in exc.errors.values():
            assert isinstance(error, ConnectionShutdown)
            assert "CRC mismatch on payload" in str(error)
    # (when the driver's own background traffic met the corrupt frame first, the request
    # itself succeeded; either way the connection that saw it is dead and gets replaced)
    assert _eventually(lambda: sim.node_info()[0]["accepted"] > before)
    assert _eventually(lambda: session.execute(Q).one()) is not None


def test_dropped_connections_are_reopened(pinned):
    sim, cluster, session = pinned
    sim.clear()
    before = sim.node_info()[0]["accepted"]
    assert sim.drop_connections(0) >= 1
    assert _eventually(lambda: session.execute(Q).one()) is not None
    assert sim.node_info()[0]["accepted"] > before       # the driver reconnected
