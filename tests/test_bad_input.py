"""Bad input is refused with the right exception and leaves nothing behind;
failing callbacks are logged and the loop goes on.

"Leaves nothing behind" is checked through behaviour: the fd can be added
again (no "already registered" ValueError), remove_handler is a no-op, and a
fresh socket that reuses the number works.
"""

import errno
import fcntl
import logging
import math
import os
import resource
import socket

import pytest

import ioloop_c

from conftest import run_for, run_until

pytestmark = pytest.mark.timeout(30)


def noop(*args):
    pass


def assert_fd_works(loop, sock, peer):
    """``sock`` can be registered and its handler fires."""
    got = []
    loop.add_handler(sock, lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
    peer.send(b"x")
    try:
        assert run_until(loop, lambda: got, timeout=5)
    finally:
        loop.remove_handler(sock)
    assert got[0] == loop.READ
    sock.recv(10)


# -- fds -----------------------------------------------------------------


def test_negative_fd(loop):
    with pytest.raises((ValueError, OSError)) as info:
        loop.add_handler(-1, noop, loop.READ)
    if isinstance(info.value, OSError):
        assert info.value.errno == errno.EBADF
    loop.remove_handler(-1)


def test_closed_fd_is_ebadf_and_its_number_stays_free(loop):
    a, b = socket.socketpair()
    num = a.fileno()
    a.close()
    b.close()
    with pytest.raises(OSError) as info:
        loop.add_handler(num, noop, loop.READ)
    assert info.value.errno == errno.EBADF
    loop.remove_handler(num)  # not registered: a no-op
    # A new socket gets the lowest free number, i.e. the same one: it is
    # not mistaken for a registered fd.
    c, d = socket.socketpair()
    try:
        assert num in (c.fileno(), d.fileno())
        if c.fileno() == num:
            assert_fd_works(loop, c, d)
        else:
            assert_fd_works(loop, d, c)
    finally:
        c.close()
        d.close()


def test_closed_socket_object(loop):
    a, b = socket.socketpair()
    a.close()
    try:
        with pytest.raises((ValueError, OSError)):
            loop.add_handler(a, noop, loop.READ)  # fileno() is -1
    finally:
        b.close()


def test_regular_file_under_epoll_is_eperm_and_works_elsewhere(loop, backend, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"data")
    fd = os.open(path, os.O_RDONLY)
    try:
        if backend == "epoll":
            with pytest.raises(OSError) as info:
                loop.add_handler(fd, noop, loop.READ)
            assert info.value.errno == errno.EPERM
            # Nothing half-registered: a second try fails the same way
            # (not with "already registered"), and removing is a no-op.
            with open(path, "rb") as f:
                with pytest.raises(OSError) as info:
                    loop.add_handler(f, noop, loop.READ)
                assert info.value.errno == errno.EPERM
                loop.remove_handler(f)
            with pytest.raises(OSError) as info:
                loop.add_handler(fd, noop, loop.READ)
            assert info.value.errno == errno.EPERM
            loop.remove_handler(fd)
            # The same fd can be watched by a poll or a select loop.
            for other_backend in ("poll", "select"):
                other = ioloop_c.IOLoop(backend=other_backend, make_current=False)
                try:
                    got = []
                    other.add_handler(fd, lambda fd, ev: (got.append(ev), other.stop()),
                                      other.READ)
                    assert run_until(other, lambda: got, timeout=5)
                    assert got[0] & other.READ
                finally:
                    other.close()
        else:
            # poll and select report a regular file as always ready.
            got = []
            loop.add_handler(fd, lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
            assert run_until(loop, lambda: got, timeout=5)
            loop.remove_handler(fd)
            assert got[0] & loop.READ
    finally:
        os.close(fd)
    # The number is free now; a socket that reuses it works.
    c, d = socket.socketpair()
    try:
        assert fd in (c.fileno(), d.fileno())
        if c.fileno() == fd:
            assert_fd_works(loop, c, d)
        else:
            assert_fd_works(loop, d, c)
    finally:
        c.close()
        d.close()


@pytest.mark.parametrize("obj", [object(), "3", 3.0, None, b"3"],
                         ids=["object", "str", "float", "None", "bytes"])
def test_object_without_fileno(loop, obj):
    with pytest.raises((TypeError, ValueError)):
        loop.add_handler(obj, noop, loop.READ)


def test_object_whose_fileno_raises(loop):
    class Broken:
        def fileno(self):
            raise OSError(errno.EBADF, "closed")

    with pytest.raises((OSError, ValueError)):
        loop.add_handler(Broken(), noop, loop.READ)


def test_fd_added_twice_is_value_error_and_first_stays(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: (got.append(("first", fd)), loop.stop()), loop.READ)
    with pytest.raises(ValueError):
        loop.add_handler(a, lambda fd, ev: got.append(("second", fd)), loop.READ)
    with pytest.raises(ValueError):  # same fd by number
        loop.add_handler(a.fileno(), lambda fd, ev: got.append(("third", fd)), loop.WRITE)
    b.send(b"x")
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    # The first registration is intact: its handler, its object, its mask
    # (WRITE from the refused third call would have fired too).
    assert got == [("first", a)]
    run_for(loop, 0.02)
    loop.remove_handler(a)
    assert all(name == "first" for name, _ in got)


def test_fd_beyond_fd_setsize(loop, backend, sockpair):
    # select() cannot watch fds >= FD_SETSIZE (1024): refuse cleanly rather
    # than write past the fd_set.  The others must just work.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= 1100:
        pytest.skip(f"RLIMIT_NOFILE {soft} too low to open fd 1100")
    a, b = sockpair
    hi = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, 1100)
    try:
        got = []
        try:
            loop.add_handler(hi, lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
        except (ValueError, OSError):
            assert backend == "select", f"{backend} refused fd {hi}"
            loop.remove_handler(hi)
            assert_fd_works(loop, a, b)
        else:
            b.send(b"x")
            assert run_until(loop, lambda: got, timeout=5)
            loop.remove_handler(hi)
            assert got[0] == loop.READ
    finally:
        os.close(hi)


# -- non-callables -------------------------------------------------------


@pytest.mark.parametrize("bad", [42, "x", None])
def test_non_callable_callback_refused(loop, bad, sockpair):
    a, _ = sockpair
    now = loop.time()
    for call in (
        lambda: loop.add_callback(bad),
        lambda: loop.spawn_callback(bad),
        lambda: loop.add_timeout(now, bad),
        lambda: loop.call_later(0, bad),
        lambda: loop.call_at(now, bad),
        lambda: loop.add_handler(a, bad, loop.READ),
    ):
        with pytest.raises(TypeError):
            call()
    assert loop.stats()["timers_live"] == 0
    # The handler was not registered.
    loop.add_handler(a, noop, loop.READ)
    loop.remove_handler(a)
    run_for(loop, 0.01)


# -- deadlines -----------------------------------------------------------


def test_nan_deadline_refused(loop):
    for call in (
        lambda: loop.add_timeout(math.nan, noop),
        lambda: loop.call_later(math.nan, noop),
        lambda: loop.call_at(math.nan, noop),
    ):
        with pytest.raises(ValueError):
            call()
    assert loop.stats()["timers_live"] == 0
    run_for(loop, 0.01)  # the heap is fine


@pytest.mark.parametrize("bad", ["1", None, object(), [1], b"1"],
                         ids=["str", "None", "object", "list", "bytes"])
def test_deadline_of_wrong_type_refused(loop, bad):
    for call in (
        lambda: loop.add_timeout(bad, noop),
        lambda: loop.call_later(bad, noop),
        lambda: loop.call_at(bad, noop),
    ):
        with pytest.raises(TypeError):
            call()
    assert loop.stats()["timers_live"] == 0


@pytest.mark.parametrize("deadline", [math.inf, 1e300, 1e18, 2.0**63], ids=repr)
def test_huge_deadline_accepted_never_fires_removable(loop, deadline):
    out = []
    handles = [
        loop.add_timeout(deadline, out.append, "add_timeout"),
        loop.call_at(deadline, out.append, "call_at"),
        loop.call_later(deadline, out.append, "call_later"),
    ]
    # An ordinary timer still fires, after the huge ones were added.
    loop.call_later(0.01, out.append, "ordinary")
    run_until(loop, lambda: out, timeout=5)
    run_for(loop, 0.05)
    assert out == ["ordinary"]
    for h in handles:
        loop.remove_timeout(h)
    assert loop.stats()["timers_live"] == 0
    run_for(loop, 0.01)
    assert out == ["ordinary"]


def test_minus_infinity_deadline_runs_at_once(loop):
    out = []
    loop.call_at(-math.inf, out.append, "call_at")
    loop.call_later(-math.inf, out.append, "call_later")
    loop.stop()
    loop.start()
    assert sorted(out) == ["call_at", "call_later"]


# -- failing callbacks ---------------------------------------------------


def error_records(caplog, exc_type):
    return [r for r in caplog.records
            if r.name == "ioloop_c" and r.levelno == logging.ERROR
            and r.exc_info and r.exc_info[0] is exc_type]


def test_callback_exception_is_logged_and_loop_goes_on(loop, caplog):
    out = []

    def boom():
        raise ZeroDivisionError("boom")

    loop.add_callback(boom)
    loop.add_callback(out.append, "same tick")
    loop.add_callback(lambda: loop.add_callback(out.append, "next tick"))
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: len(out) == 2, timeout=5)
    assert out == ["same tick", "next tick"]
    records = error_records(caplog, ZeroDivisionError)
    assert len(records) == 1
    assert "boom" in str(records[0].exc_info[1])


def test_timer_exception_is_logged_and_loop_goes_on(loop, caplog):
    out = []

    def boom():
        raise LookupError("timer boom")

    loop.call_later(0, boom)
    loop.call_later(0.01, out.append, "later timer")
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: out, timeout=5)
    assert out == ["later timer"]
    assert len(error_records(caplog, LookupError)) == 1


