"""The native socket transport: the Python half.

:class:`ioloop_c._core.StreamTransport` (csrc/binding/transport.c) holds
the data path: reads straight from the tick into ``data_received`` or a
``BufferedProtocol``'s buffer, ``write`` / ``writelines`` with a write
queue sent by one ``sendmsg``, flow control, ``pause_reading`` and
``resume_reading``, ``close``, ``abort`` and ``write_eof``.  This subclass
adds what runs once per connection or on errors only: set-up,
``connection_lost``, reports, ``repr``, the ResourceWarning of a transport
dropped open, and the waiter asyncio's ``sendfile`` uses; the parts the
datagram transport (``_datagram.py``) shares are in
:class:`NativeTransportBase`.

The Loop makes these in ``_make_socket_transport``, which asyncio's
``create_connection``, ``create_server``, the Unix forms,
``connect_accepted_socket`` and TLS (``SSLProtocol`` over a socket
transport) all go through.  ``IOLOOP_C_TRANSPORT=python`` in the
environment, or ``loop.native_transport = False``, makes the loop use
asyncio's own Python transport instead.
"""

from __future__ import annotations

import inspect
import os
import socket
import warnings
import weakref
from asyncio import base_events, constants, futures, transports, trsock
from asyncio.log import logger
from typing import TYPE_CHECKING, Any

from . import _core

__all__ = ["NativeTransportBase", "SocketTransport", "TransportTable", "native_by_default"]

# Server._attach() / _detach() take the transport from Python 3.13 on.
_SERVER_TAKES_TRANSPORT = len(inspect.signature(base_events.Server._attach).parameters) > 1


def native_by_default() -> bool:
    """Whether new loops use the native transport (the environment's say)."""
    choice = os.environ.get("IOLOOP_C_TRANSPORT", "native").strip().lower()
    return choice != "python" and _core_type is not None


class TransportTable(dict):  # type: ignore[type-arg]
    """``loop._transports``: fd -> transport, each held weakly, as the
    ``WeakValueDictionary`` asyncio keeps there, for what asyncio asks of
    it (``[fd]``, ``get``, ``in``, ``del``, assignment).  The entries are
    plain weak references with no callback, so registering a transport
    costs one ``weakref.ref`` and nothing runs when it dies; an entry
    whose transport is gone reads as absent and is replaced when its fd
    number comes back.  Native transports register through
    :func:`register`, without the Python-level ``__setitem__``."""

    __slots__ = ()

    def __setitem__(self, fd: int, transport: Any) -> None:
        dict.__setitem__(self, fd, weakref.ref(transport))

    def __getitem__(self, fd: int) -> Any:
        transport = dict.__getitem__(self, fd)()
        if transport is None:
            raise KeyError(fd)
        return transport

    def get(self, fd: int, default: Any = None) -> Any:  # type: ignore[override]
        ref = dict.get(self, fd)
        transport = None if ref is None else ref()
        return default if transport is None else transport

    def __contains__(self, fd: object) -> bool:
        ref = dict.get(self, fd)  # type: ignore[call-overload]
        return ref is not None and ref() is not None

    def __iter__(self) -> Any:
        return iter([fd for fd, ref in dict.items(self) if ref() is not None])

    def __len__(self) -> int:
        return sum(1 for ref in dict.values(self) if ref() is not None)

    def keys(self) -> Any:  # type: ignore[override]
        return list(self)

    def values(self) -> Any:  # type: ignore[override]
        return [t for t in (ref() for ref in dict.values(self)) if t is not None]

    def items(self) -> Any:  # type: ignore[override]
        pairs = ((fd, ref()) for fd, ref in dict.items(self))
        return [(fd, t) for fd, t in pairs if t is not None]


_dict_setitem = dict.__setitem__
_weakref = weakref.ref


def register(loop: Any, fd: int, transport: Any) -> None:
    """``loop._transports[fd] = transport``, fast for a TransportTable."""
    table = loop._transports
    if type(table) is TransportTable:
        _dict_setitem(table, fd, _weakref(transport))
    else:
        table[fd] = transport


def _server_attach(server: Any, transport: Any) -> None:
    if _SERVER_TAKES_TRANSPORT:
        server._attach(transport)
    else:
        server._attach()


