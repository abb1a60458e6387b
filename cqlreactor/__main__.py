"""Command line: ``python -m cqlreactor demo|selfcheck|doctor``."""

import argparse
import sys


def _selfcheck(args):
    from cqlreactor import selfcheck
    return selfcheck.run(verbose=not args.quiet)


def _demo(args):
    from cqlreactor import demo
    return demo.run()


def _doctor(args):
    from cqlreactor.reactors import matrix
    return matrix.doctor_main(as_json=args.json)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cqlreactor",
                                     description="cqlreactor command line tools")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="self check, then queries through every available reactor "
                                    "against the simulated cluster")
    p.set_defaults(func=_demo)
    p = sub.add_parser("selfcheck", help="exercise the sans-IO core end to end in memory")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_selfcheck)
    p = sub.add_parser("doctor", help="report which reactors run on this interpreter")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_doctor)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
