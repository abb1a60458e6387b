"""Runs an independent client's check script in its own interpreter and collects the results.

The script (``scylla_client.py``, ``node_client.js``) prints one JSON line per check and asks
for node stops/starts on stdout (``{"ask": "stop_node", "node": 1}``); this side does them on
the simulated cluster and answers ``ok`` on the script's stdin.

Where the clients come from (nothing is installed unless ``CQLREACTOR_FIDELITY_INSTALL=1``):

- scylla-driver installs as the ``cassandra`` package, like cassandra-driver, so it lives in a
  venv of its own: ``$CQLREACTOR_SCYLLA_PYTHON``, else ``<repo>/.fidelity/scylla/bin/python``
  (``python -m venv .fidelity/scylla && .fidelity/scylla/bin/pip install scylla-driver``).
- the DataStax Node.js driver: ``node`` on PATH and ``cassandra-driver`` in
  ``$CQLREACTOR_NODE_MODULES``, else ``<repo>/.fidelity/node/node_modules``
  (``npm install --prefix .fidelity/node cassandra-driver``).

With ``CQLREACTOR_FIDELITY_INSTALL=1`` (for CI), a client missing from ``<repo>/.fidelity`` is
installed there first, with the commands above (measured here: the scylla venv ~30 s, npm
~5 s; later runs reuse it).  The install runs under a lock file, into a temporary directory
renamed into place, so parallel runs (tox -p) neither race nor leave half an install.  A failed
install is a skip naming the command's output, never a failure of the suite.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


CACHE = os.path.join(ROOT, ".fidelity")


def _install_asked():
    return os.environ.get("CQLREACTOR_FIDELITY_INSTALL") == "1"


def _venv_python():
    """An interpreter to build scylla-driver's venv with (scylla-driver wants 3.9+)."""
    if sys.version_info >= (3, 9):
        return sys.executable
    for name in ("python3.13", "python3.12", "python3.11", "python3.10", "python3.9"):
        path = shutil.which(name)        # (a tox env's own python3 is this old interpreter)
        if path and subprocess.run([path, "-c", ""], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL).returncode == 0:
            return path
    return None


def _install(name, build):
    """Run ``build(tmp_dir)`` and rename tmp_dir to CACHE/name, under CACHE/.lock; returns
    None, or the reason it failed."""
    final = os.path.join(CACHE, name)
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(final):                 # another run installed it meanwhile
            return None
        tmp = final + ".tmp-%d" % os.getpid()
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            out = getattr(exc, "output", b"") or b""
            return "installing %s into %s failed: %s %s" % (
                name, CACHE, exc, out.decode("utf-8", "replace")[-500:])
        os.rename(tmp, final)
    return None


def _run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=600)


def _build_scylla(tmp):
    python = _venv_python()
    if python is None:
        raise OSError("no Python 3.9+ to build the scylla-driver venv with")
    _run([python, "-m", "venv", tmp])
    # only bin/python is used later, which finds its site-packages after the rename too
    _run([os.path.join(tmp, "bin", "python"), "-m", "pip", "install", "-q", "scylla-driver"])


def _build_node(tmp):
    npm = shutil.which("npm")
    if npm is None:
        raise OSError("npm is not installed")
    _run([npm, "install", "--no-audit", "--no-fund", "--prefix", tmp, "cassandra-driver"])


def scylla_python():
    """(interpreter path or None, reason when None)."""
    default = os.path.join(CACHE, "scylla", "bin", "python")
    if not os.environ.get("CQLREACTOR_SCYLLA_PYTHON") and not os.path.exists(default) and \
            _install_asked():
        failed = _install("scylla", _build_scylla)
        if failed:
            return None, failed
    path = os.environ.get("CQLREACTOR_SCYLLA_PYTHON") or default
    if not os.path.exists(path):
        return None, ("scylla-driver is not installed: set CQLREACTOR_SCYLLA_PYTHON to an "
                      "interpreter that has it, or run `python -m venv .fidelity/scylla && "
                      ".fidelity/scylla/bin/pip install scylla-driver`")
    probe = subprocess.run([path, "-c", "import cassandra, sys; "
                            "sys.stdout.write(cassandra.__file__)"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if probe.returncode != 0:
        return None, "%s cannot import scylla-driver: %s" % (
            path, probe.stderr.decode("utf-8", "replace")[-300:])
    return path, None


def node_modules():
    """(node executable, node_modules dir) or (None, reason)."""
    node = shutil.which("node")
    if node is None:
        return None, "Node.js is not installed (no `node` on PATH)"
    default = os.path.join(CACHE, "node", "node_modules")
    if not os.environ.get("CQLREACTOR_NODE_MODULES") and not os.path.isdir(default) and \
            _install_asked():
        failed = _install("node", _build_node)
        if failed:
            return None, failed
    modules = os.environ.get("CQLREACTOR_NODE_MODULES") or default
    if not os.path.isdir(os.path.join(modules, "cassandra-driver")):
        return None, ("the DataStax Node.js driver is not installed: set "
                      "CQLREACTOR_NODE_MODULES to a node_modules holding cassandra-driver, or "
                      "run `npm install --prefix .fidelity/node cassandra-driver`")
    return (node, modules), None


def run_client(command, config, sim=None, env=None, timeout=120):
    """Run ``command + [json config]``; answer its asks on ``sim``; returns
    {check: {"ok": bool, "error": str}} (a script that dies early fails what it did not
    report: the caller sees which checks are missing)."""
    proc = subprocess.Popen(command + [json.dumps(config)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, **(env or {})))
    results = {}
    stderr = []
    threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True).start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in iter(proc.stdout.readline, b""):
            try:
                msg = json.loads(line.decode("utf-8"))
            except ValueError:
                continue             # a driver's own print; not ours
            if "ask" in msg:
                getattr(sim, msg["ask"])(msg["node"])
                proc.stdin.write(b"ok\n")
                proc.stdin.flush()
            elif "check" in msg:
                results[msg["check"]] = msg
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results["_stderr"] = {"ok": True, "error": (b"".join(stderr)).decode("utf-8",
                                                                      "replace")[-3000:]}
    return results


# the releases each client connects to, besides the default 4.0 cluster of the full checks
RELEASES = ["3.11.17", "5.0.2"]
RELEASE_CHECKS = ["connect", "discovery", "release"]


def run_release(command, release, env=None):
    """The client's connect/discovery/release checks against a 2-node cluster of Cassandra
    ``release`` (the driver negotiates the protocol version itself)."""
    from cqlreactor.testing import SimulatedCluster
    with SimulatedCluster(nodes=2, release_version=release) as sim:
        return run_client(command, {"mode": "cluster", "contact_points": sim.contact_points,
                                    "port": sim.port, "nodes": 2, "release": release,
                                    "protocol": "auto"}, sim=sim, env=env)


def assert_check(results, name):
    """The check ``name`` was reported and passed (else its error and the client's stderr)."""
    result = results.get(name)
    assert result is not None, "the client never reported %r; its stderr:\n%s" % (
        name, results["_stderr"]["error"])
    assert result["ok"], "%s: %s\n%s" % (name, result.get("error"), result.get("trace", ""))
