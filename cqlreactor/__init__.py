"""cqlreactor: a CQL native protocol client for Apache Cassandra and DataStax Astra.

One IO-free protocol core, pluggable event-loop reactors (asyncore, gevent, eventlet, libev,
asyncio) and one TLS layer shared by all of them.
"""

__version__ = "0.1.0"

from cqlreactor.core.errors import *  # noqa: F401,F403  (the public error hierarchy)
from cqlreactor.core import errors as _errors

__all__ = ["__version__"] + list(_errors.__all__)
