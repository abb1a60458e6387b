"""Pluggable event-loop reactors, registered by name and imported lazily.

    from cqlreactor.reactors import GeventReactor          # imports cqlreactor.reactors.gevent now
    cls = get_reactor_class("gevent")                       # the same, with the matrix's gate
    cls = get_reactor_class(None)                           # the default for this interpreter

Nothing here imports a reactor module (or gevent, eventlet, cffi ...) until a reactor class is
asked for, so ``import cqlreactor`` stays cheap and never monkey-patches anything.  The names and
modules come from compat_matrix.yaml; the table below only spells them for readers and is
checked against the matrix by tests/reactors/test_matrix.py.

Lazy attributes use a module ``__getattr__`` (PEP 562, Python 3.7+).  Python 3.6 ignores a module
``__getattr__``, so there the module's class is swapped for a ModuleType subclass whose
``__getattr__`` does the same; both paths call :func:`_load_attribute`.
"""

import sys
import types

from cqlreactor.core.endpoint import Endpoint
from cqlreactor.reactors.base import Reactor
from cqlreactor.reactors.driver import ReactorConnection

__all__ = [
    "Reactor", "ReactorConnection", "Endpoint", "get_reactor_class", "reactor_names",
    "AsyncoreReactor", "GeventReactor", "EventletReactor", "LibevReactor", "AsyncioReactor",
]

# class name -> reactor name (the matrix gives the module)
REACTOR_CLASSES = {
    "AsyncoreReactor": "asyncore",
    "GeventReactor": "gevent",
    "EventletReactor": "eventlet",
    "LibevReactor": "libev",
    "AsyncioReactor": "asyncio",
}


def get_reactor_class(name=None, allow_unsupported_reactors=None):
    """Return the reactor class for ``name`` ("asyncio", "gevent", ...), a class, or None.

    None picks the default: the first reactor in compat_matrix.yaml's order that is available
    on this interpreter.  A name the matrix gates off raises UnsupportedReactorError unless
    allowed (argument or CQLREACTOR_ALLOW_UNSUPPORTED); a reactor whose packages are missing
    raises ReactorUnavailable saying what to install.
    """
    from cqlreactor.reactors import matrix
    return matrix.get_reactor_class(name, allow_unsupported_reactors)


def reactor_names():
    """Every reactor name, in the matrix's default preference order."""
    from cqlreactor.reactors import matrix
    return matrix.reactor_names()


def _load_attribute(attr):
    reactor = REACTOR_CLASSES.get(attr)
    if reactor is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, attr))
    from cqlreactor.reactors import matrix
    cls = matrix.load_reactor_class(reactor)  # raises ReactorUnavailable (not AttributeError)
    setattr(sys.modules[__name__], attr, cls)  # later lookups skip this function
    return cls


if sys.version_info >= (3, 7):
    def __getattr__(attr):
        return _load_attribute(attr)
else:  # pragma: no cover - exercised by the py36 tox env
    class _LazyModule(types.ModuleType):
        def __getattr__(self, attr):
            return _load_attribute(attr)

    sys.modules[__name__].__class__ = _LazyModule
