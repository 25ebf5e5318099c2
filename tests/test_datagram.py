"""The datagram transport contract, written once and run on ioloop_c's
native datagram transport (every backend), ioloop_c with asyncio's Python
transport (the escape hatch), stock asyncio and uvloop (where installed).

asyncio's _SelectorDatagramTransport of the running Python is the
reference: a test that fails on the native transport but passes on stock
asyncio is a bug of ours.  Where uvloop behaves differently the test says
so (xfail with the reason) instead of hiding it.
"""

import asyncio
import contextvars
import errno
import gc
import logging
import os
import socket
import sys
import tempfile
import warnings
import weakref
from asyncio import selector_events

import pytest

import ioloop_c
from ioloop_c import _datagram

from conftest import (
    has_ipv6,
    is_native,
    is_uvloop,
    open_fds,
    transport_factories,
    transport_loop_fixture,
)

pytestmark = pytest.mark.timeout(30)

# Empty datagrams sent and a header counted per queued datagram: asyncio
# 3.13 on and 3.12's later releases (not 3.12.1), told by its transport.
HEADER = getattr(selector_events._SelectorDatagramTransport, "_header_size", 0)
NEW_SEMANTICS = HEADER > 0


# Also what the fault and stateful tests run on.
FACTORIES = transport_factories()
loop = transport_loop_fixture()


def is_stock(loop):
    return type(loop) is asyncio.SelectorEventLoop


# asyncio's own datagram transport cannot pause reading in early 3.11
# releases (ReadTransport's NotImplementedError): Debian 12's
# python3.11-dbg, 3.11.2, is one; 3.11.7 has it.
STOCK_DGRAM_PAUSES = (asyncio.selector_events._SelectorDatagramTransport.pause_reading
                      is not asyncio.transports.ReadTransport.pause_reading)


def stock_cannot_pause(loop):
    return not STOCK_DGRAM_PAUSES and not is_native(loop) and not is_uvloop(loop)


def differs(loop, cond, reason):
    if cond:
        pytest.xfail(reason)


class Recorder(asyncio.DatagramProtocol):
    """Records every callback; can echo, raise, or wait for n datagrams."""

    def __init__(self, loop, echo=False, raise_on=None):
        self.loop = loop
        self.echo = echo
        self.raise_on = raise_on
        self.transport = None
        self.got = []
        self.errors = []
        self.events = []
        self.lost = loop.create_future()
        self.ctx_seen = []
        self._want = None
        self._enough = None

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def datagram_received(self, data, addr):
        assert type(data) is bytes
        self.got.append((data, addr))
        self.ctx_seen.append(VAR.get(None))
        if self.echo:
            self.transport.sendto(data, addr)
        self._check()
        if self.raise_on is not None and data == self.raise_on:
            raise RuntimeError("datagram_received failed on purpose")

    def error_received(self, exc):
        self.errors.append(exc)
        self._check()

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    def _check(self):
        if self._want is not None and self._want() and not self._enough.done():
            self._enough.set_result(None)

    async def until(self, cond, timeout=5):
        if cond():
            return
        self._want = cond
        self._enough = self.loop.create_future()
        try:
            await asyncio.wait_for(self._enough, timeout)
        finally:
            self._want = None

    async def wait_count(self, n, timeout=5):
        await self.until(lambda: len(self.got) >= n, timeout)


VAR = contextvars.ContextVar("VAR")


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, 20))


async def endpoint(loop, **kw):
    proto = Recorder(loop, **{k: kw.pop(k) for k in ("echo", "raise_on") if k in kw})
    tr, pr = await loop.create_datagram_endpoint(lambda: proto, **kw)
    assert pr is proto and proto.transport is tr
    return tr, proto


async def close(*trs):
    for tr in trs:
        tr.close()
    for tr in trs:
        await asyncio.wait_for(tr.get_protocol().lost, 5) if tr.get_protocol() else None


