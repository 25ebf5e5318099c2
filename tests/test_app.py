"""The demo Tornado application on ioloop_c, driven over loopback: HTTP,
JSON, streaming, AsyncHTTPClient, websocket; and the same app forked into
two processes sharing one listening socket (and with SO_REUSEPORT)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

tornado = pytest.importorskip("tornado")

APP = os.path.join(os.path.dirname(__file__), "..", "examples", "app.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(*args):
    proc = subprocess.Popen(
        [sys.executable, APP, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd="/", start_new_session=True,
    )
    return proc


def wait_serving(proc, count=1, timeout=30):
    """Read the log until `count` processes announced; return (port, lines)."""
    seen, lines = [], []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"pid (\d+) serving on http://127.0.0.1:(\d+)/ \(loop ([\w.]+)\)", line)
        if m:
            seen.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    assert len(seen) == count, "".join(lines)
    return seen


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read()


@pytest.fixture
def app():
    proc = start_app("--port", str(free_port()))
    try:
        (pid, port, loop_name), = wait_serving(proc)
        yield port, loop_name
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        proc.stdout.close()


def test_app_runs_on_ioloop_c(app):
    port, loop_name = app
    assert loop_name == "ioloop_c._loop.Loop"
    status, body = get(port, "/")
    assert (status, body) == (200, b"Hello, world")
    status, body = get(port, "/api/thing?x=1&y=two")
    assert json.loads(body)["args"] == {"x": "1", "y": "two"}
    status, body = get(port, "/stream?n=3")
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"
    status, body = get(port, "/fetch")
    assert json.loads(body)["fetched"]["name"] == "fetched"
    status, body = get(port, "/debug/loop")
    info = json.loads(body)
    assert info["loop"] == "Loop"
    assert info["stats"]["callbacks"] > 0 and info["stats"]["fd_events"] > 0


WAYS = ["ioloop_c", "ioloop_c-set", "ioloop_c-run"]
if sys.version_info >= (3, 12):
    WAYS.append("ioloop_c-factory")


@pytest.mark.parametrize("way", WAYS)
def test_app_each_way_in_gets_the_native_mainloop(way):
    """Each --loop way of making an ioloop_c loop: the Tornado IOLoop the
    app's handlers see is the shim's MainLoop, and requests are served."""
    proc = start_app("--port", str(free_port()), "--loop", way)
    try:
        (pid, port, loop_name), = wait_serving(proc)
        assert loop_name == "ioloop_c._loop.Loop"
        status, body = get(port, "/")
        assert (status, body) == (200, b"Hello, world")
        status, body = get(port, "/fetch")
        assert json.loads(body)["fetched"]["name"] == "fetched"
        info = json.loads(get(port, "/debug/loop")[1])
        assert (info["loop"], info["ioloop"]) == ("Loop", "MainLoop")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc.stdout.close()


def test_websocket_echo(app):
    import asyncio

    from tornado.websocket import websocket_connect

    import ioloop_c

    port, _ = app

    async def talk():
        conn = await websocket_connect(f"ws://127.0.0.1:{port}/ws")
        out = []
        for msg in ("hello", "world"):
            await conn.write_message(msg)
            out.append(await conn.read_message())
        await conn.write_message(b"\x00\x01", binary=True)
        out.append(await conn.read_message())
        conn.close()
        return out

    # The client runs on ioloop_c too.
    assert ioloop_c.run(talk()) == ["hello", "world", b"\x00\x01"]
    del asyncio


@pytest.mark.parametrize("mode", ["shared-socket", "reuse-port"])
def test_two_processes_both_answer_and_exit_cleanly(mode):
    port = free_port()
    args = ["--port", str(port), "--processes", "2"]
    if mode == "reuse-port":
        args.append("--reuse-port")
    proc = start_app(*args)
    try:
        announced = wait_serving(proc, count=2)
        child_pids = {pid for pid, _, _ in announced}
        assert len(child_pids) == 2 and proc.pid not in child_pids
        seen = set()
        for _ in range(400):
            # A new connection each time, so the kernel can pick either child.
            _, body = get(port, "/api/who")
            seen.add(json.loads(body)["pid"])
            if seen == child_pids:
                break
        assert seen == child_pids
        for pid in child_pids:
            os.kill(pid, signal.SIGTERM)
        # fork_processes exits 0 only if every child exited normally.
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert rest.count("exited normally") == 2, rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
