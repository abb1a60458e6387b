"""The importable conformance suite, used as a third-party reactor would use it: a reactor class
the compat matrix does not know (``name`` None: no gate), defined outside cqlreactor, run
through :class:`cqlreactor.testing.conformance.ReactorConformance` with nothing but
``reactor_under_test`` set.  (It reuses the asyncore loop: what is under test here is the
suite's packaging -- its fixtures, its servers, rebuilding the class in a new interpreter --
not a new loop.)"""

import pytest

from cqlreactor.reactors import matrix
from cqlreactor.testing.conformance import ReactorConformance

try:
    from cqlreactor.reactors.asyncore_reactor import AsyncoreReactor
except Exception as exc:  # ReactorUnavailable on 3.12+ without pyasyncore
    pytest.skip("asyncore unavailable: %s" % (exc,), allow_module_level=True)


class ThirdPartyReactor(AsyncoreReactor):
    """A reactor the matrix has never heard of."""

    name = None


class TestThirdPartyReactor(ReactorConformance):
    reactor_under_test = ThirdPartyReactor


def test_an_unknown_name_means_no_gate():
    assert ThirdPartyReactor.name not in matrix.reactor_names()
    ThirdPartyReactor(allow_unsupported_reactors=None).stop()
