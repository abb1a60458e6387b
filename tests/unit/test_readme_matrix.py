"""The README's compatibility table is compat_matrix.yaml rendered (``python -m cqlreactor
doctor --markdown``): a change to one without the other fails here."""

import os
import re

from cqlreactor.reactors import matrix

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "README.md")


def _readme_table():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    found = re.search(r"<!-- compat-matrix:start -->\n(.*?)<!-- compat-matrix:end -->", text,
                      re.S)
    assert found, "README.md lost its <!-- compat-matrix:start/end --> block"
    return found.group(1)


def test_readme_table_is_the_rendered_matrix():
    assert _readme_table() == matrix.markdown_table(), (
        "README.md's compatibility table differs from compat_matrix.yaml: paste the output of "
        "`python -m cqlreactor doctor --markdown` between the compat-matrix markers")


def test_the_table_says_what_the_gate_does():
    rows = dict((line.split("|")[1].strip(), [c.strip() for c in line.split("|")[2:-2]])
                for line in _readme_table().splitlines()
                if line.startswith("| ") and not line.startswith("| reactor"))
    versions = [tuple(int(x) for x in str(v).split("."))
                for v in matrix.load_matrix()["python_versions"]]
    assert set(rows) == set(matrix.reactor_names())
    for name, cells in rows.items():
        for version, cell in zip(versions, cells):
            gated = matrix.gate_problem(name, version=version) is not None
            assert (cell == "gated") == gated, (name, version, cell)
