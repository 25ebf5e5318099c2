"""The order of one tick (DESIGN.md): each rule, a test."""

import pytest

from conftest import run_for


def test_callbacks_added_during_a_tick_run_in_the_next(loop):
    ticks = []

    def first():
        ticks.append(("first", loop.stats()["ticks"]))
        loop.add_callback(second)

    def second():
        ticks.append(("second", loop.stats()["ticks"]))
        loop.stop()

    loop.add_callback(first)
    loop.start()
    assert ticks[1][1] == ticks[0][1] + 1


def test_self_rearming_callback_does_not_starve_io_or_timers(loop, sockpair):
    a, b = sockpair
    seen = {"spins": 0, "fd": None, "timer": None}

    def spin():
        seen["spins"] += 1
        if seen["fd"] is not None and seen["timer"] is not None:
            loop.stop()
        else:
            loop.add_callback(spin)

    def on_fd(fd, ev):
        seen["fd"] = seen["spins"]
        loop.remove_handler(fd)

    loop.add_handler(a, on_fd, loop.READ)
    loop.call_later(0.01, lambda: seen.__setitem__("timer", seen["spins"]))
    b.send(b"x")
    loop.add_callback(spin)
    loop.start()
    assert seen["fd"] is not None and seen["timer"] is not None


def test_due_timers_are_all_collected_before_any_runs(loop):
    out = []
    past = loop.time() - 10

    def a():
        out.append("a")
        # Already due, and earlier than b, but added while the tick runs:
        # it waits for the next tick, so it runs after b.
        loop.call_at(past - 5, out.append, "late")

    loop.call_at(past, a)
    loop.call_at(past + 1, out.append, "b")
    run_for(loop, 0.02)
    assert out == ["a", "b", "late"]


def test_timer_rearmed_with_zero_delay_does_not_starve_io(loop, sockpair):
    a, b = sockpair
    count = [0]
    got = []

    def tick():
        count[0] += 1
        if got:
            loop.stop()
        else:
            loop.call_later(0, tick)

    loop.add_handler(a, lambda fd, ev: got.append(count[0]), loop.READ)
    b.send(b"x")
    loop.call_later(0, tick)
    loop.start()
    loop.remove_handler(a)
    assert got and got[0] <= 2


def test_cancelled_handle_in_ready_queue_is_skipped(loop):
    out = []
    past = loop.time() - 1
    hb = None

    def a():
        out.append("a")
        loop.remove_timeout(hb)

    loop.call_at(past, a)
    hb = loop.call_at(past + 0.5, out.append, "b")
    run_for(loop, 0.02)
    assert out == ["a"]


def test_handler_removing_another_ready_fd_prevents_its_handler(loop):
    import socket

    pairs = [socket.socketpair() for _ in range(2)]
    ran = []

    def make(i):
        def handler(fd, ev):
            ran.append(i)
            other = pairs[1 - i][0]
            loop.remove_handler(other)
            loop.remove_handler(fd)
        return handler

    for i, (x, _) in enumerate(pairs):
        loop.add_handler(x, make(i), loop.READ)
    for _, y in pairs:
        y.send(b"x")
    run_for(loop, 0.02)
    assert len(ran) == 1
    for x, y in pairs:
        x.close()
        y.close()


def test_stop_before_start_runs_one_pass(loop):
    out = []
    loop.add_callback(out.append, 1)
    loop.call_later(5, out.append, "never")
    loop.stop()
    loop.start()  # returns after one pass, without waiting 5 s
    assert out == [1]
    assert not loop.is_running()


def test_stop_in_callback_finishes_the_tick(loop):
    out = []
    loop.add_callback(loop.stop)
    loop.add_callback(out.append, "same tick")
    loop.start()
    assert out == ["same tick"]


@pytest.mark.parametrize("n", [1, 1000])
def test_callbacks_run_fifo(loop, n):
    out = []
    for i in range(n):
        loop.add_callback(out.append, i)
    loop.add_callback(loop.stop)
    loop.start()
    assert out == list(range(n))
