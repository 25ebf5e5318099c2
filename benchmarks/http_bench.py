"""HTTP load benchmark: Tornado's hello-world on each loop, loaded with wrk.

    python benchmarks/http_bench.py [--duration 5] [--runs 5] [--connections 50]
                                    [--loops stock,uvloop,ioloop_c] [--processes 1]
                                    [--server-python PY] [--server-prefix CMD]
                                    [--server-cpu 0] [--load-cpu 1]

`--loops` names are examples/app.py's `--loop` ways: `stock`, `uvloop`,
`ioloop_c` (`ioloop_c.install()` then `asyncio.run`), `ioloop_c-set`
(`asyncio.set_event_loop(ioloop_c.new_event_loop())` then
`run_until_complete`, no install()), `ioloop_c-run` (`ioloop_c.run`),
`ioloop_c-factory` (`asyncio.run(..., loop_factory=ioloop_c.new_event_loop)`,
Python 3.12+), `ioloop_c-stockwrap` (`ioloop_c-set` with Tornado's stock
`AsyncIOMainLoop` registered around the loop first: what that way gave
before ioloop_c adopted such loops).  Any of ours with `-off` appended runs with per-callback
timing and the slow-callback detector off (the app runs ioloop_c with the
detector on at 0.1 s), to measure what they cost; with `-stockio` appended
(after `-off` if both), with Tornado's own IOStream instead of the native one
(`IOLOOP_C_IOSTREAM=stock`).

Each loop serves examples/app.py (the same Tornado application) in its own
process on loopback; wrk (Debian package `wrk`) loads `/` with one thread
(the machine has two cores: one for the server, one for wrk).  Runs
alternate between loops (stock, uvloop, ours, stock, ...) so drift in the
machine affects all alike.  Prints requests/s medians, min and max, and
the ratios of ours to each anchor.

`--server-python` serves with another interpreter (a venv of another
Python version); `--server-prefix` runs the server under a command prefix,
e.g. `tools/sid_env.sh run` for a Python of the sid chroot (its network is
the host's, so wrk stays on the host).  `--server-cpu` and `--load-cpu`
pin the server and wrk to one CPU each with taskset.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "..", "examples", "app.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(cpu: int | None) -> list[str]:
    """A taskset prefix that runs a command on one CPU (none if cpu is None)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def start_server(loop: str, port: int, processes: int, python: str | None = None,
                 prefix: str = "", cpu: int | None = None) -> subprocess.Popen:
    # "ioloop_c-off": ioloop_c with per-callback timing (and so the
    # slow-callback detector) turned off, to measure what they cost.
    # "...-stockio": ours with Tornado's own IOStream (IOLOOP_C_IOSTREAM=stock).
    env = dict(os.environ)
    if loop.endswith("-stockio"):
        env["IOLOOP_C_IOSTREAM"] = "stock"
        loop = loop.removesuffix("-stockio")
    flags = ["--no-callback-timing"] if loop.endswith("-off") else []
    proc = subprocess.Popen(
        [*shlex.split(prefix), *_pin(cpu), python or sys.executable, APP,
         "--loop", loop.removesuffix("-off"), "--port", str(port),
         "--processes", str(processes), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/",
        start_new_session=True, env=env,
    )
    announced = 0
    deadline = time.monotonic() + 60
    while announced < processes and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "serving on" in line:
            announced += 1
    if announced < processes:
        stop_server(proc)
        raise RuntimeError(f"{loop} server did not start")
    # Keep draining its output, so a chatty server never blocks on the pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_wrk(port: int, duration: int, connections: int, threads: int,
            cpu: int | None = None) -> float:
    return run_wrk_counted(port, duration, connections, threads, cpu)[0]


def run_wrk_counted(port: int, duration: int, connections: int,
                    threads: int, cpu: int | None = None) -> tuple[float, int]:
    """wrk's requests/s and the number of requests it completed."""
    out = subprocess.run(
        [*_pin(cpu), "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk reported a problem:\n{out}")
    return float(m.group(1)), int(n.group(1))


_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the server's processes
    (every process in its process group: the forked children too)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--loops", default="stock,uvloop,ioloop_c")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--server-python", help="the server's interpreter (default: this one)")
    ap.add_argument("--server-prefix", default="",
                    help="command prefix for the server, e.g. 'tools/sid_env.sh run'")
    ap.add_argument("--server-cpu", type=int, help="pin the server to this CPU")
    ap.add_argument("--load-cpu", type=int, help="pin wrk to this CPU")
    args = ap.parse_args()
    if args.server_python and os.sep in args.server_python:
        args.server_python = os.path.abspath(args.server_python)  # the server runs in /
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install -y wrk` (Debian) or "
              "`make wrk` as root, then run this again.", file=sys.stderr)
        return 2
    loops = args.loops.split(",")
    results: dict[str, list[float]] = {name: [] for name in loops}
    # Server CPU microseconds per request: less exposed than requests/s to
    # other work on a shared machine (time the server waits for a CPU
    # is not counted).
    cpu_us: dict[str, list[float]] = {name: [] for name in loops}
    servers = {}
    try:
        for name in loops:
            port = free_port()
            servers[name] = (start_server(name, port, args.processes, args.server_python,
                                          args.server_prefix, args.server_cpu), port)
            run_wrk(port, 1, args.connections, args.threads, args.load_cpu)  # warm-up
        for run in range(args.runs):
            for name in loops:
                proc, port = servers[name]
                cpu0 = server_cpu(proc.pid)
                rps, count = run_wrk_counted(port, args.duration, args.connections,
                                             args.threads, args.load_cpu)
                cpu = (server_cpu(proc.pid) - cpu0) / count * 1e6
                results[name].append(rps)
                cpu_us[name].append(cpu)
                print(f"run {run + 1}/{args.runs} {name:9s} {rps:10.0f} req/s "
                      f"{cpu:7.1f} µs CPU/request", flush=True)
    finally:
        for proc, _ in servers.values():
            stop_server(proc)

    med = {name: statistics.median(v) for name, v in results.items()}
    print(f"\nTornado hello-world, {args.processes} process(es), wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration}s, {args.runs} runs each, alternating\n")
    cpu_med = {name: statistics.median(v) for name, v in cpu_us.items()}
    print("| loop | median req/s | min | max | server CPU µs/request (median) |")
    print("|---|---|---|---|---|")
    for name in loops:
        print(f"| {name} | {med[name]:.0f} | {min(results[name]):.0f} | "
              f"{max(results[name]):.0f} | {cpu_med[name]:.1f} |")
    # Each of ours against each other loop: the ratio of the medians, and
    # the median of the run-by-run ratios (each pair measured minutes
    # apart at most, so less exposed to drift in a shared machine).
    ours = [name for name in loops if name.startswith("ioloop_c")]
    if ours:
        print("\n| ours | vs | ratio of medians | median of run ratios | CPU/request ratio |")
        print("|---|---|---|---|---|")
    for mine in ours:
        for other in loops:
            if other == mine or (other.startswith("ioloop_c") and other != "ioloop_c"):
                continue
            runs = [a / b for a, b in zip(results[mine], results[other], strict=True)]
            print(f"| {mine} | {other} | {med[mine] / med[other]:.2f}x | "
                  f"{statistics.median(runs):.2f}x | "
                  f"{cpu_med[other] / cpu_med[mine]:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results,
                       "cpu_us_per_request": cpu_us}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
