"""The echo harness itself: it builds, every loop yields figures, and its
client notices a wrong echo.  Nothing here asserts a speed.

Runs in ``make bench-quick`` (``pytest benchmarks/``); each test takes a
few seconds.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import echo_bench  # noqa: E402

# Always there with the bench extras; aiofastnet's loops when it imports.
REQUIRED = ["asyncio", "uvloop", "ioloop_c", "roofline"]


def expected_loops() -> list[str]:
    loops = list(REQUIRED)
    try:
        import aiofastnet  # noqa: F401

        loops += ["afn-asyncio", "afn-uvloop", "afn-ioloop_c"]
    except ImportError:
        pass
    return loops


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of the harness in --quick mode, in a child process.  Its
    tables go to $ECHO_BENCH_OUT when set (make bench-quick keeps them in
    build/bench-quick/echo), else to a temporary directory."""
    out = os.environ.get("ECHO_BENCH_OUT") or str(tmp_path_factory.mktemp("echo"))
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "echo_bench.py"), "--quick",
         "--out", out, "--build-dir", str(build), "--loops", ",".join(expected_loops())],
        capture_output=True, text=True, timeout=600)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = pathlib.Path(out)
    with open(out / "echo.json") as f:
        data = json.load(f)
    data["_md"] = (out / "echo.md").read_text()
    return data


def test_every_loop_every_case_has_figures(quick_run: dict) -> None:
    assert quick_run["loops"] == expected_loops()
    cells = quick_run["echo"]
    kinds = {c["kind"] for c in cells}
    assert kinds == {"protocol", "buffered", "streams", "tls"}
    args = quick_run["args"]
    assert len(cells) == 4 * len(args["conns"]) * len(args["sizes"])
    for c in cells:
        assert not c["errors"], c["errors"]
        want = [lp for lp in expected_loops() if not (c["kind"] == "tls" and lp == "roofline")]
        assert sorted(c["samples"]) == sorted(want)
        for loop, runs in c["samples"].items():
            assert len(runs) == 1, loop
            r = runs[0]
            assert r["rps"] > 0 and r["round_trips"] > 0, (loop, r)
            assert 0 < r["p50_us"] <= r["p99_us"] <= r["max_us"], (loop, r)
            # The server's CPU time was read (it is pinned and running).
            assert 0 < r["server_cpu"] <= 1.05 and r["rps_per_server_cpu"] > 0, (loop, r)
            assert 0 < r["client_cpu"] <= 1.05, (loop, r)
            assert r["size"] == c["size"] and r["connections"] == c["connections"]
            assert r["tls"] == (c["kind"] == "tls")


def test_memory_and_aiohttp_figures(quick_run: dict) -> None:
    for kind in ("protocol", "streams"):
        res = quick_run["memory"][kind]
        assert sorted(res) == sorted(expected_loops())
        # An idle Python connection costs something; zero would mean the
        # server never made the connection.
        for loop in expected_loops():
            if loop != "roofline":
                assert res[loop][0] > 0, (kind, loop)
    http = quick_run["aiohttp"]
    if not http:
        pytest.skip("wrk is not installed (make wrk)")
    for res in http.values():
        assert sorted(res) == sorted(lp for lp in expected_loops() if lp != "roofline")
        assert all(v[0] > 0 for v in res.values())


def test_report_has_the_ratio_columns(quick_run: dict) -> None:
    md = quick_run["_md"]
    assert "ours / uvloop | ours / asyncio | ours / roofline | ours / afn best" in md
    assert "| `Protocol` | 10 | 100 B |" in md
    assert "## Memory per idle connection" in md


def _client(tmp_path, addr: str, *extra: str) -> subprocess.CompletedProcess:
    client, _, _ = echo_bench.build(str(tmp_path))
    return subprocess.run([client, "--tcp", addr, "-c", "1", "-s", "1000", "-d", "0.2",
                           "-w", "0", *extra], capture_output=True, text=True, timeout=30)


def _echo_thread(lsock: socket.socket, corrupt: bool,
                 long_second: bool = False) -> threading.Thread:
    """Serves one connection of ``lsock``: echoes 1000-byte messages, the
    first one with its first byte flipped if ``corrupt``; if
    ``long_second``, the second echo has a byte too many (every later echo
    is then shifted by one)."""

    def serve() -> None:
        try:
            echo()
        except (ConnectionResetError, BrokenPipeError):
            pass  # a client that failed on a wrong echo closes with bytes unread

    def echo() -> None:
        conn, _ = lsock.accept()
        with conn:
            flip = corrupt
            count = 0
            while True:
                data = b""
                while len(data) < 1000:
                    got = conn.recv(1000 - len(data))
                    if not got:
                        return
                    data += got
                count += 1
                if flip:
                    data, flip = bytes([data[0] ^ 1]) + data[1:], False
                if long_second and count == 2:
                    data += b"x"
                conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def _against_echo(tmp_path, *extra: str, corrupt: bool = False,
                  long_second: bool = False) -> subprocess.CompletedProcess:
    """The client, with ``extra`` flags, against one ``_echo_thread``."""
    lsock = socket.create_server(("127.0.0.1", 0))
    t = _echo_thread(lsock, corrupt, long_second)
    proc = _client(tmp_path, f"127.0.0.1:{lsock.getsockname()[1]}", *extra)
    t.join(10)
    lsock.close()
    return proc


def test_spinning_client_counts_round_trips(tmp_path) -> None:
    """--spin polls without sleeping and still counts every round trip."""
    proc = _against_echo(tmp_path, "--spin")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["round_trips"] > 10 and out["rps"] > 0
    # A client that never sleeps uses its whole CPU (allowing for a
    # shared machine taking some of it).
    assert out["client_cpu"] > 0.5


def test_sampling_client_counts_round_trips(tmp_path) -> None:
    """--check-every drops most echoes unread and still counts them all."""
    proc = _against_echo(tmp_path, "--check-every", "4")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["round_trips"] > 10 and out["rps"] > 0
    assert out["check_every"] == 4


def test_sampling_client_catches_a_long_unchecked_echo(tmp_path) -> None:
    """An unchecked echo with a byte too many shifts the later ones: the
    next checked echo (the fifth) differs."""
    proc = _against_echo(tmp_path, "--check-every", "4", long_second=True)
    assert proc.returncode == 3, proc.stdout
    assert "differs" in proc.stderr


@pytest.mark.parametrize("mode", [[], ["--spin"], ["--check-every", "4"]],
                         ids=["sleeping", "spinning", "sampling"])
def test_client_rejects_a_wrong_echo(tmp_path, mode: list[str]) -> None:
    proc = _against_echo(tmp_path, *mode, corrupt=True)
    assert proc.returncode == 3
    assert "differs" in proc.stderr
    assert proc.stdout == ""


def test_client_fails_cleanly_without_a_server(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    proc = _client(tmp_path, f"127.0.0.1:{port}")
    assert proc.returncode == 2
    assert "connect" in proc.stderr


def test_client_rejects_bad_arguments(tmp_path) -> None:
    proc = _client(tmp_path, "no-port-here")
    assert proc.returncode != 0
    proc = _client(tmp_path, "127.0.0.1:1", "-c", "0")
    assert proc.returncode == 1 and "usage" in proc.stderr
    proc = _client(tmp_path, "127.0.0.1:1", "--check-every", "0")
    assert proc.returncode == 1 and "usage" in proc.stderr
