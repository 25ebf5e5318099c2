"""add_timeout, call_later, call_at, remove_timeout.

Deadlines that must be reached are kept short and bounds generous; where
order is all that matters, deadlines are in the past so nothing waits on
the clock.  Bad deadlines (NaN, wrong types, inf) are in test_bad_input.py.
"""

import asyncio
import datetime
import logging
import time

import pytest

from conftest import run_for, run_until

pytestmark = pytest.mark.timeout(30)


def test_all_four_ways_fire_in_deadline_order(loop):
    out = []
    now = loop.time()
    loop.add_timeout(now + 0.03, out.append, "c")
    loop.add_timeout(datetime.timedelta(seconds=0.01), out.append, "a")
    loop.call_later(0.02, out.append, "b")
    loop.call_at(now + 0.04, lambda: (out.append("d"), loop.stop()))
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert out == ["a", "b", "c", "d"]


@pytest.mark.parametrize("how", ["call_later", "call_at", "add_timeout", "timedelta"])
def test_never_fires_early(loop, how):
    delay = 0.05
    fired = []
    t0 = time.monotonic()

    def cb():
        fired.append(time.monotonic())
        loop.stop()

    if how == "call_later":
        loop.call_later(delay, cb)
    elif how == "call_at":
        loop.call_at(loop.time() + delay, cb)
    elif how == "add_timeout":
        loop.add_timeout(loop.time() + delay, cb)
    else:
        loop.add_timeout(datetime.timedelta(seconds=delay), cb)
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert fired, "timer did not fire"
    # A 1 ms allowance for the wall-clock to monotonic conversion.
    assert fired[0] - t0 >= delay - 0.001


def test_deadline_is_in_time_terms(loop):
    # call_at / add_timeout take time() (wall-clock) deadlines: one a
    # second in the past is due at once, one 100 s ahead is not.
    out = []
    loop.call_at(time.time() - 1, out.append, "past")
    far = loop.add_timeout(time.time() + 100, out.append, "far")
    run_until(loop, lambda: out, timeout=2)
    run_for(loop, 0.02)
    loop.remove_timeout(far)
    assert out == ["past"]


def test_args_and_kwargs_are_passed(loop):
    out = []
    past = loop.time() - 1
    loop.call_later(0, lambda a, b=0: out.append(a + b), 1, b=2)
    loop.call_at(past, lambda a, b=0: out.append(a * b), 3, b=4)
    loop.add_timeout(past, lambda *, k: out.append(k), k=5)
    loop.add_timeout(datetime.timedelta(0), lambda x, *, k: out.append(x + k), 6, k=7)
    run_until(loop, lambda: len(out) == 4, timeout=2)
    assert sorted(out) == [3, 5, 12, 13]


def test_equal_deadlines_fire_in_order_added(loop):
    out = []
    when = loop.time() + 0.01
    for i in range(50):
        loop.call_at(when, out.append, i)
    loop.call_at(when, loop.stop)
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert out == list(range(50))


def test_remove_timeout_before_it_fires(loop):
    out = []
    h = loop.add_timeout(loop.time() + 0.01, out.append, "removed")
    h2 = loop.call_later(0.01, out.append, "removed too")
    h3 = loop.call_at(loop.time() + 0.01, out.append, "removed three")
    loop.remove_timeout(h)
    loop.remove_timeout(h2)
    loop.remove_timeout(h3)
    loop.call_later(0.02, out.append, "kept")
    run_until(loop, lambda: out, timeout=2)
    run_for(loop, 0.03)
    assert out == ["kept"]


def test_remove_timeout_twice_and_after_firing(loop):
    out = []
    h = loop.add_timeout(loop.time() + 0.01, out.append, "no")
    loop.remove_timeout(h)
    loop.remove_timeout(h)  # twice: no error
    h2 = loop.call_later(0.0, out.append, "yes")
    run_until(loop, lambda: out, timeout=2)
    loop.remove_timeout(h2)  # after it fired: no error
    loop.remove_timeout(h2)
    run_for(loop, 0.02)
    assert out == ["yes"]


def test_handle_cancel_is_remove_timeout(loop):
    out = []
    h = loop.call_later(0, out.append, "cancelled")
    h.cancel()
    loop.remove_timeout(h)  # after cancel(): no error
    loop.call_later(0, out.append, "kept")
    run_until(loop, lambda: out, timeout=2)
    run_for(loop, 0.01)
    assert out == ["kept"]


def test_removing_one_of_equal_deadlines_keeps_the_others_in_order(loop):
    out = []
    past = loop.time() - 1
    handles = [loop.call_at(past, out.append, i) for i in range(10)]
    for i in (0, 4, 9):
        loop.remove_timeout(handles[i])
    loop.stop()
    loop.start()
    assert out == [1, 2, 3, 5, 6, 7, 8]


def test_timer_removing_itself_while_running(loop):
    out = []
    cell = []

    def cb():
        out.append("ran")
        loop.remove_timeout(cell[0])

    cell.append(loop.call_later(0, cb))
    run_until(loop, lambda: out, timeout=2)
    run_for(loop, 0.01)
    assert out == ["ran"]


def test_timer_scheduled_from_a_timer(loop):
    out = []

    def first():
        out.append(("first", time.monotonic()))
        loop.call_later(0.02, lambda: (out.append(("second", time.monotonic())), loop.stop()))

    loop.call_later(0.01, first)
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert [name for name, _ in out] == ["first", "second"]
    assert out[1][1] - out[0][1] >= 0.02 - 0.001


def test_negative_delay_runs_at_once_in_order(loop):
    out = []
    loop.call_later(-5, out.append, 1)
    loop.call_later(-1, out.append, 2)
    loop.call_later(0, out.append, 3)
    loop.stop()
    loop.start()  # one pass: all three are due
    assert out == [1, 2, 3]


def test_many_timers_half_removed(loop):
    n = 20000
    fired = []
    past = loop.time() - 1
    handles = [loop.call_at(past + 0.001 * (i % 7), fired.append, i) for i in range(n)]
    for h in handles[::2]:
        loop.remove_timeout(h)
    loop.stop()
    loop.start()
    expected = sorted(range(1, n, 2), key=lambda i: (i % 7, i))
    assert fired == expected


def test_int_deadlines_and_negative_timedelta(loop):
    out = []
    loop.add_timeout(int(loop.time()) - 1, out.append, "int deadline")
    loop.call_at(int(loop.time()) - 1, out.append, "int call_at")
    loop.add_timeout(datetime.timedelta(seconds=-1), out.append, "negative timedelta")
    loop.stop()
    loop.start()
    assert out == ["int deadline", "int call_at", "negative timedelta"]


def test_awaitable_returned_by_a_timer_is_awaited_and_its_error_logged(loop, caplog):
    out = []

    async def ok():
        await asyncio.sleep(0)
        out.append("ok")

    async def bad():
        await asyncio.sleep(0)
        raise KeyError("timer coroutine")

    loop.call_later(0, ok)
    loop.call_at(loop.time() - 1, bad)

    def errors():
        return [r for r in caplog.records
                if r.name == "ioloop_c" and r.exc_info and r.exc_info[0] is KeyError]

    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: out and errors(), timeout=5)
    assert out == ["ok"]
    assert len(errors()) == 1
