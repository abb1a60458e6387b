"""Hypothesis over every decoder of the core and a connection in every state
(cqlreactor/testing/fuzzing.py has the targets): random bytes end as a result or a
ProtocolError, never another exception, and no ProtocolError that only wraps a bug-shaped one
(TypeError, KeyError, ...). The default run tries a few hundred inputs in all; the ``slow``
variant many more; fuzz/atheris_decoders.py runs the same targets for as long as you like.
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cqlreactor.testing import fuzzing

DEFAULT_EXAMPLES = 60       # per target: ~600 in all
SLOW_EXAMPLES = 4000

# a prefix of parameter bytes (version, compression, split, type, opcode), then the input
inputs = st.binary(max_size=300) | st.builds(
    lambda params, body: params + body, st.binary(min_size=3, max_size=8), st.binary(max_size=200))

NAMES = list(fuzzing.TARGETS)


def _check(name, data):
    fuzzing.TARGETS[name](data)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=DEFAULT_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=inputs)
def test_only_protocol_errors(name, data):
    _check(name, data)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=SLOW_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=inputs)
def test_only_protocol_errors_long(name, data):
    _check(name, data)


@pytest.mark.parametrize("state", fuzzing.CONNECTION_STATES)
def test_every_connection_state_is_reached(state):
    conn = fuzzing.connection_in(state)
    assert conn.state.name == state.replace("_WITH_ORPHAN", "")
    if state == "READY_WITH_ORPHAN":
        assert conn.orphaned


def test_a_wrapped_bug_is_reported():
    from cqlreactor.core.errors import ProtocolError
    try:
        try:
            {}["missing"]
        except KeyError:
            raise ProtocolError("malformed body")
    except ProtocolError as exc:
        with pytest.raises(fuzzing.WrappedBug, match="KeyError"):
            fuzzing._unwrapped(exc)


def test_run_dispatches_to_every_target():
    for i in range(len(NAMES)):
        fuzzing.run(bytes([i]) + b"\x00\x01\x02garbage")
