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


def _public_modules():
    try:
        import tomllib as toml_reader
    except ImportError:
        toml_reader = None
    if toml_reader is not None:
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            return toml_reader.load(f)["tool"]["mypy"]["files"]
    import re
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        block = re.search(r"\[tool\.mypy\]\s*\n.*?files = \[(.*?)\]", f.read(), re.S)
    return re.findall(r'"([^"]+)"', block.group(1))


def test_mypy_passes_over_the_public_modules_and_catches_a_wrong_call(tmp_path):
    # one mypy run (it is the slow part): the public modules must be clean, and a user's
    # wrong calls must be caught through their hints
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
    proc = _mypy(tmp_path, *(_public_modules() + [str(user)]))
    assert proc.returncode == 1, proc.stdout
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert all("user_code.py" in line for line in errors), proc.stdout
    assert len(errors) == 3, proc.stdout
    assert '"port"' in errors[0] and '"keyspace"' in errors[1] and '"set_keyspace"' in errors[2]
