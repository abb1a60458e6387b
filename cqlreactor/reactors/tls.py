"""The one TLS layer every reactor shares: sans-IO, over ``ssl.MemoryBIO``.

    tls = TLSLayer(context, server_hostname="node1.example", host="10.0.0.1:9042")
    transport.write(tls.start())                      # ClientHello
    plaintext, outgoing = tls.receive(socket_bytes)   # handshake records or application data
    transport.write(outgoing) if outgoing
    if tls.handshake_complete: ... core.receive_data(plaintext)
    transport.write(tls.send(core.data_to_send()))

No socket is ever wrapped: bytes go in and out of two memory BIOs, so the same code runs under
asyncio, asyncore, gevent, eventlet and libev, and TLS behaves the same everywhere.  The SNI name
and the name checked against the certificate come from the endpoint (``server_hostname``; the
address when the endpoint has none).  Hostname verification is on unless the caller's context
turned ``check_hostname`` off.  A failed handshake raises :class:`TLSError` whose ``reason`` is
``"certificate"`` (chain not trusted, expired ..., or the server refused our client certificate
or its absence -- with TLS 1.3 that refusal arrives after the client's side of the handshake,
with the first read), ``"hostname"`` (the certificate does not name the server) or
``"protocol"`` (no common version or cipher, not TLS at all, peer gone ...).

Identity other than the SNI name (``check_hostname_as``): OpenSSL checks the certificate against
the one name it sends as SNI.  Where the two differ -- Astra's SNI proxy routes on the node's host
id, but every node's certificate names the proxy; a cluster reached by IP whose nodes all carry
one service name -- the layer sends ``server_hostname`` as SNI and, once the chain is verified,
checks the certificate against ``check_hostname_as`` itself (:func:`hostname_matches`: RFC 6125
DNS names with a left-most wildcard, IP addresses against IP subjectAltNames only).  A mismatch
fails the handshake like OpenSSL's own check: ``TLSError`` with reason ``"hostname"``.  The
context must verify the chain (``CERT_REQUIRED``) and leave ``check_hostname`` off (OpenSSL would
check the SNI name instead).  Without the argument the layer takes the name the context carries
(:func:`identity_of`: the cloud contexts, and :func:`context_from_options` with
``ssl_options={"check_hostname_as": ...}``), so every user of such a context gets the check;
the driver passes ``Reactor.connect(..., check_hostname_as=...)`` through.
"""

import ipaddress
import ssl

from cqlreactor.core.errors import ConnectionDefunct, TLSError

__all__ = ["TLSLayer", "default_context", "classify_ssl_error", "context_from_options",
           "identity_of", "context_class", "IdentityContextMixin", "hostname_matches",
           "peer_identity_problem"]

# OpenSSL X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH_CODES = (62, 64)
_READ_SIZE = 256 * 1024


