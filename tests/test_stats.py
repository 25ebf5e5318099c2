"""loop.stats() and the slow-callback detector."""

import logging
import time

from conftest import run_for


def test_counts_match_work_done(loop, sockpair):
    a, b = sockpair
    before = loop.stats()
    for _ in range(10):
        loop.add_callback(lambda: None)
    handles = [loop.call_later(0, lambda: None) for _ in range(5)]
    loop.remove_timeout(handles[0])
    far = loop.call_later(100, lambda: None)
    loop.add_handler(a, lambda fd, ev: loop.remove_handler(fd), loop.READ)
    b.send(b"x")
    run_for(loop, 0.02)
    s = loop.stats()
    assert s["timers_scheduled"] - before["timers_scheduled"] == 7  # incl. run_for's
    assert s["timers_cancelled"] - before["timers_cancelled"] == 1
    assert s["timers_fired"] - before["timers_fired"] == 5  # 4 + run_for's stop
    assert s["timers_live"] == 1
    assert s["fd_events"] - before["fd_events"] >= 1
    # 10 callbacks + 4 timers + 1 handler + the stop timer
    assert s["callbacks"] - before["callbacks"] == 16
    assert s["ticks"] > before["ticks"]
    assert s["wait_seconds"] >= 0 and s["run_seconds"] >= 0
    loop.remove_timeout(far)
    assert loop.stats()["timers_live"] == 0


def test_slowest_callback_is_named(loop):
    def sluggish():
        time.sleep(0.05)

    loop.add_callback(sluggish)
    loop.add_callback(loop.stop)
    loop.start()
    s = loop.stats()
    assert s["slowest_callback_seconds"] >= 0.04
    assert "sluggish" in s["slowest_callback"]


def test_slow_callback_reported_fast_one_not(loop, caplog):
    loop.set_slow_callback_threshold(0.03)

    def sluggish():
        time.sleep(0.06)

    def quick():
        pass

    loop.add_callback(quick)
    loop.add_callback(sluggish)
    loop.add_callback(loop.stop)
    with caplog.at_level(logging.WARNING, logger="ioloop_c"):
        loop.start()
    msgs = [r.getMessage() for r in caplog.records if r.name == "ioloop_c"]
    assert len(msgs) == 1
    assert "sluggish" in msgs[0]


def test_slow_callback_custom_report_and_off(loop):
    got = []
    loop.set_slow_callback_threshold(0.02, report=lambda h, d: got.append((h, d)))
    loop.add_callback(time.sleep, 0.04)
    loop.add_callback(loop.stop)
    loop.start()
    assert len(got) == 1 and got[0][1] >= 0.02
    loop.set_slow_callback_threshold(None)
    loop.add_callback(time.sleep, 0.04)
    loop.add_callback(loop.stop)
    loop.start()
    assert len(got) == 1
