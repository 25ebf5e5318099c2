"""Whole asyncio programs on ioloop_c, each in a fresh interpreter: an echo
server and client, a subprocess, a signal handler and a thread-pool call,
started through each entry point a user would use."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys, threading
    import ioloop_c

    async def main():
        loop = asyncio.get_running_loop()
        out = {"loop": type(loop).__module__ + "." + type(loop).__name__}

        async def echo(reader, writer):
            while data := await reader.read(1024):
                writer.write(data.upper())
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        replies = []
        for word in ("hello", "loop"):
            writer.write(word.encode())
            replies.append((await reader.readexactly(len(word))).decode())
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        out["echo"] = replies

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        stdout, _ = await proc.communicate(b"stressed")
        out["subprocess"] = [proc.returncode, stdout.decode().strip()]

        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1")
        os.kill(os.getpid(), signal.SIGUSR1)
        out["signal"] = await asyncio.wait_for(got, 10)
        loop.remove_signal_handler(signal.SIGUSR1)

        main_thread = threading.get_ident()
        out["thread_pool"] = await loop.run_in_executor(
            None, lambda: threading.get_ident() != main_thread)
        out["to_thread"] = await asyncio.to_thread(sum, [1, 2, 3])
        return out

    how = sys.argv[1]
    if how == "run":
        result = ioloop_c.run(main())
    elif how == "runner":
        with asyncio.Runner(loop_factory=ioloop_c.new_event_loop) as runner:
            result = runner.run(main())
    elif how == "install":
        ioloop_c.install()
        result = asyncio.run(main())
    elif how == "asyncio_run_factory":
        result = asyncio.run(main(), loop_factory=ioloop_c.new_event_loop)
    print(json.dumps(result))
    """
)

ENTRY_POINTS = ["run", "runner", "install"]
if sys.version_info >= (3, 12):  # asyncio.run() takes loop_factory from 3.12
    ENTRY_POINTS.append("asyncio_run_factory")


@pytest.mark.parametrize("how", ENTRY_POINTS)
def test_real_program(tmp_path, how):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    warn = "error::DeprecationWarning"
    if how == "install" and sys.version_info >= (3, 14):
        # install() sets a policy, deprecated from 3.14: it warns once, by
        # design (test_py_versions checks that); any other deprecation
        # still fails the program.
        warn += ",ignore:'ioloop_c.install' is deprecated:DeprecationWarning"
    env = dict(os.environ, PYTHONWARNINGS=warn)
    proc = subprocess.run(
        [sys.executable, str(script), how],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    # Nothing on stderr: no unclosed-resource warnings, no logged errors.
    assert proc.stderr == ""
    result = json.loads(proc.stdout)
    assert result == {
        "loop": result["loop"],
        "echo": ["HELLO", "LOOP"],
        "subprocess": [0, "desserts"],
        "signal": "SIGUSR1",
        "thread_pool": True,
        "to_thread": 6,
    }
    assert result["loop"].startswith("ioloop_c.")
