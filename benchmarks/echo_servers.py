"""The servers of the echo benchmark (and aiohttp's hello-world), one per
process, on the loop named on the command line.

    python benchmarks/echo_servers.py --loop LOOP --kind KIND
                                      (--tcp PORT | --unix PATH)
                                      [--cert CERT --key KEY]

LOOP is one of:

* ``asyncio``: ``asyncio.new_event_loop()``;
* ``uvloop``: ``uvloop.new_event_loop()``;
* ``ioloop_c``: ``ioloop_c.new_event_loop()`` (whatever transports the
  installed build has);
* ``afn-asyncio``, ``afn-uvloop``, ``afn-ioloop_c``: the same loops with
  ``aiofastnet.patch_loop(loop)`` applied (aiofastnet's C transports and
  TLS in place of the loop's own).

KIND is one of:

* ``protocol``: an ``asyncio.Protocol`` whose ``data_received`` writes the
  bytes back;
* ``buffered``: an ``asyncio.BufferedProtocol`` reading into its own
  256 KiB buffer and writing the filled part back as a memoryview (when a
  write had to be queued, the next read goes into a fresh buffer, so a
  loop that queues the view without copying still sends the right bytes);
* ``streams``: ``asyncio.start_server`` with ``reader.read(65536)``,
  ``writer.write`` and ``await writer.drain()``;
* ``tls``: ``protocol`` behind ``create_server(ssl=...)`` with the given
  certificate and key;
* ``aiohttp``: aiohttp's hello-world (``GET /`` answers "Hello, World!").

Prints ``serving on ...`` once listening and serves until SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import ssl
import sys
from typing import Any

LOOPS = ("asyncio", "uvloop", "ioloop_c", "afn-asyncio", "afn-uvloop", "afn-ioloop_c",
         "ioloop_c-pytls", "ioloop_c-methods")
KINDS = ("protocol", "buffered", "streams", "tls", "aiohttp")
BUFFER_SIZE = 256 * 1024


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop of the kind ``name`` names."""
    base = name.removeprefix("afn-")
    if base == "asyncio":
        loop = asyncio.new_event_loop()
    elif base == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    elif base in ("ioloop_c", "ioloop_c-pytls", "ioloop_c-methods"):
        import ioloop_c
        from ioloop_c import _tls

        loop = ioloop_c.new_event_loop()
        # -pytls: TLS's established phase in asyncio's Python SSLProtocol;
        # -methods: in C, through the _ssl objects' Python methods (the
        # path before csrc/binding/tls_ossl.c), as IOLOOP_C_TLS=methods.
        loop.native_tls = base != "ioloop_c-pytls"
        if base == "ioloop_c-methods":
            _tls.set_direct(False)
    else:
        raise ValueError(f"unknown loop {name!r}; one of {', '.join(LOOPS)}")
    if name.startswith("afn-"):
        import aiofastnet

        aiofastnet.patch_loop(loop)
    return loop


class EchoProtocol(asyncio.Protocol):
    """Writes back every chunk it receives."""

    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class EchoBufferedProtocol(asyncio.BufferedProtocol):
    """Reads into its own buffer and writes back the filled part."""

    transport: Any = None

    def __init__(self) -> None:
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.view[:nbytes])
        if self.transport.get_write_buffer_size():
            # The transport may hold our view: read into a new buffer.
            self.buf = bytearray(BUFFER_SIZE)
            self.view = memoryview(self.buf)

    def eof_received(self) -> None:
        return None


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The streams echo: read, write, drain, until the peer closes."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(args: argparse.Namespace, stop: asyncio.Future) -> None:
    loop = asyncio.get_running_loop()
    where = {"path": args.unix} if args.unix else {"host": "127.0.0.1", "port": args.tcp}
    if args.kind == "aiohttp":
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="Hello, World!")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = (web.UnixSite(runner, args.unix) if args.unix
                else web.TCPSite(runner, "127.0.0.1", args.tcp))
        await site.start()
        print(f"serving on {args.unix or args.tcp}", flush=True)
        await stop
        await runner.cleanup()
        return
    if args.kind == "streams":
        if args.unix:
            server = await asyncio.start_unix_server(echo_stream, **where)
        else:
            server = await asyncio.start_server(echo_stream, **where)
    else:
        factory = EchoBufferedProtocol if args.kind == "buffered" else EchoProtocol
        ctx = None
        if args.kind == "tls":
            if not (args.cert and args.key):
                raise SystemExit("--kind tls needs --cert and --key")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
        if args.unix:
            server = await loop.create_unix_server(factory, ssl=ctx, **where)
        else:
            server = await loop.create_server(factory, ssl=ctx, **where)
    print(f"serving on {args.unix or args.tcp}", flush=True)
    await stop
    server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", required=True, choices=LOOPS)
    ap.add_argument("--kind", required=True, choices=KINDS)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, metavar="PORT")
    where.add_argument("--unix", metavar="PATH")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        loop.run_until_complete(serve(args, stop))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
