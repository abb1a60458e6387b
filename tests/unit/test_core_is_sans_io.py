"""core/ must stay IO-free: no module under it imports sockets, selectors, threads or reactors.

Two checks.  The import test is the real one: every module found on disk under cqlreactor/core/
is imported in a fresh interpreter, and whatever it loads, directly or through the package
``__init__`` or the stdlib, must not include IO, threads, reactors or the session layer.  The
AST test also catches what a fresh interpreter cannot see (``time``, always loaded) and imports
that are already loaded by the time a module runs.
"""

import ast
import json
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORE = ROOT / "cqlreactor" / "core"
FORBIDDEN = {"socket", "select", "selectors", "ssl", "threading", "_thread", "asyncio",
             "asyncore", "gevent", "eventlet", "pyev", "cqlreactor.reactors", "time"}

# --- in a fresh interpreter ---------------------------------------------------------------------

# Modules whose loading means IO, threads or an event loop (top-level names: a submodule of one
# loads it first).
LOADED_FORBIDDEN = ("socket", "_socket", "ssl", "_ssl", "select", "selectors", "threading",
                    "asyncio", "asyncore", "gevent", "eventlet")

# Stdlib modules that load forbidden ones on some interpreters through no fault of ours, as
# (condition, stdlib module on the import chain, reason).  Anything else on the chain fails.
STDLIB_ALLOWANCES = [
    (sys.version_info < (3, 7), "uuid",
     "Python 3.6's uuid imports ctypes.util, which imports subprocess (threading, selectors); "
     "3.7+ use the _uuid extension"),
]

# Run in the child: import one module, report every watched module it loaded and the chain of
# modules (outermost first) whose top-level code was running when it loaded.
CHILD = r"""
import json, os, sys
roots, name, forbidden = sys.argv[1], sys.argv[2], tuple(sys.argv[3].split(","))
sys.path[:0] = roots.split(os.pathsep)


def watched(fullname):
    top = fullname.split(".")[0]
    if top in forbidden:
        return True
    return (fullname.startswith("cqlreactor.") and fullname != "cqlreactor.core"
            and not fullname.startswith("cqlreactor.core."))


class Recorder(object):
    found = {}

    def find_spec(self, fullname, path=None, target=None):
        if watched(fullname) and fullname not in self.found:
            chain, frame = [], sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "?")
                if frame.f_code.co_name == "<module>" and module != "__main__":
                    chain.append(module)
                frame = frame.f_back
            self.found[fullname] = chain[::-1]
        return None


preloaded = sorted(m for m in sys.modules if watched(m))
sys.meta_path.insert(0, Recorder())
__import__(name)
print(json.dumps({"preloaded": preloaded, "loaded": Recorder.found}))
"""


def core_modules():
    names = ["cqlreactor", "cqlreactor.core"]
    names += ["cqlreactor.core." + info.name for info in pkgutil.iter_modules([str(CORE)])]
    return sorted(names)


def start_check(name, *paths):
    # -I: no PYTHON* variables, no user site: the interpreter as bare as a user's.
    roots = os.pathsep.join(str(p) for p in paths + (ROOT,))
    return subprocess.Popen([sys.executable, "-I", "-c", CHILD, roots, name,
                             ",".join(LOADED_FORBIDDEN)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish_check(proc):
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode("utf-8", "replace")
    return json.loads(out.decode("utf-8").strip().splitlines()[-1])


def allowed(chain):
    return any(condition and via in chain for condition, via, _ in STDLIB_ALLOWANCES)


def violations(report):
    problems = ["%s (loaded at interpreter start, cannot be checked)" % (m,)
                for m in report["preloaded"]]
    for loaded, chain in sorted(report["loaded"].items()):
        if not allowed(chain):
            problems.append("%s (import chain: %s)" % (loaded, " -> ".join(chain)))
    return problems


@pytest.fixture(scope="module")
def reports():
    # every module at once, in parallel: a few seconds for the whole core
    procs = dict((name, start_check(name)) for name in core_modules())
    return dict((name, finish_check(proc)) for name, proc in procs.items())


@pytest.mark.parametrize("module", core_modules())
def test_core_module_loads_no_io_in_a_fresh_interpreter(module, reports):
    problems = violations(reports[module])
    assert not problems, "importing %s loads %s; the core must stay sans-IO" % (
        module, "; ".join(problems))


def test_the_fresh_interpreter_check_names_what_was_pulled_in_and_how(tmp_path):
    (tmp_path / "sample_outer.py").write_text("import sample_inner\n", encoding="utf-8")
    (tmp_path / "sample_inner.py").write_text("import selectors\n", encoding="utf-8")
    report = finish_check(start_check("sample_outer", tmp_path))
    problems = violations(report)
    assert any(p.startswith("selectors (import chain: sample_outer -> sample_inner")
               for p in problems), problems


def test_the_fresh_interpreter_check_sees_the_session_layer(tmp_path):
    (tmp_path / "sample_session.py").write_text("import cqlreactor.query\n", encoding="utf-8")
    report = finish_check(start_check("sample_session", tmp_path))
    assert "cqlreactor.query" in report["loaded"]
    assert report["loaded"]["cqlreactor.query"] == ["sample_session"]


def test_stdlib_allowances_are_explained():
    for condition, via, reason in STDLIB_ALLOWANCES:
        assert via and len(reason) > 20


# --- in the source --------------------------------------------------------------------------------

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
    assert len(core_modules()) == len(CORE_FILES) + 1   # + the cqlreactor package itself


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


# --- the lazy package __init__ ------------------------------------------------------------------

def test_the_public_names_still_resolve_from_the_lazy_package():
    import cqlreactor
    names = [n for n in cqlreactor.__all__ if n != "__version__"]
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(cqlreactor, name) is not None, name
    assert set(cqlreactor.__all__) <= set(dir(cqlreactor))
    namespace = {}
    exec("from cqlreactor import *", namespace)
    assert set(names) <= set(namespace)
    from cqlreactor import Cluster, ConsistencyLevel, ProtocolError  # noqa: F401
    assert cqlreactor.policies.RoundRobinPolicy is cqlreactor.RoundRobinPolicy
    with pytest.raises(AttributeError):
        cqlreactor.no_such_name
    with pytest.raises(AttributeError):
        cqlreactor._private_thing
