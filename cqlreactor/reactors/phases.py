"""The phases of one driven connection's stream, as one table (the CQL side has its own, larger
state machine in ``core/states.py``; this one covers what happens before and around it).

::

    NEW --open--> TCP --tcp_connected_tls--> TLS --tls_done--> CQL --cql_ready--> READY
                   |                                            ^
                   +---------------tcp_connected----------------+

    any phase --end--> ENDED        (failed, closed, stopped, or inherited across fork)

``ReactorConnection`` (driver.py) does the work of each step and asks :func:`advance` for the
next phase; a step the table does not list raises :class:`IllegalStateTransition`, which the
driver turns into a failed connection rather than a stream in a phase nobody expects.  Events
that can legitimately arrive late (a connect completing after ``close()``, a second ``end``) are
filtered by the driver before they reach the table, or listed here as self-loops.
"""

import enum

from cqlreactor.core.errors import IllegalStateTransition

__all__ = ["Phase", "Step", "TRANSITIONS", "advance", "CONNECTING"]


class Phase(enum.Enum):
    """A phase; ``label`` is how errors name it ("timed out after 5s in the TLS handshake")."""

    NEW = "TCP connect"             # made, the loop has not started the connect yet
    TCP = "TCP connect"             # non-blocking connect in progress
    TLS = "TLS handshake"
    CQL = "CQL handshake"           # the core's OPTIONS/STARTUP/AUTH exchange
    READY = "ready"                 # requests flow
    ENDED = "ended"                 # nothing more happens; every callback has run

    def __new__(cls, label):
        member = object.__new__(cls)
        member._value_ = len(cls.__members__)     # NEW and TCP share a label, not a value
        member.label = label
        return member


class Step(enum.Enum):
    OPEN = "open"                               # the loop starts the TCP connect
    TCP_CONNECTED = "tcp_connected"             # connected, no TLS: the CQL handshake starts
    TCP_CONNECTED_TLS = "tcp_connected_tls"     # connected, TLS configured: ClientHello goes out
    TLS_DONE = "tls_done"                       # handshake (and identity check) complete
    CQL_READY = "cql_ready"                     # the core reported ConnectionReady
    END = "end"                                 # failed, closed, stopped or forgotten after fork


#: the phases in which the connect timeout runs
CONNECTING = frozenset([Phase.TCP, Phase.TLS, Phase.CQL])

#: (Phase, Step) -> Phase; anything missing is illegal.  END leads every phase, ENDED included
#: (ending is idempotent), to ENDED.
TRANSITIONS = dict(((phase, Step.END), Phase.ENDED) for phase in Phase)
TRANSITIONS.update({
    (Phase.NEW, Step.OPEN): Phase.TCP,
    (Phase.TCP, Step.TCP_CONNECTED): Phase.CQL,
    (Phase.TCP, Step.TCP_CONNECTED_TLS): Phase.TLS,
    (Phase.TLS, Step.TLS_DONE): Phase.CQL,
    (Phase.CQL, Step.CQL_READY): Phase.READY,
})


def advance(phase, step):
    """Where ``step`` leads from ``phase``; IllegalStateTransition if the table says nowhere."""
    following = TRANSITIONS.get((phase, step))
    if following is None:
        raise IllegalStateTransition("connection step %s is not allowed in phase %s"
                                     % (step.value, phase.name))
    return following
