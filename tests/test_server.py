"""Servers: asyncio.Server over the native accept loop (csrc/binding/server.c).

Written once and run on ioloop_c (every backend), ioloop_c with asyncio's
Python transport and accept loop (the escape hatch), stock asyncio and
uvloop where the behaviour is shared; what only the native accept loop
promises (a batch per readiness, reports, the listener's state) is
checked on it alone.
"""

import asyncio
import contextvars
import gc
import inspect
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest

import ioloop_c
from ioloop_c import _transport

from conftest import is_native, is_uvloop, open_fds, transport_loop_fixture

pytestmark = pytest.mark.timeout(60)


loop = transport_loop_fixture()


class Recorder(asyncio.Protocol):
    """Echoes what it gets and records its life."""

    def __init__(self, loop):
        self.tick = loop.stats()["ticks"] if is_native(loop) else None
        self.transport = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def _connect_blocking(addr, family=socket.AF_INET):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(addr)
    return c


async def _until(pred, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# -- accepting ---------------------------------------------------------------
def test_many_connections_in_one_readiness(loop):
    # Connections queued before the loop looks are all served; the native
    # loop takes them in one batch, in one tick.
    n = 50
    made = []

    def factory():
        p = Recorder(loop)
        made.append(p)
        return p

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=128)
        addr = server.sockets[0].getsockname()
        clients = [_connect_blocking(addr) for _ in range(n)]
        try:
            await _until(lambda: len(made) == n and all(p.transport for p in made))
            if is_native(loop):
                assert len({p.tick for p in made}) == 1
                assert all(type(p.transport) is _transport.SocketTransport for p in made)
                # Each transport knows its peer and is attached to the server.
                peers = {c.getsockname() for c in clients}
                assert {p.transport.get_extra_info("peername") for p in made} == peers
                assert all(p.transport._server is server for p in made)
            for i, c in enumerate(clients):
                c.sendall(b"%03d" % i)
            for i, c in enumerate(clients):
                got = await loop.sock_recv(_nonblocking(c), 3)
                assert got == b"%03d" % i
        finally:
            for c in clients:
                c.close()
        await asyncio.gather(*(p.lost for p in made))
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


_VAR = contextvars.ContextVar("accept_var", default="unset")


def _attached(server):
    """How many transports asyncio's Server counts as its clients."""
    clients = getattr(server, "_clients", None)  # 3.12+
    return server._active_count if clients is None else len(clients)


def _accept_once(loop, protocol_class, via_init):
    """Serve one connection natively, with SocketTransport.__init__ called
    (via_init: the class is called, as for a replaced __init__) or not
    (the C constructor); what the transport and the server look like."""
    seen = {}
    calls = []
    cls = _transport.SocketTransport
    original = cls.__dict__["__init__"]

    def init(self, *args, **kwargs):
        calls.append(len(args))
        original(self, *args, **kwargs)

    async def main():
        _VAR.set("server's")
        server = await loop.create_server(lambda: protocol_class(loop, seen), "127.0.0.1", 0)
        _VAR.set("later")
        addr = server.sockets[0].getsockname()
        c = _connect_blocking(addr)
        try:
            c.sendall(b"ping")
            assert await loop.sock_recv(_nonblocking(c), 4) == b"ping"
            tr = seen["transport"]
            seen.update(
                type=type(tr),
                peername=tr.get_extra_info("peername"),
                client=c.getsockname(),
                server_is=tr._server is server,
                registered=loop._transports.get(tr._sock_fd) is tr,
                active=_attached(server),
                reading=tr.is_reading(),
                protocol_is=tr.get_protocol() is seen["protocol"],
                clients=None if not hasattr(server, "_clients") else tr in server._clients,
            )
        finally:
            c.close()
        await asyncio.wait_for(seen["lost"], 10)
        seen["active_after"] = _attached(server)
        server.close()
        await server.wait_closed()

    if via_init:
        cls.__init__ = init
    try:
        loop.run_until_complete(main())
    finally:
        cls.__init__ = original
    seen["init_calls"] = calls
    return seen


