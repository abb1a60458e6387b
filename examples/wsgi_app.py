"""A small WSGI application on cqlreactor, served by green servers.

    gunicorn -k gevent -w 1 -b 127.0.0.1:8000 wsgi_app:app       # gevent workers
    python eventlet_server.py --port 8000                         # eventlet.wsgi (Python 3.6)

Routes (JSON answers):
    PUT  /notes/<id>     body: the note's text      -> {"id": 1, "stored": true}
    GET  /notes/<id>                                  -> {"id": 1, "text": "..."} or 404
    GET  /health                                      -> {"reactor": "gevent", "hosts": 3}

Settings from the environment: CQL_HOSTS (comma-separated, default 127.0.0.1), CQL_PORT
(9042), CQL_KEYSPACE (examples).

Two things matter under a pre-forking green server:

- the Cluster is made in the worker process, on its first request, never in the master before
  the fork (a forked Cluster's sockets and loop belong to the parent);
- no reactor is named: in a process that gevent (or eventlet) monkey-patched, ``Cluster()``
  picks that hub's reactor, so blocking calls such as ``session.execute`` yield to the other
  greenlets instead of stopping the worker.
"""

import json
import os
import threading

from cqlreactor import Cluster

_lock = threading.Lock()      # a green lock once the server has monkey-patched threading
_state = {}


def session():
    """The worker's one Session (made on first use; prepared statements made with it)."""
    with _lock:
        if "session" not in _state:
            hosts = os.environ.get("CQL_HOSTS", "127.0.0.1").split(",")
            keyspace = os.environ.get("CQL_KEYSPACE", "examples")
            cluster = Cluster(hosts, port=int(os.environ.get("CQL_PORT", "9042")))
            s = cluster.connect()
            s.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': "
                      "'SimpleStrategy', 'replication_factor': 1}" % keyspace)
            s.execute("CREATE TABLE IF NOT EXISTS %s.notes (id int PRIMARY KEY, text text)"
                      % keyspace)
            _state["insert"] = s.prepare("INSERT INTO %s.notes (id, text) VALUES (?, ?)"
                                         % keyspace)
            _state["select"] = s.prepare("SELECT text FROM %s.notes WHERE id = ?" % keyspace)
            _state["cluster"], _state["session"] = cluster, s
        return _state["session"]


def _answer(start_response, status, document):
    body = json.dumps(document).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    method = environ["REQUEST_METHOD"]
    parts = [p for p in environ.get("PATH_INFO", "/").split("/") if p]
    s = session()
    if parts == ["health"]:
        cluster = _state["cluster"]
        return _answer(start_response, "200 OK",
                       {"reactor": cluster.connection_class.name,
                        "hosts": len(cluster.metadata.all_hosts())})
    if len(parts) != 2 or parts[0] != "notes" or not parts[1].isdigit():
        return _answer(start_response, "404 Not Found", {"error": "no such route"})
    note_id = int(parts[1])
    if method == "PUT":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        text = environ["wsgi.input"].read(length).decode("utf-8")
        s.execute(_state["insert"], (note_id, text))
        return _answer(start_response, "200 OK", {"id": note_id, "stored": True})
    if method == "GET":
        row = s.execute(_state["select"], (note_id,)).one()
        if row is None:
            return _answer(start_response, "404 Not Found", {"error": "no note %d" % note_id})
        return _answer(start_response, "200 OK", {"id": note_id, "text": row.text})
    return _answer(start_response, "405 Method Not Allowed", {"error": method})
