"""Random call sequences against a model (hypothesis, stateful): handlers
added, updated and removed on socketpairs, fds closed while registered,
timers added and removed, callbacks added, the loop run for a pass or
stopped and started.  After every step the loop's own view (watched fds,
live timers) must equal the model's, and after every run the callbacks and
handlers that ran must be exactly those the model expects, in order."""

import socket

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import ioloop_c

pytestmark = pytest.mark.timeout(120)

N_PAIRS = 4
FAR = 3600.0


class LoopModel(RuleBasedStateMachine):
    backend = "epoll"

    def __init__(self):
        super().__init__()
        self.loop = ioloop_c.IOLoop(backend=self.backend, make_current=False)
        # What the loop watches for itself (asyncio's self-pipe).
        self.base_watched = self.loop.stats()["fds_watched"]
        self.pairs = []
        for _ in range(N_PAIRS):
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            self.pairs.append([a, b])
        self.registered = {}  # pair index -> mask
        self.pending_data = set()  # pair indexes with a byte waiting on a
        self.timers = {}  # token -> handle (far future: never fire)
        self.next_token = 0
        self.queued = []  # callback tokens queued with add_callback
        self.log = []  # what actually ran

    # -- rules --------------------------------------------------------------

    @rule(i=st.integers(0, N_PAIRS - 1), mask=st.sampled_from([0, 1, 4, 5]))
    def add_handler(self, i, mask):
        a = self.pairs[i][0]
        if i in self.registered:
            with pytest.raises(ValueError):
                self.loop.add_handler(a, self._handler(i), mask)
            return
        self.loop.add_handler(a, self._handler(i), mask)
        self.registered[i] = mask

    @rule(i=st.integers(0, N_PAIRS - 1), mask=st.sampled_from([0, 1, 4, 5]))
    def update_handler(self, i, mask):
        a = self.pairs[i][0]
        if i not in self.registered:
            with pytest.raises(ValueError):
                self.loop.update_handler(a, mask)
            return
        self.loop.update_handler(a, mask)
        self.registered[i] = mask

    @rule(i=st.integers(0, N_PAIRS - 1))
    def remove_handler(self, i):
        self.loop.remove_handler(self.pairs[i][0])
        self.registered.pop(i, None)

    @rule(i=st.integers(0, N_PAIRS - 1))
    def send_byte(self, i):
        self.pairs[i][1].send(b"x")
        self.pending_data.add(i)

    @rule(i=st.integers(0, N_PAIRS - 1))
    def close_and_replace(self, i):
        """Close a (maybe registered) socket, then open a new pair, which
        may well get the same fd numbers: no stale event may reach the old
        handler, and the new socket starts unregistered."""
        old_a, old_b = self.pairs[i]
        old_a.close()
        old_b.close()
        self.loop.remove_handler(old_a)  # closed: must still forget it
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self.pairs[i] = [a, b]
        self.registered.pop(i, None)
        self.pending_data.discard(i)

    @rule()
    def add_timer(self):
        token = self.next_token
        self.next_token += 1
        self.timers[token] = self.loop.call_later(FAR, self._never)

    @precondition(lambda self: self.timers)
    @rule(data=st.data())
    def remove_timer(self, data):
        token = data.draw(st.sampled_from(sorted(self.timers)))
        self.loop.remove_timeout(self.timers.pop(token))

    @rule()
    def add_callback(self):
        token = self.next_token
        self.next_token += 1
        self.queued.append(token)
        self.loop.add_callback(self.log.append, ("cb", token))

    @rule()
    def run_one_pass(self):
        """stop() before start(): one pass that waits for nothing."""
        self.loop.stop()
        self.loop.start()
        self._check_pass()

    @rule()
    def run_briefly(self):
        self.loop.call_later(0.005, self.loop.stop)
        self.loop.start()
        self._check_pass()
        # Level-triggered: a socket with a byte waiting and READ asked for
        # was served during a run that lasted several passes.
        for i in self.pending_data:
            assert not self.registered.get(i, 0) & ioloop_c.READ, i

    # -- invariants ----------------------------------------------------------

    @invariant()
    def loop_agrees_with_model(self):
        s = self.loop.stats()
        # A registration with mask 0 still counts: it is kept for update.
        assert s["fds_watched"] == self.base_watched + len(self.registered)
        assert s["timers_live"] == len(self.timers)

    # -- helpers ---------------------------------------------------------------

    def _handler(self, i):
        sock = self.pairs[i][0]

        def handler(fd, events):
            assert fd is sock, "an event for a socket that was replaced"
            if events & ioloop_c.READ:
                assert sock.recv(64)
                self.pending_data.discard(i)
            self.log.append(("fd", i, events))

        return handler

    def _never(self):  # pragma: no cover - far timers are removed first
        raise AssertionError("a far-future timer fired")

    def _check_pass(self):
        ran_cbs = [e[1] for e in self.log if e[0] == "cb"]
        # Every queued callback ran, in the order added, exactly once.
        assert ran_cbs == self.queued
        self.queued = []
        for e in self.log:
            if e[0] == "fd":
                _, i, events = e
                assert i in self.registered
                # Only events that were asked for (ERROR may always come).
                assert events & ~(self.registered[i] | ioloop_c.ERROR) == 0
        self.log = []

    def teardown(self):
        self.loop.close()
        for a, b in self.pairs:
            a.close()
            b.close()


def _machine_for(backend):
    return type(f"LoopModel_{backend}", (LoopModel,), {"backend": backend})


@pytest.mark.parametrize("backend", ioloop_c.available_backends())
def test_random_call_sequences(backend):
    machine = _machine_for(backend)
    machine.TestCase.settings = settings(
        max_examples=60,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
