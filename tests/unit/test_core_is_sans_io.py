"""core/ must stay IO-free: no module under it imports sockets, selectors, threads or reactors."""

import ast
import pathlib

import pytest

CORE = pathlib.Path(__file__).resolve().parents[2] / "cqlreactor" / "core"
FORBIDDEN = {"socket", "select", "selectors", "ssl", "threading", "_thread", "asyncio",
             "asyncore", "gevent", "eventlet", "pyev", "cqlreactor.reactors", "time"}


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


CORE_FILES = sorted(CORE.glob("*.py"))


def test_core_has_modules():
    assert CORE_FILES, "no modules found under %s" % CORE


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_module_imports_no_io(path):
    bad = [name for name in _imported_modules(path)
           if name in FORBIDDEN or name.split(".")[0] in FORBIDDEN
           or name.startswith("cqlreactor.reactors")]
    assert not bad, "%s imports IO/clock modules %r; the core must stay sans-IO" % (path.name, bad)


def test_checker_catches_a_socket_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom socket import socket\n", encoding="utf-8")
    assert "socket" in list(_imported_modules(sample))
