"""Run CPython's own asyncio tests (this Python's `test.test_asyncio`) on
ioloop_c and on stock asyncio, and report the counts side by side.

    python tests/conformance/cpython_asyncio.py [--json out.json]
        [--jobs N] [--test-timeout S] [--module-timeout S] [--mem-gib G]
        [module ...]

The modules are the `test_*` modules this Python's `test.test_asyncio`
holds (new ones appear and some are renamed from one version to the next),
unless named on the command line.

For the "ioloop_c" run, every event loop those tests create is ours:
`asyncio.SelectorEventLoop` and its 3.13+ alias `asyncio.EventLoop` (which
the tests instantiate, some with a specific selector) become a subclass of
`ioloop_c.Loop` that maps the selector to our backend of the same kind
(select / poll / epoll), and the default policy's loop factory is that
subclass, so `asyncio.new_event_loop()` and `asyncio.run()` make ours too.
This goes through the policy class's private `_loop_factory` attribute,
not through the policy API that 3.14 deprecates.  Tests that build
asyncio's fake-clock `TestLoop` or a mocked `BaseEventLoop` exercise
asyncio's Python code, not the loop, and run unchanged; the child counts
the loops of each kind it made, so a substitution that stopped working
shows in the report.

Each module runs in its own child process, once per loop, under limits
that keep a runaway to itself:
  - an address-space limit (RLIMIT_AS, --mem-gib, 4 GiB by default);
  - a wall-time limit per test (--test-timeout): the child reports each
    test as it starts, so the parent knows which one hangs; it asks the
    child for a traceback of every thread (faulthandler on SIGUSR1), kills
    its process group, records that test as an error "timed out", and
    starts a new child for the rest of the module;
  - a child that dies in a test (a crash, MemoryError at the limit) has
    that test recorded as an error "crashed" and the rest of the module
    run in a new child;
  - a wall-time limit per module (--module-timeout) and at most
    --max-timeouts timed-out tests per module: past either, the tests
    not yet run are counted as `not_run` and the module is reported as
    cut short, which fails the run when it happens on ioloop_c only.
The child restores Python's default SIGINT handler first: a job started
in the background inherits SIGINT ignored, and test_runners' KeyboardInterrupt
tests, which interrupt the main thread with `_thread.interrupt_main()`,
then wait forever (on 3.13, `test_asyncio_run_without_uncancel` spins a
mocked loop whose `Mock` records every call, until memory runs out).

A test counts as differing when it fails, errors, times out or crashes on
ioloop_c and passed on stock asyncio in the same run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

# Modules that only run on Windows (they skip at import elsewhere).
WINDOWS_ONLY = {"test_windows_events", "test_windows_utils", "test_proactor_events"}

CHILD = r'''
import faulthandler, json, os, resource, selectors, signal, sys, unittest
which, module, events_fd, skip_file, mem = sys.argv[1:6]
mem = int(mem)
# AddressSanitizer reserves terabytes of address space for its shadow
# memory at start-up, so an address-space limit kills every child of an
# ASan run before its first test: there, the wall-time limit alone holds.
if mem > 0 and "libasan" not in os.environ.get("LD_PRELOAD", ""):
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
# A background job inherits SIGINT ignored; the tests expect Python's own.
signal.signal(signal.SIGINT, signal.default_int_handler)
faulthandler.register(signal.SIGUSR1, all_threads=True)
events = os.fdopen(int(events_fd), "w", buffering=1)


def emit(ev, **kw):
    kw["ev"] = ev
    events.write(json.dumps(kw) + "\n")
    events.flush()


with open(skip_file) as f:
    skip = set(json.load(f))

import asyncio
from asyncio import selector_events, unix_events

loops = {"ioloop_c": 0, "asyncio": 0}
ours = ()  # the loop classes that count as ioloop_c's
_base_init = selector_events.BaseSelectorEventLoop.__init__


def _counting_init(self, *args, **kwargs):
    if not isinstance(self, ours):
        loops["asyncio"] += 1
    _base_init(self, *args, **kwargs)


selector_events.BaseSelectorEventLoop.__init__ = _counting_init

if which == "ioloop_c":
    import ioloop_c

    ours = (ioloop_c.Loop,)
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
            loops["ioloop_c"] += 1

    for ns in (asyncio, unix_events):
        ns.SelectorEventLoop = SelectorEventLoop
        if hasattr(ns, "EventLoop"):  # 3.13+
            ns.EventLoop = SelectorEventLoop
    unix_events._UnixDefaultEventLoopPolicy._loop_factory = SelectorEventLoop
    # 3.14 deprecates set_event_loop_policy(); its private twin does not warn.
    getattr(asyncio.events, "_set_event_loop_policy",
            asyncio.set_event_loop_policy)(None)

try:
    mod = __import__("test.test_asyncio." + module, fromlist=["*"])
except unittest.SkipTest as exc:
    emit("module_skipped", reason=str(exc))
    emit("done", loops=loops)
    sys.exit(0)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


tests = [t for t in flatten(unittest.defaultTestLoader.loadTestsFromModule(mod))
         if t.id() not in skip]
emit("planned", n=len(tests))


class Result(unittest.TextTestResult):
    def startTest(self, test):
        emit("start", id=test.id())
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        emit("stop", id=test.id(), loops=loops)

    def addError(self, test, err):
        super().addError(test, err)
        emit("error", id=test.id(), tb=self.errors[-1][1][-3000:])

    def addFailure(self, test, err):
        super().addFailure(test, err)
        emit("failure", id=test.id(), tb=self.failures[-1][1][-3000:])

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            if issubclass(err[0], test.failureException):
                emit("failure", id=subtest.id(), tb=self.failures[-1][1][-3000:])
            else:
                emit("error", id=subtest.id(), tb=self.errors[-1][1][-3000:])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        emit("skip", id=test.id())

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        emit("failure", id=test.id(), tb="unexpected success")


runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0, resultclass=Result)
runner.run(unittest.TestSuite(tests))
emit("done", loops=loops)
'''


def default_modules() -> list[str]:
    """The test modules this Python's test.test_asyncio holds."""
    import test.test_asyncio as pkg

    names = set()
    for path in pkg.__path__:
        for entry in os.listdir(path):
            base, ext = os.path.splitext(entry)
            if entry.startswith("test_") and (ext == ".py" or os.path.isdir(
                    os.path.join(path, entry))):
                names.add(base)
    return sorted(names - WINDOWS_ONLY)


