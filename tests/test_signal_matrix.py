"""Signals end to end through asyncio's API on every backend: handlers for
SIGUSR1 and SIGCHLD (which uvloop refuses), the user's own wakeup fd given
back, and Ctrl-C while the loop sleeps in the kernel."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

pytestmark = pytest.mark.timeout(60)


def test_sigusr1_handler_runs_in_the_loop(aloop):
    got = []
    aloop.add_signal_handler(signal.SIGUSR1, lambda *a: (got.append(a), aloop.stop()), "x")
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    aloop.call_later(10, aloop.stop)
    aloop.run_forever()
    assert got == [("x",)]
    assert aloop.remove_signal_handler(signal.SIGUSR1)
    assert not aloop.remove_signal_handler(signal.SIGUSR1)


def test_sigchld_handler_sees_a_child_exit(aloop):
    exited = []

    def on_child():
        # Reap whatever exited (the handler may coalesce several).
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            exited.append((pid, os.waitstatus_to_exitcode(status)))
        if exited:
            aloop.stop()

    aloop.add_signal_handler(signal.SIGCHLD, on_child)
    try:
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
        aloop.call_later(30, aloop.stop)
        aloop.run_forever()
        assert (proc.pid, 7) in exited
        proc.returncode = 7  # reaped by our handler: keep Popen quiet
    finally:
        aloop.remove_signal_handler(signal.SIGCHLD)


def test_subprocess_through_asyncio_api(aloop):
    async def main():
        p = await asyncio.create_subprocess_exec(sys.executable, "-c", "print(6 * 7)",
                                                 stdout=asyncio.subprocess.PIPE)
        out, _ = await p.communicate()
        return p.returncode, out

    assert aloop.run_until_complete(main()) == (0, b"42\n")


@pytest.mark.parametrize("how", ["remove", "close"])
def test_users_wakeup_fd_given_back(backend, how):
    """A wakeup fd the user set before is in force again once the loop
    lets go of signals (on removing the last handler, or on close)."""
    import ioloop_c

    r, w = socket.socketpair()
    w.setblocking(False)
    old = signal.set_wakeup_fd(w.fileno())
    try:
        lp = ioloop_c.Loop(backend=backend)
        lp.add_signal_handler(signal.SIGUSR2, lambda: None)
        assert signal.set_wakeup_fd(signal.set_wakeup_fd(-1)) != w.fileno()
        if how == "remove":
            lp.remove_signal_handler(signal.SIGUSR2)
        lp.close()
        current = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(current)
        assert current == w.fileno()
    finally:
        signal.set_wakeup_fd(old)
        r.close()
        w.close()


@pytest.mark.parametrize("entry", ["run_forever", "run_until_complete"])
def test_ctrl_c_while_blocked_in_the_kernel(aloop, default_sigint, entry):
    far = aloop.call_later(3600, lambda: None)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        if entry == "run_forever":
            aloop.run_forever()
        else:
            aloop.run_until_complete(asyncio.sleep(3600))
    far.cancel()
    # Still usable.
    aloop.call_soon(aloop.stop)
    aloop.run_forever()
    for task in asyncio.all_tasks(aloop):
        task.cancel()
    aloop.run_until_complete(asyncio.sleep(0))
