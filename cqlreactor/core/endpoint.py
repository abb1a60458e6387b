"""Where to connect: the :class:`Endpoint` every layer passes around (pure data, no IO).

It lives in the core so that the session layer and cloud/ can name a node without importing a
reactor; ``cqlreactor.reactors`` and ``cqlreactor.reactors.base`` re-export it.
"""

__all__ = ["Endpoint"]


class Endpoint(object):
    """Where to connect.

    Attributes:
        address: IP address (or host name) to open the TCP connection to.
        port: TCP port (9042 by default).
        server_hostname: the TLS SNI name and the name the certificate must carry; None means
            ``address``.  Cloud endpoints connect to the SNI proxy and set this to the host id.
        host_id: the node's host id (UUID text) when known, for errors and logs.
    """

    __slots__ = ("address", "port", "server_hostname", "host_id")

    def __init__(self, address, port=9042, server_hostname=None, host_id=None):
        self.address = address
        self.port = int(port)
        self.server_hostname = server_hostname
        self.host_id = host_id

    def __str__(self):
        text = "%s:%d" % (self.address, self.port)
        if self.host_id:
            text += "/" + str(self.host_id)
        return text

    def __repr__(self):
        return "Endpoint(%r, %d, server_hostname=%r, host_id=%r)" % (
            self.address, self.port, self.server_hostname, self.host_id)

    def _key(self):
        return (self.address, self.port, self.server_hostname, self.host_id)

    def __eq__(self, other):
        return isinstance(other, Endpoint) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._key())
