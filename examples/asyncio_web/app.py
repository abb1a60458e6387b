"""An aiohttp service reading Cassandra through cqlreactor's asyncio API.

    python examples/asyncio_web/app.py --contact-points 127.0.0.1 --cql-port 9042 \
        --keyspace shop --http-port 8080
    curl http://127.0.0.1:8080/users/1          # {"id": 1, "name": "...", "orders": [...]}

The cluster connects on the application's own loop (``await cluster.connect_async``): the
AsyncioReactor runs its connections there, so a request handler's ``await`` costs no thread
hop and nothing in a handler blocks the loop.  Statements are prepared once at startup.
"""

import argparse
import asyncio

from aiohttp import web

from cqlreactor import Cluster, SimpleStatement

async def user(request):
    """GET /users/{id}: the user's row and every order of theirs (paged, awaited)."""
    app = request.app
    try:
        user_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="the user id must be an integer")
    rows = await app["session"].execute_async(app["select_user"], (user_id,))
    found = rows.one()
    if found is None:
        raise web.HTTPNotFound(text="no user %d" % (user_id,))
    orders = []
    statement = SimpleStatement("SELECT item FROM orders WHERE user_id = %d" % (user_id,),
                                fetch_size=50)
    async for order in await app["session"].execute_async(statement):
        orders.append(order.item)
    return web.json_response({"id": found.id, "name": found.name, "orders": orders})


async def connect(app):
    options = app["options"]
    cluster = Cluster(options.contact_points.split(","), port=options.cql_port,
                      connection_class="asyncio")
    app["cluster"] = cluster
    app["session"] = await cluster.connect_async(options.keyspace)
    app["select_user"] = await app["session"].prepare_async(
        "SELECT id, name FROM users WHERE id = ?")


async def disconnect(app):
    await app["cluster"].shutdown_async()


def make_app(options):
    app = web.Application()
    app["options"] = options
    app.router.add_get("/users/{id}", user)
    app.on_startup.append(connect)
    app.on_cleanup.append(disconnect)
    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contact-points", default="127.0.0.1")
    parser.add_argument("--cql-port", type=int, default=9042)
    parser.add_argument("--keyspace", default="shop")
    parser.add_argument("--http-host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    options = parser.parse_args(argv)
    loop = None
    if options.uvloop:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(make_app(options), host=options.http_host, port=options.http_port,
                print=lambda *a: print("serving on %s:%d" % (options.http_host,
                                                             options.http_port), flush=True),
                loop=loop)


if __name__ == "__main__":
    main()
