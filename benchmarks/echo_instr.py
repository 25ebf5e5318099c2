"""Instructions per echo round trip, server side, under callgrind: a
measure of each loop's cost that the load of a shared machine does not
move.

    python benchmarks/echo_instr.py [--loops asyncio,uvloop,ioloop_c,...]
        [--kinds protocol,buffered,streams,tls] [--conns 10] [--size 100]
        [--seconds 4] [--out DIR]

Each server (benchmarks/echo_servers.py on the named loop, or the C
roofline benchmarks/echo_server.c) runs under ``valgrind --tool=callgrind``.
The C client (benchmarks/echo_client.c, natively) warms it up, then the
counters are zeroed (``callgrind_control -z``), the client runs for
--seconds, and the counters are dumped: user-space instructions the server
executed, divided by the round trips the client completed.  The kernel's
share (the system calls themselves) is not counted, and neither are cache
misses, so this is the CPU work each loop adds per round trip, not its
speed; ``echo_bench.py`` measures speed.  The same binary, inputs and
environment give the same count whatever else the machine is doing, to
within a fraction of a percent (the kernel decides how many events each
wait returns, which moves the count a little).

Writes ``echo_instr.md`` and ``echo_instr.json`` into --out (default
build/echo_instr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import echo_bench  # noqa: E402

LOOPS = ("asyncio", "uvloop", "ioloop_c", "afn-asyncio", "afn-uvloop", "afn-ioloop_c", "roofline",
         "ioloop_c-pytls", "ioloop_c-methods")


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Under valgrind a server takes seconds to start: poll its port."""
    import socket

    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server not listening on {port} after {timeout} s")


def total_ir(path: str) -> int:
    """The 'summary:' / 'totals:' line of a callgrind dump (instructions)."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def handshake_ir(path: str) -> int:
    """Instructions inside SSL_do_handshake (inclusive) in a callgrind dump:
    the counted run opens its connections afresh, so a TLS count holds
    their handshakes, a fixed cost that the number of round trips (which
    the machine's load moves) spreads thinner or thicker."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                          "--auto=no", path], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.rstrip().endswith("]") and ":SSL_do_handshake " in line:
            return int(line.split()[0].replace(",", ""))
    return 0


def measure(args: argparse.Namespace, ctx: dict[str, Any], loop: str, kind: str) -> dict[str, Any]:
    port = echo_bench.free_port()
    out = os.path.join(ctx["tmp"], f"cg.{loop}.{kind}.out")
    if loop == "roofline":
        cmd = [ctx["server"], "--tcp", str(port)]
    else:
        cmd = [sys.executable, os.path.join(HERE, "echo_servers.py"), "--loop", loop,
               "--kind", kind, "--tcp", str(port)]
        if kind == "tls":
            cmd += ["--cert", ctx["cert"][0], "--key", ctx["cert"][1]]
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]
    proc = subprocess.Popen(vg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        client = [ctx["client"], "--tcp", f"127.0.0.1:{port}", "-c", str(args.conns),
                  "-s", str(args.size), "-w", "0"] + (["--tls"] if kind == "tls" else [])
        subprocess.run(client + ["-d", "1"], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       capture_output=True)
        res = subprocess.run(client + ["-d", str(args.seconds)], check=True,
                             capture_output=True, text=True)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       capture_output=True)
        rt = json.loads(res.stdout)["round_trips"]
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    dump = out + ".1"
    ir = total_ir(dump)
    if args.keep:
        shutil.copy(dump, os.path.join(args.out, f"callgrind.{loop}.{kind}.out"))
    hs = handshake_ir(dump) if kind == "tls" else 0
    return {"loop": loop, "kind": kind, "round_trips": rt, "instructions": ir,
            "per_round_trip": ir / rt if rt else None, "handshake_instructions": hs,
            "per_round_trip_steady": (ir - hs) / rt if rt else None}


def report(args: argparse.Namespace, rows: list[dict[str, Any]], loops: list[str]) -> str:
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    get = {(r["loop"], r["kind"]): r for r in rows}
    lines = [
        "# Instructions per echo round trip (server, user space, callgrind)", "",
        f"{args.conns} connections x {args.size} B; {args.seconds} s counted after a "
        "1 s warm-up. Fewer is better; the ratio is uvloop's count over ours "
        "(above 1: ours does less work).", "",
        "| case | " + " | ".join(echo_bench.HEADS.get(x, x) for x in loops)
        + " | uvloop / ours | asyncio / ours |",
        "|---|" + "---:|" * (len(loops) + 2),
    ]
    for kind in kinds:
        cells = []
        for lp in loops:
            r = get.get((lp, kind))
            cells.append(f"{r['per_round_trip']:,.0f}" if r and r["per_round_trip"] else "-")
        ours = get.get(("ioloop_c", kind))

        def ratio(anchor: str) -> str:
            a = get.get((anchor, kind))
            if not (a and ours and a["per_round_trip"] and ours["per_round_trip"]):
                return "-"
            return f"{a['per_round_trip'] / ours['per_round_trip']:.2f}"

        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {ratio('uvloop')} | "
                     f"{ratio('asyncio')} |")
        if kind == "tls":
            steady = []
            for lp in loops:
                r = get.get((lp, kind))
                v = r.get("per_round_trip_steady") if r else None
                steady.append(f"{v:,.0f}" if v else "-")
            lines.append("| tls, without the handshakes (SSL_do_handshake) | "
                         + " | ".join(steady) + " | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", default="asyncio,uvloop,ioloop_c,roofline")
    ap.add_argument("--keep", action="store_true",
                    help="copy each callgrind dump into --out (for callgrind_annotate)")
    ap.add_argument("--kinds", default="protocol,buffered,streams,tls")
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "echo_instr"))
    args = ap.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing (Debian's valgrind package)")
    loops = [x for x in args.loops.split(",") if x]
    bad = [x for x in loops if x not in LOOPS]
    if bad:
        raise SystemExit(f"unknown loops: {bad}")
    loops = [x for x in loops if echo_bench.loop_available(x) is None]
    kinds = [x for x in args.kinds.split(",") if x]
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        client, server, tls = echo_bench.build(os.path.join(ROOT, "build"))
        ctx: dict[str, Any] = {"tmp": tmp, "client": client, "server": server,
                               "cert": echo_bench.make_cert(tmp) if tls else None}
        rows = []
        for kind in kinds:
            if kind == "tls" and ctx["cert"] is None:
                continue
            for lp in loops:
                if lp == "roofline" and kind != "protocol":
                    continue
                r = measure(args, ctx, lp, kind)
                print(f"{kind:9s} {lp:13s} {r['per_round_trip']:>10,.0f} instructions per "
                      f"round trip ({r['round_trips']} round trips)", flush=True)
                rows.append(r)
    text = report(args, rows, loops)
    with open(os.path.join(args.out, "echo_instr.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "echo_instr.json"), "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
