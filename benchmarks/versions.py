"""The headline benchmarks on several Python versions, each version's
asyncio and uvloop measured beside ioloop_c in the same run.

    python benchmarks/versions.py [--versions "3.11 3.15"] [--runs 3]
                                  [--no-build] [--out benchmarks/results/versions]

Each version's ioloop_c is built from source into its venv (``.venv-X.Y``;
3.11 and 3.12 with the host's interpreters, 3.13-3.15 inside the sid chroot through
``tools/sid_env.sh run``); then ``--runs`` rounds, each running every
version once in turn (so drift in the machine's load falls on all alike):

* the headline micro-benchmarks of ``test_bench_asyncio.py`` (call_soon
  batch and chain, call_later + cancel churn, timers firing, add_reader
  ping-pong, 100-byte echo through streams and through protocols) on
  asyncio, uvloop and ioloop_c, pinned to CPU 0;
* Tornado's hello-world (examples/app.py) under wrk on stock Tornado,
  Tornado on uvloop and ioloop_c: the server on CPU 0 (inside the chroot
  for the sid Pythons), wrk on the host on CPU 1 (the chroot shares the
  host's network).

Each run records the machine's load (``uptime``).  Writes, per version,
``X.Y.md`` and ``X.Y.json`` (median of the per-run ratios ours / anchor,
with their range, and the anchors' own absolute figures), and the combined
``versions.md`` / ``versions.json`` (version x benchmark).  The raw
pytest-benchmark and wrk files stay in ``build/bench-versions/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from compare import load_run  # noqa: E402

SID_ENV = os.path.join(REPO, "tools", "sid_env.sh")
HOST_VERSIONS = ("3.11", "3.12")

# The headline rows, in table order: (label, pytest-benchmark group).
MICRO = (
    ("call_soon batch", "aio_call_soon_batch"),
    ("call_soon chain", "aio_call_soon_chain"),
    ("call_later + cancel churn", "aio_call_later_cancel"),
    ("timers firing (1 ms)", "aio_timers_firing"),
    ("add_reader ping-pong", "aio_add_reader_pingpong"),
    ("echo, streams (100 B)", "aio_streams_echo"),
    ("echo, Protocol (100 B)", "aio_protocol_echo"),
)
HTTP_LABEL = "Tornado hello-world (wrk, req/s)"
MICRO_TESTS = ("test_call_soon_batch or test_call_soon_chain or "
               "test_call_later_cancel_churn or test_timers_firing or "
               "test_add_reader_pingpong or test_streams_echo or test_protocol_echo")
# http_bench's loop names for the anchors of the asyncio API.
HTTP_ANCHORS = {"asyncio": "stock", "uvloop": "uvloop"}
ANCHORS = ("asyncio", "uvloop")
SERVER_CPU, LOAD_CPU = 0, 1


def log(msg: str) -> None:
    print(f"[bench-versions {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def uptime() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def in_env(version: str, argv: list[str]) -> list[str]:
    """argv run with that version's environment (the sid chroot or not)."""
    return argv if version in HOST_VERSIONS else [SID_ENV, "run", *argv]


def host_python(version: str) -> str:
    for cand in (f"python{version}",
                 os.path.expanduser(f"~/.pyenv/versions/{version}/bin/python{version}")):
        found = shutil.which(cand) or (cand if os.access(cand, os.X_OK) else None)
        if found:
            return found
    # pyenv keeps one patch release per minor version here.
    root = os.path.expanduser("~/.pyenv/versions")
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        if name.startswith(version + "."):
            return os.path.join(root, name, "bin", "python" + version)
    raise SystemExit(f"no Python {version} on the host")


def run(argv: list[str], logfile: str, timeout: float, cwd: str = REPO) -> None:
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)} (log: {logfile})")


def build(version: str, raw: str) -> None:
    python = host_python(version) if version in HOST_VERSIONS else f"python{version}"
    log(f"{version}: make install PYTHON={python} VENV=.venv-{version}")
    run(in_env(version, ["make", "install", f"PYTHON={python}", f"VENV=.venv-{version}"]),
        os.path.join(raw, "build.log"), timeout=1800)


