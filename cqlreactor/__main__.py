"""Command line: ``python -m cqlreactor demo|selfcheck|doctor``."""

import argparse
import os
import sys


def _selfcheck(args):
    from cqlreactor import selfcheck
    return selfcheck.run(verbose=not args.quiet)


def _demo(args):
    from cqlreactor import demo
    return demo.run(args)


def _doctor(args):
    from cqlreactor.reactors import matrix
    if args.markdown:
        sys.stdout.write(matrix.markdown_table())
        return 0
    return matrix.doctor_main(as_json=args.json)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cqlreactor",
                                     description="cqlreactor command line tools")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="the fake Astra (or --bundle / --cluster) through every "
                                    "available reactor: the cloud example, a workload, a table")
    from cqlreactor import demo
    demo_parser = demo.build_parser(p)
    p.set_defaults(func=_demo, check=demo.check_args)
    p = sub.add_parser("selfcheck", help="exercise the sans-IO core end to end in memory")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_selfcheck)
    p = sub.add_parser("doctor", help="report which reactors run on this interpreter")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--markdown", action="store_true",
                   help="the whole matrix (every interpreter) as the README's table")
    p.set_defaults(func=_doctor)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "check", None):
        args.check(args, demo_parser)
    try:
        status = args.func(args) or 0
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (``doctor | head``): stop quietly, as the shell tools do, and
        # point stdout at /dev/null so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
