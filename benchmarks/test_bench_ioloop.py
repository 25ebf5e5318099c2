"""IOLoop micro-benchmarks: stock Tornado (on asyncio) versus ioloop_c.

Each benchmark body is plain Tornado-API code, identical for both
implementations; only the ``loop`` fixture differs.  One round runs one
batch of ``N`` operations, starting and stopping the loop inside the round.
Every round checks its own result, so a loop that skips work cannot look
fast.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

# ---------------------------------------------------------------------------
# 1. add_callback throughput


@pytest.mark.benchmark(group="add_callback_chain")
def test_add_callback_chain(loop: Any, run_bench: Any, n: int) -> None:
    """A callback that re-adds itself until it has run N times: each
    add_callback happens inside the running loop, one callback per tick."""

    def one_round() -> int:
        count = 0

        def cb() -> None:
            nonlocal count
            count += 1
            if count < n:
                loop.add_callback(cb)
            else:
                loop.stop()

        loop.add_callback(cb)
        loop.start()
        return count

    assert run_bench(one_round, n) == n


@pytest.mark.benchmark(group="add_callback_batch")
def test_add_callback_batch(loop: Any, run_bench: Any, n: int) -> None:
    """N callbacks added up front (from one callback running in the loop,
    so both implementations take their in-loop path), all run in the next
    tick, then stop."""

    def one_round() -> int:
        count = 0

        def cb() -> None:
            nonlocal count
            count += 1

        def schedule() -> None:
            add_callback = loop.add_callback
            for _ in range(n):
                add_callback(cb)
            add_callback(loop.stop)

        loop.add_callback(schedule)
        loop.start()
        return count

    assert run_bench(one_round, n) == n


# ---------------------------------------------------------------------------
# 2. timers


def _never_called() -> None:  # pragma: no cover - removed before it is due
    raise AssertionError("a removed timeout fired")


@pytest.mark.benchmark(group="timeout_churn")
def test_timeout_churn(loop: Any, run_bench: Any, n: int) -> None:
    """N times add_timeout(loop.time() + 60, cb) then remove_timeout(handle),
    inside one callback of the running loop."""

    def one_round() -> int:
        done = 0

        def churn() -> None:
            nonlocal done
            for _ in range(n):
                handle = loop.add_timeout(loop.time() + 60, _never_called)
                loop.remove_timeout(handle)
                done += 1
            loop.stop()

        loop.add_callback(churn)
        loop.start()
        return done

    assert run_bench(one_round, n) == n


@pytest.mark.benchmark(group="timers_firing")
def test_timers_firing(loop: Any, run_bench: Any, n: int) -> None:
    """N call_later(0, cb) scheduled from one callback; all of them fire,
    and the last one stops the loop."""

    def one_round() -> int:
        count = 0

        def cb() -> None:
            nonlocal count
            count += 1
            if count == n:
                loop.stop()

        def schedule() -> None:
            for _ in range(n):
                loop.call_later(0, cb)

        loop.add_callback(schedule)
        loop.start()
        return count

    assert run_bench(one_round, n) == n


# ---------------------------------------------------------------------------
# 3. I/O


@pytest.mark.benchmark(group="socketpair_pingpong")
def test_socketpair_pingpong(loop: Any, run_bench: Any, n: int) -> None:
    """Two ends of a socketpair, a READ handler on each (add_handler with
    the socket objects, as IOStream does): each handler reads 1 byte and
    writes 1 byte back.  N round trips, then stop."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    READ = loop.READ

    def one_round() -> int:
        trips = 0

        def on_a(sock: socket.socket, events: int) -> None:
            nonlocal trips
            sock.recv(1)
            trips += 1
            if trips < n:
                sock.send(b"p")
            else:
                loop.stop()

        def on_b(sock: socket.socket, events: int) -> None:
            sock.recv(1)
            sock.send(b"q")

        loop.add_handler(a, on_a, READ)
        loop.add_handler(b, on_b, READ)
        a.send(b"p")
        try:
            loop.start()
        finally:
            loop.remove_handler(a)
            loop.remove_handler(b)
        return trips

    try:
        assert run_bench(one_round, n) == n
    finally:
        a.close()
        b.close()
