"""Ctrl-C while the loop sleeps in the kernel."""

import os
import signal
import threading
import time

import pytest


@pytest.fixture
def default_sigint():
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_sigint_during_long_wait_raises_and_loop_restarts(loop, default_sigint):
    guard = loop.call_later(30, loop.stop)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        loop.start()
    elapsed = time.monotonic() - t0
    timer.join()
    assert elapsed < 10
    assert not loop.is_running()
    loop.remove_timeout(guard)
    out = []
    loop.add_callback(out.append, "again")
    loop.add_callback(loop.stop)
    loop.start()
    assert out == ["again"]


def test_signal_handler_runs_and_loop_keeps_going(loop):
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *a: loop.add_callback_from_signal(got.append, 1))
    try:
        guard = loop.call_later(30, loop.stop)
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        loop.add_callback(lambda: None)

        def check():
            if got:
                loop.stop()
            else:
                loop.call_later(0.01, check)

        loop.add_callback(check)
        loop.start()
        loop.remove_timeout(guard)
        assert got == [1]
    finally:
        signal.signal(signal.SIGUSR1, old)
