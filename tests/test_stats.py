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


def test_timing_off_keeps_counts_drops_slowest(loop):
    assert loop.stats()["callback_timing"] is True
    loop.set_callback_timing(False)
    assert loop.stats()["callback_timing"] is False
    before = loop.stats()
    loop.add_callback(time.sleep, 0.03)
    loop.add_callback(loop.stop)
    loop.start()
    s = loop.stats()
    assert s["callbacks"] - before["callbacks"] == 2
    # The batch's time is still counted as running, not waiting ...
    assert s["run_seconds"] - before["run_seconds"] >= 0.025
    # ... but no callback is timed on its own.
    assert s["slowest_callback"] is None
    assert s["slowest_callback_seconds"] == 0.0


def test_threshold_turns_timing_back_on(loop):
    got = []
    loop.set_callback_timing(False)
    loop.set_slow_callback_threshold(0.02, report=lambda h, d: got.append(d))
    assert loop.stats()["callback_timing"] is True
    loop.add_callback(time.sleep, 0.04)
    loop.add_callback(loop.stop)
    loop.start()
    assert len(got) == 1 and got[0] >= 0.02
    # Turning timing off also turns the detector off.
    loop.set_callback_timing(False)
    loop.add_callback(time.sleep, 0.04)
    loop.add_callback(loop.stop)
    loop.start()
    assert len(got) == 1


def test_callback_cancelling_itself_is_still_timed(loop):
    def sluggish_self_cancel():
        time.sleep(0.03)
        handle.cancel()

    handle = loop.call_later(0, sluggish_self_cancel)
    loop.call_later(0.01, loop.stop)
    loop.start()
    s = loop.stats()
    # Its own time, not charged to the stop timer that ran after it.
    assert s["slowest_callback_seconds"] >= 0.025
    assert s["slowest_callback"].startswith("<TimerHandle")


def test_stats_through_tornado_shim():
    import ioloop_c.tornado

    io_loop = ioloop_c.tornado.IOLoop(make_current=False)
    try:
        got = []
        io_loop.set_slow_callback_threshold(0.02, report=lambda h, d: got.append(d))
        io_loop.add_callback(time.sleep, 0.04)
        io_loop.add_callback(io_loop.stop)
        io_loop.start()
        s = io_loop.stats()
        assert s["callbacks"] >= 2 and s["slowest_callback_seconds"] >= 0.03
        assert len(got) == 1
        io_loop.set_callback_timing(False)
        assert io_loop.stats()["callback_timing"] is False
    finally:
        io_loop.close()


def test_shim_over_foreign_loop_says_so():
    import asyncio

    import ioloop_c.tornado

    aloop = asyncio.new_event_loop()
    asyncio.set_event_loop(aloop)
    try:
        wrapper = ioloop_c.tornado.MainLoop()
        try:
            try:
                wrapper.stats()
            except TypeError as exc:
                assert "not on an ioloop_c loop" in str(exc)
            else:
                raise AssertionError("stats() on a foreign loop did not raise")
        finally:
            wrapper.close()
    finally:
        asyncio.set_event_loop(None)
        aloop.close()


def test_slowest_task_step_names_its_coroutine():
    import asyncio

    import ioloop_c

    async def hog_the_loop():
        time.sleep(0.03)

    async def main():
        await asyncio.get_running_loop().create_task(hog_the_loop())
        return asyncio.get_running_loop().stats()

    s = ioloop_c.run(main())
    assert s["slowest_callback_seconds"] >= 0.025
    # The task's repr, with the coroutine's name, not "object at 0x...".
    assert "hog_the_loop" in s["slowest_callback"]
    assert "object at 0x" not in s["slowest_callback"]
