"""Where a Tornado hello-world request spends its time, per loop.

    python benchmarks/http_profile.py [--loops stock,ioloop_c] [--duration 8]

For each loop, starts examples/app.py, loads `/` with wrk, and meanwhile
samples the server with `perf record` (whole process, kernel included) and
with py-spy (Python stacks).  Prints, per request: CPU microseconds, split
by where perf found the time (kernel, the interpreter, our extension,
other libraries), and by what py-spy found Python doing (the event loop's
own Python code, Tornado's HTTP code, the application handler, the rest).
Needs `perf` (Debian: linux-perf) and py-spy (PyPI); run as root or with
perf_event_paranoid <= 1.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_bench import free_port, start_server, stop_server  # noqa: E402

# py-spy frames are "function (file:line)"; a sample belongs to the first
# bucket whose pattern matches its innermost frame that is not a builtin.
PY_BUCKETS = [
    ("loop: asyncio/selectors",
     re.compile(r"asyncio/(base_events|selector_events|events)\.py|selectors\.py")),
    ("loop: ioloop_c", re.compile(r"ioloop_c/")),
    ("tornado: ioloop/iostream/gen",
     re.compile(r"tornado/(ioloop|iostream|gen|concurrent|platform/asyncio)\.py")),
    ("tornado: http server/web",
     re.compile(r"tornado/(http1connection|httpserver|httputil|web|routing|escape|util"
                r"|log)\.py")),
    ("asyncio: tasks/futures", re.compile(r"asyncio/(tasks|futures|coroutines)\.py")),
    ("logging", re.compile(r"logging/")),
]


def perf_breakdown(pid: int, seconds: float, out_dir: str) -> dict[str, float]:
    data = os.path.join(out_dir, f"perf-{pid}.data")
    subprocess.run(["perf", "record", "-q", "-o", data, "-p", str(pid), "--",
                    "sleep", str(seconds)], check=True, capture_output=True)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso",
                          "--no-children"], check=True, capture_output=True,
                         text=True).stdout
    shares: dict[str, float] = collections.Counter()
    for line in rep.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if not m:
            continue
        pct, dso = float(m.group(1)), m.group(2)
        if "kernel" in dso:
            shares["kernel"] += pct
        elif dso.startswith("libpython") or dso == "python3.11":
            shares["interpreter (libpython)"] += pct
        elif dso.startswith("_core"):
            shares["ioloop_c _core.so"] += pct
        elif dso.startswith("libc"):
            shares["libc"] += pct
        else:
            shares["other native (_socket, _asyncio, ...)"] += pct
    return dict(shares)


def pyspy_breakdown(pid: int, seconds: float, out_dir: str) -> dict[str, float]:
    raw = os.path.join(out_dir, f"pyspy-{pid}.txt")
    subprocess.run(["py-spy", "record", "-p", str(pid), "-d", str(int(seconds)),
                    "-r", "500", "-f", "raw", "-o", raw, "--nonblocking"],
                   check=True, capture_output=True)
    counts: dict[str, int] = collections.Counter()
    total = 0
    # One stack per line, "frame;frame;... count".  Frames can hold any
    # bytes (argument reprs), so read bytes-safe and split on "\n" only.
    with open(raw, encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            bucket = "application and other"
            for frame in reversed(frames):
                hit = next((name for name, pat in PY_BUCKETS if pat.search(frame)), None)
                if hit:
                    bucket = hit
                    break
            counts[bucket] += n
    return {k: 100.0 * v / total for k, v in counts.items()} if total else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default="stock,ioloop_c")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    # py-spy comes with the bench extra, next to this Python.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    for tool in ("wrk", "perf", "py-spy"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    out_dir = tempfile.mkdtemp(prefix="http-profile-")
    for name in args.loops.split(","):
        port = free_port()
        proc = start_server(name, port, 1)
        try:
            pid = proc.pid
            subprocess.run(["wrk", "-t1", "-c", str(args.connections), "-d2s",
                            f"http://127.0.0.1:{port}/"], capture_output=True)
            results: dict[str, object] = {}

            def load(port: int = port, results: dict[str, object] = results) -> None:
                out = subprocess.run(
                    ["wrk", "-t1", "-c", str(args.connections), "-d", f"{args.duration}s",
                     f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
                m = re.search(r"Requests/sec:\s+([\d.]+)", out)
                results["rps"] = float(m.group(1)) if m else 0.0

            # One run under perf, one under py-spy: the samplers disturb
            # the server differently, so each is measured on its own.
            t = threading.Thread(target=load)
            stat0 = _proc_cpu(pid)
            t.start()
            time.sleep(1)
            perf = perf_breakdown(pid, args.duration - 2, out_dir)
            t.join()
            stat1 = _proc_cpu(pid)
            rps = results["rps"]
            cpu_per_req = (stat1 - stat0) / (rps * args.duration) * 1e6 if rps else 0
            t = threading.Thread(target=load)
            t.start()
            time.sleep(1)
            pyspy = pyspy_breakdown(pid, args.duration - 2, out_dir)
            t.join()
            print(f"\n## {name}: {rps:.0f} req/s under perf, {cpu_per_req:.1f} µs CPU per request")
            print("\n| where (perf, whole process) | share | µs/request |\n|---|---|---|")
            for k, v in sorted(perf.items(), key=lambda kv: -kv[1]):
                print(f"| {k} | {v:.1f}% | {v / 100 * cpu_per_req:.1f} |")
            print("\n| Python code (py-spy, innermost matching frame) | share |\n|---|---|")
            for k, v in sorted(pyspy.items(), key=lambda kv: -kv[1]):
                print(f"| {k} | {v:.1f}% |")
        finally:
            stop_server(proc)
    return 0


def _proc_cpu(pid: int) -> float:
    """user + system CPU seconds the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


if __name__ == "__main__":
    sys.exit(main())
