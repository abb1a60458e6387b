"""compat_matrix.yaml: its schema, the gate, the default choice, doctor, the lazy registry, the
wheel, and its agreement with tox.ini."""

import configparser
import json
import os
import re
import subprocess
import sys

import pytest

import cqlreactor
import cqlreactor.reactors as reactors
from cqlreactor.core.errors import ReactorUnavailable, UnsupportedReactorError
from cqlreactor.reactors import matrix
from cqlreactor.reactors.base import Reactor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNING = "%d.%d" % sys.version_info[:2]


def write_matrix(tmp_path, reactors_yaml, order, patched=()):
    path = tmp_path / "matrix.yaml"
    path.write_text(
        "schema: 1\npython_versions: ['3.6', '3.13']\ndefault_order: [%s]\n"
        "patched_first: [%s]\nreactors:\n%s" % (", ".join(order), ", ".join(patched),
                                                reactors_yaml))
    return str(path)


def entry(name, cls, module, python="", requires="[]", problems="[]"):
    return ("  %s:\n    class: %s\n    module: %s\n    summary: test reactor %s\n"
            "    python: '%s'\n    requires: %s\n    install: pip install %s-thing\n"
            "    problems: %s\n" % (name, cls, module, name, python, requires, name, problems))


GATED_HERE = ("\n      - id: broken-here\n        python: '>=3.0'\n        gate: true\n"
              "        reason: it breaks on every Python 3\n"
              "        link: https://example.invalid/issue/1")


# --- the shipped file ------------------------------------------------------------------------

def test_shipped_matrix_is_valid_and_names_every_reactor():
    data = matrix.load_matrix()
    assert set(data["reactors"]) == {"asyncore", "gevent", "eventlet", "libev", "asyncio"}
    assert sorted(data["default_order"]) == sorted(data["reactors"])
    for name, item in data["reactors"].items():
        assert reactors.REACTOR_CLASSES[item["class"]] == name
        assert item["module"].startswith("cqlreactor.reactors.")


def test_root_file_is_the_packaged_file():
    root_file = os.path.join(ROOT, "compat_matrix.yaml")
    assert os.path.islink(root_file)
    assert os.path.realpath(root_file) == os.path.realpath(matrix.MATRIX_PATH)
    assert os.path.dirname(os.path.realpath(matrix.MATRIX_PATH)) == \
        os.path.dirname(os.path.realpath(cqlreactor.__file__))


def test_eventlet_gated_from_37_and_asyncore_from_pyasyncore_on_312():
    assert matrix.gate_problem("eventlet", (3, 6)) is None
    for minor in range(7, 14):
        problem = matrix.gate_problem("eventlet", (3, minor))
        assert problem["link"] == "https://github.com/eventlet/eventlet/issues/526"
    requirements = matrix.load_matrix()["reactors"]["asyncore"]["requires"]
    assert [r.get("pip") for r in requirements if matrix.python_matches(r["python"], (3, 12))] \
        == ["pyasyncore"]
    assert [r.get("pip") for r in requirements if matrix.python_matches(r["python"], (3, 11))] \
        != ["pyasyncore"]
    for name in ("asyncio", "asyncore", "gevent", "libev"):
        for minor in range(6, 14):
            assert matrix.gate_problem(name, (3, minor)) is None, (name, minor)


def _tox():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, "tox.ini"))
    return parser


def _split(value):
    return [v.strip() for v in re.split(r"[,\s]+", value) if v.strip()]


def test_tox_envs_agree_with_the_matrix():
    tox = _tox()
    versions = matrix.load_matrix()["python_versions"]
    wanted = ["py" + v.replace(".", "") for v in versions]
    assert _split(tox.get("tox", "env_list")) == wanted
    labels = dict((k.strip(), v) for k, v in (
        line.split("=", 1) for line in tox.get("tox", "labels").strip().splitlines()))
    assert _split(labels["all"]) == wanted
    assert set(_split(labels["ci"])) >= {"py36", "py311", "py313"}  # eventlet, stdlib, pyasyncore
    # eventlet is installed exactly in the envs where the matrix lets it run
    extras = tox.get("testenv", "extras")
    with_eventlet = set(re.findall(r"^\s*(py\d+)\s*:\s*eventlet\s*$", extras, re.M))
    if re.search(r"^\s*eventlet\s*$", extras, re.M):
        with_eventlet = set(wanted)
    allowed = {"py" + v.replace(".", "") for v in versions
               if matrix.gate_problem("eventlet", tuple(int(x) for x in v.split("."))) is None}
    assert with_eventlet == allowed


