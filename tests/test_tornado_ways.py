"""Every way a program can get an ioloop_c loop gives Tornado the shim's
MainLoop, with the native fast paths: asyncio.run(loop_factory=),
ioloop_c.run(), asyncio.Runner, new_event_loop() + set_event_loop() +
run_until_complete, each with and without ioloop_c.install(); Tornado
imported before ioloop_c, after the loop was made, or inside the running
coroutine; and, under install(), Tornado code that makes its IOLoop with no
loop running.  On each: a real HTTPServer + simple_httpclient round trip,
and closing leaves no fd behind and no entry in Tornado's loop map."""

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

pytest.importorskip("tornado")
import tornado.httpserver  # noqa: E402
import tornado.netutil  # noqa: E402
import tornado.simple_httpclient  # noqa: E402
import tornado.web  # noqa: E402
from tornado.ioloop import IOLoop  # noqa: E402
from tornado.platform.asyncio import AsyncIOLoop, AsyncIOMainLoop  # noqa: E402

import ioloop_c  # noqa: E402
import ioloop_c.tornado as shim  # noqa: E402
from ioloop_c import _tornado_hook  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def open_fds():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hello " + type(IOLoop.current()).__name__)


def check_native(io, loop):
    """The hot methods of `io` are the C methods of ioloop_c loop `loop`."""
    assert type(io) is shim.MainLoop
    assert io.asyncio_loop is loop
    for name, native in [("add_handler", "add_handler"),
                         ("update_handler", "update_handler"),
                         ("remove_handler", "remove_handler"),
                         ("add_callback", "add_callback"),
                         ("call_at", "_tornado_call_at_wall"),
                         ("add_timeout", "_add_timeout_wall")]:
        method = getattr(io, name)
        assert type(method).__name__ == "builtin_function_or_method", name
        assert method.__self__ is loop, name
        assert method == getattr(loop, native), name


