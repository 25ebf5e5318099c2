"""The whole benchmark suite in one command: ratios, scaling curves, a
roofline and memory, on stdlib asyncio, uvloop, stock Tornado and ioloop_c.

    python benchmarks/run_all.py [--quick] [--out benchmarks/results]

Writes RESULTS.md (medians with min/max, ratios of ours to each anchor,
each loop as a fraction of the C roofline, memory) and PNG plots into the
output directory.  Implementations alternate run by run (A, B, C, D, A, B,
...) so that drift in a shared machine touches all of them alike.  --quick
(for CI's smoke run) uses small sizes and few runs, and checks nothing
about speed.

The loops, each driven through the API its users use:

* asyncio: ``asyncio.new_event_loop()``;
* uvloop: ``uvloop.new_event_loop()``;
* tornado: stock Tornado 6 (``tornado.ioloop.IOLoop()`` over asyncio), with
  Tornado's API (add_callback, call_later / remove_timeout, add_handler);
* ioloop_c: ``ioloop_c.new_event_loop()`` with asyncio's API;
* ioloop_c-tornado: ``ioloop_c.IOLoop()`` with Tornado's API.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

IMPLS = ("asyncio", "uvloop", "tornado", "ioloop_c", "ioloop_c-tornado")
# Which of ours each anchor is compared with: the same API on both sides.
OURS_FOR = {"asyncio": "ioloop_c", "uvloop": "ioloop_c", "tornado": "ioloop_c-tornado"}


# ---------------------------------------------------------------------------
# One interface over both APIs


class Driver:
    """The operations the workloads need, on one loop, through the API its
    users use.  ``run()`` runs until ``stop()``."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.tornado_api = impl in ("tornado", "ioloop_c-tornado")
        if impl == "asyncio":
            self.loop = asyncio.new_event_loop()
        elif impl == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        elif impl == "ioloop_c":
            import ioloop_c

            self.loop = ioloop_c.new_event_loop()
        elif impl == "tornado":
            import tornado.ioloop

            self.loop = tornado.ioloop.IOLoop(make_current=False)
        elif impl == "ioloop_c-tornado":
            import ioloop_c

            self.loop = ioloop_c.IOLoop()
        else:
            raise ValueError(impl)
        lp = self.loop
        if self.tornado_api:
            self.soon = lp.add_callback
            self.later = lp.call_later
            self.cancel = lp.remove_timeout
            self.run = lp.start
            self.stop = lp.stop
        else:
            self.soon = lp.call_soon
            self.later = lp.call_later
            self.cancel = _cancel_handle
            self.run = lp.run_forever
            self.stop = lp.stop

    def add_reader(self, sock: socket.socket, cb: Callable[[], Any]) -> None:
        if self.tornado_api:
            self.loop.add_handler(sock, lambda s, ev: cb(), self.loop.READ)
        else:
            self.loop.add_reader(sock.fileno(), cb)

    def remove_reader(self, sock: socket.socket) -> None:
        if self.tornado_api:
            self.loop.remove_handler(sock)
        else:
            self.loop.remove_reader(sock.fileno())

    def close(self) -> None:
        self.loop.close()


def _cancel_handle(handle: Any) -> None:
    handle.cancel()


def _noop() -> None:
    pass


# ---------------------------------------------------------------------------
# Workloads: each returns seconds for one round of n operations


def _timed_run(d: Driver, start: Callable[[], None]) -> float:
    """Seconds the loop runs after `start` is scheduled on it."""
    d.soon(start)
    t = time.perf_counter()
    d.run()
    return time.perf_counter() - t


def w_callbacks(d: Driver, n: int) -> float:
    """n callbacks scheduled from inside the loop, all run in one batch."""
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1

    def schedule() -> None:
        soon = d.soon
        for _ in range(n):
            soon(cb)
        soon(d.stop)

    t = _timed_run(d, schedule)
    assert count == n, count
    return t


def w_timer_churn(d: Driver, n: int) -> float:
    """n times: schedule a timer 60 s out, then cancel it."""

    def churn() -> None:
        later, cancel = d.later, d.cancel
        for _ in range(n):
            cancel(later(60, _noop))
        d.stop()

    return _timed_run(d, churn)


