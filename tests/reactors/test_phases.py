"""The driver's phase table (reactors/phases.py): the happy paths, ending from anywhere, and a
named error for everything else."""

import pytest

from cqlreactor.core.errors import IllegalStateTransition
from cqlreactor.reactors.phases import CONNECTING, TRANSITIONS, Phase, Step, advance


def walk(*steps):
    phase = Phase.NEW
    for step in steps:
        phase = advance(phase, step)
    return phase


def test_plain_and_tls_paths_reach_ready():
    assert walk(Step.OPEN, Step.TCP_CONNECTED, Step.CQL_READY) is Phase.READY
    assert walk(Step.OPEN, Step.TCP_CONNECTED_TLS, Step.TLS_DONE, Step.CQL_READY) is Phase.READY


def test_every_phase_ends_and_ending_is_idempotent():
    for phase in Phase:
        assert advance(phase, Step.END) is Phase.ENDED


def test_anything_else_is_a_named_error():
    legal = set(TRANSITIONS)
    for phase in Phase:
        for step in Step:
            if (phase, step) not in legal:
                with pytest.raises(IllegalStateTransition) as info:
                    advance(phase, step)
                assert phase.name in str(info.value) and step.value in str(info.value)


def test_connect_timeout_phases_and_their_labels():
    assert CONNECTING == {Phase.TCP, Phase.TLS, Phase.CQL}
    assert [p.label for p in (Phase.TCP, Phase.TLS, Phase.CQL)] == [
        "TCP connect", "TLS handshake", "CQL handshake"]
