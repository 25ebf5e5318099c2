"""The Python matrix: build and test ioloop_c on each CPython version.

    python3 tools/matrix.py [--jobs N] [--ways stock,configure,install] 3.11 3.13 ...

(`make matrix` runs it with MATRIX_VERSIONS.)  For each version, in turn:

  1. build from source with -DIOLOOP_C_WERROR=ON into its own venv
     (.venv-3.X), through the Makefile's `install` target;
  2. our whole pytest suite (`make pytest`);
  3. that version's own test.test_asyncio on stock asyncio and on ioloop_c
     side by side (tests/conformance/cpython_asyncio.py);
  4. Tornado's own suite through each way in (tests/tornado_suite/run.py),
     `stock` being the anchor.

Where each Python comes from: 3.11 (and 3.12, when asked for) from the
host (pyenv), 3.13 and later from the Debian sid chroot that
tools/sid_env.sh makes once and keeps; commands for those run inside it.
A version that is asked for and cannot be found is reported UNAVAILABLE and
fails the run, as does a version whose build fails, whose pytest run has a
failure or error, whose CPython tests fail on ours where they pass on stock,
or whose Tornado suite fails through one of our ways in where it passes on
stock.  Every version runs regardless, and the summary table is printed at
the end and written to build/matrix/summary.md, with the figures in
build/matrix/summary.json; each step's log is in build/matrix/3.X/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "matrix")
SID = os.environ.get("IOLOOP_C_SID", "/var/cache/ioloop_c/sid")
SID_ENV = os.path.join(ROOT, "tools", "sid_env.sh")
HOST_VERSIONS = ("3.11", "3.12")


def log(msg: str) -> None:
    print(f"[matrix {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def host_python(version: str) -> str | None:
    """A host interpreter of `version` that has its own test suite."""
    cands = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python"))
    which = shutil.which(f"python{version}")
    if which:
        cands.append(which)
    for exe in cands:
        try:
            subprocess.run([exe, "-c", "import test.test_asyncio.utils"], check=True,
                           capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        return exe
    return None


class Leg:
    """One version's run: where its Python is, how to run a command there."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.venv = f".venv-{version}"
        self.dir = os.path.join(OUT, version)
        self.python: str | None = None
        self.in_sid = version not in HOST_VERSIONS
        self.why_unavailable = ""

    def locate(self, sid_ready: bool, sid_error: str) -> bool:
        if not self.in_sid:
            self.python = host_python(self.version)
            if self.python is None:
                self.why_unavailable = (f"no python{self.version} with its test suite on "
                                        "this host (pyenv)")
        elif not sid_ready:
            self.why_unavailable = f"sid chroot not available: {sid_error}"
        elif not os.path.exists(os.path.join(SID, "usr", "bin", f"python{self.version}")):
            self.why_unavailable = (f"python{self.version} is not in the sid chroot "
                                    "(IOLOOP_C_SID_VERSIONS)")
        elif not os.path.isdir(os.path.join(SID, "usr", "lib", f"python{self.version}",
                                            "test", "test_asyncio")):
            self.why_unavailable = f"libpython{self.version}-testsuite missing in the chroot"
        else:
            self.python = f"python{self.version}"
        return self.python is not None

    def cmd(self, argv: list[str], cwd: str | None = None) -> list[str]:
        """argv as run for this version (inside the chroot for sid ones)."""
        if cwd:
            argv = ["sh", "-c", 'cd "$0" && exec "$@"', cwd] + argv
        return ([SID_ENV, "run"] + argv) if self.in_sid else argv

    def vpy(self) -> str:
        return os.path.join(ROOT, self.venv, "bin", "python")


