"""Every state x every input, driven through the public Connection API with real bytes, checked
against the one table in core/states.py; plus a hypothesis state machine that checks the
invariants (each request completes exactly once, answers are never misrouted)."""

import struct

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cqlreactor.core import messages as m
from cqlreactor.core.auth import PlainTextAuthenticator
from cqlreactor.core.connection import Connection
from cqlreactor.core.errors import (ConnectionBusy, ConnectionDefunct, ConnectionShutdown,
                                    IllegalStateTransition)
from cqlreactor.core.events import (ConnectionClosed, ConnectionFailed, ConnectionReady,
                                    ProtocolVersionRejected, RequestFailed, ResponseReceived)
from cqlreactor.core.states import (TRANSITIONS, ConnectionState, Input, allowed_inputs, diagram,
                                    transition)

S = ConnectionState
I = Input  # noqa: E741
V = 4


def frame(stream, message, version=V):
    return m.encode_message(message, stream, version, is_response=True)


def query():
    return m.QueryMessage("SELECT 1", m.QueryParameters(consistency=1))


# --- building a connection in each reachable state --------------------------------------------

def _new():
    return Connection(host="h:9042", protocol_version=V,
                      authenticator=PlainTextAuthenticator("u", "p"))


def _to(state):
    conn = _new()
    if state is S.IDLE:
        return conn
    conn.initiate()
    if state is S.OPTIONS_SENT:
        return conn
    conn.receive_data(frame(0, m.SupportedMessage({})))
    if state is S.STARTUP_SENT:
        return conn
    if state is S.AUTHENTICATING:
        conn.receive_data(frame(0, m.AuthenticateMessage("PasswordAuthenticator")))
        return conn
    conn.receive_data(frame(0, m.ReadyMessage()))
    if state is S.READY:
        return conn
    if state is S.CLOSED:
        conn.close()
        return conn
    if state is S.DEFUNCT:
        conn.connection_lost()
        return conn
    raise AssertionError(state)


REACHABLE = [S.IDLE, S.OPTIONS_SENT, S.STARTUP_SENT, S.AUTHENTICATING, S.READY, S.CLOSED,
             S.DEFUNCT]


@pytest.mark.parametrize("state", REACHABLE, ids=lambda s: s.name)
def test_builders_reach_their_state(state):
    assert _to(state).state is state


# --- each input through the public API --------------------------------------------------------

def _peer(message, stream=0, version=V):
    return lambda conn: conn.receive_data(frame(stream, message, version))


def _response(conn):
    if conn.state is S.READY:
        stream = conn.send_request(query())
        conn.data_to_send()
        return conn.receive_data(frame(stream, m.VoidResult()))
    return conn.receive_data(frame(0, m.VoidResult()))


def _orphan_response(conn):
    if conn.state is S.READY:
        stream = conn.send_request(query(), deadline=1.0)
        conn.handle_timeout(2.0)
        return conn.receive_data(frame(stream, m.VoidResult()))
    return conn.receive_data(frame(0, m.VoidResult()))


def _unexpected(conn):
    # RESULT is never a handshake answer; in READY, stream 99 has nothing in flight
    return conn.receive_data(frame(99 if conn.state is S.READY else 0, m.VoidResult()))


DRIVERS = {
    I.INITIATE: lambda conn: conn.initiate(),
    I.SEND_REQUEST: lambda conn: conn.send_request(query()),
    I.CLOSE: lambda conn: conn.close(),
    I.CONNECTION_LOST: lambda conn: conn.connection_lost(),
    I.RECV_SUPPORTED: _peer(m.SupportedMessage({"COMPRESSION": []})),
    I.RECV_READY: _peer(m.ReadyMessage()),
    I.RECV_AUTHENTICATE: _peer(m.AuthenticateMessage("PasswordAuthenticator")),
    I.RECV_AUTH_CHALLENGE: _peer(m.AuthChallengeMessage(b"c")),
    I.RECV_AUTH_SUCCESS: _peer(m.AuthSuccessMessage(None)),
    I.RECV_ERROR: _peer(m.ErrorMessage(0x2200, "no")),
    I.RECV_VERSION_REJECTED: _peer(m.ErrorMessage(
        0x000A, "Invalid or unsupported protocol version (4); supported versions are (3/v3)"),
        version=3),
    I.RECV_EVENT: _peer(m.EventMessage("STATUS_CHANGE", "UP", address=("1.2.3.4", 9042)),
                        stream=-1),
    I.RECV_RESPONSE: _response,
    I.RECV_ORPHAN_RESPONSE: _orphan_response,
    I.RECV_UNEXPECTED: _unexpected,
    I.RECV_MALFORMED: lambda conn: conn.receive_data(b"\xff" * 12),
}
# Inputs the connection produces by itself (not drivable from outside in every state); they are
# covered by the table tests below and by the timeout/heartbeat tests in test_connection_requests.
INTERNAL = {I.REQUEST_TIMEOUT, I.HEARTBEAT_TICK, I.HEARTBEAT_MISSED, I.CLOSE_DONE, I.AUTH_FAILED,
            I.TOO_MANY_ORPHANS}


