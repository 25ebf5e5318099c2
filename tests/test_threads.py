"""add_callback from other threads."""

import threading
import time


def test_eight_threads_lose_nothing(loop):
    n_threads, per_thread = 8, 10_000
    count = [0]
    total = n_threads * per_thread

    def inc():
        count[0] += 1
        if count[0] == total:
            loop.stop()

    def worker():
        for _ in range(per_thread):
            loop.add_callback(inc)

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    guard = loop.call_later(60, loop.stop)
    for t in threads:
        t.start()
    loop.start()
    for t in threads:
        t.join()
    loop.remove_timeout(guard)
    assert count[0] == total


def test_sleeping_loop_is_woken_by_another_thread(loop):
    woke = []
    # Nothing scheduled: the loop sleeps in the kernel with no timeout.
    t0 = time.monotonic()

    def from_thread():
        time.sleep(0.1)
        loop.add_callback(lambda: (woke.append(time.monotonic()), loop.stop()))

    th = threading.Thread(target=from_thread)
    th.start()
    guard = loop.call_later(30, loop.stop)
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    assert woke, "not woken"
    assert woke[0] - t0 < 5.0


def test_timer_added_from_thread_wakes_loop(loop):
    fired = []

    def from_thread():
        time.sleep(0.05)
        loop.add_callback(lambda: loop.call_later(0, lambda: (fired.append(1), loop.stop())))

    th = threading.Thread(target=from_thread)
    th.start()
    guard = loop.call_later(30, loop.stop)
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    assert fired == [1]


def test_add_callback_racing_close_does_not_crash(backend):
    import ioloop_c

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
