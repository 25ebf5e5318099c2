"""The UDP echo harness itself: the client builds, every loop yields
figures with the transport it is meant to use, and the client notices a
wrong echo.  Nothing here asserts a speed.

Runs in ``make bench-quick`` (``pytest benchmarks/``); a few seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import udp_bench  # noqa: E402

TRANSPORTS = {
    "asyncio": "_SelectorDatagramTransport",
    "uvloop": "UDPTransport",
    "ioloop_c": "ioloop_c._datagram.DatagramTransport",
    "ioloop_c-python": "_SelectorDatagramTransport",
}


def test_every_loop_echoes(tmp_path):
    subprocess.run(
        [sys.executable, os.path.join(HERE, "udp_bench.py"), "--rounds", "1",
         "--duration", "0.3", "--warmup", "0.1", "--clients", "1,10", "--out", str(tmp_path)],
        check=True, timeout=300,
    )
    samples = json.loads((tmp_path / "udp.json").read_text())["samples"]
    seen = {(s["loop"], s["clients"]) for s in samples}
    assert seen == {(n, c) for n in udp_bench.LOOPS for c in (1, 10)}
    for s in samples:
        assert s["rps"] > 0 and s["round_trips"] > 0
        assert TRANSPORTS[s["loop"]] in s["transport"]
    assert "ioloop_c / uvloop" in (tmp_path / "udp.md").read_text()


def test_client_rejects_a_wrong_echo():
    client = udp_bench.build_client()
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)

    def bad_echo():
        try:
            data, addr = srv.recvfrom(2048)
            srv.sendto(data[:-1] + bytes([data[-1] ^ 1]), addr)
        except OSError:
            pass

    t = threading.Thread(target=bad_echo)
    t.start()
    port = srv.getsockname()[1]
    res = subprocess.run([client, f"127.0.0.1:{port}", "-d", "1", "-w", "0"],
                         capture_output=True, text=True, timeout=30)
    t.join()
    srv.close()
    assert res.returncode != 0
    assert "came back wrong" in res.stderr
