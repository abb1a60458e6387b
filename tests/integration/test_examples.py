"""examples/: each one started as a user would (gunicorn with gevent workers, eventlet.wsgi,
a threaded script, a queue worker), sent real HTTP requests or jobs, and its rows checked
through a Session of our own.  One worker and a few requests each, to stay quick."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from cqlreactor import Cluster
from cqlreactor.reactors import matrix

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples")


def _free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _env(sim, keyspace):
    return dict(os.environ, CQL_HOSTS=",".join(sim.contact_points), CQL_PORT=str(sim.port),
                CQL_KEYSPACE=keyspace, PYTHONPATH=EXAMPLES + os.pathsep
                + os.environ.get("PYTHONPATH", ""))


def _http(method, url, body=None):
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode("utf-8"))


def _wait_healthy(proc, base, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("the server exited with %s: %s"
                                 % (proc.returncode, proc.stderr.read()))
        try:
            return _http("GET", base + "/health")
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            time.sleep(0.1)
    raise AssertionError("the server did not answer /health within %gs" % timeout)


def _rows(sim, query):
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        return list(cluster.connect().execute(query))


def _notes_roundtrip(proc, base, sim, keyspace, reactor):
    status, health = _wait_healthy(proc, base)
    assert status == 200 and health == {"reactor": reactor, "hosts": len(sim.contact_points)}
    for i in range(1, 4):
        assert _http("PUT", "%s/notes/%d" % (base, i), ("note %d" % i).encode()) == \
            (200, {"id": i, "stored": True})
    assert _http("GET", base + "/notes/2") == (200, {"id": 2, "text": "note 2"})
    assert _http("GET", base + "/notes/99")[0] == 404
    rows = _rows(sim, "SELECT id, text FROM %s.notes" % keyspace)
    assert sorted((r.id, r.text) for r in rows) == [(1, "note 1"), (2, "note 2"), (3, "note 3")]


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_gunicorn_with_gevent_workers(cql_cluster):
    pytest.importorskip("gunicorn", reason="gunicorn is in the test extra")
    if matrix.reactor_status("gevent").state != "available":
        pytest.skip("gevent: %s" % matrix.reactor_status("gevent").reason)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1",
                             "-b", "127.0.0.1:%d" % port, "--chdir", EXAMPLES,
                             "wsgi_app:app"], env=_env(cql_cluster, "ex_gunicorn"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        _notes_roundtrip(proc, "http://127.0.0.1:%d" % port, cql_cluster, "ex_gunicorn",
                         "gevent")
    finally:
        _stop(proc)


def test_eventlet_wsgi(cql_cluster):
    state = matrix.reactor_status("eventlet")
    if state.state != "available":
        pytest.skip("eventlet.wsgi example: the eventlet reactor is %s here (%s)"
                    % (state.state, state.reason))
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "eventlet_server.py"),
                             "--port", "0"], env=_env(cql_cluster, "ex_eventlet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, proc.stderr.read())
        base = "http://%s" % line.split()[-1]
        _notes_roundtrip(proc, base, cql_cluster, "ex_eventlet", "eventlet")
    finally:
        _stop(proc)


def test_threaded_script(cql_cluster):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "threaded.py"), "--hosts",
                           ",".join(cql_cluster.contact_points), "--port", str(cql_cluster.port),
                           "--keyspace", "ex_threads", "--threads", "4", "--rows", "40"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["written"] == summary["read"] == 40
    assert 1 <= summary["threads"] <= 4
    rows = _rows(cql_cluster, "SELECT id, thread FROM ex_threads.thread_rows")
    assert sorted(r.id for r in rows) == list(range(40))
    assert all(r.thread.startswith("writer") for r in rows)


def test_queue_worker(cql_cluster):
    jobs = [{"order": i, "item": "item-%d" % i, "quantity": i % 3 + 1} for i in range(6)]
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "queue_worker.py"), "--hosts",
                           ",".join(cql_cluster.contact_points), "--port", str(cql_cluster.port),
                           "--keyspace", "ex_queue", "--workers", "2"],
                          input="".join(json.dumps(j) + "\n" for j in jobs),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(a["order"] for a in answers) == list(range(6))
    assert all(a["stored"] for a in answers), answers
    workers = set(a["worker"] for a in answers)
    rows = _rows(cql_cluster, "SELECT order_id, item, quantity, worker FROM ex_queue.orders")
    assert sorted((r.order_id, r.item, r.quantity) for r in rows) == \
        [(j["order"], j["item"], j["quantity"]) for j in jobs]
    assert set(r.worker for r in rows) == workers and os.getpid() not in workers
