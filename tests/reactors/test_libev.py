"""libev-specific behaviour: exit without closing (no crash), the binding's build cache, and the
"what to install" report when the binding cannot be built.

Each case runs in a fresh interpreter: interpreter exit is the thing under test, and the binding
is built (or found in the cache) once per process.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from cqlreactor.reactors import matrix

pytest.importorskip("cffi")

if matrix.reactor_status("libev", load=False).state != "available":
    pytest.skip("libev (library or cffi) not available here", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, *args, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(kw.pop("env", {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=kw.pop("timeout", 120))


def assert_clean_exit(proc):
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, "exit code %d:\n%s" % (proc.returncode, text[-3000:])
    for bad in ("Segmentation fault", "Fatal Python error", "Traceback", "core dumped"):
        assert bad not in text, text[-3000:]


# Connect, leave requests in flight (answers still arriving, timers armed, the loop busy) and
# leave the interpreter without closing anything.  The atexit check, registered before
# cqlreactor is imported, runs after cqlreactor's own exit handler (atexit is LIFO) and reports
# whether the loop thread was stopped before the interpreter went on to tear down.
EXIT_SCRIPT = r"""
import atexit, sys, threading

def after_cqlreactor_exit_handler():
    alive = [t.name for t in threading.enumerate() if t.name == "cqlreactor-libev" and t.is_alive()]
    sys.stdout.write("loop threads alive at teardown: %d\n" % len(alive))
    sys.stdout.flush()

atexit.register(after_cqlreactor_exit_handler)

from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.messages import QueryMessage, QueryParameters
from cqlreactor.reactors.base import Endpoint
from cqlreactor.reactors.libev import LibevReactor

reactor = LibevReactor()
conn = reactor.connect(Endpoint(sys.argv[1], int(sys.argv[2])), heartbeat_interval=0.05)
event = threading.Event()
conn.send(QueryMessage("SELECT v FROM libevfast", QueryParameters(ConsistencyLevel.ONE)),
          lambda r: event.set(), timeout=10)
assert event.wait(10)
for i in range(500):                        # answers arrive while the interpreter exits
    conn.send(QueryMessage("SELECT v FROM libevfast", QueryParameters(ConsistencyLevel.ONE)),
              lambda r: None, timeout=30)
conn.send(QueryMessage("SELECT v FROM libevslow", QueryParameters(ConsistencyLevel.ONE)),
          lambda r: None, timeout=30)
reactor.call_later(0.001, lambda: None)
print("exiting without close")
sys.exit(0)
"""


def test_exit_without_closing_is_clean(cluster):
    cluster.prime("SELECT v FROM libevfast", rows=[[1]], columns=[("v", "int")])
    cluster.prime("SELECT v FROM libevslow", rows=[[1]], columns=[("v", "int")], delay=30)
    for _ in range(3):                          # a crash at teardown is a race: try a few times
        proc = run_python(EXIT_SCRIPT, cluster.contact_points[0], cluster.port)
        assert_clean_exit(proc)
        assert "exiting without close" in proc.stdout
        assert "loop threads alive at teardown: 0" in proc.stdout, proc.stdout


def test_exit_with_an_idle_reactor_that_never_connected():
    proc = run_python("""
        from cqlreactor.reactors.libev import LibevReactor
        r = LibevReactor()
        r.call_later(60, print, "never")
        print("ok")
    """)
    assert_clean_exit(proc)
    assert proc.stdout.strip() == "ok"


BUILD_SCRIPT = r"""
from cqlreactor.reactors import _libev_cffi
_libev_cffi.load(prefer_pyev=False)
import os
path = _libev_cffi._extension_path(_libev_cffi.cache_dir())
st = os.stat(path)
print(_libev_cffi.BUILT_NOW, path, st.st_ino, st.st_mtime)
from cqlreactor.reactors.libev import LibevReactor
r = LibevReactor()
e = r.make_event()
r.call_later(0.01, e.set)
assert e.wait(5)
r.stop()
"""


def test_binding_is_built_once_then_reused_from_the_cache(tmp_path):
    env = {"CQLREACTOR_CACHE_DIR": str(tmp_path)}
    # three processes race to build into the same empty cache: all must load a whole file
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              env=dict(os.environ, PYTHONPATH=ROOT, **env))
             for _ in range(3)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(out.split())
    assert any(o[0] == "True" for o in outputs)             # somebody built it
    paths = set(o[1] for o in outputs)
    assert len(paths) == 1 and paths.pop().startswith(str(tmp_path))
    entries = os.listdir(os.path.dirname(outputs[0][1]))
    assert not [e for e in entries if e.startswith("build-")], entries   # no leftovers

    final = os.stat(outputs[0][1])
    again = run_python(BUILD_SCRIPT, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    built_now, path, inode, mtime = again.stdout.split()
    assert built_now == "False"                             # loaded from the cache
    assert int(inode) == final.st_ino and float(mtime) == final.st_mtime


def test_missing_compiler_makes_libev_missing_with_what_to_install(tmp_path):
    proc = run_python("""
        import json
        from cqlreactor.core.errors import ReactorUnavailable
        from cqlreactor.reactors import matrix
        try:
            import cqlreactor.reactors.libev
        except ReactorUnavailable as exc:
            print(json.dumps({"error": str(exc)}))
        else:
            print(json.dumps({"error": None}))
        status = matrix.reactor_status("libev")
        print(json.dumps({"state": status.state, "reason": status.reason}))
    """, env={"CQLREACTOR_CACHE_DIR": str(tmp_path), "CC": "/nonexistent/cc",
              "CQLREACTOR_LIBEV_NO_PYEV": "1", "CQLREACTOR_LIBEV_ABI": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    first, second = [json.loads(line) for line in proc.stdout.splitlines()]
    assert first["error"] and "apt-get install libev4 libev-dev" in first["error"]
    assert "C compiler" in first["error"]
    assert second["state"] == "missing"
    assert "libev-dev" in second["reason"] and "C compiler" in second["reason"]


# libev chosen explicitly under gevent/eventlet monkey-patching: test_monkey_patched.py (with
# every other reactor).


# --- a failed build: remembered, quiet, and saying what is missing ----------------------------

FAILED_BUILD_SCRIPT = r"""
import io, json, logging, os, sys
if os.environ.get("TEST_HIDE_SETUPTOOLS"):      # a venv without setuptools (same interpreter)
    sys.modules["setuptools"] = None
