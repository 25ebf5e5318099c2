"""What a user's type checker sees of ioloop_c's public API.

Not run: type-checked by tests/test_typing.py (mypy --strict).  Each
assert_type fails the check if the stubs or annotations give another type.
"""

import asyncio
import socket
from typing import Any, assert_type

import ioloop_c
import ioloop_c.tornado
from ioloop_c._core import Handle, TimerHandle


def on_events(fd: socket.socket, events: int) -> None:
    pass


def tornado_face(sock: socket.socket) -> None:
    loop = ioloop_c.IOLoop(backend="poll")
    assert_type(loop, ioloop_c.IOLoop)
    assert_type(ioloop_c.IOLoop.current(), ioloop_c.IOLoop | None)
    assert_type(loop.time(), float)
    loop.add_callback(print, "soon")
    loop.spawn_callback(print)
    assert_type(loop.call_later(0.5, print, "later"), TimerHandle)
    assert_type(loop.call_at(loop.time() + 1, print), TimerHandle)
    timeout = loop.add_timeout(loop.time() + 1, print)
    loop.remove_timeout(timeout)
    loop.add_handler(sock, on_events, ioloop_c.READ | ioloop_c.WRITE)
    loop.update_handler(sock, ioloop_c.ERROR)
    loop.remove_handler(sock)
    periodic = ioloop_c.PeriodicCallback(lambda: None, 1000)
    periodic.start()
    periodic.stop()
    assert_type(loop.stats(), dict[str, Any])
    loop.set_slow_callback_threshold(0.05)
    loop.set_slow_callback_threshold(0.1, report=lambda handle, seconds: None)
    loop.set_callback_timing(False)
    loop.run_sync(lambda: None, timeout=5)
    loop.close(all_fds=True)


async def main() -> int:
    return 42


def asyncio_face() -> None:
    loop = ioloop_c.new_event_loop()
    assert_type(loop, ioloop_c.Loop)
    aloop: asyncio.AbstractEventLoop = loop  # it is an asyncio loop
    handle = aloop.call_soon(print)
    assert_type(loop.call_soon(print, 1), Handle)
    assert_type(loop.call_later(1, print), TimerHandle)
    assert_type(loop.call_later(1, print).when(), float)
    handle.cancel()
    assert_type(loop.stats(), dict[str, Any])
    loop.close()
    assert_type(ioloop_c.run(main()), int)
    assert_type(ioloop_c.run(main(), debug=True), int)
    assert_type(ioloop_c.available_backends(), list[str])
    ioloop_c.install()
    policy: asyncio.AbstractEventLoopPolicy = ioloop_c.EventLoopPolicy()
    del policy


def tornado_shim(loop: ioloop_c.tornado.IOLoop) -> None:
    ioloop_c.tornado.install()
    assert_type(loop.stats(), dict[str, Any])
    loop.set_slow_callback_threshold(0.05)
    loop.set_callback_timing(True)
