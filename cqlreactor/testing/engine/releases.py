"""The Cassandra releases the simulated cluster can be, and what each one has.

``release(text)`` checks a version string ("4.0.11", "4.1.5", "5.0.2", ...) and returns its
:class:`Release`: the CQL version SUPPORTED advertises and the features the engine allows
(``vector<float, n>`` only from 5.0, as Cassandra 4.x has no vector type), the native
protocol versions its nodes speak (3.11: v3 and v4, with v5 only as a beta it refuses; 4.0 on:
v3 to v5) and which system tables it has (``system.peers_v2`` and the virtual keyspaces from
4.0; each table's columns in ``system_tables``).
"""

import re

__all__ = ["DEFAULT_RELEASE", "Release", "release"]

DEFAULT_RELEASE = "4.0.11"

# (major, minor) -> CQL_VERSION of that release line (Cassandra's QueryProcessor.CQL_VERSION)
_CQL_VERSIONS = {(3, 11): "3.4.4", (4, 0): "3.4.5", (4, 1): "3.4.6", (5, 0): "3.4.7"}
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:-[A-Za-z0-9.]+)?$")


class Release(object):
    """One release: ``version`` (as nodes report it), ``major_minor``, ``cql_version``,
    ``has_vector``."""

    __slots__ = ("version", "major_minor", "cql_version")

    def __init__(self, version, major_minor):
        self.version = version
        self.major_minor = major_minor
        self.cql_version = _CQL_VERSIONS[major_minor]

    @property
    def has_vector(self):
        return self.major_minor >= (5, 0)

    @property
    def protocol_versions(self):
        """The native protocol versions a node of this release accepts."""
        return (3, 4) if self.major_minor < (4, 0) else (3, 4, 5)

    @property
    def supported_protocol_versions(self):
        """SUPPORTED's PROTOCOL_VERSIONS (3.11 lists v5 as the beta it refuses without
        the beta flag)."""
        if self.major_minor < (4, 0):
            return ["3/v3", "4/v4", "5/v5-beta"]
        return ["3/v3", "4/v4", "5/v5"]

    @property
    def native_protocol_version(self):
        """What system.local's native_protocol_version says (the newest stable version)."""
        return str(self.protocol_versions[-1])

    @property
    def has_server_describe(self):
        """DESCRIBE runs on the server from 4.0 (3.11's cqlsh describes client-side)."""
        return self.major_minor >= (4, 0)

    @property
    def has_peers_v2(self):
        """system.peers_v2 and the virtual keyspaces exist from 4.0."""
        return self.major_minor >= (4, 0)

    def __repr__(self):
        return "<Release %s>" % (self.version,)


def release(text=None):
    """The Release named by ``text`` (None: the default, 4.0.11).

    Raises:
        ValueError: naming the release lines the simulator knows.
    """
    text = DEFAULT_RELEASE if text is None else str(text).strip()
    m = _VERSION.match(text)
    key = (int(m.group(1)), int(m.group(2))) if m else None
    if key not in _CQL_VERSIONS:
        raise ValueError("unsupported release_version %r: the simulated cluster can be "
                         "Cassandra 3.11.x, 4.0.x, 4.1.x or 5.0.x (e.g. 3.11.17, 4.0.11, 4.1.5, "
                         "5.0.2)" % (text,))
    if m.group(3) is None:
        text += ".0"
    return Release(text, key)
