"""A Tornado web application on ioloop_c: the project's main demo.

    python examples/app.py [--port 8888] [--processes N] [--reuse-port]
                           [--loop ioloop_c|ioloop_c-set|ioloop_c-run|
                                   ioloop_c-factory|ioloop_c-stockwrap|
                                   stock|uvloop]

    curl http://127.0.0.1:8888/                 # hello, world
    curl http://127.0.0.1:8888/api/echo?x=1     # JSON
    curl -N http://127.0.0.1:8888/stream        # a streamed response
    curl http://127.0.0.1:8888/fetch            # AsyncHTTPClient to ourselves
    curl http://127.0.0.1:8888/debug/loop       # the loop's stats() as JSON
    websocket: ws://127.0.0.1:8888/ws echoes every message

One line puts Tornado on ioloop_c: ``ioloop_c.install()`` (or
``IOLoop.configure("ioloop_c.tornado.IOLoop")``).  Running the app's
coroutine on an ioloop_c loop made any other way gives Tornado the same
native paths; ``--loop`` picks the way: ``ioloop_c`` (install(), then
``asyncio.run``), ``ioloop_c-set`` (``asyncio.set_event_loop(
ioloop_c.new_event_loop())`` then ``run_until_complete``), ``ioloop_c-run``
(``ioloop_c.run``), ``ioloop_c-factory`` (``asyncio.run(...,
loop_factory=ioloop_c.new_event_loop)``, Python 3.12+);
``ioloop_c-stockwrap``, to compare, is ``ioloop_c-set`` under Tornado's
stock ``AsyncIOMainLoop``, what that way gave before.  With ``--processes N``
the listening socket is bound once and shared by N forked children, each
with its own loop (``--reuse-port``: each child binds with SO_REUSEPORT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.process
import tornado.web
import tornado.websocket

log = logging.getLogger("app")


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class ApiHandler(tornado.web.RequestHandler):
    def get(self, name: str) -> None:
        args = {k: self.get_argument(k) for k in self.request.arguments}
        self.write({"name": name, "args": args, "pid": os.getpid()})

    def post(self, name: str) -> None:
        body = json.loads(self.request.body or b"{}")
        self.write({"name": name, "echo": body, "pid": os.getpid()})


class StreamHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        n = int(self.get_argument("n", "5"))
        for i in range(n):
            self.write(f"chunk {i}\n")
            await self.flush()
            await asyncio.sleep(0.01)


class FetchHandler(tornado.web.RequestHandler):
    async def get(self) -> None:
        port = self.request.host.rsplit(":", 1)[-1]
        client = tornado.httpclient.AsyncHTTPClient()
        resp = await client.fetch(f"http://127.0.0.1:{port}/api/fetched")
        self.write({"fetched": json.loads(resp.body), "status": resp.code})


class EchoSocket(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


class LoopStatsHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        loop = asyncio.get_running_loop()
        stats = loop.stats() if hasattr(loop, "stats") else {}
        ioloop = tornado.ioloop.IOLoop.current()
        self.write({"loop": type(loop).__name__, "ioloop": type(ioloop).__name__,
                    "pid": os.getpid(),
                    "ticks_seen_by_periodic": self.application.settings["ticks"][0],
                    "stats": stats})


def make_app() -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/", HelloHandler),
            (r"/api/(\w+)", ApiHandler),
            (r"/stream", StreamHandler),
            (r"/fetch", FetchHandler),
            (r"/ws", EchoSocket),
            (r"/debug/loop", LoopStatsHandler),
        ],
        ticks=[0],
    )


async def serve(sockets: list, announce: bool, slow_callback: float = 0.0,
                callback_timing: bool = True) -> None:
    app = make_app()
    server = tornado.httpserver.HTTPServer(app, xheaders=True)
    server.add_sockets(sockets)
    ticks = app.settings["ticks"]

    def heartbeat() -> None:
        ticks[0] += 1

    periodic = tornado.ioloop.PeriodicCallback(heartbeat, 1000)
    periodic.start()
    loop = asyncio.get_running_loop()
    if hasattr(loop, "set_slow_callback_threshold"):
        # ioloop_c: warn (logger "ioloop_c") about any callback that holds
        # the loop this long; /debug/loop shows the slowest so far.
        if not callback_timing:
            loop.set_callback_timing(False)
        elif slow_callback > 0:
            loop.set_slow_callback_threshold(slow_callback)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if announce:
        port = sockets[0].getsockname()[1]
        ioloop = tornado.ioloop.IOLoop.current()
        log.info("pid %d serving on http://127.0.0.1:%d/ (loop %s) Tornado IOLoop %s",
                 os.getpid(), port, type(loop).__module__ + "." + type(loop).__name__,
                 type(ioloop).__module__ + "." + type(ioloop).__name__)
    await stop.wait()
    periodic.stop()
    server.stop()
    await server.close_all_connections()


LOOPS = ("ioloop_c", "ioloop_c-set", "ioloop_c-run", "ioloop_c-factory",
         "ioloop_c-stockwrap", "stock", "uvloop")


def use_loop(kind: str) -> None:
    """Set-up before anything runs: a policy for the ways that use one."""
    if kind == "ioloop_c":
        import ioloop_c

        ioloop_c.install()
    elif kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif kind not in LOOPS:
        raise SystemExit(f"unknown loop {kind!r}")


def run_on(kind: str, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to completion the way ``kind`` names."""
    if kind.startswith("ioloop_c-"):
        import ioloop_c

        if kind in ("ioloop_c-set", "ioloop_c-stockwrap"):
            loop = ioloop_c.new_event_loop()
            asyncio.set_event_loop(loop)
            if kind == "ioloop_c-stockwrap":
                # For comparison only: Tornado's own AsyncIOMainLoop (Python
                # add_handler & co.) around our loop, which is what this way
                # gave before ioloop_c adopted such loops itself.
                from tornado.platform.asyncio import AsyncIOMainLoop

                AsyncIOMainLoop()
            try:
                loop.run_until_complete(main)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
        elif kind == "ioloop_c-run":
            ioloop_c.run(main)
        else:
            asyncio.run(main, loop_factory=ioloop_c.new_event_loop)  # 3.12+
    else:
        asyncio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--loop", default="ioloop_c", choices=LOOPS)
    parser.add_argument("--slow-callback", type=float, default=0.1, metavar="SECONDS",
                        help="ioloop_c: log callbacks that hold the loop this long (0: off)")
    parser.add_argument("--no-callback-timing", action="store_true",
                        help="ioloop_c: do not time each callback (no slow-callback reports)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    use_loop(args.loop)

    if args.processes > 1 and not args.reuse_port:
        # One listening socket, bound before the fork and shared.
        sockets = tornado.netutil.bind_sockets(args.port, args.address)
        tornado.process.fork_processes(args.processes, max_restarts=0)
    else:
        if args.processes > 1:
            tornado.process.fork_processes(args.processes, max_restarts=0)
        sockets = tornado.netutil.bind_sockets(args.port, args.address,
                                               reuse_port=args.reuse_port)
    # Each process (each child after a fork) makes its own fresh loop here.
    try:
        run_on(args.loop, serve(sockets, announce=True, slow_callback=args.slow_callback,
                                callback_timing=not args.no_callback_timing))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
