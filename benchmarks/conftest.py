"""Shared helpers for the ioloop_c benchmarks.

Every benchmark takes the ``impl`` fixture and runs the same Tornado-API
code on three loops, in the same pytest run:

* ``stock_tornado``: ``tornado.ioloop.IOLoop()``, Tornado 6 on the default
  asyncio loop;
* ``ioloop_c``: ``ioloop_c.IOLoop()``, our Tornado-API loop alone;
* ``ioloop_c_shim``: ``ioloop_c.tornado.IOLoop()``, real Tornado's IOLoop
  class on our loop (what ``IOLoop.configure("ioloop_c.tornado.IOLoop")``
  and ``ioloop_c.install()`` give a Tornado application).

One round is one batch of ``N`` operations, loop start and stop included.
Environment variables:

* ``BENCH_QUICK=1``: smoke mode (small ``N``, few rounds), for CI.
* ``BENCH_N``, ``BENCH_ROUNDS``: override the batch size and round count.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

IMPLS = ("stock_tornado", "ioloop_c", "ioloop_c_shim")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
N = int(os.environ.get("BENCH_N", "1000" if QUICK else "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3" if QUICK else "15"))
WARMUP_ROUNDS = 1

# A benchmark whose loop never stops would hang the run; dump the stacks
# and exit instead.  faulthandler uses its own thread, so it does not touch
# either loop while it measures.
WATCHDOG_SECONDS = 120


def make_loop(impl: str) -> Any:
    """A new, current IOLoop of the given implementation."""
    if impl == "stock_tornado":
        tornado_ioloop = pytest.importorskip("tornado.ioloop")
        return tornado_ioloop.IOLoop()
    if impl == "ioloop_c":
        try:
            import ioloop_c
        except ImportError as exc:  # pragma: no cover - depends on the build
            pytest.skip(f"ioloop_c is not importable: {exc}")
        return ioloop_c.IOLoop()
    if impl == "ioloop_c_shim":
        pytest.importorskip("tornado.ioloop")
        import ioloop_c.tornado

        return ioloop_c.tornado.IOLoop()
    raise ValueError(f"unknown impl {impl!r}")


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    """The name of the loop implementation under test."""
    return request.param


@pytest.fixture
def n() -> int:
    """The number of operations in one round."""
    return N


@pytest.fixture
def loop(impl: str) -> Iterator[Any]:
    """A fresh IOLoop of ``impl``, reused by every round of one benchmark
    and closed afterwards."""
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    io_loop = make_loop(impl)
    try:
        yield io_loop
    finally:
        faulthandler.cancel_dump_traceback_later()
        io_loop.close()


def _collect_garbage() -> None:
    # pedantic() treats a setup's return value as the call's arguments, so
    # gc.collect's count must not leak out.
    gc.collect()


def measure(benchmark: Any, impl: str, fn: Callable[[], Any], n: int) -> Any:
    """Run ``fn`` (one batch of ``n`` operations) under pytest-benchmark,
    with a fixed round count so every implementation gets the same
    treatment; returns what the last call of ``fn`` returned.

    Each round starts from a full ``gc.collect()`` (untimed), so every
    round pays the collections its own allocations trigger, and not a
    full collection of the test runner's heap that happened to fall due.

    ``impl`` and ``n`` are stored in the JSON (``extra_info``) so that
    ``compare.py`` can pair implementations and print the time per
    operation.
    """
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["ops"] = n
    return benchmark.pedantic(
        fn,
        setup=_collect_garbage,
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=WARMUP_ROUNDS,
    )


@pytest.fixture
def run_bench(benchmark: Any, impl: str) -> Callable[..., Any]:
    """``measure`` bound to this test's benchmark fixture and loop."""
    return lambda fn, n: measure(benchmark, impl, fn, n)
