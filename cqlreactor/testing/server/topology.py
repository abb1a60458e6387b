"""Nodes of the simulated cluster coming and going, and the events that tell the clients.

Nodes: node ``i`` (0-based) listens on ``127.0.0.<i+1>:port``; all share the port.  Stopping a
node closes its listener (connections are refused) and its client connections, marks it down
for the engine's consistency checks and, 0.25 s later (gossip is never instant, and drivers
ignore a DOWN while their own sockets to the node look open), sends STATUS_CHANGE DOWN to the
connections registered on the other nodes; starting it again listens anew, forgets its prepared
statements (clients get UNPREPARED) and sends STATUS_CHANGE UP.

Stop/start send STATUS_CHANGE only, on purpose: as in Cassandra, a node that goes down and
comes back keeps its host id and its tokens, so it is a status change, not a topology change.
A REMOVED_NODE there would be wrong, and harmful: drivers drop a removed host from their
metadata and token map (its pool, its replicas), where a DOWN host is kept and reconnected to.
Topology changes are their own operations: ``add_node()`` bootstraps node ``len(nodes)`` on
the next loopback address (same port, its own host id and tokens; it listens first, joins the
engine's ring and the others' system.peers, then the others' registered connections get
TOPOLOGY_CHANGE NEW_NODE, so a client told of it can connect at once, as Cassandra 4 delays
NEW_NODE until the node's native transport is up); ``remove_node(i)`` decommissions node ``i``
(its connections and listener close, it leaves system.peers and the ring, its ranges pass to
the next nodes, the others get TOPOLOGY_CHANGE REMOVED_NODE).  Node indexes and addresses
never move: a removed node's index stays taken, ``add_node`` always takes a new one.
SCHEMA_CHANGE goes to every registered connection on every node after DDL.  The schema itself
is per node: a DDL applies at once on its coordinator and on the others after the schema delay
(``set_schema_delay``: seconds, or "never" for a partitioned node), and a node that lags
answers from its older schema (an unknown table is Invalid) and reports its older
schema_version in system.local / system.peers.  Prepared
statements are per node, as in Cassandra: a statement prepared on one node is UNPREPARED on
the others until prepared there too.
"""

import selectors

from cqlreactor.core import messages
from cqlreactor.testing.engine import Engine, NodeInfo
from cqlreactor.testing.server.state import EVENT, READY_PHASE, NodeState

__all__ = ["Topology"]

DOWN_EVENT_DELAY = 0.25