class _Witness(asyncio.Protocol):
    def __init__(self, loop, seen):
        self.seen = seen
        seen["protocol"] = self
        seen["lost"] = loop.create_future()
        seen["events"] = []

    def connection_made(self, transport):
        self.seen["transport"] = transport
        self.seen["events"].append(("made", _VAR.get(), transport.is_reading()))

    def data_received(self, data):
        self.seen["events"].append(("data", _VAR.get()))
        self.seen["transport"].write(data)

    def connection_lost(self, exc):
        self.seen["events"].append(("lost", _VAR.get()))
        self.seen["lost"].set_result(exc)


@pytest.mark.parametrize("via_init", [False, True], ids=["c-constructor", "init"])
def test_accepted_transport_is_what_init_makes(via_init):
    # The accept loop makes its transports in C while SocketTransport and
    # its __init__ are the registered ones, and calls the class when
    # __init__ has been replaced: both must give the same transport,
    # server state, callback order and contexts.
    if _transport.SocketTransport is None:
        pytest.skip("no native transport on this Python")
    loop = ioloop_c.new_event_loop()
    try:
        seen = _accept_once(loop, _Witness, via_init)
    finally:
        loop.close()
    assert seen["init_calls"] == ([8] if via_init else [])
    assert seen["type"] is _transport.SocketTransport
    assert seen["peername"] == seen["client"]
    assert seen["server_is"] and seen["registered"] and seen["protocol_is"]
    assert seen["reading"] is True
    assert seen["active"] == 1 and seen["active_after"] == 0
    assert seen["clients"] in (None, True)
    # connection_made (is_reading() already true there, as in asyncio)
    # before any data; every callback in a copy of the context the server
    # was made in.
    assert seen["events"] == [
        ("made", "server's", True), ("data", "server's"), ("lost", "server's")
    ]


class _BrokenMade(asyncio.Protocol):
    def __init__(self, loop, seen):
        seen["protocol"] = self
        seen.setdefault("made", 0)
        seen["made"] += 1

    @property
    def connection_made(self):
        raise RuntimeError("no connection_made here")


@pytest.mark.parametrize("via_init", [False, True], ids=["c-constructor", "init"])
def test_accepted_transport_failing_in_the_making(via_init):
    # A step of the making that fails (here, looking up connection_made)
    # closes that connection and is reported; the server goes on.
    if _transport.SocketTransport is None:
        pytest.skip("no native transport on this Python")
    loop = ioloop_c.new_event_loop()
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    cls = _transport.SocketTransport
    original = cls.__dict__["__init__"]
    calls = []

    def init(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)

    async def main():
        seen = {}
        server = await loop.create_server(lambda: _BrokenMade(loop, seen), "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        for _ in range(2):
            c = _connect_blocking(addr)
            try:
                assert await loop.sock_recv(_nonblocking(c), 1) == b""  # closed
            finally:
                c.close()
        assert seen["made"] == 2
        # Undone: not counted as the server's clients (wait_closed() on
        # 3.12+ would wait for them), not in the loop's table.
        assert _attached(server) == 0
        assert not any(t is not None for t in (loop._transports.get(fd) for fd in range(1024)))
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)

    if via_init:
        cls.__init__ = init
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            loop.run_until_complete(main())
            gc.collect()
    finally:
        cls.__init__ = original
        loop.close()
    assert len(calls) == (2 if via_init else 0)
    assert len(reports) == 2
    for ctx in reports:
        assert ctx["message"] == "Error on transport creation for incoming connection"
        assert isinstance(ctx["exception"], RuntimeError)


def _nonblocking(sock):
    sock.setblocking(False)
    return sock


