"""Print a markdown table of stock Tornado versus ioloop_c from
pytest-benchmark JSON files (``--benchmark-json``).

    python benchmarks/compare.py run1.json [run2.json ...]

For each benchmark and each file, the speedup is the stock median divided
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

STOCK = "stock_tornado"
OURS = "ioloop_c"

# The targets: ioloop_c's speedup over stock Tornado.
TARGETS: dict[str, float] = {
    "add_callback_chain": 5.0,
    "add_callback_batch": 5.0,
    "timeout_churn": 5.0,
    "socketpair_pingpong": 1.5,
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
        if impl not in (STOCK, OURS):
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


def table(runs: list[dict[str, dict[str, dict]]]) -> str:
    names: list[str] = []
    for run in runs:
        for name in run:
            if name not in names:
                names.append(name)
    multi = len(runs) > 1
    header = ["benchmark", f"{STOCK} median", f"{OURS} median", "speedup"]
    if multi:
        header.append("range")
    header += ["target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        ratios, stock_t, ours_t, ops = [], [], [], None
        for run in runs:
            pair = run.get(name, {})
            if STOCK in pair and OURS in pair:
                stock_t.append(pair[STOCK]["median"])
                ours_t.append(pair[OURS]["median"])
                ratios.append(pair[STOCK]["median"] / pair[OURS]["median"])
                ops = ops or pair[OURS]["ops"] or pair[STOCK]["ops"]
        target = TARGETS.get(name)
        if not ratios:
            row = [name, "-", "-", "n/a (missing impl)"]
            row += ["-"] if multi else []
            row += [f">= {target:g}x" if target else "-", "-"]
        else:
            ratio = statistics.median(ratios)
            row = [
                name,
                _fmt_time(statistics.median(stock_t), ops),
                _fmt_time(statistics.median(ours_t), ops),
                f"{ratio:.3f}x",
            ]
            if multi:
                row.append(f"{min(ratios):.3f}-{max(ratios):.3f}x ({len(ratios)} runs)")
            row.append(f">= {target:g}x" if target else "-")
            row.append(("yes" if ratio >= target else "NO") if target else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json_files", nargs="+", help="pytest-benchmark JSON files")
    args = parser.parse_args(argv)
    runs = [load_run(path) for path in args.json_files]
    if not any(runs):
        print("no stock_tornado/ioloop_c benchmarks found", file=sys.stderr)
        return 1
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
