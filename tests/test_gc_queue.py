"""The ready queue and the cyclic garbage collector.

Handles that only the ready queue refers to are taken out of the
collector's lists (see loop_settle_held() in csrc/binding/loop_tick.c), and
the loop's tp_traverse visits what they refer to instead.  These tests check
both halves of that bargain: the handles really are untracked, nothing
reachable is ever freed, and cycles through queued work are still found.
"""

import gc
import random
import warnings
import weakref

import pytest

import ioloop_c

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def lp(backend):
    loop = ioloop_c.Loop(backend=backend)
    yield loop
    loop.close()


def noop():
    pass


def collect_quietly():
    """gc.collect() a few times, recording the ResourceWarnings of
    unclosed loops instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            gc.collect()
            # From 3.14 a recorded warning keeps its `source` (asyncio's
            # "unclosed event loop" names the loop): that reference is the
            # test's own, not the loop's, so let go of it.
            for w in caught:
                w.source = None
    return caught


def test_handle_only_the_queue_holds_is_untracked_after_the_next_push(lp):
    ref = weakref.ref(lp.call_soon(noop))
    assert gc.is_tracked(ref())  # the newest: its caller might keep it
    lp.call_soon(noop)
    assert ref() is not None
    assert not gc.is_tracked(ref())


def test_handle_its_caller_keeps_stays_tracked(lp):
    kept = lp.call_soon(noop)
    lp.call_soon(noop)
    lp.call_soon(noop)
    assert gc.is_tracked(kept)


def test_newest_handle_is_settled_when_the_tick_starts(lp):
    seen = []

    def check():
        seen.append(gc.is_tracked(ref()))

    lp.call_soon(check)
    ref = weakref.ref(lp.call_soon(noop))  # the newest, held by no one
    lp.call_later(0, lp.stop)  # a timer: not a push to the ready queue
    lp.run_forever()
    assert seen == [False]


def test_handle_kept_by_the_exception_handler_comes_back_tracked(lp):
    kept = []
    lp.set_exception_handler(lambda loop, ctx: kept.append(ctx["handle"]))

    def boom():
        raise ValueError("boom")

    lp.call_soon(boom)
    lp.call_soon(noop)  # untracks boom's handle: only the queue has it
    lp.call_soon(lp.stop)
    lp.run_forever()
    assert len(kept) == 1
    assert gc.is_tracked(kept[0])


class Node:
    """An object in a cycle with itself, reachable only through a queued
    callback once the test drops its own reference."""

    def __init__(self, value, out):
        self.me = self
        self.value = value
        self.out = out

    def run(self, tag):
        self.out.append((self.value, tag))


def test_objects_reachable_only_through_queued_handles_survive_collection(lp):
    out = []
    for i in range(1000):
        lp.call_soon(Node(i, out).run, f"t{i}")

    # A collection before the batch runs.
    lp.call_soon(lp.stop)
    gc.collect()
    lp.run_forever()
    assert out == [(i, f"t{i}") for i in range(1000)]

    # A collection half way through the batch.
    def collect_midway():
        gc.collect()
        out.append(("collected", None))

    out.clear()
    for i in range(500):
        lp.call_soon(Node(i, out).run, i)
    lp.call_soon(collect_midway)
    for i in range(500, 1000):
        lp.call_soon(Node(i, out).run, i)
    lp.call_soon(lp.stop)
    lp.run_forever()
    assert out == ([(i, i) for i in range(500)] + [("collected", None)]
                   + [(i, i) for i in range(500, 1000)])


def test_dropped_loop_with_untracked_handles_in_a_cycle_is_collected(backend):
    loop = ioloop_c.Loop(backend=backend)
    for _ in range(100):
        loop.call_soon(lambda loop=loop: loop)  # each handle holds the loop
    ref = weakref.ref(loop)
    del loop
    caught = collect_quietly()
    assert ref() is None
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


def test_dropped_loop_whose_newest_handle_is_held_in_the_cycle_is_collected(backend):
    class Owner:
        def __init__(self, loop):
            self.loop = loop
            loop.call_soon(noop)
            self.handle = loop.call_soon(self.method)  # newest, and kept

        def method(self):
            pass

    owner = Owner(ioloop_c.Loop(backend=backend))
    ref = weakref.ref(owner.loop)
    del owner
    collect_quietly()
    assert ref() is None


def test_tornado_face_callbacks_survive_collection_and_run(backend):
    io = ioloop_c.IOLoop(backend=backend)
    out = []
    for i in range(300):
        io.add_callback(Node(i, out).run, tag=i)
    io.add_callback(gc.collect)
    io.add_callback(io.stop)
    gc.collect()
    io.start()
    io.close()
    assert out == [(i, i) for i in range(300)]


@pytest.mark.parametrize("seed", range(4))
def test_random_pushes_cancels_and_collections(lp, seed):
    """Random call_soon, with some handles kept and cancelled, some
    callbacks scheduling more, and collections in between and inside the
    batch: every callback not cancelled runs once, in order."""
    rnd = random.Random(seed)
    ran = []
    expected = []
    kept = []

    def cb(tag, again):
        ran.append(tag)
        if again:
            lp.call_soon(cb, (tag, "child"), False)

    for step in range(1500):
        op = rnd.random()
        if op < 0.75:
            again = rnd.random() < 0.1
            h = lp.call_soon(cb, step, again)
            expected.append((step, again))
            if rnd.random() < 0.2:
                kept.append((h, step))
        elif op < 0.85:
            if kept:
                h, tag = kept.pop(rnd.randrange(len(kept)))
                h.cancel()
                expected = [e for e in expected if e[0] != tag]
        elif op < 0.87:
            # Young and full collections alike; full ones are fewer, for
            # time on a loaded machine under ASan (a big heap by then).
            lp.call_soon(gc.collect, rnd.choice((0, 0, 1, 2)))
        elif op < 0.89:
            gc.collect(rnd.choice((0, 0, 1, 2)))
        else:
            kept.clear()
    lp.call_soon(lp.stop)
    lp.run_forever()  # the batch
    lp.call_soon(lp.stop)
    lp.run_forever()  # the children it queued
    tags = [e[0] for e in expected]
    children = [(e[0], "child") for e in expected if e[1]]
    assert ran == tags + children
