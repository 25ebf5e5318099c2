"""Each Python version's own asyncio features, on ours.

A test here is skipped only on the versions that lack its feature, and runs
on every version that has it; where asyncio's own loop shows the expected
behaviour too, both loops run the same code and must agree.
"""

import asyncio
import contextvars
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest

import ioloop_c
from ioloop_c import _compat

pytestmark = pytest.mark.timeout(60)

PY = sys.version_info[:2]
LOOPS = {"ours": ioloop_c.new_event_loop, "stock": asyncio.SelectorEventLoop}


def needs(version, what):
    return pytest.mark.skipif(PY < version, reason=f"{what} is new in {version[0]}.{version[1]}")


@pytest.fixture(params=sorted(LOOPS))
def factory(request):
    return LOOPS[request.param]


def run(factory, coro):
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


# -- 3.12 ----------------------------------------------------------------------
@needs((3, 12), "asyncio.run(loop_factory=)")
def test_asyncio_run_loop_factory():
    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=ioloop_c.new_event_loop) is ioloop_c.Loop


@needs((3, 12), "asyncio.eager_task_factory")
def test_eager_task_factory(factory):
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        steps = []

        async def child():
            steps.append("child started")
            await asyncio.sleep(0)
            steps.append("child resumed")
            return 7

        async def instant():
            return "done at once"

        task = asyncio.create_task(child())
        # Eager: the coroutine ran to its first suspension inside create_task.
        assert steps == ["child started"]
        assert not task.done()
        quick = asyncio.create_task(instant())
        assert quick.done() and quick.result() == "done at once"
        assert await task == 7
        return steps

    assert run(factory, main()) == ["child started", "child resumed"]


@needs((3, 12), "asyncio.create_eager_task_factory")
def test_create_eager_task_factory(factory):
    made = []

    class MyTask(asyncio.Task):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.create_eager_task_factory(MyTask))
        order = []

        async def child():
            order.append("child")
            return 1

        t = loop.create_task(child())
        order.append("after create_task")
        assert t.done() and await t == 1
        return order

    assert run(factory, main()) == ["child", "after create_task"]
    assert made and all(isinstance(t, MyTask) for t in made)


@needs((3, 12), "shutdown_default_executor(timeout)")
def test_shutdown_default_executor_timeout():
    """shutdown_default_executor(timeout) gives up waiting on a busy worker
    after `timeout` and warns.  3.12.1's asyncio applied the timeout only
    after the workers finished (fixed in 3.13): ours does what this
    Python's asyncio does, and 3.13+ must show the timeout working."""

    def observe(factory):
        release = threading.Event()
        threading.Timer(1.0, release.set).start()  # bounds a 3.12.1 wait

        async def main():
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(None, release.wait, 10)
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await loop.shutdown_default_executor(timeout=0.2)
            elapsed = time.monotonic() - t0
            release.set()
            await fut
            return [str(w.message) for w in caught if w.category is RuntimeWarning], elapsed

        try:
            return run(factory, main())
        finally:
            release.set()

    (ours, ours_t), (stock, stock_t) = observe(LOOPS["ours"]), observe(LOOPS["stock"])
    assert ours == stock
    assert (ours_t < 0.8) == (stock_t < 0.8)
    if PY >= (3, 13):
        assert ours == ["The executor did not finishing joining its threads within 0.2 seconds."]
        assert 0.15 <= ours_t < 0.8


# -- 3.13 ----------------------------------------------------------------------
async def _server_with_clients(n):
    handlers = []

    async def on_client(reader, writer):
        handlers.append(writer)
        await reader.read()  # until the server side is closed

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    while len(handlers) < n:
        await asyncio.sleep(0.001)
    return server, clients, handlers


@needs((3, 13), "Server.close_clients()")
def test_server_close_clients(factory):
    async def main():
        server, clients, handlers = await _server_with_clients(2)
        server.close()
        server.close_clients()
        # Each client sees a clean end of stream.
        got = [await asyncio.wait_for(r.read(), 5) for r, _ in clients]
        await asyncio.wait_for(server.wait_closed(), 5)
        assert all(w.transport.is_closing() for w in handlers)
        for _, w in clients:
            w.close()
        return got

    assert run(factory, main()) == [b"", b""]


