"""The optional compiled row decoder: Cython over ``cqlreactor/_rows_compiled.pyx``.

Off by default; the pure-Python decoder (``cqlreactor.core.types_rows``) is always there and is
what every install runs.  ``enable()`` (or ``CQLREACTOR_COMPILED_ROWS=1`` in the environment
before ``import cqlreactor``) builds the extension on first use into the same per-interpreter
cache directory as the libev binding (``$CQLREACTOR_CACHE_DIR`` ...; see
``cqlreactor.reactors._libev_cffi``), in its own sub-directory named by the source's hash, then
loads it from there in later processes.  It needs Cython, setuptools, a C compiler and the
Python headers (``pip install 'cqlreactor[compiled-rows]'``).  A failed build is logged, remembered
(for the process and on disk until the compiler, headers, Cython or setuptools change, or
``CQLREACTOR_COMPILED_ROWS_REBUILD=1``) and reported by ``python -m cqlreactor doctor``; it is
never an error: rows are then decoded by the pure path.

The compiled decoder gives the same rows as the pure one: it decodes the scalar types and
collections of them natively, calls the type's own Python decoder for everything else, and
hands any irregular body to the pure decoder (tests/unit/test_compiled_rows.py checks this
byte for byte with hypothesis).
"""

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile

from cqlreactor.core import results, types_rows
from cqlreactor.core import types_scalar as S
from cqlreactor.core.types_complex import ListType, MapType, SetType
from cqlreactor.core.types_values import SortedSet

__all__ = ["enable", "disable", "status", "ENV"]

log = logging.getLogger(__name__)

ENV = "CQLREACTOR_COMPILED_ROWS"
MODULE_NAME = "_rows_compiled"
INSTALL_HINT = ("pip install 'cqlreactor[compiled-rows]' (Cython and setuptools) and a C "
                "compiler with the Python headers (Debian/Ubuntu: apt-get install gcc python3-dev)")
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), MODULE_NAME + ".pyx")
_FAILURE_FILE = "build-failed.json"

# the kinds of _rows_compiled.pyx
_KINDS = {S.INT: 1, S.BIGINT: 2, S.COUNTER: 2, S.DOUBLE: 3, S.FLOAT: 4, S.TEXT: 5, S.ASCII: 6,
          S.BLOB: 7, S.BOOLEAN: 8, S.UUID: 9, S.TIMEUUID: 9, S.TIMESTAMP: 10}
_K_LIST, _K_SET, _K_MAP = 11, 12, 13

_module = None
_failure = None     # this process's build/load error text


def _spec(module, ctype):
    """The _Spec of one column type (kind 0: the type's own Python decoder)."""
    make = module._Spec
    kind = _KINDS.get(ctype)
    post = post2 = None
    if kind == 9:
        if _UUID_NATIVE is None:
            kind = None
        else:
            post, post2 = _UUID_NATIVE
    elif kind == 10:
        post = S._ts_from_ms
    if kind is not None and type(ctype) is type(S.INT):
        return make(kind, ctype._from_bytes, post, None, None, post2)
    if type(ctype) in (ListType, SetType):
        elem = _spec(module, ctype._elem)
        if type(ctype) is SetType:
            return make(_K_SET, ctype._from_bytes, SortedSet, elem, None)
        return make(_K_LIST, ctype._from_bytes, None, elem, None)
    if type(ctype) is MapType and ctype._key.hashable:
        return make(_K_MAP, ctype._from_bytes, None, _spec(module, ctype._key),
                    _spec(module, ctype._value))
    return make(0, ctype._from_bytes, None, None, None)


def _uuid_native():
    """(uuid.UUID, is_safe value or None) when building UUIDs the compiled way (object.__new__,
    then ``int`` and ``is_safe`` set) is what types_scalar's decoder gives here; else None."""
    import uuid
    safe = getattr(uuid, "SafeUUID", None)
    sample = bytes(range(1, 17))
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", int.from_bytes(sample, "big"))
    if safe is not None:
        object.__setattr__(made, "is_safe", safe.unknown)
    real = S._uuid_from_bytes(sample)
    if (type(real) is uuid.UUID and made == real and str(made) == str(real)
            and getattr(made, "__dict__", None) == getattr(real, "__dict__", None)
            and getattr(made, "is_safe", None) == getattr(real, "is_safe", None)):
        return uuid.UUID, (safe.unknown if safe is not None else None)
    return None


_UUID_NATIVE = _uuid_native()


def _wrap(col_types, pure):
    module = _module
    return module.RowDecoder([_spec(module, t) for t in col_types], pure)