class Topology(object):
    """The node and event methods of ``ClusterServer`` (a mixin: it uses the loop's
    ``_listen``, ``_unregister``, ``_close_node_connections``, ``call_later`` and the
    protocol's ``_frame`` / ``_flush``)."""

    def _make_engine(self):
        """The CQL engine; built once the port is known (system.peers names it)."""
        engine = Engine([self._node_info(node) for node in self.nodes])
        engine.set_release(self.release.version)
        engine.set_schema_delay(self.schema_delay)    # ClusterServer(schema_delay=)
        return engine

    # --- schema propagation ------------------------------------------------------------------

    def set_schema_delay(self, seconds, ref=None):
        """How long a schema change takes to reach the nodes that did not coordinate it
        (``Engine.set_schema_delay``); ``ref`` None: every node."""
        index = None
        if ref is not None:
            node = self.node(ref)
            if node.removed:
                raise ValueError("node %d (%s) was removed from the cluster"
                                 % (node.index, node.address))
            index = node.engine_index
        self.engine.set_schema_delay(seconds, index)
        return True

    def schema_versions(self):
        """Per node (stable index order): {"schema_version": str or None, "delay": ...}."""
        delays = self.engine.schema_delays()
        out = []
        for node in self.nodes:
            if node.removed:
                out.append({"schema_version": None, "delay": None})
                continue
            i = node.engine_index
            out.append({"schema_version": str(self.engine.node_schema_version(i)),
                        "delay": delays[i]})
        return out

    @staticmethod
    def _node_info(node, tokens=None):
        return NodeInfo(node.engine_index, node.address, host_id=node.host_id,
                        data_center=node.datacenter, rack=node.rack, rpc_port=node.port,
                        tokens=tokens)

    # --- events and topology -----------------------------------------------------------------

    def _broadcast_event(self, event, exclude_node=None):
        """Send an EVENT (a core ``EventMessage``) to every connection registered for its type."""
        kind = event.event_type
        body = event.encode_body(self.protocol_versions[-1])
        for node in self.nodes:
            if node is exclude_node or not node.up:
                continue
            for conn in list(node.connections):
                if kind in conn.registered and conn.phase == READY_PHASE:
                    conn.framing.send(self._frame(conn, -1, EVENT, body))
                    self._flush(conn)

    @staticmethod
    def _node_event(kind, node, change):
        return messages.EventMessage(kind, change, (node.address, node.port))

    def node(self, ref):
        """The NodeState for an index (0-based int) or an address string."""
        if isinstance(ref, NodeState):
            return ref
        if isinstance(ref, str) and not ref.isdigit():
            for node in self.nodes:
                if node.address == ref:
                    return node
            raise ValueError("no node with address %r" % (ref,))
        index = int(ref)
        if not 0 <= index < len(self.nodes):
            raise ValueError("node index %d out of range 0..%d" % (index, len(self.nodes) - 1))
        return self.nodes[index]

    def stop_node(self, ref):
        node = self.node(ref)
        if not node.up:
            return False
        node.up = False
        if node.listener is not None:
            self._unregister(node.listener)
            node.listener.close()
            node.listener = None
        self._close_node_connections(node)
        self.engine.set_node_up(node.engine_index, False)
        # Like gossip, the others notice a little after the node's sockets closed; clients
        # (cassandra-driver among them) ignore a DOWN event while they still see open
        # connections to the node.
        self.call_later(DOWN_EVENT_DELAY, self._announce_down, node)
        return True

    def _announce_down(self, node):
        if not node.up and not node.removed:
            self._broadcast_event(self._node_event("STATUS_CHANGE", node, "DOWN"),
                                  exclude_node=node)

    def start_node(self, ref):
        node = self.node(ref)
        if node.removed:
            raise ValueError("node %d (%s) was removed from the cluster; add_node() makes a "
                             "new one" % (node.index, node.address))
        if node.up:
            return False
        node.listener = self._listen(node.address, node.port)
        self.selector.register(node.listener, selectors.EVENT_READ, ("accept", node))
        node.up = True
        node.cache.clear()
        self.engine.set_node_up(node.engine_index, True)
        self.engine.forget_prepared(node.engine_index)
        self._broadcast_event(self._node_event("STATUS_CHANGE", node, "UP"),
                              exclude_node=node)
        return True

    def add_node(self, datacenter=None, rack=None, tokens=None):
        """Bootstrap a new node on the next loopback address, same port; returns its index.

        The node listens first, then joins the engine's ring (it shows in the others'
        system.peers and owns token ranges), then the others' registered connections get
        TOPOLOGY_CHANGE NEW_NODE: as in Cassandra 4, a client told of a node can connect to it.
        Raises OSError when the port is taken on the new address (nothing changes then).
        """
        index = len(self.nodes)
        if index >= 250:
            raise ValueError("a simulated cluster has at most 250 node addresses")
        node = NodeState(index, "%s%d" % (self.base_address, index + 1), self.port)
        if datacenter:
            node.datacenter = str(datacenter)
        if rack:
            node.rack = str(rack)
        token_list = [int(t) for t in tokens] if tokens else None
        listener = self._listen(node.address, self.port)    # the port must be free there
        try:
            node.engine_index = self.engine.add_node(self._node_info(node, tokens=token_list))
        except Exception:
            listener.close()
            raise
        node.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, ("accept", node))
        self.nodes.append(node)
        self._broadcast_event(self._node_event("TOPOLOGY_CHANGE", node, "NEW_NODE"),
                              exclude_node=node)
        return index

    def remove_node(self, ref):
        """Decommission a node: it leaves the ring for good; the others are told.

        Its listener and connections close, it disappears from the others' system.peers, its
        token ranges pass to the next nodes on the ring, and the others' registered
        connections get TOPOLOGY_CHANGE REMOVED_NODE.  Its index stays taken (node indexes
        and addresses never move).  Returns False when it was already removed.
        """
        node = self.node(ref)
        if node.removed:
            return False
        if sum(1 for n in self.nodes if not n.removed) <= 1:
            raise ValueError("cannot remove the last node of the cluster")
        if node.listener is not None:
            self._unregister(node.listener)
            node.listener.close()
            node.listener = None
        self._close_node_connections(node)
        node.up = False
        node.removed = True
        self.engine.remove_node(node.engine_index)
        node.engine_index = None
        position = 0
        for other in self.nodes:        # the engine's indexes are ring positions
            if not other.removed:
                other.engine_index = position
                position += 1
        self._broadcast_event(self._node_event("TOPOLOGY_CHANGE", node, "REMOVED_NODE"),
                              exclude_node=node)
        return True