def one_run(version: str, i: int, raw: str, args: argparse.Namespace) -> dict:
    venv_py = os.path.join(REPO, f".venv-{version}", "bin", "python")
    logfile = os.path.join(raw, f"run{i}.log")
    info = {"run": i, "load_before": uptime(), "started": time.strftime("%H:%M:%S")}
    log(f"{version} run {i}: micro-benchmarks (load {info['load_before']})")
    micro_json = os.path.join(raw, f"micro-run{i}.json")
    # sid_env.sh starts in the repository: change to benchmarks/ there.
    run(in_env(version, ["sh", "-c", 'cd benchmarks && exec "$@"', "sh",
                         "env", f"BENCH_QUICK={int(args.quick)}",
                         "taskset", "-c", str(SERVER_CPU), venv_py, "-m", "pytest", "-q",
                         "-p", "no:cacheprovider", "--benchmark-only",
                         f"--benchmark-json={micro_json}", "-k", MICRO_TESTS,
                         "test_bench_asyncio.py"]),
        logfile, timeout=args.timeout)
    info["load_mid"] = uptime()
    if not args.no_http:
        log(f"{version} run {i}: HTTP under wrk (load {info['load_mid']})")
        http_json = os.path.join(raw, f"http-run{i}.json")
        prefix = "" if version in HOST_VERSIONS else SID_ENV + " run"
        run([sys.executable, os.path.join(HERE, "http_bench.py"),
             "--runs", str(args.http_runs), "--duration", str(args.http_duration),
             "--connections", "50", "--server-python", venv_py,
             "--server-prefix", prefix, "--server-cpu", str(SERVER_CPU),
             "--load-cpu", str(LOAD_CPU), "--json", http_json],
            logfile, timeout=args.timeout)
    info["load_after"] = uptime()
    return info


def http_medians(path: str) -> dict[str, float]:
    with open(path, encoding="utf-8") as f:
        res = json.load(f)["results"]
    return {name: statistics.median(v) for name, v in res.items() if v}


def summarize(version: str, raw: str, runs: list[dict]) -> dict:
    """Per benchmark and anchor: per-run ratios (how many times faster ours
    is: anchor time / our time, or our req/s / the anchor's), their median
    and range, and each loop's absolute median over the runs."""
    rows: dict[str, dict] = {}
    micro = [load_run(os.path.join(raw, f"micro-run{r['run']}.json")) for r in runs]
    for label, group in MICRO:
        row: dict = {"group": group, "unit": "us/op", "abs": {}, "ratio": {}}
        for impl in ("ioloop_c", *ANCHORS):
            per_op = [m[group][impl]["median"] / m[group][impl]["ops"] * 1e6
                      for m in micro if impl in m.get(group, {})]
            if per_op:
                row["abs"][impl] = statistics.median(per_op)
        for anchor in ANCHORS:
            ratios = [m[group][anchor]["median"] / m[group]["ioloop_c"]["median"]
                      for m in micro if {anchor, "ioloop_c"} <= set(m.get(group, {}))]
            if ratios:
                row["ratio"][anchor] = {"median": statistics.median(ratios),
                                        "min": min(ratios), "max": max(ratios),
                                        "runs": ratios}
        rows[label] = row
    http_files = [os.path.join(raw, f"http-run{r['run']}.json") for r in runs]
    http = [http_medians(p) for p in http_files if os.path.exists(p)]
    if http:
        row = {"group": "http_hello", "unit": "req/s", "abs": {}, "ratio": {}}
        for impl, name in (("ioloop_c", "ioloop_c"), *HTTP_ANCHORS.items()):
            row["abs"][impl] = statistics.median(h[name] for h in http)
        for anchor, name in HTTP_ANCHORS.items():
            ratios = [h["ioloop_c"] / h[name] for h in http]
            row["ratio"][anchor] = {"median": statistics.median(ratios),
                                    "min": min(ratios), "max": max(ratios),
                                    "runs": ratios}
        rows[HTTP_LABEL] = row
    return {"version": version, "python": python_version(version), "runs": runs,
            "rows": rows}


def python_version(version: str) -> str:
    venv_py = os.path.join(REPO, f".venv-{version}", "bin", "python")
    out = subprocess.run(in_env(version, [venv_py, "-c",
                                          "import sys, uvloop, tornado; "
                                          "print(sys.version.split()[0], uvloop.__version__, "
                                          "tornado.version)"]),
                         capture_output=True, text=True, cwd=REPO, check=True).stdout.split()
    return f"CPython {out[0]}, uvloop {out[1]}, Tornado {out[2]}"


def _ratio(cell: dict | None) -> str:
    if not cell:
        return "-"
    return f"{cell['median']:.2f}x ({cell['min']:.2f}-{cell['max']:.2f})"


