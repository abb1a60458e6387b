"""SNI endpoints and the TLS context for Astra.

Every Astra connection goes to the same SNI proxy; the TLS ClientHello's server name (SNI)
says which node the proxy must pipe it to: the node's host id.  The node's certificate,
however, names the proxy's host, not the host id.  So two names are in play per connection:

- ``server_hostname``: the host id, sent as SNI;
- ``tls_hostname``: the proxy's host name, checked against the peer certificate.

``ssl.SSLContext`` ties both to one ``server_hostname``; the shared TLS layer does not: its
``check_hostname_as`` option sends one name as SNI and checks the certificate against another
(``reactors/tls.py``).  Node connections use a :class:`CloudSSLContext`, an ``ssl.SSLContext``
that carries the proxy's host as ``tls_hostname``; the TLS layer reads it
(:func:`~cqlreactor.reactors.tls.identity_of`) and checks that name, while the SNI is the
endpoint's ``server_hostname`` (the host id).  Certificate verification against
``ca.crt`` is required.  What the connection driver must also honour: call
``endpoint.resolve()`` (when the endpoint has it) on every connect to get the (ip, port) to
open, instead of ``endpoint.address`` -- outside the loop's callbacks, since it may block.
"""

import socket
import ssl

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import CloudConfigError, ConnectionException, TLSError
from cqlreactor.reactors.tls import (IdentityContextMixin, context_class, hostname_matches,
                                     peer_identity_problem)

__all__ = ["SniEndpoint", "SniEndpointFactory", "CloudSSLContext", "is_cloud_context",
           "make_ssl_context", "verify_peer_hostname", "hostname_matches"]


class SniEndpoint(Endpoint):
    """One Astra node, reached through the SNI proxy (an ``Endpoint`` with two more duties).

    Attributes:
        address: the proxy's host name (or IP) as the metadata service gave it.
        port: the proxy's port.
        server_hostname: the SNI name: the node's host id.
        host_id: the node's host id (same value; for the session's host map).
        tls_hostname: the name the peer certificate must match: the proxy's host.
    """

    __slots__ = ("tls_hostname", "_index", "_getaddrinfo")

    def __init__(self, proxy_host, proxy_port, host_id, init_index=0, getaddrinfo=None):
        host_id = str(host_id)
        super(SniEndpoint, self).__init__(proxy_host, int(proxy_port), server_hostname=host_id,
                                          host_id=host_id)
        self.tls_hostname = proxy_host
        self._index = init_index
        self._getaddrinfo = getaddrinfo

    def resolve(self, getaddrinfo=None):
        """Resolve the proxy name now and pick the next of its addresses, round robin.

        Called on every connect, so a proxy whose DNS changes is followed and a dead proxy
        address is not retried forever.  It may block: the connection driver calls it where
        blocking is allowed (the connecting thread or greenlet, or the reactor's ``spawn``),
        never in a loop callback (under gevent's ``patch_all`` that would fail).

        Args:
            getaddrinfo: the lookup to use (the driver passes its reactor's); the one given to
                the constructor wins; default ``socket.getaddrinfo`` as it is when called.

        Returns:
            (ip, port)

        Raises:
            ConnectionException: the name does not resolve.
        """
        try:
            lookup = self._getaddrinfo or getaddrinfo or socket.getaddrinfo
            infos = lookup(self.address, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectionException("cannot resolve the SNI proxy %s:%d (%s)"
                                      % (self.address, self.port, exc), host=str(self))
        addresses = sorted(set(info[4][0] for info in infos))
        if not addresses:
            raise ConnectionException("the SNI proxy %s resolves to no address" % self.address,
                                      host=str(self))
        chosen = addresses[self._index % len(addresses)]
        self._index += 1
        return chosen, self.port

    def _key(self):
        return (self.address, self.port, self.server_hostname, self.tls_hostname)

    def __eq__(self, other):
        return isinstance(other, SniEndpoint) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __lt__(self, other):
        return self._key() < other._key()

    def __repr__(self):
        return "SniEndpoint(%r, %d, host_id=%r, tls_hostname=%r)" % (
            self.address, self.port, self.host_id, self.tls_hostname)


class SniEndpointFactory(object):
    """Makes SniEndpoints for the metadata's contact points and for peers found later.

    Each new endpoint starts its round robin at a different proxy address, so that when the
    proxy name resolves to several addresses, the nodes spread over them.
    """

    def __init__(self, proxy_host, proxy_port):
        self.proxy_host = proxy_host
        self.proxy_port = int(proxy_port)
        self._next_index = 0

    def create(self, host_id):
        endpoint = SniEndpoint(self.proxy_host, self.proxy_port, host_id, self._next_index)
        self._next_index += 1
        return endpoint

    def create_from_row(self, row):
        """An endpoint for a system.local / system.peers row (a dict with 'host_id')."""
        host_id = row.get("host_id")
        if host_id is None:
            raise ValueError("a cloud node row without host_id cannot be reached through the "
                             "SNI proxy: %r" % (row,))
        return self.create(host_id)


class _CloudContextMixin(IdentityContextMixin):
    """The node-connection context: SNI free to vary, identity checked against one name.

    ``tls_hostname`` (the proxy's host) is the name every node certificate must carry, whatever
    ``server_hostname`` (SNI: the host id) a connection sends.  The TLS layer checks it as its
    ``check_hostname_as``; ``wrap_socket`` (blocking callers, tests) checks it after the
    handshake and raises ``ssl.CertificateError`` ("hostname mismatch ...").
    ``check_hostname`` is False only because OpenSSL would check the SNI name instead.
    """

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, **kwargs):
        """Wrap a connected, blocking socket and check the proxy's name after the handshake.

        Raises:
            ValueError: a server-side, non-blocking or deferred-handshake wrap (the check runs
                right after the handshake, so this method has to drive it).
            ssl.CertificateError: the certificate does not name ``tls_hostname``.
        """
        if server_side or not do_handshake_on_connect or sock.gettimeout() == 0.0:
            raise ValueError("a CloudSSLContext wraps only connected blocking client sockets and "
                             "does the handshake itself; non-blocking IO goes through "
                             "cqlreactor.reactors.tls.TLSLayer(check_hostname_as=...)")
        tls = super(_CloudContextMixin, self).wrap_socket(sock, do_handshake_on_connect=False,
                                                          **kwargs)
        try:
            tls.do_handshake()
            problem = peer_identity_problem(tls, self.tls_hostname)
            if problem:
                raise ssl.CertificateError(problem)
        except BaseException:
            tls.close()
            raise
        return tls


