"""Connection rate: accepted connections per second on each loop.

    python benchmarks/connect_bench.py [--rounds 5] [--duration 2]
        [--slots 8] [--loops asyncio,uvloop,ioloop_c-pyaccept,ioloop_c]
        [--out DIR]

The server, one process per loop pinned to one CPU (``taskset``), is an
``asyncio.Protocol`` that echoes the byte it receives and closes the
connection; the load, benchmarks/connect_client.c (built here with
``cc -O2``) pinned to the other CPU, keeps ``--slots`` connections in
flight, each connecting, sending one byte, waiting for the echo and the
server's close, then starting over.  So every connection is one accept,
one protocol and transport made, one read, one write and one close.

Loops: stock asyncio, uvloop, ioloop_c as it was before the native
accept loop (``ioloop_c-pyaccept``: asyncio's Python accept loop, a
reader plus a task per connection, over the native transport; the server
forces it by putting asyncio's own ``_start_serving`` on the loop
instance), and ioloop_c with the native accept loop.  Every loop runs once
per round, the order rotating from round to round; the table gives the
median over the rounds and the median of the per-round ratios to uvloop.
Writes ``connect.md`` and ``connect.json`` into --out (default
benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOOPS = ("asyncio", "uvloop", "ioloop_c-pyaccept", "ioloop_c")

SERVER = r"""
import asyncio, sys
kind = sys.argv[1]
if kind == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
elif kind == "asyncio":
    loop = asyncio.SelectorEventLoop()
else:
    import ioloop_c
    loop = ioloop_c.new_event_loop()
    if kind == "ioloop_c-pyaccept":
        from asyncio import selector_events
        loop._start_serving = selector_events.BaseSelectorEventLoop._start_serving.__get__(loop)
asyncio.set_event_loop(loop)

class Once(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
        self.transport.close()

async def main():
    server = await loop.create_server(Once, "127.0.0.1", 0, backlog=1024)
    if kind == "ioloop_c":
        assert loop._listeners, "native accept loop not in use"
    elif kind == "ioloop_c-pyaccept":
        assert not loop._listeners
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

loop.run_until_complete(main())
"""


def build_client() -> str:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("no C compiler (cc): the client must be compiled")
    out = os.path.join(ROOT, "build", "connect_client")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, "connect_client.c")], check=True)
    return out


def pins() -> tuple[list[str], list[str]]:
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime, the 14th and 15th fields (12th and 13th after the
    # command name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(kind: str, client: str, args: argparse.Namespace) -> dict:
    spin, cpin = pins()
    server = subprocess.Popen(
        [*spin, sys.executable, "-c", SERVER, kind],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        cpu0 = _cpu_seconds(server.pid)
        res = subprocess.run(
            [*cpin, client, str(port), "-c", str(args.slots), "-d", str(args.duration),
             "-w", str(args.warmup)],
            capture_output=True, text=True, check=True, timeout=args.duration + 60,
        )
        out = json.loads(res.stdout)
        # Server CPU over the client's whole run (warm-up included, as is
        # `total`): on a shared machine the server may not get all of its
        # CPU, and this still shows what a connection costs it.
        cpu = _cpu_seconds(server.pid) - cpu0
        out["server_cpu"] = cpu
        out["per_server_cpu"] = out["total"] / cpu if cpu > 0 else 0.0
        return out
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    loops = [x for x in args.loops.split(",") if x]
    client = build_client()
    samples: dict[str, list[dict]] = {k: [] for k in loops}
    for r in range(args.rounds):
        order = loops[r % len(loops):] + loops[: r % len(loops)]
        for kind in order:
            samples[kind].append(run_one(kind, client, args))
            s = samples[kind][-1]
            print(f"round {r + 1} {kind:>18}: {s['cps']:9.0f} conn/s, "
                  f"{s['per_server_cpu']:9.0f} per server CPU-s "
                  f"(failed {s['failed']}, client cpu {s['client_cpu']:.2f} s)", flush=True)
    med = {k: statistics.median(s["cps"] for s in v) for k, v in samples.items()}
    med_cpu = {k: statistics.median(s["per_server_cpu"] for s in v) for k, v in samples.items()}
    lines = [
        f"Connections per second ({args.slots} in flight, 1 byte echoed, server closes; "
        f"median of {args.rounds} rounds of {args.duration:g} s; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
        "",
        "| loop | conn/s | / uvloop | / asyncio | conn per server CPU-s | / uvloop |",
        "|---|---|---|---|---|---|",
    ]
    def ratio(k: str, base: str, key: str = "cps") -> str:
        if base not in samples:
            return "-"
        pairs = zip(samples[k], samples[base], strict=True)
        per = [a[key] / b[key] for a, b in pairs if b[key]]
        return f"{statistics.median(per):.2f}" if per else "-"

    for k in loops:
        lines.append(
            f"| {k} | {med[k]:,.0f} | {ratio(k, 'uvloop')} | {ratio(k, 'asyncio')} "
            f"| {med_cpu[k]:,.0f} | {ratio(k, 'uvloop', 'per_server_cpu')} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "connect.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "connect.json"), "w") as f:
        json.dump({"args": vars(args), "samples": samples, "when": time.time()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
