"""The CQL engine behind the simulated Cassandra cluster: pure logic, no sockets.

The simulated server process (networking, protocol, faults) decodes requests and calls this
engine; the engine answers with result objects, or raises :class:`EngineError` carrying the
protocol error code. Values cross the interface serialized (bytes as on the wire, ``None`` for
null); ``cqlreactor.core.types`` decodes and encodes them.

Interface::

    NodeInfo(index, address, host_id=None, data_center="datacenter1", rack="rack1",
             tokens=None, release_version="4.0.11", schema_version=None, up=True,
             rpc_port=9042)
    Column: keyspace, table, name, cql_type (core.types.CqlType)
    Rows: columns (list[Column]), rows (list[tuple of bytes|None]), paging_state (bytes|None)
    Void; SetKeyspace(keyspace)
    SchemaChange(change_type 'CREATED'|'UPDATED'|'DROPPED', target 'KEYSPACE'|'TABLE'|'TYPE',
                 keyspace, name=None)
    Prepared: query_id (md5 of keyspace+query), result_metadata_id, bind_columns,
              pk_indexes, result_columns
    EngineError(code, message, fields)  (cqlreactor.core.errors; fields e.g. consistency /
              required / alive for Unavailable 0x1000, keyspace / table for AlreadyExists
              0x2400, statement_id for Unprepared 0x2500)

    Engine(nodes, cluster_name="cqlreactor-sim",
           partitioner="org.apache.cassandra.dht.Murmur3Partitioner", clock=time.time)
      .execute(query, values=None, names=None, keyspace=None, node=0, consistency=1,
               page_size=None, paging_state=None, protocol_version=4, timestamp=None)
               -> (result, schema_changed)      # timestamp: client default, micros
      .prepare(query, keyspace=None, node=None) -> Prepared   # node None: on every node
      .execute_prepared(query_id, values, keyspace=None, node=0, consistency=1,
                        page_size=None, paging_state=None, protocol_version=4,
                        names=None, timestamp=None) -> result # unknown id: 0x2500
      .batch(statements [(query_or_id, is_prepared, values)], keyspace=None, node=0,
             consistency=1, batch_type=0, timestamp=None) -> result   # 0 LOGGED 1 UNLOGGED
                                                                      # 2 COUNTER
      .forget_prepared(node)          # a restarted node forgets its prepared ids
      .replicas_for(keyspace, routing_key) -> [node index]
      .set_node_up(index, up)
      .add_node(NodeInfo) -> index     # joins the ring (tokens: widest range split if none)
      .remove_node(index) -> NodeInfo  # leaves the ring; later nodes' indexes move down one

Node indexes are positions in ``Engine.nodes`` (the ring members); the simulated server maps
its own stable node numbers onto them.

Consistency: a read or write first counts the live replicas of its partition
(``replicas_for`` + ``NodeInfo.up``) and raises Unavailable (0x1000) when the consistency
level needs more. Unsupported or malformed CQL raises SyntaxError (0x2000) or Invalid
(0x2200); an unexpected internal failure becomes ServerError (0x0000), never a Python crash.
"""

import hashlib
import struct
import time
import uuid
from collections import OrderedDict

from cqlreactor.core.errors import EngineError
from cqlreactor.core.murmur3 import MAX_TOKEN, MIN_TOKEN
from cqlreactor.testing import cql_parser as P
from cqlreactor.testing import cql_values as V
from cqlreactor.testing import system_tables as S
from cqlreactor.testing.store import ColumnDef, Keyspace, Table, routing_key, token_of

__all__ = ["Engine", "NodeInfo", "Column", "Rows", "Void", "SetKeyspace", "SchemaChange",
           "Prepared", "EngineError",
           "SERVER_ERROR", "PROTOCOL_ERROR", "UNAVAILABLE", "SYNTAX_ERROR", "INVALID",
           "CONFIG_ERROR", "ALREADY_EXISTS", "UNPREPARED"]

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
_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")