@needs((3, 13), "Server.abort_clients()")
def test_server_abort_clients(factory):
    async def main():
        server, clients, handlers = await _server_with_clients(2)
        for _, w in clients:
            w.write(b"x" * 1000)  # unread data: an abort resets
        server.close()
        server.abort_clients()
        results = []
        for r, w in clients:
            try:
                results.append(await asyncio.wait_for(r.read(), 5))
            except ConnectionResetError:
                results.append("reset")
            w.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        return results

    results = run(factory, main())
    assert len(results) == 2 and all(r in (b"", "reset") for r in results)


@needs((3, 13), "BaseEventLoop._run_forever_setup()")
def test_run_forever_setup_and_cleanup():
    loop = ioloop_c.new_event_loop()
    try:
        loop._run_forever_setup()
        try:
            assert asyncio.get_running_loop() is loop
            assert loop._thread_id == threading.get_ident()
        finally:
            loop._run_forever_cleanup()
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"
    finally:
        loop.close()


# -- 3.14 ----------------------------------------------------------------------
@pytest.mark.skipif(PY >= (3, 14), reason="policies are deprecated from 3.14")
def test_policy_names_do_not_warn_before_314():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy = ioloop_c.EventLoopPolicy()
        assert isinstance(policy.new_event_loop(), ioloop_c.Loop)


@needs((3, 14), "the policy system's deprecation")
def test_policy_names_warn_as_asyncios_do():
    with pytest.warns(DeprecationWarning) as theirs:
        asyncio.DefaultEventLoopPolicy  # noqa: B018
    with pytest.warns(DeprecationWarning) as ours:
        cls = ioloop_c.EventLoopPolicy
    assert len(ours) == len(theirs) == 1
    assert str(ours[0].message) == str(theirs[0].message).replace(
        "asyncio.DefaultEventLoopPolicy", "ioloop_c.EventLoopPolicy"
    )
    assert ours[0].filename == __file__  # points at the user's line
    assert "EventLoopPolicy" not in ioloop_c.__all__
    # Still works, as asyncio's does until 3.16.
    loop = cls().new_event_loop()
    try:
        assert isinstance(loop, ioloop_c.Loop)
    finally:
        loop.close()


def test_install_warns_as_set_event_loop_policy_does():
    old = asyncio.events._event_loop_policy
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ioloop_c.install()
        deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        if _compat.POLICY_DEPRECATED:
            assert len(deprecations) == 1
            assert "'ioloop_c.install' is deprecated" in str(deprecations[0].message)
            assert deprecations[0].filename == __file__
        else:
            assert deprecations == []
        assert type(asyncio.events._event_loop_policy).__name__ == "EventLoopPolicy"
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, ioloop_c.Loop)
        finally:
            loop.close()
    finally:
        asyncio.events._event_loop_policy = old
        from ioloop_c import _loop

        tornado = sys.modules.get("tornado.ioloop")
        if tornado is not None:
            tornado.IOLoop.configure(None)
        _loop.run_hooks.clear()


def test_recommended_ways_in_do_not_warn():
    async def main():
        return type(asyncio.get_running_loop())

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ioloop_c.run(main()) is ioloop_c.Loop
        with asyncio.Runner(loop_factory=ioloop_c.new_event_loop) as runner:
            assert runner.run(main()) is ioloop_c.Loop
        if PY >= (3, 12):
            assert asyncio.run(main(), loop_factory=ioloop_c.new_event_loop) is ioloop_c.Loop


@needs((3, 14), "the removal of child watchers")
def test_child_watchers_gone_subprocesses_work():
    assert not hasattr(asyncio, "get_child_watcher")
    assert not hasattr(asyncio, "AbstractChildWatcher")
    test_subprocess_in_main_and_other_thread()


def test_subprocess_in_main_and_other_thread():
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; print(sys.argv[1])", "hi",
            stdout=subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        return proc.returncode, out

    assert ioloop_c.run(main()) == (0, b"hi\n")
    result = []
    t = threading.Thread(target=lambda: result.append(ioloop_c.run(main())))
    t.start()
    t.join(30)
    assert result == [(0, b"hi\n")]