def test_handler_exception_is_logged_and_loop_goes_on(loop, sockpair, caplog):
    a, b = sockpair
    out = []

    def bad(fd, ev):
        loop.remove_handler(fd)
        loop.add_callback(out.append, "after")
        raise RuntimeError("handler failed")

    loop.add_handler(a, bad, loop.READ)
    b.send(b"x")
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: out, timeout=5)
    assert out == ["after"]
    assert len(error_records(caplog, RuntimeError)) == 1


def test_handler_that_keeps_raising_does_not_stop_the_loop(loop, sockpair, caplog):
    a, b = sockpair
    calls = [0]

    def bad(fd, ev):
        calls[0] += 1
        raise RuntimeError("again")  # never reads: called every pass

    loop.add_handler(a, bad, loop.READ)
    b.send(b"x")
    with caplog.at_level(logging.ERROR, logger="ioloop_c"):
        run_until(loop, lambda: calls[0] >= 3, timeout=5)
    loop.remove_handler(a)
    assert calls[0] >= 3
    assert len(error_records(caplog, RuntimeError)) == calls[0]


def test_keyboard_interrupt_from_callback_propagates_and_loop_restarts(loop):
    out = []

    def interrupt():
        out.append("interrupt")
        raise KeyboardInterrupt

    loop.add_callback(interrupt)
    loop.add_callback(out.append, "queued")
    with pytest.raises(KeyboardInterrupt):
        loop.start()
    assert not loop.is_running()
    loop.add_callback(loop.stop)
    loop.start()
    # The callback queued behind the interrupt is neither lost nor run
    # twice, and the interrupting one does not run again.
    assert out == ["interrupt", "queued"]
    loop.add_callback(out.append, "again")
    loop.add_callback(loop.stop)
    loop.start()
    assert out == ["interrupt", "queued", "again"]


def test_keyboard_interrupt_from_a_handler_propagates(loop, sockpair):
    a, b = sockpair

    def interrupt(fd, ev):
        loop.remove_handler(fd)
        raise KeyboardInterrupt

    loop.add_handler(a, interrupt, loop.READ)
    b.send(b"x")
    guard = loop.call_later(10, loop.stop)
    with pytest.raises(KeyboardInterrupt):
        loop.start()
    loop.remove_timeout(guard)
    out = []
    loop.add_callback(out.append, 1)
    loop.add_callback(loop.stop)
    loop.start()
    assert out == [1]


def test_system_exit_propagates(loop):
    def leave():
        raise SystemExit(3)

    loop.add_callback(leave)
    with pytest.raises(SystemExit) as info:
        loop.start()
    assert info.value.code == 3
    assert not loop.is_running()
