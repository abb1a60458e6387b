"""Consistency levels as the native protocol numbers them, named as cassandra-driver names them."""

__all__ = ["ConsistencyLevel", "consistency_name", "consistency_value_to_name",
           "required_replicas"]


class ConsistencyLevel(object):
    """Consistency level constants (the protocol's [consistency] short values)."""

    ANY = 0x0000
    ONE = 0x0001
    TWO = 0x0002
    THREE = 0x0003
    QUORUM = 0x0004
    ALL = 0x0005
    LOCAL_QUORUM = 0x0006
    EACH_QUORUM = 0x0007
    SERIAL = 0x0008
    LOCAL_SERIAL = 0x0009
    LOCAL_ONE = 0x000A

    value_to_name = {}
    name_to_value = {}

    @staticmethod
    def is_serial(cl):
        return cl in (ConsistencyLevel.SERIAL, ConsistencyLevel.LOCAL_SERIAL)


for _name in ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
              "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"):
    ConsistencyLevel.value_to_name[getattr(ConsistencyLevel, _name)] = _name
    ConsistencyLevel.name_to_value[_name] = getattr(ConsistencyLevel, _name)


def consistency_name(value):
    """'QUORUM' for 4; unknown values are shown as their number."""
    return ConsistencyLevel.value_to_name.get(value, str(value))


def consistency_value_to_name(value):
    """cassandra-driver's name lookup: 'QUORUM' for 4, 'Not Set' for None (KeyError for an
    unknown value)."""
    return ConsistencyLevel.value_to_name[value] if value is not None else "Not Set"


def required_replicas(consistency, replication_factor):
    """How many live replicas a request at ``consistency`` needs (ANY counts as one)."""
    cl = ConsistencyLevel
    if consistency in (cl.ANY, cl.ONE, cl.LOCAL_ONE):
        return 1
    if consistency == cl.TWO:
        return 2
    if consistency == cl.THREE:
        return 3
    if consistency == cl.ALL:
        return replication_factor
    # QUORUM, LOCAL_QUORUM, EACH_QUORUM, SERIAL, LOCAL_SERIAL
    return replication_factor // 2 + 1
