"""``python -m cqlreactor.testing astra``: every option documented in --help, and the ready line
names the control channel, through which a fault reaches the fake Astra's nodes."""

import json
import os
import re
import subprocess
import sys

from cqlreactor.testing.server.control import ControlClient


def _astra_main_options():
    # every option the parser defines, read from the parser itself (not a copy of the list)
    import argparse
    from cqlreactor.testing.astra import fake
    captured = {}
    real_parse = argparse.ArgumentParser.parse_args

    def _capture(self, args=None, namespace=None):
        captured["parser"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = _capture
    try:
        try:
            fake.main(["--bundle", "x"])
        except SystemExit:
            pass
    finally:
        argparse.ArgumentParser.parse_args = real_parse
    return captured["parser"]


def test_astra_help_documents_every_option():
    parser = _astra_main_options()
    proc = subprocess.run([sys.executable, "-m", "cqlreactor.testing", "astra", "--help"],
                          stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert proc.returncode == 0
    text = proc.stdout
    for action in parser._actions:
        for flag in action.option_strings:
            assert flag in text
        assert action.help, "option %s has no help text" % (action.option_strings,)
    assert "control" in text and "JSON" in text


def test_astra_ready_line_names_the_control_channel(tmp_path):
    bundle = str(tmp_path / "bundle.zip")
    proc = subprocess.Popen([sys.executable, "-m", "cqlreactor.testing", "astra", "--nodes", "1",
                             "--bundle", bundle], stdout=subprocess.PIPE,
                            universal_newlines=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert os.path.exists(info["bundle"])
        assert re.match(r"^[0-9.]+:\d+$", info["control"])
        client = ControlClient(info["control"])
        try:
            nodes = client.call("nodes")
            assert [str(n["host_id"]) for n in nodes] == info["host_ids"]
            client.call("stall", node=0, seconds=0.01)      # a fault reaches the node
        finally:
            client.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