def _expected(state, inp):
    nxt = TRANSITIONS.get((state, inp))
    if nxt is S.CLOSING:
        nxt = TRANSITIONS[(S.CLOSING, I.CLOSE_DONE)]
    return nxt


MATRIX = [(s, i) for s in REACHABLE for i in Input if i not in INTERNAL]


def _misroutes(state, inp):
    # peer bytes whose meaning depends on the state: in READY, every stream-0 answer is "an
    # answer on a stream with nothing in flight" (RECV_UNEXPECTED), in the handshake a RESULT is
    # unexpected whatever it answers.
    if state is S.READY and inp.from_peer and inp not in (
            I.RECV_RESPONSE, I.RECV_ORPHAN_RESPONSE, I.RECV_EVENT, I.RECV_MALFORMED):
        return I.RECV_UNEXPECTED
    if state is not S.READY and inp in (I.RECV_RESPONSE, I.RECV_ORPHAN_RESPONSE):
        return I.RECV_UNEXPECTED
    return inp


@pytest.mark.parametrize("state,inp", MATRIX, ids=["%s-%s" % (s.name, i.name) for s, i in MATRIX])
def test_state_x_input(state, inp):
    conn = _to(state)
    effective = _misroutes(state, inp)
    expected = _expected(state, effective)
    if expected is None and not effective.from_peer:
        # a local input the table does not allow raises and changes nothing
        if inp is I.SEND_REQUEST and state is S.DEFUNCT:
            error = ConnectionDefunct
        elif inp is I.SEND_REQUEST and state is S.CLOSED:
            error = ConnectionShutdown
        else:
            error = IllegalStateTransition
        with pytest.raises(error):
            DRIVERS[inp](conn)
        assert conn.state is state
        return
    result = DRIVERS[inp](conn)
    if expected is None:
        # a peer input the table does not allow: DEFUNCT, never an exception
        assert conn.state is S.DEFUNCT
        assert isinstance(result[-1], ConnectionFailed)
        assert result[-1].error.host == "h:9042"
        return
    assert conn.state is expected
    if state in (S.CLOSED, S.DEFUNCT) and inp is not I.SEND_REQUEST:
        assert result == []                       # terminal states ignore everything
    if expected is S.DEFUNCT and state is not S.DEFUNCT:
        assert isinstance(result[-1], (ConnectionFailed, ProtocolVersionRejected))
    if expected is S.READY and state is not S.READY:
        assert isinstance(result[-1], ConnectionReady)
    if inp is I.CLOSE and state is not S.CLOSED and state is not S.DEFUNCT:
        assert result[-1] == ConnectionClosed()


@pytest.mark.parametrize("state", [s for s in REACHABLE if s is not S.READY], ids=lambda s: s.name)
def test_time_does_nothing_outside_ready(state):
    conn = _to(state)
    assert conn.handle_timeout(1e12) == [] and conn.state is state


# --- the table itself ---------------------------------------------------------------------------

def test_every_state_has_a_way_to_end():
    for state in S:
        if state is S.CLOSING:
            assert allowed_inputs(state) == [I.CLOSE_DONE]
            continue
        assert TRANSITIONS[(state, I.CONNECTION_LOST)] in (S.DEFUNCT, state)
        assert TRANSITIONS[(state, I.CLOSE)] in (S.CLOSING, state)


def test_terminal_states_never_leave():
    for (state, inp), nxt in TRANSITIONS.items():
        if state in (S.CLOSED, S.DEFUNCT):
            assert nxt is state, (state, inp)


def test_every_live_state_goes_defunct_on_malformed_bytes():
    for state in (S.IDLE, S.OPTIONS_SENT, S.STARTUP_SENT, S.AUTHENTICATING, S.READY):
        assert transition(state, I.RECV_MALFORMED) is S.DEFUNCT


def test_recv_unexpected_is_never_allowed_in_a_live_state():
    for state in (S.IDLE, S.OPTIONS_SENT, S.STARTUP_SENT, S.AUTHENTICATING, S.READY, S.CLOSING):
        with pytest.raises(IllegalStateTransition):
            transition(state, I.RECV_UNEXPECTED)


