"""add_callback from other threads: nothing lost, and a sleeping loop wakes.

The bounds are for correctness, not speed: a loop that is not woken at all
sleeps until the test's timeout, far beyond them.
"""

import threading
import time

import pytest

import ioloop_c

from conftest import scaled

pytestmark = pytest.mark.timeout(60)


def test_eight_threads_lose_nothing_and_the_loop_stops_after_the_last(loop):
    n_threads, per_thread = 8, scaled(10_000)
    total = n_threads * per_thread
    count = [0]
    after_stop = []

    def inc():
        if count[0] >= total:
            after_stop.append(1)
        count[0] += 1
        if count[0] == total:
            loop.stop()

    barrier = threading.Barrier(n_threads + 1)

    def worker():
        barrier.wait()
        for _ in range(per_thread):
            loop.add_callback(inc)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in threads:
        t.start()
    # The threads start adding once the loop is running.
    loop.add_callback(barrier.wait)
    guard = loop.call_later(50, loop.stop)
    loop.start()
    for t in threads:
        t.join()
    loop.remove_timeout(guard)
    assert count[0] == total
    assert after_stop == []


def test_sleeping_loop_is_woken_by_another_thread(loop):
    # Nothing scheduled at all: the loop sleeps in the kernel with no
    # timeout, and only the waker can get it out.
    started = threading.Event()
    sent = []
    woke = []

    def from_thread():
        started.wait(10)
        time.sleep(0.2)  # let the loop go to sleep
        sent.append(time.monotonic())
        loop.add_callback(lambda: (woke.append(time.monotonic()), loop.stop()))

    th = threading.Thread(target=from_thread)
    th.start()
    loop.add_callback(started.set)
    loop.start()
    th.join()
    assert woke, "not woken"
    assert woke[0] - sent[0] < 2.0


def test_loop_waiting_for_a_far_timer_is_woken_by_another_thread(loop):
    started = threading.Event()
    woke = []
    far = loop.call_later(30, loop.stop)

    def from_thread():
        started.wait(10)
        time.sleep(0.1)
        loop.add_callback(lambda: (woke.append(time.monotonic()), loop.stop()))

    th = threading.Thread(target=from_thread)
    th.start()
    loop.add_callback(started.set)
    t0 = time.monotonic()
    loop.start()
    th.join()
    loop.remove_timeout(far)
    assert woke and woke[0] - t0 < 5.0


def test_repeated_wakeups(loop):
    # Many sleep / wake cycles: no wake-up is lost between them.
    rounds = 50
    done = []

    def from_thread():
        for i in range(rounds):
            ev = threading.Event()
            loop.add_callback(lambda i=i, ev=ev: (done.append(i), ev.set()))
            assert ev.wait(10), f"round {i} not run"
            time.sleep(0.001)
        loop.add_callback(loop.stop)

    th = threading.Thread(target=from_thread)
    th.start()
    guard = loop.call_later(40, loop.stop)
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    assert done == list(range(rounds))


def test_timer_added_from_thread_through_add_callback(loop):
    fired = []

    def from_thread():
        time.sleep(0.05)
        loop.add_callback(lambda: loop.call_later(0.01, lambda: (fired.append(1), loop.stop())))

    th = threading.Thread(target=from_thread)
    th.start()
    guard = loop.call_later(30, loop.stop)
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    assert fired == [1]


def test_callbacks_from_a_thread_keep_their_order(loop):
    n = scaled(5000)
    out = []

    def worker():
        for i in range(n):
            loop.add_callback(out.append, i)
        loop.add_callback(loop.stop)

    th = threading.Thread(target=worker)
    guard = loop.call_later(30, loop.stop)
    th.start()
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    assert out == list(range(n))


def test_add_callback_racing_close_does_not_crash(backend):
    for _ in range(20):
        lp = ioloop_c.IOLoop(backend=backend, make_current=False)
        stop = threading.Event()

        def spam(lp=lp, stop=stop):
            while not stop.is_set():
                lp.add_callback(lambda: None)

        th = threading.Thread(target=spam)
        th.start()
        time.sleep(0.002)
        lp.close()
        stop.set()
        th.join()
        assert lp.is_closed()
