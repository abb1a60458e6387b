"""A small binding to the system libev: pyev when it imports, else our own cffi extension.

The cffi extension is built in API mode (``#include <ev.h>``, linked with ``-lev``) the first time
it is needed and cached per interpreter and binding source::

    $CQLREACTOR_CACHE_DIR or $XDG_CACHE_HOME/cqlreactor or ~/.cache/cqlreactor
        /<cache tag>-<machine>-<hash of cdef+source+cffi version>/_cqlreactor_libev.<ext>

(the system temp dir when none of those is writable).  Each process builds in its own temporary
directory and moves the result into place with an atomic rename, so parallel processes never see
half a file.  libev's ``ev_io_init``-style initialisers are macros; small static C wrappers turn
them into functions cffi can call.  When the build cannot run (no ``ev.h``, no C compiler, no
setuptools) :func:`load` raises ReactorUnavailable naming what is missing and what to install,
which is what ``python -m cqlreactor doctor`` then shows for libev.  The compiler's output goes to
the DEBUG log, never to the terminal; a failed build is remembered for the process and, in the
cache directory, until the compiler, the headers, setuptools or $CC/$CFLAGS change (or
``CQLREACTOR_LIBEV_REBUILD=1``), so that not every ``Cluster()`` runs the compiler again.  Then the binding falls back to cffi's
ABI mode over the runtime library alone (:mod:`cqlreactor.reactors._libev_abi`: ``apt-get install
libev4`` suffices); ``CQLREACTOR_LIBEV_ABI=1`` forces that mode, ``=0`` forbids it.

Both backends offer the same few objects (:class:`Loop` here, :class:`_PyevLoop` over pyev):
``Loop().io(fd, events, cb)``, ``.timer(after, cb)``, ``.async_(cb)`` -- watchers with
``start()`` / ``stop()`` (and ``send()`` for async, the only call other threads may make) --
``run()``, ``break_all()``, ``update_now()``, ``destroy()``.  Callbacks take no arguments.
"""

import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import tempfile

from cqlreactor.core.errors import ReactorUnavailable
from cqlreactor.reactors._libev_abi import FUNCTIONS_CDEF

__all__ = ["load", "Loop", "EV_READ", "EV_WRITE", "backend_name", "cache_dir", "BUILT_NOW",
           "ABI_MODE"]

log = logging.getLogger(__name__)

MODULE_NAME = "_cqlreactor_libev"
INSTALL_HINT = ("install the libev headers, a C compiler and the Python headers "
                "(Debian/Ubuntu: apt-get install libev4 libev-dev gcc python3-dev; Fedora: dnf "
                "install libev-devel gcc python3-devel; macOS: brew install libev) and the cffi "
                "and setuptools packages (pip install cffi setuptools)")

EV_READ = 0x01
EV_WRITE = 0x02

# Every field is declared (only ``data`` is used) so that the test of the ABI-mode binding can
# compare its hand-written layout with the compiler's (see _libev_abi.py).
CDEF = """
struct ev_loop;
struct ev_watcher_list;
typedef double ev_tstamp;
typedef struct ev_io {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_io *, int);
    struct ev_watcher_list *next; int fd; int events; ...;
} ev_io;
typedef struct ev_timer {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_timer *, int);
    ev_tstamp at; ev_tstamp repeat; ...;
} ev_timer;
typedef struct ev_async {
    int active; int pending; int priority; void *data;
    void (*cb)(struct ev_loop *, struct ev_async *, int);
    int sent; ...;
} ev_async;

#define EV_READ ...
#define EV_WRITE ...
#define EVBREAK_ALL ...
#define EVFLAG_AUTO ...

""" + FUNCTIONS_CDEF + """

void cqlr_io_init(ev_io *w, int fd, int events);
void cqlr_timer_init(ev_timer *w, double after);
void cqlr_async_init(ev_async *w);

extern "Python" void cqlr_io_cb(struct ev_loop *, ev_io *, int);
extern "Python" void cqlr_timer_cb(struct ev_loop *, ev_timer *, int);
extern "Python" void cqlr_async_cb(struct ev_loop *, ev_async *, int);
"""

