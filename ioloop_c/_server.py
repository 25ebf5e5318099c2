"""The native accept loop: the Python half.

asyncio's own :class:`asyncio.Server` stays what users hold (``sockets``,
``serve_forever``, ``start_serving``, ``close``, ``wait_closed``,
``close_clients`` / ``abort_clients``, ``async with``).  It reaches the
loop through two private methods, ``_start_serving(...)`` and
``_stop_serving(sock)``, which :class:`ioloop_c.Loop` overrides with
:func:`start` and :func:`stop` here.

:class:`ioloop_c._core.Listener` (csrc/binding/server.c) watches the
listening socket from the tick and accepts a batch per readiness; for
each connection it calls ``protocol_factory()`` and makes the native
transport with the server attached.  :class:`Hooks` holds what runs
rarely: error reports, asyncio's own ``_accept_connection2`` for TLS (and
for every connection in debug mode, where asyncio logs each), and the
pause after an fd shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM), after which
accepting resumes ``constants.ACCEPT_RETRY_DELAY`` seconds later.
"""

from __future__ import annotations

import contextvars
import socket
from asyncio import constants, trsock
from asyncio.log import logger
from typing import Any

from . import _compat, _core, _transport

__all__ = ["Hooks", "start", "stop"]

Listener: Any = getattr(_core, "Listener", None)

# 3.15 runs each accepted connection in a copy of the server's context and
# passes it on to the transport, whose callbacks all run in it; earlier
# versions make the connection in a copy of the context current at
# _start_serving() time, and each of its callbacks runs in a copy of that.
_PASS_CONTEXT = _compat.PY >= (3, 15)


class Hooks:
    """What a Listener calls into Python for: reports, TLS, the retry."""

    __slots__ = (
        "loop",
        "protocol_factory",
        "sslcontext",
        "server",
        "ssl_handshake_timeout",
        "ssl_shutdown_timeout",
        "context",
        "retry",
    )

    def __init__(
        self,
        loop: Any,
        protocol_factory: Any,
        sslcontext: Any,
        server: Any,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
        context: Any,
    ) -> None:
        self.loop = loop
        self.protocol_factory = protocol_factory
        self.sslcontext = sslcontext
        self.server = server
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.ssl_shutdown_timeout = ssl_shutdown_timeout
        self.context = context
        self.retry: Any = None

    def accept_slow(self, listener: Any, conn: socket.socket, addr: Any) -> None:
        """One connection the asyncio way: logged in debug mode, then made
        (TLS included) by asyncio's _accept_connection2 in a task."""
        loop = self.loop
        if addr is None:
            try:
                addr = conn.getpeername()
            except OSError:
                addr = None
        if loop.get_debug():
            logger.debug("%r got a new connection from %r: %r", self.server, addr, conn)
        extra = {"peername": addr}
        args = (
            self.protocol_factory,
            conn,
            extra,
            self.sslcontext,
            self.server,
            self.ssl_handshake_timeout,
            self.ssl_shutdown_timeout,
        )
        if _PASS_CONTEXT and self.context is not None:
            ctx = self.context.copy()
            loop.create_task(loop._accept_connection2(*args, context=ctx), context=ctx)
        else:
            loop.create_task(loop._accept_connection2(*args))

    def factory_failed(self, listener: Any, exc: BaseException, protocol: Any) -> None:
        """protocol_factory() or the transport failed for one connection:
        reported (asyncio reports it in debug mode only), and the server
        goes on serving."""
        context = {
            "message": "Error on transport creation for incoming connection",
            "exception": exc,
            "socket": trsock.TransportSocket(listener.sock),
        }
        if protocol is not None:
            context["protocol"] = protocol
        self.loop.call_exception_handler(context)

    def accept_failed(self, listener: Any, exc: BaseException, _: Any) -> None:
        """accept() failed for a reason asyncio's loop would log."""
        self.loop.call_exception_handler(
            {
                "message": "Error accepting a connection",
                "exception": exc,
                "socket": trsock.TransportSocket(listener.sock),
            }
        )

    def out_of_resources(self, listener: Any, exc: BaseException, _: Any) -> None:
        """accept() ran out of fds or memory; the listener has stopped
        watching.  Report as asyncio does and try again later."""
        self.loop.call_exception_handler(
            {
                "message": "socket.accept() out of system resource",
                "exception": exc,
                "socket": trsock.TransportSocket(listener.sock),
            }
        )
        self.cancel_retry()
        self.retry = self.loop.call_later(
            constants.ACCEPT_RETRY_DELAY, self._resume, listener
        )

    def _resume(self, listener: Any) -> None:
        self.retry = None
        if not listener.closed:
            listener.start()

    def cancel_retry(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None


def usable(loop: Any, sock: Any) -> bool:
    """Whether the native accept loop serves ``sock`` on ``loop``."""
    return Listener is not None and loop._native_for(sock)


def start(
    loop: Any,
    protocol_factory: Any,
    sock: socket.socket,
    sslcontext: Any,
    server: Any,
    backlog: int,
    ssl_handshake_timeout: Any,
    ssl_shutdown_timeout: Any,
    context: Any,
) -> None:
    """Serve ``sock`` natively (the loop's ``_start_serving``)."""
    listeners = loop._listeners
    old = listeners.pop(sock, None)
    if old is not None:
        _close(old)
    ctx = context.copy() if context is not None else contextvars.copy_context()
    hooks = Hooks(
        loop,
        protocol_factory,
        sslcontext,
        server,
        ssl_handshake_timeout,
        ssl_shutdown_timeout,
        context,
    )
    listener = Listener(
        loop,
        sock,
        protocol_factory,
        server,
        backlog,
        ctx,
        hooks,
        _transport.SocketTransport,
        bool(sslcontext),
        _PASS_CONTEXT,
    )
    listener.start()
    listeners[sock] = (listener, hooks)


def _close(entry: tuple[Any, Hooks]) -> None:
    listener, hooks = entry
    hooks.cancel_retry()
    listener.close()


def stop(loop: Any, sock: Any) -> bool:
    """Stop serving ``sock`` natively (the socket stays open: the loop's
    ``_stop_serving`` closes it); False if the native accept loop was not
    serving it."""
    entry = loop._listeners.pop(sock, None)
    if entry is None:
        return False
    _close(entry)
    return True