def test_backlog_bounds_one_batch():
    # More connections than `backlog` wait for the next readiness: the
    # batch is bounded, and all are served in the end.
    loop = ioloop_c.Loop()
    ticks = []

    def factory():
        ticks.append(loop.stats()["ticks"])
        return asyncio.Protocol()

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0, backlog=4)
        # The kernel's queue made longer than the batch (the listener
        # keeps backlog=4 for its batches).
        raw = next(iter(loop._listeners))
        raw.listen(64)
        addr = server.sockets[0].getsockname()
        clients = [_connect_blocking(addr) for _ in range(11)]
        await _until(lambda: len(ticks) == 11)
        per_tick = {}
        for t in ticks:
            per_tick[t] = per_tick.get(t, 0) + 1
        assert sorted(per_tick.values()) == [3, 4, 4]
        for c in clients:
            c.close()
        server.close()
        await server.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_nodelay_as_asyncio_sets_it(loop):
    # TCP_NODELAY on accepted connections: asyncio sets it where the
    # listening socket says IPPROTO_TCP (create_server(host, port)), not
    # for a sock= made with proto 0.
    socks = []

    class P(asyncio.Protocol):
        def connection_made(self, tr):
            socks.append(tr.get_extra_info("socket"))

    async def one(server):
        addr = server.sockets[0].getsockname()
        c = _connect_blocking(addr)
        await _until(lambda: socks)
        s = socks.pop()
        flag = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        c.close()
        server.close()
        await server.wait_closed()
        return flag

    async def main():
        by_host = await one(await loop.create_server(P, "127.0.0.1", 0))
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.bind(("127.0.0.1", 0))
        by_sock = await one(await loop.create_server(P, sock=raw))
        return by_host, by_sock

    by_host, by_sock = loop.run_until_complete(main())
    assert by_host != 0
    if not is_uvloop(loop):  # uvloop sets it on every TCP connection
        assert by_sock == 0


def test_sock_server(loop):
    # create_server(sock=...) on a socket the caller bound.
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.bind(("127.0.0.1", 0))
    addr = raw.getsockname()

    async def main():
        server = await loop.create_server(lambda: Recorder(loop), sock=raw)
        assert server.sockets[0].getsockname() == addr
        r, w = await asyncio.open_connection(*addr)
        w.write(b"ping")
        assert await r.readexactly(4) == b"ping"
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    assert raw.fileno() == -1  # the server closed it


def test_unix_server(loop):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")
        peers = []

        async def handle(reader, writer):
            peers.append(writer.get_extra_info("peername"))
            data = await reader.readline()
            writer.write(data.upper())
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_unix_server(handle, path)
            assert server.sockets[0].getsockname() == path
            for _ in range(3):
                r, w = await asyncio.open_unix_connection(path)
                if is_native(loop):
                    assert type(w.transport) is _transport.SocketTransport
                w.write(b"hello\n")
                assert await r.read() == b"HELLO\n"
                w.close()
                await w.wait_closed()
            server.close()
            await server.wait_closed()

        loop.run_until_complete(main())
        # An unnamed Unix peer is '' as socket.accept() gives it.
        assert peers == ["", "", ""]


def test_start_server_streams(loop):
    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line[:-1][::-1] + b"\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def client(port, i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        out = []
        for j in range(5):
            w.write(b"%d-%d\n" % (i, j))
            out.append(await r.readline())
        w.close()
        await w.wait_closed()
        return out

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        results = await asyncio.gather(*(client(port, i) for i in range(20)))
        for i, out in enumerate(results):
            assert out == [(b"%d-%d" % (i, j))[::-1] + b"\n" for j in range(5)]
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


VAR = contextvars.ContextVar("VAR", default="unset")


