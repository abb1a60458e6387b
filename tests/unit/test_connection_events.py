"""The events a Connection returns: immutable, slotted, validated, compared by value."""

import pytest

from cqlreactor.core.errors import ConnectionDefunct, OperationTimedOut
from cqlreactor.core.events import (ConnectionClosed, ConnectionFailed, ConnectionReady, Event,
                                    ProtocolVersionRejected, RequestFailed, ResponseReceived,
                                    ServerEventReceived)

ALL = [ConnectionReady(5, "lz4", {"COMPRESSION": ["lz4"]}, {"CQL_VERSION": "3.0.0"}),
       ResponseReceived(3, "msg"), RequestFailed(3, OperationTimedOut("t")),
       ServerEventReceived("evt"), ProtocolVersionRejected(5, 4, ConnectionDefunct("x")),
       ConnectionFailed(ConnectionDefunct("x")), ConnectionClosed()]


@pytest.mark.parametrize("event", ALL, ids=lambda e: type(e).__name__)
def test_events_are_immutable_and_slotted(event):
    assert isinstance(event, Event)
    assert not hasattr(event, "__dict__")
    for name in type(event).__slots__:
        with pytest.raises(AttributeError):
            setattr(event, name, None)
    with pytest.raises(AttributeError):
        event.other = 1
    assert repr(event).startswith(type(event).__name__ + "(")


def test_equality_by_type_and_value():
    assert ResponseReceived(1, "a") == ResponseReceived(1, "a")
    assert ResponseReceived(1, "a") != ResponseReceived(2, "a")
    assert ConnectionClosed() == ConnectionClosed()
    assert ServerEventReceived("a") != ResponseReceived(1, "a")


def test_keyword_construction_and_validation():
    event = ConnectionReady(protocol_version=4, compression=None, supported={}, options={})
    assert event.protocol_version == 4
    with pytest.raises(TypeError):
        ConnectionReady(4, None, {})                       # missing field
    with pytest.raises(TypeError):
        ConnectionReady(4, None, {}, {}, 5)                # too many
    with pytest.raises(TypeError):
        ConnectionReady(4, None, {}, {}, bogus=1)
    with pytest.raises(TypeError):
        ConnectionReady("4", None, {}, {})
    with pytest.raises(ValueError):
        ResponseReceived(-1, "m")
    with pytest.raises(TypeError):
        RequestFailed(1, "not an exception")
    with pytest.raises(TypeError):
        ConnectionFailed(None)
    with pytest.raises(TypeError):
        ProtocolVersionRejected(5, 4, "text")
