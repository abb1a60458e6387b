"""The pytest plugin's reactor parametrisation (``cql_reactor``, ``reactor_params``), run in a
child pytest like a user's suite.

The child gets a copy of this repository's tests/conftest.py, so the same run also checks that
the plugin is registered exactly once: by the pytest11 entry point when cqlreactor is installed
(tox), by the conftest when it is not (PYTHONPATH from the tree).
"""

import os

import pytest

from cqlreactor.reactors import matrix
from cqlreactor.testing.pytest_plugin import reactor_params

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USER_TESTS = '''
import pytest


def test_each(cql_reactor):
    from cqlreactor.reactors import get_reactor_class
    assert get_reactor_class(cql_reactor).name == cql_reactor


@pytest.mark.parametrize("cql_reactor", ["asyncore"])
def test_pinned(cql_reactor):
    assert cql_reactor == "asyncore"
'''


def _run(pytester, monkeypatch, allow=None):
    with open(os.path.join(ROOT, "tests", "conftest.py")) as f:
        pytester.makeconftest(f.read())
    pytester.makepyfile(test_user=USER_TESTS)
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if allow is None:
        monkeypatch.delenv(matrix.ALLOW_ENV, raising=False)
    else:
        monkeypatch.setenv(matrix.ALLOW_ENV, allow)
    return pytester.runpytest_subprocess("-v", "-rs", "-p", "no:cacheprovider")


def _expected():
    params = reactor_params()
    skipped = [p for p in params if any(m.name == "skip" for m in p.marks)]
    return params, skipped


def test_one_run_per_reactor_with_readable_ids_and_the_matrix_reasons(pytester, monkeypatch):
    monkeypatch.delenv(matrix.ALLOW_ENV, raising=False)
    params, skipped = _expected()
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=len(params) - len(skipped) + 1, skipped=len(skipped))
    for param in params:
        result.stdout.fnmatch_lines(["*test_user.py::test_each?%s? *" % param.id])
    output = " ".join(result.stdout.str().split())     # -rs lines may wrap
    for param in skipped:
        reason = param.marks[0].kwargs["reason"]
        assert " ".join(reason.split())[:60] in output, output
    result.stdout.fnmatch_lines(["*test_user.py::test_pinned?asyncore? PASSED*"])
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return
    assert "asyncio+uvloop" in [p.id for p in params]


def test_the_opt_in_runs_a_gated_reactor(pytester, monkeypatch):
    gated = [n for n in matrix.reactor_names()
             if matrix.reactor_status(n, load=False).state == "gated"]
    if not gated:
        pytest.skip("no reactor is gated off on this interpreter")
    name = gated[0]
    if not matrix.reactor_status(name, load=False).installed:
        pytest.skip("%s is gated here but not installed" % name)
    result = _run(pytester, monkeypatch, allow=name)
    result.stdout.fnmatch_lines(["*test_user.py::test_each?%s? PASSED*" % name])