import cffi
compiles = []
original = cffi.FFI.compile
def counting(self, *args, **kwargs):
    compiles.append(1)
    return original(self, *args, **kwargs)
cffi.FFI.compile = counting
debug = io.StringIO()
logger = logging.getLogger("cqlreactor.reactors._libev_cffi")
logger.addHandler(logging.StreamHandler(debug))
logger.setLevel(logging.DEBUG)
from cqlreactor.core.errors import ReactorUnavailable
from cqlreactor.reactors import get_reactor_class, matrix
errors = []
for attempt in range(3):        # as every Cluster() of an application would
    try:
        get_reactor_class("libev")
    except ReactorUnavailable as exc:
        errors.append(str(exc))
status = matrix.reactor_status("libev")
print(json.dumps({"compiles": len(compiles), "errors": errors, "debug": debug.getvalue(),
                  "state": status.state}))
"""


def test_a_failed_build_is_remembered_quietly_and_names_what_is_missing(tmp_path):
    import json
    env = {"CQLREACTOR_CACHE_DIR": str(tmp_path), "CQLREACTOR_LIBEV_NO_PYEV": "1",
           "CQLREACTOR_LIBEV_ABI": "0",    # the build's failure itself, not the fallback
           "CFLAGS": "-include /nonexistent/cqlr-missing-header.h"}

    def run(**extra):
        proc = run_python(FAILED_BUILD_SCRIPT, env=dict(env, **extra))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "cqlr-missing-header" not in proc.stderr and "error:" not in proc.stderr, \
            proc.stderr[-3000:]     # the compiler's output is not the user's business
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first = run()
    assert first["compiles"] == 1, first             # once per process, not once per Cluster
    assert len(first["errors"]) >= 3 and len(set(first["errors"])) == 1
    assert "building the libev binding failed" in first["errors"][0]
    assert "cqlr-missing-header.h" in first["debug"]  # at DEBUG for whoever asks
    assert first["state"] == "missing"

    again = run()                                    # another process: remembered on disk
    assert again["compiles"] == 0 and again["errors"][0] == first["errors"][0]
    assert run(CQLREACTOR_LIBEV_REBUILD="1")["compiles"] == 1
    changed = run(CC="/nonexistent/cc")              # what the build depends on changed
    assert changed["compiles"] == 1
    assert "missing here: a C compiler" in changed["errors"][0], changed["errors"][0]


def test_a_failure_without_setuptools_does_not_stand_where_setuptools_is(tmp_path):
    """Every venv of one interpreter shares the cache directory: a build that failed in a venv
    without setuptools (on 3.12+ cffi cannot build without it) is retried, not remembered, in one
    that has it -- the failure CI met when an older run had left such a record behind."""
    import json
    env = {"CQLREACTOR_CACHE_DIR": str(tmp_path), "CQLREACTOR_LIBEV_NO_PYEV": "1",
           "CQLREACTOR_LIBEV_ABI": "0",
           "CFLAGS": "-include /nonexistent/cqlr-missing-header.h"}

    def run(**extra):
        proc = run_python(FAILED_BUILD_SCRIPT, env=dict(env, **extra))
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    hidden = run(TEST_HIDE_SETUPTOOLS="1")
    assert hidden["errors"] and hidden["state"] == "missing"
    if sys.version_info >= (3, 12):
        assert "setuptools (pip install setuptools)" in hidden["errors"][0], hidden["errors"][0]
    assert run(TEST_HIDE_SETUPTOOLS="1")["compiles"] == 0       # remembered there
    assert run()["compiles"] == 1                                # retried where it is


def test_the_hint_names_every_missing_part(monkeypatch):
    from cqlreactor.reactors import _libev_cffi
    monkeypatch.setattr(_libev_cffi, "_find_ev_header", lambda: None)
    monkeypatch.setattr(_libev_cffi, "_find_compiler", lambda: None)
    monkeypatch.setattr(_libev_cffi, "_python_header", lambda: None)
    assert _libev_cffi.missing_build_parts() == [
        "the libev headers (ev.h)", "a C compiler", "the Python headers (Python.h)"]
    text = _libev_cffi._failure_text(RuntimeError("boom"))
    assert ("missing here: the libev headers (ev.h), a C compiler, the Python headers "
            "(Python.h)") in text
    assert "python3-dev" in text and "libev-dev" in text


# --- the binding without headers or a compiler (cffi ABI mode over libev.so.4) ----------------

def test_the_abi_mode_layout_is_the_compilers():
    """ABI mode cannot check struct layouts: every size and offset it declares must be what the
    compiler made of ev.h (the API build, which declares the same fields)."""
    import cffi
    from cqlreactor.reactors import _libev_abi, _libev_cffi
    _libev_cffi._load_api()
    api = _libev_cffi._ffi
    abi = cffi.FFI()
    abi.cdef(_libev_abi.ABI_CDEF)
    for struct, fields in sorted(_libev_abi.STRUCT_FIELDS.items()):
        assert abi.sizeof(struct) == api.sizeof(struct), struct
        for field in fields:
            assert abi.offsetof(struct, field) == api.offsetof(struct, field), (struct, field)


ABI_SCRIPT = r"""
import sys, threading
from cqlreactor.reactors import _libev_cffi
from cqlreactor.reactors.libev import LibevReactor
from cqlreactor.testing.conformance import Collector, query
reactor = LibevReactor()
print(reactor.backend)
conn = reactor.connect((sys.argv[1], int(sys.argv[2])), heartbeat_interval=0.2)
collector = Collector(reactor, 300)
for i in range(300):
    conn.send(query("SELECT v FROM abi0"), collector.callback(i), timeout=10)
