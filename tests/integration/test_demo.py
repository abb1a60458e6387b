"""The README's main job (``python -m cqlreactor demo``) runs to the end on this interpreter."""

import subprocess
import sys


def test_demo_passes_on_every_available_reactor():
    proc = subprocess.run([sys.executable, "-m", "cqlreactor", "demo"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=240)
    assert proc.returncode == 0, proc.stdout
    assert "selfcheck: all checks passed" in proc.stdout
    assert "demo: all reactors passed" in proc.stdout
    assert "1000 rows paged" in proc.stdout
