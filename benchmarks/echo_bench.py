"""Echo and aiohttp benchmarks across loops: round trips per second,
latency, memory per idle connection, and aiohttp hello-world under wrk.

    python benchmarks/echo_bench.py [--quick] [--out DIR] [--rounds 3]
        [--loops asyncio,uvloop,ioloop_c,afn-asyncio,afn-uvloop,afn-ioloop_c,roofline]
        [--kinds protocol,buffered,streams,tls] [--conns 1,10,100]
        [--sizes 100,4096,65536,1048576] [--transports tcp,unix]
        [--duration 2] [--warmup 0.5] [--idle 1000] [--skip echo,memory,aiohttp]

Each server runs in its own process pinned to one CPU (``taskset``), the
load on the other: benchmarks/echo_client.c (built here with ``cc -O2``
into build/), a closed-loop epoll client, for the echo; wrk for aiohttp.
The servers are benchmarks/echo_servers.py on each loop and, as the
roofline, benchmarks/echo_server.c (raw epoll, no Python; no TLS).  For
each case every loop runs once per round, the order rotating from round
to round, so drift on a shared machine touches all alike; the tables give
medians over the rounds, and each ratio is the median of the per-round
ratios (a round's figures were taken seconds apart).

Memory per idle connection: a fresh server per loop and round; its RSS
(VmRSS) before and after ``--idle`` connections that each made one round
trip and then sit idle, divided by the count.

Writes ``echo.md`` (tables) and ``echo.json`` (every sample) into --out.
--quick is CI's smoke run: a few cells, one round, sub-second runs; it
checks that every loop produced figures, nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVERS = os.path.join(HERE, "echo_servers.py")

PY_LOOPS = ("asyncio", "uvloop", "ioloop_c", "afn-asyncio", "afn-uvloop", "afn-ioloop_c")
ALL_LOOPS = (*PY_LOOPS, "roofline")
# Known but not run unless named in --loops: ioloop_c with its TLS data
# phase in Python (loop.native_tls = False), the before of tls.c; and
# with tls.c calling _ssl's methods instead of OpenSSL (before tls_ossl.c).
EXTRA_LOOPS = ("ioloop_c-pytls", "ioloop_c-methods")
KINDS = ("protocol", "buffered", "streams", "tls")
OURS = "ioloop_c"
HEADS = {"asyncio": "asyncio", "uvloop": "uvloop", "ioloop_c": "ioloop_c",
         "afn-asyncio": "afn/asyncio", "afn-uvloop": "afn/uvloop",
         "afn-ioloop_c": "afn/ioloop_c", "roofline": "C roofline",
         "ioloop_c-pytls": "ioloop_c (Python TLS)",
         "ioloop_c-methods": "ioloop_c (TLS via _ssl methods)"}
METRICS = (("rps", "Echo round trips per second"),
           ("rps_per_server_cpu", "Echo round trips per server CPU-second"))
KIND_NAMES = {"protocol": "`Protocol`", "buffered": "`BufferedProtocol`",
              "streams": "streams", "tls": "TLS `Protocol`"}
# Issue 14's targets at 10 connections: (kind, size, anchor, minimum ratio).
TARGETS = (
    ("protocol", 100, "uvloop", 1.1), ("protocol", 100, "roofline", 0.95),
    ("streams", 100, "uvloop", 1.1), ("buffered", 100, "uvloop", 1.1),
    ("protocol", 65536, "uvloop", 1.0), ("tls", 100, "uvloop", 1.5),
    ("tls", 100, "afn-best", 1.0),
)


def log(msg: str) -> None:
    print(msg, flush=True)


def size_name(n: int) -> str:
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ---------------------------------------------------------------------------
# Set-up: binaries, certificate, available loops


def build(build_dir: str) -> tuple[str, str, bool]:
    """Compile the client and the C server; returns their paths and
    whether the client has TLS (OpenSSL found)."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("no C compiler (cc): the echo client must be compiled")
    os.makedirs(build_dir, exist_ok=True)
    client = os.path.join(build_dir, "echo_client")
    server = os.path.join(build_dir, "echo_server")
    src = os.path.join(HERE, "echo_client.c")
    tls = subprocess.run([cc, "-O2", "-o", client, src, "-lssl", "-lcrypto"],
                         capture_output=True, text=True).returncode == 0
    if not tls:
        log("OpenSSL headers missing (apt-get install libssl-dev): TLS cases skipped")
        subprocess.run([cc, "-O2", "-DECHO_NO_TLS", "-o", client, src], check=True)
    subprocess.run([cc, "-O2", "-o", server, os.path.join(HERE, "echo_server.c")],
                   check=True)
    return client, server, tls