def _server_detach(server: Any, transport: Any) -> None:
    if _SERVER_TAKES_TRANSPORT:
        server._detach(transport)
    else:
        server._detach()


class NativeTransportBase:
    """What the native stream and datagram transports share off the data
    path: the error reports, the end of ``connection_lost``, ``repr`` and
    the ResourceWarning of a transport dropped open.

    A mixin, listed after the C type: the C type stays next in the MRO,
    so the check each of its methods makes of ``self`` (a walk of the MRO
    up to it) costs what it did, and asyncio's transport classes define
    none of these names (a test checks).  The C types keep the shared life
    cycle itself (csrc/binding/transport_life.c).  Subclasses say what is
    theirs in :meth:`_after_connection_lost` and :meth:`_after_unclosed`.
    """

    __slots__ = ()

    # What the C types provide (member descriptors, methods).  Only
    # declared: defined here, they would hide the C types' own.
    _sock: Any
    _sock_fd: int
    _loop: Any
    _protocol: Any
    _protocol_connected: bool
    _closing: bool
    _read_polling: bool
    _write_polling: bool
    if TYPE_CHECKING:

        def get_write_buffer_size(self) -> int: ...
        def _force_close(self, exc: BaseException | None) -> None: ...
        def _release(self) -> None: ...
        def _inet_sockname(self) -> Any: ...

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            info.append("read=polling" if self._read_polling else "read=idle")
            state = "polling" if self._write_polling else "idle"
            info.append(f"write=<{state}, bufsize={self.get_write_buffer_size()}>")
        return "<{}>".format(" ".join(info))

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()
            self._after_unclosed()

    def _after_unclosed(self) -> None:
        """A transport dropped open: its socket was just closed."""

    def _report_protocol_error(self, exc: BaseException, message: str) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, OSError):
            loop = self._loop
            if loop is not None and loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._report_protocol_error(exc, message)
        self._force_close(exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected and self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            self._after_connection_lost()

    def _after_connection_lost(self) -> None:
        """After ``connection_lost()``, whether it raised or not: release
        the socket, the protocol and the loop."""
        self._release()

    def _warn_lost_write(self) -> None:
        logger.warning("socket.send() raised exception.")


_core_type: Any = getattr(_core, "StreamTransport", None)
# Extra-info names a native transport fills in on first ask.
_LAZY_EXTRA = ("socket", "sockname")
SocketTransport: Any = None

if _core_type is not None:

    class SocketTransport(_core_type, NativeTransportBase):  # type: ignore[no-redef]
        """An asyncio socket transport whose data path is native."""

        _start_tls_compatible = True
        #: The socket, once closed, if extra["socket"] was never asked for.
        _closed_sock: Any = None
        _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
        max_size = 256 * 1024

        def __init__(
            self,
            loop: Any,
            sock: socket.socket,
            protocol: Any,
            waiter: Any = None,
            extra: dict[str, Any] | None = None,
            server: Any = None,
            context: Any = None,
            nodelay: bool = True,
        ) -> None:
            transports.BaseTransport.__init__(self, extra)
            # "socket" and "sockname" are made on first ask (or at the
            # latest when the socket closes): an idle connection does not
            # carry them.  peername is taken now, as asyncio does, since
            # a peer that resets makes getpeername() fail later.
            if "peername" not in self._extra:
                try:
                    self._extra["peername"] = sock.getpeername()
                except OSError:
                    self._extra["peername"] = None
            self._native_init(loop, sock, protocol, context)
            try:
                if server is not None:
                    self._server = server
                    _server_attach(server, self)
                register(loop, self._sock_fd, self)
                # Small writes go out without waiting for the peer's ACK.
                # (The native accept loop has set it already: nodelay=False.)
                if nodelay:
                    base_events._set_nodelay(sock)
                kw = {} if context is None else {"context": context}
                loop.call_soon(protocol.connection_made, self, **kw)
                # Reading starts only once connection_made() has run.
                loop.call_soon(self._start_reading, **kw)
                if waiter is not None:
                    loop.call_soon(futures._set_result_unless_cancelled, waiter, None, **kw)
            except BaseException:
                self._abandon()
                raise

        def _abandon(self) -> None:
            """Undo a making that failed part way (here or in the native
            accept loop's, transport_accept.c): off the loop's table and
            the server (whose ``wait_closed()`` would otherwise wait for it
            on 3.12+), the socket closed, loop and protocol let go."""
            loop = self._loop
            if loop is not None:
                table = loop._transports
                fd = self._sock_fd
                if table.get(fd) is self:
                    del table[fd]
            server = self._server
            if server is not None:
                self._server = None
                _server_detach(server, self)
            self._release()

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            """Get optional transport information (asyncio's names)."""
            extra = self._extra
            if name in extra:
                return extra[name]
            if name in _LAZY_EXTRA:
                if self._sock is not None:
                    return self._lazy_extra(name)
                if name == "socket" and self._closed_sock is not None:
                    return self._lazy_extra(name, self._closed_sock)
            return default

        def _lazy_extra(self, name: str, sock: Any = None) -> Any:
            if sock is None:
                sock = self._sock
            if name == "socket":
                value: Any = trsock.TransportSocket(sock)
            else:
                # IPv4 straight from the fd; anything else, or a socket
                # object swapped in, is asked itself.
                value = self._inet_sockname() if type(sock) is socket.socket else None
                if value is None:
                    try:
                        value = sock.getsockname()
                    except OSError:
                        value = None
            self._extra[name] = value
            return value

        def _after_unclosed(self) -> None:
            server = self._server
            if server is not None and _SERVER_TAKES_TRANSPORT:
                self._server = None
                server._detach(self)

        def _after_connection_lost(self) -> None:
            server = self._server
            self._server = None
            try:
                if self._sock is not None:
                    # What is asked after the close is what was true while
                    # open: the name now, while there is one; the socket
                    # object (closed by then, as asyncio's would be) is
                    # wrapped only if asked for.
                    if "sockname" not in self._extra:
                        self._lazy_extra("sockname")
                    if "socket" not in self._extra:
                        self._closed_sock = self._sock
                self._release()
            finally:
                if server is not None:
                    _server_detach(server, self)
                waiter = self._empty_waiter
                if waiter is not None and not waiter.done():
                    waiter.set_exception(ConnectionError("Connection is closed by peer"))

        def _make_empty_waiter(self) -> Any:
            if self._empty_waiter is not None:
                raise RuntimeError("Empty waiter is already set")
            waiter = self._loop.create_future()
            self._empty_waiter = waiter
            if not self.get_write_buffer_size():
                waiter.set_result(None)
            return waiter

        def _reset_empty_waiter(self) -> None:
            self._empty_waiter = None

        @property
        def _read_ready_cb(self) -> Any:
            """asyncio's own transport keeps its read step here (3.12+) and
            clears it when the transport closes; code written against that
            transport (CPython's test_ssl) reads it to tell whether the
            transport is closing.  Ours reads from the tick, so when open
            this is the nearest native step: (re)start reading."""
            return None if self.is_closing() else self._start_reading

    # The native accept loop makes its connections' transports in C while
    # this class and its __init__ are these (transport_accept.c repeats
    # __init__'s steps for an accepted connection; a subclass, or an
    # __init__ replaced later, is called as before).
    _core._accept_configure(
        SocketTransport,
        SocketTransport.__dict__["__init__"],
        TransportTable,
        _SERVER_TAKES_TRANSPORT,
    )


def _configure_streams() -> bool:
    """Let the native transport run asyncio's stream read step in C
    (transport_stream.c): StreamReaderProtocol.data_received() and the
    StreamReader.feed_data() it calls, as asyncio 3.11 to 3.15 write them.
    Registered only when the four functions are asyncio's own (not
    replaced before ioloop_c was imported) on a Python whose streams.py
    has been read for this; a later replacement is seen at each read."""
    import sys
    from asyncio import streams

    if sys.version_info >= (3, 16):
        return False
    proto, reader = streams.StreamReaderProtocol, streams.StreamReader
    funcs = (
        proto.__dict__.get("data_received"),
        proto.__dict__.get("_stream_reader"),
        reader.__dict__.get("feed_data"),
        reader.__dict__.get("_wakeup_waiter"),
    )
    for fn in funcs:
        code = getattr(fn.fget if isinstance(fn, property) else fn, "__code__", None)
        if code is None or not code.co_filename.endswith(os.path.join("asyncio", "streams.py")):
            return False
    _core._streams_configure(proto, reader, *funcs)
    return True


_STREAMS_NATIVE = _configure_streams()
