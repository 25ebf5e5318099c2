"""Tornado's data path on each loop: IOStream, HTTP bodies and websockets.

    python benchmarks/tornado_stream_bench.py [--runs 5] [--cases small,...]
                                              [--variants stock,uvloop,...]
                                              [--server-cpu 0] [--load-cpu 1]

Every case but ``websocket`` measures a server alone: the variant's Tornado
server runs in its own process, pinned to one CPU, and a load generator
written in C runs on the other (``benchmarks/echo_client.c``, built here,
for the stream cases; ``wrk`` for the HTTP ones), so no Python client caps
or shares the figures.  Each case reports its rate per wall-clock second
and per CPU second of the server (user + system: the steadier figure on a
shared machine, since time spent waiting for a CPU is not counted).  The
servers of one case start together and runs alternate between variants,
so drift hits all alike.  The tables give the median rate per variant and,
for ours, the median of the run-by-run ratios to each anchor.

Variants: ``stock`` (Tornado on asyncio's own loop), ``uvloop``,
``ioloop_c-stockio`` (an ioloop_c loop with Tornado's own IOStream,
``IOLOOP_C_IOSTREAM=stock``) and ``ioloop_c`` (the native IOStream); ours
are made the plain way, ``asyncio.set_event_loop(ioloop_c.new_event_loop())``.

Cases:

- ``small``: 100-byte messages echoed by a ``TCPServer`` with
  ``read_bytes(100)`` / ``write`` (the C client waits for each echo);
- ``read_until``: 32 MiB messages ended by ``\\r\\n\\r\\n``, read with
  ``read_until`` and written back (what Dask's comm layer does; Tornado
  issue 1685);
- ``read_bytes``: 32 MiB messages read with one ``read_bytes`` and written
  back;
- ``upload``: 10 MiB POST bodies (``application/octet-stream``) to an
  ``HTTPServer`` (wrk, 2 connections);
- ``response``: 1 MiB responses from an ``HTTPServer`` (wrk, 4
  connections);
- ``websocket``: 100-byte websocket echo round trips, Tornado's client and
  server in one process on the variant's loop (no C websocket client here;
  the rate is per CPU second of that process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("small", "read_until", "read_bytes", "upload", "response", "websocket")
VARIANTS = ("stock", "uvloop", "ioloop_c-stockio", "ioloop_c")
UNITS = {
    "small": "round trips/s",
    "read_until": "MB/s",
    "read_bytes": "MB/s",
    "upload": "MB/s",
    "response": "MB/s",
    "websocket": "round trips/s",
}
BIG = 32 * 1024 * 1024
UPLOAD = 10 * 1024 * 1024
RESPONSE = 1024 * 1024
#: The cases served to a C load generator, and which one.
ECHO_CASES = {"small": 100, "read_until": BIG, "read_bytes": BIG}
WRK_CASES = {"upload": 2, "response": 4}


def make_loop(variant: str) -> asyncio.AbstractEventLoop:
    if variant == "stock":
        return asyncio.new_event_loop()
    if variant == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    import ioloop_c

    return ioloop_c.new_event_loop()


def _http_app():
    from tornado import web

    big = b"z" * RESPONSE

    class Big(web.RequestHandler):
        def get(self):
            self.write(big)

        def post(self):
            self.write(str(len(self.request.body)))

    return web.Application([(r"/big", Big)])


async def serve(case: str, port: int) -> None:
    """The case's server on the running loop, until SIGTERM."""
    from tornado.httpserver import HTTPServer
    from tornado.iostream import StreamClosedError
    from tornado.netutil import bind_sockets
    from tornado.tcpserver import TCPServer

    size = ECHO_CASES.get(case)

    class Echo(TCPServer):
        async def handle_stream(self, stream, address):
            stream.set_nodelay(True)
            try:
                while True:
                    if case == "read_until":
                        data = await stream.read_until(b"\r\n\r\n", max_bytes=2 * BIG)
                    else:
                        data = await stream.read_bytes(size)
                    stream.write(data)
            except StreamClosedError:
                pass

    sockets = bind_sockets(port, "127.0.0.1")
    if size is not None:
        server = Echo(max_buffer_size=4 * BIG)
    else:
        server = HTTPServer(_http_app(), max_body_size=4 * UPLOAD,
                            max_buffer_size=4 * UPLOAD)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("serving", flush=True)
    await stop.wait()
    server.stop()


