"""``python -m cqlreactor.testing cluster|astra``: run a simulated cluster (or a fake Astra).

    python -m cqlreactor.testing cluster --nodes 3 [--port P] [--auth USER:PASS]
                                         [--tls-dir DIR] [--protocol-versions 4,5]
                                         [--schema-delay SECONDS|never]

prints one JSON line when ready, ``{"contact_points": [...], "port": N, "control": "host:port"}``,
then serves until SIGTERM or SIGINT.
"""

import argparse
import sys


def _cluster(args):
    from cqlreactor.testing.server.loop import run_cluster
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep:
            sys.stderr.write("--auth needs USER:PASS\n")
            return 2
        auth = (user, password)
    from cqlreactor.testing.engine.engine import schema_delay_value
    try:
        schema_delay_value(args.schema_delay)
    except ValueError as exc:
        sys.stderr.write("--schema-delay: %s\n" % (exc,))
        return 2
    try:
        versions = tuple(int(v) for v in args.protocol_versions.split(",") if v.strip())
    except ValueError:
        sys.stderr.write("--protocol-versions needs a comma-separated list such as 4,5\n")
        return 2
    return run_cluster(nodes=args.nodes, port=args.port, auth=auth, tls_dir=args.tls_dir,
                       protocol_versions=versions, client_auth=args.client_auth,
                       parent_pid=args.parent_pid, product_type=args.product_type,
                       keyspace_ddl=not args.no_keyspace_ddl,
                       release_version=args.release_version, schema_delay=args.schema_delay)


def _astra(argv):
    # Lazily imported: the fake Astra has its own options and dependencies (cryptography).
    from cqlreactor.testing import astra
    return astra.main(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "astra":
        return _astra(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m cqlreactor.testing",
                                     description="simulated Cassandra cluster for tests")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("cluster", help="run a simulated cluster until SIGTERM/SIGINT")
    p.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    p.add_argument("--port", type=int, default=9042,
                   help="CQL port of every node (0: one free on every address)")
    p.add_argument("--auth", metavar="USER:PASS", help="require PasswordAuthenticator")
    p.add_argument("--tls-dir", metavar="DIR",
                   help="serve TLS with DIR/node.crt, DIR/node.key (and DIR/ca.crt)")
    p.add_argument("--client-auth", choices=("optional", "required"), default="optional",
                   help="with DIR/ca.crt: whether client certificates are required")
    p.add_argument("--protocol-versions", default="3,4,5", metavar="LIST",
                   help="protocol versions the nodes speak (default 3,4,5)")
    p.add_argument("--product-type", default=None,
                   help="PRODUCT_TYPE advertised in SUPPORTED (Astra: DATASTAX_APOLLO)")
    p.add_argument("--no-keyspace-ddl", action="store_true",
                   help="refuse CREATE/ALTER/DROP KEYSPACE over CQL, as Astra does")
    p.add_argument("--release-version", default=None, metavar="VERSION",
                   help="Cassandra release the nodes are (4.0.11 default, 3.11.x, 4.1.x, 5.0.x)")
    p.add_argument("--schema-delay", default="0.05", metavar="SECONDS",
                   help="how long a schema change takes to reach the nodes besides its "
                        "coordinator: seconds, or 'never' (default 0.05)")
    p.add_argument("--parent-pid", type=int, default=None,
                   help="exit when the process with this pid is gone")
    p.set_defaults(func=_cluster)
    sub.add_parser("astra", help="run a fake Astra (see: python -m cqlreactor.testing astra -h)")
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