def test_connections_run_in_the_servers_context(loop):
    seen = []

    class P(asyncio.Protocol):
        def __init__(self):
            seen.append(("factory", VAR.get()))
            VAR.set(f"conn-{len(seen)}")

        def connection_made(self, tr):
            self.tr = tr
            seen.append(("made", VAR.get()))

        def data_received(self, data):
            seen.append(("data", VAR.get()))
            self.tr.close()

    async def main():
        VAR.set("server")
        server = await loop.create_server(P, "127.0.0.1", 0)
        VAR.set("elsewhere")
        addr = server.sockets[0].getsockname()
        for _ in range(2):
            c = _connect_blocking(addr)
            c.sendall(b"x")
            assert await loop.sock_recv(_nonblocking(c), 1) == b""
            c.close()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    factories = [v for k, v in seen if k == "factory"]
    assert factories[0] == "server"
    # uvloop runs every factory in the server's context itself, so what
    # one connection set shows in the next; asyncio and ioloop_c give each
    # connection a copy.
    if not is_uvloop(loop):
        assert factories == ["server", "server"]
        # What the factory set is the connection's own, and only its own.
        assert [v for k, v in seen if k in ("made", "data")] == [
            "conn-1", "conn-1", "conn-4", "conn-4"
        ]


# -- serving and closing -----------------------------------------------------
# asyncio 3.13's later releases on: serve_forever() cancelled closes the
# server's connections as well.
_SERVE_FOREVER_CLOSES_CLIENTS = "close_clients()" in inspect.getsource(
    asyncio.base_events.Server.serve_forever
)
# 3.12.1 until then: the cancelled serve_forever() awaits wait_closed(),
# which from 3.12.1 waits for the connections too, so it ends only once the
# last one has gone (3.11's wait_closed() returned at once).
_SERVE_FOREVER_WAITS_FOR_CLIENTS = (
    not _SERVE_FOREVER_CLOSES_CLIENTS and sys.version_info >= (3, 12, 1)
)


def test_serve_forever_close_wait_closed(loop):
    async def main():
        server = await loop.create_server(
            lambda: Recorder(loop), "127.0.0.1", 0, start_serving=False
        )
        assert not server.is_serving()
        assert server.get_loop() is loop
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        addr = server.sockets[0].getsockname()
        r, w = await asyncio.open_connection(*addr)
        w.write(b"abc")
        assert await r.readexactly(3) == b"abc"
        task.cancel()
        if _SERVE_FOREVER_WAITS_FOR_CLIENTS and not is_uvloop(loop):
            # Closed, but the task waits for the open connection, which is
            # still served; it ends once the client has gone.
            await asyncio.sleep(0.05)
            assert not task.done()
            assert not server.is_serving()
            w.write(b"def")
            assert await r.readexactly(3) == b"def"
            w.close()
            await w.wait_closed()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            assert not server.sockets
            with pytest.raises(OSError):
                await asyncio.open_connection(*addr)
            await asyncio.wait_for(server.wait_closed(), 5)
            return
        with pytest.raises(asyncio.CancelledError):
            await task
        # serve_forever() cancelled closes the server.
        assert not server.is_serving()
        assert not server.sockets  # () on asyncio, [] on uvloop
        with pytest.raises(OSError):
            await asyncio.open_connection(*addr)
        if _SERVE_FOREVER_CLOSES_CLIENTS and not is_uvloop(loop):
            # Newer asyncio closes the connections too.
            assert await r.read() == b""
        else:
            # The open connection is still served.
            w.write(b"def")
            assert await r.readexactly(3) == b"def"
        w.close()
        await w.wait_closed()
        await asyncio.wait_for(server.wait_closed(), 5)

    loop.run_until_complete(main())


def test_async_with_and_start_serving(loop):
    async def main():
        server = await loop.create_server(
            lambda: Recorder(loop), "127.0.0.1", 0, start_serving=False
        )
        async with server:
            await server.start_serving()
            assert server.is_serving()
            # A second start is harmless.
            await server.start_serving()
            addr = server.sockets[0].getsockname()
            r, w = await asyncio.open_connection(*addr)
            w.write(b"x")
            assert await r.readexactly(1) == b"x"
            w.close()
            await w.wait_closed()
        assert not server.is_serving()
        await server.wait_closed()
        if isinstance(loop, ioloop_c.Loop):
            assert loop._listeners == {}

    loop.run_until_complete(main())


