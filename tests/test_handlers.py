"""add_handler, update_handler, remove_handler."""

import errno
import os
import socket
import tempfile

import pytest

import ioloop_c
from conftest import run_for


def test_handler_gets_registered_object_and_mask(loop, sockpair):
    a, b = sockpair
    got = []

    def on_fd(obj, events):
        got.append((obj, events))
        loop.remove_handler(obj)
        loop.stop()

    loop.add_handler(a, on_fd, loop.READ)
    b.send(b"x")
    loop.start()
    assert got == [(a, loop.READ)]


def test_handler_with_int_fd(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a.fileno(), lambda fd, ev: (got.append((fd, ev)), loop.stop()), loop.READ)
    b.send(b"x")
    loop.start()
    assert got == [(a.fileno(), loop.READ)]
    loop.remove_handler(a.fileno())


def test_update_handler_switches_events(loop, sockpair):
    a, b = sockpair
    got = []

    def on_fd(fd, events):
        got.append(events)
        if len(got) == 1:
            loop.update_handler(fd, loop.WRITE)
        else:
            loop.remove_handler(fd)
            loop.stop()

    loop.add_handler(a, on_fd, loop.READ)
    b.send(b"x")
    loop.start()
    assert got == [loop.READ, loop.WRITE]


def test_remove_handler_unknown_is_silent(loop, sockpair):
    a, _ = sockpair
    loop.remove_handler(a)
    loop.remove_handler(12345)


def test_remove_handler_after_socket_closed(loop):
    a, b = socket.socketpair()
    loop.add_handler(a, lambda *x: None, loop.READ)
    a.close()
    loop.remove_handler(a)  # fileno() is -1 now; found by object
    assert loop.stats()["fds_watched"] == 1  # only asyncio's self-pipe
    b.close()


def test_added_twice_is_value_error_and_first_stays(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: (got.append(1), loop.stop()), loop.READ)
    with pytest.raises(ValueError):
        loop.add_handler(a, lambda fd, ev: got.append(2), loop.READ)
    with pytest.raises(ValueError):
        loop.add_handler(a.fileno(), lambda fd, ev: got.append(2), loop.READ)
    b.send(b"x")
    loop.start()
    assert got == [1]
    loop.remove_handler(a)


def test_error_on_peer_close(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: (got.append(ev), loop.remove_handler(fd), loop.stop()),
                     loop.READ)
    b.close()
    loop.start()
    assert got and got[0] & (loop.READ | loop.ERROR)


def test_bad_fds(loop):
    with pytest.raises((ValueError, OSError)):
        loop.add_handler(-1, lambda *a: None, loop.READ)
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        loop.add_handler(r, lambda *a: None, loop.READ)
    assert info.value.errno == errno.EBADF
    with pytest.raises(TypeError):
        loop.add_handler(object(), lambda *a: None, loop.READ)
    with pytest.raises(TypeError):
        loop.add_handler("3", lambda *a: None, loop.READ)
    with pytest.raises(TypeError):
        loop.add_handler(0, "not callable", loop.READ)
    with pytest.raises(ValueError):
        loop.add_handler(0, lambda *a: None, 0x1000)
    assert loop.stats()["fds_watched"] == 1


def test_regular_file(loop, backend, sockpair):
    with tempfile.TemporaryFile() as f:
        if backend == "epoll":
            with pytest.raises(OSError) as info:
                loop.add_handler(f.fileno(), lambda *a: None, loop.READ)
            assert info.value.errno == errno.EPERM
            # Nothing half-registered: the fd is free for another backend.
            loop.remove_handler(f.fileno())
            other = ioloop_c.IOLoop(backend="poll", make_current=False)
            try:
                got = []
                other.add_handler(f.fileno(), lambda fd, ev: (got.append(ev), other.stop()),
                                  other.READ)
                other.start()
                assert got and got[0] & other.READ
            finally:
                other.close()
        else:
            got = []
            loop.add_handler(f.fileno(), lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
            loop.start()
            assert got[0] & loop.READ
            loop.remove_handler(f.fileno())
    # The loop still works for sockets afterwards.
    a, b = sockpair
    loop.add_handler(a, lambda fd, ev: loop.stop(), loop.READ)
    b.send(b"x")
    loop.start()
    loop.remove_handler(a)


def test_handler_exception_logged_loop_continues(loop, sockpair, caplog):
    a, b = sockpair

    def bad(fd, ev):
        loop.remove_handler(fd)
        raise RuntimeError("handler failed")

    loop.add_handler(a, bad, loop.READ)
    b.send(b"x")
    with caplog.at_level("ERROR", logger="ioloop_c"):
        run_for(loop, 0.02)
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_closed_fd_number_reused(loop):
    a, b = socket.socketpair()
    num = a.fileno()
    loop.add_handler(num, lambda *x: None, loop.READ)
    a.close()
    loop.remove_handler(num)
    c, d = socket.socketpair()
    try:
        got = []
        loop.add_handler(c, lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
        d.send(b"x")
        loop.start()
        assert got == [loop.READ]
        loop.remove_handler(c)
    finally:
        for s in (b, c, d):
            s.close()


def test_close_all_fds(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    a, b = socket.socketpair()
    r, w = os.pipe()
    lp.add_handler(a, lambda *x: None, lp.READ)
    lp.add_handler(r, lambda *x: None, lp.READ)
    lp.close(all_fds=True)
    assert a.fileno() == -1
    with pytest.raises(OSError):
        os.fstat(r)
    os.close(w)
    b.close()
