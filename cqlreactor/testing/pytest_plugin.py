"""pytest plugin (entry point ``pytest11``): a simulated Cassandra cluster as a fixture.

    def test_something(cql_cluster):
        cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port)
        cql_cluster.prime("SELECT * FROM ks.t", rows=[{"k": 1}])
        ...

Fixtures:
  * ``cql_cluster``: one cluster for the whole test session (started on first use), handed to
    each test after ``clear()`` and with every node up, so primes and faults of one test never
    leak into the next.  Its data (keyspaces, rows) is shared by the session.
  * ``cql_cluster_factory``: ``cql_cluster_factory(nodes=1, auth=("u", "p"), ...)`` starts a
    private cluster (any ``SimulatedCluster`` argument), stopped when the test ends.

Options (command line, or the same names in the ini file with underscores):
  ``--cql-cluster-nodes N`` (3), ``--cql-cluster-protocol-versions 4,5`` (3,4,5),
  ``--cql-cluster-auth USER:PASS`` (none).

Every reactor, one test body (the way anyio's plugin runs a test on each async backend):
  * ``cql_reactor``: the NAME of a reactor ("asyncio", "gevent", ...; what
    ``Cluster(connection_class=...)`` takes).  A test asking for it runs once per reactor in
    compat_matrix.yaml, with ids such as ``test_x[asyncio+uvloop]`` (uvloop drives asyncio here)
    and ``test_x[gevent]``.  A reactor the matrix gates off on this interpreter, or whose
    packages are missing, is skipped with the matrix's reason; CQLREACTOR_ALLOW_UNSUPPORTED
    (e.g. ``eventlet``) runs a gated one anyway::

        def test_roundtrip(cql_cluster, cql_reactor):
            cluster = Cluster(cql_cluster.contact_points, port=cql_cluster.port,
                              connection_class=cql_reactor)

    To pin reactors, parametrize the name yourself:
    ``@pytest.mark.parametrize("cql_reactor", ["gevent"])``.
  * ``reactor_params()``: the same parameters as a list, for ``@pytest.mark.parametrize`` or a
    fixture of your own (``@pytest.fixture(params=reactor_params())``);
    ``reactor_params(stdlib_asyncio=True)`` adds asyncio on the standard library loop where
    uvloop would otherwise be used (value ``"asyncio-stdlib"``; :func:`reactor_class` turns
    any of the values into a Reactor class).
"""

import warnings

import pytest

__all__ = ["cql_cluster", "cql_cluster_factory", "cql_reactor", "reactor_params",
           "reactor_class", "STDLIB_ASYNCIO"]

#: the value of the extra parameter ``reactor_params(stdlib_asyncio=True)`` adds
STDLIB_ASYNCIO = "asyncio-stdlib"


def pytest_addoption(parser):
    group = parser.getgroup("cqlreactor", "simulated Cassandra cluster (cqlreactor.testing)")
    group.addoption("--cql-cluster-nodes", type=int, default=None,
                    help="nodes of the cql_cluster fixture (default 3)")
    group.addoption("--cql-cluster-protocol-versions", default=None,
                    help="protocol versions its nodes speak, e.g. 4,5 (default 3,4,5)")
    group.addoption("--cql-cluster-auth", default=None, metavar="USER:PASS",
                    help="require password authentication")
    parser.addini("cql_cluster_nodes", "nodes of the cql_cluster fixture", default="3")
    parser.addini("cql_cluster_protocol_versions", "protocol versions of its nodes",
                  default="3,4,5")
    parser.addini("cql_cluster_auth", "USER:PASS for password authentication", default="")


def _option(config, name):
    value = config.getoption("--cql-cluster-" + name.replace("_", "-"))
    if value is None:
        value = config.getini("cql_cluster_" + name)
    return value


@pytest.fixture(scope="session")
def _cql_cluster_session(request):
    from cqlreactor.testing.cluster import SimulatedCluster
    config = request.config
    versions = str(_option(config, "protocol_versions"))
    cluster = SimulatedCluster(
        nodes=int(_option(config, "nodes")),
        auth=_option(config, "auth") or None,
        protocol_versions=tuple(int(v) for v in versions.split(",") if v.strip()))
    cluster.start()
    yield cluster
    cluster.stop()


def _reset(cluster):
    cluster.clear()
    for index, info in enumerate(cluster.node_info()):
        if not info["up"]:
            cluster.start_node(index)