def run_step(leg: Leg, name: str, argv: list[str], timeout: float,
             cwd: str | None = None) -> tuple[int, float, str]:
    """Run one step, its output to build/matrix/3.X/<name>.log; returns
    (exit status, seconds, log path).  Past `timeout` its process group is
    killed and the status is 124."""
    path = os.path.join(leg.dir, f"{name}.log")
    t0 = time.monotonic()
    with open(path, "wb") as f:
        proc = subprocess.Popen(leg.cmd(argv, cwd), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            f.write(f"\n[matrix] killed after {timeout:.0f} s\n".encode())
            rc = 124
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    secs = time.monotonic() - t0
    log(f"{leg.version} {name}: exit {rc} in {secs:.0f} s ({os.path.relpath(path, ROOT)})")
    return rc, secs, path


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def pytest_counts(xml: str, logpath: str) -> dict[str, int] | None:
    """passed/skipped/failed/errors from pytest's JUnit XML."""
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    c = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in c:
            c[k] += int(s.get(k, 0))
    failing = []
    xfailed = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failing.append(f"{case.get('classname')}::{case.get('name')}")
        skip = case.find("skipped")
        if skip is not None and skip.get("type") == "pytest.xfail":
            xfailed += 1
    return {"passed": c["tests"] - c["failures"] - c["errors"] - c["skipped"],
            "skipped": c["skipped"] - xfailed, "xfailed": xfailed,
            "failed": c["failures"], "errors": c["errors"], "failing": failing}


def tornado_counts(text: str) -> dict[str, Any]:
    """Counts and failing ids from a unittest run's output (Tornado's runner)."""
    # With run.py --rerun the log holds the whole run, then perhaps a rerun
    # of its few failures: counts come from the first, the verdict from
    # the last.
    ran = re.findall(r"^Ran (\d+) tests? in", text, re.M)
    status = re.findall(r"^(OK|FAILED)\b(.*)$", text, re.M)
    res: dict[str, Any] = {"run": int(ran[0]) if ran else 0, "ok": bool(status)
                           and status[-1][0] == "OK", "failures": 0, "errors": 0,
                           "skipped": 0}
    if status:
        for k, n in re.findall(r"(failures|errors|skipped)=(\d+)", status[0][1]):
            res[k] = int(n)
    res["flaky"] = re.findall(r"^flaky \(failed, then passed on rerun\): (\S+)$", text, re.M)
    failing = set(re.findall(r"^(?:FAIL|ERROR): (.+)$", text, re.M))
    res["failing"] = sorted(f for f in failing
                            if not any(f.startswith(n.rsplit(".", 1)[-1] + " ") for n in res["flaky"]))
    return res


def run_leg(leg: Leg, args: argparse.Namespace) -> dict[str, Any]:
    os.makedirs(leg.dir, exist_ok=True)
    row: dict[str, Any] = {"version": leg.version, "where": "sid chroot" if leg.in_sid
                           else "host", "python": leg.python, "steps": {}, "problems": []}
    t_leg = time.monotonic()
    # 1. build
    rc, secs, path = run_step(leg, "build", [
        "make", "install", f"PYTHON={leg.python}", f"VENV={leg.venv}",
        "CMAKE_ARGS=-DIOLOOP_C_WERROR=ON"], args.build_timeout)
    row["steps"]["build"] = round(secs)
    row["build"] = rc == 0
    if rc == 0:
        ver = subprocess.run(leg.cmd([leg.vpy(), "-c",
                                      "import platform; print(platform.python_version())"]),
                             capture_output=True, text=True, cwd=ROOT)
        row["python_version"] = ver.stdout.strip()
    else:
        row["problems"].append(f"build failed (exit {rc}): {os.path.relpath(path, ROOT)}")
        row["seconds"] = round(time.monotonic() - t_leg)
        return row
    # 2. our pytest suite
    xml = os.path.join(leg.dir, "pytest.xml")
    if os.path.exists(xml):
        os.remove(xml)
    # --timeout bounds the tests that set no limit of their own (each of
    # those takes about a second; a module's own pytest.mark.timeout still
    # wins), so that a version on which our loop hangs finishes its leg.
    pargs = (f"-p no:cacheprovider --timeout {args.pytest_test_timeout:g} "
             f"--junitxml={xml} {args.pytest_args}").strip()
    rc, secs, path = run_step(leg, "pytest", ["make", "pytest", f"VENV={leg.venv}",
                                              f"PYTEST_ARGS={pargs}"], args.pytest_timeout)
    row["steps"]["pytest"] = round(secs)
    counts = pytest_counts(xml, path)
    row["pytest"] = counts
    if counts is None:
        row["problems"].append(f"pytest wrote no report (exit {rc}): {path}")
    elif rc != 0 or counts["failed"] or counts["errors"]:
        row["problems"].append(f"pytest: {counts['failed']} failed, {counts['errors']} errors"
                               f" (exit {rc})")
    # 3. CPython's test_asyncio, stock and ours
    cjson = os.path.join(leg.dir, "conformance.json")
    if os.path.exists(cjson):
        os.remove(cjson)
    rc, secs, path = run_step(leg, "conformance", [
        leg.vpy(), os.path.join(ROOT, "tests", "conformance", "cpython_asyncio.py"),
        "--jobs", str(args.jobs), "--test-timeout", str(args.test_timeout),
        "--max-timeouts", str(args.max_timeouts),
        "--json", cjson], args.conformance_timeout, cwd="/tmp")
    row["steps"]["conformance"] = round(secs)
    if os.path.exists(cjson):
        with open(cjson) as f:
            conf = json.load(f)
        row["conformance"] = {"totals": conf["totals"], "differences": conf["differences"],
                              "incomplete": conf["incomplete"],
                              "modules": len(conf["report"])}
        if conf["differences"]:
            row["problems"].append(f"test_asyncio: {len(conf['differences'])} tests fail on "
                                   "ioloop_c and pass on stock")
        for note in conf["incomplete"]:
            row["problems"].append(f"test_asyncio on ioloop_c cut short: {note}")
        if rc != 0 and not conf["differences"] and not conf["incomplete"]:
            row["problems"].append(f"conformance runner exit {rc}")
    else:
        row["conformance"] = None
        row["problems"].append(f"conformance runner wrote no report (exit {rc}): {path}")
    # 4. Tornado's suite through each way in
    # (two ways at a time: each is one process, a third of it waiting)
    row["tornado"] = {}
    t_start = time.monotonic()

    def one_way(way: str) -> tuple[int, float, str]:
        return run_step(leg, f"tornado-{way}", [
            leg.vpy(), os.path.join(ROOT, "tests", "tornado_suite", "run.py"), "--rerun", way],
            args.tornado_timeout, cwd="/tmp")

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one_way, args.ways))
    for way, (rc, secs, path) in zip(args.ways, done):
        res = tornado_counts(read(path))
        res["exit"] = rc
        res["seconds"] = round(secs)
        row["tornado"][way] = res
    row["steps"]["tornado"] = round(time.monotonic() - t_start)
    stock = row["tornado"].get("stock")
    stock_bad = set(stock["failing"]) if stock else set()
    for way, res in row["tornado"].items():
        if way == "stock":
            continue
        new = sorted(set(res["failing"]) - stock_bad)
        res["differing"] = new
        # A non-zero exit is forgiven only where stock fails too and every
        # test failing on ours fails on stock.
        if res["exit"] != 0 and (new or not res["failing"] or stock is None
                                 or stock["exit"] == 0):
            row["problems"].append(f"Tornado suite via {way}: exit {res['exit']}, "
                                   f"{len(new)} failing beyond stock")
    row["seconds"] = round(time.monotonic() - t_leg)
    return row


