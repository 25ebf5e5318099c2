"""A quick A/B of the socket transports: an echo server on each loop, loaded
by a C closed-loop client (benchmarks/echo_client.c from the echo-bench
work), server pinned to CPU 0 and client to CPU 1, rounds alternating
between loops, medians of round trips per second.

    python benchmarks/transport_ab.py --client PATH/TO/echo_client \
        [--conns 10] [--size 100] [--seconds 3] [--rounds 3] \
        [--kinds protocol,streams,buffered] [--loops native,python,uvloop]

Loops: ``native`` (ioloop_c, native transport), ``python`` (ioloop_c with
asyncio's Python transport: IOLOOP_C_TRANSPORT=python), ``asyncio``,
``uvloop``.  Prints a Markdown table and the ratios to uvloop.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

SERVER = r'''
import asyncio, os, sys
kind, loop_name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if loop_name in ("native", "python"):
    import ioloop_c
    loop = ioloop_c.Loop()
elif loop_name == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.SelectorEventLoop()

class Echo(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr
    def data_received(self, data):
        self.tr.write(data)

class BufEcho(asyncio.BufferedProtocol):
    def __init__(self):
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
    def connection_made(self, tr):
        self.tr = tr
    def get_buffer(self, hint):
        return self.view
    def buffer_updated(self, n):
        self.tr.write(bytes(self.view[:n]))

async def handle(reader, writer):
    while True:
        data = await reader.read(256 * 1024)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    if kind == "streams":
        srv = await asyncio.start_server(handle, "127.0.0.1", port)
    else:
        srv = await loop.create_server(Echo if kind == "protocol" else BufEcho,
                                       "127.0.0.1", port)
    print("READY", flush=True)
    await asyncio.Event().wait()

loop.run_until_complete(main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(client: str, kind: str, loop_name: str, args: argparse.Namespace) -> dict:
    port = free_port()
    env = dict(os.environ)
    env["IOLOOP_C_TRANSPORT"] = "python" if loop_name == "python" else "native"
    srv = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", SERVER, kind, loop_name, str(port)],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    try:
        line = srv.stdout.readline()
        if "READY" not in line:
            raise RuntimeError(f"{loop_name} server did not start")
        out = subprocess.run(
            ["taskset", "-c", "1", client, "--tcp", f"127.0.0.1:{port}",
             "-c", str(args.conns), "-s", str(args.size), "-d", str(args.seconds),
             "-w", "1", "--server-pid", str(srv.pid)],
            capture_output=True, text=True, check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        srv.kill()
        srv.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client", required=True)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default="protocol,streams,buffered")
    ap.add_argument("--loops", default="native,python,uvloop")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    loops = args.loops.split(",")
    results = {(k, lp): [] for k in kinds for lp in loops}
    per_cpu = {(k, lp): [] for k in kinds for lp in loops}
    for r in range(args.rounds):
        for k in kinds:
            for lp in loops:
                res = one_run(args.client, k, lp, args)
                results[k, lp].append(res["rps"])
                per_cpu[k, lp].append(res["rps_per_server_cpu"])
                print(f"round {r + 1} {k:9s} {lp:8s} {res['rps']:10.0f} rt/s "
                      f"(server cpu {res['server_cpu']:.2f})", file=sys.stderr, flush=True)
                time.sleep(0.2)
    # On a shared machine the server may not get its whole CPU: round
    # trips per server CPU-second says what each round trip costs.
    for title, table in (("round trips per second", results),
                         ("round trips per server CPU-second", per_cpu)):
        print(f"\n{args.conns} connections x {args.size} B, median of {args.rounds} "
              f"rounds, {title}\n")
        ratio = "uvloop" in loops and "native" in loops
        print("| case | " + " | ".join(loops) + " |" + (" native / uvloop |" if ratio else ""))
        print("|---" * (len(loops) + 1 + ratio) + "|")
        for k in kinds:
            med = {lp: statistics.median(table[k, lp]) for lp in loops}
            row = f"| {k} | " + " | ".join(f"{med[lp]:,.0f}" for lp in loops) + " |"
            if ratio:
                row += f" {med['native'] / med['uvloop']:.2f} |"
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
