"""``SimulatedCluster``: start the simulated cluster process and control it from Python.

    with SimulatedCluster(nodes=3, auth=("cassandra", "cassandra")) as sim:
        cluster = Cluster(sim.contact_points, port=sim.port, ...)
        sim.prime("SELECT * FROM ks.t", rows=[{"k": 1}])
        sim.stop_node(1)                 # 0-based index, or an address "127.0.0.2"
        i = sim.add_node()               # bootstraps node 3 on 127.0.0.4 (TOPOLOGY_CHANGE)
        sim.remove_node(i)               # decommissions it again
        sim.served(0)                    # what node 0 answered

The server is a separate process (``python -m cqlreactor.testing cluster``), so a test's client
and the server never share a GIL or an event loop.  The process prints one JSON line when it
listens; this class waits for it, then talks to the control channel it names.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from cqlreactor.testing.server.control import ControlClient, ControlError, encode_rows_for_json

__all__ = ["SimulatedCluster", "ControlError"]


class SimulatedCluster(object):
    """A simulated cluster in a child process.

    Args:
        nodes: number of nodes (node i listens on 127.0.0.<i+1>).
        port: CQL port (0: a free one).
        auth: ``(user, password)`` or ``"user:password"`` to require password auth.
        tls_dir: directory with node.crt, node.key and optionally ca.crt (see server/loop.py).
        protocol_versions: versions the nodes speak, e.g. (4, 5).
        client_auth: "optional" or "required" client certificates (TLS with ca.crt).
        startup_timeout: seconds to wait for the ready line.
        python: interpreter running the server (default: this one).
        product_type: PRODUCT_TYPE the nodes advertise in SUPPORTED (Astra's is
            "DATASTAX_APOLLO"), or None.
        keyspace_ddl: False refuses CREATE/ALTER/DROP KEYSPACE over CQL, as Astra does
            (``admin_execute`` still runs them).
        release_version: the Cassandra release the nodes are ("4.0.11" by default, "3.11.x",
            "4.1.x", "5.0.x"): system.local reports it, and the system tables' columns, the
            protocol versions (3.11: v3/v4) and the CQL features follow it.
        schema_delay: seconds a schema change (DDL) takes to reach the nodes other than its
            coordinator (default 0.05: small, not zero, as in a real cluster), 0, or "never";
            ``set_schema_delay`` changes it while running.

    Attributes (after start):
        contact_points: node addresses; port; control_address; pid.
    """

    def __init__(self, nodes=3, port=0, auth=None, tls_dir=None, protocol_versions=None,
                 client_auth=None, startup_timeout=30.0, python=None, env=None,
                 product_type=None, keyspace_ddl=True, release_version=None,
                 schema_delay=None):
        self.nodes = nodes
        self.requested_port = port
        if isinstance(auth, (tuple, list)):
            auth = "%s:%s" % tuple(auth)
        self.auth = auth
        self.tls_dir = tls_dir
        self.protocol_versions = protocol_versions
        self.client_auth = client_auth
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        self.env = env
        self.product_type = product_type
        self.keyspace_ddl = keyspace_ddl
        if release_version is not None:
            from cqlreactor.testing.engine.releases import release
            speaks = release(release_version).protocol_versions   # ValueError now, not a
            if protocol_versions and not set(int(v) for v in protocol_versions) & set(speaks):
                raise ValueError(                                   # server failing to start
                    "Cassandra %s speaks protocol versions %s, none of %s: choose "
                    "protocol_versions among those or another release_version"
                    % (release_version, speaks, tuple(protocol_versions)))
        self.release_version = release_version
        self.schema_delay = schema_delay     # a bad value: the server refuses to start
        self.process = None
        self.contact_points = None
        self.port = None
        self.control_address = None
        self._control = None
        self._lock = threading.Lock()
        self._stderr_lines = []

    # --- lifecycle -----------------------------------------------------------------------------

    def command(self):
        """The command line that starts the server."""
        cmd = [self.python, "-m", "cqlreactor.testing", "cluster", "--nodes", str(self.nodes),
               "--port", str(self.requested_port)]
        if self.auth:
            cmd += ["--auth", self.auth]
        if self.tls_dir:
            cmd += ["--tls-dir", str(self.tls_dir)]
        if self.client_auth:
            cmd += ["--client-auth", self.client_auth]
        if self.protocol_versions:
            cmd += ["--protocol-versions", ",".join(str(v) for v in self.protocol_versions)]
        if self.product_type:
            cmd += ["--product-type", self.product_type]
        if not self.keyspace_ddl:
            cmd += ["--no-keyspace-ddl"]
        if self.release_version:
            cmd += ["--release-version", str(self.release_version)]
        if self.schema_delay is not None:
            cmd += ["--schema-delay", str(self.schema_delay)]
        cmd += ["--parent-pid", str(os.getpid())]
        return cmd

    def start(self):
        """Start the process and wait until it serves.  Raises RuntimeError on failure."""
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"]
                                    if env.get("PYTHONPATH") else "")
        if self.env:
            env.update(self.env)
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self._read_ready_line()
        info = json.loads(line)
        self.contact_points = info["contact_points"]
        self.port = info["port"]
        self.control_address = info["control"]
        self._control = ControlClient(self.control_address)
        return self

    def _drain_stderr(self):
        for line in iter(self.process.stderr.readline, b""):
            self._stderr_lines.append(line.decode("utf-8", "replace"))
            del self._stderr_lines[:-200]

    @property
    def stderr(self):
        """The last lines the server wrote to stderr."""
        return "".join(self._stderr_lines)

    def _read_ready_line(self):
        result = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        if not result or not result[0]:
            self.stop()
            raise RuntimeError("simulated cluster did not start (%s): %s"
                               % (" ".join(self.command()), self.stderr.strip()[-2000:]))
        return result[0].decode("utf-8")

    def stop(self, timeout=10.0):
        """SIGTERM the process and wait for it; returns its exit status."""
        if self._control is not None:
            try:
                self._control.close()
            except OSError:
                pass
            self._control = None
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            try:
                stream.close()
            except Exception:
                pass
        return process.returncode

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def __enter__(self):
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        return "<SimulatedCluster %s port=%s>" % (self.contact_points, self.port)

    # --- control -------------------------------------------------------------------------------

    def call(self, op, **args):
        """Send one control operation (see server/control.py for the list)."""
        if self._control is None:
            raise ControlError("the simulated cluster is not running")
        with self._lock:
            return self._control.call(op, **args)

    def prime(self, query, rows=None, columns=None, error=None, delay=None, node=None,
              regex=False, times=None, params=None):
        """Prime an answer for ``query``; see ``control.Prime`` for every argument."""
        if isinstance(columns, dict):
            columns = list(columns.items())
        if isinstance(params, dict):
            params = list(params.items())
        return self.call("prime", query=query, rows=encode_rows_for_json(rows),
                         columns=columns, error=error, delay=delay, node=node, regex=regex,
                         times=times, params=params)

    def admin_execute(self, query, keyspace=None):
        """Run one CQL statement on node 0 past the client-facing refusals (``keyspace_ddl``):
        the fake Astra's DevOps API.  Schema events reach the registered clients.  Like that
        API, it returns once the change has reached every node (up to 10 s: a node whose
        schema delay is "never" keeps lagging)."""
        result = self.call("admin_execute", query=query, keyspace=keyspace)
        self.wait_for(lambda: len(set(v for v in self.schema_versions() if v is not None)) <= 1,
                      timeout=10.0)
        return result

    def stop_node(self, node):
        """Stop a node: its connections close, new ones are refused, the others are told.

        The others get STATUS_CHANGE DOWN (and UP after ``start_node``), never a
        TOPOLOGY_CHANGE: the node keeps its host id and tokens, as a restarted Cassandra node
        does, and a REMOVED_NODE would make drivers forget the host instead of reconnecting.
        Use ``remove_node``/``add_node`` for topology changes.
        """
        return self.call("stop_node", node=node)

    def start_node(self, node):
        """Start a stopped node (it forgets its prepared statements)."""
        return self.call("start_node", node=node)

    def add_node(self, datacenter=None, rack=None, tokens=None):
        """Bootstrap a new node on the next loopback address (same port); returns its index.

        It gets its own host id and tokens (``tokens``, or the midpoint of the widest range),
        shows in the other nodes' system.peers/peers_v2, owns ranges in the ring (replica
        placement follows) and, once it listens, the others' registered connections get
        TOPOLOGY_CHANGE NEW_NODE.  ``contact_points`` keeps the addresses the cluster started
        with; ``node_info()`` lists every node.  Raises ControlError when the port is taken on
        the new address.  ``clear()`` does not undo topology changes (a shared cluster, such
        as the ``cql_cluster`` fixture's, keeps them for the following tests).
        """
        return self.call("add_node", datacenter=datacenter, rack=rack,
                         tokens=[str(t) for t in tokens] if tokens else None)

    def remove_node(self, node):
        """Decommission a node: its connections and listener close, it leaves system.peers
        and the ring, and the others' registered connections get TOPOLOGY_CHANGE
        REMOVED_NODE.  Its index is never reused.

        ``stop_node``/``start_node`` are not this: a restart is a status change (STATUS_CHANGE
        DOWN/UP only), since a REMOVED_NODE would make drivers drop the host for good.
        """
        return self.call("remove_node", node=node)

    def drop_connections(self, node=None):
        """Close client connections of one node (all nodes when None); returns how many."""
        return self.call("drop_connections", node=node)

    def stall(self, node, seconds):
        """The node reads requests but answers nothing for ``seconds``."""
        return self.call("stall", node=node, seconds=seconds)

    def close_after(self, node, n_requests):
        """Answer ``n_requests`` more requests, then close the connection of the next one."""
        return self.call("close_after", node=node, n=n_requests)

    def corrupt_next_frame(self, node):
        """Corrupt the next response frame the node sends."""
        return self.call("corrupt_next_frame", node=node)

    def clear(self):
        """Remove primes and faults (schema delays back to the cluster's own) and empty the
        query logs."""
        return self.call("clear")

    def served(self, node, clear=False):
        """The QUERY/PREPARE/EXECUTE/BATCH requests the node received, oldest first: dicts
        with ``opcode``, ``query``, ``consistency``, ``values`` (hex), ``connection``; and when
        the request carried them ``tracing`` (True), ``custom_payload`` (name -> hex),
        ``timestamp`` (microseconds), ``serial_consistency`` and ``keyspace`` (v5)."""
        return self.call("served", node=node, clear=clear)

    def connection_count(self, node=None):
        """Open client connections of one node, or a list for every node."""
        return self.call("connections", node=node)

    def node_info(self):
        """Per node: index, address, port, host_id, datacenter, rack, up, connections (open
        now), accepted (connections accepted since start), removed (decommissioned; its
        tokens are then empty) and tokens (strings)."""
        return self.call("nodes")

    def set_schema_delay(self, seconds, node=None):
        """How long a schema change takes to reach the nodes other than its coordinator:
        seconds >= 0, or "never" (the node keeps its schema, as a partitioned node does, until
        a delay is set again; what it missed then arrives).  ``node`` None: every node (this
        also drops per-node settings).  A node that lags answers from its older schema: a
        table it does not know yet is InvalidRequest ("unconfigured table")."""
        if seconds is None:
            raise ValueError("seconds must be a number >= 0 or 'never'")
        return self.call("set_schema_delay", seconds=seconds, node=node)   # ControlError if bad

    def schema_versions(self):
        """Per node (index order): the schema version (str) it reports now in system.local /
        system.peers, None for a removed node."""
        return [entry["schema_version"] for entry in self.call("schema_versions")]

    def wait_for(self, predicate, timeout=10.0, interval=0.05):
        """Poll ``predicate()`` until true; returns its last value."""
        deadline = time.monotonic() + timeout
        value = predicate()
        while not value and time.monotonic() < deadline:
            time.sleep(interval)
            value = predicate()
        return value