async def case_websocket(seconds: float) -> tuple[float, float]:
    from tornado import web, websocket
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    class Echo(websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message, binary=True)

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = HTTPServer(web.Application([(r"/ws", Echo)]))
    server.add_sockets(sockets)
    conn = await websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws")
    msg = b"w" * 100
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(100):
            await conn.write_message(msg, binary=True)
            await conn.read_message()
        n += 100
        took = time.perf_counter() - t0
        if took >= seconds:
            break
    conn.close()
    server.stop()
    await server.close_all_connections()
    return n, took


def _check_kind(loop: asyncio.AbstractEventLoop, variant: str) -> None:
    # Ours must have (or, for -stockio, not have) the native IOStream.
    if not variant.startswith("ioloop_c"):
        return
    from tornado.iostream import IOStream as Stock

    import ioloop_c.tornado as shim

    a, b = socket.socketpair()

    async def kind():
        s = Stock(a)
        native = isinstance(s, shim.IOStream)
        s.close()
        return native

    native = loop.run_until_complete(kind())
    b.close()
    assert native == (variant == "ioloop_c"), (variant, native)


def _variant_env(variant: str) -> None:
    if variant == "ioloop_c-stockio":
        os.environ["IOLOOP_C_IOSTREAM"] = "stock"


def child(case: str, variant: str, seconds: float) -> None:
    """The in-process case (websocket): rates per wall and CPU second."""
    _variant_env(variant)
    loop = make_loop(variant)
    asyncio.set_event_loop(loop)
    coro = globals()[f"case_{case}"]
    loop.run_until_complete(coro(seconds / 4))  # warm-up
    cpu0 = time.process_time()
    amount, took = loop.run_until_complete(coro(seconds))
    cpu = time.process_time() - cpu0
    _check_kind(loop, variant)
    loop.close()
    print(amount / took, amount / cpu)


def server_child(case: str, variant: str, port: int) -> None:
    _variant_env(variant)
    loop = make_loop(variant)
    asyncio.set_event_loop(loop)
    _check_kind(loop, variant)
    loop.run_until_complete(serve(case, port))
    loop.close()


