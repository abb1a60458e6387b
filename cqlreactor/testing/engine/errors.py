"""The errors of the simulated cluster's CQL engine: :class:`EngineError` and its codes.

The bottom of the engine package: every other engine module may raise these; this one imports
nothing of the engine.  The simulated server turns an EngineError into an ERROR message.
"""

__all__ = ["EngineError", "invalid", "unavailable",
           "SERVER_ERROR", "PROTOCOL_ERROR", "UNAVAILABLE", "TRUNCATE_ERROR", "SYNTAX_ERROR",
           "INVALID", "CONFIG_ERROR", "ALREADY_EXISTS", "UNPREPARED", "FILTERING"]

SERVER_ERROR = 0x0000
PROTOCOL_ERROR = 0x000A
UNAVAILABLE = 0x1000
TRUNCATE_ERROR = 0x1003
SYNTAX_ERROR = 0x2000
INVALID = 0x2200
CONFIG_ERROR = 0x2300
ALREADY_EXISTS = 0x2400
UNPREPARED = 0x2500

_CL_NAMES = {0: "ANY", 1: "ONE", 2: "TWO", 3: "THREE", 4: "QUORUM", 5: "ALL",
             6: "LOCAL_QUORUM", 7: "EACH_QUORUM", 8: "SERIAL", 9: "LOCAL_SERIAL",
             10: "LOCAL_ONE"}

FILTERING = ("Cannot execute this query as it might involve data filtering and thus may have "
             "unpredictable performance. If you want to execute this query despite the "
             "performance unpredictability, use ALLOW FILTERING")


class EngineError(Exception):
    """An ERROR the simulated cluster's CQL engine answers with.

    The simulated server encodes it as an ERROR message; it never reaches driver users.

    Attributes:
        code: the protocol error code (0x2000 SyntaxError, 0x2200 Invalid, 0x1000 Unavailable ...).
        message: the server's text, worded as Cassandra 4 words it where we know the wording.
        fields: the code's extra body fields, e.g. consistency/required/alive for Unavailable,
            keyspace/table for AlreadyExists, statement_id for Unprepared.
    """

    def __init__(self, code, message, fields=None):
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        super(EngineError, self).__init__("[0x%04X] %s" % (code, message))


def invalid(message):
    return EngineError(INVALID, message)


def unavailable(cl, required, alive):
    return EngineError(UNAVAILABLE, "Cannot achieve consistency level %s"
                       % (_CL_NAMES.get(cl, cl),),
                       {"consistency": cl, "required": required, "alive": alive})
