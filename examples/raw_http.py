"""A small HTTP server written directly on ioloop_c's IOLoop API.

    python examples/raw_http.py [--port 8888] [--backend epoll]
    curl http://127.0.0.1:8888/          # hello
    curl http://127.0.0.1:8888/stats     # the loop's counters, as JSON

It uses only add_handler / update_handler / remove_handler, add_timeout
and PeriodicCallback: no Tornado, no asyncio streams.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import socket

import ioloop_c

log = logging.getLogger("demo")


class Connection:
    """One keep-alive HTTP/1.1 connection, driven by fd events."""

    def __init__(self, loop: ioloop_c.IOLoop, sock: socket.socket) -> None:
        self.loop = loop
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.idle = loop.add_timeout(loop.time() + 30, self.close)
        loop.add_handler(sock, self.on_events, ioloop_c.READ)

    def on_events(self, sock: socket.socket, events: int) -> None:
        if events & ioloop_c.READ:
            self.on_readable()
        if self.sock is not None and events & ioloop_c.WRITE:
            self.flush()
        if self.sock is not None and events & ioloop_c.ERROR:
            self.close()

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.inbuf += data
        while b"\r\n\r\n" in self.inbuf:
            head, self.inbuf = self.inbuf.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1] if b" " in head else b"/"
            self.respond(path.decode("latin-1"))
        self.flush()

    def respond(self, path: str) -> None:
        if path == "/stats":
            body = json.dumps(self.loop.stats(), indent=1).encode()
            ctype = b"application/json"
        else:
            body = b"Hello from ioloop_c (%s backend)\n" % self.loop.backend.encode()
            ctype = b"text/plain"
        self.outbuf += (
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (ctype, len(body))
        ) + body

    def flush(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        self.outbuf = self.outbuf[sent:]
        want = ioloop_c.READ | (ioloop_c.WRITE if self.outbuf else 0)
        self.loop.update_handler(self.sock, want)

    def close(self) -> None:
        if self.sock is None:
            return
        self.loop.remove_timeout(self.idle)
        self.loop.remove_handler(self.sock)
        self.sock.close()
        self.sock = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--backend", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    loop = ioloop_c.IOLoop(backend=args.backend)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    listener.setblocking(False)

    def on_accept(sock: socket.socket, events: int) -> None:
        for _ in range(64):
            try:
                conn, _addr = sock.accept()
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                raise
            conn.setblocking(False)
            Connection(loop, conn)

    loop.add_handler(listener, on_accept, ioloop_c.READ)
    ioloop_c.PeriodicCallback(
        lambda: log.info("loop stats: %s", loop.stats()), 60_000
    ).start()
    log.info("serving on http://127.0.0.1:%d/ (backend %s)", args.port, loop.backend)
    try:
        loop.start()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        loop.close(all_fds=True)


if __name__ == "__main__":
    main()
