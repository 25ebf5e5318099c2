"""asyncpg against a private PostgreSQL server, on each loop: ten thousand
queries over a pool, COPY both ways, values of several MiB, hundreds of
connections at once, prepared statements and cursors, transactions that
roll back (whole and to a savepoint)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random

import pytest

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]


@pytest.fixture
def asyncpg(need):
    return need("asyncpg")


def test_ten_thousand_queries_over_a_pool(run, asyncpg, pg_dsn):
    n = 10_000

    async def main():
        async with asyncpg.create_pool(pg_dsn, min_size=4, max_size=10) as pool:
            sem = asyncio.Semaphore(200)  # bounded tasks in flight

            async def one(i):
                async with sem:
                    return await pool.fetchrow(
                        "SELECT $1::int * 3 AS tripled, md5($1::text) AS h", i)

            rows = await asyncio.gather(*(one(i) for i in range(n)))
            # All ten connections took part, and the pool is whole again.
            pids = await asyncio.gather(*(
                pool.fetchval("SELECT pg_backend_pid()") for _ in range(50)))
            assert pool.get_size() == 10
            assert pool.get_idle_size() == 10
        assert [r["tripled"] for r in rows] == [3 * i for i in range(n)]
        assert all(r["h"] == hashlib.md5(str(i).encode()).hexdigest()
                   for i, r in enumerate(rows))
        assert 1 <= len(set(pids)) <= 10

    run(main)


def test_copy_both_ways(run, asyncpg, pg_dsn):
    n = 50_000
    rng = random.Random(5)
    records = [(i, rng.randbytes(rng.randrange(1, 64)).hex(), i * 0.5)
               for i in range(n)]

    async def main():
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "CREATE TEMP TABLE t (id int PRIMARY KEY, s text, f float8)")
            status = await conn.copy_records_to_table(
                "t", records=records, columns=["id", "s", "f"])
            assert status == f"COPY {n}"
            got = await conn.fetch("SELECT id, s, f FROM t ORDER BY id")
            assert [tuple(r) for r in got] == records

            # Out again as CSV text, streamed through a file object.
            out = io.BytesIO()
            status = await conn.copy_from_query(
                "SELECT id, s FROM t ORDER BY id", output=out, format="csv")
            assert status == f"COPY {n}"
            lines = out.getvalue().decode().splitlines()
            assert lines == [f"{i},{s}" for i, s, _ in records]

            # And in from a source of bytes, several MiB of it.
            await conn.execute("TRUNCATE t")
            src = io.BytesIO(out.getvalue())
            status = await conn.copy_to_table(
                "t", source=src, format="csv", columns=["id", "s"])
            assert status == f"COPY {n}"
            assert await conn.fetchval(
                "SELECT sum(length(s)) FROM t") == sum(len(s) for _, s, _ in
                                                       records)
        finally:
            await conn.close()

    run(main)


def test_large_values(run, asyncpg, pg_dsn):
    blob = random.Random(7).randbytes(12 * 1024 * 1024 + 3)
    text = "é" * (3 * 1024 * 1024)  # 6 MiB of UTF-8

    async def main():
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("CREATE TEMP TABLE big (b bytea, t text)")
            await conn.execute("INSERT INTO big VALUES ($1, $2)", blob, text)
            b, t = await conn.fetchrow("SELECT b, t FROM big")
            assert len(b) == len(blob) and b == blob
            assert t == text
            # The server saw the same bytes as we sent.
            assert await conn.fetchval(
                "SELECT encode(sha256(b), 'hex') FROM big") == \
                hashlib.sha256(blob).hexdigest()
            assert await conn.fetchval(
                "SELECT octet_length(t) FROM big") == len(text.encode())
            # A value built on the server, larger than any read buffer.
            gen = await conn.fetchval("SELECT repeat('abc', 2000000)")
            assert gen == "abc" * 2_000_000
        finally:
            await conn.close()

    run(main)


def test_hundreds_of_connections(run, asyncpg, pg_dsn):
    n = 200

    async def main():
        conns = await asyncio.gather(*(asyncpg.connect(pg_dsn)
                                       for _ in range(n)))
        try:
            pids = await asyncio.gather(*(
                c.fetchval("SELECT pg_backend_pid()") for c in conns))
            assert len(set(pids)) == n
            # Every one is open at once, as the server sees it.
            seen = await conns[0].fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE pid = ANY($1::int[])", pids)
            assert seen == n
            # Each answers on its own connection, all in flight together.
            got = await asyncio.gather(*(
                c.fetchval("SELECT $1::int FROM pg_sleep(0.05)", i)
                for i, c in enumerate(conns)))
            assert got == list(range(n))
        finally:
            await asyncio.gather(*(c.close() for c in conns))
        assert all(c.is_closed() for c in conns)

    run(main)


def test_prepared_statements_and_cursor(run, asyncpg, pg_dsn):
    async def main():
        conn = await asyncpg.connect(pg_dsn)
        try:
            stmt = await conn.prepare(
                "SELECT $1::int + $2::int AS total, $3::text || '!' AS word")
            assert [a.name for a in stmt.get_attributes()] == ["total", "word"]
            assert [t.name for t in stmt.get_parameters()] == \
                ["int4", "int4", "text"]
            for i in range(500):
                row = await stmt.fetchrow(i, 2 * i, f"w{i}")
                assert (row["total"], row["word"]) == (3 * i, f"w{i}!")
            # executemany with a prepared insert.
            await conn.execute("CREATE TEMP TABLE kv (k int, v text)")
            await conn.executemany("INSERT INTO kv VALUES ($1, $2)",
                                   [(i, str(i * i)) for i in range(2000)])
            # A server-side cursor, fetched in batches inside a transaction.
            total = 0
            count = 0
            async with conn.transaction():
                async for rec in conn.cursor(
                        "SELECT k, v FROM kv ORDER BY k", prefetch=100):
                    assert rec["v"] == str(rec["k"] ** 2)
                    total += rec["k"]
                    count += 1
            assert (count, total) == (2000, sum(range(2000)))
            # A bad statement is an error, and the connection lives on.
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.prepare("SELECT * FROM no_such_table")
            assert await conn.fetchval("SELECT 41 + 1") == 42
        finally:
            await conn.close()

    run(main)


def test_transaction_rollback(run, asyncpg, pg_dsn):
    class Abort(Exception):
        pass

    async def main():
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("CREATE TEMP TABLE acct (id int, n int)")
            with pytest.raises(Abort):
                async with conn.transaction():
                    await conn.execute("INSERT INTO acct VALUES (1, 100)")
                    assert await conn.fetchval(
                        "SELECT count(*) FROM acct") == 1
                    raise Abort
            assert await conn.fetchval("SELECT count(*) FROM acct") == 0
            assert not conn.is_in_transaction()

            # A savepoint rolls back alone; the outer work commits.
            async with conn.transaction():
                await conn.execute("INSERT INTO acct VALUES (2, 200)")
                with pytest.raises(asyncpg.UniqueViolationError):
                    async with conn.transaction():
                        await conn.execute("INSERT INTO acct VALUES (3, 300)")
                        await conn.execute(
                            "CREATE UNIQUE INDEX ON acct (id)")
                        await conn.execute("INSERT INTO acct VALUES (3, 1)")
            rows = await conn.fetch("SELECT id, n FROM acct ORDER BY id")
            assert [tuple(r) for r in rows] == [(2, 200)]

            # A failed statement aborts the transaction; rollback clears it.
            tr = conn.transaction()
            await tr.start()
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / 0")
            with pytest.raises(asyncpg.InFailedSQLTransactionError):
                await conn.fetchval("SELECT 1")
            await tr.rollback()
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    run(main)


def test_unix_socket(run, asyncpg, pg_unix_dsn):
    blob = random.Random(11).randbytes(5 * 1024 * 1024)

    async def main():
        async with asyncpg.create_pool(pg_unix_dsn, min_size=2,
                                       max_size=5) as pool:
            # A unix-socket session has no server address.
            assert await pool.fetchval("SELECT inet_server_addr()") is None
            got = await asyncio.gather(*(
                pool.fetchval("SELECT $1::int - 1", i) for i in range(1000)))
            assert got == [i - 1 for i in range(1000)]
            back = await pool.fetchval("SELECT $1::bytea", blob)
            assert back == blob

    run(main)