@needs((3, 14), "asyncio's _ThreadSafeHandle")
def test_threadsafe_handle_cancel_waits_for_running_callback(factory):
    """From 3.14 call_soon_threadsafe() returns a handle whose cancel() from
    another thread waits while its callback runs, and a handle cancelled
    before it runs never runs."""
    loop = factory()
    try:
        started, finished = threading.Event(), threading.Event()
        log = []

        def slow():
            started.set()
            time.sleep(0.2)
            finished.set()

        def other_thread():
            h = loop.call_soon_threadsafe(slow)
            log.append(type(h).__name__)
            started.wait(5)
            h.cancel()  # waits for slow() to return
            log.append(finished.is_set())
            # Hold the loop in a callback while h2 is queued and cancelled.
            gate = threading.Event()
            loop.call_soon_threadsafe(gate.wait, 5)
            h2 = loop.call_soon_threadsafe(log.append, "must not run")
            h2.cancel()
            gate.set()
            log.append(h2.cancelled())
            loop.call_soon_threadsafe(loop.stop)

        t = threading.Thread(target=other_thread)
        t.start()
        loop.run_forever()
        t.join(5)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert log == ["_ThreadSafeHandle", True, True]
    finally:
        loop.close()


@needs((3, 14), "create_task(eager_start=)")
def test_create_task_eager_start(factory):
    async def main():
        steps = []

        async def child():
            steps.append("ran")

        t = asyncio.get_running_loop().create_task(child(), eager_start=True)
        assert steps == ["ran"] and t.done()
        return True

    assert run(factory, main())


@needs((3, 14), "asyncio.capture_call_graph()")
def test_call_graph(factory):
    async def main():
        async def inner(fut):
            await fut

        fut = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(inner(fut), name="inner-task")
        await asyncio.sleep(0)
        graph = asyncio.capture_call_graph(fut)
        fut.set_result(None)
        await task
        return [a.future.get_name() for a in graph.awaited_by]

    assert run(factory, main()) == ["inner-task"]


# -- 3.15 ----------------------------------------------------------------------
VAR = contextvars.ContextVar("VAR", default="unset")


def test_connection_context_like_stock():
    """3.15's transports run a connection's protocol callbacks in one
    context (so a variable set in connection_made is seen in
    data_received); before, each callback had its own copy.  Ours does
    what this Python's asyncio does."""

    def observe(factory):
        async def main():
            seen = []

            class Proto(asyncio.Protocol):
                def connection_made(self, transport):
                    VAR.set("set in connection_made")

                def data_received(self, data):
                    seen.append(VAR.get())

            server = await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            while not seen:
                await asyncio.sleep(0.001)
            writer.close()
            server.close()
            await server.wait_closed()
            return seen[0]

        return run(factory, main())

    ours, stock = observe(LOOPS["ours"]), observe(LOOPS["stock"])
    assert ours == stock
    if PY >= (3, 15):
        assert ours == "set in connection_made"


async def _say_hi_and_close(reader, writer):
    # Closes its side, so server.wait_closed() (which waits for the
    # server's connections from 3.12.1) returns.
    writer.write(b"hi")
    await writer.drain()
    writer.close()


