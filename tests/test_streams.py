"""asyncio's streams on the native transport, whose read step runs
StreamReaderProtocol.data_received() and StreamReader.feed_data() in C
while those are asyncio's own (csrc/binding/transport_stream.c).

Written once and run on every loop of the transport tests: what asyncio's
Python does with a read (buffer, wake the reader, pause past twice the
limit, drop data once the reader is gone, call a subclass's or a
replacement's methods) must be what happens on ours.
"""

import asyncio
import gc
import inspect
import random
import sys

import pytest

import ioloop_c
from ioloop_c import _core, _transport

from conftest import is_native, transport_loop_fixture

pytestmark = pytest.mark.timeout(60)

loop = transport_loop_fixture()


# The server side's writers of each server a test starts.  From Python
# 3.12.1 on, a server's wait_closed() also waits for its connections, and on
# 3.12 a connection whose handler returned without closing its writer stays
# open (3.13's StreamWriter closes its transport when it is collected), so
# the tests close the server's side of each connection themselves.
_SERVED: dict[int, list] = {}


async def _start_server(handler):
    """asyncio.start_server(handler) on 127.0.0.1, with the server side's
    writers kept for _close_server(); a plain-function handler stays one."""
    writers = []
    if inspect.iscoroutinefunction(handler):
        async def run(r, w):
            writers.append(w)
            await handler(r, w)
    else:
        def run(r, w):
            writers.append(w)
            return handler(r, w)
    server = await asyncio.start_server(run, "127.0.0.1", 0)
    _SERVED[id(server)] = writers
    return server


async def _close_server(server):
    for w in _SERVED.pop(id(server), ()):
        w.close()
    server.close()
    await server.wait_closed()


