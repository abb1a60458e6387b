"""compat_matrix.yaml at run time: the gate, the default choice and ``python -m cqlreactor doctor``.

The YAML file (shipped inside the package, symlinked from the repository root) is the only place
that says which reactor runs on which interpreter.  This module reads it once and answers:

- :func:`check_supported` -- raise :class:`UnsupportedReactorError` for a reactor the matrix
  gates off on this interpreter, unless the user opted in (then it warns);
- :func:`load_reactor_class` / :func:`get_reactor_class` -- import a reactor by name, with the
  gate applied and a "what to install" message when it cannot load;
- :func:`default_reactor_class` -- the first available reactor in the matrix's order, or an
  error that says, for each reactor passed over, why;
- :func:`reactor_status` / :func:`doctor_main` -- available / gated / missing, for people and
  (``--json``) for machines.
"""

import ctypes.util
import importlib
import importlib.util
import json
import os
import platform
import sys
import warnings

from cqlreactor.core.errors import ReactorUnavailable, UnsupportedReactorError

__all__ = [
    "MATRIX_PATH", "ALLOW_ENV", "UnsupportedReactorWarning", "load_matrix", "reactor_names",
    "python_matches", "gate_problem", "allowed_unsupported", "check_supported",
    "load_reactor_class", "get_reactor_class", "default_reactor_class", "reactor_status",
    "ReactorStatus", "doctor_main",
]

MATRIX_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "compat_matrix.yaml")
ALLOW_ENV = "CQLREACTOR_ALLOW_UNSUPPORTED"

_matrix_cache = {}


class UnsupportedReactorWarning(UserWarning):
    """A gated reactor was chosen with an explicit opt-in; it runs, unsupported."""


def load_matrix(path=None):
    """Return the parsed matrix (a dict); validated, cached per path.

    Raises:
        ValueError: the file breaks the schema (unknown reactor in an order, duplicate problem
            id, a gate without a reason or link ...).
    """
    path = path or MATRIX_PATH
    data = _matrix_cache.get(path)
    if data is None:
        import yaml  # a declared dependency; imported here so `import cqlreactor` stays light
        # libyaml's loader when PyYAML was built with it: 1 ms instead of 6 on the first
        # connect (every reactor's gate reads the matrix)
        loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
        with open(path, "rb") as f:
            data = yaml.load(f, Loader=loader)
        _validate(data, path)
        _matrix_cache[path] = data
    return data


def _validate(data, path):
    def fail(msg):
        raise ValueError("%s: %s" % (path, msg))

    if not isinstance(data, dict) or data.get("schema") != 1:
        fail("not a schema 1 compat matrix")
    reactors = data.get("reactors") or {}
    for key in ("default_order", "patched_first"):
        for name in data.get(key, []):
            if name not in reactors:
                fail("%s names unknown reactor %r" % (key, name))
    if sorted(data.get("default_order", [])) != sorted(reactors):
        fail("default_order must list every reactor exactly once")
    for name, entry in reactors.items():
        for field in ("class", "module", "summary", "install"):
            if not entry.get(field):
                fail("reactor %r lacks %r" % (name, field))
        seen = set()
        for problem in entry.get("problems") or []:
            pid = problem.get("id")
            if not pid or pid in seen:
                fail("reactor %r: problem id missing or duplicated: %r" % (name, pid))
            seen.add(pid)
            if not problem.get("reason") or not problem.get("link"):
                fail("reactor %r problem %r needs a reason and a link" % (name, pid))
            python_matches(problem.get("python", ""), (3, 6))  # parses, or raises ValueError
        for req in entry.get("requires") or []:
            if not (req.get("module") or req.get("library")):
                fail("reactor %r: a requirement needs `module` or `library`" % (name,))


def reactor_names(path=None):
    """Names of every reactor in the matrix, in the default preference order."""
    return list(load_matrix(path)["default_order"])


def python_matches(spec, version=None):
    """True when ``version`` (a (major, minor) tuple; default: running) satisfies ``spec``.

    ``spec`` is "" (everything) or comma-separated ``>=``, ``>``, ``<=``, ``<``, ``==`` on
    major.minor.
    """
    version = tuple(version or sys.version_info[:2])[:2]
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        for op in (">=", "<=", "==", ">", "<"):
            if part.startswith(op):
                bound = tuple(int(x) for x in part[len(op):].strip().split("."))[:2]
                break
        else:
            raise ValueError("bad python range %r" % (spec,))
        ok = {">=": version >= bound, "<=": version <= bound, "==": version == bound,
              ">": version > bound, "<": version < bound}[op]
        if not ok:
            return False
    return True


