"""add_handler, update_handler, remove_handler, close(all_fds=True).

Refused registrations (bad fds, non-callables, twice) are in
test_bad_input.py.
"""

import os
import socket

import pytest

import ioloop_c

from conftest import run_for, run_until

pytestmark = pytest.mark.timeout(30)


class FileLike:
    """Not a socket: just something with fileno() (and close())."""

    def __init__(self, fd):
        self.fd = fd
        self.closed = False

    def fileno(self):
        return self.fd

    def close(self):
        self.closed = True
        os.close(self.fd)


def test_constants():
    assert (ioloop_c.IOLoop.READ, ioloop_c.IOLoop.WRITE, ioloop_c.IOLoop.ERROR) == (1, 4, 0x18)
    assert (ioloop_c.READ, ioloop_c.WRITE, ioloop_c.ERROR) == (1, 4, 0x18)


def test_handler_gets_the_registered_socket_and_mask(loop, sockpair):
    a, b = sockpair
    got = []

    def on_fd(obj, events):
        got.append((obj, events))
        loop.remove_handler(obj)
        loop.stop()

    loop.add_handler(a, on_fd, loop.READ)
    b.send(b"x")
    loop.start()
    assert len(got) == 1
    assert got[0][0] is a
    assert got[0][1] == loop.READ


def test_handler_gets_the_registered_file_like_object(loop):
    r, w = os.pipe()
    obj = FileLike(r)
    got = []
    try:
        loop.add_handler(obj, lambda o, ev: (got.append((o, ev)), loop.stop()), loop.READ)
        os.write(w, b"x")
        guard = loop.call_later(10, loop.stop)
        loop.start()
        loop.remove_timeout(guard)
        loop.remove_handler(obj)
        assert len(got) == 1 and got[0][0] is obj and got[0][1] == loop.READ
    finally:
        os.close(r)
        os.close(w)


def test_handler_with_int_fd(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a.fileno(), lambda fd, ev: (got.append((fd, ev)), loop.stop()), loop.READ)
    b.send(b"x")
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    loop.remove_handler(a.fileno())
    assert got == [(a.fileno(), loop.READ)]
    assert type(got[0][0]) is int


def test_write_event(loop, sockpair):
    a, _ = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: (got.append(ev), loop.stop()), loop.WRITE)
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    loop.remove_handler(a)
    assert got == [loop.WRITE]


def test_read_and_write_come_in_one_call(loop, sockpair):
    # Backends hand dispatch one {fd, mask}: a socket both readable and
    # writable gets one call with both bits, on every backend.
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), loop.READ | loop.WRITE)
    b.send(b"x")
    loop.stop()
    loop.start()  # one pass
    loop.remove_handler(a)
    assert got == [loop.READ | loop.WRITE]


def test_no_event_no_call(loop, sockpair):
    a, _ = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), loop.READ)
    run_for(loop, 0.05)
    loop.remove_handler(a)
    assert got == []


def test_level_triggered_until_drained(loop, sockpair):
    # Tornado's handlers are level-triggered: unread data calls the handler
    # again on the next pass; once read, the calls stop.
    a, b = sockpair
    got = []

    def on_fd(fd, ev):
        got.append(ev)
        if len(got) == 3:
            a.recv(100)

    loop.add_handler(a, on_fd, loop.READ)
    b.send(b"x")
    run_until(loop, lambda: len(got) >= 3, timeout=5)
    run_for(loop, 0.03)
    loop.remove_handler(a)
    assert got == [loop.READ] * 3


def test_update_handler_switches_events(loop, sockpair):
    a, b = sockpair
    got = []

    def on_fd(fd, events):
        got.append(events)
        if len(got) == 1:
            a.recv(10)
            loop.update_handler(fd, loop.WRITE)
        else:
            loop.remove_handler(fd)
            loop.stop()

    loop.add_handler(a, on_fd, loop.READ)
    b.send(b"x")
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert got == [loop.READ, loop.WRITE]


def test_update_handler_by_int_and_to_none(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), loop.WRITE)
    loop.update_handler(a.fileno(), loop.READ)  # registered as an object
    run_for(loop, 0.03)
    assert got == []  # writable, but only READ is watched now
    loop.update_handler(a, ioloop_c.IOLoop.NONE)
    b.send(b"x")
    run_for(loop, 0.03)
    assert got == []
    loop.update_handler(a, loop.READ)
    run_until(loop, lambda: got, timeout=5)
    loop.remove_handler(a)
    assert got[0] == loop.READ