async def _pair(handler=None, limit=2**16, reader_factory=None, protocol_cls=None):
    """A server that runs handler(reader, writer) and a client whose
    reader and protocol may be of the given classes: (server, client
    reader, client writer)."""
    loop = asyncio.get_running_loop()
    server = await _start_server(handler or (lambda r, w: None))
    port = server.sockets[0].getsockname()[1]
    reader = (reader_factory or asyncio.StreamReader)(limit=limit, loop=loop)
    proto_cls = protocol_cls or asyncio.StreamReaderProtocol
    transport, protocol = await loop.create_connection(
        lambda: proto_cls(reader, loop=loop), "127.0.0.1", port
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return server, reader, writer


async def _close(server, writer):
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    await _close_server(server)


def _sender(chunks):
    async def handle(reader, writer):
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        writer.close()

    return handle


def test_every_byte_arrives_in_order_across_sizes(loop):
    rng = random.Random(5)
    sizes = [1, 2, 99, 100, 447, 448, 449, 4096, 65536, 131072, 300000]
    sizes += [rng.randrange(1, 70000) for _ in range(40)]
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    want = b"".join(chunks)

    async def main():
        server, reader, writer = await _pair(_sender(chunks))
        got = bytearray()
        while block := await reader.read(rng.randrange(1, 100000)):
            got += block
        assert reader.at_eof()
        await _close(server, writer)
        return bytes(got)

    assert loop.run_until_complete(main()) == want


def test_readers_waiting_in_each_read_call_are_woken(loop):
    async def main():
        async def handle(r, w):
            for piece in (b"ab", b"c\n", b"12", b"345", b"tail"):
                await asyncio.sleep(0.01)
                w.write(piece)
            w.close()

        server, reader, writer = await _pair(handle)
        assert await reader.readline() == b"abc\n"
        assert await reader.readexactly(5) == b"12345"
        assert await reader.read() == b"tail"
        await _close(server, writer)

    loop.run_until_complete(main())


def test_past_twice_the_limit_the_transport_pauses_then_resumes(loop):
    limit = 1024
    total = 256 * 1024

    async def main():
        async def handle(r, w):
            w.write(b"z" * total)
            await w.drain()
            w.close()

        server, reader, writer = await _pair(handle, limit=limit)
        for _ in range(500):
            if reader._paused:
                break
            await asyncio.sleep(0.005)
        assert reader._paused
        assert not writer.transport.is_reading()
        # A read adds at most one recv() past 2 * limit before the pause.
        assert 2 * limit < len(reader._buffer) <= 2 * limit + 256 * 1024
        got = 0
        while block := await reader.read(4096):
            got += len(block)
        assert got == total
        assert not reader._paused
        await _close(server, writer)

    loop.run_until_complete(main())


def test_a_cancelled_waiter_is_not_set_and_the_data_is_kept(loop):
    async def main():
        sent = asyncio.Event()

        async def handle(r, w):
            await sent.wait()
            w.write(b"kept")
            await w.drain()

        server, reader, writer = await _pair(handle)
        waiter = asyncio.get_running_loop().create_future()
        waiter.cancel()
        reader._waiter = waiter  # as a read task cancelled but not yet run leaves it
        sent.set()
        for _ in range(500):
            if reader._buffer:
                break
            await asyncio.sleep(0.005)
        assert bytes(reader._buffer) == b"kept"
        assert reader._waiter is None
        assert waiter.cancelled()
        assert not writer.transport.is_closing()
        assert await reader.read(10) == b"kept"
        await _close(server, writer)

    loop.run_until_complete(main())


class CountingReader(asyncio.StreamReader):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fed = []

    def feed_data(self, data):
        self.fed.append(len(data))
        super().feed_data(data)


class CountingProtocol(asyncio.StreamReaderProtocol):
    received = 0

    def data_received(self, data):
        type(self).received += len(data)
        super().data_received(data)


def test_a_reader_subclass_has_its_feed_data_called(loop):
    async def main():
        server, reader, writer = await _pair(
            _sender([b"a" * 10, b"b" * 20]), reader_factory=CountingReader
        )
        assert await reader.read() == b"a" * 10 + b"b" * 20
        assert sum(reader.fed) == 30
        await _close(server, writer)

    loop.run_until_complete(main())


def test_a_protocol_subclass_has_its_data_received_called(loop):
    CountingProtocol.received = 0

    async def main():
        server, reader, writer = await _pair(_sender([b"q" * 1000]), protocol_cls=CountingProtocol)
        assert await reader.read() == b"q" * 1000
        assert CountingProtocol.received == 1000
        await _close(server, writer)

    loop.run_until_complete(main())


@pytest.mark.parametrize(
    "where", ["feed_data", "data_received", "_stream_reader", "_wakeup_waiter"]
)
def test_a_function_replaced_on_asyncios_class_is_called(loop, monkeypatch, where):
    calls = []
    if where in ("feed_data", "_wakeup_waiter"):
        cls = asyncio.StreamReader
    else:
        cls = asyncio.StreamReaderProtocol
    original = cls.__dict__[where]
    if isinstance(original, property):

        def getter(self):
            calls.append(where)
            return original.fget(self)

        monkeypatch.setattr(cls, where, property(getter))
    else:

        def replacement(self, *args):
            calls.append(where)
            return original(self, *args)

        monkeypatch.setattr(cls, where, replacement)

    async def main():
        go, release = asyncio.Event(), asyncio.Event()

        async def handle(r, w):
            await go.wait()
            w.write(b"r" * 50)
            await release.wait()
            w.close()

        server, reader, writer = await _pair(handle)
        # Counted from after connection_made() to before EOF, which use two
        # of them too.
        calls.clear()
        go.set()
        assert await reader.readexactly(50) == b"r" * 50
        on_data = len(calls)
        release.set()
        assert await reader.read() == b""
        await _close(server, writer)
        return on_data

    assert loop.run_until_complete(main()) >= 1, (
        f"the replaced {where} was not called for the data"
    )


def test_data_for_a_reader_that_is_gone_is_dropped_quietly(loop):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        go = asyncio.Event()
        done = asyncio.Event()

        async def handle(r, w):
            await go.wait()
            w.write(b"nobody reads this")
            await w.drain()
            await asyncio.sleep(0.05)
            w.write(b"nor this")
            await w.drain()
            done.set()

        lp = asyncio.get_running_loop()
        server = await _start_server(handle)
        port = server.sockets[0].getsockname()[1]
        # The protocol holds its reader weakly when there is no callback.
        transport, protocol = await lp.create_connection(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=lp), loop=lp),
            "127.0.0.1",
            port,
        )
        gc.collect()
        assert protocol._stream_reader is None
        go.set()
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)
        assert not transport.is_closing()
        transport.close()
        await _close_server(server)

    loop.run_until_complete(main())
    assert reports == []


