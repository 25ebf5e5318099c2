"""Leak hunting in the style of CPython's ``-R 3:3``: run test modules
again and again in one process and watch what each repetition leaves
behind.

    python tools/refleak.py [-R WARMUP:MEASURED] [--jobs N] [pytest args or test files ...]

Each repetition is one in-process pytest run (``pytest.main``).  After
every run: a full garbage collection, then ``sys.getallocatedblocks()``
(memory blocks held) and the number of open fds (``/proc/self/fd``).  The
warm-up repetitions fill caches (imports, interned strings, freelists);
the measured ones must then stay flat.  A leak shows as growth in *every*
measured repetition: that fails (exit 1).  With a debug Python
(``sys.gettotalrefcount``), total references are tracked too.

Default: the behaviour tests of both faces, which cover every C path.
With ``--jobs N`` the test files are dealt out to N child processes,
each its own hunt (a leak is per process, so nothing is lost), run at once.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests")
DEFAULT = [
    "test_callbacks.py", "test_timers.py", "test_handlers.py", "test_tick.py",
    "test_bad_input.py", "test_input_matrix.py", "test_stats.py",
    "test_asyncio_internals.py", "test_threads.py", "test_periodic.py",
    # The native transport; the EMFILE and thousands-of-connections
    # workouts are left out for time (they run in the suite itself).
    "test_transport.py", "test_transport_faults.py", "test_transport_model.py",
    "-k", "not emfile and not thousands",
]
# Growth per measured repetition below this is noise (pytest's own
# bookkeeping, logging records); a leak per test case exceeds it quickly.
BLOCKS_SLACK = 200
# Likewise for total references (debug interpreters): pytest, logging and
# warnings keep a few per run; a leaking C path in a test loop leaves one
# per operation, hundreds or thousands per repetition.
REFS_SLACK = 100


def snapshot() -> dict[str, int]:
    gc.collect()
    gc.collect()
    snap = {"blocks": sys.getallocatedblocks(), "fds": len(os.listdir("/proc/self/fd"))}
    if hasattr(sys, "gettotalrefcount"):
        snap["refs"] = sys.gettotalrefcount()
    return snap


def deal(targets: list[str], jobs: int) -> list[list[str]]:
    """Test files into *jobs* groups of about equal size, each group with
    every non-file argument (``-k`` and its expression, options)."""
    files = [t for t in targets if t.endswith(".py") and os.path.exists(t)]
    rest = [t for t in targets if t not in files]
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(files)))]
    sizes = [0] * len(groups)
    for f in sorted(files, key=os.path.getsize, reverse=True):
        i = sizes.index(min(sizes))
        groups[i].append(f)
        sizes[i] += os.path.getsize(f)
    return [g + rest for g in groups]


def run_jobs(R: str, groups: list[list[str]]) -> int:
    """One child hunt per group, at once; the worst exit code wins."""
    children = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "-R", R,
                                  "--jobs", "1", *g], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for g in groups]
    worst = 0
    for g, child in zip(groups, children):
        out, _ = child.communicate()
        print(f"=== group: {' '.join(g)}\n{out}", flush=True)
        worst = max(worst, child.returncode)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-R", default="3:3", help="warm-up:measured repetitions")
    ap.add_argument("--jobs", type=int, default=1, help="child hunts at once")
    ap.add_argument("targets", nargs="*", help="test files or pytest arguments")
    args, extra = ap.parse_known_args(argv)
    args.targets += extra
    warm, measured = (int(x) for x in args.R.split(":"))
    os.chdir(TESTS)
    targets = args.targets or DEFAULT
    if args.jobs > 1:
        groups = deal(targets, args.jobs)
        if len(groups) > 1:
            return run_jobs(args.R, groups)
    pytest_args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "--benchmark-disable", "-W", "ignore::ResourceWarning", *targets]
    history = []
    for rep in range(warm + measured):
        rc = pytest.main(pytest_args)
        if rc not in (0, 5):
            print(f"repetition {rep + 1}: pytest failed ({rc})", file=sys.stderr)
            return 2
        history.append(snapshot())
    deltas = [{k: b[k] - a[k] for k in b} for a, b in itertools.pairwise(history)]
    print("\nrepetition deltas (blocks, fds" + (", refs" if "refs" in history[0] else "") + "):")
    for i, d in enumerate(deltas, start=2):
        kind = "warm-up" if i <= warm else "measured"
        print(f"  {i:2d} ({kind}): " + ", ".join(f"{k} {v:+d}" for k, v in d.items()))
    tail = deltas[warm - 1:] if warm >= 1 else deltas
    leaks = []
    if tail and all(d["fds"] > 0 for d in tail):
        leaks.append("fds grow on every measured repetition")
    if tail and all(d["blocks"] > BLOCKS_SLACK for d in tail):
        leaks.append(f"memory blocks grow by more than {BLOCKS_SLACK} on every measured "
                     "repetition")
    if tail and "refs" in tail[0] and all(d["refs"] > REFS_SLACK for d in tail):
        leaks.append(f"total references grow by more than {REFS_SLACK} on every "
                     "measured repetition")
    if leaks:
        print("LEAK: " + "; ".join(leaks))
        return 1
    print(f"no leak: {measured} measured repetitions flat after {warm} warm-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
