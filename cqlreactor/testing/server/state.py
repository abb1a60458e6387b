"""The simulated server's state records: constants, one node, one client connection.

Shared by the loop (``loop.py``) and its parts (``protocol``, ``topology``, ``faults``); it
imports none of them.
"""

import collections
import itertools
import ssl
import uuid

from cqlreactor.core.framing import SERVER, Framing

__all__ = ["NodeState", "ServerConnection"]

# Opcodes.
ERROR, STARTUP, READY, AUTHENTICATE, OPTIONS, SUPPORTED = 0x00, 0x01, 0x02, 0x03, 0x05, 0x06
QUERY, RESULT, PREPARE, EXECUTE, REGISTER, EVENT, BATCH = 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D
AUTH_CHALLENGE, AUTH_RESPONSE, AUTH_SUCCESS = 0x0E, 0x0F, 0x10
OPCODE_NAMES = {ERROR: "ERROR", STARTUP: "STARTUP", READY: "READY",
                AUTHENTICATE: "AUTHENTICATE", OPTIONS: "OPTIONS", SUPPORTED: "SUPPORTED",
                QUERY: "QUERY", RESULT: "RESULT", PREPARE: "PREPARE", EXECUTE: "EXECUTE",
                REGISTER: "REGISTER", EVENT: "EVENT", BATCH: "BATCH",
                AUTH_CHALLENGE: "AUTH_CHALLENGE", AUTH_RESPONSE: "AUTH_RESPONSE",
                AUTH_SUCCESS: "AUTH_SUCCESS"}
REQUEST_OPCODES = (QUERY, PREPARE, EXECUTE, BATCH)

PROTOCOL_ERROR = 0x000A
BAD_CREDENTIALS = 0x0100
SERVER_ERROR = 0x0000

CQL_VERSION = "3.4.5"
AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
MAX_FRAME = 256 * 1024 * 1024
READ_SIZE = 256 * 1024
LOG_LIMIT = 200000

# Connection phases.
NEW, STARTED, AUTHENTICATING, READY_PHASE, CLOSED = range(5)


class NodeState(object):
    """One node: its listener, its connections, its faults, its query log."""

    def __init__(self, index, address, port):
        self.index = index
        self.address = address
        self.port = port
        self.engine_index = index         # position in the engine's ring (moves on removals)
        self.removed = False              # decommissioned: never listens again
        self.host_id = uuid.uuid5(uuid.NAMESPACE_DNS, "cqlreactor-node-%d" % (index + 1,))
        self.datacenter = "datacenter1"
        self.rack = "rack1"
        self.up = True
        self.listener = None
        self.connections = set()
        self.stalled_until = 0.0
        self.close_after = None
        self.corrupt_next = False
        self.cache = {}                   # request key -> response parts (the fast path)
        self.cache_version = -1
        self.log = collections.deque(maxlen=LOG_LIMIT)
        self.accepted = 0

    @property
    def faulty(self):
        return bool(self.stalled_until or self.close_after is not None or self.corrupt_next)

    def describe(self):
        return {"index": self.index, "address": self.address, "port": self.port,
                "host_id": str(self.host_id), "datacenter": self.datacenter,
                "rack": self.rack, "up": self.up, "connections": len(self.connections),
                "accepted": self.accepted, "removed": self.removed}


class ServerConnection(object):
    """A client connection to one node; ``framing`` (core ``Framing``, server role) holds its
    framing: bare envelopes until the answer to STARTUP, then v5 segments or v3/v4
    compression."""

    __slots__ = ("server", "node", "sock", "peer", "framing", "head", "phase", "version",
                 "registered", "wbuf", "writing", "tls", "tls_in", "tls_out", "tls_done",
                 "closing", "closed", "keyspace", "id", "user")

    _ids = itertools.count(1)

    def __init__(self, server, node, sock, peer, tls_context=None):
        self.server = server
        self.node = node
        self.sock = sock
        self.peer = peer
        self.framing = Framing(SERVER, max_frame_size=MAX_FRAME,
                               versions=server.protocol_versions)
        self.head = b""
        self.phase = NEW
        self.version = None
        self.registered = frozenset()
        self.wbuf = []
        self.writing = False
        self.closing = False
        self.closed = False
        self.keyspace = None
        self.user = None                # the role authenticated as (error messages name it)
        self.id = next(self._ids)
        if tls_context is not None:
            self.tls_in = ssl.MemoryBIO()
            self.tls_out = ssl.MemoryBIO()
            self.tls = tls_context.wrap_bio(self.tls_in, self.tls_out, server_side=True)
            self.tls_done = False
        else:
            self.tls = self.tls_in = self.tls_out = None
            self.tls_done = True