def _entry(name, path=None):
    reactors = load_matrix(path)["reactors"]
    if name not in reactors:
        raise ValueError("unknown reactor %r; the matrix knows %s"
                         % (name, ", ".join(reactor_names(path))))
    return reactors[name]


def gate_problem(name, version=None, path=None):
    """The gating problem (dict with reason, link) for ``name`` on ``version``, or None."""
    entry = _entry(name, path)
    if not python_matches(entry.get("python", ""), version):
        return {"id": "python-range", "reason": "supports Python %s only" % entry["python"],
                "link": ""}
    for problem in entry.get("problems") or []:
        if problem.get("gate") and python_matches(problem.get("python", ""), version):
            return problem
    return None


def allowed_unsupported(allow_unsupported_reactors=None):
    """The set of reactor names the user opted into (argument plus environment variable).

    ``allow_unsupported_reactors`` is None, True (every reactor), a comma-separated string or an
    iterable of names; the environment variable is a comma-separated list ("*" = all).
    """
    names = set()
    sources = [os.environ.get(ALLOW_ENV, "")]
    arg = allow_unsupported_reactors
    if arg is True:
        names.add("*")
    elif isinstance(arg, str):
        sources.append(arg)
    elif arg:
        names.update(str(n).strip() for n in arg)
    for source in sources:
        names.update(n.strip() for n in source.split(",") if n.strip())
    return names


def _interpreter():
    return "%s %s" % (platform.python_implementation(), platform.python_version())


def _alternatives(name, path=None):
    return [n for n in reactor_names(path) if n != name and gate_problem(n, path=path) is None]


def check_supported(name, allow_unsupported_reactors=None, path=None):
    """Apply the gate for reactor ``name`` on the running interpreter.

    Raises:
        UnsupportedReactorError: gated and not opted in.  The exception has attributes
            ``reactor``, ``interpreter``, ``reason``, ``link`` and ``alternatives``.
    Warns:
        UnsupportedReactorWarning: gated but opted in.
    """
    problem = gate_problem(name, path=path)
    if problem is None:
        return
    reason = " ".join(str(problem["reason"]).split())
    link = problem.get("link", "")
    alternatives = _alternatives(name, path)
    allowed = allowed_unsupported(allow_unsupported_reactors)
    if name in allowed or "*" in allowed:
        warnings.warn("reactor %r is not supported on %s (%s %s); running it anyway because it "
                      "was allowed explicitly" % (name, _interpreter(), reason, link),
                      UnsupportedReactorWarning, stacklevel=3)
        return
    err = UnsupportedReactorError(
        "reactor %r is not supported on %s: %s (%s). Alternatives here: %s. To run it anyway, "
        "set %s=%s or pass allow_unsupported_reactors=[%r]."
        % (name, _interpreter(), reason, link, ", ".join(alternatives) or "none",
           ALLOW_ENV, name, name))
    err.reactor = name
    err.interpreter = _interpreter()
    err.reason = reason
    err.link = link
    err.alternatives = alternatives
    raise err


def _missing_requirements(entry, version=None):
    """List of (what, install hint) for requirements not met on this interpreter."""
    missing = []
    for req in entry.get("requires") or []:
        if not python_matches(req.get("python", ""), version):
            continue
        if req.get("module"):
            try:
                found = importlib.util.find_spec(req["module"]) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(("Python module %r" % req["module"], "pip install %s"
                                % req.get("pip", req["module"])))
        elif req.get("library"):
            if ctypes.util.find_library(req["library"]) is None:
                hint = "apt-get install %s" % req["debian"] if req.get("debian") else ""
                missing.append(("library %s" % req.get("soname", req["library"]), hint))
    return missing


