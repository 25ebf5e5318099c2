"""PeriodicCallback."""

import asyncio

import pytest

import ioloop_c
from conftest import run_for


def test_runs_repeatedly_and_stops(loop):
    calls = []
    pc = ioloop_c.PeriodicCallback(lambda: calls.append(loop.time()), 10)
    pc.start()
    assert pc.is_running()
    run_for(loop, 0.12)
    pc.stop()
    assert not pc.is_running()
    n = len(calls)
    assert 3 <= n <= 13
    run_for(loop, 0.05)
    assert len(calls) == n
    assert all(b > a for a, b in zip(calls, calls[1:]))


def test_awaits_coroutine_callbacks(loop):
    calls = []

    async def cb():
        await asyncio.sleep(0)
        calls.append(1)

    pc = ioloop_c.PeriodicCallback(cb, 5)
    pc.start()
    run_for(loop, 0.06)
    pc.stop()
    run_for(loop, 0.01)  # let a call in flight finish
    assert len(calls) >= 2


def test_exception_logged_and_keeps_running(loop, caplog):
    calls = []

    def cb():
        calls.append(1)
        raise ValueError("periodic")

    pc = ioloop_c.PeriodicCallback(cb, 5)
    pc.start()
    with caplog.at_level("ERROR", logger="ioloop_c"):
        run_for(loop, 0.06)
    pc.stop()
    assert len(calls) >= 2
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)


def test_bad_period():
    with pytest.raises(ValueError):
        ioloop_c.PeriodicCallback(lambda: None, 0)
