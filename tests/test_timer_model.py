"""Property test: the timer heap fires in exactly the order a simple model
predicts, under random add / cancel / run sequences.

Every deadline is an offset from a base far in the past, so each timer is
due as soon as it is added and no test waits on the clock.  A "run" is one
pass of the loop: it must fire every live timer, ordered by (deadline,
order added), skipping cancelled ones.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

import ioloop_c

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 15)),
        st.tuples(st.just("cancel"), st.integers(0, 10_000)),
        st.tuples(st.just("run"), st.just(0)),
    ),
    max_size=150,
)


@settings(max_examples=200, deadline=None)
@given(ops=ops)
def test_firing_order_matches_model(ops):
    loop = ioloop_c.IOLoop(make_current=False)
    try:
        base = loop.time() - 10_000
        fired, expected = [], []
        handles = []
        live = {}  # index -> offset, in the loop and not yet fired

        def run():
            expected.extend(sorted(live, key=lambda i: (live[i], i)))
            live.clear()
            loop.stop()  # one pass: everything due fires in it
            loop.start()

        for op, arg in ops + [("run", 0)]:
            if op == "add":
                idx = len(handles)
                handles.append(loop.call_at(base + arg, fired.append, idx))
                live[idx] = arg
            elif op == "cancel" and handles:
                idx = arg % len(handles)
                loop.remove_timeout(handles[idx])
                live.pop(idx, None)
            elif op == "run":
                run()
        assert fired == expected
        assert loop.stats()["timers_live"] == 0
    finally:
        loop.close()