def load_reactor_class(name, path=None):
    """Import reactor ``name`` and return its class, without the gate.

    Raises:
        ReactorUnavailable: something it needs is not installed (the message says what to
            install) or its module failed to import.
    """
    entry = _entry(name, path)
    missing = _missing_requirements(entry)
    if missing:
        raise _unavailable(name, "%s missing" % ", ".join(m for m, _ in missing), entry)
    try:
        module = importlib.import_module(entry["module"])
        return getattr(module, entry["class"])
    except ReactorUnavailable:
        raise
    except Exception as exc:  # ImportError, OSError from dlopen, a broken dependency ...
        err = _unavailable(name, "importing %s failed: %s: %s"
                           % (entry["module"], type(exc).__name__, exc), entry)
        err.__cause__ = exc
        raise err


def _unavailable(name, reason, entry):
    err = ReactorUnavailable("reactor %r is not available: %s. Install with: %s"
                             % (name, reason, entry["install"]))
    err.reactor = name
    err.reason = reason
    err.install = entry["install"]
    return err


def get_reactor_class(name, allow_unsupported_reactors=None, path=None):
    """The reactor class for ``name`` ("gevent", ...), a Reactor subclass (returned as is) or
    None (the default choice).  The gate is applied.

    Raises:
        UnsupportedReactorError, ReactorUnavailable, ValueError (unknown name).
    """
    if name is None:
        return default_reactor_class(allow_unsupported_reactors, path=path)
    if isinstance(name, type):
        reactor_name = getattr(name, "name", None)
        if reactor_name in load_matrix(path)["reactors"]:
            check_supported(reactor_name, allow_unsupported_reactors, path=path)
        return name
    name = str(name).strip().lower()
    check_supported(name, allow_unsupported_reactors, path=path)
    return load_reactor_class(name, path=path)


def _patched_by():
    """The green library that monkey-patched ``socket``, or None."""
    if "gevent.monkey" in sys.modules:
        try:
            if sys.modules["gevent.monkey"].is_module_patched("socket"):
                return "gevent"
        except Exception:
            pass
    if "eventlet.patcher" in sys.modules:
        try:
            if sys.modules["eventlet.patcher"].is_monkey_patched("socket"):
                return "eventlet"
        except Exception:
            pass
    return None


def default_reactor_class(allow_unsupported_reactors=None, path=None):
    """The first reactor of the matrix's order that is available and not gated.

    Raises:
        ReactorUnavailable: none loads; the message lists each reactor and why.
    """
    data = load_matrix(path)
    order = list(data["default_order"])
    patched = _patched_by()
    if patched in data.get("patched_first", []):
        order.remove(patched)
        order.insert(0, patched)
    allowed = allowed_unsupported(allow_unsupported_reactors)
    reasons = []
    for name in order:
        problem = gate_problem(name, path=path)
        if problem is not None and name not in allowed and "*" not in allowed:
            reasons.append("%s: gated (%s)" % (name, problem.get("link") or problem["reason"]))
            continue
        try:
            cls = load_reactor_class(name, path=path)
        except ReactorUnavailable as exc:
            reasons.append("%s: %s" % (name, exc))
            continue
        if problem is not None:
            check_supported(name, allow_unsupported_reactors, path=path)  # warns
        return cls
    raise ReactorUnavailable("no reactor can run on %s:\n  %s"
                             % (_interpreter(), "\n  ".join(reasons)))


class ReactorStatus(object):
    """What ``doctor`` says about one reactor.

    Attributes:
        name, cls (class name), module, summary
        state: "available", "gated" or "missing"
        installed: whether its requirements are present (also reported for gated reactors)
        reason, link: why it is gated or missing (link may be "")
        install: what to install when missing
        notes: non-gating known problems, as [{"id", "reason", "link"}]
    """

    __slots__ = ("name", "cls", "module", "summary", "state", "installed", "reason", "link",
                 "install", "notes")

    def __init__(self, **kw):
        for slot in self.__slots__:
            setattr(self, slot, kw.get(slot))

    def as_dict(self):
        return dict((slot, getattr(self, slot)) for slot in self.__slots__)


