"""The pytest plugin (``cql_cluster`` fixtures), run in a child pytest like a user's suite."""

import os

import pytest

pytest_plugins = ["pytester"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USER_TESTS = '''
import socket
import struct


def _options(address, port):
    sock = socket.create_connection((address, port), timeout=5)
    sock.sendall(struct.pack(">BBhBi", 4, 0, 1, 0x05, 0))
    header = sock.recv(9)
    sock.close()
    return header[4]


def test_uses_cluster(cql_cluster):
    assert len(cql_cluster.contact_points) == 2
    assert _options(cql_cluster.contact_points[1], cql_cluster.port) == 0x06
    cql_cluster.stop_node(1)
    cql_cluster.prime("SELECT 1", rows=[{"a": 1}])


def test_state_was_reset(cql_cluster):
    assert [n["up"] for n in cql_cluster.node_info()] == [True, True]
    assert _options(cql_cluster.contact_points[1], cql_cluster.port) == 0x06


def test_factory(cql_cluster_factory, cql_cluster):
    private = cql_cluster_factory(nodes=1, protocol_versions=(4,))
    assert private.port != cql_cluster.port
    assert private.contact_points == ["127.0.0.1"]
'''


def _entry_point_installed():
    """True when cqlreactor is installed (tox): pytest then loads the plugin by itself."""
    try:
        from importlib.metadata import entry_points
    except ImportError:             # Python 3.6/3.7
        import pkg_resources
        return any(ep.name == "cqlreactor" for ep in pkg_resources.iter_entry_points("pytest11"))
    eps = entry_points()
    group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
    return any(ep.name == "cqlreactor" for ep in group)


def test_plugin_fixtures(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = ROOT + (os.pathsep + env_path if env_path else "")
    try:
        load = [] if _entry_point_installed() else ["-p", "cqlreactor.testing.pytest_plugin"]
        result = pytester.runpytest_subprocess(*(load + ["--cql-cluster-nodes", "2", "-q",
                                                         "-p", "no:cacheprovider"]))
    finally:
        if env_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = env_path
    result.assert_outcomes(passed=3)
