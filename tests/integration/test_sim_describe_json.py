"""DESCRIBE and JSON over the wire: our client and cassandra-driver (the oracle) read the same
rows from the simulated cluster."""

import json

import pytest

from cqlreactor import Cluster

pytest.importorskip("cqlreactor.testing.engine")


def _schema(session):
    session.execute("CREATE KEYSPACE IF NOT EXISTS dj WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS dj.t (k int PRIMARY KEY, v text, "
                    "m map<text, int>)")


def _check(session):
    _schema(session)
    rows = list(session.execute("DESCRIBE KEYSPACE dj"))
    assert [(r.keyspace_name, r.type, r.name) for r in rows] == [
        ("dj", "keyspace", "dj"), ("dj", "table", "t")]
    assert rows[1].create_statement.startswith("CREATE TABLE dj.t (\n    k int PRIMARY KEY,")
    listing = list(session.execute("DESCRIBE KEYSPACES"))
    assert ("dj", "keyspace", "dj") in [tuple(r) for r in listing]
    insert = session.prepare("INSERT INTO dj.t JSON ?")
    session.execute(insert, (json.dumps({"k": 1, "v": "one", "m": {"a": 1}}),))
    (row,) = list(session.execute("SELECT JSON * FROM dj.t WHERE k = 1"))
    assert row[0] == '{"k": 1, "m": {"a": 1}, "v": "one"}'
    update = session.prepare("UPDATE dj.t SET m = fromJson(?) WHERE k = fromJson('1')")
    session.execute(update, ('{"b": 2, "a": 3}',))
    (row,) = list(session.execute("SELECT toJson(m), toJson(k) AS key FROM dj.t WHERE k = 1"))
    assert tuple(row) == ('{"a": 3, "b": 2}', "1")


def test_our_client(cql_cluster):
    with Cluster(cql_cluster.contact_points, port=cql_cluster.port) as cluster:
        _check(cluster.connect())


@pytest.mark.oracle
def test_cassandra_driver(cql_cluster):
    cluster_mod = pytest.importorskip("cassandra.cluster")
    cluster = cluster_mod.Cluster(cql_cluster.contact_points, port=cql_cluster.port)
    try:
        _check(cluster.connect())
    finally:
        cluster.shutdown()
