"""One conformance suite for every reactor, against the simulated cluster's real process.

The suite itself is importable (:mod:`cqlreactor.testing.conformance`, the one a third-party
reactor runs in its own tests); here it runs once per reactor of compat_matrix.yaml, with the
same parametrisation as the rest of tests/reactors (``reactor_params(stdlib_asyncio=True)``:
asyncio, asyncore, libev, gevent and eventlet, skipped with the matrix's reason where gated off
or missing).
"""

import pytest

from cqlreactor.testing.conformance import ReactorConformance
from cqlreactor.testing.pytest_plugin import reactor_class as _reactor_class
from cqlreactor.testing.pytest_plugin import reactor_params


class TestConformance(ReactorConformance):

    @pytest.fixture(params=reactor_params(stdlib_asyncio=True))
    def reactor_class(self, request):
        return _reactor_class(request.param)

    @pytest.fixture
    def sim(self, sim):
        """The session's simulated cluster of conftest.py, not a second one."""
        return sim


def test_asyncio_reactor_uses_uvloop_only_when_asked_or_installed():
    import asyncio
    from cqlreactor.reactors.asyncio_reactor import AsyncioReactor, uvloop
    plain = AsyncioReactor(use_uvloop=False)
    try:
        plain.start()
        assert plain.loop_name == "asyncio"
        assert type(plain._loop).__module__.startswith("asyncio")
    finally:
        plain.stop()
    default = AsyncioReactor()
    try:
        default.start()
        if uvloop is None:
            assert default.loop_name == "asyncio"
            with pytest.raises(ValueError, match="uvloop"):
                AsyncioReactor(use_uvloop=True)
        else:
            assert default.loop_name == "asyncio+uvloop"
            assert isinstance(default._loop, uvloop.Loop)
        assert isinstance(default._loop, asyncio.AbstractEventLoop)
    finally:
        default.stop()