SOURCE = """
#include <ev.h>

static void cqlr_io_cb(struct ev_loop *, ev_io *, int);
static void cqlr_timer_cb(struct ev_loop *, ev_timer *, int);
static void cqlr_async_cb(struct ev_loop *, ev_async *, int);

static void cqlr_io_init(ev_io *w, int fd, int events) { ev_io_init(w, cqlr_io_cb, fd, events); }
static void cqlr_timer_init(ev_timer *w, double after) {
    ev_timer_init(w, cqlr_timer_cb, after, 0.0);
}
static void cqlr_async_init(ev_async *w) { ev_async_init(w, cqlr_async_cb); }
"""

#: True when this process compiled the extension (False: loaded from the cache, or pyev)
BUILT_NOW = False
#: True when the binding runs in cffi's ABI mode (no headers or compiler here: _libev_abi.py)
ABI_MODE = False

_lib = None
_ffi = None


def _source_hash():
    import cffi
    digest = hashlib.sha256()
    for part in (CDEF, SOURCE, cffi.__version__, sys.version, platform.machine()):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _cache_roots():
    explicit = os.environ.get("CQLREACTOR_CACHE_DIR")
    if explicit:
        yield explicit
        return
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        yield os.path.join(xdg, "cqlreactor")
    home = os.path.expanduser("~")
    if home and home != "~":
        yield os.path.join(home, ".cache", "cqlreactor")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    yield os.path.join(tempfile.gettempdir(), "cqlreactor-cache-%s" % (uid,))


def cache_dir():
    """The directory holding (or about to hold) the built extension for this interpreter."""
    name = "%s-%s-%s" % (sys.implementation.cache_tag, platform.machine() or "unknown",
                         _source_hash())
    try:
        return writable_cache_dir(name, "the libev binding")
    except OSError as exc:
        raise ReactorUnavailable(str(exc))


def writable_cache_dir(name, what):
    """The first writable ``<cache root>/<name>`` (made if needed); OSError naming ``what`` when
    there is none.  Also used by the compiled row decoder (cqlreactor.compiled_rows)."""
    last_error = None
    for root in _cache_roots():
        path = os.path.join(root, name)
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError as exc:
            last_error = exc
    raise OSError("no writable cache directory for %s (%s); set CQLREACTOR_CACHE_DIR"
                  % (what, last_error))


def _extension_path(directory):
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return os.path.join(directory, MODULE_NAME + suffix)


_FAILURE_FILE = "build-failed.json"
_HEADER_DIRS = ("/usr/include", "/usr/local/include", "/opt/homebrew/include", "/opt/local/include")

#: the ReactorUnavailable of this process's failed build: raised again, never rebuilt
_build_failure = None


def _find_ev_header():
    for directory in _HEADER_DIRS:
        path = os.path.join(directory, "ev.h")
        if os.path.exists(path):
            return path
    return None