#: the class at import time; make_ssl_context builds on ssl.SSLContext as it is when called
CloudSSLContext = context_class("CloudSSLContext", _CloudContextMixin)


def is_cloud_context(ctx):
    """True for a context made by ``make_ssl_context(..., tls_hostname=...)``."""
    return isinstance(ctx, _CloudContextMixin)


def make_ssl_context(ca_cert_path, cert_path, key_path, check_hostname=True, tls_hostname=None,
                     bundle_path="?"):
    """An SSLContext that trusts only the bundle's CA and presents the bundle's client cert.

    Args:
        check_hostname: for the metadata service (one name for SNI and identity).
        tls_hostname: for node connections: a :class:`CloudSSLContext` that checks every
            peer certificate against this name (the proxy's host) whatever the SNI name is.
            Certificate verification against ca.crt is required either way.
    """
    try:
        if tls_hostname:
            ctx = context_class("CloudSSLContext", _CloudContextMixin)(ssl.PROTOCOL_TLS_CLIENT)
            ctx.tls_hostname = tls_hostname
            ctx.check_hostname = False
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = bool(check_hostname)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=ca_cert_path)
        ctx.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise CloudConfigError("secure connect bundle %s: cannot build the TLS context (%s)"
                               % (bundle_path, exc))
    return ctx


def verify_peer_hostname(ssl_object, hostname, host=None):
    """Raise TLSError unless the verified peer certificate names hostname.

    For callers holding an ``SSLObject``/``SSLSocket`` whose handshake they drove themselves
    (``TLSLayer(check_hostname_as=...)`` and ``CloudSSLContext.wrap_socket`` check by
    themselves).
    """
    problem = peer_identity_problem(ssl_object, hostname)
    if problem:
        reason = "hostname-mismatch" if problem.startswith("hostname") else "unverified"
        raise TLSError(problem, host=host, reason=reason)
