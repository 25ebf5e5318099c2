"""PeriodicCallback: runs repeatedly, never early, stop() works,
is_running() tells.

Tests count calls rather than time them: the loop is stopped by the
callback itself after N calls, with a generous guard timer.
"""

import asyncio
import datetime
import logging
import time

import pytest

import ioloop_c

from conftest import run_for, run_until

pytestmark = pytest.mark.timeout(30)


def test_runs_repeatedly_not_early_and_stops(loop):
    period = 0.01
    calls = []

    def cb():
        calls.append(time.monotonic())
        if len(calls) == 5:
            loop.stop()

    pc = ioloop_c.PeriodicCallback(cb, period * 1000)
    assert not pc.is_running()
    t0 = time.monotonic()
    pc.start()
    assert pc.is_running()
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert len(calls) == 5
    # The k-th call is never before k periods from start (1 ms allowance
    # for the wall-clock deadlines).
    for k, t in enumerate(calls, 1):
        assert t - t0 >= k * period - 0.001
    pc.stop()
    assert not pc.is_running()
    run_for(loop, 0.05)
    assert len(calls) == 5


def test_stop_from_inside_the_callback(loop):
    calls = []

    def cb():
        calls.append(1)
        if len(calls) == 3:
            pc.stop()

    pc = ioloop_c.PeriodicCallback(cb, 5)
    pc.start()
    run_until(loop, lambda: len(calls) >= 3, timeout=5)
    run_for(loop, 0.05)
    assert calls == [1, 1, 1]
    assert not pc.is_running()


def test_restart_after_stop(loop):
    calls = []
    pc = ioloop_c.PeriodicCallback(lambda: calls.append(1), 5)
    pc.start()
    assert run_until(loop, lambda: len(calls) >= 2, timeout=5)
    pc.stop()
    n = len(calls)
    run_for(loop, 0.03)
    assert len(calls) == n
    pc.start()
    assert pc.is_running()
    assert run_until(loop, lambda: len(calls) >= n + 2, timeout=5)
    pc.stop()


def test_timedelta_period(loop):
    calls = []
    pc = ioloop_c.PeriodicCallback(lambda: calls.append(1), datetime.timedelta(milliseconds=5))
    pc.start()
    assert run_until(loop, lambda: len(calls) >= 3, timeout=5)
    pc.stop()


def test_uses_the_current_loop(backend):
    other = ioloop_c.IOLoop(backend=backend, make_current=False)
    lp = ioloop_c.IOLoop(backend=backend)  # current
    calls = []
    try:
        pc = ioloop_c.PeriodicCallback(lambda: calls.append(1), 5)
        pc.start()
        assert run_until(lp, lambda: calls, timeout=5)
        pc.stop()
    finally:
        lp.close()
        other.close()
        ioloop_c.IOLoop.clear_current()


def test_awaits_coroutine_callbacks(loop):
    calls = []
    active = [0]
    overlap = []

    async def cb():
        active[0] += 1
        overlap.append(active[0])
        await asyncio.sleep(0.01)
        calls.append(1)
        active[0] -= 1

    pc = ioloop_c.PeriodicCallback(cb, 2)
    pc.start()
    assert run_until(loop, lambda: len(calls) >= 3, timeout=5)
    pc.stop()
    run_for(loop, 0.03)  # let a call in flight finish
    # The next call waits for the previous awaitable: they never overlap.
    assert max(overlap) == 1


def test_exception_logged_and_keeps_running(loop, caplog):
    calls = []

    def cb():
        calls.append(1)
        raise ValueError("periodic")

    pc = ioloop_c.PeriodicCallback(cb, 5)
    pc.start()
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        assert run_until(loop, lambda: len(calls) >= 3, timeout=5)
    pc.stop()
    errors = [r for r in caplog.records
              if r.name == "ioloop_c" and r.exc_info and r.exc_info[0] is ValueError]
    assert len(errors) == len(calls)


@pytest.mark.parametrize("bad", [0, -5])
def test_bad_period(bad):
    with pytest.raises(ValueError):
        ioloop_c.PeriodicCallback(lambda: None, bad)
