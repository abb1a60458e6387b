"""Loads cqlreactor's pytest plugin (``cql_cluster``, ``cql_reactor``, ...) for this suite.

Installed (tox), pytest has already loaded it through the ``pytest11`` entry point, registered
as "cqlreactor"; run from the source tree (``PYTHONPATH=. python -m pytest``) nothing has.  A
``pytest_plugins = [...]`` line would register the module a second time in the first case (a
ValueError), so it is registered here only when it is not registered yet.  Registering from
``pytest_addhooks`` (called as this conftest is registered) happens before the command line is
parsed, so the plugin's options (``--cql-cluster-nodes`` ...) work either way.
"""


def pytest_addhooks(pluginmanager):
    from cqlreactor.testing import pytest_plugin
    if pluginmanager.is_registered(pytest_plugin) or pluginmanager.has_plugin("cqlreactor"):
        return
    if pluginmanager.is_blocked("cqlreactor"):      # -p no:cqlreactor
        return
    pluginmanager.register(pytest_plugin, "cqlreactor")
