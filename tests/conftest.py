"""Fixtures shared by the suite: every behaviour test runs on every
backend this host offers."""

import gc
import os
import socket

import pytest

import ioloop_c

BACKENDS = ioloop_c.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def loop(backend):
    """A Tornado-face loop on each backend, closed afterwards."""
    lp = ioloop_c.IOLoop(backend=backend)
    yield lp
    if lp.is_running():
        lp.stop()
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
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def run_for(loop, seconds):
    """Run the loop for about `seconds`, then return."""
    loop.call_later(seconds, loop.stop)
    loop.start()


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_fd_leak():
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    assert open_fds() == before