# --- results -----------------------------------------------------------------------------------

class NodeInfo(object):
    """One simulated node as the engine and the system tables see it."""

    __slots__ = ("index", "address", "host_id", "data_center", "rack", "tokens",
                 "release_version", "schema_version", "up", "rpc_port")

    def __init__(self, index, address, host_id=None, data_center="datacenter1", rack="rack1",
                 tokens=None, release_version="4.0.11", schema_version=None, up=True,
                 rpc_port=9042):
        self.index = index
        self.address = address
        self.host_id = host_id or uuid.uuid4()
        self.data_center = data_center
        self.rack = rack
        self.tokens = list(tokens) if tokens else []
        self.release_version = release_version
        self.schema_version = schema_version
        self.up = up
        self.rpc_port = rpc_port

    def __repr__(self):
        return "NodeInfo(%d, %r, dc=%r, up=%r)" % (self.index, self.address, self.data_center,
                                                    self.up)


class Column(object):
    """Result or bind column metadata."""

    __slots__ = ("keyspace", "table", "name", "cql_type")

    def __init__(self, keyspace, table, name, cql_type):
        self.keyspace = keyspace
        self.table = table
        self.name = name
        self.cql_type = cql_type

    def __repr__(self):
        return "Column(%s.%s.%s %s)" % (self.keyspace, self.table, self.name, self.cql_type.name)

    def __eq__(self, other):
        return isinstance(other, Column) and (
            self.keyspace, self.table, self.name, self.cql_type) == (
            other.keyspace, other.table, other.name, other.cql_type)

    def __ne__(self, other):
        return not self == other

    __hash__ = None


class Rows(object):
    """A ROWS result: rows are tuples of serialized values (None for null)."""

    __slots__ = ("columns", "rows", "paging_state")

    def __init__(self, columns, rows, paging_state=None):
        self.columns = columns
        self.rows = rows
        self.paging_state = paging_state

    def __repr__(self):
        return "Rows(%d columns, %d rows, paging_state=%r)" % (
            len(self.columns), len(self.rows), self.paging_state)


class Void(object):
    """A VOID result."""
    __slots__ = ()

    def __repr__(self):
        return "Void()"


class SetKeyspace(object):
    """A SET_KEYSPACE result (USE)."""
    __slots__ = ("keyspace",)

    def __init__(self, keyspace):
        self.keyspace = keyspace

    def __repr__(self):
        return "SetKeyspace(%r)" % (self.keyspace,)


class SchemaChange(object):
    """A SCHEMA_CHANGE result."""
    __slots__ = ("change_type", "target", "keyspace", "name")

    def __init__(self, change_type, target, keyspace, name=None):
        self.change_type = change_type
        self.target = target
        self.keyspace = keyspace
        self.name = name

    def __repr__(self):
        return "SchemaChange(%s %s %s %s)" % (self.change_type, self.target, self.keyspace,
                                              self.name)


class Prepared(object):
    """A PREPARED result."""
    __slots__ = ("query_id", "result_metadata_id", "bind_columns", "pk_indexes",
                 "result_columns")

    def __init__(self, query_id, result_metadata_id, bind_columns, pk_indexes, result_columns):
        self.query_id = query_id
        self.result_metadata_id = result_metadata_id
        self.bind_columns = bind_columns
        self.pk_indexes = pk_indexes
        self.result_columns = result_columns

    def __repr__(self):
        return "Prepared(%s, %d binds, pk_indexes=%r)" % (
            self.query_id.hex(), len(self.bind_columns), self.pk_indexes)


def _invalid(message):
    return EngineError(INVALID, message)


_FILTERING = ("Cannot execute this query as it might involve data filtering and thus may have "
              "unpredictable performance. If you want to execute this query despite the "
              "performance unpredictability, use ALLOW FILTERING")


