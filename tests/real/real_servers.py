"""Private PostgreSQL and Redis servers for the real-server tests.

Each server is started from Debian's binaries into a fresh temporary
directory, listening on a free port of 127.0.0.1 (and, for PostgreSQL, a
unix socket in that directory), and stopped and removed afterwards.  A
server already running somewhere is never touched.

PostgreSQL refuses to run as root, so when we are root the cluster belongs
to an unprivileged user: Debian's ``postgres`` account when it exists,
otherwise one made here with useradd (``ioloopc-pg``).

Run as a program, this module starts both servers, exports their addresses
as ``IOLOOP_C_PG_DSN`` and ``IOLOOP_C_REDIS_URL`` and runs a command while
they are up, so that a run elsewhere (the sid chroot, which shares this
host's network but has no server binaries) can use them::

    python tests/real/real_servers.py -- tools/sid_env.sh run make ...
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger("ioloop_c.tests.real")

PG_USER_FALLBACK = "ioloopc-pg"
# Enough backends for the many-connections test (and asyncpg's pools).
PG_MAX_CONNECTIONS = 400


class ServerUnavailable(Exception):
    """The server's binaries are not installed on this host."""


@dataclass
class Server:
    """A running server: how to reach it, and its log for error reports."""

    url: str
    port: int
    logfile: str


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _wait_port(port: int, proc: subprocess.Popen | None, logfile: str,
               timeout: float = 30.0) -> None:
    """Wait until something accepts on 127.0.0.1:port, or fail."""
    give_up = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode} before listening on "
                f"port {port}; log:\n{_tail(logfile)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > give_up:
                raise RuntimeError(
                    f"nothing listens on port {port} after {timeout} s; "
                    f"log:\n{_tail(logfile)}") from None
            time.sleep(0.05)


# --- PostgreSQL -----------------------------------------------------------

def pg_bindir() -> str:
    """The directory holding initdb, pg_ctl and postgres."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True,
                             text=True, check=False).stdout.strip()
        if out and os.path.exists(os.path.join(out, "initdb")):
            return out
    # Debian keeps them out of PATH, one directory per major version.
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.path.exists(os.path.join(bindir, "initdb")):
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    raise ServerUnavailable(
        "PostgreSQL is not installed (no initdb; Debian package "
        "`postgresql`, which `make real-servers` installs when root)")


def _pg_owner() -> str | None:
    """The unprivileged user to own the cluster when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", PG_USER_FALLBACK):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", PG_USER_FALLBACK], check=True)
    return PG_USER_FALLBACK


@contextlib.contextmanager
def postgres() -> Iterator[Server]:
    """A fresh PostgreSQL cluster, trust authentication, superuser
    ``postgres``, database ``postgres``; removed on exit."""
    bindir = pg_bindir()
    owner = _pg_owner()
    top = tempfile.mkdtemp(prefix="ioloop_c-pg-")
    if owner is not None:
        info = pwd.getpwnam(owner)
        os.chown(top, info.pw_uid, info.pw_gid)
    datadir = os.path.join(top, "data")
    logfile = os.path.join(top, "server.log")
    user = {"user": owner} if owner else {}
    proc = None
    try:
        subprocess.run(
            [os.path.join(bindir, "initdb"), "-D", datadir, "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-locale"],
            check=True, capture_output=True, cwd=top, **user)
        port = free_port()
        opts = {
            "listen_addresses": "127.0.0.1", "port": str(port),
            "unix_socket_directories": top,
            "max_connections": str(PG_MAX_CONNECTIONS),
            "shared_buffers": "32MB",
            # Throwaway data: durability only costs time here.
            "fsync": "off", "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        args = [os.path.join(bindir, "postgres"), "-D", datadir]
        for key, value in opts.items():
            args += ["-c", f"{key}={value}"]
        with open(logfile, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=top, **user)
        _wait_port(port, proc, logfile)
        # Listening is not yet accepting queries: wait for the socket file
        # and the end of start-up.
        deadline = time.monotonic() + 30
        while "ready to accept connections" not in _tail(logfile, 200):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not become ready; log:\n"
                                   f"{_tail(logfile)}")
            time.sleep(0.05)
        log.info("PostgreSQL on 127.0.0.1:%d and %s", port, top)
        yield Server(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                     port, logfile)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: smart shutdown
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)


# --- Redis ----------------------------------------------------------------

def redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise ServerUnavailable(
            "Redis is not installed (no redis-server; Debian package "
            "`redis-server`, which `make real-servers` installs when root)")
    return found


@contextlib.contextmanager
def redis() -> Iterator[Server]:
    """A fresh Redis without persistence, in its own directory."""
    binary = redis_binary()
    top = tempfile.mkdtemp(prefix="ioloop_c-redis-")
    logfile = os.path.join(top, "server.log")
    port = free_port()
    proc = None
    try:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", top,
                "--daemonize", "no", "--maxclients", "4000",
                "--logfile", logfile]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, cwd=top)
        _wait_port(port, proc, logfile)
        log.info("Redis on 127.0.0.1:%d", port)
        yield Server(f"redis://127.0.0.1:{port}/0", port, logfile)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)


def main(argv: list[str]) -> int:
    """Start both servers, run argv with their addresses in the
    environment, stop them; the command's exit status is ours."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: real_servers.py -- CMD [ARG...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="real_servers: %(message)s")
    with postgres() as pg, redis() as rd:
        env = dict(os.environ, IOLOOP_C_PG_DSN=pg.url,
                   IOLOOP_C_REDIS_URL=rd.url)
        log.info("IOLOOP_C_PG_DSN=%s IOLOOP_C_REDIS_URL=%s", pg.url, rd.url)
        return subprocess.run(argv, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
