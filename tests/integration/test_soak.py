"""The soak in CI: ``python -m benchmarks.soak --minutes 2`` (faults at random over every
reactor here, the fault matrix's accounting) exits 0: no request lost, none never completed,
none past its timeout, only failures a fault explains, recovery after every fault. ``slow``:
it takes the two minutes plus start-up."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_minute_soak():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--minutes", "2"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=840)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert "| lost |" in proc.stdout, proc.stdout[-5000:]
