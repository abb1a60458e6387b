"""The retry policies decide as cassandra-driver's for the same arguments (issue 10).

cassandra-driver (the test extra) is the oracle: every policy of both drivers is called with the
same inputs -- each error kind, consistency, write type, replica counts and retry number, for an
idempotent and a non-idempotent statement -- and the (decision, consistency) pairs compared.
No mock: the policies are pure functions of their arguments.
"""

import itertools
import warnings

import pytest

pytest.importorskip("cassandra")
import cassandra.policies as theirs  # noqa: E402
from cassandra import WriteType as TheirWriteType  # noqa: E402

from cqlreactor import ConnectionException, OverloadedErrorMessage  # noqa: E402
from cqlreactor import policies as ours  # noqa: E402
from cqlreactor.core.consistency import ConsistencyLevel  # noqa: E402
from cqlreactor.query import SimpleStatement  # noqa: E402

POLICIES = ["RetryPolicy", "FallthroughRetryPolicy", "NeverRetryPolicy",
            "DowngradingConsistencyRetryPolicy"]
CONSISTENCIES = [ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.LOCAL_QUORUM,
                 ConsistencyLevel.ALL, ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_SERIAL]
WRITE_TYPES = sorted(TheirWriteType.name_to_value)
COUNTS = [(3, 0), (3, 1), (3, 2), (3, 3), (2, 1), (1, 1)]   # (required, received or alive)
RETRIES = [0, 1, 2]
STATEMENTS = [SimpleStatement("INSERT INTO t (k) VALUES (1)"),
              SimpleStatement("INSERT INTO t (k) VALUES (1)", is_idempotent=True),
              SimpleStatement("SELECT * FROM t")]


def _pair(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # Downgrading is deprecated
        return getattr(theirs, name)(), getattr(ours, name)()


def _same(ours_decision, their_decision):
    """Decisions are the same numbers in both (RETRY 0, RETHROW 1, IGNORE 2, NEXT_HOST 3) and
    consistency levels the same integers."""
    return tuple(ours_decision) == tuple(their_decision)


@pytest.mark.parametrize("name", POLICIES)
def test_decisions_match_cassandra_driver(name):
    mine, oracle = _pair(name)
    differences = []

    def check(call, ours_args, their_args):
        got = getattr(mine, call)(*ours_args)
        want = getattr(oracle, call)(*their_args)
        if not _same(got, want):
            differences.append("%s%r: ours %r, theirs %r" % (call, ours_args[1:], got, want))

    for query, cl, (required, received), retry in itertools.product(
            STATEMENTS, CONSISTENCIES, COUNTS, RETRIES):
        for data in (False, True):
            args = (query, cl, required, received, data, retry)
            check("on_read_timeout", args, args)
        for write_type in WRITE_TYPES:
            # theirs numbers the write types, ours passes the protocol's names
            check("on_write_timeout", (query, cl, write_type, required, received, retry),
                  (query, cl, TheirWriteType.name_to_value[write_type], required, received,
                   retry))
        args = (query, cl, required, received, retry)
        check("on_unavailable", args, args)
        for error in (ConnectionException("lost", "127.0.0.1:9042"),
                      OverloadedErrorMessage("busy")):
            args = (query, cl, error, retry)
            check("on_request_error", args, args)
    assert not differences, "%d differences:\n  %s" % (len(differences),
                                                       "\n  ".join(differences[:40]))
