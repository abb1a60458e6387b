"""The simulated cluster's server process: every node, the control channel and the CQL engine
in one event loop.  ``python -m cqlreactor.testing cluster`` runs ``loop.run_cluster``; tests
usually start it through ``cqlreactor.testing.SimulatedCluster``.

Layout: ``loop.py`` (ClusterServer, sockets, TLS, timers) over ``protocol.py`` (frames,
handshake, requests), ``topology.py`` (nodes and events), ``faults.py`` (control operations);
``primes.py`` (canned answers, query log), ``control.py`` (the JSON control channel and its
client), ``state.py`` (records and constants).  Nothing is imported here, so the client side
(``cluster.py``) loads only ``control.py``.
"""