def test_remove_handler_stops_calls(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), loop.READ)
    loop.remove_handler(a)
    b.send(b"x")
    run_for(loop, 0.03)
    assert got == []


def test_remove_handler_by_fd_number_of_an_object(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), loop.READ)
    loop.remove_handler(a.fileno())
    b.send(b"x")
    run_for(loop, 0.03)
    assert got == []
    # It is free again.
    loop.add_handler(a, lambda fd, ev: (got.append(ev), loop.stop()), loop.READ)
    run_until(loop, lambda: got, timeout=5)
    loop.remove_handler(a)
    assert got == [loop.READ]


def test_remove_handler_unknown_is_silent(loop, sockpair):
    a, _ = sockpair
    loop.remove_handler(a)
    loop.remove_handler(a.fileno())
    loop.remove_handler(12345)


def test_readd_after_remove(loop, sockpair):
    a, b = sockpair
    got = []
    for i in range(3):
        loop.add_handler(a, lambda fd, ev, i=i: (got.append(i), loop.stop()), loop.READ)
        b.send(b"x")
        guard = loop.call_later(10, loop.stop)
        loop.start()
        loop.remove_timeout(guard)
        loop.remove_handler(a)
        a.recv(10)
    assert got == [0, 1, 2]


def test_handler_for_peer_close(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: (got.append(ev), loop.remove_handler(fd), loop.stop()),
                     loop.READ)
    b.close()
    guard = loop.call_later(10, loop.stop)
    loop.start()
    loop.remove_timeout(guard)
    assert got and got[0] & (loop.READ | loop.ERROR)


def test_remove_handler_after_socket_closed(loop):
    a, b = socket.socketpair()
    before = loop.stats()["fds_watched"]
    loop.add_handler(a, lambda *x: None, loop.READ)
    a.close()
    loop.remove_handler(a)  # fileno() is -1 now: found by object
    assert loop.stats()["fds_watched"] == before
    b.close()
    run_for(loop, 0.01)  # the loop still runs


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
        guard = loop.call_later(10, loop.stop)
        loop.start()
        loop.remove_timeout(guard)
        assert got == [loop.READ]
        loop.remove_handler(c)
    finally:
        for s in (b, c, d):
            s.close()


def test_many_fds(loop):
    pairs = [socket.socketpair() for _ in range(100)]
    got = set()
    try:
        for i, (x, _) in enumerate(pairs):
            loop.add_handler(x, lambda fd, ev, i=i: (got.add(i), loop.remove_handler(fd)),
                             loop.READ)
        for _, y in pairs[::3]:
            y.send(b"x")
        run_until(loop, lambda: len(got) == len(pairs[::3]), timeout=5)
        run_for(loop, 0.02)
        assert got == set(range(0, 100, 3))
    finally:
        for x, y in pairs:
            loop.remove_handler(x)
            x.close()
            y.close()


def test_close_all_fds_closes_sockets_fds_and_file_objects(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    a, b = socket.socketpair()
    r, w = os.pipe()
    r2, w2 = os.pipe()
    obj = FileLike(r2)
    lp.add_handler(a, lambda *x: None, lp.READ)
    lp.add_handler(r, lambda *x: None, lp.READ)
    lp.add_handler(obj, lambda *x: None, lp.READ)
    lp.close(all_fds=True)
    assert a.fileno() == -1  # socket.close() was called
    assert obj.closed  # the object's close() was called
    for fd in (r, r2):
        with pytest.raises(OSError):
            os.fstat(fd)
    os.close(w)
    os.close(w2)
    b.close()


def test_close_without_all_fds_leaves_them_open(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    a, b = socket.socketpair()
    r, w = os.pipe()
    lp.add_handler(a, lambda *x: None, lp.READ)
    lp.add_handler(r, lambda *x: None, lp.READ)
    lp.close()
    try:
        assert a.fileno() != -1
        os.fstat(r)
        b.send(b"still open")
        assert a.recv(100) == b"still open"
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()


def test_add_with_no_events_then_update(loop, sockpair):
    a, b = sockpair
    got = []
    loop.add_handler(a, lambda fd, ev: got.append(ev), ioloop_c.IOLoop.NONE)
    b.send(b"x")
    run_for(loop, 0.03)
    assert got == []
    loop.update_handler(a, loop.READ)
    assert run_until(loop, lambda: got, timeout=5)
    loop.remove_handler(a)
    assert got[0] == loop.READ
