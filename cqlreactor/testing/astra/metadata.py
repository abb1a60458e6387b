"""The fake Astra's metadata service: ``GET /metadata`` over HTTPS, client certificate
required, answering the local DC, the host ids and the proxy address."""

import json
import ssl
import threading

from cqlreactor.testing.astra.loopback import LoopbackServer

__all__ = ["MetadataServer"]


# --- the metadata service -------------------------------------------------------------------

class MetadataServer(LoopbackServer):
    """``GET /metadata`` over HTTPS with a required client certificate.

    Args:
        ssl_context: server context (its cert, CA for client certs, CERT_REQUIRED).
        document: callable() -> the JSON-able answer.
        host, port: where to listen (port 0: any).

    ``mode``: "ok", "down" (not listening), "slow" (answers after ``delay`` s), "bad_json",
    "missing_fields" (no contact_info), "http_error" (HTTP 500).  ``requests`` counts GETs
    answered (any mode but down).
    """

    MODES = ("ok", "down", "slow", "bad_json", "missing_fields", "http_error")
    OFF_MODE = "down"
    NAME = "fake-astra-metadata"

    def __init__(self, ssl_context, document, host="127.0.0.1", port=0):
        super(MetadataServer, self).__init__(host, port)
        self.ssl_context = ssl_context
        self.document = document
        self.delay = 3.0
        self.requests = 0
        self._wake = threading.Event()

    @property
    def url(self):
        return "https://%s:%d/metadata" % (self.host, self.port)

    def _on_listen(self):
        self._wake.clear()

    def _on_stop_listening(self):
        self._wake.set()                      # cut short any "slow" answer in progress

    def _serve(self, raw):
        try:
            raw.settimeout(10)
            conn = self.ssl_context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].split()
            self.requests += 1
            mode = self._mode
            if mode == "slow":
                self._wake.wait(self.delay)
            if len(line) < 2 or line[0] != b"GET" or line[1].split(b"?")[0] != b"/metadata":
                status, body = "404 Not Found", b'{"error": "not found"}'
            elif mode == "http_error":
                status, body = "500 Internal Server Error", b'{"error": "boom"}'
            elif mode == "bad_json":
                status, body = "200 OK", b'{"contact_info": {"local_dc": '
            elif mode == "missing_fields":
                status, body = "200 OK", json.dumps({"version": 1}).encode()
            else:
                status, body = "200 OK", json.dumps(self.document()).encode()
            conn.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n"
                          % (status, len(body))).encode() + body)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