def test_python_ranges():
    assert matrix.python_matches("", (3, 6))
    assert matrix.python_matches(">=3.7", (3, 10)) and not matrix.python_matches(">=3.7", (3, 6))
    assert matrix.python_matches(">=3.6,<3.12", (3, 11))
    assert not matrix.python_matches(">=3.6,<3.12", (3, 12))
    assert matrix.python_matches("==3.6", (3, 6)) and not matrix.python_matches("==3.6", (3, 7))
    with pytest.raises(ValueError):
        matrix.python_matches("~3.6", (3, 6))


@pytest.mark.parametrize("problem,message", [
    ("\n      - id: x\n        reason: r\n        link: l\n      - id: x\n        reason: r\n"
     "        link: l", "duplicated"),
    ("\n      - id: x\n        gate: true\n        reason: r", "reason and a link"),
])
def test_schema_errors_are_rejected(tmp_path, problem, message):
    path = write_matrix(tmp_path, entry("one", "OneReactor", "m", problems=problem), ["one"])
    with pytest.raises(ValueError, match=message):
        matrix.load_matrix(path)


# --- the gate ------------------------------------------------------------------------------------

@pytest.fixture
def gated_matrix(tmp_path, monkeypatch):
    monkeypatch.delenv(matrix.ALLOW_ENV, raising=False)
    return write_matrix(tmp_path, entry("broken", "BrokenReactor", "nowhere.broken",
                                        problems=GATED_HERE)
                        + entry("fine", "AsyncioReactor", "cqlreactor.reactors.asyncio_reactor"),
                        ["broken", "fine"])


def test_gated_reactor_raises_with_reason_link_interpreter_alternatives(gated_matrix):
    with pytest.raises(UnsupportedReactorError) as info:
        matrix.check_supported("broken", path=gated_matrix)
    err = info.value
    assert err.reactor == "broken" and err.alternatives == ["fine"]
    assert err.link == "https://example.invalid/issue/1"
    assert "it breaks on every Python 3" in str(err)
    assert sys.version.split()[0] in str(err) and err.interpreter in str(err)
    assert "CQLREACTOR_ALLOW_UNSUPPORTED=broken" in str(err)


def test_environment_opt_in_warns_instead(gated_matrix, monkeypatch):
    monkeypatch.setenv(matrix.ALLOW_ENV, "other, broken")
    with pytest.warns(matrix.UnsupportedReactorWarning, match="broken"):
        matrix.check_supported("broken", path=gated_matrix)


@pytest.mark.parametrize("allow", [["broken"], "broken", True])
def test_argument_opt_in_warns_instead(gated_matrix, allow):
    with pytest.warns(matrix.UnsupportedReactorWarning):
        matrix.check_supported("broken", allow_unsupported_reactors=allow, path=gated_matrix)


def test_default_skips_gated_and_missing(gated_matrix):
    from cqlreactor.reactors.asyncio_reactor import AsyncioReactor
    assert matrix.default_reactor_class(path=gated_matrix) is AsyncioReactor


def test_no_loadable_reactor_lists_each_and_why(tmp_path):
    path = write_matrix(tmp_path, entry("ghost", "GhostReactor", "nowhere.ghost",
                                        requires="[{module: no_such_module_xyz, pip: ghostpkg}]")
                        + entry("broken", "BrokenReactor", "nowhere.broken",
                                problems=GATED_HERE), ["ghost", "broken"])
    with pytest.raises(ReactorUnavailable) as info:
        matrix.default_reactor_class(path=path)
    text = str(info.value)
    assert "ghost:" in text and "no_such_module_xyz" in text and "ghost-thing" in text
    assert "broken: gated" in text and "https://example.invalid/issue/1" in text


