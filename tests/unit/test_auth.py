"""SASL authenticators and providers (core/auth.py)."""

from cqlreactor.core.auth import (Authenticator, PlainTextAuthenticator, PlainTextAuthProvider,
                                  SaslAuthProvider)


def test_plain_initial_response_is_sasl_plain():
    auth = PlainTextAuthenticator("cassandra", "secret")
    assert auth.initial_response() == b"\x00cassandra\x00secret"


def test_plain_encodes_utf8_and_accepts_bytes():
    assert PlainTextAuthenticator(u"us\u00e9r", b"p\xc3\xa4ss").initial_response() == \
        b"\x00us\xc3\xa9r\x00p\xc3\xa4ss"


def test_plain_answers_a_challenge_with_the_credentials():
    auth = PlainTextAuthenticator("u", "p")
    assert auth.evaluate_challenge(b"PLAIN-START") == b"\x00u\x00p"


def test_provider_makes_a_fresh_authenticator_per_connection():
    provider = PlainTextAuthProvider("u", "p")
    a = provider.new_authenticator("10.0.0.1:9042")
    b = provider.new_authenticator("10.0.0.2:9042")
    assert isinstance(a, PlainTextAuthenticator) and a is not b
    assert a.initial_response() == b"\x00u\x00p"
    assert "p" not in repr(provider).replace("PlainTextAuthProvider", "").replace("username", "")


def test_base_authenticator_defaults():
    auth = Authenticator()
    assert auth.initial_response() is None
    assert auth.evaluate_challenge(b"x") is None
    assert auth.on_authentication_success(b"t") is None


def test_sasl_provider_passes_host_and_kwargs():
    class Custom(Authenticator):
        def __init__(self, host, realm):
            self.host, self.realm = host, realm
    auth = SaslAuthProvider(Custom, realm="R").new_authenticator("h1")
    assert (auth.host, auth.realm) == ("h1", "R")


def test_matches_cassandra_driver_bytes():
    cassandra_auth = __import__("pytest").importorskip("cassandra.auth")
    theirs = cassandra_auth.PlainTextAuthProvider("user", "pass").new_authenticator("h")
    ours = PlainTextAuthProvider("user", "pass").new_authenticator("h")
    assert ours.initial_response() == theirs.initial_response()
