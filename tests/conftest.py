"""Fixtures and helpers shared by the suite.

Every behaviour test of the Tornado face takes the ``loop`` fixture, which
is parametrized (through ``backend``) over ``ioloop_c.available_backends()``,
so each test runs once per backend this host offers.

Hangs: pyproject.toml sets a global pytest-timeout, and each test module
sets a tighter ``pytest.mark.timeout`` of its own, so a loop that never
wakes fails its test instead of blocking CI.

Hypothesis: under CI=true (``.ci/run``) the property and model tests are
derandomized (the same examples every run, no example database), so that
CI's verdict is about the commit and not the draw; run locally, they
explore afresh each time, which is where new failures are found.
"""

import asyncio
import gc
import os
import signal
import socket
import sys
import time

import pytest
from hypothesis import settings as _hypothesis_settings

import ioloop_c

if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    _hypothesis_settings.register_profile("ci", derandomize=True, database=None)
    _hypothesis_settings.load_profile("ci")

# Volume of the thread and stress tests: 1 normally; `make tsan` runs them
# at a fraction (IOLOOP_C_STRESS=0.05), since every GIL hand-off under an
# uninstrumented interpreter is slow there and races need no volume.
STRESS = float(os.environ.get("IOLOOP_C_STRESS", "1"))


def scaled(n):
    """n scaled by IOLOOP_C_STRESS, at least 2."""
    return max(int(n * STRESS), 2)


BACKENDS = ioloop_c.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of each backend this host offers, in turn."""
    return request.param


@pytest.fixture
def loop(backend):
    """A Tornado-face loop on each backend (made current, as IOLoop() does),
    closed afterwards and no longer current."""
    ioloop_c.IOLoop.clear_current()
    lp = ioloop_c.IOLoop(backend=backend)
    yield lp
    if lp.is_running():  # pragma: no cover - only after a failed test
        lp.stop()
    if not lp.is_closed():
        lp.close()
    ioloop_c.IOLoop.clear_current()


@pytest.fixture
def aloop(backend):
    """An asyncio-face loop on each backend, closed afterwards."""
    lp = ioloop_c.Loop(backend=backend)
    yield lp
    lp.close()


@pytest.fixture
def sockpair():
    """A connected pair of non-blocking sockets, closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def default_sigint():
    """Python's default SIGINT handler (KeyboardInterrupt) for the test,
    whatever pytest or the environment installed; restored afterwards."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def run_for(loop, seconds):
    """Run the loop for about ``seconds``, then return."""
    loop.call_later(seconds, loop.stop)
    loop.start()


def run_until(loop, condition, timeout=5.0, poll=0.001):
    """Run the loop until ``condition()`` is true (checked every ``poll``
    seconds from inside the loop) or ``timeout`` seconds have passed.
    Returns the last value of ``condition()``.  Used where a test waits for
    something to happen, so that a slow machine only makes it slower."""
    give_up = time.monotonic() + timeout
    pending = []

    def check():
        if condition() or time.monotonic() > give_up:
            loop.stop()
        else:
            pending[:] = [loop.call_later(poll, check)]

    loop.add_callback(check)
    try:
        loop.start()
    finally:
        for h in pending:
            loop.remove_timeout(h)
    return condition()


def has_ipv6():
    """Whether this machine can bind the IPv6 loopback address."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_fd_leak():
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() == before


def stock_writelines_hangs_on_empty(transport):
    """asyncio's own socket transport on 3.12 and 3.13 never finishes a
    close() once writelines() was given an empty chunk: the empty view
    stays queued, every send moves 0 bytes and the writer is never
    removed (fixed in 3.14).  Model tests drop empty chunks there, on the
    stock transport only; on ours they stay in."""
    return ((3, 12) <= sys.version_info[:2] < (3, 14)
            and type(transport).__module__ == "asyncio.selector_events")


def stock_writelines_after_close_fails():
    """asyncio's own socket transport on 3.12.1: writelines() after
    close() queues the data anyway and the send then fails (its write()
    drops it; later releases check in writelines() too)."""
    import inspect
    from asyncio import selector_events

    cls = selector_events._SelectorSocketTransport
    if "writelines" not in vars(cls):
        return False  # 3.11: the base class's, which calls write()
    return "_conn_lost" not in inspect.getsource(cls.writelines)


def asyncio_anchors():
    """(name, factory) of the anchors the asyncio-face tests also run on:
    stock asyncio's selector loop, and uvloop where it is installed."""
    anchors = [("asyncio", asyncio.SelectorEventLoop)]
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return anchors
    anchors.append(("uvloop", uvloop.new_event_loop))
    return anchors


def _native_factory(backend):
    def make():
        lp = ioloop_c.Loop(backend=backend)
        assert lp.native_transport
        return lp

    return make


def _python_transport():
    lp = ioloop_c.Loop()
    lp.native_transport = False
    return lp


def transport_factories():
    """(id, loop factory) pairs for the transport, datagram and server
    tests: ours with the native transport on every backend, ours with
    asyncio's Python transport (the escape hatch), then the anchors."""
    out = [(f"native-{b}", _native_factory(b)) for b in ioloop_c.available_backends()]
    out.append(("ioloop_c-pytransport", _python_transport))
    return out + asyncio_anchors()


def transport_loop_fixture():
    """The `loop` fixture of the transport, server, stream and datagram
    tests: each test once per transport_factories() entry, on a new loop
    made current, collected after."""
    factories = transport_factories()

    @pytest.fixture(params=[f for _, f in factories], ids=[n for n, _ in factories])
    def loop(request):
        yield from current_loop(request.param)
        gc.collect()

    return loop


def is_native(loop):
    return isinstance(loop, ioloop_c.Loop) and loop.native_transport


def is_uvloop(loop):
    return "uvloop" in type(loop).__module__


def current_loop(factory):
    """A fixture body: a new loop from factory, set as the current loop for
    the test, then its async generators shut down and the loop closed."""
    lp = factory()
    asyncio.set_event_loop(lp)
    yield lp
    if not lp.is_closed():
        lp.run_until_complete(lp.shutdown_asyncgens())
        lp.close()
    asyncio.set_event_loop(None)
