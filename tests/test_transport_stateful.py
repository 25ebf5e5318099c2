"""A stateful hypothesis model of the stream transport (issue 14, item 8).

``hypothesis.stateful`` drives one connected transport through random
sequences of its operations (writes of bytes / bytearray / memoryview of
random sizes, writelines, pause_reading / resume_reading,
set_write_buffer_limits, write_eof, close, abort) interleaved with what a
peer does to it (reads some, sends, shuts down its write side, closes,
resets).  The peer is a plain socket, so its side is exact.  A reference
model predicts, after every step:

- the peer has received a prefix of exactly what was written, in order
  (all of it once the transport is closed and the peer reads on);
- the protocol has received a prefix of what the peer sent, and nothing
  while reading is paused; eof_received once, only after a peer shutdown;
- pause_writing / resume_writing alternate, pause first, and the protocol
  is never left unpaused with more than the high-water mark queued;
- get_write_buffer_size() is never above what is written and unread;
- is_closing() and is_reading() as asyncio defines them;
- connection_lost exactly once, at the end at the latest.

Run on the native transport (every backend) and on stock asyncio and
uvloop as anchors, with a derandomized (fixed-seed) profile so that CI
sees the same programs each run.
"""

import asyncio
import gc
import os
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import stock_writelines_hangs_on_empty
from test_transport import FACTORIES

pytestmark = pytest.mark.timeout(120)

LOOPS = [(n, f) for n, f in FACTORIES if n != "ioloop_c-pytransport"]

_PAT = bytes(range(251)) * 8400  # about 2 MiB


def pattern(start, n):
    """n bytes of a period-251 pattern starting at stream offset start."""
    off = start % 251
    reps = (off + n) // len(_PAT) + 1
    if reps == 1:
        return _PAT[off:off + n]
    return (_PAT * reps)[off:off + n]


class Proto(asyncio.Protocol):
    """Records what the transport tells it; flags contract violations."""

    def __init__(self):
        self.transport = None
        self.got = bytearray()
        self.flow = []
        self.eofs = 0
        self.lost = []
        self.model_paused = False  # the model paused reading
        self.violations = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.model_paused:
            self.violations.append("data_received while reading paused")
        if self.lost:
            self.violations.append("data_received after connection_lost")
        self.got += data

    def eof_received(self):
        self.eofs += 1
        return True  # keep the write side open

    def pause_writing(self):
        if self.flow and self.flow[-1] == "pause":
            self.violations.append("pause_writing twice")
        self.flow.append("pause")

    def resume_writing(self):
        if not self.flow or self.flow[-1] != "pause":
            self.violations.append("resume_writing without pause_writing")
        self.flow.append("resume")

    def connection_lost(self, exc):
        self.lost.append(exc)

    @property
    def paused(self):
        return bool(self.flow) and self.flow[-1] == "pause"


SIZES = st.one_of(st.integers(0, 64), st.integers(0, 4096), st.integers(0, 100_000))
KINDS = st.sampled_from([bytes, bytearray, memoryview])


def make_data(kind, start, n):
    data = pattern(start, n)
    if kind is bytearray:
        return bytearray(data)
    if kind is memoryview:
        return memoryview(data)
    return data