def make_cert(tmp: str) -> tuple[str, str] | None:
    """A self-signed certificate and key for this run, or None."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    if shutil.which("openssl") is None:
        return None
    rc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-keyout", key, "-out", cert], capture_output=True).returncode
    return (cert, key) if rc == 0 else None


def loop_available(name: str) -> str | None:
    """None if the loop can serve here, else why not."""
    if name == "roofline":
        return None
    mods = [name.removeprefix("afn-").removesuffix("-pytls").removesuffix("-methods")]
    mods += ["aiofastnet"] if name.startswith("afn-") else []
    for mod in mods:
        if mod == "asyncio":
            continue
        try:
            __import__(mod)
        except ImportError as e:
            return f"{mod} not importable ({e})"
    return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("uvloop", "aiofastnet", "aiohttp", "ioloop_c"):
        try:
            from importlib.metadata import version

            out[mod] = version(mod)
        except Exception:
            out[mod] = "-"
    return out


def cpus(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """taskset prefixes for the server and for the load."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return (["taskset", "-c", str(args.server_cpu)], ["taskset", "-c", str(args.client_cpu)])


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every server started and not yet stopped, so that an interrupted run
# (Ctrl-C, SIGTERM) still stops them all.
LIVE: set[Server] = set()


class Server:
    """One server process, listening on TCP or a Unix socket."""

    def __init__(self, loop: str, kind: str, transport: str, ctx: dict) -> None:
        self.loop, self.kind = loop, kind
        if transport == "unix":
            self.addr = os.path.join(ctx["tmp"], f"{loop}-{kind}.sock")
            if os.path.exists(self.addr):
                os.unlink(self.addr)  # the previous case's server's
            where = ["--unix", self.addr]
        else:
            self.port = free_port()
            self.addr = f"127.0.0.1:{self.port}"
            where = ["--tcp", str(self.port)]
        if loop == "roofline":
            cmd = [ctx["c_server"], *where]
        else:
            cmd = [sys.executable, SERVERS, "--loop", loop, "--kind", kind, *where]
            if ctx.get("cert"):
                cmd += ["--cert", ctx["cert"][0], "--key", ctx["cert"][1]]
        self.proc = subprocess.Popen(ctx["server_cpu"] + cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd="/",
                                     start_new_session=True)
        LIVE.add(self)
        self.output: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if line.startswith("serving on"):
                break
        else:
            line = ""
        if not line.startswith("serving on"):
            self.stop()
            raise RuntimeError(f"{loop} {kind} server did not start:\n"
                               + "".join(self.output))
        threading.Thread(target=self._drain, daemon=True).start()
        if ctx.get("prime", True) and kind in ("protocol", "buffered", "streams"):
            self.prime(transport)

    def prime(self, transport: str) -> None:
        """One connection: a round trip, then close.  On asyncio's Python
        transports the peer's close is a ``recv`` that returns b"" and so
        frees a whole 256 KiB read buffer, which raises glibc's mmap
        threshold; until then every 256 KiB read buffer is an mmap (and a
        mremap and munmap), after it none is.  A server that has seen one
        connection close is in the state every long-running server is in;
        without this, a case's first round would measure the other state
        and later rounds this one."""
        for s in idle_round_trip(self.addr, transport, 1):
            s.close()
        time.sleep(0.05)

    def _drain(self) -> None:
        for line in self.proc.stdout:
            if len(self.output) < 200:
                self.output.append(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        LIVE.discard(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()


# ---------------------------------------------------------------------------
# Echo


def run_client(ctx: dict, server: Server, transport: str, conns: int, size: int,
               duration: float, warmup: float) -> dict:
    cmd = [*ctx["client_cpu"], ctx["client"],
           "--unix" if transport == "unix" else "--tcp", server.addr,
           "-c", str(conns), "-s", str(size), "-d", str(duration), "-w", str(warmup),
           "--server-pid", str(server.proc.pid)]
    if server.kind == "tls":
        cmd.append("--tls")
    if ctx.get("client_spin"):
        cmd.append("--spin")
    if ctx.get("client_check_every", 1) > 1:
        cmd += ["--check-every", str(ctx["client_check_every"])]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=duration + warmup + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"echo_client failed on {server.loop} {server.kind}: "
                           f"{proc.stderr.strip()}")
    return json.loads(proc.stdout)


def loops_for(kind: str, loops: list[str]) -> list[str]:
    # The C server speaks no TLS.
    return [lp for lp in loops if not (kind == "tls" and lp == "roofline")]


def run_echo(args: argparse.Namespace, ctx: dict, loops: list[str]) -> list[dict]:
    """Every (transport, kind, connections, size) cell: raw samples."""
    cells: list[dict] = []
    for transport in args.transports:
        for kind in args.kinds:
            if kind == "tls" and not (ctx["tls"] and ctx.get("cert")):
                log(f"  {kind}: skipped (no TLS in the client or no certificate)")
                continue
            names = loops_for(kind, loops)
            for conns in args.conns:
                for size in args.sizes:
                    # Fresh servers for every case: what a process has
                    # freed moves glibc's mmap threshold, so a server that
                    # has echoed 1 MiB messages reads 100-byte ones faster
                    # than a new one; no case may inherit another's state.
                    servers: dict[str, Server] = {}
                    failed: dict[str, str] = {}
                    try:
                        for name in names:
                            try:
                                servers[name] = Server(name, kind, transport, ctx)
                            except RuntimeError as e:
                                log(f"  {e}")
                                failed[name] = str(e)
                        cell = run_cell(args, ctx, servers, transport, kind, conns, size)
                    finally:
                        for s in servers.values():
                            s.stop()
                    cell["errors"].update(failed)
                    cells.append(cell)
                    save_partial(args, cells)
    return cells


def run_cell(args: argparse.Namespace, ctx: dict, servers: dict[str, Server],
             transport: str, kind: str, conns: int, size: int) -> dict:
    names = list(servers)
    cell: dict[str, Any] = {"transport": transport, "kind": kind, "connections": conns,
                            "size": size, "load_before": load(), "samples": {},
                            "errors": {}}
    # Big messages move more bytes per round trip: shorter runs would do,
    # but keep the same duration so every cell has the same weight.
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            s = servers[name]
            if name in cell["errors"]:
                continue
            try:
                if ctx.get("fresh") and r > 0:
                    s.stop()
                    s = servers[name] = Server(name, kind, transport, ctx)
                if not s.alive():
                    raise RuntimeError(f"{name} {kind} server exited:\n"
                                       + "".join(s.output[-20:]))
                res = run_client(ctx, s, transport, conns, size, args.duration,
                                 args.warmup)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
                cell["errors"][name] = str(e)
                log(f"  error: {e}")
                continue
            res["round"] = r
            cell["samples"].setdefault(name, []).append(res)
    cell["load_after"] = load()
    parts = []
    for name in names:
        v = cell["samples"].get(name)
        parts.append(f"{name} {statistics.median(x['rps'] for x in v):,.0f}" if v
                     else f"{name} -")
    log(f"  {transport} {kind} c={conns} {size_name(size)}: " + ", ".join(parts)
        + f"  (load {cell['load_after']})")
    return cell


def save_partial(args: argparse.Namespace, cells: list[dict]) -> None:
    """The cells so far, so that an interrupted long run keeps them."""
    with open(os.path.join(args.out, "echo.partial.json"), "w") as f:
        json.dump(cells, f, indent=1)


def med(cell: dict, name: str, key: str = "rps") -> float | None:
    v = [x[key] for x in cell["samples"].get(name, []) if x.get(key, -1) >= 0]
    return statistics.median(v) if v else None


def ratio(cell: dict, ours: str, anchor: str, key: str = "rps") -> float | None:
    """The median over rounds of ours / anchor, each pair from one round."""
    a = {x["round"]: x.get(key, -1) for x in cell["samples"].get(anchor, [])}
    o = {x["round"]: x.get(key, -1) for x in cell["samples"].get(ours, [])}
    pairs = [o[r] / a[r] for r in o if r in a and a[r] > 0 and o[r] >= 0]
    return statistics.median(pairs) if pairs else None


def afn_best(cell: dict, key: str = "rps") -> float | None:
    """aiofastnet's best single run on any loop (its TLS is bimodal)."""
    runs = [x.get(key, -1) for name in ("afn-asyncio", "afn-uvloop", "afn-ioloop_c")
            for x in cell["samples"].get(name, [])]
    runs = [v for v in runs if v > 0]
    return max(runs) if runs else None


def afn_round_ratio(cell: dict, key: str = "rps") -> float | None:
    """The median over rounds of ours / aiofastnet's best loop in that
    round: the same comparison as afn_best(), paired by round, so that
    the load of a shared machine moves both sides alike."""
    best: dict = {}
    for name in ("afn-asyncio", "afn-uvloop", "afn-ioloop_c"):
        for x in cell["samples"].get(name, []):
            if x.get(key, -1) > 0:
                best[x["round"]] = max(best.get(x["round"], 0), x[key])
    o = {x["round"]: x.get(key, -1) for x in cell["samples"].get(OURS, [])}
    pairs = [o[r] / best[r] for r in o if r in best and o[r] >= 0]
    return statistics.median(pairs) if pairs else None


# ---------------------------------------------------------------------------
# Memory per idle connection


def idle_round_trip(addr: str, transport: str, n: int) -> list:
    """``n`` connections, each after one 100-byte round trip."""
    socks = []
    for _ in range(n):
        if transport == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
        else:
            host, port = addr.rsplit(":", 1)
            s = socket.create_connection((host, int(port)))
        s.settimeout(10)
        s.sendall(b"x" * 100)
        got = 0
        while got < 100:
            chunk = s.recv(100 - got)
            if not chunk:
                raise RuntimeError("server closed an idle connection")
            got += len(chunk)
        socks.append(s)
    return socks


def run_memory(args: argparse.Namespace, ctx: dict, loops: list[str]) -> dict:
    """kind -> loop -> list of bytes per idle connection, one per round."""
    out: dict[str, dict[str, list[float]]] = {}
    for kind in args.memory_kinds:
        res: dict[str, list[float]] = {}
        for _ in range(args.memory_rounds):
            for name in loops:
                s = None
                socks: list = []
                try:
                    s = Server(name, kind, "tcp", ctx)
                    # One connection first, so that lazily made state (the
                    # first transport's imports, buffers) is in "before".
                    warm = idle_round_trip(s.addr, "tcp", 1)
                    time.sleep(0.1)
                    before = s.rss_kib()
                    socks = idle_round_trip(s.addr, "tcp", args.idle)
                    time.sleep(0.2)
                    after = s.rss_kib()
                    res.setdefault(name, []).append((after - before) * 1024 / args.idle)
                    for x in warm:
                        x.close()
                except (RuntimeError, OSError) as e:
                    log(f"  memory {name} {kind}: {e}")
                finally:
                    for x in socks:
                        x.close()
                    if s is not None:
                        s.stop()
        out[kind] = res
        log(f"  memory {kind}, {args.idle} idle connections: " + ", ".join(
            f"{k} {statistics.median(v):,.0f} B" for k, v in res.items()))
    return out


# ---------------------------------------------------------------------------
# aiohttp under wrk


def run_wrk(ctx: dict, port: int, conns: int, duration: float) -> float:
    secs = max(1, round(duration))  # wrk takes whole seconds
    out = subprocess.run(
        [*ctx["client_cpu"], "wrk", "-t", "1", "-c", str(conns), "-d", f"{secs}s",
         f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True,
        timeout=duration + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk reported a problem:\n{out}")
    return float(m.group(1))


def run_aiohttp(args: argparse.Namespace, ctx: dict, loops: list[str]) -> dict:
    """connections -> loop -> req/s per round."""
    if shutil.which("wrk") is None:
        log("  wrk not installed (make wrk): aiohttp skipped")
        return {}
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        log("  aiohttp not installed: skipped")
        return {}
    names = [lp for lp in loops if lp != "roofline"]
    servers: dict[str, Server] = {}
    out: dict[int, dict[str, list[float]]] = {}
    try:
        for name in names:
            try:
                servers[name] = Server(name, "aiohttp", "tcp", ctx)
                if not args.quick:
                    run_wrk(ctx, servers[name].port, 10, 1)  # warm-up
            except (RuntimeError, subprocess.CalledProcessError) as e:
                log(f"  aiohttp {name}: {e}")
                if name in servers:
                    servers.pop(name).stop()
        for conns in args.http_conns:
            res: dict[str, list[float]] = {}
            order = list(servers)
            for r in range(args.rounds if order else 0):
                for name in order[r % len(order):] + order[:r % len(order)]:
                    try:
                        res.setdefault(name, []).append(
                            run_wrk(ctx, servers[name].port, conns, args.http_duration))
                    except (RuntimeError, subprocess.CalledProcessError) as e:
                        log(f"  aiohttp {name} -c{conns}: {e}")
            out[conns] = res
            log(f"  aiohttp -c{conns}: " + ", ".join(
                f"{k} {statistics.median(v):,.0f}" for k, v in res.items())
                + f"  (load {load()})")
    finally:
        for s in servers.values():
            s.stop()
    return out


# ---------------------------------------------------------------------------
# Report


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def targets(data: dict) -> list[tuple]:
    """(what, ioloop_c's ratio, the same per server CPU-second or None,
    the target) for each of issue 14's targets that this run measured."""
    rows: list[tuple] = []
    cells = data.get("echo") or []
    for kind, size, anchor, want in TARGETS:
        c = next((c for c in cells if c["kind"] == kind and c["size"] == size
                  and c["connections"] == 10 and c["transport"] == "tcp"), None)
        if c is None:
            continue
        got = []
        for key, _ in METRICS:
            if anchor == "afn-best":
                best, ours = afn_best(c, key), med(c, OURS, key)
                got.append(ours / best if ours and best else None)
                label = "aiofastnet's best run"
            else:
                got.append(ratio(c, OURS, anchor, key))
                label = HEADS[anchor]
        rows.append((f"{KIND_NAMES[kind]} {size_name(size)} vs {label}", *got, f">= {want}"))
        if anchor == "afn-best":
            rows.append((f"{KIND_NAMES[kind]} {size_name(size)} vs aiofastnet's best loop, "
                         "paired by round (informational)",
                         *(afn_round_ratio(c, key) for key, _ in METRICS), f">= {want}"))
    for kind, res in (data.get("memory") or {}).items():
        m = {lp: statistics.median(v) for lp, v in res.items() if v}
        if OURS in m and m.get("uvloop", 0) > 0:
            rows.append((f"memory per idle connection, {KIND_NAMES[kind]}, vs uvloop",
                         m[OURS] / m["uvloop"], None, "<= 1.0"))
    for conns, res in (data.get("aiohttp") or {}).items():
        if res.get(OURS) and res.get("uvloop"):
            rows.append((f"aiohttp hello-world, {conns} connections, vs uvloop",
                         statistics.median(res[OURS]) / statistics.median(res["uvloop"]),
                         None, ">= 1.1"))
    return rows


def report(data: dict) -> str:
    loops = data["loops"]
    a = data["args"]
    vers = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
    lines = [
        "# Echo benchmark", "",
        f"Machine: {data['machine']}; {vers}.",
        f"Mode: {data['mode']}; {a['rounds']} rounds, loops alternating (order rotating); "
        f"{a['duration']} s per run after {a['warmup']} s of warm-up; servers on CPU "
        f"{a['server_cpu']}, load on CPU {a['client_cpu']}"
        + ("" if data["pinned"] else " (NOT pinned: no taskset or one CPU)")
        + ("; the client spins (epoll_wait with a zero timeout, never sleeping)"
           if a.get("client_spin") else "")
        + (f"; the client checks one echo in {a['client_check_every']} per connection "
           "and has the kernel drop the others unread (echo_client --check-every)"
           if a.get("client_check_every", 1) > 1 else "") + ".",
        f"Load average (1/5/15 min) at the start {data['load_start']}, at the end "
        f"{data.get('load_end', '-')}.", "",
        "afn/X = aiofastnet.patch_loop() on loop X. C roofline = benchmarks/echo_server.c "
        "(raw epoll, no Python, no TLS). Ratios are ioloop_c's, each the median of "
        "per-round ratios; the aiofastnet column is the best single run of aiofastnet "
        "on any loop.", ""]
    cells = data.get("echo", [])
    for transport in dict.fromkeys(c["transport"] for c in cells):
        for key, title in METRICS:
            lines += [f"## {title} ({transport}, median)", "",
                      "| case | conns | size | " + " | ".join(HEADS[lp] for lp in loops)
                      + " | ours / uvloop | ours / asyncio | ours / roofline "
                      "| ours / afn best |",
                      "|---|---:|---:|" + "---:|" * (len(loops) + 4)]
            for c in (c for c in cells if c["transport"] == transport):
                best = afn_best(c, key)
                ours = med(c, OURS, key)
                lines.append(
                    f"| {KIND_NAMES[c['kind']]} | {c['connections']} | "
                    f"{size_name(c['size'])} | "
                    + " | ".join(_num(med(c, lp, key)) for lp in loops) + " | "
                    + " | ".join(_x(ratio(c, OURS, anc, key))
                                 for anc in ("uvloop", "asyncio", "roofline"))
                    + f" | {_x(ours / best if ours and best else None)} |")
            lines.append("")
        lines += [f"### CPU use: server / client (share of one CPU in the measured time, "
                  f"median; {transport})", "",
                  "| case | conns | size | " + " | ".join(HEADS[lp] for lp in loops) + " |",
                  "|---|---:|---:|" + "---:|" * len(loops)]
        for c in (c for c in cells if c["transport"] == transport):
            row = []
            for lp in loops:
                srv, cli = med(c, lp, "server_cpu"), med(c, lp, "client_cpu")
                row.append("-" if srv is None or cli is None else f"{srv:.2f} / {cli:.2f}")
            lines.append(f"| {KIND_NAMES[c['kind']]} | {c['connections']} | "
                         f"{size_name(c['size'])} | " + " | ".join(row) + " |")
        lines += ["", f"### Latency p50 / p99 (µs, median over rounds; {transport})", "",
                  "| case | conns | size | " + " | ".join(HEADS[lp] for lp in loops) + " |",
                  "|---|---:|---:|" + "---:|" * len(loops)]
        for c in (c for c in cells if c["transport"] == transport):
            row = []
            for lp in loops:
                p50, p99 = med(c, lp, "p50_us"), med(c, lp, "p99_us")
                row.append("-" if p50 is None else f"{p50:,.0f} / {p99:,.0f}")
            lines.append(f"| {KIND_NAMES[c['kind']]} | {c['connections']} | "
                         f"{size_name(c['size'])} | " + " | ".join(row) + " |")
        lines.append("")
        errs = [(c, k, v) for c in cells for k, v in c["errors"].items()]
        if errs:
            lines += ["Errors:", ""] + [
                f"- {c['kind']} c={c['connections']} {size_name(c['size'])} {k}: "
                f"{v.splitlines()[0] if v else v}" for c, k, v in errs] + [""]
    rows = targets(data)
    if rows:
        lines += ["## Issue 14's targets (informational; echo at 10 connections)", "",
                  "| target | ioloop_c | per server CPU-second | wanted |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {label} | {_x(got)} | {_x(per_cpu)} | {want} |"
                  for label, got, per_cpu, want in rows]
        lines.append("")
    mem = data.get("memory") or {}
    if mem:
        lines += [f"## Memory per idle connection (server RSS growth / {a['idle']:,} "
                  f"connections, bytes; median of {a['memory_rounds']} fresh servers)", "",
                  "| server | " + " | ".join(HEADS[lp] for lp in loops)
                  + " | ours / uvloop |", "|---|" + "---:|" * (len(loops) + 1)]
        for kind, res in mem.items():
            m = {lp: statistics.median(v) for lp, v in res.items() if v}
            r = (m[OURS] / m["uvloop"] if OURS in m and m.get("uvloop", 0) > 0 else None)
            lines.append(f"| {KIND_NAMES[kind]} | " + " | ".join(
                _num(m.get(lp)) for lp in loops) + f" | {_x(r)} |")
        lines += ["", "The C roofline allocates 256 KiB per connection but touches only "
                  "the pages a read fills; each idle connection here made one 100-byte "
                  "round trip.", ""]
    http = data.get("aiohttp") or {}
    if http:
        hl = [lp for lp in loops if lp != "roofline"]
        lines += [f"## aiohttp hello-world under wrk (-t1, {a['http_duration']} s; "
                  "requests/s, median)", "",
                  "| conns | " + " | ".join(HEADS[lp] for lp in hl)
                  + " | ours / uvloop | ours / asyncio |", "|---:|" + "---:|" * (len(hl) + 2)]
        for conns, res in http.items():
            m = {lp: statistics.median(v) for lp, v in res.items() if v}
            ru = m[OURS] / m["uvloop"] if OURS in m and "uvloop" in m else None
            ra = m[OURS] / m["asyncio"] if OURS in m and "asyncio" in m else None
            lines.append(f"| {conns} | " + " | ".join(_num(m.get(lp)) for lp in hl)
                         + f" | {_x(ru)} | {_x(ra)} |")
        lines.append("")
    return "\n".join(lines)


def write_report(args: argparse.Namespace, data: dict) -> None:
    text = report(data)
    with open(os.path.join(args.out, "echo.md"), "w") as f:
        f.write(text + "\n")
    print()
    print(text)


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
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}"


# ---------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke: seconds, not minutes")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "echo"))
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--loops", default=",".join(ALL_LOOPS))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--conns", help="connection counts (default 1,10,100; quick 10)")
    ap.add_argument("--sizes", help="message sizes in bytes (default 100,4096,65536,1048576; "
                    "quick 100,65536)")
    ap.add_argument("--transports", default="tcp", help="tcp and/or unix")
    ap.add_argument("--rounds", type=int, help="default 3; quick 1")
    ap.add_argument("--duration", type=float, help="seconds per run (default 2; quick 0.3)")
    ap.add_argument("--warmup", type=float, help="seconds (default 0.5; quick 0.1)")
    ap.add_argument("--idle", type=int, help="idle connections (default 1000)")
    ap.add_argument("--memory-rounds", type=int, help="default 3; quick 1")
    ap.add_argument("--memory-kinds", default="protocol,streams")
    ap.add_argument("--http-conns", help="wrk connections (default 10,100; quick 10)")
    ap.add_argument("--http-duration", type=float, help="seconds (default 3; quick 1)")
    ap.add_argument("--skip", default="", help="comma list of: echo,memory,aiohttp")
    ap.add_argument("--fresh", action="store_true",
                    help="a new server process for every run, never primed: servers "
                    "that never saw a connection close (see Server.prime)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite OUT/echo.md from OUT/echo.json")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--client-spin", action="store_true",
                    help="the C client polls epoll without sleeping (echo_client --spin), "
                         "so that its wake-ups cost neither CPU")
    ap.add_argument("--client-check-every", type=int, default=1, metavar="N",
                    help="the C client checks one echo in N per connection and lets the "
                         "kernel drop the rest unread (echo_client --check-every): at "
                         "64 KiB and up a fully checked echo makes the client the limit")
    args = ap.parse_args(argv)
    if args.client_check_every < 1:
        ap.error("--client-check-every must be at least 1")
    q = args.quick
    args.loops = [x for x in args.loops.split(",") if x]
    args.kinds = [x for x in args.kinds.split(",") if x]
    args.transports = [x for x in args.transports.split(",") if x]
    args.memory_kinds = [x for x in args.memory_kinds.split(",") if x]
    for name in args.loops:
        if name not in ALL_LOOPS + EXTRA_LOOPS:
            ap.error(f"unknown loop {name!r}; known: {', '.join(ALL_LOOPS + EXTRA_LOOPS)}")
    for kind in (*args.kinds, *args.memory_kinds):
        if kind not in KINDS:
            ap.error(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    for t in args.transports:
        if t not in ("tcp", "unix"):
            ap.error(f"unknown transport {t!r}")
    args.conns = _ints(args.conns or ("10" if q else "1,10,100"))
    args.sizes = _ints(args.sizes or ("100,65536" if q else "100,4096,65536,1048576"))
    args.http_conns = _ints(args.http_conns or ("10" if q else "10,100"))
    args.rounds = args.rounds or (1 if q else 3)
    args.duration = args.duration or (0.3 if q else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.1 if q else 0.5)
    # Quick mode keeps the full count: at a few hundred bytes an idle
    # connection (ours), 200 of them are within the RSS noise.
    args.idle = args.idle or 1000
    args.memory_rounds = args.memory_rounds or (1 if q else 3)
    args.http_duration = args.http_duration or (1.0 if q else 3.0)
    args.skip = set(filter(None, args.skip.split(",")))
    if min(args.conns + args.sizes + args.http_conns) < 1 or args.rounds < 1 \
            or args.duration <= 0 or args.idle < 1:
        ap.error("counts, sizes and durations must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.build_dir = os.path.abspath(args.build_dir)
    if args.report_only:
        with open(os.path.join(args.out, "echo.json")) as f:
            data = json.load(f)
        write_report(args, data)
        return 0
    os.makedirs(args.out, exist_ok=True)
    raise_fd_limit()
    t0 = time.monotonic()
    client, c_server, tls = build(args.build_dir)
    loops = []
    for name in args.loops:
        why = loop_available(name)
        if why:
            log(f"{name}: skipped, {why}")
        else:
            loops.append(name)
    data: dict[str, Any] = {
        "machine": machine(), "versions": versions(),
        "mode": "quick" if args.quick else "full", "loops": loops,
        "pinned": bool(cpus(args)[0]), "load_start": load(),
        "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
    }
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        run_all(args, data, loops, client, c_server, tls)
    finally:
        for s in list(LIVE):
            s.stop()
    data["load_end"] = load()
    data["seconds"] = round(time.monotonic() - t0, 1)
    data["targets"] = targets(data)
    with open(os.path.join(args.out, "echo.json"), "w") as f:
        json.dump(data, f, indent=1)
    partial = os.path.join(args.out, "echo.partial.json")
    if os.path.exists(partial):
        os.unlink(partial)
    write_report(args, data)
    log(f"wrote {args.out}/echo.md and echo.json in {data['seconds']:.0f} s")
    failed = any(c["errors"] for c in data.get("echo", []))
    return 1 if failed else 0


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_all(args: argparse.Namespace, data: dict, loops: list[str], client: str,
            c_server: str, tls: bool) -> None:
    server_cpu, client_cpu = cpus(args)
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp:
        ctx = {"client": client, "c_server": c_server, "tls": tls, "tmp": tmp,
               "prime": not args.fresh, "fresh": args.fresh,
               "cert": make_cert(tmp), "server_cpu": server_cpu, "client_cpu": client_cpu,
               "client_spin": args.client_spin,
               "client_check_every": args.client_check_every}
        if "echo" not in args.skip:
            log(f"echo ({len(loops)} loops, load {load()})")
            data["echo"] = run_echo(args, ctx, loops)
        if "memory" not in args.skip:
            log(f"memory per idle connection (load {load()})")
            data["memory"] = run_memory(args, ctx, [lp for lp in loops])
        if "aiohttp" not in args.skip:
            log(f"aiohttp hello-world (load {load()})")
            data["aiohttp"] = run_aiohttp(args, ctx, loops)


if __name__ == "__main__":
    sys.exit(main())