class _Ctx(object):
    """Per-request state handed to plans."""
    __slots__ = ("node", "consistency", "page_size", "paging_state", "protocol_version", "now",
                 "timestamp")

    def __init__(self, node, consistency, page_size, paging_state, protocol_version, now,
                 timestamp):
        self.node = node
        self.consistency = consistency
        self.page_size = page_size
        self.paging_state = paging_state
        self.protocol_version = protocol_version
        self.now = now
        self.timestamp = timestamp


# --- the engine --------------------------------------------------------------------------------

class Engine(object):
    """The shared state of a simulated cluster: schema, data, nodes, prepared statements."""

    MAX_PLANS = 20000

    def __init__(self, nodes, cluster_name="cqlreactor-sim",
                 partitioner="org.apache.cassandra.dht.Murmur3Partitioner", clock=time.time):
        self.nodes = list(nodes)
        if not self.nodes:
            raise ValueError("a cluster needs at least one node")
        for i, n in enumerate(self.nodes):
            n.index = i
        self._assign_tokens()
        self.cluster_name = cluster_name
        self.partitioner = partitioner
        self.clock = clock
        self.gossip_generation = int(clock()) & 0x7FFFFFFF
        self.keyspaces = OrderedDict()
        self.schema_version = None
        self.schema_generation = 0
        self._plans = {}
        self._prepared = {}
        self._prepared_on = [set() for _ in self.nodes]
        self._sys_cache = {}
        self._last_ts = 0
        self._build_ring()
        self._create_system_keyspaces()
        self._schema_changed()

    # --- setup ---
    def _assign_tokens(self):
        n = len(self.nodes)
        step = (1 << 64) // n
        for i, node in enumerate(self.nodes):
            if not node.tokens:
                node.tokens = [MIN_TOKEN + step * i + step // 2]

    def _build_ring(self):
        ring = []
        for node in self.nodes:
            for t in node.tokens:
                ring.append((int(t), node.index))
        ring.sort()
        self._ring_tokens = [t for t, _ in ring]
        self._ring_nodes = [i for _, i in ring]
        self._replica_cache = {}

    def _create_system_keyspaces(self):
        for name, repl in S.SYSTEM_KEYSPACES:
            self.keyspaces[name] = Keyspace(name, repl, True, system=True)
        for name in S.VIRTUAL_KEYSPACES:
            self.keyspaces[name] = Keyspace(name, {}, False, system=True, virtual=True)
        for (ks, table), (pk, ck, regular) in S.SYSTEM_TABLES.items():
            cols = []
            for i, (name, text) in enumerate(pk):
                cols.append(self._column(ks, name, text, "partition_key", i))
            for i, (name, text) in enumerate(ck):
                cols.append(self._column(ks, name, text, "clustering", i, "asc"))
            for name, text in regular:
                cols.append(self._column(ks, name, text, "regular"))
            t = Table(ks, table, cols, table_id=uuid.uuid3(uuid.NAMESPACE_OID, ks + "." + table),
                      virtual=True)
            t.options = S.table_option_defaults(t.id)
            self.keyspaces[ks].tables[table] = t

    def _column(self, ks, name, text, kind, position=-1, order="none"):
        texpr = P.parse_type(text)
        ctype = V.type_for(texpr, {})
        return ColumnDef(name, texpr, ctype, kind, position, order, type_text=text)

    def _schema_changed(self):
        self.schema_generation += 1
        self.schema_version = uuid.uuid4()
        for n in self.nodes:
            n.schema_version = self.schema_version
        self._plans.clear()
        self._sys_cache.clear()

    # --- node state ---
    def set_node_up(self, index, up):
        """Mark a node up or down (affects availability checks, not system.peers)."""
        self.nodes[index].up = bool(up)

    def forget_prepared(self, node):
        """The node restarted: every id prepared on it answers UNPREPARED until re-prepared."""
        self._prepared_on[node].clear()

    # --- topology ---
    def add_node(self, info):
        """A node joins the ring (bootstrap); returns its index (always the last one).

        Without ``info.tokens`` it takes the midpoint of the widest token range, as a
        bootstrapping Cassandra node without initial_token relieves the most loaded range.
        The store is shared, so the data it now replicates is there at once (no streaming).
        It knows no prepared statement yet.
        """
        if not info.tokens:
            info.tokens = [self._split_widest_range()]
        taken = set(self._ring_tokens)
        for t in info.tokens:
            if int(t) in taken:
                raise ValueError("token %s is already owned by another node" % (t,))
        info.index = len(self.nodes)
        info.schema_version = self.schema_version
        self.nodes.append(info)
        self._prepared_on.append(set())
        self._topology_changed()
        return info.index

    def remove_node(self, index):
        """A node leaves the ring (decommission); returns its NodeInfo.

        Indexes are positions in ``nodes``: the nodes after it move down by one (the caller
        renumbers its own references).  Its ranges go to the next nodes on the ring.
        """
        if len(self.nodes) <= 1:
            raise ValueError("cannot remove the last node of the cluster")
        info = self.nodes.pop(index)
        self._prepared_on.pop(index)
        for i, n in enumerate(self.nodes):
            n.index = i
        self._topology_changed()
        return info

    def _split_widest_range(self):
        tokens = sorted(self._ring_tokens)
        best_start, best_width = None, -1
        for a, b in zip(tokens, tokens[1:]):
            if b - a > best_width:
                best_start, best_width = a, b - a
        wrap = (tokens[0] - tokens[-1]) % (1 << 64) or (1 << 64)   # past MAX_TOKEN to the first
        if wrap > best_width:
            best_start, best_width = tokens[-1], wrap
        token = best_start + best_width // 2
        if token > MAX_TOKEN:           # the range wrapping past the end of the ring
            token -= 1 << 64
        return token

    def _topology_changed(self):
        self._build_ring()
        self._sys_cache.clear()

    # --- time ---
    def _now(self):
        return self.clock()

    def _next_timestamp(self, now):
        ts = int(now * 1000000)
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    # --- entry points ---
    def execute(self, query, values=None, names=None, keyspace=None, node=0, consistency=1,
                page_size=None, paging_state=None, protocol_version=4, timestamp=None):
        """Run one CQL statement. Returns (result, schema_changed).

        ``timestamp`` is the request's default write timestamp (microseconds), when the
        client sent one.
        """
        try:
            plan = self._plan(query, keyspace)
            vals = plan.bind(values, names)
            result = plan.run(self, vals, self._ctx(node, consistency, page_size, paging_state,
                                                    protocol_version, timestamp))
        except EngineError:
            raise
        except RecursionError:
            raise EngineError(INVALID, "statement or value nested too deeply")
        except Exception as exc:  # noqa: BLE001 - the engine must answer, never crash
            raise EngineError(SERVER_ERROR, "java.lang.RuntimeException: simulator failure: "
                                            "%s: %s" % (type(exc).__name__, exc))
        return result, isinstance(result, SchemaChange)

    def prepare(self, query, keyspace=None, node=None):
        """Prepare a statement (on ``node``, or on every node when None)."""
        try:
            plan = self._plan(query, keyspace)
        except EngineError:
            raise
        except RecursionError:
            raise EngineError(INVALID, "statement or value nested too deeply")
        except Exception as exc:  # noqa: BLE001
            raise EngineError(SERVER_ERROR, "simulator failure: %s: %s"
                              % (type(exc).__name__, exc))
        qid = hashlib.md5(((keyspace or "") + query).encode("utf-8")).digest()
        self._prepared[qid] = (query, keyspace)
        if node is None:
            for s in self._prepared_on:
                s.add(qid)
        else:
            self._prepared_on[node].add(qid)
        return Prepared(qid, _metadata_id(plan.result_columns), list(plan.bind_specs),
                        list(plan.pk_indexes), list(plan.result_columns))

    def _prepared_plan(self, query_id, node, keyspace):
        entry = self._prepared.get(query_id)
        if entry is None or query_id not in self._prepared_on[node]:
            raise EngineError(
                UNPREPARED, "Prepared query with ID %s not found (either the query was not "
                "prepared on this host (maybe the host has been restarted?) or you have "
                "prepared too many queries and it has been evicted from the internal cache)"
                % (bytes(query_id).hex(),), {"statement_id": bytes(query_id)})
        query, ks = entry
        return self._plan(query, ks if ks is not None else keyspace)

    def execute_prepared(self, query_id, values, keyspace=None, node=0, consistency=1,
                         page_size=None, paging_state=None, protocol_version=4, names=None,
                         timestamp=None):
        """Run a prepared statement. Returns the result (unknown id: Unprepared 0x2500)."""
        try:
            plan = self._prepared_plan(query_id, node, keyspace)
            vals = plan.bind(values, names)
            return plan.run(self, vals, self._ctx(node, consistency, page_size, paging_state,
                                                  protocol_version, timestamp))
        except EngineError:
            raise
        except RecursionError:
            raise EngineError(INVALID, "statement or value nested too deeply")
        except Exception as exc:  # noqa: BLE001
            raise EngineError(SERVER_ERROR, "java.lang.RuntimeException: simulator failure: "
                                            "%s: %s" % (type(exc).__name__, exc))

    def batch(self, statements, keyspace=None, node=0, consistency=1, batch_type=0,
              timestamp=None):
        """Run a BATCH message: statements are (query or prepared id, is_prepared, values)."""
        try:
            ctx = self._ctx(node, consistency, None, None, 4, timestamp)
            items = []
            for query_or_id, is_prepared, values in statements:
                if is_prepared:
                    plan = self._prepared_plan(query_or_id, node, keyspace)
                else:
                    plan = self._plan(query_or_id, keyspace)
                if not isinstance(plan, _ModificationPlan):
                    raise _invalid("Invalid statement in batch: only UPDATE, INSERT and DELETE "
                                   "statements are allowed.")
                items.append((plan, plan.bind(values, None)))
            kind = {0: "LOGGED", 1: "UNLOGGED", 2: "COUNTER"}.get(batch_type, "LOGGED")
            return _run_batch(self, items, ctx, kind)
        except EngineError:
            raise
        except RecursionError:
            raise EngineError(INVALID, "statement or value nested too deeply")
        except Exception as exc:  # noqa: BLE001
            raise EngineError(SERVER_ERROR, "java.lang.RuntimeException: simulator failure: "
                                            "%s: %s" % (type(exc).__name__, exc))

    def _ctx(self, node, consistency, page_size, paging_state, protocol_version,
             timestamp=None):
        now = self._now()
        if timestamp is None:
            timestamp = self._next_timestamp(now)
        return _Ctx(node, consistency, page_size, paging_state, protocol_version, now,
                    timestamp)

    def _plan(self, query, keyspace):
        key = (keyspace, query)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        try:
            stmt = P.parse(query)
        except P.CqlSyntaxError as exc:
            raise EngineError(SYNTAX_ERROR, str(exc))
        except RecursionError:
            raise EngineError(SYNTAX_ERROR, "statement nested too deeply")
        try:
            plan = _compile(self, stmt, keyspace)
        except RecursionError:
            raise EngineError(INVALID, "statement nested too deeply")
        if len(self._plans) >= self.MAX_PLANS:
            self._plans.clear()
        if plan.cacheable:
            self._plans[key] = plan
        return plan

    # --- schema lookup ---
    def _keyspace(self, name):
        ks = self.keyspaces.get(name)
        if ks is None:
            raise _invalid("Keyspace %s does not exist" % (name,))
        return ks

    def _table(self, ks_name, table_name, current):
        name = ks_name or current
        if name is None:
            raise _invalid("No keyspace has been specified. USE a keyspace, or explicitly "
                           "specify keyspace.tablename")
        ks = self._keyspace(name)
        table = ks.tables.get(table_name)
        if table is None:
            raise _invalid("unconfigured table %s" % (table_name,))
        return table

    def table_data(self, table, node):
        """The table to read: system tables are generated per node and cached until the
        schema or topology changes."""
        if not table.virtual:
            return table
        per_node = (table.keyspace, table.name) in S.PER_NODE
        key = (table.keyspace, table.name, node if per_node else None)
        cached = self._sys_cache.get(key)
        if cached is not None and cached[0] == self._topology_key():
            return cached[1]
        filled = Table(table.keyspace, table.name, list(table.columns.values()),
                       table_id=table.id, options=table.options, virtual=True)
        for row in S.generate_rows(self, table.keyspace, table.name, node):
            _store_python_row(filled, row)
        self._sys_cache[key] = (self._topology_key(), filled)
        return filled

    def _topology_key(self):
        return (self.schema_generation,) + tuple(
            (n.address, n.data_center, n.rack, n.release_version, n.rpc_port, tuple(n.tokens),
             n.host_id) for n in self.nodes)

    # --- replication ---
    def replicas_for(self, keyspace, routing_key):
        """Node indexes owning ``routing_key`` in ``keyspace`` (ring order, primary first)."""
        ks = self.keyspaces.get(keyspace)
        if ks is None:
            return []
        return list(self._replicas(ks, token_of(bytes(routing_key))))

    def _replicas(self, ks, token):
        import bisect
        tokens = self._ring_tokens
        i = bisect.bisect_left(tokens, token)
        if i == len(tokens):
            i = 0
        cache_key = (ks.name, i)
        cached = self._replica_cache.get(cache_key)
        if cached is not None and cached[0] is ks.replication:
            return cached[1]
        repl = ks.replication
        cls = repl.get("class", "")
        nodes = self._ring_nodes
        n = len(tokens)
        out = []
        if cls.endswith("NetworkTopologyStrategy"):
            # Cassandra 4's NetworkTopologyStrategy: per DC, walk the ring taking nodes of
            # racks not seen yet; a node of a seen rack counts only while the DC's rf exceeds
            # its rack count (acceptableRackRepeats)
            state = {}
            for dc, rf in repl.items():
                if dc == "class":
                    continue
                members = [m for m in self.nodes if m.data_center == dc]
                rf = min(_int_or(rf, 0), len(members))
                racks = len(set(m.rack for m in members))
                state[dc] = [rf, max(0, rf - racks), set()]
            for k in range(n):
                idx = nodes[(i + k) % n]
                node = self.nodes[idx]
                st = state.get(node.data_center)
                if st is None or st[0] <= 0 or idx in out:
                    continue
                if node.rack not in st[2]:
                    st[2].add(node.rack)
                elif st[1] > 0:
                    st[1] -= 1
                else:
                    continue
                st[0] -= 1
                out.append(idx)
        elif cls.endswith("SimpleStrategy"):
            rf = _int_or(repl.get("replication_factor"), 1)
            for k in range(n):
                idx = nodes[(i + k) % n]
                if idx not in out:
                    out.append(idx)
                if len(out) >= rf:
                    break
        else:
            out = [node.index for node in self.nodes]
        out = tuple(out)
        self._replica_cache[cache_key] = (ks.replication, out)
        return out

    def _replication_factor(self, ks, dc=None):
        repl = ks.replication
        cls = repl.get("class", "")
        if cls.endswith("NetworkTopologyStrategy"):
            if dc is not None:
                return _int_or(repl.get(dc), 0)
            return sum(_int_or(v, 0) for k, v in repl.items() if k != "class")
        if cls.endswith("SimpleStrategy"):
            return _int_or(repl.get("replication_factor"), 1)
        return 1

    def check_available(self, ks, token, consistency, node, write=False):
        """Raise Unavailable when too few replicas of ``token`` (None: every range) are up."""
        if ks.system and ks.replication.get("class", "").endswith("LocalStrategy"):
            return
        if ks.virtual or consistency == 0:
            return
        if token is None:
            seen = set()
            for t in self._ring_tokens or [0]:
                if t in seen:
                    continue
                seen.add(t)
                self._check_one(ks, t, consistency, node)
            return
        self._check_one(ks, token, consistency, node)

    def _check_one(self, ks, token, cl, node):
        replicas = self._replicas(ks, token)
        nodes = self.nodes
        local_dc = nodes[node].data_center if 0 <= node < len(nodes) else None
        if cl in (6, 9, 10):      # LOCAL_QUORUM, LOCAL_SERIAL, LOCAL_ONE
            if ks.replication.get("class", "").endswith("NetworkTopologyStrategy"):
                rf = self._replication_factor(ks, local_dc)
                local = [r for r in replicas if nodes[r].data_center == local_dc]
            else:
                rf = self._replication_factor(ks)
                local = list(replicas)
            required = 1 if cl == 10 else rf // 2 + 1
            alive = sum(1 for r in local if nodes[r].up)
        elif cl == 7:             # EACH_QUORUM: every DC needs its quorum
            if ks.replication.get("class", "").endswith("NetworkTopologyStrategy"):
                for dc, rf in ks.replication.items():
                    if dc == "class":
                        continue
                    rf = _int_or(rf, 0)
                    required = rf // 2 + 1
                    alive = sum(1 for r in replicas if nodes[r].data_center == dc and
                                nodes[r].up)
                    if alive < required:
                        raise _unavailable(cl, required, alive)
                return
            rf = self._replication_factor(ks)
            required = rf // 2 + 1
            alive = sum(1 for r in replicas if nodes[r].up)
        else:
            rf = self._replication_factor(ks)
            if cl == 1:
                required = 1
            elif cl == 2:
                required = 2
            elif cl == 3:
                required = 3
            elif cl == 5:
                required = rf
            else:                 # QUORUM, SERIAL
                required = rf // 2 + 1
            alive = sum(1 for r in replicas if nodes[r].up)
        if alive < required:
            raise _unavailable(cl, required, alive)


def _unavailable(cl, required, alive):
    return EngineError(UNAVAILABLE, "Cannot achieve consistency level %s"
                       % (_CL_NAMES.get(cl, cl),),
                       {"consistency": cl, "required": required, "alive": alive})


def _int_or(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _metadata_id(columns):
    h = hashlib.md5()
    for c in columns:
        h.update(("%s\x00%s\x00%s\x00%s\x01" % (c.keyspace, c.table, c.name,
                                                 c.cql_type.name)).encode("utf-8"))
    return h.digest()


def _store_python_row(table, row):
    """Write a dict of Python values (system tables) into ``table``."""
    comps = []
    for c in table.partition_key:
        comps.append(_py_bytes(c, row.get(c.name)))
    ck = tuple(_py_bytes(c, row.get(c.name)) for c in table.clustering)
    part = table.get_or_create_partition(routing_key(comps), tuple(comps))
    r = part.get_or_create_row(ck, table.clustering_key(ck))
    r.marker = (0, None, 0)
    for c in table.static + table.regular:
        b = _py_bytes(c, row.get(c.name))
        if b is not None:
            r.cells[c.name] = (b, 0, None, 0)


def _py_bytes(column, value):
    if value is None:
        return None
    name = column.type_expr.name
    if name == "frozen":
        name = column.type_expr.params[0].name
    if name in ("set", "map", "list"):
        if name == "map":
            data = column.cql_type.serialize(dict(value))
        else:
            data = column.cql_type.serialize(list(value))
        return V.normalize(column.type_expr, data)
    return column.cql_type.serialize(value)


from cqlreactor.testing.engine_plans import _compile  # noqa: E402 (plans need the above)
from cqlreactor.testing.engine_writes import _ModificationPlan, _run_batch  # noqa: E402
