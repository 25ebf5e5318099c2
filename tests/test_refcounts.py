"""Reference counts per operation, on a debug interpreter.

Every public operation is repeated a few thousand times and the
interpreter's total reference count (``sys.gettotalrefcount``, debug
builds only) must come back where it was: a missing Py_DECREF anywhere in
the C paths shows as a steady +1 or more per operation, far above the
noise.  ``make debug-python`` runs these on Debian's python3.11-dbg; a
release interpreter has no reference total, so they skip there.
"""

import asyncio
import contextvars
import gc
import socket
import sys

import pytest

import ioloop_c

pytestmark = pytest.mark.skipif(
    not hasattr(sys, "gettotalrefcount"), reason="needs a debug interpreter (make debug-python)"
)

N = 2000


def _noop(*args):
    pass


def _soon(n):
    lp = ioloop_c.Loop()
    for _ in range(n):
        lp.call_soon(_noop)
        lp.call_soon(_noop, 1)
        lp.call_soon(_noop, 1, 2)
    lp.call_soon(lp.stop)
    lp.run_forever()
    lp.close()


def _timers(n):
    lp = ioloop_c.Loop()
    for _ in range(n):
        lp.call_later(0, _noop)
        lp.call_at(lp.time(), _noop, 1)
        lp.call_later(10, _noop).cancel()
    lp.call_later(0.001, lp.stop)
    lp.run_forever()
    lp.close()


def _tornado(n):
    lp = ioloop_c.IOLoop(make_current=False)
    for _ in range(n):
        lp.add_callback(_noop, 1)
        lp.spawn_callback(_noop)
        lp.remove_timeout(lp.call_later(10, _noop))
        lp.add_timeout(lp.time(), _noop)
    lp.call_later(0.001, lp.stop)
    lp.start()
    lp.close()


def _registrations(n):
    a, b = socket.socketpair()
    lp = ioloop_c.IOLoop(make_current=False)
    al = ioloop_c.Loop()
    for _ in range(n):
        lp.add_handler(a, _noop, lp.READ)
        lp.update_handler(a, lp.READ | lp.WRITE)
        lp.remove_handler(a)
        al.add_reader(a.fileno(), _noop, 1)
        al.add_writer(a.fileno(), _noop)
        al.remove_reader(a.fileno())
        al.remove_writer(a.fileno())
    lp.close()
    al.close()
    a.close()
    b.close()


def _events(n):
    a, b = socket.socketpair()
    a.setblocking(False)
    lp = ioloop_c.Loop()
    count = [0]

    def on_read():
        a.recv(1)
        count[0] += 1
        if count[0] < n:
            b.send(b"x")
        else:
            lp.stop()

    lp.add_reader(a.fileno(), on_read)
    b.send(b"x")
    lp.run_forever()
    lp.remove_reader(a.fileno())
    lp.close()
    a.close()
    b.close()


def _errors(n):
    lp = ioloop_c.Loop()
    io = ioloop_c.IOLoop(make_current=False)
    for _ in range(n):
        for call in (lambda: lp.call_later("x", _noop),
                     lambda: lp.add_reader(-1, _noop),
                     lambda: lp.call_soon(42),
                     lambda: io.add_handler(-1, _noop, io.READ),
                     lambda: io.remove_timeout(object()),
                     lambda: lp.call_later(float("nan"), _noop)):
            try:
                call()
            except (TypeError, ValueError):
                pass
    lp.close()
    io.close()


def _raising(n):
    lp = ioloop_c.Loop()
    lp.set_exception_handler(lambda loop, context: None)

    def bad():
        raise ValueError("boom")

    for _ in range(n):
        lp.call_soon(bad)
    lp.call_soon(lp.stop)
    lp.run_forever()
    lp.close()


def _interrupted(n):
    lp = ioloop_c.Loop()

    def interrupt():
        raise KeyboardInterrupt

    for _ in range(n // 10):
        lp.call_soon(interrupt)
        try:
            lp.run_forever()
        except KeyboardInterrupt:
            pass
    lp.close()


def _contexts_and_reprs(n):
    lp = ioloop_c.Loop()
    ctx = contextvars.copy_context()
    for _ in range(n):
        repr(lp.call_soon(_noop, context=ctx))
        h = lp.call_later(1, _noop, context=ctx)
        repr(h)
        h.when()
        h.cancel()
    lp.call_soon(lp.stop)
    lp.run_forever()
    lp.close()


def _stats_and_detector(n):
    lp = ioloop_c.Loop()
    reports = []
    lp.set_slow_callback_threshold(0.0, lambda h, s: reports.append(s))
    for _ in range(n):
        lp.call_soon(_noop)
    lp.call_soon(lp.stop)
    lp.run_forever()
    for _ in range(n):
        lp.stats()
    lp.set_slow_callback_threshold(None)
    lp.close()


def _coroutines(n):
    lp = ioloop_c.Loop()

    async def step():
        await asyncio.sleep(0)

    for _ in range(n // 10):
        lp.run_until_complete(step())
    lp.close()


def _loops(n):
    for _ in range(n // 10):
        ioloop_c.Loop().close()
        ioloop_c.IOLoop(make_current=False).close()


@pytest.mark.parametrize("work", [
    _soon, _timers, _tornado, _registrations, _events, _errors, _raising, _interrupted,
    _contexts_and_reprs, _stats_and_detector, _coroutines, _loops,
], ids=lambda f: f.__name__.strip("_"))
def test_no_reference_leaks(work):
    work(20)  # warm up: caches, interned names, freelists
    gc.collect()
    before = sys.gettotalrefcount()
    work(N)
    gc.collect()
    after = sys.gettotalrefcount()
    # A leak is at least one reference per operation (thousands here).
    assert after - before < N // 10, f"{after - before} references left after {N} rounds"
