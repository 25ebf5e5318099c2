"""A model of the socket transport's state machine, checked by hypothesis.

Random programs of transport operations (writes of random sizes, pauses,
resumes, limit changes, write_eof, close, abort) and peer actions (read
or stop reading, close) run against a connected pair, on the native
transport and on stock asyncio's.  After each step the transport must
agree with a small reference model of asyncio's contract (is_closing,
is_reading, which calls raise and with what); at the end the peer must
have received exactly what the model says was written (all of it after
close, a prefix after abort), connection_lost must have run exactly once,
and pause_writing / resume_writing must have alternated, pause first.
"""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ioloop_c

from conftest import stock_writelines_after_close_fails, stock_writelines_hangs_on_empty

_STOCK_WRITELINES_AFTER_CLOSE_FAILS = stock_writelines_after_close_fails()

pytestmark = pytest.mark.timeout(300)

OPS = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 200_000)),
    st.tuples(st.just("writelines"), st.lists(st.integers(0, 50_000), max_size=4)),
    st.tuples(st.sampled_from(["pause", "resume", "peer_pause", "peer_resume",
                               "write_eof", "close", "abort", "tick", "peer_close"]),
              st.just(0)),
    st.tuples(st.just("limits"), st.integers(0, 100_000)),
)


class Peer(asyncio.Protocol):
    def __init__(self, loop):
        self.data = bytearray()
        self.lost = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.lost.set_result(exc)


class Writer(asyncio.Protocol):
    def __init__(self, loop):
        self.flow = []
        self.lost = []
        self.done = loop.create_future()
        self.got = bytearray()
        self.got_eof = False

    def pause_writing(self):
        self.flow.append("pause")

    def resume_writing(self):
        self.flow.append("resume")

    def data_received(self, data):
        self.got += data

    def eof_received(self):
        self.got_eof = True
        return True

    def connection_lost(self, exc):
        self.lost.append(exc)
        if not self.done.done():
            self.done.set_result(exc)


_CYCLE = bytes(range(251)) * 25_000  # more than 25 writes of 200 kB


def pattern(start, n):
    """Bytes start .. start + n of an endless 0..250 cycle."""
    return _CYCLE[start % 251 : start % 251 + n]


async def run_program(loop, program):
    peer = Peer(loop)
    server = await loop.create_server(lambda: peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tr, w = await loop.create_connection(lambda: Writer(loop), "127.0.0.1", port)
    while peer.transport is None:
        await asyncio.sleep(0)
    written = 0  # bytes passed to write() without an error
    sure = None  # of those, what must arrive: all written before close()
    closing = eof = aborted = peer_closed = False
    paused = False
    trace = []
    for op, arg in program:
        raised = None
        try:
            if op == "write":
                tr.write(pattern(written, arg))
                written += arg
            elif op == "writelines":
                chunks = [pattern(written + sum(arg[:i]), n) for i, n in enumerate(arg)]
                if stock_writelines_hangs_on_empty(tr):
                    chunks = [c for c in chunks if c]
                if (tr.is_closing() and _STOCK_WRITELINES_AFTER_CLOSE_FAILS
                        and type(tr).__module__ == "asyncio.selector_events"):
                    # 3.12.1's own transport fails there; its write() drops
                    # the data, as writelines() does on later releases.
                    tr.write(b"".join(chunks))
                else:
                    tr.writelines(chunks)
                written += sum(arg)
            elif op == "pause":
                tr.pause_reading()
                if not closing:
                    paused = True
            elif op == "resume":
                tr.resume_reading()
                if not closing:
                    paused = False
            elif op == "peer_pause":
                if not peer_closed:
                    peer.transport.pause_reading()
            elif op == "peer_resume":
                if not peer_closed:
                    peer.transport.resume_reading()
            elif op == "write_eof":
                # On a transport that is closing (by us, or failed by a
                # peer that went away) write_eof() does nothing.
                failed = tr.is_closing()
                tr.write_eof()
                if not closing and not failed:
                    eof = True
            elif op == "close":
                tr.close()
                if not closing:
                    sure = written
                closing = True
            elif op == "abort":
                tr.abort()
                if not closing:
                    sure = 0
                closing = aborted = True
            elif op == "limits":
                tr.set_write_buffer_limits(high=arg)
                assert tr.get_write_buffer_limits() == (arg // 4, arg)
            elif op == "peer_close":
                peer.transport.resume_reading()
                peer.transport.close()
                peer_closed = True
            elif op == "tick":
                await asyncio.sleep(0.001)
        except RuntimeError as exc:
            raised = str(exc)
        # The model: write() after write_eof() raises; nothing else does.
        if op in ("write", "writelines") and eof:
            assert raised is not None and "write_eof" in raised, (op, raised)
        else:
            assert raised is None, (op, raised)
        if closing:
            assert tr.is_closing()
            assert not tr.is_reading()
        elif peer_closed and tr.is_closing():
            # A write to a peer that has gone fails the transport (EPIPE
            # or a reset), before connection_lost runs.
            assert not tr.is_reading()
        elif not w.lost:
            assert tr.is_reading() == (not paused), op
        trace.append((op, raised is not None))
    if not peer_closed:
        peer.transport.resume_reading()
    if not closing:
        sure = written
        tr.close()
    await asyncio.wait_for(w.done, 20)
    if not peer_closed:
        await asyncio.wait_for(peer.lost, 20)
    await asyncio.sleep(0)
    assert len(w.lost) == 1
    # pause / resume alternate, pause first.
    for i, f in enumerate(w.flow):
        assert f == ("pause" if i % 2 == 0 else "resume"), w.flow
    received = bytes(peer.data)
    expected = pattern(0, written)
    # Never more than was written, nor anything else; and after a clean
    # close() everything written before it.  (Writes after close() go out
    # only if the queue was not empty yet, as in asyncio.)
    assert expected.startswith(received)
    if not aborted and not peer_closed and w.lost[0] is None:
        assert len(received) >= sure
    server.close()
    await server.wait_closed()
    return trace


LOOPS = [("native", ioloop_c.Loop), ("asyncio", asyncio.SelectorEventLoop)]


@pytest.mark.parametrize("factory", [f for _, f in LOOPS], ids=[n for n, _ in LOOPS])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(program=st.lists(OPS, max_size=25))
def test_transport_state_machine(factory, program):
    loop = factory()
    try:
        loop.run_until_complete(run_program(loop, program))
    finally:
        loop.close()
