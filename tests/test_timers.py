"""add_timeout, call_later, call_at, remove_timeout."""

import datetime
import math

import pytest

from conftest import run_for


def test_timeouts_fire_in_deadline_order(loop):
    out = []
    now = loop.time()
    loop.add_timeout(now + 0.03, out.append, "c")
    loop.add_timeout(datetime.timedelta(seconds=0.01), out.append, "a")
    loop.call_later(0.02, out.append, "b")
    loop.call_at(now + 0.04, lambda: (out.append("d"), loop.stop()))
    loop.start()
    assert out == ["a", "b", "c", "d"]


def test_never_fires_early(loop):
    fired = []
    start = loop.time()
    loop.call_later(0.05, lambda: (fired.append(loop.time()), loop.stop()))
    loop.start()
    assert fired[0] - start >= 0.05 - 0.002  # wall clock granularity


def test_equal_deadlines_fire_in_order_added(loop):
    out = []
    when = loop.time() + 0.01
    for i in range(50):
        loop.call_at(when, out.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.start()
    assert out == list(range(50))


def test_remove_timeout(loop):
    out = []
    h = loop.add_timeout(loop.time() + 0.01, out.append, "no")
    loop.remove_timeout(h)
    loop.remove_timeout(h)  # twice is fine
    h2 = loop.call_later(0.0, out.append, "yes")
    run_for(loop, 0.03)
    loop.remove_timeout(h2)  # after it fired: fine
    assert out == ["yes"]
    assert loop.stats()["timers_live"] == 0


def test_kwargs_bound(loop):
    out = []
    loop.call_later(0, lambda a, b=0: out.append(a + b), 1, b=2)
    loop.add_timeout(loop.time(), lambda *, k: out.append(k), k=5)
    run_for(loop, 0.02)
    assert out == [3, 5]


@pytest.mark.parametrize("deadline", [math.inf, 1e300, 1e18])
def test_huge_deadline_accepted_never_fires_removable(loop, deadline):
    out = []
    h = loop.add_timeout(deadline, out.append, "never")
    h2 = loop.call_later(deadline, out.append, "never")
    run_for(loop, 0.02)
    assert out == []
    loop.remove_timeout(h)
    loop.remove_timeout(h2)
    assert loop.stats()["timers_live"] == 0


def test_negative_delay_runs_at_once_in_order(loop):
    out = []
    loop.call_later(-5, out.append, 1)
    loop.call_later(-1, out.append, 2)
    loop.call_later(0, out.append, 3)
    run_for(loop, 0.01)
    assert out == [1, 2, 3]


def test_nan_deadline_refused(loop):
    with pytest.raises(ValueError):
        loop.add_timeout(math.nan, lambda: None)
    with pytest.raises(ValueError):
        loop.call_later(math.nan, lambda: None)
    with pytest.raises(ValueError):
        loop.call_at(math.nan, lambda: None)
    assert loop.stats()["timers_live"] == 0


@pytest.mark.parametrize("bad", ["1", None, object(), [1]])
def test_deadline_of_wrong_type_refused(loop, bad):
    with pytest.raises(TypeError):
        loop.add_timeout(bad, lambda: None)
    with pytest.raises(TypeError):
        loop.call_later(bad, lambda: None)
    assert loop.stats()["timers_live"] == 0


def test_non_callable_refused(loop):
    for call in (
        lambda: loop.add_timeout(loop.time(), 42),
        lambda: loop.call_later(0, "x"),
        lambda: loop.call_at(0, None),
        lambda: loop.add_callback(3),
    ):
        with pytest.raises(TypeError):
            call()
    assert loop.stats()["timers_live"] == 0


def test_many_timers_half_cancelled(loop):
    n = 20000
    fired = []
    handles = [loop.call_later(0.001 * (i % 7), fired.append, i) for i in range(n)]
    for h in handles[::2]:
        loop.remove_timeout(h)
    assert loop.stats()["timers_live"] == n // 2
    run_for(loop, 0.05)
    assert sorted(fired) == list(range(1, n, 2))
