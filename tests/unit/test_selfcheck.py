"""``python -m cqlreactor selfcheck``: the in-memory end-to-end check of the core."""

import os
import subprocess
import sys

from cqlreactor import selfcheck
from cqlreactor.core import messages as m

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_run_passes_and_reports(capsys):
    assert selfcheck.run(verbose=True) == 0
    out = capsys.readouterr().out
    for text in ("v5 handshake with auth", "QUERY returns rows in segments",
                 "request timeout", "orphan", "ProtocolVersionRejected(retry 4)",
                 "v4 handshake on a new connection", "all checks passed"):
        assert text in out
    assert "FAIL" not in out


def test_quiet_run_prints_nothing(capsys):
    assert selfcheck.run(verbose=False) == 0
    assert capsys.readouterr().out == ""


def test_a_broken_core_fails_the_selfcheck(monkeypatch, capsys):
    # the server answering every SELECT with no rows must be caught
    monkeypatch.setattr(selfcheck.MemoryServer, "_result", lambda self, q: m.VoidResult())
    assert selfcheck.run(verbose=True) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_crash_is_a_failed_check(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(selfcheck, "_check_v4_fallback", boom)
    assert selfcheck.run(verbose=True) == 1
    assert "RuntimeError" in capsys.readouterr().out


def test_command_line():
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "cqlreactor", "selfcheck", "-q"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
