"""What ioloop_c's callback timing and slow-callback detector cost.

The same call_soon workloads as ``test_bench_asyncio.py``, on ioloop_c
only, in two modes measured side by side:

* ``ioloop_c``: statistics on and the slow-callback detector armed at
  0.1 s (every callback timed; none is slow enough to be reported);
* ``timing_off``: ``set_callback_timing(False)``: counters only, one clock
  read per batch instead of one per callback.

``compare.py`` prints timing_off / ioloop_c: 1.00x is free, 0.97x is a
3% cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_bench_asyncio import call_soon_chain_round, make_aloop

from conftest import N, measure

MODES = ("ioloop_c", "timing_off")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tloop(mode: str) -> Iterator[Any]:
    loop = make_aloop("ioloop_c")
    if mode == "timing_off":
        loop.set_callback_timing(False)
    else:
        loop.set_slow_callback_threshold(0.1)
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def trun_bench(benchmark: Any, mode: str) -> Callable[..., Any]:
    return lambda fn, n: measure(benchmark, mode, fn, n)


@pytest.mark.benchmark(group="stats_call_soon_batch")
def test_call_soon_batch(tloop: Any, trun_bench: Any, mode: str) -> None:
    """N call_soon(cb) from one callback; all run in one batch."""
    n = N

    def one_round() -> int:
        count = 0

        def cb() -> None:
            nonlocal count
            count += 1

        def schedule() -> None:
            call_soon = tloop.call_soon
            for _ in range(n):
                call_soon(cb)
            call_soon(tloop.stop)

        tloop.call_soon(schedule)
        tloop.run_forever()
        return count

    assert trun_bench(one_round, n) == n
    # The mode really is what it says.
    assert tloop.stats()["callback_timing"] is (mode == "ioloop_c")


@pytest.mark.benchmark(group="stats_call_soon_chain")
def test_call_soon_chain(tloop: Any, trun_bench: Any) -> None:
    """A callback re-scheduling itself N times: one callback per tick, so
    the per-tick costs count too."""
    assert trun_bench(lambda: call_soon_chain_round(tloop, N), N) == N
