"""aiohttp's server and client, both on the loop under test, over TCP on
127.0.0.1: a hello-world, bodies of several MiB streamed each way and
checked by hash, a thousand concurrent requests, websocket echo."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random

import pytest

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]

BIG = 8 * 1024 * 1024 + 12345  # not a multiple of any chunk size
CHUNK = 64 * 1024


def payload(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


@contextlib.asynccontextmanager
async def serving(web, app):
    """The app on a free port of 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def make_app(web):
    big = payload(BIG, 1)

    async def hello(request):
        return web.Response(text="Hello, world")

    async def stream(request):
        resp = web.StreamResponse()
        resp.content_type = "application/octet-stream"
        await resp.prepare(request)
        for i in range(0, len(big), CHUNK):
            await resp.write(big[i:i + CHUNK])
        await resp.write_eof()
        return resp

    async def upload(request):
        h = hashlib.sha256()
        n = 0
        async for chunk in request.content.iter_any():
            h.update(chunk)
            n += len(chunk)
        return web.json_response({"size": n, "sha256": h.hexdigest()})

    async def echo_json(request):
        i = int(request.match_info["i"])
        await asyncio.sleep(0.001 * (i % 7))  # finish out of order
        return web.json_response({"i": i, "square": i * i,
                                  "peer": request.remote})

    async def ws_echo(request):
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                await ws.send_str(msg.data[::-1])
            elif msg.type == web.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/", hello)
    app.router.add_get("/stream", stream)
    app.router.add_post("/upload", upload)
    app.router.add_get("/n/{i}", echo_json)
    app.router.add_get("/ws", ws_echo)
    return app, big


@pytest.fixture
def aiohttp(need):
    return need("aiohttp")


def test_hello_world(run, aiohttp):
    from aiohttp import web

    async def main():
        app, _ = make_app(web)
        async with serving(web, app) as base, aiohttp.ClientSession() as s:
            for _ in range(3):  # the same kept-alive connection thrice
                async with s.get(base + "/") as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/plain")
                    assert await r.text() == "Hello, world"
            async with s.get(base + "/missing") as r:
                assert r.status == 404

    run(main)


def test_large_body_both_ways(run, aiohttp):
    from aiohttp import web

    async def main():
        app, big = make_app(web)
        want = hashlib.sha256(big).hexdigest()
        async with serving(web, app) as base, aiohttp.ClientSession() as s:
            # Download, read in chunks as they arrive.
            async with s.get(base + "/stream") as r:
                assert r.status == 200
                h = hashlib.sha256()
                n = 0
                async for chunk in r.content.iter_chunked(100_000):
                    h.update(chunk)
                    n += len(chunk)
            assert n == BIG
            assert h.hexdigest() == want

            # Upload, produced piecewise by an async generator.
            up = payload(BIG, 2)

            async def body():
                for i in range(0, len(up), CHUNK):
                    yield up[i:i + CHUNK]
                    if i % (16 * CHUNK) == 0:
                        await asyncio.sleep(0)

            async with s.post(base + "/upload", data=body()) as r:
                assert r.status == 200
                got = await r.json()
            assert got == {"size": BIG,
                           "sha256": hashlib.sha256(up).hexdigest()}

            # And whole, one write of several MiB.
            async with s.post(base + "/upload", data=up) as r:
                got = await r.json()
            assert got["sha256"] == hashlib.sha256(up).hexdigest()

    run(main)


def test_many_concurrent_requests(run, aiohttp):
    from aiohttp import web

    n = 1000

    async def main():
        app, _ = make_app(web)
        connector = aiohttp.TCPConnector(limit=200)
        async with serving(web, app) as base, \
                aiohttp.ClientSession(connector=connector) as s:
            async def one(i):
                async with s.get(f"{base}/n/{i}") as r:
                    assert r.status == 200
                    return await r.json()

            results = await asyncio.gather(*(one(i) for i in range(n)))
        assert [r["i"] for r in results] == list(range(n))
        assert all(r["square"] == r["i"] ** 2 for r in results)
        assert {r["peer"] for r in results} == {"127.0.0.1"}

    run(main)


def test_websocket_echo(run, aiohttp):
    from aiohttp import web

    async def main():
        app, _ = make_app(web)
        async with serving(web, app) as base, aiohttp.ClientSession() as s:
            async with s.ws_connect(base + "/ws",
                                    max_msg_size=16 * 1024 * 1024) as ws:
                for i in range(200):
                    text = f"message {i} " + "x" * i
                    await ws.send_str(text)
                    assert await ws.receive_str() == text[::-1]
                blobs = [payload(size, size) for size in
                         (0, 1, 125, 126, 65535, 65536, 3 * 1024 * 1024)]
                for blob in blobs:  # every frame-length encoding
                    await ws.send_bytes(blob)
                for blob in blobs:  # echoed in order
                    assert await ws.receive_bytes() == blob
                await ws.close()
            assert ws.closed
            assert ws.close_code == 1000

    run(main)


def test_unix_socket(run, aiohttp, tmp_path):
    from aiohttp import web

    path = str(tmp_path / "http.sock")

    async def main():
        app, big = make_app(web)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        await web.UnixSite(runner, path).start()
        try:
            connector = aiohttp.UnixConnector(path=path, limit=50)
            async with aiohttp.ClientSession(connector=connector) as s:
                async def one(i):
                    async with s.get(f"http://local/n/{i}") as r:
                        return (await r.json())["square"]

                assert await asyncio.gather(*(one(i) for i in range(300))) \
                    == [i * i for i in range(300)]
                async with s.get("http://local/stream") as r:
                    body = await r.read()
                assert hashlib.sha256(body).digest() == \
                    hashlib.sha256(big).digest()
        finally:
            await runner.cleanup()

    run(main)


def _tls_contexts():
    import ssl

    from test.test_asyncio import utils as tu

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tu.SIGNED_CERTFILE)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(tu.SIGNING_CA)
    return server, client


def test_https_server_and_client(run, aiohttp):
    # TLS both ways (ioloop_c: its native TLS data phase): keep-alive
    # requests, a body of several MiB each way checked by hash, and a few
    # hundred concurrent requests over a pool of TLS connections.
    from aiohttp import web

    async def main():
        server_ctx, client_ctx = _tls_contexts()
        app, big = make_app(web)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        # The certificate names "localhost".
        base = f"https://localhost:{port}"
        connector = aiohttp.TCPConnector(ssl=client_ctx, limit=50)
        try:
            async with aiohttp.ClientSession(connector=connector) as s:
                for _ in range(3):
                    async with s.get(base + "/") as r:
                        assert r.status == 200
                        assert await r.text() == "Hello, world"
                async with s.get(base + "/stream") as r:
                    h = hashlib.sha256()
                    n = 0
                    async for chunk in r.content.iter_chunked(100_000):
                        h.update(chunk)
                        n += len(chunk)
                assert n == BIG
                assert h.hexdigest() == hashlib.sha256(big).hexdigest()
                up = payload(BIG, 3)
                async with s.post(base + "/upload", data=up) as r:
                    got = await r.json()
                assert got == {"size": BIG, "sha256": hashlib.sha256(up).hexdigest()}

                async def one(i):
                    async with s.get(f"{base}/n/{i}") as r:
                        return (await r.json())["square"]

                squares = await asyncio.gather(*(one(i) for i in range(300)))
                assert squares == [i * i for i in range(300)]
        finally:
            await runner.cleanup()

    run(main)