def reactor_status(name, load=True, path=None):
    """Return the :class:`ReactorStatus` of ``name`` on the running interpreter.

    With ``load`` the reactor module is imported to prove it works; otherwise only its
    requirements are looked for.
    """
    entry = _entry(name, path)
    notes = [{"id": p["id"], "reason": " ".join(str(p["reason"]).split()), "link": p["link"]}
             for p in entry.get("problems") or []
             if not p.get("gate") and python_matches(p.get("python", ""))]
    status = ReactorStatus(name=name, cls=entry["class"], module=entry["module"],
                           summary=entry["summary"], install=entry["install"], notes=notes,
                           link="", reason="")
    missing = _missing_requirements(entry)
    status.installed = not missing
    problem = gate_problem(name, path=path)
    if problem is not None:
        status.state = "gated"
        status.reason = " ".join(str(problem["reason"]).split())
        status.link = problem.get("link", "")
        return status
    if missing:
        status.state = "missing"
        status.reason = "%s not found" % ", ".join(m for m, _ in missing)
        return status
    if load:
        try:
            load_reactor_class(name, path=path)
        except ReactorUnavailable as exc:
            status.state = "missing"
            status.installed = False
            status.reason = getattr(exc, "reason", None) or str(exc)
            return status
    status.state = "available"
    return status


def doctor_main(as_json=False, out=None):
    """``python -m cqlreactor doctor [--json]``: every reactor's status on this interpreter.

    Returns:
        0 when at least one reactor is available, 1 otherwise.
    """
    out = out or sys.stdout
    statuses = [reactor_status(name) for name in reactor_names()]
    try:
        default = default_reactor_class().name
    except Exception as exc:  # reported, not raised: doctor is for diagnosing exactly this
        default = None
        default_error = str(exc)
    else:
        default_error = None
    from cqlreactor import compiled_rows
    rows_state, rows_detail = compiled_rows.status()
    if as_json:
        json.dump({"interpreter": _interpreter(), "platform": sys.platform,
                   "matrix": MATRIX_PATH, "default": default, "default_error": default_error,
                   "allow_unsupported": sorted(allowed_unsupported()),
                   "reactors": [s.as_dict() for s in statuses],
                   "compiled_row_decoder": {"state": rows_state, "detail": rows_detail}},
                  out, indent=2, sort_keys=True)
        out.write("\n")
    else:
        out.write("cqlreactor doctor on %s (%s)\nmatrix: %s\n\n"
                  % (_interpreter(), sys.platform, MATRIX_PATH))
        for s in statuses:
            out.write("%-9s %-9s %s\n" % (s.name, s.state.upper(), s.summary))
            if s.state == "gated":
                out.write("          why: %s\n          see: %s\n" % (s.reason, s.link))
                out.write("          override: %s=%s (unsupported)\n" % (ALLOW_ENV, s.name))
            elif s.state == "missing":
                out.write("          why: %s\n          install: %s\n" % (s.reason, s.install))
            for note in s.notes:
                out.write("          note: %s (%s)\n" % (note["reason"], note["link"]))
        out.write("\ndefault reactor: %s\n" % (default or "none -- " + str(default_error)))
        # optional: never a failure of doctor (rows are then decoded by the pure path)
        out.write("compiled row decoder: %s -- %s\n" % (rows_state, rows_detail))
    return 0 if any(s.state == "available" for s in statuses) else 1


def markdown_table(path=None):
    """The matrix as the Markdown table the README shows (``python -m cqlreactor doctor
    --markdown``): one row per reactor, one column per supported interpreter, then the reasons
    of the gated cells.  tests/unit/test_readme_matrix.py checks that the README has it."""
    data = load_matrix(path)
    versions = [str(v) for v in data["python_versions"]]
    lines = ["| reactor | %s | install |" % " | ".join(versions),
             "|---|%s---|" % ("---|" * len(versions))]
    gated = []
    for name in reactor_names(path):
        entry = _entry(name, path)
        cells = []
        for text in versions:
            version = tuple(int(x) for x in text.split("."))
            problem = gate_problem(name, version=version, path=path)
            if problem is not None:
                cells.append("gated")
                note = (name, " ".join(str(problem["reason"]).split()), problem.get("link", ""))
                if note not in gated:
                    gated.append(note)
                continue
            extra = [r["pip"] for r in entry.get("requires") or []
                     if r.get("python") and python_matches(r["python"], version)
                     and r.get("pip") and "standard library" not in r["pip"]]
            cells.append("yes" if not extra else "yes (%s)" % ", ".join(extra))
        lines.append("| %s | %s | %s |" % (name, " | ".join(cells),
                                            str(entry["install"]).replace("|", "\\|")))
    lines.append("")
    for name, reason, link in gated:
        lines.append("Gated %s: %s%s" % (name, reason, " (%s)" % link if link else ""))
    return "\n".join(lines) + "\n"
