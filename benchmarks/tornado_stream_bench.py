"""Tornado's data path on each loop: IOStream, HTTP bodies and websockets.

    python benchmarks/tornado_stream_bench.py [--runs 5] [--cases small,...]
                                              [--variants stock,uvloop,...]

Each case runs in a fresh child process per variant, both ends in that
process on that loop (so the IOStream on each side is the variant's), and
reports its rate per wall-clock second and per CPU second of the process
(user + system: the steadier figure on a shared machine, since time spent
waiting for a CPU is not counted); runs alternate between variants so
drift hits all alike.  The tables give the median rate per variant and,
for ours, the median of the run-by-run ratios to each anchor.

Variants: ``stock`` (Tornado on asyncio's own loop), ``uvloop``,
``ioloop_c-stockio`` (an ioloop_c loop with Tornado's own IOStream,
``IOLOOP_C_IOSTREAM=stock``) and ``ioloop_c`` (the native IOStream); ours
are made the plain way, ``asyncio.set_event_loop(ioloop_c.new_event_loop())``.

Cases:

- ``small``: 100-byte ``write`` / ``read_bytes`` round trips on one stream;
- ``read_until``: a 32 MiB message ended by a delimiter, read with
  ``read_until`` (what Dask's comm layer does; Tornado issue 1685);
- ``read_bytes``: 32 MiB read with one ``read_bytes``;
- ``upload``: 10 MiB POST bodies (``application/octet-stream``) to an
  HTTPServer from simple_httpclient;
- ``response``: 1 MiB responses from an HTTPServer to simple_httpclient;
- ``websocket``: 100-byte websocket echo round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

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


def make_loop(variant: str) -> asyncio.AbstractEventLoop:
    if variant == "stock":
        return asyncio.new_event_loop()
    if variant == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    import ioloop_c

    return ioloop_c.new_event_loop()


async def stream_pair():
    from tornado.iostream import IOStream

    a, b = socket.socketpair()
    return IOStream(a), IOStream(b)


async def case_small(seconds: float) -> tuple[float, float]:
    client, server = await stream_pair()
    msg = b"x" * 100

    async def echo():
        while True:
            data = await server.read_bytes(100)
            server.write(data)

    task = asyncio.ensure_future(echo())
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(200):
            client.write(msg)
            await client.read_bytes(100)
        n += 200
        took = time.perf_counter() - t0
        if took >= seconds:
            break
    task.cancel()
    client.close()
    server.close()
    return n, took


async def _big_message(seconds: float, delimited: bool) -> tuple[float, float]:
    client, server = await stream_pair()
    size = 32 * 1024 * 1024
    payload = b"y" * size
    moved = 0
    t0 = time.perf_counter()
    while True:
        if delimited:
            client.write(payload + b"\r\n\r\n")
            data = await server.read_until(b"\r\n\r\n")
        else:
            client.write(payload)
            data = await server.read_bytes(size)
        assert len(data) >= size
        moved += len(data)
        took = time.perf_counter() - t0
        if took >= seconds:
            break
    client.close()
    server.close()
    return moved / 1e6, took


async def case_read_until(seconds: float) -> tuple[float, float]:
    return await _big_message(seconds, True)


async def case_read_bytes(seconds: float) -> tuple[float, float]:
    return await _big_message(seconds, False)


def _http_app():
    from tornado import web

    big = b"z" * (1024 * 1024)

    class Big(web.RequestHandler):
        def get(self):
            self.write(big)

        def post(self):
            self.write(str(len(self.request.body)))

    return web.Application([(r"/big", Big)])


async def _http(seconds: float, upload: bool) -> tuple[float, float]:
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = HTTPServer(_http_app(), max_body_size=64 * 1024 * 1024)
    server.add_sockets(sockets)
    client = AsyncHTTPClient(force_instance=True, max_body_size=64 * 1024 * 1024)
    url = f"http://127.0.0.1:{port}/big"
    body = b"u" * (10 * 1024 * 1024)
    moved = 0
    t0 = time.perf_counter()
    while True:
        if upload:
            # Not form-encoded: Tornado would parse a 10 MiB form body
            # (bytes.decode, split, parse_qs), which is not the data path.
            r = await client.fetch(url, method="POST", body=body,
                                   headers={"Content-Type": "application/octet-stream"})
            assert int(r.body) == len(body)
            moved += len(body)
        else:
            r = await client.fetch(url)
            moved += len(r.body)
        took = time.perf_counter() - t0
        if took >= seconds:
            break
    client.close()
    server.stop()
    await server.close_all_connections()
    return moved / 1e6, took


async def case_upload(seconds: float) -> tuple[float, float]:
    return await _http(seconds, True)


async def case_response(seconds: float) -> tuple[float, float]:
    return await _http(seconds, False)


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


def child(case: str, variant: str, seconds: float) -> None:
    if variant == "ioloop_c-stockio":
        os.environ["IOLOOP_C_IOSTREAM"] = "stock"
    loop = make_loop(variant)
    asyncio.set_event_loop(loop)
    coro = globals()[f"case_{case}"]
    loop.run_until_complete(coro(seconds / 4))  # warm-up
    cpu0 = time.process_time()
    amount, took = loop.run_until_complete(coro(seconds))
    cpu = time.process_time() - cpu0
    if variant.startswith("ioloop_c"):
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
    loop.close()
    print(amount / took, amount / cpu)


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
    ap.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.seconds)
        return 0
    cases = args.cases.split(",")
    variants = args.variants.split(",")
    rates = {(c, v): [] for c in cases for v in variants}
    cpu_rates = {(c, v): [] for c in cases for v in variants}
    for run in range(args.runs):
        for case in cases:
            for variant in variants:
                out = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--seconds", str(args.seconds),
                     "--child", case, variant],
                    capture_output=True, text=True, cwd="/",
                )
                if out.returncode != 0:
                    raise SystemExit(f"{case} on {variant} failed:\n{out.stderr}")
                rate, cpu_rate = map(float, out.stdout.split()[-2:])
                rates[case, variant].append(rate)
                cpu_rates[case, variant].append(cpu_rate)
                print(f"run {run + 1}/{args.runs} {case:10s} {variant:16s} {rate:12.1f} "
                      f"{UNITS[case]} ({cpu_rate:.1f} per CPU second)", flush=True)
    print(f"\nTornado data path, {args.runs} runs x {args.seconds:g} s per case and "
          "variant, alternating")
    for title, table in (("per wall-clock second", rates),
                         ("per CPU second of the process (user + system)", cpu_rates)):
        report(title, table, cases, variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
