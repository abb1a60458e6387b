"""benchmarks/compare.py end to end on one tiny shape: the JSON and markdown come out.

Runs the real script (a simulated cluster, a worker process per implementation, real
sockets); checks what it writes, never how fast anything was (tests never assert speed).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_compare_quick_writes_json_and_markdown(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "compare.py"), "--quick",
         "--shapes", "connection-asyncio-w1-simple-1row", "--impls", "ours",
         "--duration", "0.2", "--out-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with open(str(tmp_path / "compare.json")) as f:
        data = json.load(f)
    assert data["meta"]["shapes"] == ["connection-asyncio-w1-simple-1row"]
    [run] = data["runs"]
    assert run["impl"] == "ours" and "error" not in run["result"], run
    assert run["result"]["requests"] > 0 and "server_cpu_pct" in run["result"]
    summary = data["summary"]["connection-asyncio-w1-simple-1row"]["ours"]
    assert set(summary["rps"]) == {"median", "min", "max"}
    text = (tmp_path / "compare.md").read_text()
    assert "| connection-asyncio-w1-simple-1row | ours |" in text
    assert "Targets of issue 13" in text


def test_every_listed_shape_parses_back_to_its_name():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import compare
    finally:
        sys.path.pop(0)
    names = compare.all_shapes()
    assert set(compare.DEFAULT_SHAPES) <= set(names)
    for name in names:
        shape = compare.parse_shape(name)
        if shape["kind"] == "throughput":
            assert compare.shape_name(shape["level"], shape["reactor"], shape["window"],
                                      shape["stmt"], shape["rows"], shape["tls"],
                                      shape["conns"]) == name
