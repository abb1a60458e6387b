"""SASL authentication during the handshake.

When the server answers STARTUP with AUTHENTICATE (naming its authenticator class), the
connection asks its :class:`Authenticator` for an initial response, sends it in AUTH_RESPONSE,
hands every AUTH_CHALLENGE token to ``evaluate_challenge()`` and the final AUTH_SUCCESS token to
``on_authentication_success()``.

An *auth provider* (``new_authenticator(host)``) makes one authenticator per connection, as
cassandra-driver's ``PlainTextAuthProvider`` does, so the same provider object can be passed to
``Cluster(auth_provider=...)`` unchanged.
"""

__all__ = ["Authenticator", "PlainTextAuthenticator", "AuthProvider", "PlainTextAuthProvider",
           "SaslAuthProvider", "SaslAuthenticator"]


class Authenticator(object):
    """One SASL exchange on one connection.  Subclasses override the three methods.

    Attributes:
        server_authenticator_class: set by the connection from the AUTHENTICATE message (e.g.
            "org.apache.cassandra.auth.PasswordAuthenticator") before ``initial_response()``.
    """

    server_authenticator_class = None

    def initial_response(self):
        """Returns: the token for the first AUTH_RESPONSE (bytes, or None for an empty one)."""
        return None

    def evaluate_challenge(self, challenge):
        """Args: challenge: the AUTH_CHALLENGE token (bytes or None).
        Returns: the token for the next AUTH_RESPONSE (bytes or None)."""
        return None

    def on_authentication_success(self, token):
        """Called with the AUTH_SUCCESS token (bytes or None) when the server accepted us."""


class PlainTextAuthenticator(Authenticator):
    """SASL PLAIN: the initial response is ``\\x00username\\x00password`` (UTF-8)."""

    def __init__(self, username, password):
        self.username = username
        self.password = password

    def initial_response(self):
        return b"\x00" + _utf8(self.username) + b"\x00" + _utf8(self.password)

    def evaluate_challenge(self, challenge):
        # PLAIN has one step; a server that challenges again gets the same credentials, which is
        # what DSE's PasswordAuthenticator expects after its "PLAIN-START" challenge.
        return self.initial_response()

    def __repr__(self):
        return "PlainTextAuthenticator(username=%r)" % (self.username,)


class AuthProvider(object):
    """Makes an :class:`Authenticator` for each new connection."""

    def new_authenticator(self, host):
        """Args: host: the endpoint being connected to.  Returns: an Authenticator."""
        raise NotImplementedError


class PlainTextAuthProvider(AuthProvider):
    """Username/password authentication (Cassandra's PasswordAuthenticator, Astra tokens)."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def new_authenticator(self, host: object) -> "PlainTextAuthenticator":
        return PlainTextAuthenticator(self.username, self.password)

    def __repr__(self):
        return "PlainTextAuthProvider(username=%r)" % (self.username,)


class SaslAuthProvider(AuthProvider):
    """SASL through pure-sasl, as cassandra-driver's: ``SaslAuthProvider(service="cassandra",
    mechanism="GSSAPI", qops=..., **other_pure_sasl_kwargs)`` makes a
    :class:`SaslAuthenticator` per connection (``pip install cqlreactor[sasl]``).

    Our own form is kept: ``SaslAuthProvider(MyAuthenticator, **kwargs)`` (a class or factory
    first, positionally) calls ``MyAuthenticator(host=host, **kwargs)`` per connection and needs
    no pure-sasl.

    Raises:
        ImportError: the pure-sasl form without pure-sasl installed.
        ValueError: ``host`` among the keyword arguments (each connection passes its own).
    """

    def __init__(self, authenticator_class=None, **sasl_kwargs):
        if "host" in sasl_kwargs:
            raise ValueError("SaslAuthProvider: do not pass host=; each connection passes the "
                             "host it connects to")
        if authenticator_class is None:
            _sasl_client_class()        # fail here, at configuration, not at connect
        self.authenticator_class = authenticator_class
        self.sasl_kwargs = sasl_kwargs

    @property
    def kwargs(self):
        return self.sasl_kwargs

    def new_authenticator(self, host):
        if self.authenticator_class is None:
            return SaslAuthenticator(_host_name(host), **self.sasl_kwargs)
        return self.authenticator_class(host=host, **self.sasl_kwargs)


class SaslAuthenticator(Authenticator):
    """One pure-sasl client exchange (cassandra-driver's ``SaslAuthenticator``): ``service``
    and ``mechanism`` (default GSSAPI, i.e. Kerberos) and pure-sasl's other keyword arguments
    (``qops``, ``username``, ``password``, ``principal``...)."""

    def __init__(self, host, service, mechanism="GSSAPI", **sasl_kwargs):
        self.sasl = _sasl_client_class()(host, service, mechanism, **sasl_kwargs)

    def initial_response(self):
        return self.sasl.process()

    def evaluate_challenge(self, challenge):
        return self.sasl.process(challenge)


def _sasl_client_class():
    try:
        from puresasl.client import SASLClient
    except ImportError:
        raise ImportError("SaslAuthProvider(**sasl_kwargs) needs pure-sasl: pip install "
                          "'cqlreactor[sasl]' (or pass an Authenticator class first, or use "
                          "PlainTextAuthProvider for passwords)")
    return SASLClient


def _host_name(host):
    """The address pure-sasl gets (GSSAPI derives the service principal from it): an
    endpoint's address, or the value itself."""
    return getattr(host, "address", host)


def _utf8(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
