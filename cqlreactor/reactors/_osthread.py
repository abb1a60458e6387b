"""Real OS threads, locks and events for reactor loop threads, even under monkey-patching.

After ``gevent.monkey.patch_all()`` or ``eventlet.monkey_patch()``, ``threading.Thread`` starts a
greenlet and ``threading.Event`` waits by switching greenlets.  A reactor whose loop blocks in C
(libev's ``ev_run``, uvloop's ``run_forever``) or in an unpatched selector must not run as such a
greenlet: it would block every greenlet of its thread for good.  The libev, asyncio and asyncore
reactors therefore start their loop with :func:`start_loop_thread` and wait for it with
:func:`make_loop_event`; both fall back to plain ``threading`` when nothing is patched.

Patching can happen after cqlreactor is imported, so every function here looks at the patch
state when it is called, never at import time.
"""

import _thread
import socket
import sys
import threading

__all__ = ["green_patched_thread", "start_loop_thread", "make_loop_event", "real_get_ident",
           "real_allocate_lock", "unpatched", "unpatched_select", "real_thread_local",
           "unpatched_getaddrinfo", "RealEvent", "HybridEvent", "make_wait_event",
           "HubStarvationWarning"]


class _GeventOriginals(object):
    """The unpatched ``_thread`` functions, as gevent keeps them."""

    def __init__(self, monkey):
        self.start_new_thread = monkey.get_original("_thread", "start_new_thread")
        self.get_ident = monkey.get_original("_thread", "get_ident")
        self.allocate_lock = monkey.get_original("_thread", "allocate_lock")


def green_patched_thread():
    """The unpatched ``_thread`` (or an object with its functions) when gevent or eventlet
    monkey-patched threading; None when nothing is patched."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return _GeventOriginals(monkey)
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return patcher.original("_thread")
    return None


def real_get_ident():
    """The function giving the OS thread's identity (``threading.get_ident`` when unpatched;
    patched, that one names the current greenlet instead)."""
    real = green_patched_thread()
    return (real or _thread).get_ident


def real_allocate_lock():
    """A lock that blocks the OS thread (never switches greenlets)."""
    real = green_patched_thread()
    return (real or _thread).allocate_lock()


def unpatched(module, name, eventlet_name=None):
    """``<module>.<name>`` as the OS gives it when gevent or eventlet monkey-patched that
    module; None when neither did (then the module's own attribute is the real one).
    ``eventlet_name``: eventlet's name for the module when it differs ("thread" for
    threading).  AttributeError when the original module has no such name."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module):
        return monkey.get_original(module, name)
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched(eventlet_name or module):
        return getattr(patcher.original(module), name)
    return None


def unpatched_select(name):
    """``select.<name>`` (e.g. "select", "poll") as the OS gives it when gevent or eventlet
    patched the select module (both replace functions in place and drop ``poll``/``epoll``);
    None when select is not patched.  For loops that run in a real OS thread."""
    try:
        return unpatched("select", name)
    except AttributeError:              # not on this platform (poll on Windows)
        return None


def real_thread_local():
    """A thread-local of the OS thread, even when threading is green-patched."""
    return (unpatched("threading", "local", eventlet_name="thread") or threading.local)()


def unpatched_getaddrinfo():
    """``socket.getaddrinfo`` as the OS gives it, whatever gevent or eventlet patched."""
    return unpatched("socket", "getaddrinfo") or socket.getaddrinfo


class RealEvent(object):
    """``threading.Event`` made of a real lock, for when threading is green-patched: ``set()``
    comes from the (real) loop thread, so the waiter must wait on something real."""

    __slots__ = ("_flag", "_lock")

    def __init__(self, allocate_lock):
        self._flag = False
        self._lock = allocate_lock()
        self._lock.acquire()            # released by set()

    def is_set(self):
        return self._flag

    isSet = is_set

    def set(self):
        if not self._flag:
            self._flag = True
            try:
                self._lock.release()
            except RuntimeError:        # a racing set() from another thread released it
                pass

    def wait(self, timeout=None):
        if self._flag:
            return True
        if self._lock.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            self._lock.release()        # let the next waiter through too
        return self._flag


