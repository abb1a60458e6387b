"""The libev binding without headers or a compiler: cffi's ABI mode over the runtime library.

Where only ``libev.so.4`` is installed (``apt-get install libev4``: no ``ev.h``, no gcc), the API
build of :mod:`cqlreactor.reactors._libev_cffi` cannot run.  Here the library is ``dlopen``-ed and
the three watcher structs are declared field by field, as libev 4's ``ev.h`` lays them out in its
default configuration (``EV_COMMON`` = ``void *data``, priorities on, ``EV_MULTIPLICITY``): the
struct layout is the one thing ABI mode cannot check, so a test compares every size and offset
with the API build (tests/reactors/test_libev.py), and :func:`load_abi` accepts libev 4 only.
libev's ``ev_*_init`` initialisers are macros; :class:`AbiLib` does what they do, in Python.

``load_abi()`` returns ``(ffi, lib)`` shaped like the API build's: the same ``ev_*`` functions,
``cqlr_io_init`` / ``cqlr_timer_init`` / ``cqlr_async_init`` and the ``EV_*`` constants, with
callbacks that hand the watcher's ``data`` handle to the dispatcher given.
"""

import ctypes.util

from cqlreactor.core.errors import ReactorUnavailable

__all__ = ["ABI_CDEF", "FUNCTIONS_CDEF", "load_abi", "STRUCT_FIELDS"]

#: the libev functions both bindings call (the API build declares them the same way)
FUNCTIONS_CDEF = """
int ev_version_major(void);
int ev_version_minor(void);
struct ev_loop *ev_loop_new(unsigned int flags);
void ev_loop_destroy(struct ev_loop *loop);
int ev_run(struct ev_loop *loop, int flags);
void ev_break(struct ev_loop *loop, int how);
ev_tstamp ev_now(struct ev_loop *loop);
void ev_now_update(struct ev_loop *loop);
unsigned int ev_backend(struct ev_loop *loop);

void ev_io_start(struct ev_loop *loop, ev_io *w);
void ev_io_stop(struct ev_loop *loop, ev_io *w);
void ev_timer_start(struct ev_loop *loop, ev_timer *w);
void ev_timer_stop(struct ev_loop *loop, ev_timer *w);
void ev_async_start(struct ev_loop *loop, ev_async *w);
void ev_async_stop(struct ev_loop *loop, ev_async *w);
void ev_async_send(struct ev_loop *loop, ev_async *w);
"""

#: what ev.h (libev 4, default configuration) declares, written out for ABI mode
ABI_CDEF = """
struct ev_loop;
struct ev_watcher_list;
typedef double ev_tstamp;
typedef struct ev_io {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_io *, int);
    struct ev_watcher_list *next;
    int fd; int events;
} ev_io;
typedef struct ev_timer {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_timer *, int);
    ev_tstamp at;
    ev_tstamp repeat;
} ev_timer;
typedef struct ev_async {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_async *, int);
    int sent;
} ev_async;
""" + FUNCTIONS_CDEF

#: every field ABI_CDEF declares, per struct (the layout test checks each offset)
STRUCT_FIELDS = {
    "ev_io": ("active", "pending", "priority", "data", "cb", "next", "fd", "events"),
    "ev_timer": ("active", "pending", "priority", "data", "cb", "at", "repeat"),
    "ev_async": ("active", "pending", "priority", "data", "cb", "sent"),
}

_EV__IOFDSET = 0x80                  # ev.h: "internal use only", set by ev_io_set
_LIBRARY_NAMES = ("libev.so.4", "libev.4.dylib", "libev.so")


class AbiLib(object):
    """The API build's ``lib``, over the dlopen-ed library: ``ev_*`` functions pass through,
    the ``cqlr_*_init`` initialisers are ev.h's macros done in Python."""

    EV_READ = 0x01
    EV_WRITE = 0x02
    EVBREAK_ALL = 2
    EVFLAG_AUTO = 0

    def __init__(self, ffi, lib, dispatch):
        self._lib = lib
        from_handle = ffi.from_handle

        def invoke(loop, watcher, revents):
            dispatch(from_handle(watcher.data))

        # kept alive here: libev holds only the raw function pointers
        self._io_cb = ffi.callback("void(struct ev_loop *, ev_io *, int)", invoke)
        self._timer_cb = ffi.callback("void(struct ev_loop *, ev_timer *, int)", invoke)
        self._async_cb = ffi.callback("void(struct ev_loop *, ev_async *, int)", invoke)

    def __getattr__(self, name):
        return getattr(self._lib, name)

    @staticmethod
    def _init(watcher, callback):
        watcher.active = 0
        watcher.pending = 0
        watcher.priority = 0
        watcher.cb = callback

    def cqlr_io_init(self, watcher, fd, events):
        self._init(watcher, self._io_cb)
        watcher.fd = fd
        watcher.events = events | _EV__IOFDSET

    def cqlr_timer_init(self, watcher, after):
        self._init(watcher, self._timer_cb)
        watcher.at = after
        watcher.repeat = 0.0

    def cqlr_async_init(self, watcher):
        self._init(watcher, self._async_cb)
        watcher.sent = 0


def load_abi(dispatch):
    """dlopen libev and check it is libev 4 (the layout ABI_CDEF describes).

    Returns:
        (ffi, AbiLib)
    Raises:
        ReactorUnavailable: no cffi, no libev library, or another major version.
    """
    try:
        import cffi
    except ImportError as exc:
        raise ReactorUnavailable("the libev binding needs cffi (pip install cffi)") from exc
    ffi = cffi.FFI()
    ffi.cdef(ABI_CDEF)
    names = [ctypes.util.find_library("ev")] + list(_LIBRARY_NAMES)
    errors = []
    for name in names:
        if not name:
            continue
        try:
            lib = ffi.dlopen(name)
        except OSError as exc:
            errors.append(str(exc))
            continue
        major = lib.ev_version_major()
        if major != 4:
            raise ReactorUnavailable("libev %d.%d found (%s), but the binding without headers "
                                     "knows only libev 4's struct layout"
                                     % (major, lib.ev_version_minor(), name))
        return ffi, AbiLib(ffi, lib, dispatch)
    raise ReactorUnavailable("the libev runtime library was not found (%s)"
                             % ("; ".join(errors) or "no libev.so.4"))
