"""The fault matrix: steady load (32 requests in flight) on every reactor against a 3-node
simulated cluster, one fault at a time (cqlreactor/testing/faultload.py has the faults and the
accounting). Each cell asserts:

  * every request ended exactly once: issued == succeeded + failed, none never completed;
  * nothing outlived its timeout by more than the margin (2 s over the 2 s timeout);
  * failures are only of the kinds a fault explains (timeouts, connection errors, no host);
  * throughput recovers on every host within 30 s of the fault healing.

The nodes of the simulated cluster share one process, so "node process killed" is the whole
process SIGKILLed (every node dies at once, no goodbye) and a new one started on the same
port (``kill_process``). The clients reconnect every 0.5 s (ConstantReconnectionPolicy) so a
cell takes seconds, not the default policy's minutes. The default run has DEFAULT_CELLS on
every reactor; the whole matrix is ``slow``. With CQLREACTOR_FAULT_REPORT=FILE each cell
appends its accounting to FILE as a JSON line (the README's Reliability table comes from it).
"""

import json
import os

import pytest

from cqlreactor import Cluster
from cqlreactor.policies import ConstantReconnectionPolicy
from cqlreactor.testing.cluster import SimulatedCluster
from cqlreactor.testing.faultload import (DEFAULT_CELLS, FAULTS, FaultContext, Load,
                                          kill_and_restart, problems)

QUERY = "SELECT release_version FROM system.local"
TIMEOUT = 2.0
MARGIN = 2.0
IN_FLIGHT = 32
RECOVERY = 30.0


@pytest.fixture(scope="module")
def sim3():
    with SimulatedCluster(nodes=3) as sim:
        yield sim


def run_cell(sim, reactor, fault, restart_process=None):
    """One cell: load, fault, recovery, accounting. Returns (LoadStats, the sim in use)."""
    cluster = Cluster(sim.contact_points, port=sim.port, connection_class=reactor,
                      reconnection_policy=ConstantReconnectionPolicy(0.5, None),
                      connect_timeout=5.0)
    ctx = FaultContext(sim, cluster, timeout=TIMEOUT, restart_process=restart_process)
    try:
        session = cluster.connect()
        statement = session.prepare(QUERY)
        load = Load(session, statement, in_flight=IN_FLIGHT, timeout=TIMEOUT, margin=MARGIN)
        load.start()
        try:
            load.wait_every_host_serves(sim.contact_points, within=RECOVERY)   # steady first
            FAULTS[fault](ctx)
            load.wait_every_host_serves(ctx.sim.contact_points, within=RECOVERY)
        finally:
            stats = load.stop()
    finally:
        cluster.shutdown()
    report = os.environ.get("CQLREACTOR_FAULT_REPORT")
    if report:      # one JSON line per cell, for the README's Reliability table
        with open(report, "a") as out:
            out.write(json.dumps(dict(stats.as_dict(), reactor=reactor, fault=fault)) + "\n")
    check(stats, fault, reactor)
    return stats, ctx.sim


def check(stats, fault, reactor):
    assert stats.issued == stats.succeeded + stats.failed, stats
    found = problems(stats)
    assert not found, "%s under %s: %s; %r" % (reactor, fault, "; ".join(found), stats)


@pytest.fixture
def healthy(sim3):
    sim3.clear()
    yield sim3
    sim3.clear()
    for i, info in enumerate(sim3.node_info()):
        if not info["up"]:
            sim3.start_node(i)


@pytest.mark.parametrize("fault", DEFAULT_CELLS)
def test_fault_cell(healthy, reactor, fault):
    run_cell(healthy, reactor, fault)


@pytest.mark.slow
@pytest.mark.parametrize("fault", [f for f in FAULTS if f not in DEFAULT_CELLS])
def test_fault_cell_full_matrix(healthy, reactor, fault):
    if fault == "kill_process":
        sim = SimulatedCluster(nodes=3).start()
        box = [sim]

        def restart():
            box[0] = kill_and_restart(box[0])
            return box[0]
        try:
            run_cell(sim, reactor, fault, restart_process=restart)
        finally:
            box[0].stop()
        return
    run_cell(healthy, reactor, fault)
