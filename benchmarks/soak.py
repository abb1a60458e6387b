"""Soak: steady load on every reactor against a 3-node simulated cluster while faults are
injected at random, with the fault matrix's accounting (cqlreactor/testing/faultload.py).

    python -m benchmarks.soak --minutes 10                  # split over the reactors here
    python -m benchmarks.soak --minutes 2 --reactors asyncio,gevent --seed 7 --json out.json

For each reactor in turn: a new simulated cluster (its own process), a Cluster connected to it
keeping ``--in-flight`` prepared requests running; then, until its share of the time is up,
a pause of 1-3 s, a fault drawn from FAULTS (kill_process SIGKILLs the simulator and starts a
new one on the same port), and a wait until every node answers again (at most 30 s). At the
end the load stops and every request must have ended exactly once: issued == succeeded +
failed, none pending, none past its timeout by more than the margin, only failures a fault
explains. Prints one line per reactor and a summary table (the README's Reliability table);
exits 1 on any problem. Not part of the test suite's default run; tests/integration/
test_soak.py runs a 2-minute soak under the ``slow`` mark.
"""

import argparse
import collections
import json
import logging
import random
import sys
import time


def soak_reactor(reactor, seconds, in_flight, timeout, rng, log):
    from cqlreactor import Cluster
    from cqlreactor.policies import ConstantReconnectionPolicy
    from cqlreactor.testing.cluster import SimulatedCluster
    from cqlreactor.testing.faultload import FAULTS, FaultContext, Load, kill_and_restart

    sims = [SimulatedCluster(nodes=3).start()]

    def restart():
        sims[0] = kill_and_restart(sims[0])
        return sims[0]

    faults = collections.Counter()
    recoveries = []
    recovery_failures = []
    cluster = Cluster(sims[0].contact_points, port=sims[0].port, connection_class=reactor,
                      reconnection_policy=ConstantReconnectionPolicy(0.5, None),
                      connect_timeout=5.0)
    try:
        session = cluster.connect()
        statement = session.prepare("SELECT release_version FROM system.local")
        load = Load(session, statement, in_flight=in_flight, timeout=timeout)
        load.start()
        ctx = FaultContext(sims[0], cluster, timeout=timeout, restart_process=restart)
        try:
            load.wait_every_host_serves(sims[0].contact_points, within=30.0)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                ctx.sleep(rng.uniform(1.0, 3.0))
                name = rng.choice(list(FAULTS))
                ctx.sim = sims[0]
                FAULTS[name](ctx)
                faults[name] += 1
                try:
                    recoveries.append(load.wait_every_host_serves(sims[0].contact_points,
                                                                  within=30.0))
                except AssertionError as exc:
                    recovery_failures.append("%s: %s" % (name, exc))
                    log("  %s: no recovery after %s" % (reactor, name))
        finally:
            stats = load.stop()
    finally:
        cluster.shutdown()
        sims[0].stop()
    stats.faults = sorted(faults.items())
    return stats, recoveries, recovery_failures


def available_reactors():
    from cqlreactor.testing.pytest_plugin import reactor_params
    return [p.values[0] for p in reactor_params() if not p.marks]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="total soak time, split evenly over the reactors (default 10)")
    parser.add_argument("--reactors", default=None,
                        help="comma-separated reactor names (default: every one the compat "
                             "matrix allows here)")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout (s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--verbose", action="store_true",
                        help="show the driver's warnings (hosts going down and up)")
    args = parser.parse_args(argv)
    if not args.verbose:    # every fault makes hosts go down: expected, and loud
        logging.getLogger("cqlreactor").setLevel(logging.ERROR)
    from cqlreactor.testing.faultload import problems

    reactors = args.reactors.split(",") if args.reactors else available_reactors()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    share = args.minutes * 60.0 / max(1, len(reactors))
    print("soak: %s, %.0f s each, %d in flight, timeout %.1f s, seed %d"
          % (", ".join(reactors), share, args.in_flight, args.timeout, seed))
    results = []
    failed = False
    for reactor in reactors:
        stats, recoveries, recovery_failures = soak_reactor(
            reactor, share, args.in_flight, args.timeout, rng,
            lambda text: print(text, file=sys.stderr))
        found = problems(stats) + recovery_failures
        failed = failed or bool(found)
        row = dict(stats.as_dict(), reactor=reactor, problems=found,
                   slowest_recovery=round(max(recoveries), 2) if recoveries else None)
        results.append(row)
        print("%-10s faults %3d  issued %8d  succeeded %8d  failed %7d  lost %d  %s"
              % (reactor, sum(n for _, n in stats.faults), stats.issued, stats.succeeded,
                 stats.failed, stats.lost, "; ".join(found) or "ok"))
    print()
    print(table(results, "python -m benchmarks.soak --minutes %g --seed %d"
                % (args.minutes, seed)))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"seed": seed, "minutes": args.minutes, "results": results}, out,
                      indent=1)
    return 1 if failed else 0


def table(results, command):
    """The README table: one row per reactor."""
    lines = ["| reactor | faults injected (kinds) | requests issued | succeeded | failed "
             "(by type) | lost |", "|---|---|---|---|---|---|"]
    for row in results:
        kinds = ", ".join("%s %d" % kv for kv in row["faults"])
        failures = ", ".join("%s %d" % kv for kv in sorted(row["failures"].items())) or "0"
        lines.append("| %s | %d (%s) | %d | %d | %s | %d |" % (
            row["reactor"], sum(n for _, n in row["faults"]), kinds, row["issued"],
            row["succeeded"], failures, row["lost"]))
    lines.append("")
    lines.append("Produced by `%s`." % command)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
