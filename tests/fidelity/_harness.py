"""Runs an independent client's check script in its own interpreter and collects the results.

The script (``scylla_client.py``, ``node_client.js``) prints one JSON line per check and asks
for node stops/starts on stdout (``{"ask": "stop_node", "node": 1}``); this side does them on
the simulated cluster and answers ``ok`` on the script's stdin.

Where the clients come from (nothing here installs anything):

- scylla-driver installs as the ``cassandra`` package, like cassandra-driver, so it lives in a
  venv of its own: ``$CQLREACTOR_SCYLLA_PYTHON``, else ``<repo>/.fidelity/scylla/bin/python``
  (``python -m venv .fidelity/scylla && .fidelity/scylla/bin/pip install scylla-driver``).
- the DataStax Node.js driver: ``node`` on PATH and ``cassandra-driver`` in
  ``$CQLREACTOR_NODE_MODULES``, else ``<repo>/.fidelity/node/node_modules``
  (``npm install --prefix .fidelity/node cassandra-driver``).
"""

import json
import os
import shutil
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def scylla_python():
    """(interpreter path or None, reason when None)."""
    path = os.environ.get("CQLREACTOR_SCYLLA_PYTHON") or os.path.join(
        ROOT, ".fidelity", "scylla", "bin", "python")
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
    modules = os.environ.get("CQLREACTOR_NODE_MODULES") or os.path.join(
        ROOT, ".fidelity", "node", "node_modules")
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
