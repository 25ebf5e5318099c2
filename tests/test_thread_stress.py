"""Threads hammering the loop: many producers while the loop churns
timers (the scenario of uvloop issue #408, where the loop could exit
early), wake-up latency from another thread, and producers racing close()."""

import statistics
import threading
import time

import pytest

import ioloop_c

from conftest import scaled

pytestmark = pytest.mark.timeout(120)

THREADS = 16
PER_THREAD = scaled(2000)


def _churn_timers(lp, stop_flag):
    """A callback that schedules and cancels timers and re-schedules
    itself, so the loop is never idle while the producers run."""

    def churn():
        if stop_flag.is_set():
            return
        hs = [lp.call_later(0.001 * (i % 5), lambda: None) for i in range(20)]
        for h in hs[::2]:
            h.cancel()
        lp.call_later(0.0005, churn)

    return churn


@pytest.mark.parametrize("face", ["asyncio", "tornado"])
def test_sixteen_producers_during_timer_churn_lose_nothing(backend, face):
    if face == "asyncio":
        lp = ioloop_c.Loop(backend=backend)
        post = lp.call_soon_threadsafe
        run, stop = lp.run_forever, lp.stop
    else:
        lp = ioloop_c.IOLoop(backend=backend, make_current=False)
        post = lp.add_callback
        run, stop = lp.start, lp.stop
    counts = [0] * THREADS
    total = THREADS * PER_THREAD
    done = [0]
    stop_flag = threading.Event()

    def got(i):
        counts[i] += 1
        done[0] += 1
        if done[0] == total:
            stop_flag.set()
            stop()

    def producer(i):
        for k in range(PER_THREAD):
            post(got, i)
            if k % 256 == 0:
                time.sleep(0)

    lp.call_soon(_churn_timers(lp, stop_flag))
    threads = [threading.Thread(target=producer, args=(i,)) for i in range(THREADS)]
    watchdog = threading.Timer(60, lambda: post(stop))
    watchdog.start()
    for t in threads:
        t.start()
    t0 = time.monotonic()
    run()  # must not return before every callback ran
    elapsed = time.monotonic() - t0
    watchdog.cancel()
    for t in threads:
        t.join()
    assert counts == [PER_THREAD] * THREADS, (counts, elapsed)
    lp.close()


def test_wakeup_latency_from_another_thread(aloop):
    """A sleeping loop (nothing due for an hour) runs a callback posted from
    another thread within milliseconds: median under 10 ms."""

    def measure():
        samples = []
        for _ in range(50):
            box = {}

            def mark():
                box["ran"] = time.perf_counter()
                aloop.stop()

            def poster():
                time.sleep(0.002)  # let the loop reach the kernel wait
                box["posted"] = time.perf_counter()
                aloop.call_soon_threadsafe(mark)

            far = aloop.call_later(3600, lambda: None)
            t = threading.Thread(target=poster)
            t.start()
            aloop.run_forever()
            t.join()
            far.cancel()
            samples.append(box["ran"] - box["posted"])
        return statistics.median(samples)

    # A busy 2-core machine can spoil one series; allow three.
    medians = []
    for _ in range(3):
        medians.append(measure())
        if medians[-1] < 0.010:
            break
    assert min(medians) < 0.010, medians


@pytest.mark.parametrize("face", ["asyncio", "tornado"])
def test_producers_racing_close(backend, face):
    """Threads post callbacks while the loop is closed under them: each post
    either lands or raises RuntimeError (asyncio) or is dropped (Tornado);
    nothing crashes or hangs."""
    for _ in range(20):
        if face == "asyncio":
            lp = ioloop_c.Loop(backend=backend)
            post = lp.call_soon_threadsafe
        else:
            lp = ioloop_c.IOLoop(backend=backend, make_current=False)
            post = lp.add_callback
        go = threading.Event()
        errors = []

        def producer():
            go.wait()
            for _ in range(scaled(500)):
                try:
                    post(lambda: None)
                except RuntimeError:
                    pass
                except BaseException as exc:  # pragma: no cover - the bug
                    errors.append(exc)

        threads = [threading.Thread(target=producer) for _ in range(4)]
        for t in threads:
            t.start()
        go.set()
        time.sleep(0.0005)
        lp.close()
        for t in threads:
            t.join()
        assert errors == []