assert collector.wait(20)
assert all(r.rows == [(3,)] for r in collector.results.values())
fired = []
done = reactor.make_event()
reactor.call_later(0.05, lambda: (fired.append(2), done.set()))
reactor.call_later(0.01, fired.append, 1)
reactor.call_later(0.02, fired.append, 9).cancel()
assert done.wait(5) and fired == [1, 2], fired
conn.close()
reactor.stop()
print("ok")
"""


@pytest.mark.parametrize("how", ["forced", "fallback"])
def test_the_abi_mode_binding_drives_the_reactor(cluster, tmp_path, how):
    """CQLREACTOR_LIBEV_ABI=1 forces it; without a compiler it is what a failed build falls
    back to, silently (only libev.so.4 needed, as ``apt-get install libev4`` gives)."""
    cluster.prime("SELECT v FROM abi0", rows=[[3]], columns=[("v", "int")])
    env = {"CQLREACTOR_CACHE_DIR": str(tmp_path), "CQLREACTOR_LIBEV_NO_PYEV": "1"}
    if how == "forced":
        env["CQLREACTOR_LIBEV_ABI"] = "1"
    else:
        env["CC"] = "/nonexistent/cc"
    proc = run_python(ABI_SCRIPT, cluster.contact_points[0], cluster.port, env=env)
    assert_clean_exit(proc)
    lines = proc.stdout.split("\n")
    assert lines[0].startswith("cffi ABI mode (libev 4."), proc.stdout
    assert lines[1] == "ok", proc.stdout
    assert proc.stderr == "", proc.stderr[-3000:]
