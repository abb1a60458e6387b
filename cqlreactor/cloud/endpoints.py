"""SNI endpoints and the TLS context for Astra.

Every Astra connection goes to the same SNI proxy; the TLS ClientHello's server name (SNI)
says which node the proxy must pipe it to: the node's host id.  The node's certificate,
however, names the proxy's host, not the host id.  So two names are in play per connection:

- ``server_hostname``: the host id, sent as SNI;
- ``tls_hostname``: the proxy's host name, checked against the peer certificate.

``ssl.SSLContext`` ties both to one ``server_hostname``.  So node connections use a
:class:`CloudSSLContext`: the SNI is whatever ``server_hostname`` the TLS layer passes (the
endpoint's, i.e. the host id), and after every handshake the context's SSLObject/SSLSocket
checks the verified certificate against ``tls_hostname`` (the proxy's host) and fails the
handshake with ``ssl.CertificateError`` otherwise.  Certificate verification against
``ca.crt`` is required.  The shared TLS layer (``reactors/tls.py``) needs nothing special:
``context.wrap_bio(..., server_hostname=endpoint.server_hostname)`` already does it all.  What
the connection driver must honour: call ``endpoint.resolve()`` (when the endpoint has it) on
every connect to get the (ip, port) to open, instead of ``endpoint.address``.
"""

import ipaddress
import socket
import ssl

from cqlreactor.core.errors import CloudConfigError, ConnectionException, TLSError
from cqlreactor.reactors.base import Endpoint

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
        self._getaddrinfo = getaddrinfo or socket.getaddrinfo

    def resolve(self):
        """Resolve the proxy name now and pick the next of its addresses, round robin.

        Called on every connect, so a proxy whose DNS changes is followed and a dead proxy
        address is not retried forever.

        Returns:
            (ip, port)

        Raises:
            ConnectionException: the name does not resolve.
        """
        try:
            infos = self._getaddrinfo(self.address, self.port, socket.AF_UNSPEC,
                                      socket.SOCK_STREAM)
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


def _peer_hostname_problem(ssl_object, hostname):
    """None if the verified peer certificate names hostname, else what is wrong (text)."""
    if ssl_object.context.verify_mode != ssl.CERT_REQUIRED:
        return "refusing to check %r on an unverified certificate (verify_mode is not " \
               "CERT_REQUIRED)" % (hostname,)
    cert = ssl_object.getpeercert()
    if not cert:
        return "the server presented no certificate"
    if not hostname_matches(cert, hostname):
        names = [v for _, v in cert.get("subjectAltName", ())]
        return "hostname mismatch: the server certificate does not name %r (it names %s)" % (
            hostname, ", ".join(names) or "nothing")
    return None


class _ProxyHostnameCheck(object):
    """Mixed into SSLObject/SSLSocket: after the handshake, check the context's tls_hostname."""

    def do_handshake(self, *args, **kwargs):
        super(_ProxyHostnameCheck, self).do_handshake(*args, **kwargs)
        problem = _peer_hostname_problem(self, self.context.tls_hostname)
        if problem:
            raise ssl.CertificateError(problem)


_checked_classes = {}


def _checked(obj):
    # Give the SSLObject/SSLSocket (stdlib, or gevent's/eventlet's green one: whatever the
    # context made) a subclass whose do_handshake adds the check.  Same layout, so __class__
    # can be swapped; this works on 3.6 (no sslobject_class hook) and with green contexts
    # (which ignore sslsocket_class).
    base = type(obj)
    cls = _checked_classes.get(base)
    if cls is None:
        cls = type("Checked" + base.__name__, (_ProxyHostnameCheck, base), {})
        _checked_classes[base] = cls
    obj.__class__ = cls
    return obj


class _CloudContextMixin(object):
    """The node-connection context: SNI free to vary, identity checked against one name.

    Every connection wrapped with it (``wrap_bio`` as the TLS layer does, or ``wrap_socket``)
    sends whatever ``server_hostname`` it is given as SNI (the host id), and after the handshake
    checks that the verified certificate names ``tls_hostname`` (the proxy's host), failing the
    handshake with ``ssl.CertificateError`` ("hostname mismatch ...") otherwise.  The check holds
    for any caller of the context; nothing needs to remember to do it.  ``check_hostname`` is
    False only because OpenSSL would check the SNI name instead.
    """

    tls_hostname = None

    def wrap_bio(self, *args, **kwargs):
        return _checked(super(_CloudContextMixin, self).wrap_bio(*args, **kwargs))

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, **kwargs):
        tls = super(_CloudContextMixin, self).wrap_socket(
            sock, server_side=server_side, do_handshake_on_connect=False, **kwargs)
        _checked(tls)
        tls.do_handshake_on_connect = do_handshake_on_connect
        if do_handshake_on_connect:
            try:
                tls.getpeername()
            except OSError:
                return tls                  # not connected yet: connect() does the handshake
            if tls.gettimeout() == 0.0:
                return tls                  # non-blocking: the caller drives do_handshake()
            tls.do_handshake()
        return tls


_context_classes = {}


def _cloud_context_class():
    # Built on whatever ssl.SSLContext is *now*: under eventlet/gevent monkey-patching that is
    # the green class, and a context of the original class would hit eventlet's recursion bug
    # on attribute setters (eventlet #371).
    base = ssl.SSLContext
    cls = _context_classes.get(base)
    if cls is None:
        cls = type("CloudSSLContext", (_CloudContextMixin, base), {"__doc__":
                                                                    _CloudContextMixin.__doc__})
        _context_classes[base] = cls
    return cls


CloudSSLContext = _cloud_context_class()


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
            ctx = _cloud_context_class()(ssl.PROTOCOL_TLS_CLIENT)
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


def _ip(text):
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _dns_matches(pattern, hostname):
    pattern = pattern.lower().rstrip(".")
    hostname = hostname.lower().rstrip(".")
    if "*" not in pattern:
        return pattern == hostname
    # only a whole left-most label may be a wildcard ("*.example.com"), matching one label
    p_first, _, p_rest = pattern.partition(".")
    h_first, _, h_rest = hostname.partition(".")
    if p_first != "*" or "*" in p_rest or not p_rest or p_rest.count(".") < 1:
        return False
    return bool(h_first) and h_rest == p_rest


def hostname_matches(peercert, hostname):
    """True if the decoded peer certificate (``SSLObject.getpeercert()``) names hostname.

    IP addresses match only IP subjectAltNames; names match DNS subjectAltNames (RFC 6125
    left-most wildcard), or the common name when the certificate has no subjectAltName.
    """
    ip = _ip(hostname)
    sans = peercert.get("subjectAltName", ())
    for kind, value in sans:
        if ip is not None and kind == "IP Address" and _ip(value) == ip:
            return True
        if ip is None and kind == "DNS" and _dns_matches(value, hostname):
            return True
    if not sans and ip is None:
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName" and _dns_matches(value, hostname):
                    return True
    return False


def verify_peer_hostname(ssl_object, hostname, host=None):
    """Raise TLSError unless the verified peer certificate names hostname.

    :class:`CloudSSLContext` does this by itself after every handshake; this is for callers
    holding an ``SSLObject``/``SSLSocket`` from another context.
    """
    problem = _peer_hostname_problem(ssl_object, hostname)
    if problem:
        reason = "hostname-mismatch" if problem.startswith("hostname") else "unverified"
        raise TLSError(problem, host=host, reason=reason)
