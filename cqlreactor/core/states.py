"""The connection state machine: every state, every input and every allowed transition.

Everything that decides *which state a connection is in* lives in this file, as one table
(``TRANSITIONS``) mapping ``(state, input)`` to the next state.  ``connection.py`` performs the
side effects (encoding messages, failing requests) and asks ``transition()`` for the next state;
an input that the table does not list raises :class:`IllegalStateTransition`.  For inputs that
come from the peer (``Input.from_peer``) the connection then becomes DEFUNCT instead of raising
to the caller, because the bytes were the server's fault, not the caller's.

Happy path::

    IDLE --initiate--> OPTIONS_SENT --recv SUPPORTED--> STARTUP_SENT --recv READY--> READY
                                                          |                          ^
                                             recv AUTHENTICATE                      |
                                                          v                          |
                                                   AUTHENTICATING --recv AUTH_SUCCESS
                                                    (AUTH_CHALLENGE loops)

    READY --close--> CLOSING --(pending failed, output dropped)--> CLOSED
    any live state --malformed bytes / lost socket / missed heartbeat / handshake error--> DEFUNCT

The server's answer to STARTUP (READY or AUTHENTICATE) is the last bare envelope of a v5
handshake: the SASL exchange already travels in segments.

CLOSING is the short state in which ``close()`` fails the pending requests; nothing is sent and
no new request is accepted once it is entered.  ``diagram()`` renders the table as Graphviz dot
text for the docs.
"""

import enum

from .errors import IllegalStateTransition

__all__ = ["ConnectionState", "Input", "TRANSITIONS", "transition", "allowed_inputs", "diagram",
           "LIVE_STATES", "HANDSHAKE_STATES", "TERMINAL_STATES"]


class ConnectionState(enum.Enum):
    IDLE = "IDLE"                       # created, nothing sent yet
    OPTIONS_SENT = "OPTIONS_SENT"       # OPTIONS sent, waiting for SUPPORTED
    STARTUP_SENT = "STARTUP_SENT"       # STARTUP sent, waiting for READY or AUTHENTICATE
    AUTHENTICATING = "AUTHENTICATING"   # SASL exchange in progress
    READY = "READY"                     # requests flow
    CLOSING = "CLOSING"                 # close() in progress: pending requests being failed
    CLOSED = "CLOSED"                   # closed by us (orderly)
    DEFUNCT = "DEFUNCT"                 # failed: protocol error, lost socket, handshake error

    def __repr__(self):
        return "ConnectionState.%s" % (self.name,)


class Input(enum.Enum):
    """What can happen to a connection.  ``from_peer`` says whether the server caused it."""

    # local inputs (the caller or the clock)
    INITIATE = ("INITIATE", False)                  # initiate(): queue OPTIONS
    SEND_REQUEST = ("SEND_REQUEST", False)          # send_request()
    REQUEST_TIMEOUT = ("REQUEST_TIMEOUT", False)    # a request's deadline passed
    HEARTBEAT_TICK = ("HEARTBEAT_TICK", False)      # heartbeat interval elapsed, answer seen
    HEARTBEAT_MISSED = ("HEARTBEAT_MISSED", False)  # heartbeat interval elapsed, no answer
    CLOSE = ("CLOSE", False)                        # close()
    CLOSE_DONE = ("CLOSE_DONE", False)              # close() has failed every pending request
    CONNECTION_LOST = ("CONNECTION_LOST", False)    # connection_lost(): the socket is gone
    AUTH_FAILED = ("AUTH_FAILED", False)            # no authenticator, or it raised
    TOO_MANY_ORPHANS = ("TOO_MANY_ORPHANS", False)  # timed-out requests the server never answers
    # peer inputs (bytes received)
    RECV_SUPPORTED = ("RECV_SUPPORTED", True)
    RECV_READY = ("RECV_READY", True)
    RECV_AUTHENTICATE = ("RECV_AUTHENTICATE", True)
    RECV_AUTH_CHALLENGE = ("RECV_AUTH_CHALLENGE", True)
    RECV_AUTH_SUCCESS = ("RECV_AUTH_SUCCESS", True)
    RECV_ERROR = ("RECV_ERROR", True)               # ERROR answering a handshake message
    RECV_VERSION_REJECTED = ("RECV_VERSION_REJECTED", True)  # ERROR naming protocol versions
    RECV_RESPONSE = ("RECV_RESPONSE", True)         # a response to a request in flight
    RECV_ORPHAN_RESPONSE = ("RECV_ORPHAN_RESPONSE", True)    # late answer to a timed-out request
    RECV_EVENT = ("RECV_EVENT", True)               # EVENT on stream -1
    RECV_UNEXPECTED = ("RECV_UNEXPECTED", True)     # a message no state expects (never in table)
    RECV_MALFORMED = ("RECV_MALFORMED", True)       # bytes that do not decode

    def __init__(self, label, from_peer):
        self.label = label
        self.from_peer = from_peer

    def __repr__(self):
        return "Input.%s" % (self.name,)


