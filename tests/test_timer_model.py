"""Property test: the C timer heap fires in exactly the order a simple model
predicts, under random sequences of add / cancel / advance.

No test waits on the clock.  A "due" timer has a deadline that is an offset
from a base far in the past (offsets from a small set, so ties are common);
a "far" timer has a deadline far in the future and must never fire.  An
"advance" is one pass of the loop (stop() before start()): it must fire
every live due timer, ordered by (deadline, order added).

A due timer may carry an action run when it fires:
- cancel another timer: if that one was due in the same pass and has not
  fired yet, it is skipped (a cancelled handle in the ready queue does not
  run); cancelling one that already fired is a no-op;
- add a new due timer: it was added while the pass ran, so it fires in the
  next pass, however early its deadline.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ioloop_c

pytestmark = pytest.mark.timeout(120)

OFFSETS = st.integers(0, 7)
ACTION = st.one_of(
    st.none(),
    st.tuples(st.just("cancel"), st.integers(0, 10_000)),
    st.tuples(st.just("spawn"), OFFSETS),
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), OFFSETS, ACTION),
        st.tuples(st.just("add_far"), OFFSETS, st.none()),
        st.tuples(st.just("cancel"), st.integers(0, 10_000), st.none()),
        st.tuples(st.just("advance"), st.none(), st.none()),
    ),
    max_size=120,
)


class Model:
    """What the loop must do, in plain Python."""

    def __init__(self):
        self.n = 0  # timers created so far: the next index (seq order)
        self.due = {}  # index -> (offset, action): due, not fired or cancelled
        self.far = set()  # far-future timers not cancelled
        self.fired = []

    def add(self, offset, action):
        self.due[self.n] = (offset, action)
        self.n += 1

    def add_far(self):
        self.far.add(self.n)
        self.n += 1

    def cancel(self, idx):
        self.due.pop(idx, None)
        self.far.discard(idx)

    def advance(self):
        # Everything due is collected first; what the batch adds waits.
        batch = sorted(self.due, key=lambda i: (self.due[i][0], i))
        for i in batch:
            if i not in self.due:  # cancelled by an earlier one of the batch
                continue
            _, action = self.due.pop(i)
            self.fired.append(i)
            if action is None:
                continue
            kind, arg = action
            if kind == "cancel":
                self.cancel(arg)
            else:
                self.add(arg, None)

    def live(self):
        return len(self.due) + len(self.far)


@pytest.mark.parametrize("backend", ioloop_c.available_backends())
@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_firing_order_matches_model(backend, ops):
    loop = ioloop_c.IOLoop(backend=backend, make_current=False)
    try:
        base = loop.time() - 10_000
        far_base = loop.time() + 10_000
        model = Model()
        fired = []
        handles = []

        def fire(idx, action):
            fired.append(idx)
            if action is None:
                return
            kind, arg = action
            if kind == "cancel":
                loop.remove_timeout(handles[arg])
            else:
                add(arg, None)

        def add(offset, action):
            handles.append(loop.call_at(base + offset, fire, len(handles), action))

        for op, arg, action in ops + [("advance", None, None)] * 2:
            if op == "add":
                if action is not None and action[0] == "cancel":
                    # Any timer created so far, itself included.
                    action = ("cancel", action[1] % (model.n + 1))
                model.add(arg, action)
                add(arg, action)
            elif op == "add_far":
                model.add_far()
                handles.append(loop.call_at(far_base + arg, fired.append, "far"))
            elif op == "cancel" and handles:
                idx = arg % len(handles)
                model.cancel(idx)
                loop.remove_timeout(handles[idx])
            elif op == "advance":
                model.advance()
                loop.stop()
                loop.start()  # one pass: every due timer fires in it
                assert fired == model.fired
                assert len(handles) == model.n
                assert loop.stats()["timers_live"] == model.live()
        assert "far" not in fired
    finally:
        loop.close()
