"""Hypothesis strategies for every native protocol message (shared by the message tests)."""

import ipaddress

from hypothesis import strategies as st

from cqlreactor.core import messages as m
from cqlreactor.core import types
from cqlreactor.core.wire import UNSET_VALUE

VERSIONS = (4, 5)

text = st.text(max_size=12)
raw = st.binary(max_size=12)
cl = st.integers(0, 10)
int32 = st.integers(-2 ** 31, 2 ** 31 - 1)
ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2 ** 32 - 1)).map(str)
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2 ** 128 - 1)).map(str)
address = ipv4 | ipv6
value = st.none() | st.just(UNSET_VALUE) | raw

# (cql type, strategy of Python values that decode back equal)
COLUMN_TYPES = [
    ("int", int32),
    ("bigint", st.integers(-2 ** 63, 2 ** 63 - 1)),
    ("text", text),
    ("boolean", st.booleans()),
    ("blob", raw),
    ("double", st.floats(allow_nan=False)),
    ("uuid", st.uuids()),
    ("list<int>", st.lists(int32, max_size=3)),
    ("map<text, int>", st.dictionaries(text, int32, max_size=3)),
    ("set<text>", st.sets(text, max_size=3)),
]


@st.composite
def columns(draw, min_size=0, max_size=4):
    chosen = draw(st.lists(st.sampled_from(COLUMN_TYPES), min_size=min_size, max_size=max_size))
    one_table = draw(st.booleans())
    ks, table = draw(text), draw(text)
    out = []
    for type_name, _ in chosen:
        if not one_table:
            ks, table = draw(text), draw(text)
        out.append((ks, table, draw(text), types.parse_cql_type(type_name)))
    strategies = [s for _, s in chosen]
    return out, strategies


@st.composite
def rows_results(draw, version, no_metadata=False):
    cols, value_strategies = draw(columns())
    # rows need at least one column (a body cannot bound a count of empty rows)
    rows = draw(st.lists(st.tuples(*[st.none() | s for s in value_strategies]),
                         max_size=4 if cols else 0))
    paging_state = draw(st.none() | raw)
    metadata_id = draw(st.none() | raw) if version >= 5 and not no_metadata else None
    return m.RowsResult(cols, rows, paging_state, no_metadata, metadata_id)


@st.composite
def prepared_results(draw, version):
    bind, _ = draw(columns())
    result = draw(st.none() | columns().map(lambda c: c[0]))
    pk = draw(st.lists(st.integers(0, 65535), max_size=3))
    metadata_id = draw(raw) if version >= 5 else None
    return m.PreparedResult(draw(raw), bind, pk, result, metadata_id)


@st.composite
def query_parameters(draw, version):
    named = draw(st.lists(st.tuples(text, value), max_size=4))
    kind = draw(st.sampled_from(["none", "values", "named"]))
    values = names = None
    if kind != "none":
        values = [v for _, v in named]
        if kind == "named":
            names = [n for n, _ in named]
    v5 = version >= 5
    return m.QueryParameters(
        draw(cl), values=values, names=names, skip_metadata=draw(st.booleans()),
        page_size=draw(st.none() | int32), paging_state=draw(st.none() | raw),
        serial_consistency=draw(st.none() | st.sampled_from([8, 9])),
        timestamp=draw(st.none() | st.integers(-2 ** 63, 2 ** 63 - 1)),
        keyspace=draw(st.none() | text) if v5 else None,
        now_in_seconds=draw(st.none() | int32) if v5 else None)


@st.composite
def batches(draw, version):
    statements = draw(st.lists(
        st.tuples(text | raw, st.lists(value, max_size=3)), max_size=4))
    v5 = version >= 5
    return m.BatchMessage(
        draw(st.sampled_from([0, 1, 2])), statements, draw(cl),
        serial_consistency=draw(st.none() | st.sampled_from([8, 9])),
        timestamp=draw(st.none() | st.integers(-2 ** 63, 2 ** 63 - 1)),
        keyspace=draw(st.none() | text) if v5 else None,
        now_in_seconds=draw(st.none() | int32) if v5 else None)


ERROR_CODES = [0x0000, 0x000A, 0x0100, 0x1000, 0x1001, 0x1002, 0x1003, 0x1100, 0x1200, 0x1300,
               0x1400, 0x1500, 0x1600, 0x1700, 0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500]
WRITE_TYPES = ["SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"]


