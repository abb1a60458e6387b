"""SNI endpoints and the TLS context for Astra.

Every Astra connection goes to the same SNI proxy; the TLS ClientHello's server name (SNI)
says which node the proxy must pipe it to: the node's host id.  The node's certificate,
however, names the proxy's host, not the host id.  So two names are in play per connection:

- ``server_hostname``: the host id, sent as SNI;
- ``tls_hostname``: the proxy's host name, checked against the peer certificate.

``ssl.SSLContext`` ties both to one ``server_hostname``, so the cloud context has
``check_hostname = False`` and the TLS layer must instead call :func:`verify_peer_hostname`
with ``endpoint.tls_hostname`` right after the handshake, before any CQL byte is sent.
Certificate verification against ``ca.crt`` (``CERT_REQUIRED``) stays on.  This is the contract
for ``cqlreactor/reactors/tls.py``: when an endpoint has ``tls_hostname``, wrap with
``server_hostname=endpoint.server_hostname`` and verify ``tls_hostname`` afterwards; if
``tls_hostname`` is None, the context's own ``check_hostname`` applies unchanged.
"""

import ipaddress
import socket
import ssl

from cqlreactor.core.errors import CloudConfigError, ConnectionException, TLSError

__all__ = ["SniEndpoint", "SniEndpointFactory", "make_ssl_context", "verify_peer_hostname",
           "hostname_matches"]


class SniEndpoint(object):
    """One Astra node, reached through the SNI proxy.

    Attributes:
        address: the proxy's host name (or IP) as the metadata service gave it.
        port: the proxy's port.
        server_hostname: the SNI name: the node's host id.
        host_id: the node's host id (same value; for the session's host map).
        tls_hostname: the name the peer certificate must match: the proxy's host.
    """

    __slots__ = ("address", "port", "server_hostname", "host_id", "tls_hostname", "_index",
                 "_getaddrinfo")

    def __init__(self, proxy_host, proxy_port, host_id, init_index=0, getaddrinfo=None):
        self.address = proxy_host
        self.port = int(proxy_port)
        self.host_id = str(host_id)
        self.server_hostname = self.host_id
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
        return (self.address, self.port, self.server_hostname)

    def __eq__(self, other):
        return isinstance(other, SniEndpoint) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._key())

    def __lt__(self, other):
        return self._key() < other._key()

    def __str__(self):
        return "%s:%d:%s" % (self.address, self.port, self.server_hostname)

    def __repr__(self):
        return "<SniEndpoint %s>" % (self,)


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


def make_ssl_context(ca_cert_path, cert_path, key_path, check_hostname, bundle_path="?"):
    """An SSLContext that trusts only the bundle's CA and presents the bundle's client cert.

    Args:
        check_hostname: True for the metadata service (one name for SNI and identity); False
            for node connections, where the TLS layer verifies ``endpoint.tls_hostname``
            itself (see the module docstring).  Certificate verification is always required.
    """
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = bool(check_hostname)
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
    """After the handshake: raise TLSError unless the verified peer certificate names hostname.

    Args:
        ssl_object: an ``ssl.SSLObject`` (or SSLSocket) whose handshake completed with
            ``CERT_REQUIRED``.
        hostname: ``endpoint.tls_hostname`` (the proxy's host for Astra).
        host: context for the error (e.g. ``str(endpoint)``).
    """
    if ssl_object.context.verify_mode != ssl.CERT_REQUIRED:
        raise TLSError("refusing to check %r on an unverified certificate (verify_mode is not "
                       "CERT_REQUIRED)" % (hostname,), host=host, reason="unverified")
    cert = ssl_object.getpeercert()
    if not cert:
        raise TLSError("the server presented no certificate", host=host, reason="no-certificate")
    if not hostname_matches(cert, hostname):
        names = [v for _, v in cert.get("subjectAltName", ())]
        raise TLSError("the server certificate does not name %r (it names %s)"
                       % (hostname, ", ".join(names) or "nothing"), host=host,
                       reason="hostname-mismatch")
