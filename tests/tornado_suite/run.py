"""Run Tornado's own test suite (it ships inside the tornado package) on
ioloop_c, through one of the ways in:

    python tests/tornado_suite/run.py configure   # IOLoop.configure(shim)
    python tests/tornado_suite/run.py install     # ioloop_c.install()
    python tests/tornado_suite/run.py policy      # asyncio policy only:
                                                  # Tornado's own AsyncIOLoop
                                                  # over ioloop_c.Loop
    python tests/tornado_suite/run.py stock       # the anchor, no ioloop_c
    python tests/tornado_suite/run.py uvloop      # the other anchor

Extra arguments go to Tornado's runner (e.g. a test name).
"""

import asyncio
import sys


def main() -> None:
    way = sys.argv.pop(1) if len(sys.argv) > 1 else "configure"
    import ioloop_c

    if way == "configure":
        from tornado.ioloop import IOLoop

        IOLoop.configure("ioloop_c.tornado.IOLoop")
    elif way == "install":
        ioloop_c.install()
    elif way == "policy":
        asyncio.set_event_loop_policy(ioloop_c.EventLoopPolicy())
    elif way == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif way != "stock":
        raise SystemExit(f"unknown way in: {way}")

    from tornado.ioloop import IOLoop

    print(f"tornado suite via {way}: IOLoop class {IOLoop.configured_class().__name__}, "
          f"asyncio loop {type(asyncio.new_event_loop()).__name__}", file=sys.stderr)
    from tornado.test import runtests

    # tornado.testing.main() looks for the suite as `all` in __main__.
    globals()["all"] = runtests.all
    runtests.main()


if __name__ == "__main__":
    main()
