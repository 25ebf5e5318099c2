"""TLS over the native transport, written once and run on ioloop_c with its
native TLS data phase (every backend), ioloop_c with asyncio's SSLProtocol
unchanged (``native_tls = False``), stock asyncio and uvloop.

asyncio's SSL transport is the reference: what a user protocol sees
(connection_made only after the handshake, extra info, errors through the
waiter, flow control, close and abort, timeouts) must be what it sees on
stock asyncio.  Where uvloop differs, the test says so.
"""

import asyncio
import gc
import os
import socket
import ssl
import subprocess
import sys
import threading

import pytest

import ioloop_c
from ioloop_c import _core, _tls, _transport

from conftest import asyncio_anchors, current_loop

pytestmark = pytest.mark.timeout(60)


def _tu():
    from test.test_asyncio import utils as tu

    return tu


def _native(backend):
    def make():
        lp = ioloop_c.Loop(backend=backend)
        assert lp.native_transport and lp.native_tls
        return lp

    return make


def _python_tls():
    lp = ioloop_c.Loop()
    lp.native_tls = False
    return lp


FACTORIES = [(f"native-{b}", _native(b)) for b in ioloop_c.available_backends()]
# The native steps through the _ssl objects' Python methods instead of
# OpenSSL directly (IOLOOP_C_TLS=methods; process-wide, so the fixture
# switches it for the test and back).
_methods = _native(None)
FACTORIES.append(("native-methods", _methods))
FACTORIES.append(("ioloop_c-pytls", _python_tls))
FACTORIES += asyncio_anchors()


@pytest.fixture(params=[f for _, f in FACTORIES], ids=[n for n, _ in FACTORIES])
def loop(request):
    methods = request.param is _methods
    was = _tls.direct
    if methods:
        _tls.set_direct(False)
    try:
        yield from current_loop(request.param)
    finally:
        if methods:
            _tls.set_direct(was)
    gc.collect()


def is_native_tls(loop):
    return isinstance(loop, ioloop_c.Loop) and loop.native_tls


def is_uvloop(loop):
    return "uvloop" in type(loop).__module__


def server_ctx(signed=False):
    tu = _tu()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if signed:
        ctx.load_cert_chain(tu.SIGNED_CERTFILE)
    else:
        ctx.load_cert_chain(tu.ONLYCERT, tu.ONLYKEY)
    return ctx


def client_ctx(verify=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(_tu().SIGNING_CA)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Peer(asyncio.Protocol):
    """Records every callback; echoes if asked."""

    def __init__(self, loop, echo=False):
        self.loop = loop
        self.echo = echo
        self.transport = None
        self.data = bytearray()
        self.events = []
        self.lost = loop.create_future()
        self.made = loop.create_future()
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)

    def data_received(self, data):
        assert isinstance(data, bytes)
        self.data += data
        if self.echo:
            self.transport.write(data)

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.paused += 1

    def resume_writing(self):
        self.resumed += 1

    def connection_lost(self, exc):
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)

    async def wait_for(self, n, timeout=20):
        async def until():
            while len(self.data) < n:
                await asyncio.sleep(0.002)

        await asyncio.wait_for(until(), timeout)


async def tls_pair(loop, server_proto=None, client_proto=None, **server_kw):
    """A TLS server on loop and one client connection to it: (server,
    server protocol, client transport, client protocol)."""
    protos = []

    def factory():
        p = server_proto() if server_proto else Peer(loop, echo=True)
        protos.append(p)
        return p

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx(), **server_kw)
    port = server.sockets[0].getsockname()[1]
    tr, cp = await loop.create_connection(
        client_proto or (lambda: Peer(loop)), "127.0.0.1", port, ssl=client_ctx()
    )
    while not protos or protos[0].transport is None:
        await asyncio.sleep(0.001)
    return server, protos[0], tr, cp


async def close_server(server):
    server.close()
    await server.wait_closed()


