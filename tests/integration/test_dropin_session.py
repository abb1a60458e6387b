"""Arguments cassandra-driver users pass to Cluster, Session and statements: each one does what
it does there (issue 10), checked against the simulated cluster's record of what it received."""

import ssl

import pytest

from cqlreactor import Cluster, NoHostAvailable


def _cluster(sim, reactor, **kwargs):
    kwargs.setdefault("connect_timeout", 5)
    return Cluster(sim.contact_points, port=sim.port, connection_class=reactor, **kwargs)


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    from cqlreactor.testing import SimulatedCluster
    from cqlreactor.testing.astra.certs import make_ca, make_cert
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(str(directory))
    make_cert(ca, ["127.0.0.1"], str(directory), "node", usage="server")
    with SimulatedCluster(nodes=1, tls_dir=str(directory)) as sim:
        yield sim, ca


def test_ssl_options_builds_the_tls_context(tls_sim, cql_reactor):
    sim, ca = tls_sim
    options = {"ca_certs": ca.cert_path, "cert_reqs": ssl.CERT_REQUIRED}
    with _cluster(sim, cql_reactor, ssl_options=options) as cluster:
        assert cluster.ssl_options == options
        assert isinstance(cluster.ssl_context, ssl.SSLContext)
        session = cluster.connect()
        assert session.execute("SELECT key FROM system.local").one().key == "local"
    # without the CA the server's certificate is refused, over TLS (not plain CQL)
    refused = _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_REQUIRED})
    try:
        with pytest.raises(NoHostAvailable) as info:
            refused.connect()
        assert all("certificate" in str(e).lower() for e in info.value.errors.values())
    finally:
        refused.shutdown()
    # cassandra-driver's check_hostname=False with CERT_NONE connects without verifying
    with _cluster(sim, cql_reactor, ssl_options={"cert_reqs": ssl.CERT_NONE,
                                                 "check_hostname": False}) as cluster:
        assert cluster.connect().execute("SELECT key FROM system.local").one().key == "local"


def test_unknown_ssl_option_is_refused():
    with pytest.raises(ValueError, match="ssl_version_x"):
        Cluster(["127.0.0.1"], ssl_options={"ssl_version_x": 1})


def _served(sim, predicate):
    return [e for i in range(len(sim.node_info())) for e in sim.served(i) if predicate(e)]


def _clear_served(sim):
    for i in range(len(sim.node_info())):
        sim.served(i, clear=True)


def test_trace_and_custom_payload_reach_the_server(cql_cluster, cql_reactor):
    from cqlreactor import BatchStatement, SimpleStatement
    sim = cql_cluster
    with _cluster(sim, cql_reactor) as cluster:
        session = cluster.connect()
        _clear_served(sim)
        session.execute("SELECT key FROM system.local", trace=True)
        statement = SimpleStatement("SELECT key FROM system.local WHERE key = %s",
                                    custom_payload={"a": b"1", "b": b"2"})
        session.execute(statement, ["local"], custom_payload={"b": b"3"})
        prepared = session.prepare("SELECT key FROM system.local WHERE key = ?",
                                   custom_payload={"p": b"ok"})
        session.execute(prepared, ["local"], trace=True, custom_payload={"e": b"x"})
        batch = BatchStatement(custom_payload={"batch": b"1"})
        batch.add("SELECT key FROM system.local")
        try:
            session.execute(batch, trace=True)
        except Exception:
            pass        # a SELECT in a batch is refused; what was sent is what matters
        entries = _served(sim, lambda e: "system.local" in str(e.get("query")
                                                                or e.get("queries")))
        by_opcode = {}
        for entry in entries:
            by_opcode.setdefault(entry["opcode"], []).append(entry)
        queries = dict((e["query"], e) for e in by_opcode["QUERY"])
        traced = queries["SELECT key FROM system.local"]
        with_payload = queries["SELECT key FROM system.local WHERE key = 'local'"]
        assert traced.get("tracing") and "custom_payload" not in traced
        # the statement's payload updated with execute's, as cassandra-driver does
        assert with_payload["custom_payload"] == {"a": b"1".hex(), "b": b"3".hex()}
        assert not with_payload.get("tracing")
        assert all(e["custom_payload"] == {"p": b"ok".hex()} for e in by_opcode["PREPARE"])
        execute = by_opcode["EXECUTE"][-1]
        assert execute["tracing"] and execute["custom_payload"] == {"e": b"x".hex()}
        batch_entry = by_opcode["BATCH"][-1]
        assert batch_entry["tracing"] and batch_entry["custom_payload"] == {"batch": b"1".hex()}
        # the hot path's cached requests carry neither afterwards
        _clear_served(sim)
        session.execute("SELECT key FROM system.local")
        plain = _served(sim, lambda e: e.get("query") == "SELECT key FROM system.local")
        assert plain and not plain[-1].get("tracing") and "custom_payload" not in plain[-1]


def test_custom_payload_is_refused_below_v4(cql_cluster, cql_reactor):
    from cqlreactor.core.errors import UnsupportedOperation
    with _cluster(cql_cluster, cql_reactor, protocol_version=3) as cluster:
        session = cluster.connect()
        with pytest.raises(UnsupportedOperation, match="v4"):
            session.execute("SELECT key FROM system.local", custom_payload={"a": b"1"})