S = ConnectionState
I = Input  # noqa: E741  (short alias keeps the table readable)

HANDSHAKE_STATES = frozenset([S.OPTIONS_SENT, S.STARTUP_SENT, S.AUTHENTICATING])
LIVE_STATES = frozenset([S.IDLE, S.READY]) | HANDSHAKE_STATES
TERMINAL_STATES = frozenset([S.CLOSED, S.DEFUNCT])


def _build():
    table = {
        (S.IDLE, I.INITIATE): S.OPTIONS_SENT,
        # handshake
        (S.OPTIONS_SENT, I.RECV_SUPPORTED): S.STARTUP_SENT,
        (S.OPTIONS_SENT, I.RECV_VERSION_REJECTED): S.DEFUNCT,
        (S.STARTUP_SENT, I.RECV_VERSION_REJECTED): S.DEFUNCT,
        (S.STARTUP_SENT, I.RECV_READY): S.READY,
        (S.STARTUP_SENT, I.RECV_AUTHENTICATE): S.AUTHENTICATING,
        (S.AUTHENTICATING, I.RECV_AUTH_CHALLENGE): S.AUTHENTICATING,
        (S.AUTHENTICATING, I.RECV_AUTH_SUCCESS): S.READY,
        (S.AUTHENTICATING, I.AUTH_FAILED): S.DEFUNCT,
        # requests
        (S.READY, I.SEND_REQUEST): S.READY,
        (S.READY, I.RECV_RESPONSE): S.READY,
        (S.READY, I.RECV_ORPHAN_RESPONSE): S.READY,
        (S.READY, I.RECV_EVENT): S.READY,
        (S.READY, I.REQUEST_TIMEOUT): S.READY,
        (S.READY, I.HEARTBEAT_TICK): S.READY,
        (S.READY, I.HEARTBEAT_MISSED): S.DEFUNCT,
        (S.READY, I.TOO_MANY_ORPHANS): S.DEFUNCT,
        # closing
        (S.CLOSING, I.CLOSE_DONE): S.CLOSED,
    }
    for state in HANDSHAKE_STATES:
        table[(state, I.RECV_ERROR)] = S.DEFUNCT
    for state in LIVE_STATES:
        table[(state, I.CLOSE)] = S.CLOSING
        table[(state, I.CONNECTION_LOST)] = S.DEFUNCT
        table[(state, I.RECV_MALFORMED)] = S.DEFUNCT
    # Once closed or defunct, late bytes and repeated close/lost calls are harmless: a socket
    # may still deliver data queued before it was shut, and reactors race with themselves.
    for state in TERMINAL_STATES:
        for inp in Input:
            if inp.from_peer or inp in (I.CLOSE, I.CONNECTION_LOST, I.REQUEST_TIMEOUT,
                                        I.HEARTBEAT_TICK, I.HEARTBEAT_MISSED,
                                        I.TOO_MANY_ORPHANS):
                table[(state, inp)] = state
    return table


TRANSITIONS = _build()
"""(ConnectionState, Input) -> ConnectionState; anything missing is illegal."""


def transition(state, inp):
    """Return the state that ``inp`` leads to from ``state``.

    Raises:
        IllegalStateTransition: the table has no entry for ``(state, inp)``.
    """
    try:
        return TRANSITIONS[(state, inp)]
    except KeyError:
        raise IllegalStateTransition("%s is not allowed in state %s" % (inp.label, state.name))


def allowed_inputs(state):
    """The inputs the table accepts in ``state`` (sorted by name)."""
    return sorted((inp for (st, inp) in TRANSITIONS if st is state), key=lambda i: i.name)


def diagram():
    """The transition table as Graphviz dot text (self-loops of the terminal states omitted)."""
    lines = ["digraph cql_connection {", "  rankdir=LR;"]
    for (state, inp), nxt in sorted(TRANSITIONS.items(),
                                    key=lambda kv: (kv[0][0].name, kv[0][1].name)):
        if state in TERMINAL_STATES and nxt is state:
            continue
        lines.append('  %s -> %s [label="%s"];' % (state.name, nxt.name, inp.label))
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(diagram())