def _find_compiler():
    """The C compiler a build would run ($CC's first word, else cc/gcc/clang), or None."""
    command = os.environ.get("CC", "").split()
    candidates = command[:1] or ["cc", "gcc", "clang"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def _python_header():
    import sysconfig
    path = os.path.join(sysconfig.get_paths().get("include") or "", "Python.h")
    return path if os.path.exists(path) else None


def _find_setuptools():
    """Where setuptools is importable from here (cffi builds with it on Python 3.12+, where
    distutils is gone), or None."""
    try:
        spec = importlib.util.find_spec("setuptools")
    except (ImportError, ValueError):       # ValueError: sys.modules holds None for it
        return None
    return spec.origin if spec is not None else None


def missing_build_parts():
    """What a build of the binding needs and this machine lacks, in words (may be empty:
    then the build failed for another reason, given in the error)."""
    missing = []
    if _find_ev_header() is None:
        missing.append("the libev headers (ev.h)")
    if _find_compiler() is None:
        missing.append("a C compiler")
    if _python_header() is None:
        missing.append("the Python headers (Python.h)")
    if sys.version_info >= (3, 12) and _find_setuptools() is None:
        missing.append("setuptools (pip install setuptools)")
    return missing


def file_stamp(path):
    """[path, mtime] (mtime None when absent): what a remembered build failure compares."""
    try:
        return [path, os.stat(path).st_mtime]
    except (OSError, TypeError):
        return [path, None]


def _build_fingerprint():
    """What a retried build depends on: when none of it changed, a remembered failure stands
    (the interpreter and cffi version are in the cache directory's name already)."""
    stamp = file_stamp
    return {
        "env": [os.environ.get(k, "") for k in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")],
        "compiler": stamp(_find_compiler()),
        "ev.h": stamp(_find_ev_header()),
        "Python.h": stamp(_python_header()),
        # the cache directory is shared by every venv of one interpreter: a venv without
        # setuptools must not keep the one that has it from building
        "setuptools": stamp(_find_setuptools()),
    }


def _remembered_failure(directory):
    """The error text of an earlier process's failed build in ``directory`` when nothing it
    depends on changed since (``CQLREACTOR_LIBEV_REBUILD=1`` forgets it); else None."""
    if os.environ.get("CQLREACTOR_LIBEV_REBUILD"):
        return None
    try:
        with open(os.path.join(directory, _FAILURE_FILE)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != _build_fingerprint():
        return None
    return record.get("error")


def _remember_failure(directory, text):
    path = os.path.join(directory, _FAILURE_FILE)
    try:
        fd, temporary = tempfile.mkstemp(prefix="failed-", dir=directory)
        with os.fdopen(fd, "w") as f:
            json.dump({"error": text, "fingerprint": _build_fingerprint()}, f)
        os.replace(temporary, path)
    except OSError:
        log.debug("could not record the failed libev build in %s", directory, exc_info=True)


def _failure_text(exc):
    missing = missing_build_parts()
    needs = ("missing here: %s; " % ", ".join(missing)) if missing else ""
    return ("building the libev binding failed (%s: %s); %s%s (set CQLREACTOR_LIBEV_REBUILD=1 "
            "to retry at once; the compiler's output is logged at DEBUG by %s)"
            % (type(exc).__name__, _first_line(exc), needs, INSTALL_HINT, __name__))


def _compile_quietly(ffi, work):
    """``ffi.compile`` with the compiler's output (fds 1 and 2: gcc writes there directly)
    going to a file that is logged at DEBUG, not to the user's terminal."""
    return run_quietly(lambda: ffi.compile(tmpdir=work, verbose=False), "libev binding", log)


def run_quietly(build, what, logger):
    """``build()`` with fds 1 and 2 sent to a file that ``logger`` logs at DEBUG."""
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = []
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                except OSError:
                    continue            # no such fd (a daemon): nothing to hide
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:
                        pass
                os.dup2(captured.fileno(), fd)
            return build()
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            captured.seek(0)
            output = captured.read().decode("utf-8", "replace").strip()
            if output:
                logger.debug("%s build output:\n%s", what, output)


def _build(directory):
    """Compile the extension into ``directory`` (atomic rename); returns its path.  A failure
    is remembered for the process and, on disk, until what it depends on changes."""
    global BUILT_NOW
    try:
        import cffi
    except ImportError as exc:
        raise ReactorUnavailable("the libev binding needs cffi: " + INSTALL_HINT) from exc
    remembered = _remembered_failure(directory)
    if remembered:
        raise ReactorUnavailable(remembered)
    target = _extension_path(directory)
    work = tempfile.mkdtemp(prefix="build-", dir=directory)
    try:
        ffi = cffi.FFI()
        ffi.cdef(CDEF)
        ffi.set_source(MODULE_NAME, SOURCE, libraries=["ev"])
        try:
            built = _compile_quietly(ffi, work)
        except Exception as exc:  # cffi.VerificationError, CompileError, LinkError, ImportError
            text = _failure_text(exc)
            _remember_failure(directory, text)
            raise ReactorUnavailable(text) from exc
        os.replace(built, target)       # atomic: a parallel build's result is equally good
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:
        os.unlink(os.path.join(directory, _FAILURE_FILE))
    except OSError:
        pass
    BUILT_NOW = True
    return target


def _first_line(exc):
    text = str(exc).strip()
    lines = [line for line in text.splitlines() if "error" in line.lower()] or text.splitlines()
    return (lines[0] if lines else repr(exc))[:300]


def _import_extension(path):
    loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, path)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _load_cffi():
    if _lib is not None:
        return
    mode = os.environ.get("CQLREACTOR_LIBEV_ABI", "")   # "1": ABI mode only, "0": never
    if mode == "1":
        _load_abi()
        return
    try:
        _load_api()
    except ReactorUnavailable as exc:
        if mode == "0":
            raise
        try:
            _load_abi()
        except ReactorUnavailable as abi_exc:
            log.debug("the libev binding without headers is unavailable too: %s", abi_exc)
            raise exc
        log.debug("libev: API build unavailable (%s); using the ABI-mode binding", exc)


def _load_abi():
    global _lib, _ffi, ABI_MODE
    from cqlreactor.reactors._libev_abi import load_abi
    _ffi, _lib = load_abi(_dispatch)
    ABI_MODE = True


def _load_api():
    global _lib, _ffi, _build_failure
    if _build_failure is not None:      # every Cluster() would otherwise run the compiler again
        raise _build_failure
    directory = cache_dir()
    path = _extension_path(directory)
    if not os.path.exists(path):
        try:
            path = _build(directory)
        except ReactorUnavailable as exc:
            _build_failure = exc
            raise
    try:
        module = _import_extension(path)
    except ImportError as exc:          # e.g. libev.so.4 gone since the build
        raise ReactorUnavailable("loading the libev binding %s failed (%s); %s"
                                 % (path, exc, INSTALL_HINT)) from exc
    _ffi, _lib = module.ffi, module.lib
    _install_callbacks(_ffi, _lib)


def _install_callbacks(ffi, lib):
    from_handle = ffi.from_handle

    @ffi.def_extern()
    def cqlr_io_cb(loop, watcher, revents):
        _dispatch(from_handle(watcher.data))

    @ffi.def_extern()
    def cqlr_timer_cb(loop, watcher, revents):
        _dispatch(from_handle(watcher.data))

    @ffi.def_extern()
    def cqlr_async_cb(loop, watcher, revents):
        _dispatch(from_handle(watcher.data))


def _dispatch(watcher):
    try:
        watcher._callback()
    except Exception:                   # never let an exception unwind into libev
        log.exception("libev callback %r raised", watcher._callback)


# --- the cffi backend ----------------------------------------------------------------------------

class _Watcher(object):
    """Owns one libev watcher struct and the handle that leads libev's callback back here."""

    __slots__ = ("_loop", "_struct", "_handle", "_callback", "active", "_start", "_stop")

    def __init__(self, loop, ctype, callback, start, stop):
        self._loop = loop
        self._struct = _ffi.new(ctype)
        self._handle = _ffi.new_handle(self)        # kept alive as long as the watcher
        self._struct.data = self._handle
        self._callback = callback
        self._start = start
        self._stop = stop
        self.active = False

    def start(self):
        if not self.active:
            self.active = True
            self._start(self._loop._ptr, self._struct)

    def stop(self):
        if self.active:
            self.active = False
            self._stop(self._loop._ptr, self._struct)


class _Async(_Watcher):
    __slots__ = ()

    def send(self):
        """Wake the loop; the one call that is safe from any thread."""
        _lib.ev_async_send(self._loop._ptr, self._struct)


class Loop(object):
    """One libev loop (``ev_loop_new``): watchers, run, break.  Loop-thread only except
    ``_Async.send``."""

    def __init__(self):
        self._ptr = _lib.ev_loop_new(_lib.EVFLAG_AUTO)
        if self._ptr == _ffi.NULL:
            raise ReactorUnavailable("libev could not create a loop (ev_loop_new returned NULL)")

    def io(self, fd, events, callback):
        watcher = _Watcher(self, "ev_io *", callback, _lib.ev_io_start, _lib.ev_io_stop)
        _lib.cqlr_io_init(watcher._struct, fd, events)
        return watcher

    def timer(self, after, callback):
        watcher = _Watcher(self, "ev_timer *", callback, _lib.ev_timer_start,
                           _lib.ev_timer_stop)
        _lib.cqlr_timer_init(watcher._struct, max(0.0, after))
        return watcher

    def async_(self, callback):
        watcher = _Async(self, "ev_async *", callback, _lib.ev_async_start, _lib.ev_async_stop)
        _lib.cqlr_async_init(watcher._struct)
        return watcher

    def run(self):
        """Run until ``break_all`` (the GIL is released while libev waits)."""
        _lib.ev_run(self._ptr, 0)

    def break_all(self):
        _lib.ev_break(self._ptr, _lib.EVBREAK_ALL)

    def update_now(self):
        _lib.ev_now_update(self._ptr)

    def destroy(self):
        ptr, self._ptr = self._ptr, _ffi.NULL
        if ptr != _ffi.NULL:
            _lib.ev_loop_destroy(ptr)


# --- the pyev backend (used when pyev imports; not installable from the index today) ----------

class _PyevWatcher(object):
    __slots__ = ("_w", "active")

    def __init__(self, watcher):
        self._w = watcher
        self.active = False

    def start(self):
        if not self.active:
            self.active = True
            self._w.start()

    def stop(self):
        if self.active:
            self.active = False
            self._w.stop()

    def send(self):
        self._w.send()


def _pyev_callback(callback):
    def invoke(watcher, revents):
        try:
            callback()
        except Exception:
            log.exception("libev callback %r raised", callback)
    return invoke


class _PyevLoop(object):
    def __init__(self):
        import pyev
        self._pyev = pyev
        self._loop = pyev.Loop()

    def io(self, fd, events, callback):
        pyev = self._pyev
        flags = (pyev.EV_READ if events & EV_READ else 0) | (pyev.EV_WRITE if events & EV_WRITE
                                                               else 0)
        return _PyevWatcher(pyev.Io(fd, flags, self._loop, _pyev_callback(callback)))

    def timer(self, after, callback):
        return _PyevWatcher(self._pyev.Timer(max(0.0, after), 0.0, self._loop,
                                             _pyev_callback(callback)))

    def async_(self, callback):
        return _PyevWatcher(self._pyev.Async(self._loop, _pyev_callback(callback)))

    def run(self):
        self._loop.start()

    def break_all(self):
        self._loop.stop(self._pyev.EVBREAK_ALL)

    def update_now(self):
        self._loop.update()

    def destroy(self):
        self._loop = None


_backend = None


def load(prefer_pyev=True):
    """Make the binding usable; returns the Loop class.  Raises ReactorUnavailable."""
    global _backend
    if _backend is not None:
        return _backend
    if prefer_pyev and not os.environ.get("CQLREACTOR_LIBEV_NO_PYEV"):
        try:
            import pyev  # noqa: F401
        except ImportError:
            pass
        else:
            _backend = _PyevLoop
            return _backend
    _load_cffi()
    _backend = Loop
    return _backend


def backend_name():
    """"pyev", "cffi (libev X.Y)" or None before :func:`load`."""
    if _backend is _PyevLoop:
        return "pyev"
    if _backend is Loop:
        return "cffi%s (libev %d.%d)" % (" ABI mode" if ABI_MODE else "",
                                         _lib.ev_version_major(), _lib.ev_version_minor())
    return None
