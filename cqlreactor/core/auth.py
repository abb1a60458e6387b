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
           "SaslAuthProvider"]


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

    def __init__(self, username, password):
        self.username = username
        self.password = password

    def new_authenticator(self, host):
        return PlainTextAuthenticator(self.username, self.password)

    def __repr__(self):
        return "PlainTextAuthProvider(username=%r)" % (self.username,)


class SaslAuthProvider(AuthProvider):
    """Builds authenticators from a factory: ``SaslAuthProvider(MyAuthenticator, **kwargs)``
    calls ``MyAuthenticator(host=host, **kwargs)`` per connection."""

    def __init__(self, authenticator_class, **kwargs):
        self.authenticator_class = authenticator_class
        self.kwargs = kwargs

    def new_authenticator(self, host):
        return self.authenticator_class(host=host, **self.kwargs)


def _utf8(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
