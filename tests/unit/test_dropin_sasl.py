"""SaslAuthProvider as cassandra-driver's (the oracle): pure-sasl keyword arguments, one
SaslAuthenticator per connection, the same tokens; and our own authenticator-class form."""

import sys

import pytest

from cqlreactor.core.auth import Authenticator, SaslAuthenticator, SaslAuthProvider

theirs = pytest.importorskip("cassandra.auth")


def test_pure_sasl_form_gives_the_tokens_theirs_gives():
    pytest.importorskip("puresasl")
    kwargs = dict(service="cassandra", mechanism="PLAIN", username="u", password="p")
    ours = SaslAuthProvider(**kwargs).new_authenticator("10.0.0.1")
    oracle = theirs.SaslAuthProvider(**kwargs).new_authenticator("10.0.0.1")
    assert isinstance(ours, SaslAuthenticator)
    assert ours.initial_response() == oracle.initial_response() == b"\x00u\x00p"
    assert ours.sasl.host == oracle.sasl.host == "10.0.0.1"


def test_host_is_refused_as_theirs():
    pytest.importorskip("puresasl")
    with pytest.raises(ValueError):
        theirs.SaslAuthProvider(host="h", service="s")
    with pytest.raises(ValueError, match="host"):
        SaslAuthProvider(host="h", service="s")


def test_without_pure_sasl_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "puresasl", None)
    monkeypatch.setitem(sys.modules, "puresasl.client", None)
    with pytest.raises(ImportError, match=r"cqlreactor\[sasl\]"):
        SaslAuthProvider(service="cassandra")


def test_our_authenticator_class_form_needs_no_pure_sasl(monkeypatch):
    monkeypatch.setitem(sys.modules, "puresasl.client", None)

    class Custom(Authenticator):
        def __init__(self, host, realm):
            self.host, self.realm = host, realm

    auth = SaslAuthProvider(Custom, realm="R").new_authenticator("h1")
    assert (auth.host, auth.realm) == ("h1", "R")
