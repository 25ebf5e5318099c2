"""redis-py's asyncio client against a private Redis server, on each loop:
pipelines of thousands of commands (plain and MULTI/EXEC), values of
several MiB, pub/sub by channel and by pattern, hundreds of connections.

Keys carry a fresh prefix per test, so that a server shared by several
runs (IOLOOP_C_REDIS_URL) sees no clashes."""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid

import pytest

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]


@pytest.fixture
def aioredis(need):
    return need("redis.asyncio")


@pytest.fixture
def prefix():
    return f"t:{uuid.uuid4().hex[:12]}:"


def test_pipelines(run, aioredis, redis_url, prefix):
    n = 5000

    async def main():
        r = aioredis.Redis.from_url(redis_url)
        try:
            pipe = r.pipeline(transaction=False)
            for i in range(n):
                pipe.set(f"{prefix}{i}", f"value-{i}")
            for i in range(n):
                pipe.get(f"{prefix}{i}")
            out = await pipe.execute()
            assert out[:n] == [True] * n
            assert out[n:] == [f"value-{i}".encode() for i in range(n)]

            # A transaction: INCRs applied atomically, replies in order.
            async with r.pipeline(transaction=True) as tx:
                for _ in range(n):
                    tx.incr(f"{prefix}counter")
                replies = await tx.execute()
            assert replies == list(range(1, n + 1))

            # MGET of them all in one reply, and a cleanup checked by count.
            keys = [f"{prefix}{i}" for i in range(n)]
            assert await r.mget(keys) == [f"value-{i}".encode()
                                          for i in range(n)]
            assert await r.delete(*keys, f"{prefix}counter") == n + 1
        finally:
            await r.aclose()

    run(main)


def test_large_values(run, aioredis, redis_url, prefix):
    values = [random.Random(i).randbytes(size) for i, size in
              enumerate((6 * 1024 * 1024 + 17, 3 * 1024 * 1024, 65537))]

    async def main():
        r = aioredis.Redis.from_url(redis_url)
        try:
            # Written concurrently (three connections from the pool).
            assert await asyncio.gather(*(
                r.set(f"{prefix}big{i}", v) for i, v in enumerate(values))) \
                == [True] * len(values)
            for i, v in enumerate(values):
                assert await r.strlen(f"{prefix}big{i}") == len(v)
            got = await asyncio.gather(*(
                r.get(f"{prefix}big{i}") for i in range(len(values))))
            for g, v in zip(got, values, strict=True):
                assert hashlib.sha256(g).digest() == \
                    hashlib.sha256(v).digest()
                assert g == v
            # A range out of the middle of the largest one.
            mid = len(values[0]) // 2
            assert await r.getrange(f"{prefix}big0", mid, mid + 99) == \
                values[0][mid:mid + 100]
            await r.delete(*(f"{prefix}big{i}" for i in range(len(values))))
        finally:
            await r.aclose()

    run(main)


def test_pubsub(run, aioredis, redis_url, prefix):
    n = 1000
    channel = f"{prefix}news"
    pattern = f"{prefix}topic.*"

    async def main():
        sub = aioredis.Redis.from_url(redis_url)
        pub = aioredis.Redis.from_url(redis_url)
        ps = sub.pubsub()
        try:
            await ps.subscribe(channel)
            await ps.psubscribe(pattern)
            confirmations = []
            while len(confirmations) < 2:
                msg = await ps.get_message(timeout=5)
                assert msg is not None, "no subscription confirmation"
                confirmations.append(msg["type"])
            assert sorted(confirmations) == ["psubscribe", "subscribe"]

            async def publish():
                for i in range(n):
                    # Exactly one subscriber (our connection) gets each.
                    where = channel if i % 2 == 0 else f"{prefix}topic.{i}"
                    assert await pub.publish(where, f"m{i}") == 1

            async def receive():
                got = []
                while len(got) < n:
                    msg = await ps.get_message(timeout=5)
                    assert msg is not None, f"stalled after {len(got)}"
                    got.append(msg)
                return got

            got, _ = await asyncio.gather(receive(), publish())
            assert [m["data"] for m in got] == [f"m{i}".encode()
                                                for i in range(n)]
            for i, m in enumerate(got):
                if i % 2 == 0:
                    assert (m["type"], m["channel"]) == \
                        ("message", channel.encode())
                else:
                    assert (m["type"], m["pattern"], m["channel"]) == \
                        ("pmessage", pattern.encode(),
                         f"{prefix}topic.{i}".encode())

            await ps.unsubscribe(channel)
            await ps.punsubscribe(pattern)
            await asyncio.sleep(0)
            # Nobody listens any more.
            for _ in range(50):
                if await pub.publish(channel, "late") == 0:
                    break
                await asyncio.sleep(0.02)
            assert await pub.publish(channel, "late") == 0
        finally:
            await ps.aclose()
            await sub.aclose()
            await pub.aclose()

    run(main)


def test_hundreds_of_connections(run, aioredis, redis_url, prefix):
    n = 300

    async def main():
        clients = [aioredis.Redis.from_url(
            redis_url, single_connection_client=True,
            client_name=f"{prefix.replace(':', '-')}{i}") for i in range(n)]
        try:
            # Each connects and increments, all at once.
            counts = await asyncio.gather(*(c.incr(f"{prefix}hits")
                                            for c in clients))
            assert sorted(counts) == list(range(1, n + 1))
            listing = await clients[0].client_list()
            ours = {c["name"] for c in listing
                    if c["name"].startswith(prefix.replace(":", "-"))}
            assert len(ours) == n
            # Each one's own key, set and read back on its own connection.
            await asyncio.gather(*(c.set(f"{prefix}own{i}", i)
                                   for i, c in enumerate(clients)))
            got = await asyncio.gather(*(c.get(f"{prefix}own{i}")
                                         for i, c in enumerate(clients)))
            assert got == [str(i).encode() for i in range(n)]
            await clients[0].delete(f"{prefix}hits",
                                    *(f"{prefix}own{i}" for i in range(n)))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    run(main)


def test_unix_socket(run, aioredis, redis_unix_url, prefix):
    big = random.Random(13).randbytes(4 * 1024 * 1024)

    async def main():
        r = aioredis.Redis.from_url(redis_unix_url)
        try:
            info = await r.client_info()
            # Redis shows a unix-socket client's address as the socket.
            assert info["addr"].startswith(redis_unix_url[len("unix://"):]
                                           .split("?")[0]), info
            pipe = r.pipeline(transaction=False)
            for i in range(2000):
                pipe.rpush(f"{prefix}list", i)
            out = await pipe.execute()
            assert out == list(range(1, 2001))
            assert await r.lrange(f"{prefix}list", 0, -1) == \
                [str(i).encode() for i in range(2000)]
            assert await r.set(f"{prefix}big", big)
            assert await r.get(f"{prefix}big") == big
            assert await r.delete(f"{prefix}list", f"{prefix}big") == 2
        finally:
            await r.aclose()

    run(main)
