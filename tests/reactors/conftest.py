"""Fixtures of the reactor conformance suite.

``reactor_class`` is parametrised from compat_matrix.yaml: one id per reactor the matrix knows
("asyncio+uvloop" when uvloop drives asyncio), skipped with the matrix's reason where the reactor
is gated off (eventlet on 3.7+, unless CQLREACTOR_ALLOW_UNSUPPORTED names it) or missing here.
The server is the simulated cluster's real process (``python -m cqlreactor.testing cluster``).
"""

import warnings

import pytest

from cqlreactor.reactors import matrix

try:
    import uvloop  # noqa: F401
    HAVE_UVLOOP = True
except ImportError:
    HAVE_UVLOOP = False


def reactor_params():
    """pytest.param per reactor of the matrix, with readable ids and skips with reasons."""
    allowed = matrix.allowed_unsupported()
    params = []
    for name in matrix.reactor_names():
        status = matrix.reactor_status(name, load=True)
        ident = "asyncio+uvloop" if name == "asyncio" and HAVE_UVLOOP else name
        marks = []
        if status.state == "gated" and name not in allowed and "*" not in allowed:
            marks.append(pytest.mark.skip(reason="%s is gated off on this interpreter: %s (%s)"
                                          % (name, status.reason, status.link)))
        elif status.state == "gated" and not status.installed:
            marks.append(pytest.mark.skip(reason="%s allowed but not installed" % name))
        elif status.state == "missing":
            marks.append(pytest.mark.skip(reason="%s not available here: %s"
                                          % (name, status.reason)))
        elif status.state == "gated":
            marks.append(pytest.mark.filterwarnings(
                "ignore::cqlreactor.reactors.matrix.UnsupportedReactorWarning"))
        params.append(pytest.param(name, id=ident, marks=marks))
        if name == "asyncio" and HAVE_UVLOOP:   # the stdlib loop too, where uvloop would win
            params.append(pytest.param("asyncio-stdlib", id="asyncio", marks=marks))
    return params


@pytest.fixture(params=reactor_params())
def reactor_class(request):
    """The Reactor subclass under test (gate applied with the environment's opt-in)."""
    if request.param == "asyncio-stdlib":
        from cqlreactor.reactors.asyncio_reactor import AsyncioReactor

        class StdlibAsyncioReactor(AsyncioReactor):
            """AsyncioReactor with uvloop turned off."""

            def __init__(self, **kwargs):
                kwargs.setdefault("use_uvloop", False)
                super(StdlibAsyncioReactor, self).__init__(**kwargs)
        return StdlibAsyncioReactor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
        return matrix.get_reactor_class(request.param)


@pytest.fixture
def reactor(reactor_class):
    """A fresh reactor instance, stopped after the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
        instance = reactor_class()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def sim():
    """One single-node simulated cluster for the whole run (faults cleared after each use)."""
    from cqlreactor.testing.cluster import SimulatedCluster
    with SimulatedCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture
def cluster(sim):
    """The shared simulated cluster, its primes and faults cleared after the test."""
    yield sim
    sim.clear()
