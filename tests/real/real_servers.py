"""Private PostgreSQL and Redis servers for the real-server tests.

Each server is started from Debian's binaries into a fresh temporary
directory, listening on a free port of 127.0.0.1 (and, for PostgreSQL, a
unix socket in that directory), and stopped and removed afterwards.  A
server already running somewhere is never touched.

PostgreSQL refuses to run as root, so when we are root the cluster belongs
to an unprivileged user: Debian's ``postgres`` account when it exists,
otherwise one made here with useradd (``ioloopc-pg``).

Run as a program, this module starts both servers, exports their addresses
(``IOLOOP_C_PG_DSN``, ``IOLOOP_C_REDIS_URL`` over TCP, ``IOLOOP_C_PG_UNIX_DSN``,
``IOLOOP_C_REDIS_UNIX_URL`` over their unix sockets, made in the repository's
build/) and runs a command while they are up, so that a run elsewhere (the
sid chroot, which shares this host's network and sees the repository at the
same path, but has no server binaries) can use them::

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
    """A running server: its address over TCP (``url``) and over its unix
    socket (``unix_url``), and its log for error reports."""

    url: str
    unix_url: str
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


def _private_dir(prefix: str, parent: str | None, owner: str | None) -> str:
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    if owner is not None:
        info = pwd.getpwnam(owner)
        os.chown(path, info.pw_uid, info.pw_gid)
    return path


@contextlib.contextmanager
def postgres(socket_parent: str | None = None) -> Iterator[Server]:
    """A fresh PostgreSQL cluster, trust authentication, superuser
    ``postgres``, database ``postgres``; removed on exit.  Its unix socket
    goes in a new directory under ``socket_parent`` (default: beside the
    data)."""
    bindir = pg_bindir()
    owner = _pg_owner()
    top = _private_dir("ioloop_c-pg-", None, owner)
    sockdir = (top if socket_parent is None else
               _private_dir("pg-", socket_parent, owner))
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
            "unix_socket_directories": sockdir,
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
                     f"postgresql://postgres@/postgres?host={sockdir}"
                     f"&port={port}", port, logfile)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: smart shutdown
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)
        if sockdir != top:
            shutil.rmtree(sockdir, ignore_errors=True)


# --- Redis ----------------------------------------------------------------

def redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise ServerUnavailable(
            "Redis is not installed (no redis-server; Debian package "
            "`redis-server`, which `make real-servers` installs when root)")
    return found


@contextlib.contextmanager
def redis(socket_parent: str | None = None) -> Iterator[Server]:
    """A fresh Redis without persistence, in its own directory, with a
    unix socket in a new directory under ``socket_parent`` (default: that
    directory)."""
    binary = redis_binary()
    top = tempfile.mkdtemp(prefix="ioloop_c-redis-")
    sockdir = (top if socket_parent is None else
               tempfile.mkdtemp(prefix="redis-", dir=socket_parent))
    sock = os.path.join(sockdir, "redis.sock")
    logfile = os.path.join(top, "server.log")
    port = free_port()
    proc = None
    try:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", top,
                "--unixsocket", sock, "--unixsocketperm", "700",
                "--daemonize", "no", "--maxclients", "4000",
                "--logfile", logfile]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, cwd=top)
        _wait_port(port, proc, logfile)
        log.info("Redis on 127.0.0.1:%d", port)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis made no socket {sock}; log:\n"
                                   f"{_tail(logfile)}")
            time.sleep(0.05)
        yield Server(f"redis://127.0.0.1:{port}/0", f"unix://{sock}?db=0",
                     port, logfile)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)
        if sockdir != top:
            shutil.rmtree(sockdir, ignore_errors=True)


ENV_NAMES = ("IOLOOP_C_PG_DSN", "IOLOOP_C_PG_UNIX_DSN",
             "IOLOOP_C_REDIS_URL", "IOLOOP_C_REDIS_UNIX_URL")


def main(argv: list[str]) -> int:
    """Start both servers, run the command with their addresses in the
    environment, stop them; the command's exit status is ours."""
    import argparse

    parser = argparse.ArgumentParser(
        description="Run CMD with private PostgreSQL and Redis servers up; "
        "their addresses are in " + ", ".join(ENV_NAMES) + ".")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    parser.add_argument(
        "--socket-dir", default=os.path.join(repo, "build"),
        help="where the unix sockets go (default: the repository's build/, "
        "which the sid chroot sees at the same path)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    logging.basicConfig(level=logging.INFO, format="real_servers: %(message)s")
    os.makedirs(args.socket_dir, exist_ok=True)
    with postgres(args.socket_dir) as pg, redis(args.socket_dir) as rd:
        urls = dict(zip(ENV_NAMES, (pg.url, pg.unix_url, rd.url,
                                    rd.unix_url), strict=True))
        for name, url in urls.items():
            log.info("%s=%s", name, url)
        return subprocess.run(cmd, env=dict(os.environ, **urls),
                              check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