def test_native_is_used_and_is_a_datagram_transport(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        if is_native(loop):
            assert type(tr) is _datagram.DatagramTransport
            fd = tr.get_extra_info("socket").fileno()
            assert loop._fd_info(fd) is None  # the transport's own
            assert isinstance(tr, asyncio.DatagramTransport)
            assert isinstance(tr, asyncio.BaseTransport)
        elif isinstance(loop, ioloop_c.Loop):
            assert type(tr).__name__ == "_SelectorDatagramTransport"
        if not is_uvloop(loop) and NEW_SEMANTICS:
            assert isinstance(tr, asyncio.DatagramTransport)
        if not is_uvloop(loop):
            fd = tr.get_extra_info("socket").fileno()
            with pytest.raises(RuntimeError, match="used by transport"):
                loop.add_reader(fd, lambda: None)
        assert p.events == ["made"]
        assert "fd=" in repr(tr) or is_uvloop(loop)
        await close(tr)
        assert p.lost.result() is None
        assert "closed" in repr(tr) or is_uvloop(loop)

    run(loop, main())


def test_unconnected_ipv4_echo_and_extra_info(loop):
    async def main():
        server, sp = await endpoint(loop, local_addr=("127.0.0.1", 0), echo=True)
        saddr = server.get_extra_info("sockname")
        client, cp = await endpoint(loop, local_addr=("127.0.0.1", 0))
        caddr = client.get_extra_info("sockname")
        for i in range(20):
            client.sendto(b"ping %d" % i, saddr)
        await cp.wait_count(20)
        # Loopback keeps order; each datagram whole, with the sender.
        assert [d for d, _ in sp.got] == [b"ping %d" % i for i in range(20)]
        assert all(a == caddr for _, a in sp.got)
        assert all(type(a) is tuple and type(a[0]) is str for _, a in sp.got)
        assert [d for d, _ in cp.got] == [b"ping %d" % i for i in range(20)]
        assert all(a == saddr for _, a in cp.got)
        sock = client.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_DGRAM
        assert client.get_extra_info("peername") is None
        assert client.get_extra_info("nothing", 42) == 42
        assert client.get_protocol() is cp
        assert client.get_write_buffer_size() == 0
        assert not client.is_closing()
        await close(server, client)
        assert client.is_closing() and server.is_closing()

    run(loop, main())


def test_connected_endpoint_and_address_checks(loop):
    async def main():
        server, sp = await endpoint(loop, local_addr=("127.0.0.1", 0), echo=True)
        saddr = server.get_extra_info("sockname")
        client, cp = await endpoint(loop, remote_addr=saddr)
        assert client.get_extra_info("peername") == saddr
        client.sendto(b"one")
        client.sendto(b"two", saddr)
        client.sendto(b"three", None)
        client.sendto(data=b"four", addr=saddr)
        await cp.wait_count(4)
        assert [d for d, _ in cp.got] == [b"one", b"two", b"three", b"four"]
        other = (saddr[0], saddr[1] + 1 if saddr[1] < 65535 else 1)
        with pytest.raises(ValueError, match="Invalid address"):
            client.sendto(b"x", other)
        with pytest.raises(ValueError, match="Invalid address"):
            client.sendto(b"x", "nonsense")
        assert not client.is_closing()
        await close(server, client)

    run(loop, main())


def test_bad_data_is_a_type_error(loop):
    differs(loop, is_uvloop(loop), "uvloop drops sendto(None) and words its TypeError differently")

    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        for bad in ("text", 42, None, [b"a"], object()):
            with pytest.raises(TypeError, match="bytes-like object"):
                tr.sendto(bad, addr)
        with pytest.raises(TypeError):
            tr.sendto()
        # bytes-likes of every kind go through.
        tr.sendto(bytearray(b"ba"), addr)
        tr.sendto(memoryview(b"mv"), addr)
        await p.wait_count(2)
        assert [d for d, _ in p.got] == [b"ba", b"mv"]
        assert not tr.is_closing()
        await close(tr)

    run(loop, main())


def test_empty_datagram_per_version(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"", addr)
        tr.sendto(b"end", addr)
        await p.wait_count(1 if not NEW_SEMANTICS else 2)
        if NEW_SEMANTICS:
            assert [d for d, _ in p.got] == [b"", b"end"]
        else:
            # 3.11's asyncio drops empty datagrams.
            assert [d for d, _ in p.got] == [b"end"]
        await close(tr)

    differs(loop, is_uvloop(loop), "uvloop's empty datagrams do not follow asyncio's version")
    run(loop, main())


def test_ipv6(loop):
    if not has_ipv6():
        pytest.skip("no IPv6 loopback here")

    async def main():
        server, sp = await endpoint(loop, local_addr=("::1", 0), echo=True)
        saddr = server.get_extra_info("sockname")
        client, cp = await endpoint(loop, local_addr=("::1", 0))
        client.sendto(b"six", saddr)
        client.sendto(b"six-2", saddr[:2])  # (host, port) is enough
        await cp.wait_count(2)
        assert [d for d, _ in sp.got] == [b"six", b"six-2"]
        addr = sp.got[0][1]
        assert len(addr) == 4 and addr == client.get_extra_info("sockname")
        assert addr[0] == "::1"
        await close(server, client)

    run(loop, main())


def test_unix_paths_and_abstract_names(loop):
    async def main():
        with tempfile.TemporaryDirectory() as d:
            spath = os.path.join(d, "s.sock")
            cpath = os.path.join(d, "c.sock")
            ssock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ssock.bind(spath)
            csock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            csock.bind(cpath)
            server, sp = await endpoint(loop, sock=ssock, echo=True)
            client, cp = await endpoint(loop, sock=csock)
            client.sendto(b"to a path", spath)
            client.sendto(b"as bytes", os.fsencode(spath))
            await cp.wait_count(2)
            assert sp.got == [(b"to a path", cpath), (b"as bytes", cpath)]
            assert cp.got == [(b"to a path", spath), (b"as bytes", spath)]
            # Linux's abstract namespace: the name comes back as bytes.
            name = b"\0ioloop-c-test-%d" % os.getpid()
            asock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            asock.bind(name)
            abstract, ap = await endpoint(loop, sock=asock, echo=True)
            client.sendto(b"abstract", name)
            await cp.wait_count(3)
            assert ap.got == [(b"abstract", cpath)]
            assert cp.got[2] == (b"abstract", name)
            await close(server, client, abstract)

    if sys.platform != "linux":
        pytest.skip("abstract Unix names are Linux's")
    differs(loop, is_uvloop(loop), "uvloop: Unix datagram addresses as bytes / abstract names")
    run(loop, main())


def test_unix_socketpair_unnamed_peer(loop):
    # asyncio takes the peername '' of a socketpair for "not connected"
    # and fails sendto(data) on it; ioloop_c (both transports) and uvloop
    # treat it as the connected socket it is.
    differs(loop, is_stock(loop), "asyncio: sendto(data) on a socketpair is sendto(data, None)")

    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ta, pa = await endpoint(loop, sock=a)
        tb, pb = await endpoint(loop, sock=b, echo=True)
        ta.sendto(b"hello")
        await pa.wait_count(1)
        assert pb.got == [(b"hello", None)]
        assert pa.got == [(b"hello", None)]
        assert ta.get_extra_info("peername") == ""
        await close(ta, tb)

    run(loop, main())


def test_error_received_on_connection_refused(loop):
    async def main():
        # A port that nobody listens on (bound, then closed).
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()
        s.close()
        tr, p = await endpoint(loop, remote_addr=dead)
        for _ in range(50):
            tr.sendto(b"anyone?")
            try:
                await p.until(lambda: p.errors, timeout=0.1)
            except TimeoutError:
                continue
            break
        assert p.errors and isinstance(p.errors[0], ConnectionRefusedError)
        # The transport stays open and usable.
        assert not tr.is_closing()
        assert "lost" not in p.events
        await close(tr)

    run(loop, main())


def test_oversized_datagram_is_error_received(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"x" * 70000, addr)
        assert len(p.errors) == 1
        assert isinstance(p.errors[0], OSError)
        assert p.errors[0].errno == errno.EMSGSIZE
        assert not tr.is_closing()
        tr.sendto(b"fine", addr)
        await p.wait_count(1)
        assert p.got[0][0] == b"fine"
        await close(tr)

    run(loop, main())


def test_unresolvable_and_named_addresses(loop):
    async def main():
        server, sp = await endpoint(loop, local_addr=("127.0.0.1", 0))
        port = server.get_extra_info("sockname")[1]
        client, cp = await endpoint(loop, local_addr=("127.0.0.1", 0))
        saddr = server.get_extra_info("sockname")
        client.sendto(b"numeric", saddr)
        # A host name goes through the socket module's resolver...
        client.sendto(b"by name", ("localhost", port))
        # ...and leaves the numeric address sent to before intact.
        client.sendto(b"numeric again", saddr)
        await sp.wait_count(3)
        assert [d for d, _ in sp.got] == [b"numeric", b"by name", b"numeric again"]
        # A name that does not resolve is the kernel-side kind of error.
        client.sendto(b"nowhere", ("no-such-host.invalid", port))
        assert len(cp.errors) == 1 and isinstance(cp.errors[0], socket.gaierror)
        assert not client.is_closing()
        await close(server, client)

    differs(loop, is_uvloop(loop), "uvloop resolves no names in sendto()")
    run(loop, main())


def test_bad_address_type_is_fatal(loop):
    # asyncio: the socket's sendto() raises TypeError, which is the
    # transport's fatal error: reported, then connection_lost(exc).
    differs(loop, is_uvloop(loop), "uvloop raises from sendto()")

    async def main():
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.sendto(b"x", "not an address")
        exc = await asyncio.wait_for(p.lost, 5)
        assert isinstance(exc, TypeError)
        assert reports and reports[0]["exception"] is exc
        assert "Fatal write error" in reports[0]["message"]
        assert tr.is_closing()

    run(loop, main())


def test_unconnected_sendto_none_is_fatal(loop):
    differs(loop, is_uvloop(loop), "uvloop raises from sendto()")

    async def main():
        loop.set_exception_handler(lambda lp, ctx: None)
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.sendto(b"x")
        exc = await asyncio.wait_for(p.lost, 5)
        assert isinstance(exc, TypeError)

    run(loop, main())


def test_sendto_after_close_connected_is_dropped_then_warned(loop, caplog):
    differs(loop, is_uvloop(loop), "uvloop raises on a closed transport")

    async def main():
        server, sp = await endpoint(loop, local_addr=("127.0.0.1", 0))
        client, cp = await endpoint(loop, remote_addr=server.get_extra_info("sockname"))
        await close(client)
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(8):
                client.sendto(b"late")
        warned = [r for r in caplog.records if "socket.send() raised" in r.getMessage()]
        assert len(warned) == 4  # from the fifth lost write on
        await asyncio.sleep(0.05)
        assert sp.got == []
        await close(server)

    run(loop, main())


def test_flow_control_with_a_full_socket_buffer(loop):
    async def main():
        with tempfile.TemporaryDirectory() as d:
            rpath = os.path.join(d, "r.sock")
            rsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            rsock.bind(rpath)
            rsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ssock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ssock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            ssock.bind(os.path.join(d, "s.sock"))
            tr, p = await endpoint(loop, sock=ssock)
            tr.set_write_buffer_limits(high=2000, low=500)
            assert tr.get_write_buffer_limits() == (500, 2000)
            sent = []
            payload = b"d" * 200
            i = 0
            while "pause" not in p.events:
                data = b"%05d" % i + payload
                tr.sendto(data, rpath)
                sent.append(data)
                i += 1
                assert i < 10000, "the socket never filled"
            queued = tr.get_write_buffer_size()
            assert queued > 2000
            # The buffered size counts each queued datagram, plus the
            # per-datagram header on 3.12+ (uvloop counts the data only).
            if not is_uvloop(loop):
                assert queued % (len(sent[0]) + HEADER) == 0
                assert p.events == ["made", "pause"]
            # Read everything on the other side: the queue drains,
            # resume_writing() comes once, nothing is lost or reordered.
            rsock.setblocking(False)
            got = []

            def drain():
                while True:
                    try:
                        got.append(rsock.recv(1000))
                    except BlockingIOError:
                        return

            for _ in range(500):
                drain()
                if tr.get_write_buffer_size() == 0 and len(got) == len(sent):
                    break
                await asyncio.sleep(0.005)
            assert got == sent
            assert tr.get_write_buffer_size() == 0
            assert p.events.count("resume") == 1
            assert p.events.index("resume") > p.events.index("pause")
            await close(tr)
            rsock.close()

    run(loop, main())


def test_close_waits_for_queue_and_abort_drops_it(loop):
    async def main():
        with tempfile.TemporaryDirectory() as d:
            rpath = os.path.join(d, "r.sock")
            rsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            rsock.bind(rpath)
            rsock.setblocking(False)
            made = []
            for _ in range(2):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                made.append(await endpoint(loop, sock=s))
            (t1, p1), (t2, p2) = made
            for tr in (t1, t2):
                for i in range(300):
                    tr.sendto(b"%d" % i * 50, rpath)
                    if tr.get_write_buffer_size():
                        break
            assert t1.get_write_buffer_size() and t2.get_write_buffer_size()
            t1.close()
            t2.abort()
            assert t1.is_closing() and t2.is_closing()
            await asyncio.wait_for(p2.lost, 5)
            assert p2.lost.result() is None
            assert not p1.lost.done()  # still flushing
            for _ in range(1000):
                try:
                    rsock.recv(100000)
                except BlockingIOError:
                    if p1.lost.done():
                        break
                    await asyncio.sleep(0.002)
            assert p1.lost.done() and p1.lost.result() is None
            assert p1.events.count("lost") == 1 and p2.events.count("lost") == 1
            rsock.close()

    run(loop, main())


def test_datagram_received_raising_is_reported_and_reading_goes_on(loop):
    # ioloop_c with asyncio's transport fails the transport instead (the
    # loop does that for any transport step that raises).
    differs(loop, isinstance(loop, ioloop_c.Loop) and not loop.native_transport,
            "ioloop_c's loop fails asyncio's transport on a raising callback")
    differs(loop, is_uvloop(loop), "uvloop closes the transport")

    async def main():
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0), raise_on=b"boom")
        addr = tr.get_extra_info("sockname")
        tr.sendto(b"boom", addr)
        tr.sendto(b"after", addr)
        await p.wait_count(2)
        assert [d for d, _ in p.got] == [b"boom", b"after"]
        assert len(reports) == 1
        assert isinstance(reports[0]["exception"], RuntimeError)
        assert not tr.is_closing()
        await close(tr)

    run(loop, main())


