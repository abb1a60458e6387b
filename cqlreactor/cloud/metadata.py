"""The Astra metadata service client: one blocking HTTPS GET at connect time.

``GET https://{host}:{port}/metadata`` with the bundle's client certificate, the server
verified against the bundle's ``ca.crt`` (host name included).  The answer looks like::

    {"version": 1, "region": "...",
     "contact_info": {"type": "sni_proxy", "local_dc": "dc1",
                      "contact_points": ["<host id>", ...],
                      "sni_proxy_address": "proxy.example.com:29042"}}

It runs before any reactor exists (like cassandra-driver and the Java driver do), so plain
``http.client`` is right here: no reactor needed, and it works unchanged under gevent/eventlet
monkey-patching.
"""

import http.client
import io
import json
import socket
import ssl
import time

from cqlreactor.core.errors import CloudConfigError

__all__ = ["CloudMetadata", "fetch_metadata", "parse_metadata", "DEFAULT_TIMEOUT",
           "MAX_RESPONSE_SIZE"]

DEFAULT_TIMEOUT = 5.0
MAX_RESPONSE_SIZE = 1024 * 1024
DEFAULT_SNI_PORT = 9042


class CloudMetadata(object):
    """What the metadata service said.

    Attributes:
        local_dc: the database's data center (feeds the load-balancing policy).
        host_ids: the contact points, as host ids (strings).
        sni_host, sni_port: the SNI proxy.
        raw: the whole decoded JSON document.
    """

    __slots__ = ("local_dc", "host_ids", "sni_host", "sni_port", "raw")

    def __init__(self, local_dc, host_ids, sni_host, sni_port, raw=None):
        self.local_dc = local_dc
        self.host_ids = list(host_ids)
        self.sni_host = sni_host
        self.sni_port = sni_port
        self.raw = raw

    def __repr__(self):
        return "<CloudMetadata dc=%s proxy=%s:%s hosts=%d>" % (
            self.local_dc, self.sni_host, self.sni_port, len(self.host_ids))


def _error(url, problem):
    return CloudConfigError("Astra metadata service %s: %s" % (url, problem))


def split_host_port(text, default_port=DEFAULT_SNI_PORT):
    """'host:port', '[v6]:port', 'host' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""          # a bare name, or a bare IPv6 literal
    if not host:
        raise ValueError("no host in %r" % (text,))
    return host, (int(port) if port else default_port)


def parse_metadata(body, url="?"):
    """Decode the service's JSON answer.

    Raises:
        CloudConfigError naming the URL and the missing or malformed field.
    """
    try:
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _error(url, "the answer is not valid JSON (%s)" % (exc,))
    if not isinstance(doc, dict) or not isinstance(doc.get("contact_info"), dict):
        raise _error(url, "the answer has no 'contact_info' object")
    info = doc["contact_info"]
    local_dc = info.get("local_dc")
    if not isinstance(local_dc, str) or not local_dc:
        raise _error(url, "contact_info has no 'local_dc'")
    points = info.get("contact_points")
    if (not isinstance(points, list) or not points
            or not all(isinstance(p, str) and p for p in points)):
        raise _error(url, "contact_info.contact_points must be a non-empty list of host ids, "
                          "got %r" % (points,))
    proxy = info.get("sni_proxy_address")
    if not isinstance(proxy, str) or not proxy:
        raise _error(url, "contact_info has no 'sni_proxy_address'")
    try:
        sni_host, sni_port = split_host_port(proxy)
        if not 0 < sni_port < 65536:
            raise ValueError("port out of range")
    except ValueError as exc:
        raise _error(url, "contact_info.sni_proxy_address %r is not host:port (%s)"
                          % (proxy, exc))
    return CloudMetadata(local_dc, points, sni_host, sni_port, doc)


class _Transient(Exception):
    """A failure worth one retry (connect refused, timeout, reset, 5xx)."""


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


class _DeadlineReader(io.RawIOBase):
    """The read side http.client gets from ``makefile``: every read bounded by the deadline."""

    def __init__(self, owner):
        super(_DeadlineReader, self).__init__()
        self._owner = owner

    def readable(self):
        return True

    def readinto(self, buffer):
        sock = self._owner.sock
        sock.settimeout(_remaining(self._owner.deadline))
        return sock.recv_into(buffer)

    def close(self):
        if not self.closed:
            super(_DeadlineReader, self).close()
            self._owner.release()


class _DeadlineSocket(object):
    """What http.client uses of a socket (sendall, makefile, close), each operation bounded by
    one deadline for the whole attempt: a service that trickles its answer byte by byte cannot
    stretch the call past ``connect_timeout`` as per-operation socket timeouts would let it."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self._readers = 0
        self._closed = False

    def sendall(self, data):
        self.sock.settimeout(_remaining(self.deadline))
        self.sock.sendall(data)

    def makefile(self, mode="rb", *args, **kwargs):
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def release(self):
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self.sock.close()

    def close(self):
        # like a real socket: the response may still be reading; the last reader closes it
        self._closed = True
        if self._readers <= 0:
            self.sock.close()