def _empty() -> dict[str, Any]:
    return {"run": 0, "failed": [], "errors": [], "skipped": 0, "timeouts": [],
            "crashes": [], "not_run": 0, "incomplete": "", "loops": {"ioloop_c": 0, "asyncio": 0},
            "tracebacks": {}, "children": 0, "seconds": 0.0}


def _tail(path: str, n: int = 3000) -> str:
    """The last n bytes of a child's log."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_module(which: str, module: str, timeout: float = 900, *,
               test_timeout: float = 120, mem_gib: float = 4,
               max_timeouts: int = 3) -> dict[str, Any]:
    """Run one test_asyncio module on `which` ("stock" or "ioloop_c") in
    child processes under the limits in the module docstring; returns the
    counts (run, skipped, not_run), the failing ids (failed, errors, with
    timeouts and crashes among the errors) and a traceback per failing id."""
    res = _empty()
    started = time.monotonic()
    deadline = started + timeout
    done: list[str] = []
    mem = int(mem_gib * (1 << 30))
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        skip_file = os.path.join(tmp, "skip.json")
        while True:
            with open(skip_file, "w") as f:
                json.dump(done, f)
            log = os.path.join(tmp, f"child{res['children']}.log")
            res["children"] += 1
            rfd, wfd = os.pipe()
            with open(log, "wb") as logf:
                proc = subprocess.Popen(
                    [sys.executable, "-c", CHILD, which, module, str(wfd),
                     skip_file, str(mem)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                    pass_fds=(wfd,), cwd="/", start_new_session=True)
            os.close(wfd)
            try:
                outcome, current, planned = _follow(proc, rfd, res, done, deadline,
                                                    test_timeout)
            except BaseException:
                # Interrupted (a caller's own timeout, Ctrl-C): leave no child.
                _kill_group(proc)
                os.close(rfd)
                raise
            if outcome == "done":
                proc.wait()
                os.close(rfd)
                break
            before = os.path.getsize(log)
            if outcome in ("test_timeout", "module_timeout"):
                # Ask the child (not its group: a test's own subprocesses
                # would die of SIGUSR1) for every thread's traceback, then
                # kill the group.
                try:
                    os.kill(proc.pid, signal.SIGUSR1)
                    time.sleep(1)
                except ProcessLookupError:
                    pass
            _kill_group(proc)
            os.close(rfd)
            gist = _tail(log, os.path.getsize(log) - before + 1500)
            if current is None:
                # Died outside a test (import, module set-up or tear-down).
                tid = f"{module}: child {outcome} outside a test (exit {proc.returncode})"
                res["errors"].append(tid)
                res["crashes"].append(tid)
                res["tracebacks"][tid] = gist
                break
            if outcome == "crashed":
                tid = current
                res["crashes"].append(tid)
                why = f"crashed: exit {proc.returncode}"
            else:
                tid = current
                res["timeouts"].append(tid)
                limit = test_timeout if outcome == "test_timeout" else timeout
                why = f"timed out ({outcome}, limit {limit:g} s)"
            res["errors"].append(tid)
            res["tracebacks"][tid] = f"{why}\n{gist}"
            if outcome == "module_timeout" or len(res["timeouts"]) >= max_timeouts:
                res["not_run"] = max(0, (planned or 0) - res["_seen"])
                res["incomplete"] = (
                    f"{module}: {res['not_run']} tests not run after "
                    + ("the module's time limit" if outcome == "module_timeout"
                       else f"{len(res['timeouts'])} timed-out tests"))
                break
    res.pop("_seen", None)
    res.pop("_planned", None)
    res["seconds"] = round(time.monotonic() - started, 1)
    res["failed"] = sorted(set(res["failed"]))
    res["errors"] = sorted(set(res["errors"]))
    return res


def _follow(proc: subprocess.Popen, rfd: int, res: dict[str, Any], done: list[str],
            deadline: float, test_timeout: float) -> tuple[str, str | None, int | None]:
    """Read the child's events into `res` until it finishes, dies or runs
    out of time; returns (outcome, the test running at the end, the number
    of tests the module holds)."""
    sel = selectors.DefaultSelector()
    sel.register(rfd, selectors.EVENT_READ)
    buf = b""
    current: str | None = None
    test_deadline = None
    child_loops: dict[str, int] = {}
    res.setdefault("_seen", len(done))
    if "_planned" not in res:
        res["_planned"] = None
    try:
        while True:
            now = time.monotonic()
            limits = [deadline] + ([test_deadline] if test_deadline else [])
            wait = min(limits) - now
            if wait <= 0:
                kind = ("test_timeout" if test_deadline and test_deadline <= deadline
                        else "module_timeout")
                return kind, current, res["_planned"]
            if not sel.select(wait):
                continue
            chunk = os.read(rfd, 65536)
            if not chunk:
                return "crashed", current, res["_planned"]
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                ev = json.loads(line)
                kind = ev["ev"]
                if kind == "planned":
                    if res["_planned"] is None:
                        res["_planned"] = ev["n"]
                elif kind == "start":
                    current = ev["id"]
                    done.append(current)
                    res["run"] += 1
                    res["_seen"] += 1
                    test_deadline = time.monotonic() + test_timeout
                elif kind == "stop":
                    current = None
                    test_deadline = None
                    child_loops.update(ev["loops"])
                elif kind in ("failure", "error"):
                    (res["failed"] if kind == "failure" else res["errors"]).append(ev["id"])
                    res["tracebacks"][ev["id"]] = ev["tb"]
                elif kind == "skip":
                    res["skipped"] += 1
                elif kind == "module_skipped":
                    res["module_skipped"] = ev["reason"]
                elif kind == "done":
                    child_loops.update(ev["loops"])
                    return "done", None, res["_planned"]
    finally:
        sel.close()
        # The loops this child made, as of its last finished test.
        for k, n in child_loops.items():
            res["loops"][k] += n


def bad(r: dict[str, Any]) -> set[str]:
    return set(r["failed"]) | set(r["errors"])


def fmt(r: dict[str, Any]) -> str:
    s = f"{r['run']}/{len(r['failed'])}/{len(r['errors'])}/{r['skipped']}"
    extra = []
    if r["timeouts"]:
        extra.append(f"{len(r['timeouts'])} timeout")
    if r["crashes"]:
        extra.append(f"{len(r['crashes'])} crash")
    if r["not_run"]:
        extra.append(f"{r['not_run']} not run")
    return s + (f" ({', '.join(extra)})" if extra else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*")
    ap.add_argument("--json")
    ap.add_argument("--jobs", type=int, default=1,
                    help="children at a time (2: stock and ours of a module together)")
    ap.add_argument("--module-timeout", "--timeout", type=float, default=900)
    ap.add_argument("--test-timeout", type=float, default=120)
    ap.add_argument("--max-timeouts", type=int, default=3)
    ap.add_argument("--mem-gib", type=float, default=4)
    ap.add_argument("--sides", default="stock,ioloop_c")
    args = ap.parse_args()
    modules = args.modules or default_modules()
    sides = args.sides.split(",")
    print(f"Python {sys.version.split()[0]}: {len(modules)} modules, "
          f"{args.jobs} child(ren) at a time", flush=True)
    print("| module | " + " | ".join(f"{w} run/fail/err/skip" for w in sides)
          + " | seconds |")
    print("|---|" + "---|" * len(sides) + "---|")
    report: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {(m, w): pool.submit(run_module, w, m, args.module_timeout,
                                    test_timeout=args.test_timeout,
                                    mem_gib=args.mem_gib,
                                    max_timeouts=args.max_timeouts)
                for m in modules for w in sides}
        for m in modules:
            row = {w: futs[(m, w)].result() for w in sides}
            report[m] = row
            secs = "/".join(f"{row[w]['seconds']:.0f}" for w in sides)
            print(f"| {m} | " + " | ".join(fmt(row[w]) for w in sides)
                  + f" | {secs} |", flush=True)
    totals = {w: {"run": 0, "failed": 0, "errors": 0, "skipped": 0, "timeouts": 0,
                  "crashes": 0, "not_run": 0} for w in sides}
    diffs: list[str] = []
    incomplete: list[str] = []  # modules cut short on ours, not on stock
    for row in report.values():
        for w in sides:
            r = row[w]
            t = totals[w]
            t["run"] += r["run"]
            t["skipped"] += r["skipped"]
            t["not_run"] += r["not_run"]
            for k in ("failed", "errors", "timeouts", "crashes"):
                t[k] += len(r[k])
        if "stock" in row and "ioloop_c" in row:
            diffs.extend(sorted(bad(row["ioloop_c"]) - bad(row["stock"])))
            if row["ioloop_c"]["incomplete"] and not row["stock"]["incomplete"]:
                incomplete.append(row["ioloop_c"]["incomplete"])
    for w, t in totals.items():
        print(f"{w}: {t['run']} run, {t['failed']} failed, {t['errors']} errors "
              f"({t['timeouts']} timed out, {t['crashes']} crashed), {t['skipped']} skipped, "
              f"{t['not_run']} not run")
    if "ioloop_c" in sides:
        ours = sum(r["ioloop_c"]["loops"]["ioloop_c"] for r in report.values())
        other = sum(r["ioloop_c"]["loops"]["asyncio"] for r in report.values())
        print(f"loops made on the ioloop_c side: {ours} ioloop_c, {other} asyncio "
              "selector loops (tests that build BaseSelectorEventLoop themselves)")
    print(f"tests failing on ioloop_c but not on stock: {len(diffs)}")
    for t in diffs:
        print("  " + t.splitlines()[0])
    for note in incomplete:
        print(f"cut short on ioloop_c only: {note}")
    print(f"wall time: {time.monotonic() - t0:.0f} s")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "report": report,
                       "totals": totals, "differences": diffs, "incomplete": incomplete,
                       "seconds": round(time.monotonic() - t0, 1)}, f, indent=1)
    return 1 if diffs or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