class TransportMachine(RuleBasedStateMachine):
    factory = None  # set per loop by the test

    def __init__(self):
        super().__init__()
        self.loop = type(self).factory()
        self.proto = Proto()
        ls = socket.socket()
        # Small kernel buffers on both sides, so that writes of a few
        # KiB already queue in the transport and flow control is reached.
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        try:
            self.run(self.loop.create_connection(lambda: self.proto, *ls.getsockname()))
            self.peer, _ = ls.accept()
        finally:
            ls.close()
        self.peer.setblocking(False)
        self.tr = self.proto.transport
        self.tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        # The model.
        self.sent = bytearray()  # accepted by write()/writelines()
        self.peer_got = bytearray()
        self.peer_sent = 0
        self.peer_shut = False  # peer sent FIN
        self.peer_gone = False  # peer closed or reset: errors may follow
        self.closed = False  # close() called
        self.aborted = False
        self.eof_written = False
        self.reading = True
        self.eof_rereads = 0  # resumes of reading, each may repeat EOF
        self.high = self.tr.get_write_buffer_limits()[1]

    # --- driving the loop ---

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    def settle(self, seconds=0.002):
        self.run(asyncio.sleep(seconds))

    def peer_read(self, limit):
        while limit > 0:
            try:
                data = self.peer.recv(min(limit, 1 << 20))
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return True
            if not data:
                return True
            self.peer_got += data
            limit -= len(data)
        return False

    def writable(self):
        return not (self.closed or self.aborted or self.eof_written or self.proto.lost
                    or self.tr.is_closing())

    # --- transport operations ---

    @precondition(lambda self: self.writable())
    @rule(kind=KINDS, n=SIZES)
    def write(self, kind, n):
        self.tr.write(make_data(kind, len(self.sent), n))
        self.sent += pattern(len(self.sent), n)

    @precondition(lambda self: self.writable())
    @rule(parts=st.lists(st.tuples(KINDS, st.integers(0, 70_000)), max_size=5))
    def writelines(self, parts):
        chunks = []
        off = len(self.sent)
        for kind, n in parts:
            chunks.append(make_data(kind, off, n))
            off += n
        if stock_writelines_hangs_on_empty(self.tr):
            chunks = [c for c in chunks if len(c)]
        self.tr.writelines(chunks)
        self.sent += pattern(len(self.sent), off - len(self.sent))

    @rule()
    def pause_reading(self):
        if not self.tr.is_closing():
            self.reading = False
            self.proto.model_paused = True
        self.tr.pause_reading()

    @rule()
    def resume_reading(self):
        if not self.tr.is_closing():
            if not self.reading:
                # Reading again after the peer's EOF reads EOF again:
                # asyncio, uvloop and ours all call eof_received() once
                # more then.
                self.eof_rereads += 1
            self.reading = True
            self.proto.model_paused = False
        self.tr.resume_reading()

    @precondition(lambda self: not self.tr.is_closing())
    @rule(high=st.integers(0, 400_000), frac=st.floats(0, 1))
    def set_limits(self, high, frac):
        low = int(high * frac)
        self.tr.set_write_buffer_limits(high=high, low=low)
        assert self.tr.get_write_buffer_limits() == (low, high)
        self.high = high

    @precondition(lambda self: self.writable())
    @rule()
    def write_eof(self):
        assert self.tr.can_write_eof()
        self.tr.write_eof()
        self.eof_written = True

    @precondition(lambda self: not self.closed and not self.aborted)
    @rule()
    def close(self):
        self.tr.close()
        self.closed = True
        assert self.tr.is_closing()

    @precondition(lambda self: not self.aborted)
    @rule()
    def abort(self):
        self.tr.abort()
        self.aborted = True
        assert self.tr.is_closing()
        assert self.tr.get_write_buffer_size() == 0

    @rule(seconds=st.sampled_from([0, 0.001, 0.01]))
    def tick(self, seconds):
        self.settle(seconds)

    # --- peer actions ---

    @precondition(lambda self: not self.peer_gone)
    @rule(n=st.integers(1, 1 << 20))
    def peer_reads(self, n):
        self.peer_read(n)
        self.settle()

    @precondition(lambda self: not self.peer_gone and not self.peer_shut)
    @rule(n=st.integers(1, 50_000))
    def peer_sends(self, n):
        try:
            sent = self.peer.send(pattern(self.peer_sent, n))
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the transport side reset us
            self.peer_gone = True
            return
        self.peer_sent += sent
        self.settle()

    @precondition(lambda self: not self.peer_gone and not self.peer_shut)
    @rule()
    def peer_shutdown(self):
        try:
            self.peer.shutdown(socket.SHUT_WR)
        except OSError:
            self.peer_gone = True
            return
        self.peer_shut = True
        self.settle()

    @precondition(lambda self: not self.peer_gone)
    @rule(rst=st.booleans())
    def peer_close(self, rst):
        if rst:
            self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.peer_read(1 << 30)
        self.peer.close()
        self.peer_gone = True
        self.settle()

    # --- what must hold after every step ---

    @invariant()
    def contract(self):
        p, tr = self.proto, self.tr
        assert p.violations == []
        assert len(p.lost) <= 1
        assert p.eofs <= (1 + self.eof_rereads if self.peer_shut or self.peer_gone else 0)
        # Bytes: prefixes, in order, exact.
        assert self.peer_got == self.sent[:len(self.peer_got)]
        assert p.got == pattern(0, len(p.got))
        assert len(p.got) <= self.peer_sent
        # Closing.
        if self.closed or self.aborted or p.lost:
            assert tr.is_closing()
        elif not self.peer_gone and not self.peer_shut:
            assert not tr.is_closing()
        if not (tr.is_closing() or self.peer_shut or self.peer_gone):
            assert tr.is_reading() == self.reading
        if tr.is_closing():
            assert not tr.is_reading()
        # The write queue.
        size = tr.get_write_buffer_size()
        assert 0 <= size <= len(self.sent) - len(self.peer_got)
        if self.aborted or p.lost:
            assert size == 0
        if not tr.is_closing() and not p.paused:
            assert size <= self.high

    def teardown(self):
        p, tr = self.proto, self.tr
        try:
            if not tr.is_closing() and not self.peer_gone:
                # Everything the peer sent arrives once reading resumes.
                tr.resume_reading()
                self.proto.model_paused = False
                deadline = time.monotonic() + 5
                while len(p.got) < self.peer_sent and time.monotonic() < deadline:
                    self.settle(0.001)
                assert len(p.got) == self.peer_sent
                if self.peer_shut:
                    deadline = time.monotonic() + 5
                    while not p.eofs and time.monotonic() < deadline:
                        self.settle(0.001)
                    assert 1 <= p.eofs <= 2 + self.eof_rereads
                # Drained by the peer, a paused protocol is resumed.
                deadline = time.monotonic() + 10
                while tr.get_write_buffer_size() and time.monotonic() < deadline:
                    self.peer_read(1 << 30)
                    self.settle(0.001)
                self.settle()
                assert tr.get_write_buffer_size() == 0
                assert not p.paused, "drained to 0 but resume_writing never came"
                # EOF only if write_eof() was called.
                assert self.peer_read(1 << 30) is self.eof_written
                assert self.peer_got == self.sent
            if not self.aborted:
                tr.close()
            deadline = time.monotonic() + 10
            eof = self.peer_gone
            while not (p.lost and eof) and time.monotonic() < deadline:
                if not eof:
                    eof = self.peer_read(1 << 30)
                self.settle(0.001)
            assert len(p.lost) == 1, "connection_lost never came"
            if not self.aborted and not self.peer_gone and not self.lost_by_error():
                # close() flushes: the peer has it all.
                assert eof
                assert self.peer_got == self.sent
            assert self.peer_got == self.sent[:len(self.peer_got)]
            assert tr.get_write_buffer_size() == 0
            assert tr.is_closing()
            assert p.violations == []
            self.settle()
            assert len(p.lost) == 1
        finally:
            if not self.peer_gone:
                self.peer.close()
            self.loop.close()

    def lost_by_error(self):
        return bool(self.proto.lost) and self.proto.lost[0] is not None


SETTINGS = settings(
    max_examples=int(os.environ.get("IOLOOP_C_MODEL_EXAMPLES", "40")),
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _params():
    for name, f in LOOPS:
        marks = []
        if name == "uvloop":
            marks = [pytest.mark.xfail(
                strict=False,
                reason="uvloop: after eof_received returned True, resume_reading() "
                       "delivers eof_received a second time")]
        yield pytest.param(f, id=name, marks=marks)


@pytest.mark.parametrize("factory", list(_params()))
def test_transport_state_machine(factory):
    gc.collect()
    factory().close()  # a first loop may open process-wide descriptors
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    machine = type("TransportMachine", (TransportMachine,), {"factory": staticmethod(factory)})
    t0 = time.monotonic()
    conf = SETTINGS
    if "uvloop" in getattr(factory, "__module__", ""):
        # The anchor's known failure needs no shrinking in every run.
        conf = settings(SETTINGS, phases=[Phase.explicit, Phase.reuse, Phase.generate])
    run_state_machine_as_test(machine, settings=conf)
    assert time.monotonic() - t0 < 120
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == fds
