"""examples/asyncio_web: the aiohttp service, started as a real process, answering real HTTP
requests with rows read through the asyncio API (on the stdlib loop and on uvloop)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("aiohttp", reason="aiohttp does not install here (see the test extra)")

from cqlreactor import Cluster  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(ROOT, "examples", "asyncio_web", "app.py")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shop(sim):
    with Cluster(sim.contact_points, port=sim.port) as cluster:
        session = cluster.connect()
        session.execute("CREATE KEYSPACE IF NOT EXISTS shop WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.set_keyspace("shop")
        session.execute("CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text)")
        session.execute("CREATE TABLE IF NOT EXISTS orders (user_id int, n int, item text, "
                        "PRIMARY KEY (user_id, n))")
        insert = session.prepare("INSERT INTO orders (user_id, n, item) VALUES (?, ?, ?)")
        session.execute("INSERT INTO users (id, name) VALUES (1, 'ada')")
        for n in range(120):                    # more than one page of the handler's 50
            session.execute(insert, (1, n, "item%d" % n))
    return sim


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_aiohttp_example_serves_rows(shop, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop does not install here")
    port = _free_port()
    cmd = [sys.executable, APP, "--contact-points", ",".join(shop.contact_points),
           "--cql-port", str(shop.port), "--http-port", str(port)]
    if loop == "uvloop":
        cmd.append("--uvloop")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            universal_newlines=True)
    try:
        line = proc.stdout.readline()          # "serving on ..." once connected and listening
        assert line.startswith("serving on"), line + (proc.stdout.read() if proc.poll()
                                                      is not None else "")
        status, body = _get("http://127.0.0.1:%d/users/1" % port)
        assert status == 200, body
        assert body["name"] == "ada"
        assert body["orders"] == ["item%d" % n for n in range(120)]
        assert _get("http://127.0.0.1:%d/users/2" % port)[0] == 404
        assert _get("http://127.0.0.1:%d/users/x" % port)[0] == 400
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    output = proc.stdout.read()
    assert "Traceback" not in output, output