def test_native_path_is_used(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        if is_native_tls(loop):
            assert type(tr._ssl_protocol) is _tls.NativeSSLProtocol
            assert type(tr) is _tls.SSLAppTransport
            assert type(tr._ssl_protocol._transport) is _transport.SocketTransport
        elif isinstance(loop, ioloop_c.Loop):
            assert type(tr._ssl_protocol) is asyncio.sslproto.SSLProtocol
        if not is_uvloop(loop):  # uvloop's transports are not asyncio.Transport
            assert isinstance(tr, asyncio.Transport)
        assert "ssl" in type(tr).__name__.lower()
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_opt_outs():
    lp = ioloop_c.Loop()
    try:
        assert lp.native_tls is _tls.available
        lp.native_tls = False
        assert lp.native_tls is False
    finally:
        lp.close()
    code = "import ioloop_c; lp = ioloop_c.Loop(); print(lp.native_tls); lp.close()"
    env = dict(os.environ, IOLOOP_C_TLS="python")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("size", [1, 100, 16385, 70000, 1 << 20])
def test_echo_sizes(loop, size):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        payload = os.urandom(size)
        tr.write(payload)
        await cp.wait_for(size)
        assert bytes(cp.data) == payload
        # bytearray and memoryview are data too; writelines joins.
        tr.write(bytearray(b"ab"))
        tr.write(memoryview(b"cd"))
        tr.writelines([b"e", b"f"])
        tr.write(b"")
        await cp.wait_for(size + 6)
        assert bytes(cp.data[size:]) == b"abcdef"
        tr.close()
        assert tr.is_closing()
        assert await cp.lost is None
        await sp.lost
        assert sp.events[0] == "made" and sp.events[-1] == "lost"
        await close_server(server)

    loop.run_until_complete(main())


def test_small_read_size_and_buffer(loop):
    # SSLProtocol's read size (max_size) and buffer set small on the
    # server's protocol: records larger than the buffer arrive in pieces
    # and are joined, as SSLProtocol joins them.
    if is_uvloop(loop):
        pytest.skip("uvloop's SSLProtocol is its own (Cython), without these attributes")

    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        proto = sp.transport._ssl_protocol
        proto.max_size = 1000
        proto._ssl_buffer = bytearray(1000)
        proto._ssl_buffer_view = memoryview(proto._ssl_buffer)
        chunks = []
        orig = sp.data_received

        def record(data):
            chunks.append(len(data))
            orig(data)

        sp.data_received = record
        payload = os.urandom(300000)
        tr.write(payload)
        await cp.wait_for(len(payload))
        assert bytes(cp.data) == payload
        assert bytes(sp.data) == payload
        # Some deliveries were more than one read's worth (joined).
        assert max(chunks) > 1000
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_many_connections_interleaved(loop):
    async def main():
        server = await loop.create_server(
            lambda: Peer(loop, echo=True), "127.0.0.1", 0, ssl=server_ctx()
        )
        port = server.sockets[0].getsockname()[1]
        conns = [
            await loop.create_connection(lambda: Peer(loop), "127.0.0.1", port, ssl=client_ctx())
            for _ in range(10)
        ]
        for rnd in range(20):
            for i, (tr, _) in enumerate(conns):
                tr.write(bytes([i, rnd]) * 50)
        for i, (_, cp) in enumerate(conns):
            await cp.wait_for(2000)
            assert bytes(cp.data) == b"".join(bytes([i, r]) * 50 for r in range(20))
        for tr, cp in conns:
            tr.close()
            await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_write_refuses_non_bytes(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        for bad in ("text", 1, None, [b"x"]):
            with pytest.raises(TypeError):
                tr.write(bad)
        with pytest.raises(TypeError):
            tr.write(b"a", b"b")
        tr.write(b"still fine")
        tr.write(data=b"!")  # a keyword, as the Python method takes it
        await cp.wait_for(11)
        assert bytes(cp.data) == b"still fine!"
        assert not tr.can_write_eof()
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_extra_info_and_hostname(loop):
    async def main():
        sctx = server_ctx(signed=True)
        server = await loop.create_server(lambda: Peer(loop, echo=True), "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        cctx = client_ctx(verify=True)
        tr, cp = await loop.create_connection(
            lambda: Peer(loop), "127.0.0.1", port, ssl=cctx, server_hostname="localhost"
        )
        obj = tr.get_extra_info("ssl_object")
        assert obj is not None and obj.server_hostname == "localhost"
        assert tr.get_extra_info("sslcontext") is cctx
        peercert = tr.get_extra_info("peercert")
        assert dict(x[0] for x in peercert["subject"])["commonName"] == "localhost"
        cipher = tr.get_extra_info("cipher")
        assert isinstance(cipher, tuple) and len(cipher) == 3
        assert tr.get_extra_info("compression") is None
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("socket") is not None
        assert tr.get_extra_info("no such thing", 42) == 42
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_bad_certificate_and_hostname_mismatch(loop):
    async def main():
        made = []

        class Server(Peer):
            def connection_made(self, transport):
                made.append(transport)
                super().connection_made(transport)

        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        server = await loop.create_server(
            lambda: Server(loop), "127.0.0.1", 0, ssl=server_ctx(signed=True)
        )
        port = server.sockets[0].getsockname()[1]
        client_made = []

        def client():
            p = Peer(loop)
            client_made.append(p)
            return p

        # An unknown CA (the default store does not hold the test CA).
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(
                client, "127.0.0.1", port, ssl=ssl.create_default_context(),
                server_hostname="localhost",
            )
        # The right CA, the wrong name.
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await loop.create_connection(
                client, "127.0.0.1", port, ssl=client_ctx(verify=True),
                server_hostname="wrong.example",
            )
        assert "wrong.example" in str(info.value) or "match" in str(info.value)
        assert all(not p.events for p in client_made)
        await asyncio.sleep(0.05)
        # The server side saw handshake failures, never a connection.
        assert made == []
        # And still serves.
        tr, cp = await loop.create_connection(
            lambda: Peer(loop), "127.0.0.1", port, ssl=client_ctx(verify=True),
            server_hostname="localhost",
        )
        tr.write(b"ping")
        await asyncio.sleep(0.05)
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_handshake_timeout(loop):
    async def main():
        # A TCP peer that accepts and never speaks TLS.
        lsock = socket.create_server(("127.0.0.1", 0))
        port = lsock.getsockname()[1]
        accepted = []
        t0 = loop.time()
        try:
            fut = loop.create_connection(
                lambda: Peer(loop), "127.0.0.1", port, ssl=client_ctx(),
                ssl_handshake_timeout=0.3,
            )
            task = loop.create_task(fut)
            await asyncio.sleep(0.05)
            accepted.append(lsock.accept()[0])
            with pytest.raises((ConnectionAbortedError, asyncio.TimeoutError)):
                await task
            assert 0.25 <= loop.time() - t0 < 5
        finally:
            for s in accepted:
                s.close()
            lsock.close()

    loop.run_until_complete(main())


def test_client_closes_during_handshake(loop):
    async def main():
        made = []

        class Server(Peer):
            def connection_made(self, transport):
                made.append(transport)
                super().connection_made(transport)

        server = await loop.create_server(
            lambda: Server(loop, echo=True), "127.0.0.1", 0, ssl=server_ctx()
        )
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # a truncated ClientHello
            s.close()
        await asyncio.sleep(0.1)
        assert made == []
        tr, cp = await loop.create_connection(
            lambda: Peer(loop), "127.0.0.1", port, ssl=client_ctx()
        )
        tr.write(b"x")
        await cp.wait_for(1)
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_large_writes_flow_control(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop, server_proto=lambda: Peer(loop))
        tr.pause_reading()
        assert not tr.is_reading()
        sp.transport.set_write_buffer_limits(high=64 * 1024)
        chunk = os.urandom(64 * 1024)
        total = 0
        while not sp.paused and total < (64 << 20):
            sp.transport.write(chunk)
            total += len(chunk)
            await asyncio.sleep(0)
        assert sp.paused == 1
        assert sp.transport.get_write_buffer_size() > 0
        tr.resume_reading()
        assert tr.is_reading()
        await cp.wait_for(total, timeout=40)
        assert len(cp.data) == total
        assert bytes(cp.data[: len(chunk)]) == chunk
        assert bytes(cp.data[-len(chunk):]) == chunk
        assert sp.resumed == 1
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_pause_reading_holds_data(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop, server_proto=lambda: Peer(loop))
        sp.transport.pause_reading()
        tr.write(b"held" * 1000)
        await asyncio.sleep(0.1)
        assert len(sp.data) == 0
        sp.transport.resume_reading()
        await sp.wait_for(4000)
        assert bytes(sp.data) == b"held" * 1000
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def _blocking_client(port, payload, close_notify, result):
    ctx = client_ctx()
    raw = socket.create_connection(("127.0.0.1", port))
    s = ctx.wrap_socket(raw)
    try:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += s.recv(65536)
        result.append(got)
        if close_notify:
            s = s.unwrap()
    finally:
        s.close()


@pytest.mark.parametrize("close_notify", [True, False], ids=["close_notify", "no_close_notify"])
def test_peer_closes(loop, close_notify):
    async def main():
        protos = []

        def factory():
            p = Peer(loop, echo=True)
            protos.append(p)
            return p

        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx())
        port = server.sockets[0].getsockname()[1]
        result = []
        payload = os.urandom(50000)
        th = threading.Thread(target=_blocking_client, args=(port, payload, close_notify, result))
        th.start()
        while not protos or not protos[0].lost.done():
            await asyncio.sleep(0.005)
        th.join()
        assert result == [payload]
        p = protos[0]
        assert await p.lost is None
        assert p.events.count("lost") == 1
        assert p.events[0] == "made"
        await close_server(server)

    loop.run_until_complete(main())


def test_abort(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        tr.write(b"before")
        await cp.wait_for(6)
        sp.transport.abort()
        assert sp.transport.is_closing()
        await asyncio.wait_for(cp.lost, 10)
        assert await sp.lost is None
        assert sp.events.count("lost") == 1
        tr.abort()
        tr.close()
        await close_server(server)

    loop.run_until_complete(main())


def test_write_after_close_is_dropped(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        tr.close()
        tr.write(b"dropped")
        await cp.lost
        tr.write(b"dropped too")
        await sp.lost
        assert bytes(sp.data) == b""
        await close_server(server)

    loop.run_until_complete(main())


def test_data_received_raising_is_fatal_and_reported(loop):
    async def main():
        class Boom(Peer):
            def data_received(self, data):
                raise ZeroDivisionError("boom")

        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        server, sp, tr, cp = await tls_pair(loop, server_proto=lambda: Boom(loop))
        tr.write(b"x")
        await asyncio.wait_for(sp.lost, 10)
        await asyncio.wait_for(cp.lost, 10)
        assert any(isinstance(e.get("exception"), ZeroDivisionError) for e in errors)
        await close_server(server)

    loop.run_until_complete(main())


def test_buffered_protocol_app(loop):
    async def main():
        class BufEcho(asyncio.BufferedProtocol):
            def __init__(self):
                self.buf = bytearray(1000)
                self.transport = None

            def connection_made(self, transport):
                self.transport = transport

            def get_buffer(self, n):
                # A memoryview: asyncio's SSLProtocol slices the buffer it
                # gets to fill it piecewise, and a bytearray's slice is a
                # copy (the data would be lost, on stock asyncio as well).
                return memoryview(self.buf)

            def buffer_updated(self, n):
                self.transport.write(bytes(self.buf[:n]))

            def connection_lost(self, exc):
                pass

        server, sp, tr, cp = await tls_pair(loop, server_proto=BufEcho)
        payload = os.urandom(200000)
        tr.write(payload)
        await cp.wait_for(len(payload))
        assert bytes(cp.data) == payload
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_shutdown_timeout(loop):
    async def main():
        protos = []

        def factory():
            p = Peer(loop)
            protos.append(p)
            return p

        server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=server_ctx(), ssl_shutdown_timeout=0.3
        )
        port = server.sockets[0].getsockname()[1]
        done = threading.Event()

        def silent_client():
            s = client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)))
            done.wait(10)  # never answers the close_notify
            s.close()

        th = threading.Thread(target=silent_client)
        th.start()
        try:
            while not protos or protos[0].transport is None:
                await asyncio.sleep(0.005)
            t0 = loop.time()
            protos[0].transport.close()
            exc = await asyncio.wait_for(protos[0].lost, 10)
            assert 0.2 <= loop.time() - t0 < 5
            assert isinstance(exc, (asyncio.TimeoutError, TimeoutError))
        finally:
            done.set()
            th.join()
        await close_server(server)

    loop.run_until_complete(main())


