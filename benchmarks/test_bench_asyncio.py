"""asyncio-API micro-benchmarks: stdlib asyncio, uvloop and ioloop_c.

Each benchmark body is plain asyncio code, identical for the three loops;
only the ``aloop`` fixture differs, and the three variants run one right
after the other in the same pytest run.  One round is one batch of work,
``run_forever`` / ``run_until_complete`` included, and every round checks
its own result.

    .venv/bin/pytest benchmarks/test_bench_asyncio.py --benchmark-only \
        --benchmark-json=asyncio.json
    .venv/bin/python benchmarks/compare.py asyncio.json
"""

from __future__ import annotations

import asyncio
import faulthandler
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import WATCHDOG_SECONDS, N, measure

AIMPLS = ("asyncio", "uvloop", "ioloop_c")

# Round trips per round in the echo benchmarks: each is a few syscalls and
# a pass through Python transports, so a round of N would take seconds.
ECHO_N = max(N // 5, 100)
ECHO_PAYLOAD = b"x" * 100


def make_aloop(aimpl: str) -> asyncio.AbstractEventLoop:
    """A new asyncio event loop of the given implementation."""
    if aimpl == "asyncio":
        return asyncio.new_event_loop()
    if aimpl == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()
    if aimpl == "ioloop_c":
        import ioloop_c

        return ioloop_c.new_event_loop()
    raise ValueError(f"unknown asyncio impl {aimpl!r}")


@pytest.fixture(params=AIMPLS)
def aimpl(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def aloop(aimpl: str) -> Iterator[asyncio.AbstractEventLoop]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    loop = make_aloop(aimpl)
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        faulthandler.cancel_dump_traceback_later()
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def arun_bench(benchmark: Any, aimpl: str) -> Callable[..., Any]:
    """``conftest.run_bench`` for the asyncio loops."""
    return lambda fn, n: measure(benchmark, aimpl, fn, n)


# ---------------------------------------------------------------------------
# 1. call_soon


@pytest.mark.benchmark(group="aio_call_soon_batch")
def test_call_soon_batch(aloop: Any, arun_bench: Any) -> None:
    """One callback schedules N call_soon(cb, i); all run in the next
    iteration, then stop."""
    n = N

    def one_round() -> int:
        total = 0

        def cb(i: int) -> None:
            nonlocal total
            total += i

        def schedule() -> None:
            call_soon = aloop.call_soon
            for i in range(n):
                call_soon(cb, i)
            call_soon(aloop.stop)

        aloop.call_soon(schedule)
        aloop.run_forever()
        return total

    assert arun_bench(one_round, n) == n * (n - 1) // 2


def call_soon_chain_round(aloop: Any, n: int) -> int:
    """One round of the chain: a callback re-schedules itself with
    call_soon until it ran n times; returns the count."""
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count < n:
            aloop.call_soon(cb)
        else:
            aloop.stop()

    aloop.call_soon(cb)
    aloop.run_forever()
    return count


@pytest.mark.benchmark(group="aio_call_soon_chain")
def test_call_soon_chain(aloop: Any, arun_bench: Any) -> None:
    """A callback that re-schedules itself with call_soon until it ran N
    times: one callback per loop iteration."""
    assert arun_bench(lambda: call_soon_chain_round(aloop, N), N) == N


# ---------------------------------------------------------------------------
# 2. timers


def _never_called() -> None:  # pragma: no cover - cancelled before it is due
    raise AssertionError("a cancelled timer fired")


@pytest.mark.benchmark(group="aio_call_later_cancel")
def test_call_later_cancel_churn(aloop: Any, arun_bench: Any) -> None:
    """Inside one callback, N times call_later(60, cb) then cancel()."""
    n = N

    def one_round() -> int:
        done = 0

        def churn() -> None:
            nonlocal done
            call_later = aloop.call_later
            for _ in range(n):
                call_later(60, _never_called).cancel()
                done += 1
            aloop.stop()

        aloop.call_soon(churn)
        aloop.run_forever()
        return done

    assert arun_bench(one_round, n) == n


def _timers_round(aloop: Any, n: int, delay: float) -> int:
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            aloop.stop()

    def schedule() -> None:
        call_later = aloop.call_later
        for _ in range(n):
            call_later(delay, cb)

    aloop.call_soon(schedule)
    aloop.run_forever()
    return count


@pytest.mark.benchmark(group="aio_timers_firing")
def test_timers_firing(aloop: Any, arun_bench: Any) -> None:
    """One callback schedules N call_later(0.001, cb); all fire, the last
    one stops the loop.  The delay is 1 ms because uvloop turns any delay
    under half a millisecond into call_soon, with no timer at all; each
    round therefore includes about 1 ms of waiting on every loop."""
    n = N
    assert arun_bench(lambda: _timers_round(aloop, n, 0.001), n) == n


@pytest.mark.benchmark(group="aio_call_later_zero")
def test_call_later_zero(aloop: Any, arun_bench: Any) -> None:
    """The same with call_later(0, cb): a timer on asyncio and ioloop_c, a
    plain call_soon on uvloop."""
    n = N
    assert arun_bench(lambda: _timers_round(aloop, n, 0), n) == n


# ---------------------------------------------------------------------------
# 3. I/O


@pytest.mark.benchmark(group="aio_add_reader_pingpong")
def test_add_reader_pingpong(aloop: Any, arun_bench: Any) -> None:
    """add_reader on both ends of a socketpair; each reader reads 1 byte
    and writes 1 byte back.  N round trips, then stop."""
    n = N
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    def one_round() -> int:
        trips = 0

        def on_a() -> None:
            nonlocal trips
            a.recv(1)
            trips += 1
            if trips < n:
                a.send(b"p")
            else:
                aloop.stop()

        def on_b() -> None:
            b.recv(1)
            b.send(b"q")

        aloop.add_reader(a.fileno(), on_a)
        aloop.add_reader(b.fileno(), on_b)
        a.send(b"p")
        try:
            aloop.run_forever()
        finally:
            aloop.remove_reader(a.fileno())
            aloop.remove_reader(b.fileno())
        return trips

    try:
        assert arun_bench(one_round, n) == n
    finally:
        a.close()
        b.close()


async def _echo_client(reader: Any, writer: Any, n: int) -> int:
    got = 0
    for _ in range(n):
        writer.write(ECHO_PAYLOAD)
        got += len(await reader.readexactly(len(ECHO_PAYLOAD)))
    return got


@pytest.mark.benchmark(group="aio_streams_echo")
def test_streams_echo(aloop: Any, arun_bench: Any) -> None:
    """asyncio.start_server / open_connection on loopback TCP: the client
    writes 100 bytes and awaits them back, ECHO_N times per round (one
    connection per round)."""
    n = ECHO_N

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
        finally:
            writer.close()

    server = aloop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]

    async def session() -> int:
        # Every loop here sets TCP_NODELAY on its TCP transports.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await _echo_client(reader, writer, n)
        finally:
            writer.close()
            await writer.wait_closed()

    _bench_echo(aloop, arun_bench, server, session, n)


def _bench_echo(aloop: Any, arun_bench: Any, server: Any, session: Any, n: int) -> None:
    """Time ``session()`` (n echoes over one new connection) per round,
    check the byte count, then shut the server down."""
    try:
        done = arun_bench(lambda: aloop.run_until_complete(session()), n)
        assert done == n * len(ECHO_PAYLOAD)
    finally:
        server.close()
        aloop.run_until_complete(server.wait_closed())


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    """Sends ECHO_PAYLOAD, waits for it to come back whole, ``n`` times,
    then resolves ``done`` with the byte count."""

    def __init__(self, n: int, done: asyncio.Future) -> None:
        self.left = n
        self.pending = 0
        self.total = 0
        self.done = done

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.pending = len(ECHO_PAYLOAD)
        self.transport.write(ECHO_PAYLOAD)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        self.total += len(data)
        if self.pending:
            return
        self.left -= 1
        if self.left:
            self._send()
        elif not self.done.done():
            self.done.set_result(self.total)


@pytest.mark.benchmark(group="aio_protocol_echo")
def test_protocol_echo(aloop: Any, arun_bench: Any) -> None:
    """The same echo as ``test_streams_echo`` with bare Protocols on both
    sides (loop.create_server / loop.create_connection)."""
    n = ECHO_N
    server = aloop.run_until_complete(aloop.create_server(_EchoServer, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]

    async def session() -> int:
        done = aloop.create_future()
        transport, _ = await aloop.create_connection(
            lambda: _EchoClient(n, done), "127.0.0.1", port
        )
        try:
            return await done
        finally:
            transport.close()

    _bench_echo(aloop, arun_bench, server, session, n)
