"""Fixtures of the real-server tests (marker ``real``; ``make real-servers``).

Each test is one coroutine run, through the ``run`` fixture, on each of
three loops: stock asyncio and uvloop as the anchors, and ioloop_c.  The
servers are private ones started here (see real_servers.py), or ones named
by ``IOLOOP_C_PG_DSN`` / ``IOLOOP_C_REDIS_URL`` and, for their unix sockets,
``IOLOOP_C_PG_UNIX_DSN`` / ``IOLOOP_C_REDIS_UNIX_URL`` (a matrix run inside
the sid chroot reuses servers started on the host).

Skips: a library or server binary that is missing skips its tests with the
reason, but only on a developer's machine.  Under CI, as root, or with
``IOLOOP_C_REAL_STRICT=1`` (which `make real-servers` sets) the same
absence fails, so the target can never pass by skipping.  uvloop is the
one exception: it is an anchor, not the code under test, and has no build
for the newest CPythons yet, so its absence always skips.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import resource
import sys

import pytest

import ioloop_c

from . import real_servers

STRICT = (os.environ.get("IOLOOP_C_REAL_STRICT") == "1"
          or os.environ.get("CI", "").lower() in ("1", "true")
          or os.geteuid() == 0)


def unavailable(reason: str):
    """Skip with ``reason`` on a developer's machine; fail when strict."""
    if STRICT:
        pytest.fail(f"{reason} (strict: CI, root or IOLOOP_C_REAL_STRICT=1)",
                    pytrace=False)
    pytest.skip(reason)


def _import_or_report(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed ({exc}); "
                    f"pip install '.[real]' or make real-servers")


@pytest.fixture
def need():
    """``need(name)``: import the library ``name`` or report it missing
    (a skip on a developer's machine, a failure when strict)."""
    return _import_or_report


def _uvloop_factory():
    try:
        import uvloop
    except ImportError as exc:
        pytest.skip(f"uvloop (an anchor) is not installed for "
                    f"{sys.version.split()[0]}: {exc}")
    return uvloop.new_event_loop


LOOPS = {
    "asyncio": lambda: asyncio.SelectorEventLoop,
    "uvloop": _uvloop_factory,
    "ioloop_c": lambda: ioloop_c.new_event_loop,
}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


_warmed: set[str] = set()


def _warm_up(name: str, factory) -> None:
    """Run a loop of this kind once before fds are counted: uvloop (libuv)
    keeps a process-wide signal pipe from its first loop on, which is not
    a leak of the test's."""
    if name in _warmed:
        return

    async def touch():
        server = await asyncio.start_server(lambda r, w: w.close(),
                                            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        await asyncio.get_running_loop().getaddrinfo("localhost", port)

    with asyncio.Runner(loop_factory=factory) as r:
        r.run(asyncio.wait_for(touch(), 30))
    _warmed.add(name)


@pytest.fixture(scope="session", autouse=True)
def _fd_limit():
    """Raise the soft fd limit to the hard one: hundreds of connections,
    each one fd on the client side (and one more in-process server side)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# Seconds each test's coroutine may take before it fails with TimeoutError
# (pytest-timeout's marks are the backstop for a loop that never returns).
TIMEOUT = float(os.environ.get("IOLOOP_C_REAL_TIMEOUT", "60"))


@pytest.fixture(params=list(LOOPS))
def loop_name(request):
    return request.param


@pytest.fixture
def run(loop_name):
    """``run(coro_fn, *args, timeout=TIMEOUT)``: run ``coro_fn(*args)`` to
    the end on a fresh loop of the kind under test and return its result.

    Checks that the coroutine really ran on that loop, that the loop is
    closed afterwards, and that no fd outlives it (a transport or socket
    a library forgot, or one the loop failed to close)."""
    factory = LOOPS[loop_name]()
    _warm_up(loop_name, factory)
    gc.collect()
    before = open_fds()

    def runner(coro_fn, *args, timeout: float | None = None):
        if timeout is None:
            timeout = TIMEOUT
        async def checked():
            loop = asyncio.get_running_loop()
            expect = {"asyncio": "asyncio", "uvloop": "uvloop",
                      "ioloop_c": "ioloop_c"}[loop_name]
            assert type(loop).__module__.split(".")[0] == expect, type(loop)
            return await asyncio.wait_for(coro_fn(*args), timeout)

        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(checked())

    yield runner
    gc.collect()
    after = open_fds()
    assert after <= before, (
        f"{after - before} fd(s) left open after the test on {loop_name}")


def _server(kind: str, env: str, unix_env: str):
    """(TCP address, unix-socket address) of a server of this kind: the
    ones named in the environment, or a private server's started here."""
    url = os.environ.get(env)
    if url:
        yield url, os.environ.get(unix_env)
        return
    start = getattr(real_servers, kind)
    try:
        cm = start()
        server = cm.__enter__()
    except real_servers.ServerUnavailable as exc:
        unavailable(str(exc))
    try:
        yield server.url, server.unix_url
    finally:
        cm.__exit__(None, None, None)


def _unix(addresses, unix_env: str, env: str) -> str:
    if not addresses[1]:
        unavailable(f"{env} names a server but {unix_env} does not name its "
                    f"unix socket")
    return addresses[1]


@pytest.fixture(scope="session")
def _pg():
    yield from _server("postgres", "IOLOOP_C_PG_DSN", "IOLOOP_C_PG_UNIX_DSN")


@pytest.fixture(scope="session")
def _redis():
    yield from _server("redis", "IOLOOP_C_REDIS_URL",
                       "IOLOOP_C_REDIS_UNIX_URL")


@pytest.fixture
def pg_dsn(_pg):
    """The DSN of a PostgreSQL server for the tests (superuser), TCP."""
    return _pg[0]


@pytest.fixture
def pg_unix_dsn(_pg):
    """The same server's DSN through its unix socket."""
    return _unix(_pg, "IOLOOP_C_PG_UNIX_DSN", "IOLOOP_C_PG_DSN")


@pytest.fixture
def redis_url(_redis):
    """The URL of a Redis server for the tests (its database 0), TCP."""
    return _redis[0]


@pytest.fixture
def redis_unix_url(_redis):
    """The same server's URL through its unix socket."""
    return _unix(_redis, "IOLOOP_C_REDIS_UNIX_URL", "IOLOOP_C_REDIS_URL")