def test_a_buffer_that_cannot_grow_is_the_transports_fatal_error(loop):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))

    async def main():
        go = asyncio.Event()

        async def handle(r, w):
            await go.wait()
            w.write(b"x" * 100)
            await w.drain()
            await asyncio.sleep(1)

        server, reader, writer = await _pair(handle)
        reader._buffer.extend(b"held")
        view = memoryview(reader._buffer)  # a bytearray with exports cannot be resized
        go.set()
        for _ in range(500):
            if writer.transport.is_closing():
                break
            await asyncio.sleep(0.005)
        assert writer.transport.is_closing()
        view.release()
        assert bytes(reader._buffer) == b"held"
        await _close_server(server)

    loop.run_until_complete(main())
    assert len(reports) == 1
    assert isinstance(reports[0]["exception"], BufferError)
    if "uvloop" not in type(loop).__module__:
        assert reports[0]["message"] == "Fatal error: protocol.data_received() call failed."


def _python_frames_per_read(loop, **pair_kwargs):
    """Names of the Python functions run while the client's transport
    reads 20 messages."""
    names = set()

    def prof(frame, event, arg):
        if event == "call":
            names.add(frame.f_code.co_name)

    async def main():
        async def handle(r, w):
            while data := await r.read(100):
                w.write(data)
                await w.drain()
            w.close()

        server, reader, writer = await _pair(handle, **pair_kwargs)
        sys.setprofile(prof)
        try:
            for _ in range(20):
                writer.write(b"m" * 100)
                await writer.drain()
                await reader.readexactly(100)
        finally:
            sys.setprofile(None)
        await _close(server, writer)

    loop.run_until_complete(main())
    return names


def test_the_read_step_runs_in_c_for_asyncios_own_classes(loop):
    if not is_native(loop):
        pytest.skip("the C read step is the native transport's")
    assert _transport._STREAMS_NATIVE
    names = _python_frames_per_read(loop)
    assert not names & {"data_received", "feed_data", "_wakeup_waiter", "_stream_reader"}
    assert "readexactly" in names  # the profile saw the reads
    names = _python_frames_per_read(loop, reader_factory=CountingReader)
    assert {"data_received", "feed_data"} <= names


def test_streams_configure_refuses_what_the_classes_do_not_hold():
    p, r = asyncio.StreamReaderProtocol, asyncio.StreamReader
    funcs = [
        p.__dict__["data_received"],
        p.__dict__["_stream_reader"],
        r.__dict__["feed_data"],
        r.__dict__["_wakeup_waiter"],
    ]
    with pytest.raises(ValueError, match="feed_data"):
        _core._streams_configure(p, r, funcs[0], funcs[1], lambda *a: None, funcs[3])
    with pytest.raises(TypeError):
        _core._streams_configure(p, "not a class", *funcs)
    # Still registered as before: the C step still runs.
    lp = ioloop_c.Loop()
    try:
        if lp.native_transport:
            assert not _python_frames_per_read(lp) & {"feed_data", "data_received"}
    finally:
        lp.close()