def _abs(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if unit == "req/s" else f"{value:.3f}"


def version_md(summary: dict) -> str:
    lines = [f"# Headline benchmarks on Python {summary['version']}", "",
             f"{summary['python']}; {len(summary['runs'])} runs; ratios are how many times "
             "faster ioloop_c is (anchor time / ours; for HTTP our req/s / the anchor's), "
             "median of the per-run ratios (range). Absolute figures: medians over the "
             "runs, µs per operation (HTTP: req/s).", "",
             "| benchmark | ours / asyncio | ours / uvloop | asyncio | uvloop | ioloop_c |",
             "|---|---|---|---|---|---|"]
    for label, row in summary["rows"].items():
        unit = row["unit"]
        lines.append(f"| {label} | {_ratio(row['ratio'].get('asyncio'))} | "
                     f"{_ratio(row['ratio'].get('uvloop'))} | "
                     + " | ".join(_abs(row["abs"].get(i), unit)
                                  for i in ("asyncio", "uvloop", "ioloop_c")) + " |")
    lines += ["", "Load average (1, 5, 15 min) before / between / after each run:", ""]
    for r in summary["runs"]:
        lines.append(f"- run {r['run']} at {r['started']} UTC: {r['load_before']} / "
                     f"{r['load_mid']} / {r['load_after']}")
    return "\n".join(lines) + "\n"


def combined_md(summaries: list[dict]) -> str:
    versions = [s["version"] for s in summaries]
    labels: list[str] = []
    for s in summaries:
        labels += [label for label in s["rows"] if label not in labels]
    head = "| benchmark | " + " | ".join(
        f"{v}: ours/asyncio | {v}: ours/uvloop" for v in versions) + " |"
    lines = ["# Headline benchmarks by Python version", "",
             "How many times faster ioloop_c is than each anchor, measured side by side in "
             "the same run on that version (median of the per-run ratios; range in "
             "each version's own file).", "",
             "; ".join(f"{s['version']}: {s['python']}, {len(s['runs'])} run(s)"
                       for s in summaries), "",
             head, "|---|" + "---|---|" * len(versions)]
    for label in labels:
        cells = []
        for s in summaries:
            row = s["rows"].get(label, {"ratio": {}})
            cells += [f"{row['ratio'][a]['median']:.2f}x" if a in row["ratio"] else "-"
                      for a in ANCHORS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "The anchors' own figures (µs/op; HTTP req/s), per version:", "",
              "| benchmark | " + " | ".join(f"{v}: asyncio | {v}: uvloop | {v}: ioloop_c"
                                         for v in versions) + " |",
              "|---|" + "---|---|---|" * len(versions)]
    for label in labels:
        cells = []
        for s in summaries:
            row = s["rows"].get(label, {"abs": {}, "unit": ""})
            cells += [_abs(row["abs"].get(i), row["unit"])
                      for i in ("asyncio", "uvloop", "ioloop_c")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", default="3.11 3.15")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--http-runs", type=int, default=3,
                    help="wrk runs per loop within one run (their median counts)")
    ap.add_argument("--http-duration", type=int, default=5)
    ap.add_argument("--no-build", action="store_true", help="use the venvs as they are")
    ap.add_argument("--no-http", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: BENCH_QUICK=1 micro-benchmarks, one 1 s wrk run per loop")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per step")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "versions"))
    ap.add_argument("--raw", default=os.path.join(REPO, "build", "bench-versions"))
    args = ap.parse_args()
    # Paths are used from benchmarks/ and inside the chroot (its /tmp is
    # its own): keep them absolute and in the repository.
    args.out, args.raw = os.path.abspath(args.out), os.path.abspath(args.raw)
    if args.quick:
        args.http_runs, args.http_duration = 1, 1
    if not args.no_http and shutil.which("wrk") is None:
        raise SystemExit("wrk is missing on the host: `make wrk` (root) or --no-http")
    os.makedirs(args.out, exist_ok=True)
    versions = args.versions.split()
    raws = {v: os.path.join(args.raw, v) for v in versions}
    for version in versions:
        os.makedirs(raws[version], exist_ok=True)
        if not args.no_build:
            build(version, raws[version])
    # Run i of every version, then run i + 1: the versions take turns, so
    # a change in the machine's load falls on all of them alike.
    runs: dict[str, list[dict]] = {v: [] for v in versions}
    for i in range(1, args.runs + 1):
        for version in versions:
            runs[version].append(one_run(version, i, raws[version], args))
    summaries = []
    for version in versions:
        raw = raws[version]
        summary = summarize(version, raw, runs[version])
        with open(os.path.join(args.out, f"{version}.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
        with open(os.path.join(args.out, f"{version}.md"), "w", encoding="utf-8") as f:
            f.write(version_md(summary))
        log(f"{version}: wrote {args.out}/{version}.md")
        print(version_md(summary), flush=True)
        summaries.append(summary)
    # The combined table covers every version with a result file, so that
    # versions run at different times (make bench-versions BENCH_VERSIONS=3.14)
    # still appear side by side.
    done = {s["version"]: s for s in summaries}
    for name in os.listdir(args.out):
        stem = name.removesuffix(".json")
        if name.endswith(".json") and stem != "versions" and stem not in done:
            with open(os.path.join(args.out, name), encoding="utf-8") as f:
                done[stem] = json.load(f)
    ordered = [done[v] for v in sorted(done, key=lambda v: tuple(map(int, v.split("."))))]
    with open(os.path.join(args.out, "versions.json"), "w", encoding="utf-8") as f:
        json.dump({s["version"]: s["rows"] for s in ordered}, f, indent=1)
    with open(os.path.join(args.out, "versions.md"), "w", encoding="utf-8") as f:
        f.write(combined_md(ordered))
    print(combined_md(ordered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
