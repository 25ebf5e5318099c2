"""The order of one tick (DESIGN.md, "One tick of the loop"): each rule, a
test.

1. callbacks added while a tick runs its ready queue run in the next tick,
   so a callback that re-adds itself cannot starve fds or due timers;
2. every due timer is moved to the ready queue before any of them runs;
3. a handler that removes another fd ready in the same tick prevents that
   fd's handler from running;
4. stop() before start() makes start() return after one pass, and
   start() while running raises RuntimeError.
"""

import socket

import pytest

from conftest import run_for

pytestmark = pytest.mark.timeout(30)


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
    assert [name for name, _ in ticks] == ["first", "second"]
    assert ticks[1][1] == ticks[0][1] + 1


def test_self_readding_callback_does_not_starve_an_fd(loop, sockpair):
    # The fd becomes ready while a callback keeps re-adding itself: its
    # handler runs before the callback has run twice more.
    a, b = sockpair
    spins = [0]
    fd_at = []

    def spin():
        spins[0] += 1
        if spins[0] == 5:
            b.send(b"x")
        if fd_at or spins[0] > 10_000:
            loop.stop()
        else:
            loop.add_callback(spin)

    def on_fd(fd, ev):
        fd_at.append(spins[0])
        loop.remove_handler(fd)

    loop.add_handler(a, on_fd, loop.READ)
    loop.add_callback(spin)
    loop.start()
    assert fd_at, f"fd handler starved for {spins[0]} spins"
    assert fd_at[0] <= 6


def test_self_readding_callback_does_not_starve_a_due_timer(loop):
    # A timer already due when it is added (deadline in the past) runs
    # before the re-adding callback has run twice more.
    spins = [0]
    timer_at = []

    def spin():
        spins[0] += 1
        if spins[0] == 5:
            loop.call_at(loop.time() - 10, lambda: timer_at.append(spins[0]))
        if timer_at or spins[0] > 10_000:
            loop.stop()
        else:
            loop.add_callback(spin)

    loop.add_callback(spin)
    loop.start()
    assert timer_at, f"timer starved for {spins[0]} spins"
    assert timer_at[0] <= 6


def test_zero_delay_timer_rearmed_in_its_callback_does_not_starve_io(loop, sockpair):
    a, b = sockpair
    count = [0]
    got = []

    def tick():
        count[0] += 1
        if count[0] == 3:
            b.send(b"x")
        if got or count[0] > 10_000:
            loop.stop()
        else:
            loop.call_later(0, tick)

    loop.add_handler(a, lambda fd, ev: got.append(count[0]), loop.READ)
    loop.call_later(0, tick)
    loop.start()
    loop.remove_handler(a)
    assert got, f"fd handler starved for {count[0]} timer runs"
    assert got[0] <= 4


def test_due_timers_are_all_collected_before_any_runs(loop):
    # A and B are due.  A adds C, due earlier than both, but it was added
    # while the tick ran, so it runs in the next tick: after B.
    out = []
    past = loop.time() - 10

    def a():
        out.append("a")
        loop.call_at(past - 5, out.append, "c")

    loop.call_at(past, a)
    loop.call_at(past + 1, out.append, "b")
    loop.call_at(past + 2, loop.stop)
    loop.start()
    assert out == ["a", "b"]
    loop.stop()
    loop.start()  # one more pass runs C
    assert out == ["a", "b", "c"]


def test_cancelled_handle_in_the_ready_queue_is_skipped(loop):
    out = []
    past = loop.time() - 1
    hb = []

    def a():
        out.append("a")
        loop.remove_timeout(hb[0])

    loop.call_at(past, a)
    hb.append(loop.call_at(past + 0.5, out.append, "b"))
    loop.call_at(past + 0.6, out.append, "c")
    loop.stop()
    loop.start()
    assert out == ["a", "c"]


def test_handler_removing_another_ready_fd_prevents_its_handler(loop):
    pairs = [socket.socketpair() for _ in range(2)]
    ran = []
    try:
        def make(i):
            def handler(fd, ev):
                ran.append(i)
                loop.remove_handler(pairs[1 - i][0])
                loop.remove_handler(fd)
            return handler

        for i, (x, _) in enumerate(pairs):
            loop.add_handler(x, make(i), loop.READ)
        for _, y in pairs:
            y.send(b"x")
        loop.stop()
        loop.start()  # one pass: both fds are ready in it
        run_for(loop, 0.02)
        assert len(ran) == 1
    finally:
        for x, y in pairs:
            loop.remove_handler(x)
            x.close()
            y.close()


def test_handler_closing_and_replacing_another_ready_fd(loop):
    # Two fds are ready in one batch.  Whichever handler runs first removes
    # and closes the other fd, and registers a fresh socket that reuses its
    # number.  The stale event of the closed fd must reach neither the old
    # handler nor the fresh registration's (the fresh socket has no data).
    pairs = [list(socket.socketpair()) for _ in range(2)]
    ran = []
    fresh = []

    def make(i):
        def handler(fd, ev):
            ran.append(i)
            other = pairs[1 - i]
            num = other[0].fileno()
            loop.remove_handler(other[0])
            other[0].close()
            c, d = socket.socketpair()
            fresh.extend((c, d))
            ran.append(("reused", num in (c.fileno(), d.fileno())))
            new = c if c.fileno() == num else d
            loop.add_handler(new, lambda fd, ev: ran.append("fresh"), loop.READ)
            loop.remove_handler(fd)
        return handler

    try:
        for i, (x, _) in enumerate(pairs):
            loop.add_handler(x, make(i), loop.READ)
        for _, y in pairs:
            y.send(b"x")
        loop.stop()
        loop.start()  # one pass: both fds are ready in it
        run_for(loop, 0.02)
        assert ran in ([0, ("reused", True)], [1, ("reused", True)])
    finally:
        for s in [s for pair in pairs for s in pair] + fresh:
            loop.remove_handler(s)
            s.close()


def test_stop_before_start_runs_one_pass(loop):
    out = []
    loop.add_callback(out.append, 1)
    loop.add_callback(out.append, 2)
    loop.call_later(5, out.append, "never")
    loop.stop()
    loop.start()  # returns after one pass, without waiting 5 s
    assert out == [1, 2]
    assert not loop.is_running()
    # The pending stop was consumed: the next start() runs until stopped.
    loop.call_later(0.02, loop.stop)
    loop.add_callback(out.append, 3)
    loop.start()
    assert out == [1, 2, 3]


def test_stop_in_a_callback_finishes_the_tick(loop):
    out = []
    loop.add_callback(loop.stop)
    loop.add_callback(out.append, "same tick")
    loop.start()
    assert out == ["same tick"]


def test_start_while_running_raises(loop):
    errors = []

    def nested():
        try:
            loop.start()
        except RuntimeError as e:
            errors.append(e)
        loop.stop()

    loop.add_callback(nested)
    loop.start()
    assert len(errors) == 1
    assert not loop.is_running()


@pytest.mark.parametrize("n", [1, 1000])
def test_callbacks_run_fifo(loop, n):
    out = []
    for i in range(n):
        loop.add_callback(out.append, i)
    loop.add_callback(loop.stop)
    loop.start()
    assert out == list(range(n))
