"""A stateful hypothesis model of the datagram transport (issue 14, item 3).

``hypothesis.stateful`` drives one unconnected Unix datagram transport,
whose socket has a tiny send buffer, through random sequences of
``sendto`` (bytes, bytearray or memoryview of random sizes, empty ones
included), ``set_write_buffer_limits``, ``pause_reading`` /
``resume_reading``, ``close`` and ``abort``, interleaved with a plain
receiving socket that reads some of what arrived, and with datagrams
sent to the transport.  A reference model predicts, after every step:

- the receiver has a prefix of exactly the datagrams sent, whole and in
  order (all of them once the transport is closed and the receiver reads
  on; empty ones dropped before 3.12, as asyncio drops them);
- pause_writing / resume_writing alternate, pause first; the protocol
  is never unpaused with more than the high-water mark queued, nor left
  paused once the queue drained;
- get_write_buffer_size() is what is queued: at most what was sent and
  not received, counted with asyncio's per-datagram header on 3.12+;
- the protocol receives the datagrams sent to it in order, none while
  reading is paused;
- is_closing() and is_reading() as asyncio defines them, and
  connection_lost exactly once.

Run on the native transport (every backend) and on stock asyncio, with a
derandomized profile so that CI sees the same programs each run.
"""

import asyncio
import gc
import os
import socket
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from test_datagram import FACTORIES, HEADER, STOCK_DGRAM_PAUSES, is_native
from test_datagram import NEW_SEMANTICS as NEW

pytestmark = pytest.mark.timeout(120)

LOOPS = [(n, f) for n, f in FACTORIES if n not in ("ioloop_c-pytransport", "uvloop")]


class Proto(asyncio.DatagramProtocol):
    def __init__(self):
        self.transport = None
        self.got = []
        self.flow = []
        self.lost = []
        self.errors = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.got.append(data)

    def error_received(self, exc):
        self.errors.append(exc)

    def pause_writing(self):
        self.flow.append("pause")

    def resume_writing(self):
        self.flow.append("resume")

    def connection_lost(self, exc):
        self.lost.append(exc)


