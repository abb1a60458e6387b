"""Run by another interpreter (one with scylla-driver, which installs as the ``cassandra``
package): the independent-client checks against a simulated cluster or a fake Astra bundle.

    python scylla_client.py '<json config>'

Prints one JSON line per check, ``{"check": name, "ok": true}`` or with ``"error"``; to have
a node stopped or started it prints ``{"ask": "stop_node", "node": i}`` and waits for a line
on stdin (the harness, tests/fidelity/_harness.py, answers once done).  Python 3.6+ syntax.
"""

import datetime
import decimal
import ipaddress
import json
import sys
import time
import traceback
import uuid

from cassandra import InvalidRequest
from cassandra.protocol import SyntaxException
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, SimpleStatement
from cassandra.util import Duration

CONFIG = json.loads(sys.argv[1])
KS = "fid_scylla"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ask(what, node):
    emit({"ask": what, "node": node})
    if sys.stdin.readline().strip() != "ok":
        raise RuntimeError("the harness did not %s node %d" % (what, node))


def check(name, fn, *args):
    try:
        fn(*args)
    except Exception as exc:       # every failure is reported, the run goes on
        emit({"check": name, "ok": False, "error": "%s: %s" % (type(exc).__name__, exc),
              "trace": traceback.format_exc()[-1500:]})
    else:
        emit({"check": name, "ok": True})


def wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def connect():
    auth = None
    if CONFIG.get("username"):
        auth = PlainTextAuthProvider(CONFIG["username"], CONFIG["password"])
    if CONFIG["mode"] == "astra":
        cluster = Cluster(cloud={"secure_connect_bundle": CONFIG["bundle"]}, auth_provider=auth,
                          connect_timeout=10)
    else:
        protocol = CONFIG.get("protocol", 4)       # "auto": the driver negotiates
        extra = {} if protocol == "auto" else {"protocol_version": protocol}
        cluster = Cluster(CONFIG["contact_points"], port=CONFIG["port"], auth_provider=auth,
                          connect_timeout=10, **extra)
    return cluster, cluster.connect()


def discovery(cluster, session):
    hosts = cluster.metadata.all_hosts()
    assert len(hosts) == CONFIG["nodes"], hosts
    assert all(h.is_up for h in hosts)
    local = session.execute("SELECT release_version FROM system.local").one()
    assert local.release_version, local


def ddl(session):
    if CONFIG["mode"] != "astra":
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
    session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k int, c int, v text, "
                    "PRIMARY KEY (k, c))" % KS)
    session.execute("CREATE TYPE IF NOT EXISTS %s.addr (street text, n int)" % KS)
    session.execute("CREATE TABLE IF NOT EXISTS %s.types (k int PRIMARY KEY, a ascii, "
                    "bi bigint, b blob, bo boolean, d date, de decimal, db double, "
                    "du duration, f float, i inet, si smallint, t text, ti time, "
                    "ts timestamp, tu timeuuid, ty tinyint, u uuid, vi varint, "
                    "l list<int>, s set<text>, m map<text, int>, tp frozen<tuple<int, text>>, "
                    "ad frozen<addr>)" % KS)


def prepared(session):
    insert = session.prepare("INSERT INTO %s.kv (k, c, v) VALUES (?, ?, ?)" % KS)
    for c in range(25):
        session.execute(insert, (1, c, "v%d" % c))
    select = session.prepare("SELECT v FROM %s.kv WHERE k = ? AND c = ?" % KS)
    assert session.execute(select, (1, 7)).one().v == "v7"


def paging(session):
    stmt = SimpleStatement("SELECT c FROM %s.kv WHERE k = 1" % KS, fetch_size=4)
    result = session.execute(stmt)
    assert result.has_more_pages
    assert [r.c for r in result] == list(range(25))


def batch(session):
    insert = session.prepare("INSERT INTO %s.kv (k, c, v) VALUES (?, ?, ?)" % KS)
    b = BatchStatement()
    for c in range(5):
        b.add(insert, (2, c, "b%d" % c))
    b.add(SimpleStatement("UPDATE %s.kv SET v = 'changed' WHERE k = 2 AND c = 0" % KS))
    session.execute(b)
    rows = list(session.execute("SELECT c, v FROM %s.kv WHERE k = 2" % KS))
    assert [(r.c, r.v) for r in rows] == [(0, "changed")] + [(c, "b%d" % c) for c in range(1, 5)]


def lwt(session):
    q = "INSERT INTO %s.kv (k, c, v) VALUES (3, 0, 'first') IF NOT EXISTS" % KS
    assert session.execute(q).was_applied
    second = session.execute(q.replace("first", "second"))
    assert not second.was_applied and second.one().v == "first"
    upd = session.execute("UPDATE %s.kv SET v = 'x' WHERE k = 3 AND c = 0 IF v = 'nope'" % KS)
    assert not upd.was_applied