@pytest.mark.skipif(sys.version_info < (3, 7), reason="eventlet is allowed on 3.6")
def test_eventlet_is_refused_on_37_plus(monkeypatch):
    monkeypatch.delenv(matrix.ALLOW_ENV, raising=False)
    with pytest.raises(UnsupportedReactorError) as info:
        reactors.get_reactor_class("eventlet")
    assert "issues/526" in str(info.value) and "asyncio" in info.value.alternatives

    class PretendEventlet(Reactor):     # the gate also guards construction from a class
        name = "eventlet"
    with pytest.raises(UnsupportedReactorError):
        PretendEventlet()
    with pytest.warns(matrix.UnsupportedReactorWarning):
        PretendEventlet(allow_unsupported_reactors=["eventlet"])


@pytest.mark.skipif(sys.version_info >= (3, 7), reason="only 3.6 allows eventlet")
def test_eventlet_is_not_gated_on_36():
    matrix.check_supported("eventlet")


def test_unknown_reactor_name():
    with pytest.raises(ValueError, match="asyncio"):
        reactors.get_reactor_class("twisted")


def test_monkey_patching_is_detected(monkeypatch):
    # A stand-in module: really patching would change the whole test process.
    class FakeMonkey(object):
        @staticmethod
        def is_module_patched(name):
            return name == "socket"
    monkeypatch.setitem(sys.modules, "gevent.monkey", FakeMonkey())
    assert matrix._patched_by() == "gevent"


# --- doctor, registry, wheel ---------------------------------------------------------------------

def _run(code_or_args, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop(matrix.ALLOW_ENV, None)
    env.update(env_extra or {})
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=120,
                          universal_newlines=True)


def test_doctor_json():
    proc = _run(["-m", "cqlreactor", "doctor", "--json"])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    states = dict((r["name"], r) for r in report["reactors"])
    assert set(states) == set(matrix.reactor_names())
    assert states["asyncio"]["state"] == "available"
    assert report["default"] in states
    if sys.version_info >= (3, 7):
        assert states["eventlet"]["state"] == "gated"
        assert states["eventlet"]["link"] == "https://github.com/eventlet/eventlet/issues/526"
    for item in states.values():
        assert item["state"] in ("available", "gated", "missing")
        if item["state"] == "missing":
            assert item["reason"] and item["install"]


def test_doctor_text_and_override_env():
    proc = _run(["-m", "cqlreactor", "doctor"], {matrix.ALLOW_ENV: "eventlet"})
    assert proc.returncode == 0, proc.stderr
    for name in matrix.reactor_names():
        assert re.search(r"^%s\s+(AVAILABLE|GATED|MISSING)" % name, proc.stdout, re.M)
    assert "default reactor:" in proc.stdout


def test_registry_is_lazy_and_resolves_names():
    proc = _run(
        "import sys, cqlreactor.reactors as r\n"
        "heavy = [m for m in ('gevent', 'eventlet', 'cffi', 'cqlreactor.reactors.gevent', "
        "'cqlreactor.reactors.asyncio_reactor', 'cqlreactor.reactors.asyncore_reactor', "
        "'cqlreactor.reactors.libev', 'cqlreactor.reactors.eventlet') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from cqlreactor.reactors import AsyncioReactor\n"
        "assert r.get_reactor_class('asyncio') is AsyncioReactor\n"
        "assert r.get_reactor_class(AsyncioReactor) is AsyncioReactor\n"
        "assert r.get_reactor_class('ASYNCIO') is AsyncioReactor\n"
        "try:\n    r.NoSuchReactor\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
        "print('ok')\n")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_built_wheel_ships_the_matrix(tmp_path):
    pytest.importorskip("flit_core")
    proc = _run(["-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                 str(tmp_path), ROOT])
    if proc.returncode != 0:
        pytest.skip("pip could not build the wheel offline: %s" % proc.stderr[-500:])
    import zipfile
    (wheel,) = [p for p in os.listdir(str(tmp_path)) if p.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(str(tmp_path), wheel)) as z:
        shipped = z.read("cqlreactor/compat_matrix.yaml")
    with open(matrix.MATRIX_PATH, "rb") as f:
        assert shipped == f.read()