def w_timers_firing(d: Driver, n: int) -> float:
    """n timers 1 ms out, all fire (uvloop makes no timer under 0.5 ms)."""
    count = 0

    def cb() -> None:
        nonlocal count
        count += 1
        if count == n:
            d.stop()

    def schedule() -> None:
        later = d.later
        for _ in range(n):
            later(0.001, cb)

    t = _timed_run(d, schedule)
    assert count == n, count
    return t


def w_pingpong(d: Driver, n: int) -> float:
    """n round trips of 1 byte over a socketpair, a reader on each end."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    trips = 0

    def on_a() -> None:
        nonlocal trips
        a.recv(1)
        trips += 1
        if trips < n:
            a.send(b"p")
        else:
            d.stop()

    def on_b() -> None:
        b.recv(1)
        b.send(b"q")

    d.add_reader(a, on_a)
    d.add_reader(b, on_b)
    a.send(b"p")
    t = time.perf_counter()
    try:
        d.run()
    finally:
        d.remove_reader(a)
        d.remove_reader(b)
        a.close()
        b.close()
    assert trips == n
    return time.perf_counter() - t


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def w_protocol_echo(d: Driver, n: int) -> float:
    """n echoes of 100 bytes over loopback TCP with bare protocols."""
    if d.tornado_api:
        raise NotImplementedError
    loop = d.loop
    payload = b"x" * 100

    async def session() -> float:
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t = time.perf_counter()
        for _ in range(n):
            writer.write(payload)
            await reader.readexactly(len(payload))
        t = time.perf_counter() - t
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return t

    return loop.run_until_complete(session())


MICRO: dict[str, tuple[Callable[[Driver, int], float], int]] = {
    # name: (workload, ops per round at full size)
    "callbacks (batch)": (w_callbacks, 10000),
    "timer schedule + cancel": (w_timer_churn, 10000),
    "timers firing (1 ms)": (w_timers_firing, 10000),
    "socketpair ping-pong": (w_pingpong, 5000),
    "TCP echo, asyncio streams + protocol": (w_protocol_echo, 2000),
}
ROOFLINE_KEY = {
    "timer schedule + cancel": "timer_churn_ns",
    "timers firing (1 ms)": "timers_firing_ns",
    "socketpair ping-pong": "pingpong_ns",
}


def available_impls() -> list[str]:
    impls = []
    for impl in IMPLS:
        try:
            Driver(impl).close()
        except ImportError as exc:
            print(f"skipping {impl}: {exc}", file=sys.stderr)
        else:
            impls.append(impl)
    return impls


def run_micro(impls: list[str], runs: int, scale: float) -> dict:
    """{bench: {impl: [ns per op, one per run]}}, impls alternating."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, (fn, full_n) in MICRO.items():
        n = max(int(full_n * scale), 50)
        drivers = {}
        for impl in impls:
            d = Driver(impl)
            try:
                fn(d, max(n // 10, 10))  # warm-up, and "does it apply?"
            except NotImplementedError:
                d.close()
                continue
            drivers[impl] = d
        res: dict[str, list[float]] = {impl: [] for impl in drivers}
        for _ in range(runs):
            for impl, d in drivers.items():
                gc.collect()
                res[impl].append(fn(d, n) / n * 1e9)
        for d in drivers.values():
            d.close()
        out[name] = res
        print(f"  {name}: " + ", ".join(
            f"{k} {statistics.median(v):.0f} ns" for k, v in res.items()), flush=True)
    return out


# ---------------------------------------------------------------------------
# Scaling curves: cost per operation as the work grows


def s_timers_live(d: Driver, size: int, ops: int) -> float:
    """ns per schedule+cancel with `size` timers live (as many again
    scheduled and cancelled, which asyncio keeps in its heap for a while)."""
    handles = []

    def setup() -> None:
        later = d.later
        for i in range(size):
            handles.append(later(100 + (i % 1000) * 0.01, _noop))
        for h in handles[::2]:
            d.cancel(h)
        d.stop()

    d.soon(setup)
    d.run()
    t = w_timer_churn(d, ops)
    for h in handles[1::2]:
        d.cancel(h)
    d.soon(d.stop)
    d.run()
    return t / ops * 1e9


def s_fds_watched(d: Driver, size: int, ops: int) -> float:
    """ns per fd event dispatched (one iteration's time / its events) with
    `size` fds watched (both ends of size/2 socketpairs, so 10,000 fit
    under a 20,000-fd limit) and 1% of them readable each iteration (at
    least one): flat when idle fds cost nothing."""
    pairs = [socket.socketpair() for _ in range(max(size // 2, 1))]
    ends = [s for pair in pairs for s in pair]
    active = max(size // 100, 1)
    hits = 0

    def make_cb(s: socket.socket) -> Callable[[], None]:
        def cb() -> None:
            nonlocal hits
            s.recv(1)
            hits += 1

        return cb

    for s in ends:
        s.setblocking(False)
        d.add_reader(s, make_cb(s))
    # Writing on pair i's second end makes its first end readable.
    step = max(len(pairs) // active, 1)
    iterations = max(ops // active, 5)
    done = 0

    def tick() -> None:
        nonlocal done
        if done == iterations:
            d.stop()
            return
        for i in range(0, len(pairs), step):
            pairs[i][1].send(b"x")
        done += 1
        d.later(0, tick)

    t = _timed_run(d, tick)
    for s in ends:
        d.remove_reader(s)
        s.close()
    return t / (iterations * active) * 1e9


def s_callbacks_per_tick(d: Driver, size: int, ops: int) -> float:
    """ns per callback with `size` callbacks queued per iteration."""
    batches = max(ops // size, 3)
    return w_callbacks_batches(d, size, batches) / (size * batches) * 1e9


def w_callbacks_batches(d: Driver, size: int, batches: int) -> float:
    left = batches

    def schedule() -> None:
        nonlocal left
        left -= 1
        soon = d.soon
        for _ in range(size - 1):
            soon(_noop)
        soon(schedule if left else d.stop)

    d.soon(schedule)
    t = time.perf_counter()
    d.run()
    return time.perf_counter() - t


SCALING: dict[str, tuple[Callable[[Driver, int, int], float], list[int], list[int], str]] = {
    # name: (workload, full sizes, quick sizes, y label)
    "timers live": (s_timers_live, [100, 1000, 10000, 100000, 1000000],
                    [100, 10000], "ns per schedule + cancel"),
    "fds watched": (s_fds_watched, [10, 100, 1000, 10000], [10, 100],
                    "ns per fd event (1% of fds active per iteration)"),
    "callbacks per tick": (s_callbacks_per_tick, [1, 10, 100, 1000, 10000, 100000],
                           [1, 100, 10000], "ns per callback"),
}


def raise_fd_limit(want: int = 65536) -> None:
    """10,000 socketpairs need 20,000 fds and then some: raise the soft
    limit to the hard one, and the hard one too where allowed (root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            pass
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_scaling(impls: list[str], quick: bool, runs: int) -> dict:
    out: dict[str, dict[str, dict[int, float]]] = {}
    ops = 2000 if quick else 20000
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for name, (fn, full, small, _) in SCALING.items():
        sizes = small if quick else full
        res: dict[str, dict[int, float]] = {impl: {} for impl in impls}
        for size in sizes:
            if name == "fds watched" and size + 100 > limit:
                print(f"  {name} {size}: skipped, RLIMIT_NOFILE is {limit}", file=sys.stderr)
                continue
            samples: dict[str, list[float]] = {impl: [] for impl in impls}
            for _ in range(runs):
                for impl in impls:
                    d = Driver(impl)
                    try:
                        gc.collect()
                        samples[impl].append(fn(d, size, ops))
                    finally:
                        d.close()
            for impl in impls:
                res[impl][size] = statistics.median(samples[impl])
            print(f"  {name} {size}: " + ", ".join(
                f"{k} {v[size]:.0f}" for k, v in res.items() if size in v), flush=True)
        out[name] = res
    return out


# ---------------------------------------------------------------------------
# HTTP: the hello-world app under wrk, at several connection counts


def run_http(quick: bool, runs: int) -> dict:
    if shutil.which("wrk") is None:
        print("wrk not installed: HTTP skipped (apt-get install -y wrk)", file=sys.stderr)
        return {}
    from http_bench import free_port, run_wrk, start_server, stop_server

    loops = ["stock", "uvloop", "ioloop_c"]
    conns = [1, 50] if quick else [1, 10, 50, 100, 500]
    duration = 1 if quick else 3
    servers = {}
    out: dict[str, dict[int, float]] = {name: {} for name in loops}
    try:
        for name in loops:
            port = free_port()
            servers[name] = (start_server(name, port, 1), port)
            run_wrk(port, 1, 10, 1)
        for c in conns:
            samples: dict[str, list[float]] = {name: [] for name in loops}
            for _ in range(runs):
                for name in loops:
                    samples[name].append(run_wrk(servers[name][1], duration, c, 1))
            for name in loops:
                out[name][c] = statistics.median(samples[name])
            print(f"  http -c{c}: " + ", ".join(
                f"{k} {v[c]:.0f} req/s" for k, v in out.items()), flush=True)
    finally:
        for proc, _ in servers.values():
            stop_server(proc)
    return out


# ---------------------------------------------------------------------------
# Memory, each loop in a fresh interpreter


MEMORY_CHILD = r"""
import gc, json, socket, sys, tracemalloc
sys.path.insert(0, {here!r})
from run_all import Driver, _noop
d = Driver({impl!r})
n = {n}
def hwm_kib():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    # across fork and exec, VmHWM belongs to this address space.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0
def measure(fill, clear):
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep = fill()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    clear(keep)
    return used
def timers():
    return [d.later(1000, _noop) for _ in range(n)]
def clear_timers(hs):
    for h in hs:
        d.cancel(h)
def callbacks():
    for _ in range(n):
        d.soon(_noop)
def run_them(_):
    d.soon(d.stop)
    d.run()
pairs = [socket.socketpair() for _ in range({nfd})]
def fds():
    for r, w in pairs:
        d.add_reader(r, _noop)
def clear_fds(_):
    for r, w in pairs:
        d.remove_reader(r)
out = {{
    "timer": measure(timers, clear_timers) / n,
    "callback": measure(callbacks, run_them) / n,
    "fd": measure(fds, clear_fds) / {nfd},
    "peak_rss_kib": hwm_kib(),
}}
print(json.dumps(out))
"""


def memory_sizes(quick: bool) -> tuple[int, int]:
    """Live timers (and queued callbacks), watched socketpairs."""
    return (20000, 200) if quick else (200000, 1000)


def run_memory(impls: list[str], quick: bool) -> dict:
    n, nfd = memory_sizes(quick)
    out = {}
    for impl in impls:
        code = MEMORY_CHILD.format(here=HERE, impl=impl, n=n, nfd=nfd)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                              text=True, timeout=300)
        if proc.returncode != 0:
            print(f"  memory {impl} failed:\n{proc.stderr}", file=sys.stderr)
            continue
        out[impl] = json.loads(proc.stdout)
        print(f"  memory {impl}: {out[impl]}", flush=True)
    return out


# ---------------------------------------------------------------------------
# The roofline


def run_roofline(quick: bool, build_dir: str) -> dict:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        print("no C compiler: roofline skipped", file=sys.stderr)
        return {}
    exe = os.path.join(build_dir, "roofline")
    os.makedirs(build_dir, exist_ok=True)
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "roofline.c")], check=True)
    n = 20000 if quick else 200000
    return json.loads(subprocess.run([exe, str(n)], check=True, capture_output=True,
                                     text=True).stdout)


# ---------------------------------------------------------------------------
# Report


def _fmt(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}"]
    for mod in ("tornado", "uvloop"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, 'version', getattr(m, '__version__', '?'))}")
        except ImportError:
            pass
    return (f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
            + ", ".join(versions))


def report(data: dict, out_dir: str) -> str:
    lines = ["# ioloop_c benchmark results", "",
             f"Machine: {data['machine']}. Mode: {data['mode']}, {data['runs']} runs per "
             "figure, implementations alternating run by run.", "",
             "## Micro-benchmarks (per operation; median, [min-max])", ""]
    impls = data["impls"]
    lines.append("| benchmark | " + " | ".join(impls) + " | "
                 + " | ".join(f"{OURS_FOR[a]} vs {a}" for a in OURS_FOR if a in impls) + " |")
    lines.append("|---" * (1 + len(impls) + sum(a in impls for a in OURS_FOR)) + "|")
    for name, res in data["micro"].items():
        cells = []
        for impl in impls:
            v = res.get(impl)
            cells.append(f"{_fmt(statistics.median(v))} [{_fmt(min(v))}-{_fmt(max(v))}]"
                         if v else "-")
        for anchor, ours in OURS_FOR.items():
            if anchor not in impls:
                continue
            if anchor in res and ours in res:
                ratio = statistics.median(res[anchor]) / statistics.median(res[ours])
                cells.append(f"{ratio:.2f}x")
            else:
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratio: the anchor's median / ours (above 1: ours is faster).", ""]

    if data.get("roofline"):
        rl = data["roofline"]
        lines += ["## Against the roofline (C, raw epoll and a binary heap, no Python)", "",
                  "| benchmark | C roofline | " + " | ".join(impls) + " |",
                  "|---" * (2 + len(impls)) + "|"]
        for name, key in ROOFLINE_KEY.items():
            res = data["micro"].get(name, {})
            cells = [_fmt(rl[key])]
            for impl in impls:
                v = res.get(impl)
                cells.append(f"{rl[key] / statistics.median(v) * 100:.1f}%" if v else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "Each loop's speed as a fraction of the C program's (100% = the limit).",
                  ""]

    if data.get("scaling"):
        lines += ["## Scaling (median ns per operation)", ""]
        for name, res in data["scaling"].items():
            sizes = sorted({s for v in res.values() for s in v})
            lines += [f"### {name}: {SCALING[name][3]}", "",
                      "| size | " + " | ".join(impls) + " |", "|---" * (1 + len(impls)) + "|"]
            for s in sizes:
                lines.append(f"| {s:,} | " + " | ".join(
                    f"{res[i][s]:.0f}" if s in res.get(i, {}) else "-" for i in impls) + " |")
            lines.append("")
            lines.append(f"![{name}]({_png(name)})")
            lines.append("")

    if data.get("http"):
        res = data["http"]
        conns = sorted({c for v in res.values() for c in v})
        lines += ["## HTTP hello-world (Tornado app, wrk -t1; median req/s)", "",
                  "| connections | " + " | ".join(res)
                  + " | ioloop_c / stock | ioloop_c / uvloop |",
                  "|---" * (3 + len(res)) + "|"]
        for c in conns:
            row = [f"{res[k][c]:.0f}" for k in res]
            ratio_s = res["ioloop_c"][c] / res["stock"][c]
            ratio_u = res["ioloop_c"][c] / res["uvloop"][c]
            lines.append(f"| {c} | " + " | ".join(row) + f" | {ratio_s:.2f}x | {ratio_u:.2f}x |")
        lines += ["", f"![http]({_png('http connections')})", ""]

    if data.get("memory"):
        n, nfd = memory_sizes(data["mode"] == "quick")
        lines += ["## Memory (tracemalloc, Python-side bytes; peak RSS of the child)", "",
                  f"A fresh child process per loop holds {n:,} live timers, then {n:,} "
                  f"queued callbacks, then {nfd:,} watched socketpairs; peak RSS is its "
                  "high-water mark (VmHWM) over all three.", "",
                  "| loop | bytes per live timer | per queued callback | per watched fd "
                  "| peak RSS |", "|---|---|---|---|---|"]
        for impl, m in data["memory"].items():
            lines.append(f"| {impl} | {m['timer']:.0f} | {m['callback']:.0f} | {m['fd']:.0f} "
                         f"| {m['peak_rss_kib'] / 1024:.1f} MiB |")
        lines += ["", "tracemalloc sees only Python allocations: ioloop_c's C heap slots "
                  "(24 bytes per timer) and fd table are outside it, as is uvloop's libuv "
                  "memory; peak RSS covers everything.", ""]
    lines += [f"![micro]({_png('micro')})", ""]
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(text)
    return text


def _png(name: str) -> str:
    return name.replace(" ", "_").replace("/", "_") + ".png"


def plots(data: dict, out_dir: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plots", file=sys.stderr)
        return
    for name, res in data.get("scaling", {}).items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for impl, pts in res.items():
            if pts:
                xs = sorted(pts)
                ax.plot(xs, [pts[x] for x in xs], marker="o", label=impl)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(SCALING[name][3])
        ax.set_title(f"Scaling: {name}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, _png(name)), dpi=100)
        plt.close(fig)
    if data.get("http"):
        fig, ax = plt.subplots(figsize=(6, 4))
        for impl, pts in data["http"].items():
            xs = sorted(pts)
            ax.plot(xs, [pts[x] for x in xs], marker="o", label=impl)
        ax.set_xscale("log")
        ax.set_xlabel("concurrent connections (wrk -c)")
        ax.set_ylabel("requests/s")
        ax.set_title("Tornado hello-world")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, _png("http connections")), dpi=100)
        plt.close(fig)
    # Micro: each loop's speed relative to the slowest, per benchmark.
    micro = data["micro"]
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(micro)
    impls = data["impls"]
    width = 0.8 / len(impls)
    for k, impl in enumerate(impls):
        vals = []
        for name in names:
            res = micro[name]
            worst = max(statistics.median(v) for v in res.values())
            vals.append(worst / statistics.median(res[impl]) if impl in res else 0)
        ax.bar([i + k * width for i in range(len(names))], vals, width, label=impl)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))])
    ax.set_xticklabels([n.split(",")[0] for n in names], rotation=15, fontsize=8)
    ax.set_ylabel("speed vs the slowest loop (x)")
    ax.set_title("Micro-benchmarks")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, _png("micro")), dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few runs (CI smoke)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--runs", type=int, help="runs per figure (default 5; quick 2)")
    ap.add_argument("--skip", default="", help="comma list of: scaling,http,memory,roofline")
    ap.add_argument("--report-only", action="store_true",
                    help="redraw RESULTS.md and the plots from OUT/results.json")
    args = ap.parse_args(argv)
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            data = json.load(f)
        # JSON made the sizes and connection counts strings.
        for table in [*data.get("scaling", {}).values(), data.get("http", {})]:
            for impl, row in table.items():
                table[impl] = {int(k): v for k, v in row.items()}
        plots(data, args.out)
        print(report(data, args.out))
        return 0
    runs = args.runs or (2 if args.quick else 5)
    skip = set(filter(None, args.skip.split(",")))
    os.makedirs(args.out, exist_ok=True)
    raise_fd_limit()
    t0 = time.monotonic()
    impls = available_impls()
    data: dict[str, Any] = {"machine": machine(), "mode": "quick" if args.quick else "full",
                            "runs": runs, "impls": impls}
    print("micro-benchmarks", flush=True)
    data["micro"] = run_micro(impls, runs, 0.1 if args.quick else 1.0)
    if "roofline" not in skip:
        print("roofline", flush=True)
        data["roofline"] = run_roofline(args.quick, os.path.join(HERE, "..", "build"))
    if "scaling" not in skip:
        print("scaling", flush=True)
        data["scaling"] = run_scaling(impls, args.quick, 1 if args.quick else 3)
    if "http" not in skip:
        print("http", flush=True)
        data["http"] = run_http(args.quick, 1 if args.quick else 3)
    if "memory" not in skip:
        print("memory", flush=True)
        data["memory"] = run_memory(impls, args.quick)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)
    plots(data, args.out)
    text = report(data, args.out)
    print()
    print(text)
    print(f"\nwrote {args.out}/RESULTS.md in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
