"""The engine's top: :class:`Engine`, the shared state of a simulated cluster.

It parses a statement (``parser``), compiles it once against the schema (``compile``, which
picks the plan module: ``reads``, ``writes``, ``ddl``), caches the plan and runs it against the
store.  Node membership, the token ring and replica placement (and so the availability checks
of every read and write) live here too.  The package ``__init__`` documents the interface.
"""

import bisect
import datetime
import functools
import hashlib
import time
import uuid
from collections import OrderedDict

from cqlreactor.core.murmur3 import MAX_TOKEN, MIN_TOKEN
from cqlreactor.testing.engine import schema_objects
from cqlreactor.testing.engine import parser as P
from cqlreactor.testing.engine import releases
from cqlreactor.testing.engine import system_tables as S
from cqlreactor.testing.engine import values as V
from cqlreactor.testing.engine.compile import compile_statement
from cqlreactor.testing.engine.errors import (
    EngineError, INVALID, SERVER_ERROR, SYNTAX_ERROR, UNPREPARED, invalid, unavailable)
from cqlreactor.testing.engine.results import Prepared, SchemaChange
from cqlreactor.testing.engine.store import ColumnDef, Keyspace, Table, routing_key, token_of
from cqlreactor.testing.engine.writes import ModificationPlan, run_batch

__all__ = ["Engine", "NEVER", "DEFAULT_SCHEMA_DELAY"]

NEVER = float("inf")
"""A schema propagation delay that never ends: the node is partitioned from schema changes."""

DEFAULT_SCHEMA_DELAY = 0.05
"""The simulated cluster's default: seconds a schema change takes to reach the nodes other than
its coordinator.  Small but not zero, as in a real cluster: a client that does not wait for
schema agreement can be caught."""


def schema_delay_value(seconds):
    """A propagation delay from the API's forms: seconds >= 0, or "never" / None for never."""
    if seconds is None or (isinstance(seconds, str) and seconds.lower() == "never"):
        return NEVER
    if isinstance(seconds, bool):
        raise ValueError("schema delay must be seconds >= 0 or 'never', got %r" % (seconds,))
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError("schema delay must be seconds >= 0 or 'never', got %r" % (seconds,))
    if not value >= 0:
        raise ValueError("schema delay must be seconds >= 0 or 'never', got %r" % (seconds,))
    return value


