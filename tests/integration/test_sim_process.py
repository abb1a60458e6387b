"""The simulated cluster as a process: CLI, ready line, addresses, clean shutdown."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from cqlreactor.testing import SimulatedCluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "cqlreactor.testing", "cluster"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    line = proc.stdout.readline()
    return proc, line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_one_json_line_and_exits_cleanly(signum):
    proc, line = _start("--nodes", "3", "--port", "0")
    try:
        info = json.loads(line.decode())
        assert info["contact_points"] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        assert isinstance(info["port"], int) and info["port"] > 0
        host, port = info["control"].rsplit(":", 1)
        # Every node listens on its own address, same port.
        for address in info["contact_points"]:
            socket.create_connection((address, info["port"]), timeout=2).close()
        socket.create_connection((host, int(port)), timeout=2).close()
    finally:
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == b""                     # exactly one line in all
    assert b"Traceback" not in err, err.decode()
    # The sockets are closed: nothing listens there any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", info["port"]), timeout=1).close()


def test_fixed_port_and_busy_port_error():
    with SimulatedCluster(nodes=2) as first:
        proc, line = _start("--nodes", "2", "--port", str(first.port))
        out, err = proc.communicate(timeout=10)
        assert line == b""
        assert proc.returncode != 0
        assert b"cannot listen" in err and b"Traceback" not in err


def test_python_api_context_manager_stops_process():
    sim = SimulatedCluster(nodes=2)
    with sim:
        assert sim.contact_points == ["127.0.0.1", "127.0.0.2"]
        assert sim.connection_count() == [0, 0]
        info = sim.node_info()
        assert [n["address"] for n in info] == sim.contact_points
        assert len(set(n["host_id"] for n in info)) == 2
        port = sim.port
    assert sim.process.returncode == 0          # stopped with SIGTERM, exited cleanly
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()


def test_unknown_control_operation_is_an_error(sim):
    from cqlreactor.testing.server.control import ControlError
    with pytest.raises(ControlError):
        sim.call("no_such_operation")
    with pytest.raises(ControlError):
        sim.stop_node(17)
    assert sim.call("ping") is True


def test_missing_tls_files_fail_cleanly(tmp_path):
    proc, line = _start("--nodes", "1", "--port", "0", "--tls-dir", str(tmp_path))
    out, err = proc.communicate(timeout=10)
    assert line == b"" and proc.returncode == 1
    assert b"cannot start" in err and b"Traceback" not in err


def test_server_exits_when_its_parent_is_gone():
    # A parent that starts the server and dies at once, as a killed test run would.
    code = ("import subprocess, sys, os; "
            "p = subprocess.Popen([sys.executable, '-m', 'cqlreactor.testing', 'cluster', "
            "'--nodes', '1', '--port', '0', '--parent-pid', str(os.getpid())], "
            "stdout=subprocess.PIPE); "
            "print(p.pid); print(p.stdout.readline().decode().strip()); sys.stdout.flush()")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.check_output([sys.executable, "-c", code], env=env, timeout=30)
    pid = int(out.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the orphaned server kept running")