def test_start_tls_upgrade(loop):
    # loop.start_tls() on both sides of a plain connection: a STARTTLS
    # exchange, then TLS over the same transport.
    async def main():
        class Plain(Peer):
            def data_received(self, data):
                super().data_received(data)
                if bytes(self.data) == b"STARTTLS":
                    self.transport.pause_reading()
                    self.transport.write(b"OK")
                    loop.create_task(upgrade(self.transport))

        upgraded = loop.create_future()
        # start_tls() makes no connection_made() call on the new protocol.
        tls_server = Peer(loop)

        async def upgrade(transport):
            new = await loop.start_tls(transport, tls_server, server_ctx(), server_side=True)
            upgraded.set_result(new)

        server = await loop.create_server(lambda: Plain(loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, cp = await loop.create_connection(lambda: Peer(loop), "127.0.0.1", port)
        tr.write(b"STARTTLS")
        await cp.wait_for(2)
        assert bytes(cp.data) == b"OK"
        tls_client = Peer(loop)
        ctr = await loop.start_tls(tr, tls_client, client_ctx())
        assert ctr.get_extra_info("ssl_object") is not None
        str_ = await upgraded
        assert str_.get_extra_info("ssl_object") is not None
        payload = os.urandom(100000)
        ctr.write(payload)
        await tls_server.wait_for(len(payload))
        assert bytes(tls_server.data) == payload
        str_.write(b"bye")
        await tls_client.wait_for(3)
        assert bytes(tls_client.data) == b"bye"
        ctr.close()
        await tls_client.lost
        await tls_server.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_no_leaks(loop):
    async def round_trip(port):
        tr, cp = await loop.create_connection(
            lambda: Peer(loop), "127.0.0.1", port, ssl=client_ctx()
        )
        tr.write(b"x" * 1000)
        await cp.wait_for(1000)
        tr.close()
        await cp.lost

    async def main():
        server = await loop.create_server(
            lambda: Peer(loop, echo=True), "127.0.0.1", 0, ssl=server_ctx()
        )
        port = server.sockets[0].getsockname()[1]
        await round_trip(port)
        await asyncio.sleep(0.05)
        gc.collect()
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(30):
            await round_trip(port)
        await asyncio.sleep(0.1)
        gc.collect()
        assert len(os.listdir("/proc/self/fd")) <= fds
        alive = [o for o in gc.get_objects() if isinstance(o, asyncio.sslproto.SSLProtocol)]
        assert len(alive) <= 2, alive
        await close_server(server)

    loop.run_until_complete(main())


def test_tlswrite_bad_use():
    # The mixin on its own, or _setup with the wrong arguments: clear
    # errors, no crash.
    with pytest.raises(AttributeError):
        _core.TLSWrite().write(b"x")
    with pytest.raises(TypeError):
        _core.TLSWrite().write()
    with pytest.raises(TypeError):
        _core.TLSWrite._setup(1, 2, 3)
    with pytest.raises(TypeError):
        _core.TLSWrite._setup(int, None, int, "not a tuple", int, int)


def test_tlsstate_slots_are_sslprotocol_attributes():
    # Every slot of TLSState shadows an attribute that asyncio's own
    # SSLProtocol sets on its instances, and nothing SSLProtocol keeps on
    # the class (a slot would hide the class default).
    slots = {n for n, v in vars(_core.TLSState).items() if type(v).__name__ == "member_descriptor"}
    assert slots == set(_tls._PROTOCOL_NAMES)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    proto = asyncio.sslproto.SSLProtocol(None, None, ctx, None, server_hostname="x")
    proto._app_transport._closed = True
    assert slots <= set(vars(proto))
    assert not slots & set(vars(asyncio.sslproto.SSLProtocol))


# ---------------------------------------------------------------------------
# The established phase against a peer driven record by record
# (csrc/binding/tls_ossl.c calls OpenSSL directly there; the methods path
# and asyncio's own SSLProtocol must behave the same).


def is_direct(loop):
    return is_native_tls(loop) and _tls.direct


class RawClient:
    """A TLS client over ssl.SSLObject and the loop's sock_* calls, so a
    test can send exactly the bytes it wants: records, a close_notify,
    garbage."""

    def __init__(self, loop, sock, ctx=None):
        self.loop = loop
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = (ctx or client_ctx()).wrap_bio(self.incoming, self.outgoing)
        self.plain = bytearray()
        self.eof = False

    @classmethod
    async def connect(cls, loop, port, ctx=None):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        self = cls(loop, sock, ctx)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                if not await self._feed():
                    raise ConnectionError("EOF in handshake") from None
        await self.flush()
        return self

    async def flush(self):
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _feed(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if data:
            self.incoming.write(data)
        return bool(data)

    def records(self, payload):
        """payload encrypted, not sent."""
        self.obj.write(payload)
        return self.outgoing.read()

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    async def read_plain(self, n, timeout=20, pace=0.0):
        async def until():
            while len(self.plain) < n and not self.eof:
                try:
                    while True:
                        chunk = self.obj.read(65536)
                        if not chunk:
                            self.eof = True
                            return
                        self.plain += chunk
                except ssl.SSLWantReadError:
                    pass
                if len(self.plain) >= n:
                    return
                await self.flush()
                if pace:
                    await asyncio.sleep(pace)
                if not await self._feed():
                    self.eof = True

        await asyncio.wait_for(until(), timeout)
        return bytes(self.plain)

    def close(self):
        self.sock.close()


async def raw_server(loop, proto_factory=None, ctx=None):
    protos = []

    def factory():
        p = (proto_factory or (lambda: Peer(loop, echo=True)))()
        protos.append(p)
        return p

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=ctx or server_ctx())
    return server, server.sockets[0].getsockname()[1], protos


async def first(protos):
    while not protos or protos[0].transport is None:
        await asyncio.sleep(0.001)
    return protos[0]


def test_direct_path_is_used(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        tr.write(b"ping" * 100)
        await cp.wait_for(400)
        if is_native_tls(loop):
            for proto in (tr._ssl_protocol, sp.transport._ssl_protocol):
                assert proto._direct_ossl is _tls.direct
        # The SSL object is the stdlib's, whatever path moved the data.
        obj = tr.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        assert obj.version() == "TLSv1.3" and obj.pending() == 0
        assert obj.cipher() == tr.get_extra_info("cipher")
        assert obj.session is not None and obj.server_side is False
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_direct_is_on_here_and_env_forces_methods():
    # CPython's _ssl on Linux: the direct calls resolve and are the default.
    assert _tls.direct is (_tls.available and "free" not in sys.abiflags
                           and os.environ.get("IOLOOP_C_TLS", "") != "methods")
    code = "from ioloop_c import _tls; print(_tls.available, _tls.direct)"
    for value, want in (("methods", "False"), ("native", str(_tls.available))):
        env = dict(os.environ, IOLOOP_C_TLS=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True)
        assert out.stdout.split() == [str(_tls.available), want], out.stderr
    assert _tls.set_direct(False) is False and _tls.direct is False
    assert _tls.set_direct(True) is _tls.available
    with pytest.raises(TypeError):
        _core.TLSWrite._set_direct(42)


def test_many_small_records_in_one_segment(loop):
    # Hundreds of records arrive in one recv(): all decrypted in one step.
    async def main():
        server, port, protos = await raw_server(loop, lambda: Peer(loop))
        client = await RawClient.connect(loop, port)
        sp = await first(protos)
        parts = [os.urandom(1 + i % 37) for i in range(600)]
        wire = b"".join(client.records(p) for p in parts)
        await loop.sock_sendall(client.sock, wire)
        want = b"".join(parts)
        await sp.wait_for(len(want))
        assert bytes(sp.data) == want
        client.close()
        await sp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_small_writes_then_large_to_a_slow_reader(loop):
    async def main():
        server, port, protos = await raw_server(loop, lambda: Peer(loop))
        client = await RawClient.connect(loop, port)
        sp = await first(protos)
        sp.transport.set_write_buffer_limits(high=256 * 1024)
        parts = [os.urandom(1 + i % 300) for i in range(2000)]
        parts += [os.urandom(1 << 20) for _ in range(8)] + [os.urandom(16385), b"x"]
        for p in parts:
            sp.transport.write(p)
        want = b"".join(parts)
        # The client does not read for a while: the server's buffers fill.
        await asyncio.sleep(0.2)
        assert sp.paused == 1 and sp.transport.get_write_buffer_size() > 0
        got = await client.read_plain(len(want), timeout=40, pace=0.001)
        assert got == want
        await asyncio.sleep(0.05)
        assert sp.resumed == 1
        assert sp.transport.get_write_buffer_size() == 0
        client.close()
        await sp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_data_and_close_notify_in_one_segment(loop):
    async def main():
        server, port, protos = await raw_server(loop, lambda: Peer(loop))
        client = await RawClient.connect(loop, port)
        sp = await first(protos)
        payload = os.urandom(30000)
        await loop.sock_sendall(client.sock, client.records(payload) + client.close_notify())
        exc = await asyncio.wait_for(sp.lost, 20)
        assert exc is None
        assert bytes(sp.data) == payload
        assert sp.events == ["made", "eof", "lost"]
        client.close()
        await close_server(server)

    loop.run_until_complete(main())


def test_close_notify_mid_stream_while_server_writes(loop):
    async def main():
        server, port, protos = await raw_server(loop, lambda: Peer(loop))
        client = await RawClient.connect(loop, port)
        sp = await first(protos)
        for _ in range(20):
            sp.transport.write(os.urandom(50000))
        await loop.sock_sendall(client.sock, client.records(b"bye") + client.close_notify())
        exc = await asyncio.wait_for(sp.lost, 20)
        assert exc is None
        assert bytes(sp.data) == b"bye"
        assert sp.events == ["made", "eof", "lost"]
        client.close()
        await close_server(server)

    loop.run_until_complete(main())


GARBAGE = {
    "bad_record_mac": lambda: b"\x17\x03\x03\x00\x40" + os.urandom(64),
    "not_tls": lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


async def garbage_case(loop, kind):
    """The server's connection_lost exception after a client sends garbage
    in the established phase, as (type, library, reason)."""
    server, port, protos = await raw_server(loop)
    client = await RawClient.connect(loop, port)
    sp = await first(protos)
    await loop.sock_sendall(client.sock, client.records(b"ping"))
    assert await client.read_plain(4) == b"ping"
    await loop.sock_sendall(client.sock, GARBAGE[kind]())
    exc = await asyncio.wait_for(sp.lost, 20)
    client.close()
    await close_server(server)
    return type(exc), getattr(exc, "library", None), getattr(exc, "reason", None)


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_after_handshake(loop, kind):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        typ, library, reason = await garbage_case(loop, kind)
        assert issubclass(typ, ssl.SSLError), typ
        assert library == "SSL" and reason
        # Nothing stale left behind in OpenSSL's error queue: a new
        # connection, its handshake and data, go through cleanly.
        server, sp, tr, cp = await tls_pair(loop)
        tr.write(b"after")
        await cp.wait_for(5)
        assert bytes(cp.data) == b"after"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="x")
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        tr.close()
        await cp.lost
        await close_server(server)
        assert not [e for e in errors if "exception" in e and
                    not isinstance(e["exception"], ssl.SSLError)]

    loop.run_until_complete(main())


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_garbage_errors_are_asyncios(kind):
    # The same exception whichever path decrypted: OpenSSL directly, the
    # _ssl methods, asyncio's SSLProtocol on our loop, stock asyncio.
    if not _tls.available:
        pytest.skip("no native TLS on this Python")
    seen = {}
    was = _tls.direct
    try:
        for name, factory, direct in (("direct", ioloop_c.Loop, True),
                                      ("methods", ioloop_c.Loop, False),
                                      ("pytls", _python_tls, was),
                                      ("asyncio", asyncio.SelectorEventLoop, was)):
            _tls.set_direct(direct)
            lp = factory()
            try:
                seen[name] = lp.run_until_complete(garbage_case(lp, kind))
            finally:
                lp.close()
    finally:
        _tls.set_direct(was)
    assert len(set(seen.values())) == 1, seen


def test_context_with_msg_callback_takes_the_methods(loop):
    async def main():
        calls = []
        sctx = server_ctx()
        sctx._msg_callback = lambda *a: calls.append(a[2])
        server, port, protos = await raw_server(loop, ctx=sctx)
        client = await RawClient.connect(loop, port)
        sp = await first(protos)
        await loop.sock_sendall(client.sock, client.records(b"hello"))
        assert await client.read_plain(5) == b"hello"
        if is_native_tls(loop):
            assert sp.transport._ssl_protocol._direct_ossl is False
        n = len(calls)
        assert n > 0
        await loop.sock_sendall(client.sock, client.records(b"again"))
        assert await client.read_plain(10) == b"helloagain"
        assert len(calls) > n  # records still go through the callback
        client.close()
        await sp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_post_handshake_client_auth(loop):
    # TLS 1.3 post-handshake authentication: the server asks for the
    # client's certificate in the established phase; the client's answer
    # arrives among application data.
    tu = _tu()

    async def main():
        sctx = server_ctx(signed=True)
        sctx.verify_mode = ssl.CERT_OPTIONAL
        sctx.post_handshake_auth = True
        sctx.load_verify_locations(tu.SIGNING_CA)
        server, port, protos = await raw_server(loop, ctx=sctx)
        cctx = client_ctx()
        cctx.post_handshake_auth = True
        cctx.load_cert_chain(tu.SIGNED_CERTFILE)
        tr, cp = await loop.create_connection(lambda: Peer(loop), "127.0.0.1", port, ssl=cctx)
        sp = await first(protos)
        tr.write(b"one")
        await cp.wait_for(3)
        sobj = sp.transport.get_extra_info("ssl_object")
        assert sobj.getpeercert() is None
        sobj.verify_client_post_handshake()
        sp.transport.write(b"two")  # carries the CertificateRequest
        await cp.wait_for(6)
        tr.write(b"three")  # after the client's Certificate / Finished
        await cp.wait_for(11)
        for _ in range(200):
            if sobj.getpeercert():
                break
            await asyncio.sleep(0.01)
        cert = sobj.getpeercert()
        assert dict(x[0] for x in cert["subject"])["commonName"] == "localhost"
        assert bytes(cp.data) == b"onetwothree"
        tr.close()
        await cp.lost
        await close_server(server)

    loop.run_until_complete(main())


def test_write_keeps_no_reference(loop):
    async def main():
        server, sp, tr, cp = await tls_pair(loop)
        payloads = [os.urandom(1000), bytearray(os.urandom(1000)),
                    memoryview(os.urandom(2000))[500:1500]]
        before = [sys.getrefcount(p) for p in payloads]
        for _ in range(50):
            for p in payloads:
                tr.write(p)
        del p
        await cp.wait_for(150000)
        gc.collect()
        assert [sys.getrefcount(p) for p in payloads] == before
        with pytest.raises(TypeError):
            tr.write("text")
        # Not contiguous: SSLProtocol's write fails inside, a fatal error
        # of the connection (asyncio's behaviour), not a crash.
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        tr.write(memoryview(bytearray(100))[::2])
        exc = await asyncio.wait_for(cp.lost, 20)
        if not is_uvloop(loop):
            assert isinstance(exc, BufferError), exc
            assert [type(e.get("exception")) for e in errors] == [BufferError]
        await close_server(server)

    loop.run_until_complete(main())
