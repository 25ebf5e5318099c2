"""Run CPython's own asyncio tests (this Python's `test.test_asyncio`) on
ioloop_c and on stock asyncio, and report the counts side by side.

    python tests/conformance/cpython_asyncio.py [--json out.json] [module ...]

For the "ioloop_c" run, every event loop those tests create is ours:
`asyncio.SelectorEventLoop` (which the event-loop mixins instantiate with a
specific selector) becomes a subclass of `ioloop_c.Loop` that maps the
selector to our backend of the same kind (select / poll / epoll), and the
event loop policy makes `ioloop_c.Loop`s.  Tests that use asyncio's fake-clock
`TestLoop` exercise asyncio's Python code, not the loop, and run unchanged.
Each module runs in its own subprocess, once per loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

MODULES = [
    "test_events",
    "test_base_events",
    "test_tasks",
    "test_futures",
    "test_streams",
    "test_sock_lowlevel",
    "test_server",
    "test_subprocess",
    "test_unix_events",
    "test_sendfile",
    "test_ssl",
    "test_sslproto",
    "test_selector_events",
    "test_locks",
    "test_queues",
    "test_taskgroups",
    "test_timeouts",
    "test_waitfor",
    "test_runners",
    "test_context",
    "test_pep492",
    "test_buffered_proto",
    "test_threads",
    "test_protocols",
    "test_transports",
    "test_futures2",
]

CHILD = r'''
import asyncio, json, selectors, sys, unittest
which, module = sys.argv[1], sys.argv[2]
if which == "ioloop_c":
    import ioloop_c
    from asyncio import unix_events

    _KIND = {"SelectSelector": "select", "PollSelector": "poll",
             "EpollSelector": "epoll"}

    class SelectorEventLoop(ioloop_c.Loop):
        """ioloop_c.Loop standing in for asyncio.SelectorEventLoop."""

        def __init__(self, selector=None):
            backend = None
            if selector is not None:
                backend = _KIND.get(type(selector).__name__)
                selector.close()
            super().__init__(backend)

    asyncio.SelectorEventLoop = SelectorEventLoop
    unix_events.SelectorEventLoop = SelectorEventLoop
    unix_events._UnixDefaultEventLoopPolicy._loop_factory = SelectorEventLoop
    asyncio.DefaultEventLoopPolicy._loop_factory = SelectorEventLoop
    asyncio.set_event_loop_policy(None)

mod = __import__("test.test_asyncio." + module, fromlist=["*"])
suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
class Result(unittest.TextTestResult):
    pass
runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0, resultclass=Result)
r = runner.run(suite)
out = {
    "run": r.testsRun,
    "failed": sorted(t.id() for t, _ in r.failures),
    "errors": sorted(t.id() for t, _ in r.errors),
    "skipped": len(r.skipped),
}
print("RESULT " + json.dumps(out))
'''


def run_module(which: str, module: str, timeout: float) -> dict:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, which, module],
            capture_output=True, text=True, timeout=timeout, cwd="/",
        )
    except subprocess.TimeoutExpired:
        return {"run": 0, "failed": [], "errors": [f"{module}: timed out"], "skipped": 0,
                "timeout": True}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"run": 0, "failed": [], "errors": [f"{module}: crashed\n{proc.stderr[-2000:]}"],
            "skipped": 0, "crashed": True}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", default=MODULES)
    ap.add_argument("--json")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    report = {}
    print("| module | stock run/fail/err/skip | ioloop_c run/fail/err/skip |")
    print("|---|---|---|")
    for module in args.modules:
        row = {w: run_module(w, module, args.timeout) for w in ("stock", "ioloop_c")}
        report[module] = row

        def fmt(r: dict) -> str:
            return f"{r['run']}/{len(r['failed'])}/{len(r['errors'])}/{r['skipped']}"

        print(f"| {module} | {fmt(row['stock'])} | {fmt(row['ioloop_c'])} |", flush=True)
    totals = {w: [0, 0, 0, 0] for w in ("stock", "ioloop_c")}
    diffs = []
    for row in report.values():
        for w in totals:
            r = row[w]
            counts = [r["run"], len(r["failed"]), len(r["errors"]), r["skipped"]]
            totals[w] = [a + b for a, b in zip(totals[w], counts, strict=True)]
        bad_stock = set(row["stock"]["failed"]) | set(row["stock"]["errors"])
        for t in sorted(set(row["ioloop_c"]["failed"]) | set(row["ioloop_c"]["errors"])):
            if t not in bad_stock:
                diffs.append(t)
    for w, (run, fail, err, skip) in totals.items():
        print(f"{w}: {run} run, {fail} failed, {err} errors, {skip} skipped")
    print(f"tests failing on ioloop_c but not on stock: {len(diffs)}")
    for t in diffs:
        print("  " + t.splitlines()[0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"report": report, "differences": diffs}, f, indent=1)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