class _DeadlineHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, context, deadline):
        super(_DeadlineHTTPSConnection, self).__init__(host, port, context=context,
                                                       timeout=_remaining(deadline))
        self._deadline = deadline
        self._tls_context = context

    def connect(self):
        sock = socket.create_connection((self.host, self.port), _remaining(self._deadline))
        try:
            sock.settimeout(_remaining(self._deadline))
            tls = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(tls, self._deadline)


def _get_once(host, port, ssl_context, timeout, url):
    conn = _DeadlineHTTPSConnection(host, port, ssl_context, time.monotonic() + timeout)
    response = None
    try:
        try:
            conn.request("GET", "/metadata", headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_RESPONSE_SIZE + 1)
        except ssl.SSLError as exc:
            if isinstance(exc, getattr(ssl, "SSLCertVerificationError", ())):
                raise _error(url, "the server's certificate failed verification against the "
                                  "bundle's ca.crt (%s)" % (getattr(exc, "verify_message", exc),))
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise _error(url, "the server's certificate failed verification against the "
                                  "bundle's ca.crt (%s)" % (exc,))
            if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                raise _Transient("TLS connection closed during the handshake (%s); the service "
                                 "may have rejected the bundle's client certificate" % (exc,))
            raise _error(url, "TLS failed (%s); the service may have rejected the bundle's "
                              "client certificate" % (exc,))
        except ssl.CertificateError as exc:
            raise _error(url, "the server's certificate does not match %s (%s)" % (host, exc))
        except socket.timeout:
            raise _Transient("no answer within %.1f s" % (timeout,))
        except OSError as exc:
            raise _Transient("cannot connect or read (%s)" % (exc.strerror or exc,))
        except http.client.HTTPException as exc:
            raise _Transient("bad HTTP answer (%s: %s)" % (type(exc).__name__, exc))
    finally:
        if response is not None:
            response.close()
        conn.close()
    if len(body) > MAX_RESPONSE_SIZE:
        raise _error(url, "the answer is larger than %d bytes" % MAX_RESPONSE_SIZE)
    if response.status >= 500:
        raise _Transient("HTTP %d %s" % (response.status, response.reason))
    if response.status != 200:
        raise _error(url, "HTTP %d %s" % (response.status, response.reason))
    return body


def fetch_metadata(host, port, ssl_context, timeout=DEFAULT_TIMEOUT, retries=1, url=None):
    """GET the metadata; retry transient failures ``retries`` times.

    Args:
        host, port: the metadata service (config.json ``host``/``port``).
        ssl_context: from ``make_ssl_context(..., check_hostname=True)``.
        timeout: seconds for each attempt, connect, TLS handshake, request and answer together
            (cloud ``connect_timeout``).
        retries: extra attempts after a refused connection, a timeout or a 5xx answer.

    Returns:
        CloudMetadata

    Raises:
        CloudConfigError naming the URL and what went wrong.
    """
    if url is None:
        url = "https://%s:%d/metadata" % ("[%s]" % host if ":" in host else host, port)
    problems = []
    for _ in range(1 + max(0, int(retries))):
        try:
            body = _get_once(host, port, ssl_context, timeout, url)
        except _Transient as exc:
            problems.append(str(exc))
            continue
        return parse_metadata(body, url)
    distinct = [p for i, p in enumerate(problems) if p not in problems[:i]]
    raise _error(url, "; then ".join(distinct) + " (after %d attempt%s; check the database's "
                 "status in the Astra console)" % (len(problems), "s" if len(problems) > 1 else ""))
