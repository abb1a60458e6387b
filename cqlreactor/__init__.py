"""cqlreactor: a CQL native protocol client for Apache Cassandra and DataStax Astra.

One IO-free protocol core, pluggable event-loop reactors (asyncore, gevent, eventlet, libev,
asyncio) and one TLS layer shared by all of them.  The names below follow cassandra-driver, so
code moves over by changing imports::

    from cqlreactor import Cluster, PlainTextAuthProvider, ConsistencyLevel
    from cqlreactor.reactors import GeventReactor

Reactor modules (and gevent, eventlet, cffi ...) are imported only when a reactor is chosen.
"""

__version__ = "0.1.0"

from cqlreactor.core import errors as _errors
from cqlreactor.core.errors import *  # noqa: F401,F403  (the public error hierarchy)
from cqlreactor.core.auth import AuthProvider, PlainTextAuthProvider, SaslAuthProvider
from cqlreactor.core.consistency import ConsistencyLevel
from cqlreactor.core.types import UNSET_VALUE
from cqlreactor.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cqlreactor.session import Session, ResponseFuture
from cqlreactor.statements import (BatchStatement, BatchType, BoundStatement, PreparedStatement,
                                   SimpleStatement, Statement)
from cqlreactor.query import (ResultSet, dict_factory, named_tuple_factory,
                              ordered_dict_factory, tuple_factory)
from cqlreactor.policies import (ConstantReconnectionPolicy, DCAwareRoundRobinPolicy,
                                 ExponentialReconnectionPolicy, FallthroughRetryPolicy,
                                 HostDistance, RetryPolicy, RoundRobinPolicy, TokenAwarePolicy)
from cqlreactor.metadata import Host

__all__ = [
    "__version__", "Cluster", "Session", "ResponseFuture", "ExecutionProfile",
    "EXEC_PROFILE_DEFAULT", "AuthProvider", "PlainTextAuthProvider", "SaslAuthProvider",
    "ConsistencyLevel", "UNSET_VALUE", "Statement", "SimpleStatement", "PreparedStatement",
    "BoundStatement", "BatchStatement", "BatchType", "ResultSet", "tuple_factory",
    "named_tuple_factory", "dict_factory", "ordered_dict_factory", "RoundRobinPolicy",
    "DCAwareRoundRobinPolicy", "TokenAwarePolicy", "RetryPolicy", "FallthroughRetryPolicy",
    "ConstantReconnectionPolicy", "ExponentialReconnectionPolicy", "HostDistance", "Host",
] + list(_errors.__all__)