def test_pause_and_resume_reading(loop):
    differs(loop, is_uvloop(loop), "uvloop's datagram transport cannot pause reading")
    differs(loop, stock_cannot_pause(loop), "this asyncio's datagram transport has no pause_reading")

    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        for i in range(5):
            tr.sendto(b"%d" % i, addr)
        await asyncio.sleep(0.05)
        assert p.got == []
        tr.resume_reading()
        await p.wait_count(5)
        assert [d for d, _ in p.got] == [b"%d" % i for i in range(5)]
        tr.close()
        assert not tr.is_reading()
        tr.resume_reading()  # no effect once closing
        await asyncio.wait_for(p.lost, 5)

    run(loop, main())


def test_set_protocol(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        q = Recorder(loop)
        tr.set_protocol(q)
        assert tr.get_protocol() is q
        tr.sendto(b"to q", addr)
        await q.wait_count(1)
        assert p.got == [] and q.got[0][0] == b"to q"
        tr.close()
        assert await asyncio.wait_for(q.lost, 5) is None
        assert not p.lost.done()

    run(loop, main())


def test_callbacks_run_in_the_context_of_creation(loop):
    async def main():
        VAR.set("at creation")
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        VAR.set("later")
        tr.sendto(b"ctx", tr.get_extra_info("sockname"))
        await p.wait_count(1)
        assert p.ctx_seen == ["at creation"]
        await close(tr)

    differs(loop, is_uvloop(loop), "uvloop runs them in another context")
    run(loop, main())


def test_connection_lost_is_scheduled_not_called(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        tr.close()
        assert p.events == ["made"]
        tr.close()  # twice is harmless
        tr.abort()
        await asyncio.wait_for(p.lost, 5)
        await asyncio.sleep(0)
        assert p.events == ["made", "lost"]

    run(loop, main())


def test_many_datagrams_in_order_no_fd_leak(loop):
    async def main():
        for _ in range(20):
            server, sp = await endpoint(loop, local_addr=("127.0.0.1", 0), echo=True)
            client, cp = await endpoint(loop, remote_addr=server.get_extra_info("sockname"))
            for i in range(50):
                client.sendto(b"%d" % i)
            await cp.wait_count(50)
            assert [d for d, _ in cp.got] == [b"%d" % i for i in range(50)]
            await close(server, client)

    gc.collect()
    before = open_fds()
    run(loop, main())
    gc.collect()
    assert open_fds() == before


def test_refcounts_of_data_and_addresses(loop):
    differs(loop, is_uvloop(loop), "uvloop keeps its own address cache")

    async def main():
        with tempfile.TemporaryDirectory() as d:
            rpath = os.path.join(d, "r.sock")
            rsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            rsock.bind(rpath)
            rsock.setblocking(False)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            tr, p = await endpoint(loop, sock=s)
            data = b"q" * 300
            path = "".join([rpath])  # a str object of our own
            rc_data, rc_path = sys.getrefcount(data), sys.getrefcount(path)
            for _ in range(200):
                tr.sendto(data, path)
            assert tr.get_write_buffer_size() > 0  # some were queued
            for _ in range(1000):
                try:
                    rsock.recv(1000)
                except BlockingIOError:
                    if tr.get_write_buffer_size() == 0:
                        break
                    await asyncio.sleep(0.002)
            assert tr.get_write_buffer_size() == 0
            await close(tr)
            gc.collect()
            assert sys.getrefcount(data) == rc_data
            # The native transport may keep the last address it parsed
            # until it is released; it is released now.
            assert sys.getrefcount(path) == rc_path
            rsock.close()

    run(loop, main())


def test_closed_transport_and_protocol_are_freed(loop):
    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        ref = weakref.ref(p)
        tr.sendto(b"x", tr.get_extra_info("sockname"))
        await p.wait_count(1)
        await close(tr)
        return ref

    ref = run(loop, main())
    for _ in range(3):
        gc.collect()
    assert ref() is None


def test_dropped_open_transport_warns(loop):
    differs(loop, is_uvloop(loop), "uvloop warns differently")
    differs(loop, stock_cannot_pause(loop), "this asyncio's datagram transport has no pause_reading")

    async def main():
        tr, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        # Paused, nothing queued: the loop no longer holds it.
        tr.pause_reading()
        sock = tr.get_extra_info("socket")
        fd = sock.fileno()
        del tr, p, sock
        return fd

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fd = run(loop, main())
        for _ in range(3):
            gc.collect()
    assert any(
        issubclass(x.category, ResourceWarning) and "unclosed transport" in str(x.message)
        for x in w
    )
    with pytest.raises(OSError):
        os.fstat(fd)  # the socket was closed


def test_escape_hatch_keeps_asyncio_transport(monkeypatch):
    monkeypatch.setenv("IOLOOP_C_TRANSPORT", "python")
    lp = ioloop_c.Loop()
    try:
        assert not lp.native_transport

        async def main():
            tr, p = await lp.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
            )
            assert type(tr).__name__ == "_SelectorDatagramTransport"
            tr.close()
            await asyncio.sleep(0.01)

        lp.run_until_complete(main())
    finally:
        lp.close()


def test_non_socket_and_other_families_fall_back():
    lp = ioloop_c.Loop()
    try:
        assert lp.native_transport
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        assert not _datagram.native_for(s)
        s.close()
        assert not _datagram.native_for(object())
        d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        assert _datagram.native_for(d)
        d.close()
    finally:
        lp.close()


def test_native_type_exists_on_this_python():
    assert _datagram.DatagramTransport is not None
    assert issubclass(_datagram.DatagramTransport, asyncio.DatagramTransport)
    core = ioloop_c._core.DatagramTransport
    # Made without set-up (asyncio's __init__ would insist on a loop):
    # every method refuses or does nothing, none crashes.
    with pytest.raises(RuntimeError):
        core.__new__(core).sendto(b"x")
    t = core.__new__(core)
    assert not t.is_closing() and t.get_protocol() is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(TypeError):
        t._native_init(object(), s, None, None, False, 0, False)
    t.close()
    t.abort()
    assert t.get_write_buffer_size() == 0
