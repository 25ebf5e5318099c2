"""Print a markdown table of ioloop_c versus its anchors (stock Tornado,
asyncio, uvloop) from pytest-benchmark JSON files (``--benchmark-json``).

    python benchmarks/compare.py run1.json [run2.json ...]

For each benchmark and each file, the speedup is the anchor's median divided
by the ioloop_c median of that same run (both were measured side by side,
one right after the other).  With several files (repeated runs), the table
shows the median of those per-run ratios, and their range; the per-impl
times shown are the medians of the per-run medians.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys

OURS = "ioloop_c"
# Ours as real Tornado's IOLoop class (ioloop_c.tornado.IOLoop), compared
# with stock Tornado only.
SHIM = "ioloop_c_shim"
# Anchors in the order their columns appear.
ANCHORS = ("stock_tornado", "asyncio", "uvloop", "timing_off")

# The targets through the shim (issue 4), per benchmark.
SHIM_TARGETS: dict[str, float] = {
    "add_callback_chain": 3.0,
    "add_callback_batch": 3.0,
    "timeout_churn": 3.0,
    "socketpair_pingpong": 1.5,
}

# The issues' targets: ioloop_c's speedup over an anchor, per benchmark.
TARGETS: dict[tuple[str, str], float] = {
    ("add_callback_chain", "stock_tornado"): 5.0,
    ("add_callback_batch", "stock_tornado"): 5.0,
    ("timeout_churn", "stock_tornado"): 5.0,
    ("socketpair_pingpong", "stock_tornado"): 1.5,
    ("aio_call_soon_batch", "asyncio"): 3.5,
    ("aio_call_soon_batch", "uvloop"): 1.2,
    ("aio_call_later_cancel", "asyncio"): 3.0,
    ("aio_call_later_cancel", "uvloop"): 1.5,
    ("aio_timers_firing", "asyncio"): 3.0,
    ("aio_timers_firing", "uvloop"): 1.5,
    ("aio_add_reader_pingpong", "asyncio"): 1.5,
    ("aio_add_reader_pingpong", "uvloop"): 1.1,
    ("aio_streams_echo", "asyncio"): 1.0,
    ("aio_protocol_echo", "asyncio"): 1.0,
    # Callback timing and the detector on cost under 3%.
    ("stats_call_soon_batch", "timing_off"): 0.97,
    ("stats_call_soon_chain", "timing_off"): 0.97,
}

_PARAM = re.compile(r"\[.*\]$")


def _base_name(bench: dict) -> str:
    name = bench.get("group") or _PARAM.sub("", bench["name"])
    return name.removeprefix("test_")


def _impl(bench: dict) -> str | None:
    impl = (bench.get("params") or {}).get("impl")
    if impl is None:
        impl = (bench.get("extra_info") or {}).get("impl")
    return impl


def load_run(path: str) -> dict[str, dict[str, dict]]:
    """{benchmark: {impl: {"median": seconds, "ops": n}}} of one file."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    run: dict[str, dict[str, dict]] = {}
    for bench in data.get("benchmarks", []):
        impl = _impl(bench)
        if impl not in (OURS, SHIM) and impl not in ANCHORS:
            continue
        run.setdefault(_base_name(bench), {})[impl] = {
            "median": bench["stats"]["median"],
            "ops": (bench.get("extra_info") or {}).get("ops"),
        }
    return run


def _fmt_time(seconds: float, ops: int | None) -> str:
    text = f"{seconds * 1e3:.2f} ms"
    if ops:
        text += f" ({seconds / ops * 1e6:.2f} µs/op)"
    return text


def _row(name: str, ours: str, anchor: str, runs: list, multi: bool) -> list[str] | None:
    ratios, anchor_t, ours_t, ops = [], [], [], None
    for run in runs:
        pair = run.get(name, {})
        if anchor in pair and ours in pair:
            anchor_t.append(pair[anchor]["median"])
            ours_t.append(pair[ours]["median"])
            ratios.append(pair[anchor]["median"] / pair[ours]["median"])
            ops = ops or pair[ours]["ops"] or pair[anchor]["ops"]
    if not ratios:
        return None
    ratio = statistics.median(ratios)
    target = TARGETS.get((name, anchor)) if ours == OURS else SHIM_TARGETS.get(name)
    row = [
        name,
        ours,
        anchor,
        _fmt_time(statistics.median(anchor_t), ops),
        _fmt_time(statistics.median(ours_t), ops),
        f"{ratio:.3f}x",
    ]
    if multi:
        row.append(f"{min(ratios):.3f}-{max(ratios):.3f}x ({len(ratios)} runs)")
    row.append(f">= {target:g}x" if target else "-")
    row.append(("yes" if ratio >= target else "NO") if target else "-")
    return row


def table(runs: list[dict[str, dict[str, dict]]]) -> str:
    """One row per (benchmark, anchor): the anchor's and ioloop_c's median
    times and the speedup anchor / ioloop_c."""
    names: list[str] = []
    for run in runs:
        for name in run:
            if name not in names:
                names.append(name)
    multi = len(runs) > 1
    header = ["benchmark", "ours", "anchor", "anchor median", "our median", "speedup"]
    if multi:
        header.append("range")
    header += ["target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        for anchor in ANCHORS:
            for ours in (OURS, SHIM) if anchor == "stock_tornado" else (OURS,):
                row = _row(name, ours, anchor, runs, multi)
                if row is not None:
                    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json_files", nargs="+", help="pytest-benchmark JSON files")
    args = parser.parse_args(argv)
    runs = [load_run(path) for path in args.json_files]
    if not any(runs):
        print("no benchmarks with ioloop_c and an anchor found", file=sys.stderr)
        return 1
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