def _cache_dir():
    from cqlreactor.reactors._libev_cffi import writable_cache_dir
    digest = hashlib.sha256()
    with open(_SOURCE, "rb") as f:
        digest.update(f.read())
    digest.update(sys.version.encode("utf-8"))
    name = "rows-%s-%s" % (sys.implementation.cache_tag, digest.hexdigest()[:16])
    return writable_cache_dir(name, "the compiled row decoder")


def _fingerprint():
    from cqlreactor.reactors._libev_cffi import (_find_compiler, _find_setuptools, _python_header,
                                                 file_stamp)
    import importlib.util
    try:
        spec = importlib.util.find_spec("Cython")
    except (ImportError, ValueError):
        spec = None
    return {"env": [os.environ.get(k, "") for k in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")],
            "compiler": file_stamp(_find_compiler()), "Python.h": file_stamp(_python_header()),
            "setuptools": file_stamp(_find_setuptools()),
            "Cython": file_stamp(spec.origin if spec is not None else None)}


def _extension_path(directory):
    import importlib.machinery
    return os.path.join(directory, MODULE_NAME + importlib.machinery.EXTENSION_SUFFIXES[0])


def _build(directory):
    from cqlreactor.reactors._libev_cffi import _first_line, run_quietly
    try:
        with open(os.path.join(directory, _FAILURE_FILE)) as f:
            record = json.load(f)
        if (not os.environ.get(ENV + "_REBUILD")
                and record.get("fingerprint") == _fingerprint()):
            raise RuntimeError(record.get("error"))
    except (OSError, ValueError):
        pass
    work = tempfile.mkdtemp(prefix="build-", dir=directory)
    try:
        try:
            from Cython.Build import cythonize
            from setuptools import Distribution, Extension
            from setuptools.command.build_ext import build_ext
            source = os.path.join(work, MODULE_NAME + ".pyx")
            shutil.copy(_SOURCE, source)
            extensions = cythonize([Extension(MODULE_NAME, [source],
                                              extra_compile_args=["-O2"])],
                                   quiet=True, build_dir=work)
            dist = Distribution({"ext_modules": extensions, "script_name": "build"})
            cmd = build_ext(dist)
            cmd.build_lib = cmd.build_temp = work
            cmd.ensure_finalized()
            run_quietly(cmd.run, "compiled row decoder", log)
            built = cmd.get_ext_fullpath(MODULE_NAME)
        except (Exception, SystemExit) as exc:
            text = ("building the compiled row decoder failed (%s: %s); %s (rows are decoded "
                    "by the pure-Python path; set %s_REBUILD=1 to retry)"
                    % (type(exc).__name__, _first_line(exc), INSTALL_HINT, ENV))
            try:
                with open(os.path.join(directory, _FAILURE_FILE), "w") as f:
                    json.dump({"error": text, "fingerprint": _fingerprint()}, f)
            except OSError:
                pass
            raise RuntimeError(text)
        target = _extension_path(directory)
        os.replace(built, target)
        try:
            os.unlink(os.path.join(directory, _FAILURE_FILE))
        except OSError:
            pass
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load():
    global _module, _failure
    if _module is not None:
        return _module
    if _failure is not None:
        raise RuntimeError(_failure)
    try:
        import importlib.machinery
        import importlib.util
        directory = _cache_dir()
        path = _extension_path(directory)
        if not os.path.exists(path):
            path = _build(directory)
        loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, path)
        spec = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except Exception as exc:
        _failure = str(exc) if isinstance(exc, RuntimeError) else (
            "loading the compiled row decoder failed (%s: %s); %s"
            % (type(exc).__name__, exc, INSTALL_HINT))
        raise RuntimeError(_failure)
    _module = module
    return module


def enable():
    """Decode rows with the compiled decoder from now on (building it if needed).

    Returns True when it is active, False (logged at WARNING, shown by ``doctor``) when it could
    not be built or loaded: rows are then decoded by the pure-Python path.
    """
    try:
        _load()
    except RuntimeError as exc:
        log.warning("%s", exc)
        return False
    types_rows.set_compiled(_wrap)
    results.forget_decoders()
    from cqlreactor import query
    query._compiled_dicts = _module.rows_as_dicts
    return True


def disable():
    """Back to the pure-Python decoder."""
    types_rows.set_compiled(None)
    results.forget_decoders()
    from cqlreactor import query
    query._compiled_dicts = None


def status():
    """(state, detail) for ``doctor``: state is "active", "available", "off" or "missing"."""
    if types_rows.compiled_active():
        return "active", "rows are decoded by the compiled decoder"
    try:
        _load()
    except RuntimeError as exc:
        return "missing", str(exc)
    return "available", "built; enable with %s=1 or cqlreactor.compiled_rows.enable()" % ENV
