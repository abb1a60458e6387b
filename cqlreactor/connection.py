"""The connection-level names cassandra-driver users import from ``cassandra.connection``:
the exceptions they catch and the endpoint class contact points can be given as.

The connection itself is the IO-free state machine in ``cqlreactor.core.connection`` driven
by a reactor (``cqlreactor.reactors``); cassandra-driver's ``Connection`` subclasses (one per
event loop) have no counterpart here: choose the reactor with ``Cluster(connection_class=...)``.
"""

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.core.errors import (ChecksumMismatch, ConnectionBusy, ConnectionException,
                                    ConnectionShutdown, OperationTimedOut, ProtocolError,
                                    UnsupportedProtocolVersion)

__all__ = ["ConnectionException", "ConnectionShutdown", "ConnectionBusy", "ProtocolError",
           "OperationTimedOut", "CrcMismatchException", "ProtocolVersionUnsupported",
           "DefaultEndPoint", "Endpoint"]

#: a v5 segment whose CRC did not match (cassandra-driver's name)
CrcMismatchException = ChecksumMismatch

#: the server refused the protocol version offered (cassandra-driver's name); the driver
#: negotiates down by itself, so this reaches users only with a fixed ``protocol_version``
ProtocolVersionUnsupported = UnsupportedProtocolVersion

#: where to connect: ``DefaultEndPoint(address, port=9042)``; a Cluster's ``contact_points``
#: take these as well as addresses
DefaultEndPoint = Endpoint
