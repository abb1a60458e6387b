"""wsgi_app.py served by eventlet.wsgi (eventlet is supported on Python 3.6 only: see
``python -m cqlreactor doctor``).

    python eventlet_server.py --port 8000

Prints ``listening on HOST:PORT`` when it accepts requests; runs until interrupted.
"""

import eventlet

eventlet.monkey_patch()          # before anything else imports socket or threading

import argparse  # noqa: E402
import sys  # noqa: E402

import eventlet.wsgi  # noqa: E402

from wsgi_app import app  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args(argv)
    listener = eventlet.listen((args.host, args.port))
    sys.stdout.write("listening on %s:%d\n" % listener.getsockname()[:2])
    sys.stdout.flush()
    eventlet.wsgi.server(listener, app, log_output=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
