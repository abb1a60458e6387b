"""Fixtures of the reactor tests (the conformance suite's class brings its own, and reuses
``sim`` from here).

``reactor_class`` is parametrised by the pytest plugin's ``reactor_params`` (from
compat_matrix.yaml): one id per reactor the matrix knows ("asyncio+uvloop" when uvloop drives
asyncio, plus "asyncio" on the stdlib loop there), skipped with the matrix's reason where the
reactor is gated off (eventlet on 3.7+, unless CQLREACTOR_ALLOW_UNSUPPORTED names it) or missing
here.  The server is the simulated cluster's real process (``python -m cqlreactor.testing
cluster``).
"""

import warnings

import pytest

from cqlreactor.reactors import matrix
from cqlreactor.testing.pytest_plugin import reactor_class as _reactor_class
from cqlreactor.testing.pytest_plugin import reactor_params


@pytest.fixture(params=reactor_params(stdlib_asyncio=True))
def reactor_class(request):
    """The Reactor subclass under test (gate applied with the environment's opt-in)."""
    return _reactor_class(request.param)


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