def every_type(session):
    values = {
        "a": "ascii", "bi": 2 ** 40, "b": b"\x00\x01", "bo": True,
        "d": datetime.date(2020, 2, 3), "de": decimal.Decimal("3.14159265358979323846"),
        "db": 2.5, "du": Duration(1, 2, 3000), "f": 1.5,
        "i": "10.0.0.1", "si": 300, "t": "text \u00e9", "ti": 3723000000000,
        "ts": datetime.datetime(2021, 3, 4, 5, 6, 7, 123000),
        "tu": uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "ty": -5,
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"), "vi": 10 ** 30,
        "l": [3, 1, 2], "s": {"x", "y"}, "m": {"a": 1, "b": 2}, "tp": (1, "t"),
    }
    names = sorted(values)
    insert = session.prepare("INSERT INTO %s.types (k, %s) VALUES (1, %s)"
                             % (KS, ", ".join(names), ", ".join("?" for _ in names)))
    session.execute(insert, [values[n] for n in names])
    row = session.execute("SELECT * FROM %s.types WHERE k = 1" % KS).one()
    got = row._asdict()
    for name in names:
        value = got[name]
        if name == "d":
            value = value.date()
        elif name == "ti":
            value = value.nanosecond_time
        elif name == "i":
            value = str(ipaddress.ip_address(value))
        elif name in ("s",):
            value = set(value)
        elif name == "m":
            value = dict(value)
        assert value == values[name], (name, value, values[name])
    session.execute("INSERT INTO %s.types (k, ad) VALUES (2, {street: 'main', n: 5})" % KS)
    ad = session.execute("SELECT ad FROM %s.types WHERE k = 2" % KS).one().ad
    assert (ad.street, ad.n) == ("main", 5), ad


def errors(session):
    try:
        session.execute("SELEC * FROM %s.kv" % KS)
    except SyntaxException:
        pass
    else:
        raise AssertionError("no SyntaxException")
    try:
        session.execute("SELECT * FROM %s.nope" % KS)
    except InvalidRequest as exc:
        assert "nope" in str(exc), exc
    else:
        raise AssertionError("no InvalidRequest")


def node_down_up(cluster, session):
    node = CONFIG["nodes"] - 1
    address = CONFIG["contact_points"][node]
    host = [h for h in cluster.metadata.all_hosts() if h.address == address][0]
    ask("stop_node", node)
    assert wait_for(lambda: not host.is_up), "host still up after stop_node"
    for _ in range(5):       # the others keep serving
        session.execute("SELECT release_version FROM system.local")
    ask("start_node", node)
    assert wait_for(lambda: host.is_up, 30), "host not back up after start_node"


def astra(cluster, session):
    assert cluster.metadata.dbaas, "metadata.dbaas is False"
    assert session.execute("SELECT release_version FROM system.local").one()
    try:
        session.execute("CREATE KEYSPACE other WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    except Exception as exc:
        assert "Unauthorized" in type(exc).__name__, exc
    else:
        raise AssertionError("CREATE KEYSPACE was not refused")


def release(cluster, session):
    """A cluster of CONFIG["release"]: every host reports it, the negotiated protocol suits
    it (3.11: v4 at most) and the schema of that release's system_schema reads back."""
    versions = sorted(h.release_version for h in cluster.metadata.all_hosts())
    assert versions == [CONFIG["release"]] * CONFIG["nodes"], versions
    if CONFIG["release"].startswith("3."):
        assert cluster.protocol_version <= 4, cluster.protocol_version
    else:
        assert cluster.protocol_version == 5, cluster.protocol_version
    session.execute("CREATE KEYSPACE IF NOT EXISTS fid_rel WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE IF NOT EXISTS fid_rel.t (k int PRIMARY KEY, v text)")
    cluster.refresh_schema_metadata()
    table = cluster.metadata.keyspaces["fid_rel"].tables["t"]
    assert list(table.columns) == ["k", "v"], list(table.columns)


def main():
    try:
        cluster, session = connect()
    except Exception as exc:
        emit({"check": "connect", "ok": False, "error": "%s: %s" % (type(exc).__name__, exc)})
        return 0
    emit({"check": "connect", "ok": True})
    try:
        if CONFIG["mode"] == "astra":
            check("astra", astra, cluster, session)
        check("discovery", discovery, cluster, session)
        if CONFIG.get("release"):
            check("release", release, cluster, session)
            return 0
        check("ddl", ddl, session)
        check("prepared", prepared, session)
        check("paging", paging, session)
        check("batch", batch, session)
        check("lwt", lwt, session)
        check("every_type", every_type, session)
        check("errors", errors, session)
        if CONFIG["mode"] != "astra":
            check("node_down_up", node_down_up, cluster, session)
    finally:
        cluster.shutdown()
        emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