async def serve_and_fetch():
    """Inside a running ioloop_c loop: the IOLoop Tornado gives is ours, and
    a real HTTP request round-trips through Tornado's server and client."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, ioloop_c.Loop)
    io = IOLoop.current()
    check_native(io, loop)
    assert IOLoop.current() is io
    assert IOLoop._ioloop_for_asyncio[loop] is io

    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sock.getsockname()[1]
    server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Hello)]))
    server.add_sockets([sock])
    client = tornado.simple_httpclient.SimpleAsyncHTTPClient(force_instance=True)
    try:
        bodies = []
        for _ in range(3):  # keep-alive: the same connection is reused
            resp = await client.fetch(f"http://127.0.0.1:{port}/")
            assert resp.code == 200
            bodies.append(resp.body)
        # A timer through the Tornado API on the native call_at.
        fired = asyncio.Event()
        io.call_at(io.time() + 0.01, fired.set)
        await asyncio.wait_for(fired.wait(), 5)
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
    assert bodies == [b"hello MainLoop"] * 3
    return loop, io


# -- the ways in ---------------------------------------------------------
def via_asyncio_run():
    return asyncio.run(serve_and_fetch(), loop_factory=ioloop_c.new_event_loop)


def via_ioloop_c_run():
    return ioloop_c.run(serve_and_fetch())


def via_runner():
    with asyncio.Runner(loop_factory=ioloop_c.new_event_loop) as runner:
        return runner.run(serve_and_fetch())


def via_set_event_loop():
    loop = ioloop_c.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve_and_fetch())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def via_policy_run():
    # Under install(): asyncio.run's loop is the policy's.
    return asyncio.run(serve_and_fetch())


WAYS = {
    "asyncio.run(loop_factory=)": via_asyncio_run,
    "ioloop_c.run()": via_ioloop_c_run,
    "asyncio.Runner(loop_factory=)": via_runner,
    "new_event_loop+set_event_loop": via_set_event_loop,
}


@pytest.fixture(params=[False, True], ids=["plain", "install"])
def installed(request):
    if not request.param:
        yield False
        return
    old_policy = asyncio.get_event_loop_policy()
    ioloop_c.install()
    yield True
    asyncio.set_event_loop_policy(old_policy)
    IOLoop.configure(None)


def check_way(run):
    before = open_fds()
    loop, io = run()
    # The loop is closed, the map no longer holds it, no fd is left.
    assert loop.is_closed()
    assert loop not in IOLoop._ioloop_for_asyncio
    assert io.closing
    del loop, io
    assert open_fds() == before


@pytest.mark.parametrize("way", list(WAYS))
def test_every_way_in_gets_the_native_mainloop(way, installed):
    if way == "asyncio.run(loop_factory=)" and sys.version_info < (3, 12):
        pytest.skip("asyncio.run has loop_factory= from Python 3.12")
    check_way(WAYS[way])


def test_asyncio_run_under_install():
    old_policy = asyncio.get_event_loop_policy()
    ioloop_c.install()
    try:
        check_way(via_policy_run)
    finally:
        asyncio.set_event_loop_policy(old_policy)
        IOLoop.configure(None)


def test_a_plain_asyncio_loop_still_gets_tornados_own():
    async def main():
        return IOLoop.current(), asyncio.get_running_loop()

    io, loop = asyncio.run(main())
    assert type(io) is AsyncIOMainLoop
    assert io.asyncio_loop is loop
    io.close()


def test_configure_still_decides_what_ioloop_makes():
    class Mine(AsyncIOLoop):
        pass

    IOLoop.configure(Mine)
    try:
        io = IOLoop(make_current=False)
        assert type(io) is Mine
        assert not isinstance(io.asyncio_loop, ioloop_c.Loop)
        io.close()
        # An explicit ioloop_c loop under it: Tornado's Python paths, and
        # the map entry is Tornado's to remove, even when the asyncio loop
        # was closed first.
        loop = ioloop_c.new_event_loop()
        io = IOLoop(asyncio_loop=loop, make_current=False)
        assert type(io) is Mine and io.asyncio_loop is loop
        loop.close()
        assert IOLoop._ioloop_for_asyncio[loop] is io
        io.close()
        assert loop not in IOLoop._ioloop_for_asyncio
    finally:
        IOLoop.configure(None)


def test_mainloop_closed_through_tornado():
    loop = ioloop_c.new_event_loop()
    before = len(IOLoop._ioloop_for_asyncio)

    async def main():
        return IOLoop.current()

    io = loop.run_until_complete(main())
    check_native(io, loop)
    assert len(IOLoop._ioloop_for_asyncio) == before + 1
    io.close()
    assert loop.is_closed() and loop not in IOLoop._ioloop_for_asyncio
    io.close()  # twice: harmless


def test_a_closed_loop_is_not_adopted():
    loop = ioloop_c.new_event_loop()
    loop.close()
    with pytest.raises(KeyError):
        IOLoop._ioloop_for_asyncio[loop]
    assert loop not in IOLoop._ioloop_for_asyncio


def test_map_keeps_dict_behaviour():
    mapping = IOLoop._ioloop_for_asyncio
    assert isinstance(mapping, _tornado_hook.AdoptingMap)
    assert isinstance(mapping, dict)
    with pytest.raises(KeyError):
        mapping[object()]
    _tornado_hook.patch(sys.modules["tornado.ioloop"])  # idempotent
    assert IOLoop._ioloop_for_asyncio is mapping


def test_install_then_ioloop_with_no_running_loop():
    """The reverse way: Tornado code under install() that makes its IOLoop
    before any loop runs, with IOLoop() or IOLoop.current()."""
    old_policy = asyncio.get_event_loop_policy()
    ioloop_c.install()
    before = open_fds()
    try:
        io = IOLoop(make_current=False)
        assert isinstance(io, shim.IOLoop)
        assert type(io.add_handler).__name__ == "builtin_function_or_method"
        io.close()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            current = IOLoop.current()
        check_native(current, current.asyncio_loop)
        seen = []

        async def inside():
            seen.append(IOLoop.current())
            current.stop()

        current.add_callback(lambda: asyncio.ensure_future(inside()))
        current.start()
        assert seen == [current]
        loop = current.asyncio_loop
        current.close()
        assert loop.is_closed() and loop not in IOLoop._ioloop_for_asyncio
        asyncio.set_event_loop(None)
        current = loop = None
        seen.clear()
        assert open_fds() == before
    finally:
        asyncio.set_event_loop_policy(old_policy)
        IOLoop.configure(None)


# -- import order, each in a fresh interpreter ----------------------------
ORDER = textwrap.dedent(
    """
    import asyncio, importlib.util, json, socket, sys
    order = sys.argv[1]
    out = {}
    if order == "tornado-first":
        import tornado.iostream
    import ioloop_c
    out["watching"] = any("ioloop_c" in repr(f) for f in sys.meta_path)
    if order == "find-spec-first":
        # Someone only looking tornado.ioloop up must not use the hook up.
        importlib.util.find_spec("tornado.ioloop")
    loop = ioloop_c.new_event_loop()
    if order in ("after-loop", "find-spec-first"):
        import tornado.ioloop

    async def main():
        # The first imports, for "inside"; the stream is made before
        # anything asked for IOLoop.current() (as TCPClient().connect()
        # does as a program's first step).
        from tornado.iostream import IOStream
        from tornado.ioloop import IOLoop
        a, b = socket.socketpair()
        stream = IOStream(a)
        kind = type(stream).__module__ + "." + type(stream).__name__
        stream.close()
        b.close()
        io = IOLoop.current()
        return {"type": type(io).__module__ + "." + type(io).__name__,
                "native": io.add_handler == loop.add_handler, "stream": kind}

    asyncio.set_event_loop(loop)
    out.update(loop.run_until_complete(main()))
    loop.close()
    import tornado.ioloop as tio
    out["left_in_map"] = len(tio.IOLoop._ioloop_for_asyncio)
    out["still_watching"] = any("ioloop_c" in repr(f) for f in sys.meta_path)
    out["loader"] = type(tio.__loader__).__name__
    out["spec_loader"] = type(tio.__spec__.loader).__name__
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("order", ["tornado-first", "after-loop", "inside", "find-spec-first"])
def test_import_order(order):
    proc = subprocess.run([sys.executable, "-c", ORDER, order], capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["watching"] == (order != "tornado-first")
    assert out["type"] == "ioloop_c.tornado.MainLoop"
    assert out["native"] is True
    assert out["stream"] == "ioloop_c._iostream.IOStream"
    assert out["left_in_map"] == 0
    assert out["still_watching"] is False
    # The hook leaves tornado.ioloop looking as if imported normally.
    assert out["loader"] == out["spec_loader"] == "SourceFileLoader"


def test_mainloop_logs_like_tornado(caplog):
    """Exceptions in Tornado-style callbacks on an adopted plain loop are
    logged on tornado.application, as on Tornado's own loop."""
    import logging

    async def main():
        io = IOLoop.current()
        done = asyncio.Event()
        io.add_callback(lambda: 1 / 0)
        io.add_callback(done.set)
        await done.wait()

    with caplog.at_level(logging.ERROR):
        ioloop_c.run(main())
    [record] = [r for r in caplog.records if "Exception in callback" in r.getMessage()]
    assert record.name == "tornado.application"
    assert record.exc_info[0] is ZeroDivisionError
