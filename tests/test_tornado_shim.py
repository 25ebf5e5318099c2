"""ioloop_c.tornado: real Tornado on the native loop, through each way in."""

import asyncio
import logging
import socket
import time

import pytest

tornado = pytest.importorskip("tornado")
from tornado.ioloop import IOLoop  # noqa: E402

import ioloop_c  # noqa: E402
import ioloop_c.tornado as shim  # noqa: E402


@pytest.fixture
def configured():
    IOLoop.configure("ioloop_c.tornado.IOLoop")
    lp = IOLoop(make_current=False)
    yield lp
    lp.close(all_fds=True)
    IOLoop.configure(None)


def test_configure_gives_the_shim_on_a_native_loop(configured):
    lp = configured
    assert isinstance(lp, shim.IOLoop)
    assert isinstance(lp, tornado.platform.asyncio.AsyncIOLoop)
    assert isinstance(lp.asyncio_loop, ioloop_c.Loop)
    # The hot methods are the native loop's C methods, not Python wrappers.
    assert lp.add_callback == lp.asyncio_loop.add_callback
    assert lp.add_handler == lp.asyncio_loop.add_handler
    assert type(lp.add_timeout).__name__ == "builtin_function_or_method"


def test_tornado_semantics(configured, caplog):
    lp = configured
    a, b = socket.socketpair()
    got = []
    lp.add_handler(a, lambda fd, ev: (got.append((fd, ev)), lp.stop()), IOLoop.READ)
    with pytest.raises(ValueError):
        lp.add_handler(a, lambda fd, ev: None, IOLoop.READ)
    lp.remove_handler(12345)  # unknown fd: silent
    b.send(b"x")
    lp.start()
    assert got == [(a, IOLoop.READ)]
    lp.remove_handler(a)
    # Wall-clock time, and call_at / add_timeout in those terms.
    assert abs(lp.time() - time.time()) < 1
    fired = []
    lp.call_at(lp.time() + 0.01, fired.append, "at")
    lp.add_timeout(lp.time() + 0.02, lambda: (fired.append("timeout"), lp.stop()))
    lp.start()
    assert fired == ["at", "timeout"]
    # Exceptions are logged on tornado.application and the loop goes on.
    lp.add_callback(lambda: 1 / 0)
    lp.add_callback(lp.stop)
    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        lp.start()
    assert any(r.name == "tornado.application" and "Exception in callback" in r.getMessage()
               for r in caplog.records)
    a.close()
    b.close()


def test_add_callback_after_close_dropped():
    IOLoop.configure("ioloop_c.tornado.IOLoop")
    try:
        lp = IOLoop(make_current=False)
        lp.close()
        lp.add_callback(lambda: None)
    finally:
        IOLoop.configure(None)


def test_close_all_fds(configured):
    lp = configured
    a, b = socket.socketpair()
    lp.add_handler(a, lambda *x: None, IOLoop.READ)
    lp.close(all_fds=True)
    assert a.fileno() == -1
    b.close()


def test_install_makes_everything_ours():
    old_policy = asyncio.get_event_loop_policy()
    try:
        ioloop_c.install()
        loop = asyncio.new_event_loop()
        assert isinstance(loop, ioloop_c.Loop)
        loop.close()

        async def main():
            current = IOLoop.current()
            return current, asyncio.get_running_loop()

        current, running = asyncio.run(main())
        assert isinstance(current, shim.MainLoop)
        assert current.asyncio_loop is running
        assert isinstance(IOLoop(make_current=False), shim.IOLoop)
    finally:
        asyncio.set_event_loop_policy(old_policy)
        IOLoop.configure(None)


def test_runner_loop_factory_with_tornado_inside():
    from tornado import gen

    async def main():
        await gen.sleep(0.01)
        io = IOLoop.current()
        fut = io.run_in_executor(None, sum, [1, 2])
        return await fut, type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=ioloop_c.new_event_loop) as runner:
        value, loop_type = runner.run(main())
    assert value == 3 and loop_type is ioloop_c.Loop


def test_async_test_case_runs_on_ours():
    import unittest

    from tornado.testing import AsyncTestCase, gen_test

    seen = []

    class Case(AsyncTestCase):
        @gen_test
        async def test_it(self):
            await asyncio.sleep(0)
            seen.append(type(asyncio.get_running_loop()))

    IOLoop.configure("ioloop_c.tornado.IOLoop")
    try:
        with open("/dev/null", "w") as devnull:
            result = unittest.TextTestRunner(stream=devnull).run(
                unittest.defaultTestLoader.loadTestsFromTestCase(Case))
    finally:
        IOLoop.configure(None)
    assert result.wasSuccessful()
    assert seen and issubclass(seen[0], ioloop_c.Loop)
