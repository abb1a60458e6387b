"""docs/internals.md's layout section and the package tree agree.

The layout block (the first fenced block under "## Package layout") lists directories as lines
whose first word ends in "/", nested by indentation.  Every package directory (a directory under
cqlreactor/ holding an ``__init__.py``) must appear there at its place, and every directory the
block names must exist: a new sub-package cannot land without its line, and a moved or removed
one cannot leave a stale line behind.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cqlreactor"
INTERNALS = ROOT / "docs" / "internals.md"


def layout_block(text):
    """The lines of the first fenced block after the '## Package layout' heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## Package layout"))
    opening = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
    return lines[opening + 1:closing]


def listed_directories(block):
    """Relative paths ('cqlreactor', 'cqlreactor/core', ...) of the block's directory lines."""
    stack = []          # (indent, name) of the enclosing directories
    found = set()
    for line in block:
        match = re.match(r"^( *)(\S+)/(\s|$)", line)
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, name))
        found.add("/".join(part for _, part in stack))
    return found


def package_directories():
    return {str(path.parent.relative_to(ROOT)).replace("\\", "/")
            for path in PACKAGE.rglob("__init__.py")}


def test_every_package_directory_is_in_the_layout_section():
    listed = listed_directories(layout_block(INTERNALS.read_text(encoding="utf-8")))
    missing = sorted(package_directories() - listed)
    assert not missing, ("docs/internals.md's layout section does not list %s; add a line for "
                         "each (nested under its parent) saying what it holds" % (missing,))


def test_every_listed_directory_exists():
    listed = listed_directories(layout_block(INTERNALS.read_text(encoding="utf-8")))
    stale = sorted(path for path in listed if not (ROOT / path).is_dir())
    assert not stale, "docs/internals.md's layout section lists %s, which do not exist" % (stale,)


def test_the_parser_sees_nesting_and_catches_a_missing_line():
    block = ["cqlreactor/", "  core/     sans-IO", "  testing/", "    engine/  the engine",
             "  cluster.py  not a directory"]
    assert listed_directories(block) == {"cqlreactor", "cqlreactor/core", "cqlreactor/testing",
                                         "cqlreactor/testing/engine"}
    assert "cqlreactor/testing/server" not in listed_directories(block)
