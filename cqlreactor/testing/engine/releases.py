"""The Cassandra releases the simulated cluster can be, and what each one has.

``release(text)`` checks a version string ("4.0.11", "4.1.5", "5.0.2", ...) and returns its
:class:`Release`: the CQL version SUPPORTED advertises and the features the engine allows
(``vector<float, n>`` only from 5.0, as Cassandra 4.x has no vector type).
"""

import re

__all__ = ["DEFAULT_RELEASE", "Release", "release"]

DEFAULT_RELEASE = "4.0.11"

# (major, minor) -> CQL_VERSION of that release line (Cassandra's QueryProcessor.CQL_VERSION)
_CQL_VERSIONS = {(4, 0): "3.4.5", (4, 1): "3.4.6", (5, 0): "3.4.7"}
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
                         "Cassandra 4.0.x, 4.1.x or 5.0.x (e.g. 4.0.11, 4.1.5, 5.0.2)" % (text,))
    if m.group(3) is None:
        text += ".0"
    return Release(text, key)