class HybridEvent(RealEvent):
    """The event of the gevent and eventlet reactors: a greenlet of the hub's thread waits on a
    green event (the other greenlets run meanwhile), another OS thread waits on the real lock;
    ``set()`` works from anywhere.

    A subclass implements ``_in_hub_thread()``, ``_green_set()`` (hub thread only),
    ``_green_wait(timeout)`` and ``_post(fn)`` (run ``fn()`` in the hub, from another thread).
    """

    __slots__ = ()

    def set(self):
        if self._flag:
            return
        RealEvent.set(self)
        if self._in_hub_thread():
            self._green_set()
        else:
            self._post(self._green_set)

    def wait(self, timeout=None):
        if self._flag:
            return True
        if self._in_hub_thread():
            self._green_wait(timeout)
            return self._flag
        return RealEvent.wait(self, timeout)


def make_loop_event():
    """An Event the loop thread sets and any thread waits on: ``threading.Event`` normally, a
    :class:`RealEvent` when threading is green-patched."""
    real = green_patched_thread()
    if real is None:
        return threading.Event()
    return RealEvent(real.allocate_lock)


class HubStarvationWarning(RuntimeWarning):
    """A blocking call of a reactor with a loop thread of its own (asyncio, asyncore, libev)
    blocked a monkey-patched OS thread: its gevent/eventlet hub, and every other greenlet of
    that thread, stood still until the answer came."""


def make_wait_event(reactor_name):
    """The event behind a reactor's ``make_event`` when its loop runs in a thread of its own:
    ``threading.Event`` normally; under gevent/eventlet monkey-patching a real-lock event
    whose blocking ``wait`` reports (once per process, :class:`HubStarvationWarning`) that it
    starves the hub, instead of freezing the other greenlets silently."""
    real = green_patched_thread()
    if real is None:
        return threading.Event()
    return _StarvingEvent(real.allocate_lock, reactor_name)


_starvation_reported = []


class _StarvingEvent(RealEvent):
    __slots__ = ("_reactor_name",)

    def __init__(self, allocate_lock, reactor_name):
        RealEvent.__init__(self, allocate_lock)
        self._reactor_name = reactor_name

    def wait(self, timeout=None):
        if not self._flag and not _starvation_reported:
            _starvation_reported.append(True)
            import warnings
            library = "gevent" if "gevent.monkey" in sys.modules else "eventlet"
            warnings.warn(
                "a blocking call of the %s reactor blocks this monkey-patched OS thread: the "
                "%s hub and every other greenlet of it stop until the answer comes. Use "
                "connection_class=%r (its waits yield to the hub), or the awaitables on an "
                "asyncio loop" % (self._reactor_name, library, library),
                HubStarvationWarning, stacklevel=4)
        return RealEvent.wait(self, timeout)


class _RawThread(object):
    """``join()``/``is_alive()`` for a thread started with the unpatched ``start_new_thread``."""

    def __init__(self, real, name):
        self.name = name
        self.daemon = True
        self._done = real.allocate_lock()
        self._done.acquire()            # released when the target returns
        self._alive = True

    def _finished(self):
        self._alive = False
        self._done.release()

    def join(self, timeout=None):
        if self._done.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            self._done.release()

    def is_alive(self):
        return self._alive

    def __repr__(self):
        return "<%s %r%s>" % (type(self).__name__, self.name, "" if self._alive else " done")


def start_loop_thread(target, args=(), name=None):
    """Run ``target(*args)`` in a new daemon OS thread; returns an object with ``join(timeout)``
    and ``is_alive()`` (a ``threading.Thread`` unless threading is green-patched)."""
    real = green_patched_thread()
    if real is None:
        thread = threading.Thread(target=target, args=args, name=name)
        thread.daemon = True
        thread.start()
        return thread
    thread = _RawThread(real, name)

    def run():
        try:
            target(*args)
        finally:
            thread._finished()

    real.start_new_thread(run, ())
    return thread