def default_context():
    """A client context that verifies the chain against the system CAs and the hostname."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


_REFUSED_SSL_OPTIONS = (
    ("server_hostname", "the SNI name is the endpoint's; to check certificates against "
                        "another name use ssl_options={'check_hostname_as': name}"),
    ("server_side", "connections to Cassandra are client connections"),
    ("do_handshake_on_connect", "the handshake always runs right after the TCP connect "
                                "(within connect_timeout)"),
    ("suppress_ragged_eofs", "a TLS stream that ends without close_notify is always reported "
                             "as a lost connection"),
)


def _pinned_tls_version(ssl_version):
    """The ``ssl.TLSVersion`` an ``ssl_version`` protocol constant pins, or None for the
    negotiating ones (PROTOCOL_TLS, PROTOCOL_TLS_CLIENT, PROTOCOL_SSLv23)."""
    if ssl_version is None:
        return None
    negotiating = [getattr(ssl, n) for n in ("PROTOCOL_TLS", "PROTOCOL_TLS_CLIENT",
                                             "PROTOCOL_SSLv23") if hasattr(ssl, n)]
    if ssl_version in negotiating:
        return None
    pins = {}
    for protocol, version in (("PROTOCOL_TLSv1", "TLSv1"), ("PROTOCOL_TLSv1_1", "TLSv1_1"),
                              ("PROTOCOL_TLSv1_2", "TLSv1_2")):
        if hasattr(ssl, protocol) and hasattr(ssl, "TLSVersion"):
            pins[getattr(ssl, protocol)] = getattr(ssl.TLSVersion, version)
    if ssl_version in pins:
        return pins[ssl_version]
    raise ValueError("ssl_options ssl_version=%r is not a client protocol this Python can pin "
                     "(use ssl.PROTOCOL_TLS_CLIENT to negotiate, or ssl.PROTOCOL_TLSv1_2)"
                     % (ssl_version,))


def context_from_options(ssl_options):
    """An SSLContext from cassandra-driver style ``ssl_options``.

    Keys: ``ca_certs``, ``certfile``, ``keyfile``, ``check_hostname`` (default False, as in
    cassandra-driver: the certificate is verified against the CA, its name is checked only
    when this is True),
    ``cert_reqs`` (default CERT_REQUIRED), ``ssl_version`` (an ``ssl.PROTOCOL_*`` client
    constant: PROTOCOL_TLSv1_2 and the like pin that TLS version), ``ciphers`` (OpenSSL cipher
    list), and ``check_hostname_as``: a name every server certificate must carry instead of the
    endpoint's (see the module docstring; it turns OpenSSL's own check off and needs
    ``cert_reqs`` CERT_REQUIRED).  cassandra-driver's ``ssl.wrap_socket`` keys
    (``server_hostname``, ``server_side``, ``do_handshake_on_connect``,
    ``suppress_ragged_eofs``) are refused, each with its alternative.

    Raises:
        ValueError: an unknown or refused key, a server-side ``ssl_version``, or
            ``check_hostname_as`` without certificate verification.
    """
    options = dict(ssl_options)
    for key, why in _REFUSED_SSL_OPTIONS:
        if key in options:
            raise ValueError("ssl_options %r is not supported: %s" % (key, why))
    pinned = _pinned_tls_version(options.pop("ssl_version", None))
    ciphers = options.pop("ciphers", None)
    cafile = options.pop("ca_certs", None)
    check_hostname = options.pop("check_hostname", False)
    cert_reqs = options.pop("cert_reqs", ssl.CERT_REQUIRED)
    check_as = options.pop("check_hostname_as", None)
    if check_as:
        if cert_reqs != ssl.CERT_REQUIRED:
            raise ValueError("ssl_options check_hostname_as=%r needs cert_reqs CERT_REQUIRED: a "
                             "name is only worth checking on a verified certificate"
                             % (check_as,))
        context = context_class("IdentitySSLContext")(ssl.PROTOCOL_TLS_CLIENT)
        context.tls_hostname = check_as
        context.check_hostname = False
        if cafile:
            context.load_verify_locations(cafile=cafile)
        else:
            context.load_default_certs()
    else:
        context = ssl.create_default_context(cafile=cafile)
        context.check_hostname = bool(check_hostname) and cert_reqs != ssl.CERT_NONE
    context.verify_mode = cert_reqs
    if pinned is not None:
        context.minimum_version = context.maximum_version = pinned
    if ciphers:
        context.set_ciphers(ciphers)
    certfile = options.pop("certfile", None)
    if certfile:
        context.load_cert_chain(certfile, options.pop("keyfile", None))
    if options:
        raise ValueError("unknown ssl_options: %s" % ", ".join(sorted(options)))
    return context


class IdentityContextMixin(object):
    """Mixed into an ``ssl.SSLContext`` class by :func:`context_class`: ``tls_hostname``, the
    name :class:`TLSLayer` checks server certificates against instead of the SNI name."""

    tls_hostname = None


_context_classes = {}


def context_class(name, mixin=IdentityContextMixin):
    """``mixin`` over whatever ``ssl.SSLContext`` is *now* (a subclass of it, cached by both).

    gevent/eventlet monkey-patching replace ``ssl.SSLContext`` with a green class, whose
    instances take no new attributes and whose original would hit eventlet's recursion bug on
    attribute setters (eventlet #371); so a context that must carry ``tls_hostname`` is made
    from a subclass of the current class."""
    base = ssl.SSLContext
    key = (name, mixin, base)
    cls = _context_classes.get(key)
    if cls is None:
        cls = type(name, (mixin, base), {"__doc__": mixin.__doc__})
        _context_classes[key] = cls
    return cls


def identity_of(context):
    """The name ``context`` says server certificates must carry instead of the SNI name: its
    ``tls_hostname`` (cloud contexts, :func:`context_from_options`), or None."""
    return getattr(context, "tls_hostname", None) or None


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


def peer_identity_problem(ssl_object, hostname):
    """None if the verified peer certificate of ``ssl_object`` (an SSLObject or SSLSocket after
    its handshake) names ``hostname``, else what is wrong, as text ("hostname mismatch: ...")."""
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


def classify_ssl_error(exc):
    """Map an exception from the handshake to a TLSError reason: certificate/hostname/protocol."""
    verification_error = getattr(ssl, "SSLCertVerificationError", None)  # Python 3.7+
    if verification_error is not None and isinstance(exc, verification_error):
        if getattr(exc, "verify_code", None) in _NAME_MISMATCH_CODES:
            return "hostname"
        text = str(getattr(exc, "verify_message", "") or exc).lower()
        return "hostname" if "hostname" in text or "ip address mismatch" in text else "certificate"
    if isinstance(exc, ssl.CertificateError):  # Python 3.6: ssl.match_hostname after the handshake
        return "hostname"
    if isinstance(exc, ssl.SSLError):
        reason = (getattr(exc, "reason", None) or str(exc)).upper()
        if "CERTIFICATE" in reason:  # verify failed here (3.6), or the peer refused our cert
            return "certificate"
    return "protocol"


#: OpenSSL's reasons for alerts a server sends when it refuses the client's certificate
#: (TLS 1.3 "certificate required", and bad / unknown / untrusted / expired ones)
_CLIENT_CERTIFICATE_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN",
                              "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_EXPIRED",
                              "CERTIFICATE_REVOKED", "UNKNOWN_CA", "ACCESS_DENIED")


def _refused_our_certificate(exc):
    # "TLSV13_ALERT_CERTIFICATE_REQUIRED"; 3.6 may give only "tlsv13 alert certificate required"
    reason = (getattr(exc, "reason", None) or str(exc)).upper().replace(" ", "_")
    return "ALERT" in reason and any(alert in reason for alert in _CLIENT_CERTIFICATE_ALERTS)


class TLSLayer(object):
    """Client side TLS over memory BIOs.  Not thread-safe: drive it from the loop thread.

    Args:
        context: an ``ssl.SSLContext`` (None: :func:`default_context`).
        server_hostname: SNI name and the name to verify; None skips SNI (and needs a context
            with ``check_hostname`` off).
        host: the endpoint as text, put into every error.
        check_hostname_as: verify the certificate against this name instead of
            ``server_hostname`` (which is still the SNI); see the module docstring.  None:
            the context's :func:`identity_of`, if any.
    Raises:
        ValueError: ``check_hostname_as`` with a context that does not verify certificates or
            that checks the SNI name itself (``check_hostname`` on).
        TLSError: the context cannot start a client session (reason ``"protocol"``).
    """

    def __init__(self, context=None, server_hostname=None, host=None, check_hostname_as=None):
        self.context = context if context is not None else default_context()
        self.host = host
        self.server_hostname = server_hostname
        if check_hostname_as is None:
            check_hostname_as = identity_of(self.context)
        self.check_hostname_as = check_hostname_as
        if check_hostname_as and (self.context.check_hostname
                                  or self.context.verify_mode != ssl.CERT_REQUIRED):
            raise ValueError("check_hostname_as=%r needs a context with verify_mode CERT_REQUIRED "
                             "and check_hostname off (it would check %r instead)"
                             % (check_hostname_as, server_hostname))
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        try:
            self._ssl = self.context.wrap_bio(self._incoming, self._outgoing, server_side=False,
                                              server_hostname=server_hostname)
        except (ValueError, ssl.SSLError) as exc:  # e.g. check_hostname without a name
            raise self._error("cannot start TLS: %s" % (exc,), "protocol", exc)
        self.handshake_complete = False
        self.peer_closed = False
        self._peer_accepted = False     # application data came: the server took our certificate

    def _error(self, text, reason, cause=None):
        err = TLSError("TLS handshake failed (%s): %s" % (reason, text), host=self.host,
                       reason=reason)
        err.__cause__ = cause
        return err

    def start(self):
        """Begin the handshake; returns the bytes to send (the ClientHello)."""
        self._handshake()
        return self._outgoing.read()

    def _handshake(self):
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLError, ssl.CertificateError) as exc:
            text = getattr(exc, "verify_message", None) or str(exc)
            reason = classify_ssl_error(exc)
            if reason == "protocol" and self._client_certificate_refused(exc):
                reason = "certificate"
                text = "the server refused the client certificate (%s)" % (text,)
            raise self._error(text, reason, exc)
        if self.check_hostname_as:
            problem = peer_identity_problem(self._ssl, self.check_hostname_as)
            if problem:
                raise self._error(problem, "hostname")
        self.handshake_complete = True
        return True

    def receive(self, data):
        """Feed bytes read from the socket.

        Returns:
            (plaintext, outgoing): application bytes for the core (b"" during the handshake) and
            TLS bytes to write to the socket (handshake records, alerts, b"" usually).
        Raises:
            TLSError: the handshake failed.
            ConnectionDefunct: a TLS error after the handshake (bad record, MAC ...).
        """
        if data:
            self._incoming.write(data)
        if not self.handshake_complete:
            if not self._handshake():  # raises TLSError; pending_outgoing() has the alert
                return b"", self._outgoing.read()
        chunks = []
        read = self._ssl.read
        while True:
            try:
                chunk = read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                break
            except ssl.SSLError as exc:
                raise self._read_error(exc)
            if not chunk:
                self.peer_closed = True
                break
            self._peer_accepted = True
            chunks.append(chunk)
        plaintext = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return plaintext, self._outgoing.read()

    def _client_certificate_refused(self, exc):
        """A handshake alert that means "your certificate (or its absence) is refused": one
        naming a certificate, or a bare handshake_failure after the server had agreed on the
        version and cipher (TLS 1.2 servers say no more when a required client certificate
        is missing; without a ServerHello it is a protocol mismatch)."""
        if _refused_our_certificate(exc):
            return True
        reason = (getattr(exc, "reason", None) or str(exc)).upper().replace(" ", "_")
        return "ALERT_HANDSHAKE_FAILURE" in reason and self._ssl.cipher() is not None

    def _read_error(self, exc):
        """The error for a TLS failure after our side of the handshake.

        With TLS 1.3 the client finishes its handshake before the server has checked the
        client certificate, so a server that requires one and gets none (or one it does not
        trust) refuses with an alert the client reads only now: that is still a refused
        handshake (TLSError, reason "certificate"), not a broken connection.  Anything else,
        or anything after the server sent application data, is ConnectionDefunct.
        """
        if not self._peer_accepted and _refused_our_certificate(exc):
            return self._error("the server refused the client certificate (%s)"
                               % (getattr(exc, "reason", None) or exc,), "certificate", exc)
        err = ConnectionDefunct("TLS error: %s" % (exc,), host=self.host, cause=exc)
        err.__cause__ = exc
        return err

    def pending_outgoing(self):
        """TLS bytes waiting to be written (e.g. the alert after a failed handshake)."""
        return self._outgoing.read()

    def send(self, data):
        """Encrypt application bytes; returns the TLS records to write."""
        view = memoryview(data)
        total = len(view)
        offset = 0
        write = self._ssl.write
        while offset < total:
            try:
                offset += write(view[offset:])
            except ssl.SSLError as exc:
                err = ConnectionDefunct("TLS error: %s" % (exc,), host=self.host, cause=exc)
                err.__cause__ = exc
                raise err
        return self._outgoing.read()

    def close(self):
        """Start an orderly shutdown; returns the close_notify alert to write (maybe b"")."""
        try:
            self._ssl.unwrap()
        except ssl.SSLError:
            pass  # the peer's close_notify has not arrived; we do not wait for it
        return self._outgoing.read()

    def cipher(self):
        """(name, protocol, bits) of the negotiated cipher, or None before the handshake."""
        return self._ssl.cipher()

    def getpeercert(self, binary_form=False):
        return self._ssl.getpeercert(binary_form)
