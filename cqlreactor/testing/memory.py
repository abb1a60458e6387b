"""An in-memory CQL peer for one client connection: bytes in, bytes out, no sockets or clock.

:class:`MemoryServer` answers the handshake (versions, beta, SASL PLAIN, compression) and a few
requests, built from the core's messages and the server role of its :class:`Framing`, so the
framing switch it applies is the one the client applies (one rule, two roles).  ``pump`` moves
bytes between a client :class:`~cqlreactor.core.connection.Connection` and it.  The self check
(``python -m cqlreactor selfcheck``) and the unit tests use both.
"""

from cqlreactor.core import messages as m
from cqlreactor.core.compression import available_compressors
from cqlreactor.core.errors import UnsupportedProtocolVersion
from cqlreactor.core.framing import SERVER, Framing
from cqlreactor.core.frames import FLAG_USE_BETA
from cqlreactor.core.types import parse_cql_type

__all__ = ["MemoryServer", "pump", "PASSWORD_AUTHENTICATOR"]

PASSWORD_AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
_PROTOCOL_ERROR = 0x000A
_BAD_CREDENTIALS = 0x0100
_INVALID = 0x2200


class MemoryServer(object):
    """A small in-memory CQL server for one client connection.

    Args:
        versions: protocol versions it speaks.
        beta_versions: versions it speaks only with the USE_BETA flag.
        credentials: (username, password) to demand SASL PLAIN auth, or None.
        compression: the COMPRESSION names it offers in SUPPORTED.
        legacy_rejection: reject versions the way Cassandra 2.x/3.0 did (no version list).
        challenge: send one AUTH_CHALLENGE before AUTH_SUCCESS.
        columns: [(name, cql type text)] of the table every SELECT reads.
        rows: the rows every SELECT returns.

    Attributes:
        requests: every (stream, message) received after the handshake.
        startup_options: the client's STARTUP options.
        held: queries (text) that get no answer until ``release()``.
        version: the protocol version of the connection, once a usable frame arrived.
        ready: the handshake (and auth) is done.
        closed: the server gave up on the connection (it reads nothing more).
    """

    def __init__(self, versions=(3, 4, 5), beta_versions=(), credentials=None,
                 compression=("lz4", "snappy"), legacy_rejection=False, challenge=False,
                 columns=(("k", "int"), ("v", "text")), rows=((1, "one"), (2, "two"))):
        self.versions = tuple(versions)
        self.beta_versions = tuple(beta_versions)
        self.credentials = credentials
        self.compression = list(compression)
        self.legacy_rejection = legacy_rejection
        self.challenge = challenge
        self.columns = [("ks", "t", name, parse_cql_type(kind)) for name, kind in columns]
        self.rows = [tuple(r) for r in rows]
        self.requests = []
        self.startup_options = None
        self.held = set()
        self.version = None
        self.ready = False
        self.closed = False
        self._framing = Framing(SERVER)
        self._held_streams = []
        self._challenged = False

    @property
    def framed(self):
        """Past our answer to STARTUP (v5: segments from here on)."""
        return self._framing.switched

    # --- bytes in, bytes out ------------------------------------------------------------------

    def receive_data(self, data):
        """Feed the client's bytes; answers are queued for ``data_to_send``."""
        if self.closed:
            return
        try:
            for frame in self._framing.receive_data(data):
                self._frame(frame)
                if self.closed:
                    return
        except UnsupportedProtocolVersion as exc:   # a version the framing cannot even parse
            self._reject(exc.requested, exc.stream_id or 0)

    def data_to_send(self):
        return self._framing.data_to_send()

    def _frame(self, frame):
        if self.ready:
            message = m.decode_message(frame, self.version)
            self.requests.append((frame.stream, message))
            self._answer(frame.stream, message)
            return
        if not self.framed:
            version = frame.version
            if version not in self.versions and not (
                    version in self.beta_versions and frame.flags & FLAG_USE_BETA):
                self._reject(version, frame.stream)
                return
            self.version = version
        self._handshake(frame.stream, m.decode_message(frame, self.version))

    # --- handshake ----------------------------------------------------------------------------

    def _handshake(self, stream, message):
        if isinstance(message, m.OptionsMessage):
            self._send(stream, m.SupportedMessage({
                "CQL_VERSION": ["3.4.5"], "COMPRESSION": list(self.compression),
                "PROTOCOL_VERSIONS": ["%d/v%d" % (v, v) for v in self.versions]}))
        elif isinstance(message, m.StartupMessage):
            self.startup_options = dict(message.options)
            name = self.startup_options.get("COMPRESSION")
            compressor = available_compressors()[name] if name else None
            if compressor is not None and self.version >= 5 and not compressor.supports_segments:
                self._fail(stream, _PROTOCOL_ERROR,
                           "%s compression is not supported with protocol v5" % (name,))
                return
            self._framing.startup(compressor)
            # the answer (READY or AUTHENTICATE) switches the framing as it is sent
            if self.credentials is None:
                self._send(stream, m.ReadyMessage())
                self.ready = True
            else:
                self._send(stream, m.AuthenticateMessage(PASSWORD_AUTHENTICATOR))
        elif isinstance(message, m.AuthResponseMessage):
            if self.challenge and not self._challenged:
                self._challenged = True
                self._send(stream, m.AuthChallengeMessage(b"PLAIN-START"))
                return
            user, password = self.credentials
            expected = b"\x00" + user.encode() + b"\x00" + password.encode()
            if message.token == expected:
                self._send(stream, m.AuthSuccessMessage(None))
                self.ready = True
            else:
                self._fail(stream, _BAD_CREDENTIALS,
                           "Provided username %s and/or password are incorrect" % (user,))
        else:
            self._fail(stream, _PROTOCOL_ERROR, "Unexpected message %s, expecting STARTUP or "
                       "OPTIONS" % (type(message).__name__,))

    def _reject(self, version, stream):
        speaks = max(self.versions)
        if version in self.beta_versions:
            text = ("Beta version of the protocol used (%d/v%d-beta), but USE_BETA flag is unset"
                    % (version, version))
        elif self.legacy_rejection:
            text = "Invalid or unsupported protocol version: %d" % (version,)
        else:
            listed = ["%d/v%d" % (v, v) for v in self.versions] + [
                "%d/v%d-beta" % (v, v) for v in self.beta_versions]
            text = ("Invalid or unsupported protocol version (%d); supported versions are (%s)"
                    % (version, ", ".join(listed)))
        self._framing.send(m.encode_message(m.ErrorMessage(_PROTOCOL_ERROR, text), stream,
                                            speaks, is_response=True))
        self.closed = True

    def _fail(self, stream, code, text):
        self._send(stream, m.ErrorMessage(code, text))
        self.closed = True

    # --- requests -----------------------------------------------------------------------------

    def _answer(self, stream, message):
        if isinstance(message, m.OptionsMessage):
            self._send(stream, m.SupportedMessage({"CQL_VERSION": ["3.4.5"]}))
        elif isinstance(message, m.QueryMessage):
            if message.query in self.held:
                self._held_streams.append(stream)
                return
            self._send(stream, self._result(message.query))
        else:
            self._send(stream, m.ErrorMessage(_INVALID, "unsupported in MemoryServer: %s"
                                              % (type(message).__name__,)))

    def _result(self, query):
        if query.strip().lower().startswith("select"):
            return m.RowsResult(self.columns, list(self.rows))
        return m.VoidResult()

    def release(self):
        """Answer every held query now (late answers)."""
        streams, self._held_streams = self._held_streams, []
        for stream in streams:
            self._send(stream, self._result("select"))

    def push_event(self, event):
        """Send an EVENT message on stream -1."""
        self._send(-1, event)

    def _send(self, stream, message):
        self._framing.send(m.encode_message(message, stream, self.version, is_response=True))


def pump(client, server, max_rounds=20):
    """Move bytes both ways until neither side has anything to send; return client events."""
    events = []
    for _ in range(max_rounds):
        out = client.data_to_send()
        if out:
            server.receive_data(out)
        back = server.data_to_send()
        if back:
            events.extend(client.receive_data(back))
        if not out and not back:
            break
    return events
