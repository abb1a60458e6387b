"""``python -m cqlreactor demo``: the fake Astra through every available reactor, exits 0 and
leaves no process or file behind; ``--cluster`` runs against a self-hosted cluster; ``doctor``
piped into a reader that went away ends quietly."""

import os
import subprocess
import sys
import uuid

from cqlreactor.reactors import matrix


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except (IOError, OSError):
            continue
    return found


def _run_demo(tmp_path, *extra):
    marker = "demo-%s" % uuid.uuid4().hex
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), CQLREACTOR_TEST_MARK=marker)
    proc = subprocess.run([sys.executable, "-m", "cqlreactor", "demo", "--requests", "120"]
                          + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=240, env=env)
    return proc, marker, scratch


def test_demo_runs_the_astra_example_on_every_available_reactor(tmp_path):
    proc, marker, scratch = _run_demo(tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out
    assert "selfcheck: all checks passed" in out
    assert "demo: all reactors passed" in out
    assert 'Cluster(cloud={"secure_connect_bundle": bundle}' in out
    header = [line.split() for line in out.splitlines() if line.split()[:1] == ["reactor"]]
    assert header == [["reactor", "requests", "errors", "req/s", "p50", "ms", "p99", "ms",
                       "TLS", "protocol"]]
    rows = dict((line.split()[0], line.split()) for line in out.splitlines()
                if line.strip() and line.split()[0] in matrix.reactor_names()
                and len(line.split()) == 8)
    for name in matrix.reactor_names():
        state = matrix.reactor_status(name)
        if state.state == "available":
            assert "%-9s secure connect bundle: connected" % name in out
            assert "%-9s  ... with use_default_tempdir: connected" % name in out
            assert rows[name][1:3] == ["120", "0"], out
            assert rows[name][6].startswith("TLSv1"), out
            assert rows[name][7] in ("v4", "v5"), out
        elif state.state == "gated":
            assert "%-9s gated on this interpreter: %s" % (name, state.reason) in out
        else:
            assert "%-9s not available" % name in out
    # nothing left behind: no process of the demo's (they inherit its environment) and no
    # file in its temp dir (the fake's certificates and bundle, the extracted bundle)
    assert _processes_with(marker) == []
    assert os.listdir(str(scratch)) == []


def test_demo_against_a_self_hosted_cluster(tmp_path, cql_cluster):
    proc, marker, scratch = _run_demo(tmp_path, "--cluster", cql_cluster.contact_points[0],
                                      "--port", str(cql_cluster.port), "--reactor", "asyncore")
    assert proc.returncode == 0, proc.stdout
    row = [line.split() for line in proc.stdout.splitlines() if line.startswith("  asyncore ")
           and len(line.split()) == 8]
    assert row and row[-1][1:3] == ["120", "0"] and row[-1][6] == "none", proc.stdout
    assert "fake Astra" not in proc.stdout
    assert _processes_with(marker) == []


def test_demo_refuses_a_bundle_without_credentials():
    proc = subprocess.run([sys.executable, "-m", "cqlreactor", "demo", "--bundle", "b.zip"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 2
    assert "--bundle needs --username and --password" in proc.stderr


def test_doctor_into_a_closed_pipe_ends_without_a_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)          # the reader (``| head``) has gone before doctor writes
    try:
        proc = subprocess.run([sys.executable, "-m", "cqlreactor", "doctor"], stdout=write_end,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 1


def test_demo_names_the_problem_of_a_bad_bundle(tmp_path):
    bad = tmp_path / "bundle.zip"
    bad.write_bytes(b"not a zip")
    proc = subprocess.run([sys.executable, "-m", "cqlreactor", "demo", "--bundle", str(bad),
                           "--username", "token", "--password", "AstraCS:x"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == "demo: secure connect bundle %s: not a zip file\n" % bad
