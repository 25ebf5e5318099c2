"""The websockets package's asyncio server and client, both on the loop
under test: echo of text and binary, messages of several MiB (also
fragmented), many clients at once, closing handshakes with their codes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random

import pytest

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]

MAX = 32 * 1024 * 1024


@pytest.fixture
def ws(need):
    need("websockets")
    return (need("websockets.asyncio.server"),
            need("websockets.asyncio.client"),
            need("websockets.exceptions"))


async def echo(conn):
    """Text comes back reversed (so an echo is not mistaken for a loop
    back of our own buffer), binary as it was."""
    async for message in conn:
        if isinstance(message, str):
            await conn.send(message[::-1])
        else:
            await conn.send(message)


@contextlib.asynccontextmanager
async def echo_server(server_mod):
    async with server_mod.serve(echo, "127.0.0.1", 0, max_size=MAX,
                                compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def test_echo(run, ws):
    server_mod, client_mod, exc_mod = ws

    async def main():
        async with echo_server(server_mod) as url:
            async with client_mod.connect(url) as conn:
                for i in range(300):
                    await conn.send(f"héllo {i}")
                    assert await conn.recv() == f"héllo {i}"[::-1]
                for size in (0, 1, 125, 126, 127, 65535, 65536, 200_000):
                    blob = random.Random(size).randbytes(size)
                    await conn.send(blob)
                    assert await conn.recv() == blob
                pong = await conn.ping(b"are you there")
                latency = await asyncio.wait_for(pong, 10)
                assert latency >= 0
                await conn.close(code=1000, reason="done here")
            assert conn.close_code == 1000
            assert conn.close_reason == "done here"
            with pytest.raises(exc_mod.ConnectionClosedOK):
                await conn.recv()

    run(main)


def test_large_messages(run, ws):
    server_mod, client_mod, _ = ws
    big = random.Random(3).randbytes(10 * 1024 * 1024 + 1)
    text = "ü" * (2 * 1024 * 1024)

    async def main():
        async with echo_server(server_mod) as url:
            async with client_mod.connect(url, max_size=MAX,
                                          compression=None) as conn:
                await conn.send(big)
                got = await conn.recv()
                assert hashlib.sha256(got).digest() == \
                    hashlib.sha256(big).digest()
                await conn.send(text)
                assert await conn.recv() == text[::-1]

                # A message sent in fragments arrives as one message.
                pieces = [big[i:i + 1_000_000]
                          for i in range(0, len(big), 1_000_000)]
                await conn.send(iter(pieces))
                assert await conn.recv() == big

    run(main)


def test_many_clients(run, ws):
    server_mod, client_mod, _ = ws
    n_clients = 200
    n_messages = 10

    async def main():
        async with echo_server(server_mod) as url:
            async def client(k):
                async with client_mod.connect(url) as conn:
                    out = []
                    for i in range(n_messages):
                        await conn.send(f"{k}:{i}")
                        out.append(await conn.recv())
                        await conn.send(bytes([k % 256]) * (k + i))
                        assert await conn.recv() == \
                            bytes([k % 256]) * (k + i)
                    return out

            results = await asyncio.gather(*(client(k)
                                             for k in range(n_clients)))
        assert results == [[f"{k}:{i}"[::-1] for i in range(n_messages)]
                           for k in range(n_clients)]

    run(main)


def test_message_too_big_closes_with_1009(run, ws):
    server_mod, client_mod, exc_mod = ws

    async def main():
        async with server_mod.serve(echo, "127.0.0.1", 0,
                                    max_size=1024) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with client_mod.connect(f"ws://127.0.0.1:{port}") as conn:
                await conn.send(b"x" * 1024)  # at the limit: fine
                assert await conn.recv() == b"x" * 1024
                await conn.send(b"x" * 1025)
                with pytest.raises(exc_mod.ConnectionClosedError):
                    await conn.recv()
            assert conn.close_code == 1009  # message too big

    run(main)


def test_unix_socket(run, ws, tmp_path):
    server_mod, client_mod, _ = ws
    path = str(tmp_path / "ws.sock")
    blob = random.Random(9).randbytes(3 * 1024 * 1024)

    async def main():
        async with server_mod.unix_serve(echo, path, max_size=MAX,
                                         compression=None):
            async def client(k):
                async with client_mod.unix_connect(
                        path, max_size=MAX, compression=None) as c:
                    await c.send(f"unix {k}")
                    text = await c.recv()
                    await c.send(blob)
                    same = await c.recv() == blob
                    return text, same

            got = await asyncio.gather(*(client(k) for k in range(20)))
        assert got == [(f"unix {k}"[::-1], True) for k in range(20)]

    run(main)
