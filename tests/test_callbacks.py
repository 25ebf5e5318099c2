"""add_callback, spawn_callback, add_callback_from_signal; start/stop/close;
time(); run_sync, add_future and run_in_executor."""

import asyncio
import concurrent.futures
import logging
import threading
import time

import pytest

import ioloop_c

from conftest import run_until

pytestmark = pytest.mark.timeout(30)


def test_add_callback_args_kwargs_in_order(loop):
    out = []
    loop.add_callback(out.append, 1)
    loop.add_callback(lambda x, y=0: out.append(x + y), 2, y=10)
    loop.add_callback(lambda *, k: out.append(k), k="kw")
    loop.add_callback(loop.stop)
    loop.start()
    assert out == [1, 12, "kw"]


def test_spawn_callback_and_add_callback_from_signal_queue_like_add_callback(loop):
    out = []
    loop.add_callback(out.append, "a")
    loop.spawn_callback(lambda x, y=0: out.append(x + y), "s", y="!")
    loop.add_callback_from_signal(lambda x, *, z: out.append(x + z), "g", z="?")
    loop.add_callback(out.append, "b")
    loop.add_callback(loop.stop)
    loop.start()
    assert out == ["a", "s!", "g?", "b"]


def test_callbacks_run_on_the_loop_thread(loop):
    seen = []
    loop.add_callback(lambda: seen.append(threading.get_ident()))
    loop.add_callback(loop.stop)
    loop.start()
    assert seen == [threading.get_ident()]


def test_stop_returns_from_start_and_start_works_again(loop):
    out = []
    for i in range(3):
        loop.add_callback(out.append, i)
        loop.add_callback(loop.stop)
        loop.start()
        assert out == list(range(i + 1))
        assert not loop.is_running()


def test_is_running_inside_and_outside(loop):
    seen = []
    assert not loop.is_running()
    loop.add_callback(lambda: seen.append(loop.is_running()))
    loop.add_callback(loop.stop)
    loop.start()
    assert seen == [True]
    assert not loop.is_running()


def test_loop_is_an_asyncio_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)

    async def main():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    assert loop.run_sync(main) is loop


def test_awaitable_result_is_awaited_and_its_error_logged(loop, caplog):
    out = []

    async def ok():
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        out.append("ok")

    async def bad():
        await asyncio.sleep(0)
        raise KeyError("bad coroutine")

    loop.add_callback(ok)
    loop.add_callback(bad)
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: out and any(
            r.exc_info and r.exc_info[0] is KeyError for r in caplog.records))
    assert out == ["ok"]
    errors = [r for r in caplog.records
              if r.name == "ioloop_c" and r.exc_info and r.exc_info[0] is KeyError]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR


def test_add_callback_after_close_is_dropped(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    lp.close()
    ran = []
    lp.add_callback(ran.append, 1)  # no error
    lp.spawn_callback(ran.append, 2)
    lp.add_callback_from_signal(ran.append, 3)
    assert ran == []


def test_close_while_running_raises(loop):
    errors = []

    def close_me():
        try:
            loop.close()
        except RuntimeError as e:
            errors.append(e)
        loop.stop()

    loop.add_callback(close_me)
    loop.start()
    assert len(errors) == 1 and not loop.is_closed()


def test_close_twice_is_harmless(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    lp.close()
    lp.close()
    assert lp.is_closed()


def test_time_is_wall_clock(loop):
    # Before any run, after the loop went idle, and inside a callback:
    # time() follows time.time() and is not a stale cached value.
    assert abs(loop.time() - time.time()) < 0.5
    loop.add_callback(loop.stop)
    loop.start()
    time.sleep(0.2)
    assert abs(loop.time() - time.time()) < 0.1
    inside = []

    def cb():
        time.sleep(0.2)
        inside.append(loop.time() - time.time())
        loop.stop()

    loop.add_callback(cb)
    loop.start()
    assert abs(inside[0]) < 0.1


def test_time_is_not_monotonic_clock(loop):
    # IOLoop's clock is time.time(), which is far from time.monotonic() on
    # any real host (the epoch is 1970, monotonic starts near boot).
    assert abs(loop.time() - time.monotonic()) > 1e6


# -- run_sync --------------------------------------------------------------


def test_run_sync_returns_value_of_coroutine_function(loop):
    async def value():
        await asyncio.sleep(0.001)
        return 42

    assert loop.run_sync(value) == 42
    assert not loop.is_running()


def test_run_sync_plain_function(loop):
    assert loop.run_sync(lambda: 7) == 7


def test_run_sync_raises_the_exception(loop):
    err = ValueError("from the coroutine")

    async def fails():
        await asyncio.sleep(0)
        raise err

    with pytest.raises(ValueError) as info:
        loop.run_sync(fails)
    assert info.value is err
    # The loop is usable afterwards.
    assert loop.run_sync(lambda: 1) == 1


def test_run_sync_timeout_raises_timeout_error(loop):
    cancelled = []

    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        loop.run_sync(slow, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - t0 < 10
    # The loop is usable afterwards, and the slow coroutine was cancelled
    # (its CancelledError is delivered once the loop runs again, if not
    # already).
    assert loop.run_sync(lambda: "again") == "again"
    run_until(loop, lambda: cancelled, timeout=2)
    assert cancelled == [True]


def test_run_sync_inside_running_loop_raises(loop):
    errors = []

    def nested():
        try:
            loop.run_sync(lambda: 1)
        except RuntimeError as e:
            errors.append(e)
        loop.stop()

    loop.add_callback(nested)
    loop.start()
    assert len(errors) == 1


# -- add_future and run_in_executor ----------------------------------------


def test_add_future_with_concurrent_future_from_another_thread(loop):
    fut = concurrent.futures.Future()
    got = []

    def done(f):
        got.append((f, f.result(), threading.get_ident()))
        loop.stop()

    loop.add_future(fut, done)
    th = threading.Timer(0.05, fut.set_result, (5,))
    th.start()
    guard = loop.call_later(10, loop.stop)
    loop.start()
    th.join()
    loop.remove_timeout(guard)
    # The callback gets the future itself, on the loop's thread.
    assert got == [(fut, 5, threading.get_ident())]


def test_add_future_with_asyncio_future(loop):
    got = []

    async def main():
        fut = loop.create_future()
        loop.add_future(fut, lambda f: got.append((f, f.result())))
        loop.call_later(0.01, fut.set_result, 6)
        await fut
        for _ in range(5):
            await asyncio.sleep(0)
        return fut

    fut = loop.run_sync(main)
    assert got == [(fut, 6)]


def test_add_future_already_done(loop):
    got = []
    cf = concurrent.futures.Future()
    cf.set_result("cf")
    loop.add_future(cf, lambda f: got.append(f.result()))

    async def main():
        af = loop.create_future()
        af.set_result("af")
        loop.add_future(af, lambda f: got.append(f.result()))

    loop.run_sync(main)
    assert run_until(loop, lambda: len(got) == 2, timeout=5)
    assert sorted(got) == ["af", "cf"]


def test_run_in_executor_default_executor(loop):
    def work(x):
        return (x * 2, threading.get_ident())

    async def main():
        return await loop.run_in_executor(None, work, 21)

    value, ident = loop.run_sync(main, timeout=10)
    assert value == 42
    assert ident != threading.get_ident()


def test_set_default_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ioloopc-test") as ex:
        loop.set_default_executor(ex)

        async def main():
            return await loop.run_in_executor(None, lambda: threading.current_thread().name)

        name = loop.run_sync(main, timeout=10)
    assert name.startswith("ioloopc-test")