def test_every_state_is_reachable_from_idle():
    seen, todo = {S.IDLE}, [S.IDLE]
    while todo:
        state = todo.pop()
        for (src, _), nxt in TRANSITIONS.items():
            if src is state and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(S)


def test_diagram_names_every_transition():
    text = diagram()
    assert text.startswith("digraph")
    assert "OPTIONS_SENT -> STARTUP_SENT" in text and "AUTHENTICATING -> READY" in text
    assert "READY -> DEFUNCT" in text


# --- hypothesis: a client against a scripted server, with invariants ---------------------------

class ConnectionModel(RuleBasedStateMachine):
    """Random interleavings of requests, answers (any order), timeouts, events, garbage, loss
    and close.  Invariants: every request completes exactly once (answer or failure), an answer
    always carries the tag of the request that owns the stream, in-flight counts match."""

    version = 5

    def __init__(self):
        super(ConnectionModel, self).__init__()
        self.conn = Connection(host="model:9042", protocol_version=self.version)
        self.conn.initiate()
        self.conn.data_to_send()
        self.conn.receive_data(frame(0, m.SupportedMessage({}), self.version))
        self.conn.data_to_send()
        self.conn.receive_data(frame(0, m.ReadyMessage(), self.version))
        self.now = 0.0
        self.tag = 0
        self.owner = {}           # stream -> tag of the request currently owning it
        self.server_side = {}     # stream -> tag, requests the server has not answered yet
        self.open = set()         # tags awaiting completion
        self.done = set()
        from cqlreactor.core.segments import SegmentEncoder
        encoder = SegmentEncoder()
        self.wrap = encoder.encode if self.version >= 5 else b"".join

    def _events(self, events):
        for event in events:
            if isinstance(event, ResponseReceived):
                tag = self.owner.pop(event.stream_id)
                assert event.message.keyspace == "t%d" % tag, "misrouted answer"
                self._complete(tag)
            elif isinstance(event, RequestFailed):
                tag = self.owner.pop(event.stream_id)
                self._complete(tag)

    def _complete(self, tag):
        assert tag in self.open and tag not in self.done, "completed twice"
        self.open.discard(tag)
        self.done.add(tag)

    @rule(timeout=st.one_of(st.none(), st.floats(0.5, 5.0)))
    def send(self, timeout):
        deadline = None if timeout is None else self.now + timeout
        try:
            stream = self.conn.send_request(query(), deadline=deadline)
        except (ConnectionDefunct, ConnectionShutdown, ConnectionBusy):
            assert not self.conn.is_ready or self.conn.in_flight >= self.conn.max_in_flight
            return
        assert stream not in self.owner and stream not in self.server_side
        self.tag += 1
        self.owner[stream] = self.tag
        self.server_side[stream] = self.tag
        self.open.add(self.tag)
        self.conn.data_to_send()

    @precondition(lambda self: self.server_side)
    @rule(data=st.data())
    def server_answers(self, data):
        streams = data.draw(st.lists(st.sampled_from(sorted(self.server_side)), min_size=1,
                                     unique=True))
        envelopes = [m.encode_message(m.SetKeyspaceResult("t%d" % self.server_side.pop(s)), s,
                                      self.version, is_response=True) for s in streams]
        payload = self.wrap(envelopes)
        cut = data.draw(st.integers(0, len(payload)))
        self._events(self.conn.receive_data(payload[:cut]))
        self._events(self.conn.receive_data(payload[cut:]))

    @rule(step=st.floats(0.1, 3.0))
    def time_passes(self, step):
        self.now += step
        self._events(self.conn.handle_timeout(self.now))

    @rule()
    def server_event(self):
        self._events(self.conn.receive_data(self.wrap([m.encode_message(
            m.EventMessage("STATUS_CHANGE", "DOWN", address=("1.1.1.1", 9042)), -1,
            self.version)])))

    @precondition(lambda self: self.tag >= 12)     # let traffic build up before ending it
    @rule(how=st.sampled_from(["garbage", "lost", "close"]))
    def end(self, how):
        if how == "garbage":
            self._events(self.conn.receive_data(b"\x00" * 11))
            assert self.conn.is_defunct or self.conn.is_closed
        elif how == "lost":
            self._events(self.conn.connection_lost())
        else:
            self._events(self.conn.close())

    @invariant()
    def counts_match(self):
        if self.conn.is_ready:
            assert self.conn.in_flight == len(self.open)
        else:
            assert not self.open, "a request outlived its connection"

    def teardown(self):
        self._events(self.conn.close())
        assert not self.open


TestConnectionModel = ConnectionModel.TestCase
TestConnectionModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


class ConnectionModelV4(ConnectionModel):
    version = 4


TestConnectionModelV4 = ConnectionModelV4.TestCase
TestConnectionModelV4.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
