"""UDP echo across loops: round trips per second at 1 and 10 clients.

    python benchmarks/udp_bench.py [--rounds 3] [--clients 1,10]
        [--sizes 100] [--duration 2] [--warmup 0.5]
        [--loops asyncio,uvloop,ioloop_c,ioloop_c-python] [--out DIR]

Each server is this file run with ``--serve LOOP`` in its own process,
pinned to one CPU with ``taskset``: a ``DatagramProtocol`` whose
``datagram_received`` sends every datagram back with
``transport.sendto(data, addr)``, on stock asyncio, uvloop, ioloop_c with
its native datagram transport, and ioloop_c with asyncio's Python
transport (``IOLOOP_C_TRANSPORT=python``).  The load is
benchmarks/udp_client.c (built here with ``cc -O2`` into build/) on the
other CPU: each client a connected UDP socket with one datagram in
flight.  Every loop runs once per round, the order rotating from round
to round; the table gives medians over the rounds, and each ratio is the
median of the per-round ratios.  Writes ``udp.md`` and ``udp.json``
into --out (default build/bench-udp).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOOPS = ("asyncio", "uvloop", "ioloop_c", "ioloop_c-python")


class Echo(asyncio.DatagramProtocol):
    """Send every datagram back where it came from."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


def serve(loop_name: str) -> None:
    """Run the echo server on one loop; print the port, serve forever."""
    if loop_name == "ioloop_c-python":
        os.environ["IOLOOP_C_TRANSPORT"] = "python"
    if loop_name.startswith("ioloop_c"):
        import ioloop_c

        loop = ioloop_c.new_event_loop()
    elif loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop()
    asyncio.set_event_loop(loop)
    transport, _ = loop.run_until_complete(
        loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    )
    kind = type(transport).__module__ + "." + type(transport).__name__
    print(transport.get_extra_info("sockname")[1], kind, flush=True)
    loop.run_forever()


def build_client() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("no C compiler: the UDP client must be compiled")
    out = os.path.join(ROOT, "build")
    os.makedirs(out, exist_ok=True)
    client = os.path.join(out, "udp_client")
    subprocess.run([cc, "-O2", "-o", client, os.path.join(HERE, "udp_client.c")], check=True)
    return client


def pins() -> tuple[list[str], list[str]]:
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], []
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"]


def one_run(client: str, loop_name: str, clients: int, size: int, args: Any) -> dict[str, Any]:
    spin, cpin = pins()
    server = subprocess.Popen(
        [*spin, sys.executable, os.path.abspath(__file__), "--serve", loop_name],
        stdout=subprocess.PIPE, text=True, cwd="/tmp",
    )
    try:
        assert server.stdout is not None
        port, kind = server.stdout.readline().split()
        cmd = [*cpin, client, f"127.0.0.1:{port}", "-c", str(clients), "-s", str(size),
               "-d", str(args.duration), "-w", str(args.warmup), "--server-pid", str(server.pid)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
        out = json.loads(res.stdout)
        out.update(loop=loop_name, clients=clients, size=size, transport=kind)
        return out
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1,10")
    ap.add_argument("--sizes", default="100")
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-udp"))
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    loops = [x for x in args.loops.split(",") if x]
    if "uvloop" in loops:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            loops.remove("uvloop")
    client = build_client()
    samples: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    for clients in [int(c) for c in args.clients.split(",")]:
        for size in [int(s) for s in args.sizes.split(",")]:
            for r in range(args.rounds):
                order = loops[r % len(loops):] + loops[: r % len(loops)]
                for name in order:
                    s = one_run(client, name, clients, size, args)
                    s["round"] = r
                    samples.append(s)
                    print(f"{clients:>3} clients {size} B round {r} {name:<16} "
                          f"{s['rps']:>10,.0f} rt/s  lost {s['lost']}  ({s['transport']})",
                          flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "udp.json"), "w") as f:
        json.dump({"samples": samples, "load_before": load,
                   "python": sys.version.split()[0]}, f, indent=1)
    md = table(samples, loops)
    with open(os.path.join(args.out, "udp.md"), "w") as f:
        f.write(md)
    print(md)


def table(samples: list[dict[str, Any]], loops: list[str]) -> str:
    out = []
    for metric, title in (("rps", "UDP echo round trips per second"),
                          ("rps_per_server_cpu", "UDP echo round trips per server CPU-second")):
        out.append(one_table(samples, loops, metric, title))
    return "\n".join(out)


def one_table(samples: list[dict[str, Any]], loops: list[str], metric: str, title: str) -> str:
    lines = [f"{title} (median of rounds; ratios are medians of per-round ratios)", ""]
    head = "| clients | size | " + " | ".join(loops) + " | ioloop_c / uvloop | native / python |"
    lines += [head, "|" + "---|" * (len(loops) + 4)]
    cells = sorted({(s["clients"], s["size"]) for s in samples})
    for clients, size in cells:
        mine = [s for s in samples if s["clients"] == clients and s["size"] == size]
        med = {n: statistics.median([s[metric] for s in mine if s["loop"] == n] or [0])
               for n in loops}

        def ratio(a: str, b: str, mine: list[dict[str, Any]] = mine) -> str:
            rs = []
            for r in {s["round"] for s in mine}:
                x = [s[metric] for s in mine if s["round"] == r and s["loop"] == a]
                y = [s[metric] for s in mine if s["round"] == r and s["loop"] == b]
                if x and y and y[0]:
                    rs.append(x[0] / y[0])
            return f"{statistics.median(rs):.2f}" if rs else "-"

        figures = " | ".join(f"{med[n]:,.0f}" for n in loops)
        ratios = f"{ratio('ioloop_c', 'uvloop')} | {ratio('ioloop_c', 'ioloop_c-python')}"
        lines.append(f"| {clients} | {size} B | {figures} | {ratios} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
