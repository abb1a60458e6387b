"""cqlreactor: a CQL native protocol client for Apache Cassandra and DataStax Astra.

One IO-free protocol core, pluggable event-loop reactors (asyncore, gevent, eventlet, libev,
asyncio) and one TLS layer shared by all of them.  The names below follow cassandra-driver, so
code moves over by changing imports::

    from cqlreactor import Cluster, PlainTextAuthProvider, ConsistencyLevel
    from cqlreactor.reactors import GeventReactor

``cassandra``'s top-level names (ConsistencyLevel, ProtocolVersion, WriteType and the exceptions,
with their attributes) are here, and ``cassandra.X`` is ``cqlreactor.X`` for cluster, query,
policies, auth, metadata, concurrent, connection, util and timestamps (docs/migrating.md lists
what differs).

The public names are resolved on first use: importing any ``cqlreactor.core`` module runs this
file, and the core must load without the session layer (sockets, threads).  Only the error
hierarchy (core, IO-free) is imported here.  Reactor modules (and gevent, eventlet, cffi ...)
are imported only when a reactor is chosen.
"""

__version__ = "0.1.0"

import importlib as _importlib
import sys as _sys
import types as _types

from cqlreactor.core import errors as _errors
from cqlreactor.core.errors import *  # noqa: F401,F403  (the public error hierarchy)

# public name -> the module that defines it
_LAZY = {}
for _module, _names in (
        ("cqlreactor.core.auth", ("AuthProvider", "PlainTextAuthProvider", "SaslAuthProvider")),
        ("cqlreactor.core.consistency", ("ConsistencyLevel", "consistency_value_to_name")),
        ("cqlreactor.core.frames", ("ProtocolVersion",)),
        ("cqlreactor.core.types", ("UNSET_VALUE",)),
        ("cqlreactor.cluster", ("Cluster", "ExecutionProfile", "EXEC_PROFILE_DEFAULT")),
        ("cqlreactor.session", ("Session", "ResponseFuture")),
        ("cqlreactor.statements", ("Statement", "SimpleStatement", "PreparedStatement",
                                   "BoundStatement", "BatchStatement", "BatchType")),
        ("cqlreactor.query", ("ResultSet", "tuple_factory", "named_tuple_factory",
                              "dict_factory", "ordered_dict_factory")),
        ("cqlreactor.policies", ("RoundRobinPolicy", "DCAwareRoundRobinPolicy",
                                 "TokenAwarePolicy", "RetryPolicy", "FallthroughRetryPolicy",
                                 "ConstantReconnectionPolicy", "ExponentialReconnectionPolicy",
                                 "HostDistance", "WriteType")),
        ("cqlreactor.metadata", ("Host",))):
    for _name in _names:
        _LAZY[_name] = _module
del _module, _names, _name

__all__ = ["__version__"] + list(_LAZY) + list(_errors.__all__)


def _resolve(name):
    """Import what ``name`` stands for and cache it as a module attribute."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module), name)
    elif name.startswith("_"):
        raise AttributeError("module 'cqlreactor' has no attribute %r" % (name,))
    else:
        # a submodule not imported yet (before this file became lazy, it imported them all)
        try:
            value = _importlib.import_module("cqlreactor." + name)
        except ModuleNotFoundError as exc:
            if exc.name != "cqlreactor." + name:
                raise
            raise AttributeError("module 'cqlreactor' has no attribute %r" % (name,))
    globals()[name] = value
    return value


def _dir():
    return sorted(set(globals()) | set(_LAZY))


def _install_lazy(module_name, resolve, list_names):
    """Make the module ``module_name`` resolve missing attributes with ``resolve(name)`` and
    list ``list_names()`` in dir(): PEP 562 on 3.7+, a module subclass on 3.6 (which has no
    module ``__getattr__``).  cqlreactor.testing uses it too."""
    module = _sys.modules[module_name]
    if _sys.version_info >= (3, 7):
        module.__getattr__ = resolve
        module.__dir__ = list_names
        return

    class _LazyModule(_types.ModuleType):
        def __getattr__(self, name):
            return resolve(name)

        def __dir__(self):
            return list_names()

    module.__class__ = _LazyModule


_install_lazy(__name__, _resolve, _dir)
