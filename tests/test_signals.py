"""Signals while the loop sleeps in the kernel: Ctrl-C leaves start()
promptly, the loop can be started again, and Python signal handlers run.

Each test that relies on SIGINT raising KeyboardInterrupt installs Python's
default handler (the ``default_sigint`` fixture).
"""

import os
import signal
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(60)


def send_later(delay, signum):
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def assert_loop_works(loop):
    out = []
    loop.add_callback(out.append, "callback")
    loop.call_later(0.01, out.append, "timer")
    loop.call_later(0.02, loop.stop)
    loop.start()
    assert out == ["callback", "timer"]


def test_sigint_during_a_30s_wait_raises_and_loop_restarts(loop, default_sigint):
    guard = loop.call_later(30, loop.stop)  # the kernel wait has a 30 s timeout
    timer = send_later(0.2, signal.SIGINT)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.start()
    finally:
        timer.cancel()
        timer.join()
    elapsed = time.monotonic() - t0
    assert elapsed < 10
    assert not loop.is_running()
    loop.remove_timeout(guard)
    assert_loop_works(loop)


def test_sigint_during_an_unbounded_wait_raises(loop, default_sigint):
    # Nothing scheduled: the kernel wait has no timeout at all.
    timer = send_later(0.2, signal.SIGINT)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.start()
    finally:
        timer.cancel()
        timer.join()
    assert time.monotonic() - t0 < 10
    assert_loop_works(loop)


def test_sigint_twice(loop, default_sigint):
    for _ in range(2):
        guard = loop.call_later(30, loop.stop)
        timer = send_later(0.1, signal.SIGINT)
        try:
            with pytest.raises(KeyboardInterrupt):
                loop.start()
        finally:
            timer.cancel()
            timer.join()
        loop.remove_timeout(guard)
    assert_loop_works(loop)


def test_python_signal_handler_runs_while_loop_sleeps(loop):
    got = []

    def on_usr1(signum, frame):
        loop.add_callback_from_signal(lambda: (got.append(signum), loop.stop()))

    old = signal.signal(signal.SIGUSR1, on_usr1)
    timer = send_later(0.1, signal.SIGUSR1)
    try:
        guard = loop.call_later(30, loop.stop)
        t0 = time.monotonic()
        loop.start()
        loop.remove_timeout(guard)
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, old)
    assert got == [signal.SIGUSR1]
    assert time.monotonic() - t0 < 10


def test_previous_wakeup_fd_is_restored(loop):
    # DESIGN: the loop uses signal.set_wakeup_fd while it runs and gives the
    # user's own wakeup fd back when it stops.
    r, w = socket.socketpair()
    w.setblocking(False)
    previous = signal.set_wakeup_fd(w.fileno())
    try:
        loop.add_callback(loop.stop)
        loop.start()
        assert signal.set_wakeup_fd(w.fileno()) == w.fileno()
    finally:
        signal.set_wakeup_fd(previous)
        r.close()
        w.close()
