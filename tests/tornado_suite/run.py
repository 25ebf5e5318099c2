"""Run Tornado's own test suite (it ships inside the tornado package) on
ioloop_c, through one of the ways in:

    python tests/tornado_suite/run.py configure   # IOLoop.configure(shim)
    python tests/tornado_suite/run.py install     # ioloop_c.install()
    python tests/tornado_suite/run.py policy      # asyncio policy only:
                                                  # Tornado's own AsyncIOLoop
                                                  # over ioloop_c.Loop
    python tests/tornado_suite/run.py mainloop    # no configure, no policy:
                                                  # each test's IOLoop is what
                                                  # Tornado makes for a plain
                                                  # ioloop_c.new_event_loop()
                                                  # set as asyncio's loop (the
                                                  # shim's MainLoop); what
                                                  # asyncio.run(loop_factory=)
                                                  # and ioloop_c.run() give
    python tests/tornado_suite/run.py stock       # the anchor, no ioloop_c
    python tests/tornado_suite/run.py uvloop      # the other anchor

Extra arguments go to Tornado's runner (e.g. a test name).

    python tests/tornado_suite/run.py --rerun WAY

runs the suite in a child and, if at most RERUN_AT_MOST tests fail, runs
the test classes that hold them once more in a fresh child: a failed test
whose class then passes whole is named on stderr as flaky and the run
passes.  The class, not the test alone: run cold in a new process,
test_request_timeout's first TLS handshake (certificate loading, imports)
misses its 0.1 s every time, while after its class's earlier tests it
holds.  A few of Tornado's tests hold real
time limits (simple_httpclient's test_request_timeout wants a TLS handshake
within 0.1 s; Tornado skips it on Travis), which a loaded 2-core machine
misses now and then, on the stock loop as on ours.  Anything that fails
twice fails the run.
"""

import asyncio
import functools
import os
import re
import subprocess
import sys

RERUN_AT_MOST = 3
_FAILED = re.compile(r"^(?:ERROR|FAIL): (\w+) \(([\w.]+)\)", re.M)


def run_with_rerun(way: str, extra: list[str]) -> int:
    """The suite in a child; failures, if few, once more in another."""
    me = os.path.abspath(__file__)
    first = subprocess.run([sys.executable, me, way, *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(first.stdout)
    if first.returncode == 0:
        return 0
    failed = sorted({m.group(2) if m.group(2).endswith("." + m.group(1))
                     else f"{m.group(2)}.{m.group(1)}"
                     for m in _FAILED.finditer(first.stdout)})
    if not failed or len(failed) > RERUN_AT_MOST:
        return first.returncode
    classes = sorted({name.rsplit(".", 1)[0] for name in failed})
    print(f"\nrerunning the classes of {len(failed)} failed test(s) once: "
          f"{' '.join(classes)}", flush=True)
    again = subprocess.run([sys.executable, me, way, *classes], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(again.stdout)
    if again.returncode != 0:
        return again.returncode
    for name in failed:
        print(f"flaky (failed, then passed on rerun): {name}", file=sys.stderr)
    print(f"OK after rerun ({len(failed)} flaky)")
    return 0


def use_mainloop() -> None:
    """Each AsyncTestCase gets the IOLoop Tornado itself makes around a new
    ioloop_c loop set as asyncio's current loop, and that loop is closed
    after the test (Tornado leaves an AsyncIOMainLoop's loop open)."""
    from tornado.ioloop import IOLoop
    from tornado.testing import AsyncTestCase

    import ioloop_c
    import ioloop_c.tornado as shim

    @functools.wraps(AsyncTestCase.get_new_ioloop)
    def get_new_ioloop(self):
        asyncio.set_event_loop(ioloop_c.new_event_loop())
        io = IOLoop.current()
        assert type(io) is shim.MainLoop, io
        return io

    tear_down = AsyncTestCase.tearDown

    @functools.wraps(tear_down)
    def tearDown(self):
        try:
            tear_down(self)
        finally:
            self.io_loop.close(all_fds=True)

    AsyncTestCase.get_new_ioloop = get_new_ioloop
    AsyncTestCase.tearDown = tearDown


def stricter_close_leak_test() -> None:
    """Tornado's LeakTest.test_asyncio_close_leak asserts that closing ten
    asyncio loops (each with an IOLoop.current() inside) leaves exactly one
    dangling entry in IOLoop._ioloop_for_asyncio: stock Tornado only purges
    closed loops when the next IOLoop is made.  An ioloop_c loop removes its
    entry as it closes, so where asyncio.new_event_loop() is ours the same
    test runs and asserts none is left."""
    from tornado.ioloop import IOLoop
    from tornado.test import asyncio_test

    def test_asyncio_close_leak(self):
        orig_count = len(IOLoop._ioloop_for_asyncio)
        for _ in range(10):
            loop = asyncio.new_event_loop()
            loop.call_soon(IOLoop.current)
            loop.call_soon(loop.stop)
            loop.run_forever()
            loop.close()
        self.assertEqual(len(IOLoop._ioloop_for_asyncio) - orig_count, 0)

    asyncio_test.LeakTest.test_asyncio_close_leak = test_asyncio_close_leak
    print("asyncio_test.LeakTest.test_asyncio_close_leak: asserts 0 entries left "
          "(stock Tornado leaves 1)", file=sys.stderr)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rerun":
        sys.exit(run_with_rerun(sys.argv[2], sys.argv[3:]))
    way = sys.argv.pop(1) if len(sys.argv) > 1 else "configure"
    import ioloop_c

    if way == "configure":
        from tornado.ioloop import IOLoop

        IOLoop.configure("ioloop_c.tornado.IOLoop")
    elif way == "install":
        ioloop_c.install()
    elif way == "policy":
        asyncio.set_event_loop_policy(ioloop_c.EventLoopPolicy())
    elif way == "mainloop":
        use_mainloop()
    elif way == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif way != "stock":
        raise SystemExit(f"unknown way in: {way}")

    from tornado.ioloop import IOLoop

    if way in ("install", "policy"):
        stricter_close_leak_test()
    # The loop is closed at once: one left to the collector warns (an
    # "unclosed event loop" ResourceWarning) in the middle of the suite,
    # whose runner fails a run that wrote anything to stderr.
    probe = asyncio.new_event_loop()
    probe.close()
    print(f"tornado suite via {way}: IOLoop class {IOLoop.configured_class().__name__}, "
          f"asyncio loop {type(probe).__name__}", file=sys.stderr)
    from tornado.test import runtests

    # tornado.testing.main() looks for the suite as `all` in __main__.
    globals()["all"] = runtests.all
    runtests.main()


if __name__ == "__main__":
    main()
