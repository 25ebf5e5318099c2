"""Load and soak: many timers, many fds, many callbacks, and a long mixed
run under HTTP load, each repeated with RSS, open fds (/proc/self/fd) and
sys.getallocatedblocks() checked flat after warm-up.

Behind the ``soak`` marker (excluded by default): ``make soak`` runs the
full sizes, ``make soak-short`` (in CI) the same tests scaled down, chosen
with IOLOOP_C_SOAK=short.  Each test prints its measurements (``-s``)."""

import gc
import itertools
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest

import ioloop_c

SHORT = os.environ.get("IOLOOP_C_SOAK", "") == "short"
pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]
ROUNDS = 4  # the first is the warm-up


def sized(full, short):
    return short if SHORT else full


def usage():
    """(RSS bytes, open fds, allocated blocks) after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {"rss": rss, "fds": len(os.listdir("/proc/self/fd")),
            "blocks": sys.getallocatedblocks()}


def assert_flat(name, samples):
    """samples[0] is after the warm-up round.  Flat: the same fds, memory
    blocks within noise, and RSS not growing round after round (the
    allocator may settle once, by a few MiB, after the warm-up; a leak
    grows every round)."""
    first, last = samples[0], samples[-1]
    deltas = {k: last[k] - first[k] for k in first}
    steps = [b["rss"] - a["rss"] for a, b in itertools.pairwise(samples)]
    print(f"\n{name}: after warm-up {first}; deltas over {len(samples) - 1} "
          f"more rounds {deltas}; RSS per round {steps}")
    assert deltas["fds"] == 0, samples
    assert deltas["blocks"] < 2000, samples
    assert min(steps) < 1 << 20, samples
    assert deltas["rss"] < max(16 << 20, first["rss"] // 5), samples


def repeat(name, one_round):
    samples = []
    for _ in range(ROUNDS):
        one_round()
        samples.append(usage())
    assert_flat(name, samples)


def test_a_million_timers_half_cancelled():
    n = sized(1_000_000, 100_000)
    lp = ioloop_c.Loop()
    fired = [0]
    rng = random.Random(1)

    def cb():
        fired[0] += 1

    def one_round():
        fired[0] = 0
        handles = [lp.call_later(rng.random() * 0.2, cb) for _ in range(n)]
        assert lp.stats()["timers_live"] == n
        for h in handles[::2]:
            h.cancel()
        assert lp.stats()["timers_live"] == n - len(handles[::2])
        del handles
        lp.call_later(0.5, lp.stop)
        lp.run_forever()
        assert fired[0] == n // 2
        assert lp.stats()["timers_live"] == 0

    try:
        repeat(f"{n:,} timers, half cancelled", one_round)
    finally:
        lp.close()


def _fd_room(need):
    """Raise RLIMIT_NOFILE towards `need`; return the soft limit got."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return soft
    for lim in ((need, need), (min(need, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_ten_thousand_watched_socketpairs():
    """Both ends of every pair are watched: 10,000 socketpairs (20,000
    watched fds) where the fd limit allows it, else 5,000 pairs, which
    still makes 10,000 watched fds (a 20,000 hard limit, as on the CI
    machines, leaves no room for 10,000 pairs plus the interpreter's).
    Each round registers them all, serves 50 iterations with 1% readable,
    then unregisters and closes them."""
    pairs_n = sized(10_000, 1_000)
    limit = _fd_room(2 * pairs_n + 200)
    if limit < 2 * pairs_n + 200:
        pairs_n //= 2
    assert limit >= 2 * pairs_n + 200, limit
    lp = ioloop_c.Loop()
    rng = random.Random(2)
    served = [0]

    def reader(s):
        def cb():
            s.recv(16)
            served[0] += 1

        return cb

    def one_round():
        ends = [s for _ in range(pairs_n) for s in socket.socketpair()]
        try:
            for s in ends:
                s.setblocking(False)
                lp.add_reader(s.fileno(), reader(s))
            assert lp.stats()["fds_watched"] >= 2 * pairs_n
            active = max(len(ends) // 100, 1)
            for _ in range(50):
                # Writing on one end makes the other readable.
                for i in rng.sample(range(len(ends)), active):
                    ends[i ^ 1].send(b"x")
                before = served[0]
                deadline = time.monotonic() + 10
                while (served[0] < before + active
                       and time.monotonic() < deadline):
                    lp.call_soon(lp.stop)
                    lp.run_forever()
                assert served[0] == before + active
            mine = {s.fileno() for s in ends}
            for fd in mine:
                lp.remove_reader(fd)
            assert not mine & set(lp._watched_fds())
        finally:
            for s in ends:
                s.close()

    try:
        repeat(f"{2 * pairs_n:,} watched fds", one_round)
    finally:
        lp.close()


def test_a_million_callbacks():
    n = sized(1_000_000, 100_000)
    lp = ioloop_c.Loop()
    count = [0]
    batch = 1000

    def cb():
        count[0] += 1

    def schedule(left):
        for _ in range(batch):
            lp.call_soon(cb)
        lp.call_soon(schedule, left - 1) if left > 1 else lp.call_soon(lp.stop)

    def one_round():
        count[0] = 0
        lp.call_soon(schedule, n // batch)
        lp.run_forever()
        assert count[0] == n

    try:
        repeat(f"{n:,} callbacks", one_round)
        assert lp.stats()["callbacks"] >= ROUNDS * n
    finally:
        lp.close()


# The soak server: Tornado's hello-world under wrk, while the same loop
# churns timers (schedule 20, cancel 10, every millisecond), a thread posts
# call_soon_threadsafe at about 1 kHz, and a PeriodicCallback runs.
SERVER = textwrap.dedent(
    """
    import asyncio, gc, json, os, sys, threading, time
    import tornado.ioloop
    import tornado.web
    import ioloop_c

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    class Mem(tornado.web.RequestHandler):
        def get(self):
            gc.collect()
            with open("/proc/self/statm") as f:
                rss_pages = int(f.read().split()[1])
            self.write({"rss": rss_pages * os.sysconf("SC_PAGE_SIZE"),
                        "fds": len(os.listdir("/proc/self/fd")),
                        "blocks": sys.getallocatedblocks(),
                        "stats": asyncio.get_running_loop().stats()})

    async def main():
        loop = asyncio.get_running_loop()

        def churn():
            hs = [loop.call_later(0.001 * (i % 7), len, ()) for i in range(20)]
            for h in hs[::2]:
                h.cancel()
            loop.call_later(0.001, churn)

        def poster():
            while True:
                try:
                    loop.call_soon_threadsafe(len, ())
                except RuntimeError:
                    return
                time.sleep(0.001)

        churn()
        threading.Thread(target=poster, daemon=True).start()
        tornado.ioloop.PeriodicCallback(lambda: None, 10).start()
        app = tornado.web.Application([("/", Hello), ("/mem", Mem)])
        server = app.listen(0, "127.0.0.1")
        port = next(iter(server._sockets.values())).getsockname()[1]
        print(port, flush=True)
        await asyncio.Event().wait()

    ioloop_c.run(main())
    """
)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _load(port, seconds):
    """wrk if installed, else Python client threads."""
    if shutil.which("wrk"):
        subprocess.run(["wrk", "-t1", "-c20", f"-d{int(seconds)}s",
                        f"http://127.0.0.1:{port}/"], capture_output=True, check=True)
        return
    stop = time.monotonic() + seconds

    def client():
        while time.monotonic() < stop:
            _get(f"http://127.0.0.1:{port}/")

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_http_soak_memory_and_fds_flat(tmp_path):
    total = sized(60, 10)
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())

        def mem():
            m = json.loads(_get(f"http://127.0.0.1:{port}/mem"))
            m.pop("stats")
            return m

        _load(port, max(total // 6, 2))  # warm-up
        samples = [mem()]
        windows = 4
        for _ in range(windows):
            _load(port, (total - total // 6) / windows)
            samples.append(mem())
        stats = json.loads(_get(f"http://127.0.0.1:{port}/mem"))["stats"]
        print(f"\nmixed HTTP soak, {total} s: callbacks {stats['callbacks']:,}, "
              f"fd events {stats['fd_events']:,}, timers fired "
              f"{stats['timers_fired']:,}, cancelled {stats['timers_cancelled']:,}")
        assert stats["timers_cancelled"] > 1000, stats
        assert_flat(f"mixed HTTP soak, {total} s", samples)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