def _answers(entry_point):
    """Every failure inside an entry point becomes an EngineError: the engine answers, never
    crashes (a too deeply nested statement is Invalid, anything unexpected ServerError)."""
    @functools.wraps(entry_point)
    def answer(*args, **kwargs):
        try:
            return entry_point(*args, **kwargs)
        except EngineError:
            raise
        except RecursionError:
            raise EngineError(INVALID, "statement or value nested too deeply")
        except Exception as exc:  # noqa: BLE001 - the engine must answer, never crash
            raise EngineError(SERVER_ERROR, "java.lang.RuntimeException: simulator failure: "
                                            "%s: %s" % (type(exc).__name__, exc))
    return answer


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
    MAX_TRACES = 2000
    #: Cassandra 4's batch_size_warn_threshold_in_kb (5): a bigger batch gets a warning
    BATCH_SIZE_WARN = 5 * 1024
    #: seconds from a traced request's end until system_traces shows its session complete
    #: (half of it: the session row without its duration; the events with the duration)
    TRACE_DELAY = 0.05

    def __init__(self, nodes, cluster_name="cqlreactor-sim",
                 partitioner="org.apache.cassandra.dht.Murmur3Partitioner", clock=time.time,
                 schema_delay=0.0):
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
        self.release = releases.release(None)
        # the engine alone propagates at once; the simulated server sets DEFAULT_SCHEMA_DELAY
        self.schema_delay = schema_delay_value(schema_delay)
        # generation -> (schema version uuid, time of the change); index 0 is "no schema"
        self._schema_log = [(None, 0.0)]
        self._view = None           # the generation a lagging coordinator sees, during a request
        self._plans = {}
        self._prepared = {}
        self._prepared_on = [set() for _ in self.nodes]
        self._sys_cache = {}
        self.traces = OrderedDict()     # session id -> what system_traces shows of it
        self._warnings = []             # the running request's client warnings
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
        """The system keyspaces as ``self.release`` has them (first in ``keyspaces``)."""
        user = [(name, ks) for name, ks in self.keyspaces.items() if not ks.system]
        self.keyspaces.clear()
        for name, repl in S.SYSTEM_KEYSPACES:
            self.keyspaces[name] = Keyspace(name, repl, True, system=True)
        if self.release.has_peers_v2:         # virtual tables came with 4.0
            for name in S.VIRTUAL_KEYSPACES:
                self.keyspaces[name] = Keyspace(name, {}, False, system=True, virtual=True)
        for name, ks in user:
            self.keyspaces[name] = ks
        for (ks, table), (pk, ck, regular) in S.system_tables(self.release).items():
            cols = []
            for i, (name, text) in enumerate(pk):
                cols.append(self._column(ks, name, text, "partition_key", i))
            for i, (name, text) in enumerate(ck):
                cols.append(self._column(ks, name, text, "clustering", i, "asc"))
            for name, text in regular:
                cols.append(self._column(ks, name, text, "regular"))
            t = Table(ks, table, cols, table_id=uuid.uuid3(uuid.NAMESPACE_OID, ks + "." + table),
                      virtual=True)
            t.options = S.table_option_defaults(t.id, release=self.release)
            self.keyspaces[ks].tables[table] = t

    def _column(self, ks, name, text, kind, position=-1, order="none"):
        texpr = P.parse_type(text)
        ctype = V.type_for(texpr, {})
        return ColumnDef(name, texpr, ctype, kind, position, order, type_text=text)

    def _schema_changed(self, node=None):
        """A new schema generation; returns its number.

        It applies at once on ``node`` (the coordinator of the DDL; None: on every node, as for
        the system keyspaces at start) and on each other node once its propagation delay has
        passed (:meth:`node_schema`).  A coordinator that lagged catches up entirely (a
        simplification: Cassandra would pull the versions it missed a moment later).
        """
        self.schema_generation += 1
        self.schema_version = uuid.uuid4()
        self._schema_log.append((self.schema_version, self._now()))
        for n in self.nodes if node is None else (self.nodes[node],):
            n.schema_generation = self.schema_generation
            n.schema_version = self.schema_version
        for i in range(len(self.nodes)):
            self.node_schema(i)             # a node without delay has it now
        self._plans.clear()
        self._sys_cache.clear()
        return self.schema_generation

    # --- per-node schema ---
    def node_schema(self, index):
        """The schema generation node ``index`` has applied now (catching up lazily: a change
        reaches a node when its delay has passed since the change)."""
        n = self.nodes[index]
        g = n.schema_generation
        top = self.schema_generation
        if g == top:
            return g
        delay = self.schema_delay if n.schema_delay is None else n.schema_delay
        if delay != NEVER:
            now = self._now()
            log = self._schema_log
            while g < top and log[g + 1][1] + delay <= now:
                g += 1
            n.schema_generation = g
            n.schema_version = log[g][0]
        return g

    def node_schema_version(self, index):
        """The schema version uuid node ``index`` reports in system.local / system.peers."""
        return self._schema_log[self.node_schema(index)][0]

    def set_schema_delay(self, seconds, index=None):
        """Set the propagation delay of schema changes: seconds >= 0, or "never" / None (a
        node that never gets them until the delay is set again).  ``index`` None sets the
        default of every node (and drops per-node settings); else that node's own."""
        value = schema_delay_value(seconds)
        for i in range(len(self.nodes)):
            self.node_schema(i)          # what arrived under the old delays stays applied
        if index is None:
            self.schema_delay = value
            for n in self.nodes:
                n.schema_delay = None
        else:
            self.nodes[index].schema_delay = value
        self._sys_cache.clear()

    def schema_delays(self):
        """Per node (engine index order): its delay in seconds, or "never"."""
        out = []
        for n in self.nodes:
            d = self.schema_delay if n.schema_delay is None else n.schema_delay
            out.append("never" if d == NEVER else d)
        return out

    def visible(self, obj, node=None):
        """Whether a keyspace, table or user type exists for ``node`` (None: the coordinator of
        the request running, or the cluster's newest schema outside a request)."""
        if node is None:
            view = self._view
            return view is None or obj.created_gen <= view
        return obj.created_gen <= self.node_schema(node)

    def find_keyspace(self, name):
        """The keyspace named ``name`` as the running request's coordinator sees it, or None."""
        ks = self.keyspaces.get(name)
        if ks is None or (self._view is not None and ks.created_gen > self._view):
            return None
        return ks

    def take_warnings(self):
        """The warnings of the request that just ran (for the answer), then forgets them."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def _enter(self, node):
        """Start a request on ``node``: a node whose schema lags sees its own older schema."""
        self._warnings = []
        if 0 <= node < len(self.nodes):
            g = self.node_schema(node)
            self._view = g if g != self.schema_generation else None
        else:
            self._view = None

    # --- node state ---
    def set_node_up(self, index, up):
        """Mark a node up or down (affects availability checks, not system.peers)."""
        self.nodes[index].up = bool(up)

    def set_release(self, version):
        """Make every node (and every node added later) report Cassandra ``version`` and the
        engine allow that release's features (``engine.releases``; ValueError if unknown)."""
        self.release = releases.release(version)
        for n in self.nodes:
            n.release_version = self.release.version
        self._create_system_keyspaces()       # that release's system tables and columns
        self._sys_cache.clear()
        self._plans.clear()

    def evict_prepared(self, query_ids):
        """Schema changed under these statements (ALTER TABLE that changes columns, DROP
        TABLE/KEYSPACE): every node forgets them, as Cassandra 4 does, so the next EXECUTE of
        each is UNPREPARED and the client re-prepares against the new schema."""
        for qid in query_ids:
            self._prepared.pop(qid, None)
            for ids in self._prepared_on:
                ids.discard(qid)

    def table_signature(self, keyspace, table):
        """What a prepared statement's metadata depends on in ``keyspace.table``: its columns
        (name, kind, type) in order; None when the table does not exist."""
        ks = self.keyspaces.get(keyspace)
        t = ks.tables.get(table) if ks is not None else None
        if t is None:
            return None
        return tuple((c.name, c.kind, c.type_expr if isinstance(c.type_expr, str)
                      else P.render_type(c.type_expr)) for c in t.columns.values())

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
        info.release_version = self.release.version
        taken = set(self._ring_tokens)
        for t in info.tokens:
            if int(t) in taken:
                raise ValueError("token %s is already owned by another node" % (t,))
        info.index = len(self.nodes)
        info.schema_version = self.schema_version
        info.schema_generation = self.schema_generation   # bootstrap pulls the whole schema
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

    # --- tracing ---
    def record_trace(self, node, client, command, request, parameters, started_at, duration,
                     activities):
        """Keep the trace of one request coordinated by ``node`` (engine index); returns its
        session id (a time uuid, as Cassandra's).

        Args:
            client: the client's address; command: "QUERY", "EXECUTE" ...; request: e.g.
            "Execute CQL3 query"; parameters: {text: text}; started_at: epoch seconds;
            duration: microseconds; activities: [(description, thread name, microseconds
            since the start)].
        """
        info = self.nodes[node]
        session_id = uuid.uuid1()
        now = self._now()
        events = []
        for i, (activity, thread, elapsed) in enumerate(activities):
            events.append({
                "session_id": session_id, "event_id": _time_uuid(started_at + elapsed / 1e6, i),
                "activity": activity, "source": info.address, "source_elapsed": int(elapsed),
                "source_port": 7000, "thread": thread})
        self.traces[session_id] = {
            "visible_at": now + self.TRACE_DELAY / 2, "complete_at": now + self.TRACE_DELAY,
            "session": {
                "session_id": session_id, "client": client, "command": command,
                "coordinator": info.address, "coordinator_port": 7000,
                "duration": int(duration), "parameters": dict(parameters),
                "request": request, "started_at": _datetime(started_at)},
            "events": events}
        while len(self.traces) > self.MAX_TRACES:
            self.traces.popitem(last=False)
        return session_id

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
    @_answers
    def execute(self, query, values=None, names=None, keyspace=None, node=0, consistency=1,
                page_size=None, paging_state=None, protocol_version=4, timestamp=None):
        """Run one CQL statement. Returns (result, schema_changed).

        ``timestamp`` is the request's default write timestamp (microseconds), when the
        client sent one.
        """
        self._enter(node)
        try:
            plan = self._plan(query, keyspace)
            vals = plan.bind(values, names)
            result = plan.run(self, vals, self._ctx(node, consistency, page_size, paging_state,
                                                    protocol_version, timestamp))
            subs = getattr(plan, "subs", None)       # a BEGIN BATCH ... APPLY BATCH text
            if subs is not None:
                self._warn_batch_size(len(query) + _value_bytes(values),
                                      [(sub, None) for sub in subs])
        finally:
            self._view = None
        return result, isinstance(result, SchemaChange)

    @_answers
    def prepare(self, query, keyspace=None, node=None):
        """Prepare a statement (on ``node``, or on every node when None)."""
        self._enter(-1 if node is None else node)
        try:
            plan = self._plan(query, keyspace)
        finally:
            self._view = None
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

    @_answers
    def execute_prepared(self, query_id, values, keyspace=None, node=0, consistency=1,
                         page_size=None, paging_state=None, protocol_version=4, names=None,
                         timestamp=None):
        """Run a prepared statement. Returns the result (unknown id: Unprepared 0x2500)."""
        self._enter(node)
        try:
            plan = self._prepared_plan(query_id, node, keyspace)
            vals = plan.bind(values, names)
            return plan.run(self, vals, self._ctx(node, consistency, page_size, paging_state,
                                                  protocol_version, timestamp))
        finally:
            self._view = None

    @_answers
    def batch(self, statements, keyspace=None, node=0, consistency=1, batch_type=0,
              timestamp=None):
        """Run a BATCH message: statements are (query or prepared id, is_prepared, values)."""
        self._enter(node)
        try:
            return self._batch(statements, keyspace, node, consistency, batch_type, timestamp)
        finally:
            self._view = None

    def _batch(self, statements, keyspace, node, consistency, batch_type, timestamp):
        ctx = self._ctx(node, consistency, None, None, 4, timestamp)
        items = []
        for query_or_id, is_prepared, values in statements:
            if is_prepared:
                plan = self._prepared_plan(query_or_id, node, keyspace)
            else:
                plan = self._plan(query_or_id, keyspace)
            if not isinstance(plan, ModificationPlan):
                raise invalid("Invalid statement in batch: only UPDATE, INSERT and DELETE "
                              "statements are allowed.")
            items.append((plan, plan.bind(values, None)))
        kind = {0: "LOGGED", 1: "UNLOGGED", 2: "COUNTER"}.get(batch_type, "LOGGED")
        result = run_batch(self, items, ctx, kind)
        self._warn_batch_size(sum(_value_bytes(values) + (0 if is_prepared else len(text))
                                  for text, is_prepared, values in statements), items)
        return result

    def _warn_batch_size(self, size, items):
        """Cassandra's warning for a batch over batch_size_warn_threshold_in_kb.  ``size``
        here is the bound values' bytes plus the text of unprepared statements (Cassandra
        measures the mutations; close enough for the threshold)."""
        if size <= self.BATCH_SIZE_WARN:
            return
        tables = sorted(set("%s.%s" % (plan.table.keyspace, plan.table.name)
                            for plan, _ in items))
        self._warnings.append(
            "Batch for [%s] is of size %.2fKiB, exceeding specified threshold of %.2fKiB by "
            "%.2fKiB." % (", ".join(tables), size / 1024.0, self.BATCH_SIZE_WARN / 1024.0,
                          (size - self.BATCH_SIZE_WARN) / 1024.0))

    def _ctx(self, node, consistency, page_size, paging_state, protocol_version,
             timestamp=None):
        now = self._now()
        if timestamp is None:
            timestamp = self._next_timestamp(now)
        return _Ctx(node, consistency, page_size, paging_state, protocol_version, now,
                    timestamp)

    def _plan(self, query, keyspace):
        key = (keyspace, query)
        lagging = self._view is not None     # plans of an older schema are never cached
        plan = None if lagging else self._plans.get(key)
        if plan is not None:
            return plan
        try:
            stmt = P.parse(query)
        except P.CqlSyntaxError as exc:
            raise EngineError(SYNTAX_ERROR, str(exc))
        except RecursionError:
            raise EngineError(SYNTAX_ERROR, "statement nested too deeply")
        try:
            plan = compile_statement(self, stmt, keyspace)
        except RecursionError:
            raise EngineError(INVALID, "statement nested too deeply")
        if len(self._plans) >= self.MAX_PLANS:
            self._plans.clear()
        if plan.cacheable and not lagging:
            self._plans[key] = plan
        return plan

    # --- schema lookup ---
    def _keyspace(self, name):
        ks = self.find_keyspace(name)
        if ks is None:
            raise invalid("Keyspace %s does not exist" % (name,))
        return ks

    def _table(self, ks_name, table_name, current):
        name = ks_name or current
        if name is None:
            raise invalid("No keyspace has been specified. USE a keyspace, or explicitly "
                           "specify keyspace.tablename")
        ks = self._keyspace(name)
        table = ks.tables.get(table_name)
        if table is None or not self.visible(table):
            table = schema_objects.find_view(self, ks, table_name)
        if table is None:
            raise invalid("unconfigured table %s" % (table_name,))
        return table

    def table_data(self, table, node):
        """The table to read: system tables are generated per node and cached until the
        schema or topology changes."""
        if not table.virtual:
            if type(table) is schema_objects.ViewTable:    # derived from its base table now
                schema_objects.refresh_view(self, table)
            return table
        if table.keyspace == "system_traces":      # changes with time: never cached
            filled = Table(table.keyspace, table.name, list(table.columns.values()),
                           table_id=table.id, options=table.options, virtual=True)
            for row in S.generate_rows(self, table.keyspace, table.name, node):
                _store_python_row(filled, row)
            return filled
        per_node = (table.keyspace, table.name) in S.PER_NODE or \
            table.keyspace == "system_schema"       # each node shows the schema it has
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
             n.host_id, self.node_schema(n.index)) for n in self.nodes)

    # --- replication ---
    def replicas_for(self, keyspace, routing_key):
        """Node indexes owning ``routing_key`` in ``keyspace`` (ring order, primary first)."""
        ks = self.keyspaces.get(keyspace)
        if ks is None:
            return []
        return list(self._replicas(ks, token_of(bytes(routing_key))))

    def _replicas(self, ks, token):
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
                        raise unavailable(cl, required, alive)
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
            raise unavailable(cl, required, alive)


def _value_bytes(values):
    return sum(len(v) for v in values or () if isinstance(v, (bytes, bytearray, memoryview)))


def _datetime(epoch):
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=int(epoch * 1e6))


def _time_uuid(epoch, sequence):
    """A version 1 uuid of ``epoch`` (seconds), its clock sequence ``sequence``."""
    ticks = int(epoch * 1e7) + 0x01B21DD213814000
    time_low = ticks & 0xFFFFFFFF
    time_mid = (ticks >> 32) & 0xFFFF
    time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000
    seq = sequence & 0x3FFF
    return uuid.UUID(fields=(time_low, time_mid, time_hi, 0x80 | (seq >> 8), seq & 0xFF,
                             0x1E2F3A4B5C6D))


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