_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pin(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(case: str, variant: str, seconds: float, cpu: int | None):
    port = free_port()
    proc = subprocess.Popen(
        [*_pin(cpu), sys.executable, os.path.abspath(__file__), "--seconds", str(seconds),
         "--serve", case, variant, str(port)],
        stdout=subprocess.PIPE, text=True, cwd="/",
    )
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise SystemExit(f"{case} server on {variant} did not start")
    return proc, port


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def build_client(build_dir: str) -> str:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("no C compiler (cc): the echo client must be compiled")
    client = os.path.join(build_dir, "echo_client")
    subprocess.run([cc, "-O2", "-DECHO_NO_TLS", "-o", client,
                    os.path.join(HERE, "echo_client.c")], check=True)
    return client


def load_echo(client: str, case: str, port: int, pid: int, seconds: float,
              cpu: int | None) -> tuple[float, float]:
    """echo_client against the server: (rate, rate per server CPU second)."""
    size = ECHO_CASES[case]
    extra = ["--crlf-end"] if case == "read_until" else []
    out = subprocess.run(
        [*_pin(cpu), client, "--tcp", f"127.0.0.1:{port}", "-c", "1", "-s", str(size),
         "-d", str(seconds), "-w", str(min(1.0, seconds / 2)), "--server-pid", str(pid),
         *extra], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"echo_client failed on {case}: {out.stderr}")
    r = json.loads(out.stdout)
    scale = 1.0 if case == "small" else size / 1e6
    return r["rps"] * scale, r["rps_per_server_cpu"] * scale


def load_wrk(case: str, port: int, pid: int, seconds: float, cpu: int | None,
             script: str) -> tuple[float, float]:
    """wrk against the HTTP server: (MB/s, MB per server CPU second)."""
    args = ["-s", script] if case == "upload" else []
    cmd = [*_pin(cpu), "wrk", "-t1", "-c", str(WRK_CASES[case]),
           "-d", f"{max(1, round(seconds))}s", *args, f"http://127.0.0.1:{port}/big"]
    cpu0 = proc_cpu(pid)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    used = proc_cpu(pid) - cpu0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk reported a problem on {case}:\n{out}")
    per = (UPLOAD if case == "upload" else RESPONSE) / 1e6
    return float(m.group(1)) * per, int(n.group(1)) * per / max(used, 1e-9)


def report(title: str, table: dict, cases: list[str], variants: list[str]) -> None:
    """Medians per variant, and ours against each anchor as the median of
    the run-by-run ratios."""
    print(f"\nRates {title}, medians\n")
    print("| case | unit | " + " | ".join(variants) + " |")
    print("|---|---|" + "---|" * len(variants))
    for case in cases:
        cells = [f"{statistics.median(table[case, v]):.1f}" for v in variants]
        print(f"| {case} | {UNITS[case]} | " + " | ".join(cells) + " |")
    ours = [v for v in variants if v.startswith("ioloop_c")]
    anchors = [v for v in variants if not v.startswith("ioloop_c")]
    if not (ours and anchors):
        return
    print(f"\nMedian of run-by-run ratios ({title})\n")
    head = [f"{o} / {a}" for o in ours for a in anchors]
    print("| case | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    for case in cases:
        cells = []
        for o in ours:
            for a in anchors:
                r = [x / y for x, y in zip(table[case, o], table[case, a], strict=True)]
                cells.append(f"{statistics.median(r):.2f}x")
        print(f"| {case} | " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="per case and run")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--server-cpu", type=int, default=0, help="pin servers here (-1: no pin)")
    ap.add_argument("--load-cpu", type=int, default=1, help="pin the load here (-1: no pin)")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=3, metavar=("CASE", "VARIANT", "PORT"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.seconds)
        return 0
    if args.serve:
        server_child(args.serve[0], args.serve[1], int(args.serve[2]))
        return 0
    scpu = None if args.server_cpu < 0 else args.server_cpu
    lcpu = None if args.load_cpu < 0 else args.load_cpu
    cases = args.cases.split(",")
    variants = args.variants.split(",")
    if any(c in WRK_CASES for c in cases) and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    rates = {(c, v): [] for c in cases for v in variants}
    cpu_rates = {(c, v): [] for c in cases for v in variants}
    tmp = tempfile.mkdtemp(prefix="tornado_stream_bench.")
    client = build_client(tmp)
    script = os.path.join(tmp, "upload.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n'
                f'wrk.body = string.rep("u", {UPLOAD})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n')

    def record(run, case, variant, rate, cpu_rate):
        rates[case, variant].append(rate)
        cpu_rates[case, variant].append(cpu_rate)
        print(f"run {run + 1}/{args.runs} {case:10s} {variant:16s} {rate:12.1f} "
              f"{UNITS[case]} ({cpu_rate:.1f} per server CPU second)", flush=True)

    for case in cases:
        if case not in ECHO_CASES and case not in WRK_CASES:
            for run in range(args.runs):
                for variant in variants:
                    out = subprocess.run(
                        [*_pin(scpu), sys.executable, os.path.abspath(__file__),
                         "--seconds", str(args.seconds), "--child", case, variant],
                        capture_output=True, text=True, cwd="/")
                    if out.returncode != 0:
                        raise SystemExit(f"{case} on {variant} failed:\n{out.stderr}")
                    record(run, case, variant, *map(float, out.stdout.split()[-2:]))
            continue
        servers = {v: start_server(case, v, args.seconds, scpu) for v in variants}
        try:
            for run in range(-1, args.runs):  # run -1: a warm-up, not recorded
                for variant in variants:
                    proc, port = servers[variant]
                    secs = args.seconds if run >= 0 else 1.0
                    if case in ECHO_CASES:
                        got = load_echo(client, case, port, proc.pid, secs, lcpu)
                    else:
                        got = load_wrk(case, port, proc.pid, secs, lcpu, script)
                    if run >= 0:
                        record(run, case, variant, *got)
        finally:
            for proc, _ in servers.values():
                stop_server(proc)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nTornado data path, {args.runs} runs x {args.seconds:g} s per case and "
          "variant, alternating; servers on CPU "
          f"{scpu}, load (C client, wrk) on CPU {lcpu}")
    for title, table in (("per wall-clock second", rates),
                         ("per CPU second of the server (user + system)", cpu_rates)):
        report(title, table, cases, variants)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rates": {f"{c} {v}": r for (c, v), r in rates.items()},
                       "cpu_rates": {f"{c} {v}": r for (c, v), r in cpu_rates.items()}},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