def cell_pytest(p: dict[str, Any] | None) -> str:
    if not p:
        return "no report"
    s = f"{p['passed']} passed, {p['skipped']} skipped, {p['failed']} failed"
    s += f", {p['errors']} errors" if p["errors"] else ""
    return s + (f" ({p['xfailed']} xfail)" if p.get("xfailed") else "")


def cell_conf(t: dict[str, int]) -> str:
    s = f"{t['run']}/{t['failed']}/{t['errors']}/{t['skipped']}"
    extra = [f"{t[k]} {k.replace('_', ' ')}" for k in ("timeouts", "crashes", "not_run")
             if t.get(k)]
    return s + (f" ({', '.join(extra)})" if extra else "")


def cell_tornado(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r["ok"]:
        notes = ([f"{r['skipped']} skip"] if r["skipped"] else []) + (
            [f"{len(r['flaky'])} flaky"] if r.get("flaky") else [])
        return f"OK {r['run']}" + (f" ({', '.join(notes)})" if notes else "")
    return (f"{r['run']} run, {r['failures']} fail, {r['errors']} err"
            + (f" (exit {r['exit']})" if r["exit"] not in (0, 1) else ""))


def summarize(rows: list[dict[str, Any]], ways: list[str]) -> str:
    head = ["version", "build", "pytest passed/skipped/failed",
            "test_asyncio stock run/fail/err/skip", "ours run/fail/err/skip",
            "differing"] + [f"Tornado {w}" for w in ways] + ["leg time", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("unavailable"):
            cells = [r["version"], "UNAVAILABLE: " + r["unavailable"]] + [""] * (len(head) - 3) \
                + ["FAIL"]
        else:
            conf = r.get("conformance")
            ver = r.get("python_version") or r["version"]
            cells = [f"{ver} ({r['where']})",
                     f"ok ({r['steps']['build']} s)" if r["build"] else "FAILED"]
            if r["build"]:
                cells += [cell_pytest(r.get("pytest")),
                          cell_conf(conf["totals"]["stock"]) if conf else "no report",
                          cell_conf(conf["totals"]["ioloop_c"]) if conf else "no report",
                          str(len(conf["differences"])) if conf else "-"]
                cells += [cell_tornado(r["tornado"].get(w)) for w in ways]
            else:
                cells += [""] * (4 + len(ways))
            cells += [f"{r['seconds'] // 60}m{r['seconds'] % 60:02d}s",
                      "FAIL" if r["problems"] else "ok"]
        lines.append("| " + " | ".join(cells) + " |")
    out = ["# ioloop_c on each Python (make matrix)", "",
           f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
           "test_asyncio columns: that version's own test.test_asyncio, every module, "
           "each in its own child (memory and time limits); 'differing' counts tests that "
           "fail on ioloop_c and pass on stock asyncio in the same run. Tornado columns: "
           "Tornado's own suite, stock asyncio loop (anchor) and ours through each way in.",
           ""] + lines + [""]
    for r in rows:
        if r.get("problems"):
            out.append(f"- {r['version']}: " + "; ".join(r["problems"]))
        for t in ((r.get("pytest") or {}).get("failing") or [])[:20]:
            out.append(f"  - pytest fails: {t}")
        conf = r.get("conformance")
        if conf and conf["differences"]:
            for t in conf["differences"][:40]:
                out.append(f"  - differs: {t.splitlines()[0]}")
        for way, res in (r.get("tornado") or {}).items():
            for t in res.get("differing", [])[:20]:
                out.append(f"  - Tornado via {way} differs: {t}")
    steps = ", ".join(f"{r['version']}: " + " + ".join(f"{k} {v} s" for k, v in
                                                        r.get("steps", {}).items())
                      for r in rows if r.get("steps"))
    out += ["", f"Step times: {steps}", ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("versions", nargs="+")
    ap.add_argument("--jobs", type=int, default=2,
                    help="conformance children at a time (stock and ours side by side)")
    ap.add_argument("--ways", default="stock,configure,install",
                    help="ways into Tornado's suite, comma-separated")
    ap.add_argument("--pytest-args", default="")
    ap.add_argument("--pytest-test-timeout", type=float, default=30,
                    help="pytest-timeout for tests without their own mark")
    ap.add_argument("--test-timeout", type=float, default=30,
                    help="per-test wall limit in the conformance run")
    ap.add_argument("--max-timeouts", type=int, default=6,
                    help="timed-out tests after which a conformance module stops")
    ap.add_argument("--build-timeout", type=float, default=1800)
    ap.add_argument("--pytest-timeout", type=float, default=2400)
    ap.add_argument("--conformance-timeout", type=float, default=3600)
    ap.add_argument("--tornado-timeout", type=float, default=1200)
    args = ap.parse_args()
    args.ways = [w for w in args.ways.split(",") if w]
    os.makedirs(OUT, exist_ok=True)
    t0 = time.monotonic()
    legs = [Leg(v) for v in args.versions]
    sid_ready, sid_error = False, ""
    if any(leg.in_sid for leg in legs):
        log("setting up the Debian sid chroot (tools/sid_env.sh ensure; cached)")
        proc = subprocess.run([SID_ENV, "ensure"], cwd=ROOT, capture_output=True, text=True)
        sid_ready = proc.returncode == 0
        sid_error = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        sid_error = sid_error[0]
        if not sid_ready:
            log(f"sid chroot unavailable: {sid_error}")
    rows = []
    for leg in legs:
        if not leg.locate(sid_ready, sid_error):
            log(f"{leg.version}: UNAVAILABLE ({leg.why_unavailable})")
            rows.append({"version": leg.version, "unavailable": leg.why_unavailable,
                         "problems": [f"UNAVAILABLE: {leg.why_unavailable}"]})
            continue
        log(f"{leg.version}: {leg.python} ({'sid chroot' if leg.in_sid else 'host'})")
        rows.append(run_leg(leg, args))
        with open(os.path.join(OUT, "summary.json"), "w") as f:
            json.dump({"rows": rows, "partial": True}, f, indent=1)
    text = summarize(rows, args.ways)
    total = round(time.monotonic() - t0)
    text += f"Total: {total // 60}m{total % 60:02d}s\n"
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump({"rows": rows, "ways": args.ways, "seconds": total}, f, indent=1)
    print()
    print(text)
    failed = [r["version"] for r in rows if r.get("problems")]
    if failed:
        print(f"matrix FAILED on: {' '.join(failed)}")
        return 1
    print("matrix passed on every version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