@st.composite
def error_info(draw, code, version):
    if code == 0x1000:
        return {"consistency": draw(cl), "required_replicas": draw(int32),
                "alive_replicas": draw(int32)}
    if code in (0x1100, 0x1200, 0x1300, 0x1500, 0x1700):
        info = {"consistency": draw(cl), "received_responses": draw(int32),
                "required_responses": draw(int32)}
        if code in (0x1300, 0x1500):
            if version >= 5:
                info["error_code_map"] = draw(st.dictionaries(address, st.integers(0, 65535),
                                                              max_size=3))
                info["failures"] = len(info["error_code_map"])
            else:
                info["error_code_map"] = None
                info["failures"] = draw(int32)
        if code in (0x1100, 0x1500):
            info["write_type"] = draw(st.sampled_from(WRITE_TYPES))
        if code == 0x1100 and version >= 5 and info["write_type"] == "CAS":
            info["contentions"] = draw(st.integers(0, 65535))
        if code in (0x1200, 0x1300):
            info["data_retrieved"] = draw(st.booleans())
        return info
    if code == 0x1400:
        return {"keyspace": draw(text), "function": draw(text),
                "arg_types": draw(st.lists(text, max_size=3))}
    if code == 0x2400:
        return {"keyspace": draw(text), "table": draw(text)}
    if code == 0x2500:
        return {"query_id": draw(raw)}
    return {}


@st.composite
def errors(draw, version, codes=None):
    code = draw(st.sampled_from(codes or ERROR_CODES) | st.integers(0, 0xFFFF))
    return m.ErrorMessage(code, draw(text), draw(error_info(code, version)))


@st.composite
def events(draw):
    kind = draw(st.sampled_from(["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"]))
    if kind == "TOPOLOGY_CHANGE":
        return m.EventMessage(kind, draw(st.sampled_from(["NEW_NODE", "REMOVED_NODE"])),
                              (draw(address), draw(st.integers(0, 65535))))
    if kind == "STATUS_CHANGE":
        return m.EventMessage(kind, draw(st.sampled_from(["UP", "DOWN"])),
                              (draw(address), draw(st.integers(0, 65535))))
    change, target, ks, name, args = draw(schema_change())
    return m.EventMessage(kind, change, None, target, ks, name, args)


@st.composite
def schema_change(draw):
    target = draw(st.sampled_from(["KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE"]))
    change = draw(st.sampled_from(["CREATED", "UPDATED", "DROPPED"]))
    name = args = None
    if target != "KEYSPACE":
        name = draw(text)
    if target in ("FUNCTION", "AGGREGATE"):
        args = draw(st.lists(text, max_size=3))
    return change, target, draw(text), name, args


def message_strategies(version):
    """name -> strategy of that message, for ``version``."""
    return {
        "ERROR": errors(version),
        "STARTUP": st.dictionaries(text, text, max_size=4).map(m.StartupMessage),
        "READY": st.just(m.ReadyMessage()),
        "AUTHENTICATE": text.map(m.AuthenticateMessage),
        "OPTIONS": st.just(m.OptionsMessage()),
        "SUPPORTED": st.dictionaries(text, st.lists(text, max_size=3), max_size=4).map(
            m.SupportedMessage),
        "QUERY": st.builds(m.QueryMessage, text, query_parameters(version)),
        "RESULT_VOID": st.just(m.VoidResult()),
        "RESULT_ROWS": rows_results(version),
        "RESULT_SET_KEYSPACE": text.map(m.SetKeyspaceResult),
        "RESULT_PREPARED": prepared_results(version),
        "RESULT_SCHEMA_CHANGE": schema_change().map(lambda f: m.SchemaChangeResult(*f)),
        "PREPARE": st.builds(m.PrepareMessage, text,
                             (st.none() | text) if version >= 5 else st.none()),
        "EXECUTE": st.builds(m.ExecuteMessage, raw, query_parameters(version),
                             raw if version >= 5 else st.none()),
        "BATCH": batches(version),
        "REGISTER": st.lists(st.sampled_from(["TOPOLOGY_CHANGE", "STATUS_CHANGE",
                                              "SCHEMA_CHANGE"]), max_size=3).map(
            m.RegisterMessage),
        "EVENT": events(),
        "AUTH_CHALLENGE": (st.none() | raw).map(m.AuthChallengeMessage),
        "AUTH_RESPONSE": (st.none() | raw).map(m.AuthResponseMessage),
        "AUTH_SUCCESS": (st.none() | raw).map(m.AuthSuccessMessage),
    }


@st.composite
def extras(draw, is_response):
    """(tracing, tracing_id, warnings, custom_payload) a frame may carry."""
    payload = draw(st.none() | st.dictionaries(text, st.none() | raw, min_size=1, max_size=3))
    if is_response:
        return (False, draw(st.none() | st.uuids()),
                draw(st.none() | st.lists(text, min_size=1, max_size=3)), payload)
    return draw(st.booleans()), None, None, payload
