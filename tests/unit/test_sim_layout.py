"""The simulator's three packages (testing/engine, testing/server, testing/astra) have no import
cycle: their modules import each other in one direction only, no module imports at its bottom,
and the engine loads without the server."""

import ast
import os
import subprocess
import sys

import cqlreactor.testing

TESTING = os.path.dirname(os.path.abspath(cqlreactor.testing.__file__))
PACKAGES = ("engine", "server", "astra")
# Files of cqlreactor/testing/ that other parts of the project own or that import lazily on
# purpose (the package's __getattr__), left out of the graph.
NOT_CHECKED = ("__init__", "memory", "conformance", "pytest_plugin")


def _module_files():
    out = {}
    for name in os.listdir(TESTING):
        stem, ext = os.path.splitext(name)
        if ext == ".py" and stem not in NOT_CHECKED:
            out["cqlreactor.testing." + stem] = os.path.join(TESTING, name)
    for package in PACKAGES:
        directory = os.path.join(TESTING, package)
        for name in os.listdir(directory):
            stem, ext = os.path.splitext(name)
            if ext != ".py":
                continue
            module = "cqlreactor.testing.%s" % (package,)
            if stem != "__init__":
                module += "." + stem
            out[module] = os.path.join(directory, name)
    return out


def _imports(tree, modules):
    """Every testing module that ``tree`` imports, anywhere (functions included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import submodule`` is an import of the submodule
            names = [node.module + "." + alias.name for alias in node.names
                     if node.module + "." + alias.name in modules] or [node.module]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def test_no_import_cycle_between_simulator_modules():
    files = _module_files()
    graph = {}
    for module, path in files.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        graph[module] = _imports(tree, files) - {module}
        package = module if path.endswith("__init__.py") else None
        if package:             # a package's __init__ re-exports its modules: not an edge back
            graph[module] = set(m for m in graph[module] if not m.startswith(package + "."))
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import cycle: " + " -> ".join(path + [module])
        state[module] = "open"
        for dep in sorted(graph[module]):
            if not dep.startswith(module + "."):    # importing a submodule runs our __init__
                visit(dep, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_no_module_imports_at_its_bottom():
    for module, path in _module_files().items():
        with open(path) as f:
            body = ast.parse(f.read(), path).body
        seen_code = False
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                seen_code = True
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                assert not seen_code, "%s imports after its definitions (line %d)" % (
                    module, node.lineno)


def test_each_module_imports_first_and_the_engine_alone():
    modules = sorted(_module_files())
    script = "\n".join([
        "import importlib, sys",
        "for name in %r:" % (modules,),
        "    for loaded in [m for m in sys.modules if m.startswith('cqlreactor.testing')]:",
        "        del sys.modules[loaded]",
        "    importlib.import_module(name)",
        "for loaded in [m for m in sys.modules if m.startswith('cqlreactor.testing')]:",
        "    del sys.modules[loaded]",
        "import cqlreactor.testing.engine",
        "print(sorted(m for m in sys.modules if m.startswith('cqlreactor.testing')))",
    ])
    out = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert loaded and all(m == "cqlreactor.testing" or m.startswith("cqlreactor.testing.engine")
                          for m in loaded), loaded


def test_the_simulated_server_frames_only_through_core_framing():
    """Segments, frame compression and frame decoding happen in core/framing.py's Framing (the
    rule the client follows too), never by hand in the server."""
    directory = os.path.join(TESTING, "server")
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(directory, name)) as f:
            tree = ast.parse(f.read(), name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module != "cqlreactor.core.segments", name
                if node.module == "cqlreactor.core.frames":
                    assert not {"FrameDecoder", "encode_frame"} & {a.name for a in node.names}
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("compress_frame", "decompress_frame", "SegmentEncoder",
                                         "SegmentDecoder"), (name, node.attr)
