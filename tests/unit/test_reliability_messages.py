"""The repr of an AUTH_RESPONSE never shows its SASL token (issue 17): it carries the password
of PLAIN authentication, and reprs end up in logs and tracebacks."""

from cqlreactor.core import messages as m
from cqlreactor.core.auth import PlainTextAuthProvider


def test_auth_response_repr_hides_the_token():
    token = PlainTextAuthProvider("cassandra", "s3cret-Pa55").new_authenticator(
        "127.0.0.1").initial_response()
    message = m.AuthResponseMessage(token)
    for text in (repr(message), str(message), "%r" % ([message],)):
        assert b"s3cret" in token and "s3cret" not in text, text
        assert "AuthResponseMessage" in text and "%d bytes" % len(token) in text, text
    assert m.AuthResponseMessage(token) == message     # equality still compares the token
    assert m.AuthResponseMessage(token + b"x") != message


def test_auth_response_repr_without_a_token():
    assert repr(m.AuthResponseMessage(None)) == "AuthResponseMessage(token=None)"