@pytest.fixture
def cql_cluster(_cql_cluster_session):
    """The session's simulated cluster, cleared of primes and faults, every node up."""
    _reset(_cql_cluster_session)
    yield _cql_cluster_session
    _reset(_cql_cluster_session)


@pytest.fixture
def cql_cluster_factory():
    """Start private simulated clusters: ``cql_cluster_factory(nodes=1, ...)``."""
    from cqlreactor.testing.cluster import SimulatedCluster
    started = []

    def start(**options):
        cluster = SimulatedCluster(**options)
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.stop()


# --- reactors ----------------------------------------------------------------------------------

def _have_uvloop():
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def reactor_params(stdlib_asyncio=False):
    """One ``pytest.param`` per reactor of compat_matrix.yaml, in its preference order.

    Values are reactor names; ids are the names, ``asyncio+uvloop`` where uvloop drives asyncio.
    Gated reactors (not opted into with CQLREACTOR_ALLOW_UNSUPPORTED) and missing ones carry a
    skip mark with the matrix's reason; a gated reactor that was opted into runs, with its
    UnsupportedReactorWarning filtered.

    Args:
        stdlib_asyncio: also run asyncio on the standard library loop (value
            ``"asyncio-stdlib"``, id ``asyncio``) where uvloop is installed.
    Returns:
        a list for ``@pytest.mark.parametrize(name, reactor_params())`` or ``params=``.
    """
    from cqlreactor.reactors import matrix
    allowed = matrix.allowed_unsupported()
    uvloop = _have_uvloop()
    params = []
    for name in matrix.reactor_names():
        # load=True: import the module, so a reactor that cannot load (libev without a
        # compiler) is skipped rather than failing every test
        status = matrix.reactor_status(name, load=True)
        marks = []
        if status.state == "gated" and name not in allowed and "*" not in allowed:
            marks.append(pytest.mark.skip(reason="%s is gated off on this interpreter: %s (%s)"
                                          % (name, status.reason, status.link)))
        elif status.state == "gated" and not status.installed:
            marks.append(pytest.mark.skip(reason="%s allowed but not installed" % name))
        elif status.state == "missing":
            marks.append(pytest.mark.skip(reason="%s not available here: %s"
                                          % (name, status.reason)))
        elif status.state == "gated":
            marks.append(pytest.mark.filterwarnings(
                "ignore::cqlreactor.reactors.matrix.UnsupportedReactorWarning"))
        ident = "asyncio+uvloop" if name == "asyncio" and uvloop else name
        params.append(pytest.param(name, id=ident, marks=marks))
        if name == "asyncio" and uvloop and stdlib_asyncio:
            params.append(pytest.param(STDLIB_ASYNCIO, id="asyncio", marks=marks))
    return params


def reactor_class(value):
    """The Reactor class for a value of :func:`reactor_params` (gate applied, honouring
    CQLREACTOR_ALLOW_UNSUPPORTED, its warning silenced); ``"asyncio-stdlib"`` gives an
    AsyncioReactor subclass with uvloop turned off."""
    if value == STDLIB_ASYNCIO:
        from cqlreactor.reactors.asyncio_reactor import AsyncioReactor

        class StdlibAsyncioReactor(AsyncioReactor):
            """AsyncioReactor with uvloop turned off."""

            def __init__(self, **kwargs):
                kwargs.setdefault("use_uvloop", False)
                super(StdlibAsyncioReactor, self).__init__(**kwargs)
        return StdlibAsyncioReactor
    from cqlreactor.reactors import matrix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", matrix.UnsupportedReactorWarning)
        return matrix.get_reactor_class(value)


_params_cache = []


def _cached_reactor_params():
    # computed once per run, and only when a test asks for cql_reactor: it imports the
    # reactor modules (gevent, eventlet ...), which a suite not using reactors should not pay
    if not _params_cache:
        _params_cache.append(reactor_params())
    return _params_cache[0]


def _parametrized_explicitly(metafunc, argname):
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if argname in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    if "cql_reactor" in metafunc.fixturenames and not _parametrized_explicitly(metafunc,
                                                                               "cql_reactor"):
        metafunc.parametrize("cql_reactor", _cached_reactor_params(), indirect=True)


@pytest.fixture
def cql_reactor(request):
    """The name of the reactor under test; the test runs once per reactor (see the module
    docstring)."""
    return request.param