class DatagramMachine(RuleBasedStateMachine):
    factory = None  # set per loop by the test

    def __init__(self):
        super().__init__()
        self.loop = type(self).factory()
        self.dir = tempfile.TemporaryDirectory()
        self.rpath = os.path.join(self.dir.name, "r")
        self.rsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.rsock.bind(self.rpath)
        self.rsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.rsock.setblocking(False)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.tpath = os.path.join(self.dir.name, "t")
        s.bind(self.tpath)
        self.proto = Proto()
        self.tr, _ = self.run(self.loop.create_datagram_endpoint(lambda: self.proto, sock=s))
        self.run(asyncio.sleep(0))
        # Low water marks, so that a few queued datagrams reach them.
        self.tr.set_write_buffer_limits(high=3000)
        # The model.
        self.sent = []  # datagrams sendto() accepted, in order
        self.received = []
        self.to_proto = []  # what the receiver sent to the transport
        self.closed = False
        self.aborted = False
        self.reading = True
        # Stock asyncio of early 3.11 releases cannot pause a datagram
        # transport (see test_datagram.STOCK_DGRAM_PAUSES).
        self.can_pause = STOCK_DGRAM_PAUSES or is_native(self.loop)
        self.low, self.high = self.tr.get_write_buffer_limits()
        self.got_at_pause = 0

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    def settle(self):
        self.run(asyncio.sleep(0.001))

    def receive(self, limit):
        for _ in range(limit):
            try:
                self.received.append(self.rsock.recv(70000))
            except BlockingIOError:
                return

    # --- rules ---

    @precondition(lambda self: not self.closed)
    @rule(size=st.sampled_from([0, 1, 100, 700, 1500]),
          kind=st.sampled_from([bytes, bytearray, memoryview]),
          count=st.integers(min_value=1, max_value=10))
    def sendto(self, size, kind, count):
        for _ in range(count):
            n = len(self.sent)
            data = (b"%06d" % n + bytes(range(256)) * 6)[:size] if size else b""
            self.tr.sendto(kind(data), self.rpath)
            if size or NEW:
                self.sent.append(data)

    @rule(limit=st.integers(min_value=1, max_value=20))
    def receiver_reads(self, limit):
        self.receive(limit)
        self.settle()

    @precondition(lambda self: not self.closed)
    @rule(n=st.integers(min_value=1, max_value=3))
    def receiver_sends(self, n):
        for _ in range(n):
            data = b"to-transport %d" % len(self.to_proto)
            try:
                self.rsock.sendto(data, self.tpath)
            except BlockingIOError:
                break  # the transport's socket is full (reading paused)
            self.to_proto.append(data)
        self.settle()

    @precondition(lambda self: not self.closed)
    @rule(high=st.sampled_from([0, 500, 2000, 64 * 1024]))
    def set_limits(self, high):
        self.tr.set_write_buffer_limits(high=high)
        self.low, self.high = self.tr.get_write_buffer_limits()

    @precondition(lambda self: not self.closed and self.can_pause)
    @rule()
    def pause_reading(self):
        self.tr.pause_reading()
        if self.reading:
            self.got_at_pause = len(self.proto.got)
        self.reading = False

    @precondition(lambda self: not self.closed and self.can_pause)
    @rule()
    def resume_reading(self):
        self.tr.resume_reading()
        self.reading = True
        self.settle()

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self):
        self.tr.close()
        self.closed = True

    @precondition(lambda self: not self.closed)
    @rule()
    def abort(self):
        self.tr.abort()
        self.closed = self.aborted = True

    # --- invariants ---

    @invariant()
    def datagrams_whole_and_in_order(self):
        assert self.received == self.sent[: len(self.received)]

    @invariant()
    def flow_control(self):
        flow = self.proto.flow
        assert all(f == ("pause" if i % 2 == 0 else "resume") for i, f in enumerate(flow))
        is_paused = bool(flow) and flow[-1] == "pause"
        size = self.tr.get_write_buffer_size()
        if not self.closed:
            # Above the high-water mark only while paused; and a queue
            # that drained to nothing has resumed the protocol.
            assert is_paused or size <= self.high
            assert not is_paused or size > 0

    @invariant()
    def buffer_size_is_what_is_queued(self):
        size = self.tr.get_write_buffer_size()
        unreceived = self.sent[len(self.received):]
        assert 0 <= size <= sum(len(d) + HEADER for d in unreceived)
        if self.aborted and is_native(self.loop):
            # asyncio before 3.13 leaves the count of a dropped queue.
            assert size == 0

    @invariant()
    def protocol_gets_its_datagrams(self):
        assert self.proto.got == self.to_proto[: len(self.proto.got)]
        if not self.reading and not self.closed:
            assert len(self.proto.got) == self.got_at_pause
        assert self.proto.errors == []

    @invariant()
    def state(self):
        assert self.tr.is_closing() == self.closed
        if not self.closed and self.can_pause:
            assert self.tr.is_reading() == self.reading
        assert len(self.proto.lost) <= 1

    def teardown(self):
        try:
            if not self.closed:
                self.tr.close()
            for _ in range(2000):
                self.receive(100)
                if self.proto.lost:
                    break
                self.run(asyncio.sleep(0.001))
            self.settle()
            self.receive(1000)
            assert self.proto.lost == [None]
            if not self.aborted:
                assert self.received == self.sent
        finally:
            self.rsock.close()
            self.dir.cleanup()
            self.loop.close()


SETTINGS = settings(
    max_examples=int(os.environ.get("IOLOOP_C_MODEL_EXAMPLES", "30")),
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("factory", [f for _, f in LOOPS], ids=[n for n, _ in LOOPS])
def test_datagram_state_machine(factory):
    gc.collect()
    factory().close()
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    machine = type("DatagramMachine", (DatagramMachine,), {"factory": staticmethod(factory)})
    run_state_machine_as_test(machine, settings=SETTINGS)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == fds