def test_client_connection_context_like_stock():
    """The same for a client connection: on 3.15 create_connection() runs
    the protocol's callbacks in one copy of the caller's context."""

    def observe(factory):
        async def main():
            seen = []

            class Proto(asyncio.Protocol):
                def connection_made(self, transport):
                    seen.append(VAR.get())
                    VAR.set("set in connection_made")

                def data_received(self, data):
                    seen.append(VAR.get())

            server = await asyncio.start_server(_say_hi_and_close, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            VAR.set("caller's")
            transport, _ = await asyncio.get_running_loop().create_connection(
                Proto, "127.0.0.1", port
            )
            while len(seen) < 2:
                await asyncio.sleep(0.001)
            transport.close()
            server.close()
            await server.wait_closed()
            assert VAR.get() == "caller's"  # the caller's own is untouched
            return seen

        return run(factory, main())

    ours, stock = observe(LOOPS["ours"]), observe(LOOPS["stock"])
    assert ours == stock
    assert ours[0] == "caller's"
    if PY >= (3, 15):
        assert ours[1] == "set in connection_made"


@needs((3, 15), "TaskGroup.cancel()")
def test_taskgroup_cancel(factory):
    async def main():
        async with asyncio.TaskGroup() as tg:
            t = tg.create_task(asyncio.sleep(10))
            asyncio.get_running_loop().call_later(0.01, tg.cancel)
        return t.cancelled()

    assert run(factory, main()) is True


# -- gaps found by tests we did not write (every version) --------------------
@pytest.mark.parametrize("how", ["call_soon", "call_later", "call_at"])
def test_debug_exception_context_has_source_traceback(factory, how):
    """In debug mode the exception handler's context for a failing callback
    says where its handle was made, as asyncio's does."""
    loop = factory()
    try:
        loop.set_debug(True)
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

        def fail():
            raise ZeroDivisionError

        if how == "call_soon":
            handle = loop.call_soon(fail)
        elif how == "call_later":
            handle = loop.call_later(0.001, fail)
        else:
            handle = loop.call_at(loop.time() + 0.001, fail)
        line = sys._getframe().f_lineno - 5 if how == "call_soon" else None
        loop.run_until_complete(asyncio.sleep(0.02))
        assert len(reported) == 1
        ctx = reported[0]
        assert isinstance(ctx["exception"], ZeroDivisionError)
        tb = ctx["source_traceback"]
        assert tb is handle._source_traceback and tb
        assert tb[-1].filename == __file__
        assert tb[-1].name == "test_debug_exception_context_has_source_traceback"
        if line is not None:
            assert tb[-1].lineno == line
    finally:
        loop.close()


def test_no_source_traceback_without_debug(factory):
    loop = factory()
    try:
        reported = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        loop.call_soon(lambda: 1 / 0)
        loop.run_until_complete(asyncio.sleep(0))
        assert len(reported) == 1 and "source_traceback" not in reported[0]
    finally:
        loop.close()


def test_datagram_endpoint_over_connected_socketpair():
    """create_datagram_endpoint(sock=) over a connected socket (a Unix
    socketpair, whose peer has no name) sends with sendto(data), no
    address, as uvloop does."""

    async def main():
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.setblocking(False)
        got = loop.create_future()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result(data)

            def error_received(self, exc):
                got.set_exception(exc)

        transport, _ = await loop.create_datagram_endpoint(Proto, sock=a)
        try:
            assert transport.get_extra_info("peername") == ""
            transport.sendto(b"ping")
            transport.sendto(b"pong", None)
            assert await loop.sock_recv(b, 100) == b"ping"
            assert await loop.sock_recv(b, 100) == b"pong"
            b.send(b"back")
            assert await asyncio.wait_for(got, 5) == b"back"
            assert not transport.is_closing()
        finally:
            transport.close()
            b.close()

    ioloop_c.run(main())


def test_datagram_unconnected_sock_still_needs_an_address():
    async def main():
        loop = asyncio.get_running_loop()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind(("127.0.0.1", 0))
        r.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=s)
        try:
            assert transport.get_extra_info("peername") is None
            transport.sendto(b"to r", r.getsockname())
            assert await loop.sock_recv(r, 100) == b"to r"
        finally:
            transport.close()
            r.close()

    ioloop_c.run(main())


def test_this_python_is_declared_in_pyproject():
    # The package metadata names exactly the versions the suite runs on, so
    # a Python this suite runs on must be among them.
    import os
    import tomllib

    path = os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")
    with open(path, "rb") as f:
        project = tomllib.load(f)["project"]
    versions = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    )
    assert versions == ["3.11", "3.12", "3.13", "3.14", "3.15"]
    assert f"{PY[0]}.{PY[1]}" in versions
    assert project["requires-python"] == ">=3.11"


def test_slow_threadsafe_callback_is_named():
    # On 3.14+ call_soon_threadsafe() runs asyncio's handle through ours:
    # the slow-callback detector and stats() still name the user's callback.
    loop = ioloop_c.new_event_loop()
    try:
        got = []
        loop.set_slow_callback_threshold(0.02, report=lambda h, d: got.append((h, d)))

        def sluggish():
            time.sleep(0.05)

        loop.call_soon_threadsafe(sluggish)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert len(got) == 1
        handle, duration = got[0]
        assert duration >= 0.04
        assert "sluggish" in repr(handle)
        if _compat.THREADSAFE_HANDLE is not None:
            assert isinstance(handle, _compat.THREADSAFE_HANDLE)
        assert "sluggish" in loop.stats()["slowest_callback"]
    finally:
        loop.close()