def test_close_waits_for_clients(loop):
    # wait_closed() returns once the server is closed and (3.12+) its
    # connections are gone.
    async def main():
        server = await loop.create_server(lambda: Recorder(loop), "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        r, w = await asyncio.open_connection(*addr)
        w.write(b"x")
        await r.readexactly(1)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.05)
        if sys.version_info >= (3, 12) and not is_uvloop(loop):
            # (uvloop's wait_closed() does not wait for connections.)
            assert not waiter.done()
        w.close()
        await w.wait_closed()
        await asyncio.wait_for(waiter, 5)

    loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info < (3, 13), reason="close_clients/abort_clients: 3.13+")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_close_and_abort_clients(loop, how):
    if is_uvloop(loop):
        pytest.skip("uvloop 0.23's Server has no close_clients/abort_clients")
    lost = []
    made = []

    class P(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            made.append(tr)
            if how == "close_clients":
                tr.write(b"bye" * 1000)

        def connection_lost(self, exc):
            lost.append(exc)

    async def main():
        server = await loop.create_server(P, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        conns = [await asyncio.open_connection(*addr) for _ in range(3)]
        await _until(lambda: len(made) == 3)
        server.close()
        getattr(server, how)()
        await asyncio.wait_for(server.wait_closed(), 5)
        assert len(lost) == 3
        for r, w in conns:
            data = await r.read()
            if how == "close_clients":
                assert data == b"bye" * 1000  # close() flushes first
            w.close()

    loop.run_until_complete(main())


def test_close_in_protocol_factory_stops_the_batch():
    # The server closed by a factory mid-batch: that connection and the
    # ones after it are closed, not served, and nothing is reported.
    loop = ioloop_c.Loop()
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    made = []
    holder = {}

    def factory():
        made.append(1)
        holder["server"].close()
        return asyncio.Protocol()

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        holder["server"] = server
        addr = server.sockets[0].getsockname()
        clients = [_connect_blocking(addr) for _ in range(5)]
        await _until(lambda: made)
        await asyncio.sleep(0.05)
        assert made == [1]
        for c in clients:
            try:
                assert await loop.sock_recv(_nonblocking(c), 1) == b""
            except ConnectionResetError:
                pass
            c.close()
        await server.wait_closed()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert errors == []


# -- failures ----------------------------------------------------------------
def test_protocol_factory_raises(loop):
    # A failing factory loses that connection only: the server goes on.
    # (uvloop 0.23 calls no factory again after one raised: it is left
    # out.)
    if is_uvloop(loop):
        pytest.skip("uvloop stops accepting after a failing protocol_factory")
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("no protocol")
        return Recorder(loop)

    async def main():
        server = await loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        first = _connect_blocking(addr)
        await _until(lambda: calls)
        r, w = await asyncio.open_connection(*addr)
        w.write(b"still here")
        assert await r.readexactly(10) == b"still here"
        w.close()
        await w.wait_closed()
        if is_native(loop):
            # Closed at once, and reported.
            assert await loop.sock_recv(_nonblocking(first), 1) == b""
        first.close()
        server.close()
        await server.wait_closed()

    with warnings.catch_warnings():
        # asyncio drops the failed connection's socket to the collector.
        warnings.simplefilter("ignore", ResourceWarning)
        loop.run_until_complete(main())
        gc.collect()
    if is_native(loop):
        assert len(reports) == 1
        ctx = reports[0]
        assert ctx["message"] == "Error on transport creation for incoming connection"
        assert isinstance(ctx["exception"], ZeroDivisionError)


def test_accept_error_is_reported_not_fatal():
    # An accept() failure other than an fd shortage goes to the exception
    # handler and the listener keeps watching, as asyncio's does.
    from ioloop_c import _server

    loop = ioloop_c.Loop()
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        sock = server.sockets[0]
        listener, hooks = loop._listeners[sock._sock]
        err = OSError(71, "Protocol error")
        hooks.accept_failed(listener, err, None)
        assert listener.watching and not listener.closed
        server.close()
        await server.wait_closed()
        assert listener.closed and not listener.watching
        return _server

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert reports[0]["message"] == "Error accepting a connection"


EMFILE_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, resource, sys, time
    kind, mode = sys.argv[1], sys.argv[2]
    if kind == "asyncio":
        loop = asyncio.SelectorEventLoop()
    else:
        import ioloop_c
        loop = ioloop_c.new_event_loop()
        loop.native_transport = kind == "ioloop_c"
    reports = []
    def handler(lp, ctx):
        exc = ctx.get("exception")
        reports.append([ctx["message"], getattr(exc, "errno", None), time.monotonic()])
    loop.set_exception_handler(handler)
    served = []
    class P(asyncio.Protocol):
        def connection_made(self, tr):
            served.append(time.monotonic())
            tr.write(b"ok")
            tr.close()
    async def main():
        server = await loop.create_server(P, "127.0.0.1", 0)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        fillers = []
        try:
            while True:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print(server.sockets[0].getsockname()[1], flush=True)
        while not reports:
            await asyncio.sleep(0.02)
        t0, cpu0 = time.monotonic(), time.process_time()
        ticks0 = loop.stats()["ticks"] if hasattr(loop, "stats") else 0
        await asyncio.sleep(0.2)
        for fd in fillers:
            os.close(fd)
        if mode == "close":
            server.close()
            await asyncio.sleep(1.5)
        else:
            while not served and time.monotonic() < t0 + 10:
                await asyncio.sleep(0.02)
        ticks = (loop.stats()["ticks"] if hasattr(loop, "stats") else 0) - ticks0
        out = {"reports": reports, "served": served, "t0": t0,
               "cpu": time.process_time() - cpu0, "ticks": ticks}
        server.close()
        await server.wait_closed()
        return out
    out = loop.run_until_complete(main())
    loop.close()
    print(json.dumps(out), flush=True)
    """
)

EMFILE_KINDS = ["ioloop_c", "ioloop_c-pytransport", "asyncio"]


def _run_emfile_child(kind, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, "-c", EMFILE_CHILD, kind, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        port = int(child.stdout.readline())
        c = _connect_blocking(("127.0.0.1", port))
        got = b""
        if mode == "serve":
            while len(got) < 2:
                chunk = c.recv(2)
                if not chunk:
                    break
                got += chunk
        out, err = child.communicate(timeout=30)
        c.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    return got, json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", EMFILE_KINDS)
def test_emfile_at_accept_pauses_then_resumes(kind):
    got, out = _run_emfile_child(kind, "serve")
    assert got == b"ok"
    message, errno_, when = out["reports"][0]
    assert message == "socket.accept() out of system resource"
    assert errno_ == 24  # EMFILE
    # Reported in that readiness only, not once a tick: accepting stopped
    # for the pause.  (asyncio's Python loop goes on trying the rest of
    # its batch after the first EMFILE, so it reports up to `backlog`
    # times, and schedules as many retries; the native loop stops at the
    # first.)  So every report comes before serving resumes: a report of
    # the retry would come after.  (Not a time bound: a debug interpreter
    # takes over half a second for asyncio's batch of logged reports.)
    assert len(out["served"]) == 1
    assert when < out["served"][0], out
    if kind != "asyncio":
        # asyncio's loop also schedules one retry per failed accept of its
        # batch, and on a slow (debug) interpreter some of those retries
        # meet EMFILE again after the first one served: its later reports
        # are not ordered.  Ours retry once.
        assert all(r[2] < out["served"][0] for r in out["reports"]), out
    if kind == "ioloop_c":
        assert len(out["reports"]) == 1
    # ...and resumed after asyncio's ACCEPT_RETRY_DELAY (1 s), once fds
    # were free again (they were freed 0.2 s in).
    assert 0.8 <= out["served"][0] - when < 5
    # No spinning meanwhile: little CPU, few ticks.
    assert out["cpu"] < 0.5
    if kind.startswith("ioloop_c"):
        assert out["ticks"] < 300


def test_emfile_then_close_cancels_the_retry():
    # Closed during the pause: no retry fires, nothing more is reported,
    # and the queued connection is not served.
    got, out = _run_emfile_child("ioloop_c", "close")
    assert len(out["reports"]) == 1
    assert out["served"] == []
    assert out["cpu"] < 0.5


# -- TLS, the opt-out, leaks -------------------------------------------------
def _ssl_contexts():
    from test.test_asyncio import utils as tu

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tu.ONLYCERT, tu.ONLYKEY)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    return server_ctx, client_ctx


def test_tls_server(loop):
    server_ctx, client_ctx = _ssl_contexts()

    async def handle(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
            w.write(b"secret\n")
            assert await r.readline() == b"SECRET\n"
            w.close()
            await w.wait_closed()
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())


def test_native_listener_or_python_reader():
    # The native accept loop owns the listening fd (no asyncio reader);
    # with native_transport off, asyncio's reader-based loop serves.
    for native in (True, False):
        loop = ioloop_c.Loop()
        loop.native_transport = native

        async def main():
            server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
            fd = server.sockets[0].fileno()
            state = (bool(loop._listeners), loop._fd_info(fd) is not None)
            server.close()
            await server.wait_closed()
            return state

        try:
            assert loop.run_until_complete(main()) == (native, not native)
        finally:
            loop.close()


def test_no_fd_or_resource_leak(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
            for r, w in conns:
                w.write(b"z")
                await r.readexactly(1)
                w.close()
                await w.wait_closed()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)

    async def warm_up():
        # uvloop (libuv) keeps one fd in reserve from its first server on.
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(warm_up())
    gc.collect()
    before = open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.run_until_complete(main())
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert open_fds() == before
    if isinstance(loop, ioloop_c.Loop):
        assert loop._listeners == {}


def test_loop_closed_while_serving():
    # Closing the loop under a serving server leaves nothing watching and
    # the server can still be closed afterwards.
    loop = ioloop_c.Loop()
    server = loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
    listener, _ = next(iter(loop._listeners.values()))
    loop.close()
    server.close()
    assert listener.closed
    assert not server.sockets


def test_unix_server_path_cleanup(loop):
    # 3.13+ asyncio unlinks a Unix server's path on close; the native
    # accept loop keeps that.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")

        async def main():
            server = await asyncio.start_unix_server(lambda r, w: None, path)
            assert os.path.exists(path)
            server.close()
            await server.wait_closed()

        loop.run_until_complete(main())
        cleans_up = sys.version_info >= (3, 13)  # uvloop follows suit
        assert os.path.exists(path) != cleans_up


def test_listener_bad_input():
    # The native type refuses what it cannot serve, with clear errors.
    from ioloop_c import _core, _server

    loop = ioloop_c.Loop()
    sock = socket.socket()
    try:
        args = dict(
            loop=loop, sock=sock, protocol_factory=asyncio.Protocol, server=None,
            backlog=10, context=contextvars.copy_context(), hooks=None,
            transport_class=_transport.SocketTransport, slow=False,
        )
        with pytest.raises(TypeError):
            _core.Listener(**dict(args, loop=object()))
        with pytest.raises(TypeError):
            _core.Listener(**dict(args, context={}))
        with pytest.raises(TypeError):
            _core.Listener(**dict(args, protocol_factory=42))
        with pytest.raises(TypeError):
            _core.Listener(**dict(args, sock="not a socket"))
        closed = socket.socket()
        closed.close()
        with pytest.raises(ValueError):
            _core.Listener(**dict(args, sock=closed))
        # A closed loop cannot be watched.
        ls = _core.Listener(**args)
        loop.close()
        with pytest.raises(RuntimeError):
            ls.start()
        ls.close()
        assert ls.closed and not ls.watching
        assert _server.Listener is _core.Listener
    finally:
        sock.close()
        if not loop.is_closed():
            loop.close()
