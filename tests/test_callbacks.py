"""add_callback, spawn_callback, add_callback_from_signal, start/stop."""

import asyncio
import logging

import ioloop_c


def test_constants():
    assert (ioloop_c.IOLoop.READ, ioloop_c.IOLoop.WRITE, ioloop_c.IOLoop.ERROR) == (1, 4, 0x18)
    assert (ioloop_c.READ, ioloop_c.WRITE, ioloop_c.ERROR) == (1, 4, 0x18)


def test_add_callback_args_kwargs_in_order(loop):
    out = []
    loop.add_callback(out.append, 1)
    loop.spawn_callback(lambda x, y=0: out.append(x + y), 2, y=10)
    loop.add_callback_from_signal(out.append, 3)
    loop.add_callback(loop.stop)
    loop.start()
    assert out == [1, 12, 3]


def test_loop_is_an_asyncio_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)

    async def main():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    assert loop.run_sync(main) is loop


def test_callback_exception_is_logged_and_loop_goes_on(loop, caplog):
    out = []

    def boom():
        raise ZeroDivisionError("boom")

    loop.add_callback(boom)
    loop.add_callback(out.append, "after")
    loop.add_callback(loop.stop)
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        loop.start()
    assert out == ["after"]
    records = [r for r in caplog.records if r.name == "ioloop_c"]
    assert len(records) == 1
    assert records[0].exc_info[0] is ZeroDivisionError
    assert "boom" in records[0].exc_info[1].args[0]


def test_awaitable_result_is_awaited_and_its_error_logged(loop, caplog):
    out = []

    async def ok():
        await asyncio.sleep(0)
        out.append("ok")

    async def bad():
        await asyncio.sleep(0)
        raise KeyError("bad")

    loop.add_callback(ok)
    loop.add_callback(bad)
    loop.call_later(0.05, loop.stop)
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        loop.start()
    assert out == ["ok"]
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_keyboard_interrupt_from_callback_propagates_and_loop_restarts(loop):
    def interrupt():
        raise KeyboardInterrupt

    out = []
    loop.add_callback(interrupt)
    loop.add_callback(out.append, "queued")
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("KeyboardInterrupt did not propagate")
    assert not loop.is_running()
    loop.add_callback(loop.stop)
    loop.start()
    assert out == ["queued"]


def test_system_exit_propagates(loop):
    loop.add_callback(lambda: (_ for _ in ()).throw(SystemExit(3)))
    try:
        loop.start()
    except SystemExit as e:
        assert e.code == 3
    else:
        raise AssertionError("SystemExit did not propagate")


def test_add_callback_after_close_is_dropped(backend):
    lp = ioloop_c.IOLoop(backend=backend)
    lp.close()
    lp.add_callback(lambda: None)  # no error, nothing happens
    ioloop_c.IOLoop.clear_current()


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


def test_time_is_wall_clock(loop):
    import time

    assert abs(loop.time() - time.time()) < 1.0


def test_run_sync_value_exception_timeout(loop):
    async def value():
        await asyncio.sleep(0.001)
        return 42

    async def fails():
        raise ValueError("x")

    async def slow():
        await asyncio.sleep(10)

    assert loop.run_sync(value) == 42
    assert loop.run_sync(lambda: 7) == 7
    try:
        loop.run_sync(fails)
    except ValueError:
        pass
    else:
        raise AssertionError("run_sync did not raise")
    try:
        loop.run_sync(slow, timeout=0.05)
    except TimeoutError:
        pass
    else:
        raise AssertionError("run_sync did not time out")


def test_add_future_and_run_in_executor(loop):
    import concurrent.futures

    out = []
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        cf = ex.submit(lambda: 5)
        loop.add_future(cf, lambda f: out.append(("cf", f.result())))

        async def main():
            fut = loop.create_future()
            loop.add_future(fut, lambda f: out.append(("af", f.result())))
            fut.set_result(6)
            r = await loop.run_in_executor(None, sum, [1, 2, 3])
            await asyncio.sleep(0.01)
            return r

        assert loop.run_sync(main) == 6
    run_until = loop.time() + 5
    while len(out) < 2 and loop.time() < run_until:
        loop.call_later(0.01, loop.stop)
        loop.start()
    assert sorted(out) == [("af", 6), ("cf", 5)]
