"""The simulated cluster's release versions: nodes report the release, SUPPORTED advertises
its CQL version, and features follow it (vector<float, n> only from 5.0)."""

import pytest

from cqlreactor.testing.engine import Engine, NodeInfo
from cqlreactor.testing.engine.errors import EngineError
from cqlreactor.testing.engine.releases import release

VECTOR_TABLE = "CREATE TABLE ks.v (k int PRIMARY KEY, e vector<float, 3>)"


def _engine(version=None):
    e = Engine([NodeInfo(0, "127.0.0.1"), NodeInfo(1, "127.0.0.2")])
    if version:
        e.set_release(version)
    e.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1}")
    return e


def test_release_lines():
    assert release().version == "4.0.11" and release().cql_version == "3.4.5"
    assert release("4.1.5").cql_version == "3.4.6"
    assert release("5.0").version == "5.0.0" and release("5.0.2").has_vector
    assert release("3.11.17").cql_version == "3.4.4"
    assert release("3.11.17").protocol_versions == (3, 4)
    for bad in ("3.0.29", "6.0.0", "latest", ""):
        with pytest.raises(ValueError) as info:
            release(bad)
        assert "3.11.x, 4.0.x, 4.1.x or 5.0.x" in str(info.value)


def test_vector_only_from_5_0():
    with pytest.raises(EngineError) as info:
        _engine().execute(VECTOR_TABLE)
    assert info.value.code == 0x2000 and "Cassandra 5.0" in info.value.message
    with pytest.raises(EngineError):
        _engine("4.1.5").execute("CREATE TYPE ks.t (e frozen<list<vector<int, 2>>>)")
    _engine("5.0.2").execute(VECTOR_TABLE)


@pytest.mark.parametrize("version", ["4.0.11", "4.1.5", "5.0.2"])
def test_nodes_report_the_release(version):
    e = _engine(version)
    for node in (0, 1):
        result, _ = e.execute("SELECT release_version FROM system.local", node=node)
        assert result.rows[0][0] == version.encode()
    result, _ = e.execute("SELECT release_version FROM system.peers")
    assert {r[0] for r in result.rows} == {version.encode()}
