"""Type hints: mypy passes over the public modules ([tool.mypy] in pyproject.toml), py.typed
ships in the package, and a user's wrong call is caught through our hints.  Runs where mypy is
installed (the test extra has it on Python 3.9+)."""

import os
import subprocess
import sys
import textwrap

import pytest

import cqlreactor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mypy(tmp_path, *args):
    pytest.importorskip("mypy", reason="mypy is not installed here (the test extra installs "
                                       "it on Python 3.9+)")
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
                           "--config-file", os.path.join(ROOT, "pyproject.toml")] + list(args),
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)


def test_py_typed_ships_in_the_package():
    assert os.path.exists(os.path.join(os.path.dirname(cqlreactor.__file__), "py.typed"))


def test_mypy_passes_over_the_public_modules(tmp_path):
    proc = _mypy(tmp_path)
    assert proc.returncode == 0, proc.stdout


def test_a_wrong_call_is_caught_through_the_hints(tmp_path):
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent("""
        from cqlreactor.cluster import Cluster
        from cqlreactor.core.auth import PlainTextAuthProvider

        cluster = Cluster(["10.0.0.1"], port="9042",
                          auth_provider=PlainTextAuthProvider("u", "p"))
        session = cluster.connect(keyspace=1)
        rows = session.execute("SELECT 1")
        rows.one()
        session.set_keyspace(None)
    """))
    proc = _mypy(tmp_path, str(user))
    assert proc.returncode == 1, proc.stdout
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 3, proc.stdout
    assert all("user_code.py" in line for line in errors)
    assert '"port"' in errors[0] and '"keyspace"' in errors[1] and '"set_keyspace"' in errors[2]
