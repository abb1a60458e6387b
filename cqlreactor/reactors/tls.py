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
``"certificate"`` (chain not trusted, expired ...), ``"hostname"`` (the certificate does not name
the server) or ``"protocol"`` (no common version or cipher, not TLS at all, peer gone ...).
"""

import ssl

from cqlreactor.core.errors import ConnectionDefunct, TLSError

__all__ = ["TLSLayer", "default_context", "classify_ssl_error"]

# OpenSSL X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_MISMATCH_CODES = (62, 64)
_READ_SIZE = 256 * 1024


def default_context():
    """A client context that verifies the chain against the system CAs and the hostname."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


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


class TLSLayer(object):
    """Client side TLS over memory BIOs.  Not thread-safe: drive it from the loop thread.

    Args:
        context: an ``ssl.SSLContext`` (None: :func:`default_context`).
        server_hostname: SNI name and the name to verify; None skips SNI (and needs a context
            with ``check_hostname`` off).
        host: the endpoint as text, put into every error.
    """

    def __init__(self, context=None, server_hostname=None, host=None):
        self.context = context if context is not None else default_context()
        self.host = host
        self.server_hostname = server_hostname
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        try:
            self._ssl = self.context.wrap_bio(self._incoming, self._outgoing, server_side=False,
                                              server_hostname=server_hostname)
        except (ValueError, ssl.SSLError) as exc:  # e.g. check_hostname without a name
            raise self._error("cannot start TLS: %s" % (exc,), "protocol", exc)
        self.handshake_complete = False
        self.peer_closed = False

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
            raise self._error(getattr(exc, "verify_message", None) or str(exc),
                              classify_ssl_error(exc), exc)
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
                err = ConnectionDefunct("TLS error: %s" % (exc,), host=self.host, cause=exc)
                err.__cause__ = exc
                raise err
            if not chunk:
                self.peer_closed = True
                break
            chunks.append(chunk)
        plaintext = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return plaintext, self._outgoing.read()

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
