"""Tornado's ``IOStream`` on ioloop_c's native stream core.

:class:`IOStream` subclasses ``tornado.iostream.IOStream`` (so every
``isinstance`` check holds) and the C type ``ioloop_c._core.IOStreamCore``,
which holds the read buffer (one contiguous block, read into in place,
delimiters found with ``memmem``), ``read_into()``'s direct reads and the
write queue (the caller's objects, sent with one ``sendmsg``), and runs
BaseIOStream's event path and ``write()`` in C, step for step as Tornado
writes them.  Everything else is Tornado's own code, and the rare turns of
the event path (errors, a full buffer, an unsatisfiable read) call the
helpers below, which log and close as Tornado does; so the order in which
futures resolve and callbacks run, the errors raised and the ``error``
attribute are Tornado's.

When the current IOLoop runs on an ioloop_c loop, ``IOStream(...)`` from
``tornado.iostream`` (which is what ``TCPServer``, ``HTTPServer``,
``TCPClient``, ``simple_httpclient`` and websockets construct) gives this
class: see :func:`patch`.  ``SSLIOStream`` stays Tornado's own: its reads
and writes go through ``ssl.SSLSocket``, whose buffering the native recv
cannot see into, so the stock class is the correct one there.
``IOLOOP_C_IOSTREAM=stock`` in the environment, or
:func:`use_native_iostream(False) <use_native_iostream>`, turns the
substitution off.
"""

from __future__ import annotations

import _socket as _csocket
import asyncio
import os
import re
import socket as _socket
import threading
from types import MethodType as _MethodType
from typing import Any

from tornado import ioloop as _tioloop
from tornado import iostream as _tiostream
from tornado.concurrent import Future
from tornado.log import gen_log

from . import _core
from ._core import IOStreamCore

__all__ = ["IOStream", "patch", "use_native_iostream"]

_StockIOStream = _tiostream.IOStream
StreamBufferFullError = _tiostream.StreamBufferFullError
UnsatisfiableReadError = _tiostream.UnsatisfiableReadError
StreamClosedError = _tiostream.StreamClosedError


def _retrieve(future: Future[None]) -> None:
    # Write futures mark their exception as retrieved, as Tornado's do.
    future.exception()


#: The steps of BaseIOStream's event path whose Tornado versions work on
#: the native buffers too (through the attributes the C type keeps).
_GENERIC_STEPS = (
    "_handle_read",
    "_read_to_buffer_loop",
    "_find_read_pos",
    "_read_from_buffer",
    "_maybe_add_error_listener",
    "_add_io_state",
)

#: Compiled patterns of read_until_regex, by the pattern given.
_regex_cache: dict[Any, re.Pattern[Any]] = {}


class _WriteBufferView:
    """What ``stream._write_buffer`` gives: the length of the native write
    queue, and ``clear()``.  Holds no view of queued data."""

    __slots__ = ("_stream",)

    def __init__(self, stream: IOStream) -> None:
        self._stream = stream

    def __len__(self) -> int:
        return self._stream._c_wsize

    def __bool__(self) -> bool:
        return self._stream._c_wsize > 0

    def clear(self) -> None:
        self._stream._c_clear_writes()


class _ReadFromFd:
    """``read_from_fd`` on the native class: Tornado's own method, unless
    an instance replaces it (Tornado's tests do), which sends that
    stream's reads through the replacement instead of the native recv."""

    def __get__(self, obj: Any, cls: Any = None) -> Any:
        if obj is None:
            return _StockIOStream.read_from_fd
        replaced = obj.__dict__.get("_c_read_from_fd")
        if replaced is not None:
            return replaced
        return _MethodType(_StockIOStream.read_from_fd, obj)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_c_read_from_fd"] = value
        obj._c_native_recv = 0

    def __delete__(self, obj: Any) -> None:
        obj.__dict__.pop("_c_read_from_fd", None)
        obj._c_native_recv = int(type(obj).read_from_fd is _StockIOStream.read_from_fd)


class IOStream(_StockIOStream, IOStreamCore):
    """A ``tornado.iostream.IOStream`` whose buffers, socket calls and
    event path are native.  Same constructor, same behaviour.

    BaseIOStream's event path (``_handle_events``, ``_handle_read``,
    ``_read_to_buffer_loop``, ``_find_read_pos``, ``_read_from_buffer``,
    ``_finish_read``, ``_maybe_add_error_listener``, ``_add_io_state``,
    ``_handle_write``) and ``write`` are the C type's, step for step;
    the helpers below are the turns it leaves to Python.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> IOStream:
        return IOStreamCore.__new__(cls)

    def __init__(self, socket: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(socket, *args, **kwargs)
        self._c_set_fd(socket.fileno())
        self._c_native_recv = int(type(self).read_from_fd is _StockIOStream.read_from_fd)

    read_from_fd = _ReadFromFd()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass may override any step of the event path, so it takes
        # Tornado's own Python for the steps that call the others (the C
        # _handle_events already does: it serves only this class), and
        # every override is reached.  The C steps that stay (_finish_read,
        # _handle_write, write) are the ones Tornado's versions of would not
        # work on the native buffers.
        super().__init_subclass__(**kwargs)
        for name in _GENERIC_STEPS:
            if name not in cls.__dict__:
                setattr(cls, name, getattr(_tiostream.BaseIOStream, name))

    _handle_events = IOStreamCore._c_handle_events  # type: ignore[assignment]
    _handle_read = IOStreamCore._c_handle_read
    _handle_write = IOStreamCore._c_handle_write
    _read_to_buffer_loop = IOStreamCore._c_read_to_buffer_loop
    _find_read_pos = IOStreamCore._c_find_read_pos
    _read_from_buffer = IOStreamCore._c_read_from_buffer  # type: ignore[assignment]
    _finish_read = IOStreamCore._c_finish_read  # type: ignore[assignment]
    _maybe_add_error_listener = IOStreamCore._c_maybe_add_error_listener
    _add_io_state = IOStreamCore._c_add_io_state  # type: ignore[assignment]
    # Tornado's, in C: HTTP1Connection calls both on every request, and
    # Tornado's set_nodelay() spends most of its time building the
    # socket's family as an AddressFamily.
    set_close_callback = IOStreamCore._c_set_close_callback  # type: ignore[assignment]
    set_nodelay = IOStreamCore._c_set_nodelay  # type: ignore[assignment]

    # -- buffers Tornado's own methods look at -----------------------------

    @property  # type: ignore[override]
    def _write_buffer(self) -> _WriteBufferView:
        return _WriteBufferView(self)

    @_write_buffer.setter
    def _write_buffer(self, value: Any) -> None:
        # BaseIOStream.__init__ sets a fresh _StreamBuffer and
        # _signal_closed sets None (after clear()): the native queue is
        # the buffer either way.
        if value is None:
            self._c_clear_writes()

    def writing(self) -> bool:
        return self._c_wsize > 0

    def _consume(self, loc: int) -> bytes:
        return self._c_take(loc)

    # -- the turns the C event path leaves to Python ------------------------

    def _read_to_buffer(self) -> int | None:
        # Tornado's _read_to_buffer, with read_from_fd() and the append
        # as one native recv (unless read_from_fd was replaced).
        try:
            if self._c_native_recv:
                bytes_read = self._c_recv(self.read_chunk_size)
            else:
                bytes_read = self._read_via_read_from_fd()
        except OSError as e:
            self._c_recv_failed(e)
            return None
        if bytes_read is None:
            return 0
        if bytes_read == 0:
            self.close()
            return 0
        if self._read_buffer_size > self.max_buffer_size:
            self._c_buffer_full()
        return bytes_read

    def _read_via_read_from_fd(self) -> int | None:
        if self._user_read_buffer:
            with (
                memoryview(self._read_buffer) as m,
                m[self._read_buffer_size :] as view,
            ):
                n: int | None = self.read_from_fd(view)
            if n:
                self._c_append(n)
            return n
        buf = bytearray(self.read_chunk_size)
        n = self.read_from_fd(buf)
        if n:
            with memoryview(buf) as m, m[:n] as view:
                self._c_append(view)
        return n

    def _c_recv_failed(self, e: OSError) -> None:
        # A reset is a close, not an error (less log spam); the exception
        # stays available as self.error.
        self.close(exc_info=e)
        if self._is_connreset(e):
            return None
        raise e

    def _c_buffer_full(self) -> None:
        gen_log.error("Reached maximum read buffer size")
        buffer_full_error = StreamBufferFullError("Reached maximum read buffer size")
        self.close(exc_info=buffer_full_error)
        raise buffer_full_error

    def _c_read_failed(self, e: BaseException) -> None:
        # BaseIOStream._handle_read's except clauses.
        if isinstance(e, (UnsatisfiableReadError, asyncio.CancelledError)) or not isinstance(
            e, Exception
        ):
            raise e
        gen_log.warning("error on read: %s" % e)
        self.close(exc_info=e)

    def _c_write_failed(self, e: OSError) -> None:
        # Broken pipes are usually resets: not logged, as in Tornado.
        if not self._is_connreset(e):
            gen_log.warning("Write error on %s: %s", self.fileno(), e)
        self.close(exc_info=e)

    def _c_error_event(self) -> None:
        # A queued read or write callback may still run before the close.
        self.error = self.get_fd_error()
        self.io_loop.add_callback(self.close)

    def _c_event_failed(self, e: BaseException) -> None:
        # BaseIOStream._handle_events's except clauses.
        if isinstance(e, UnsatisfiableReadError):
            gen_log.info("Unsatisfiable read, closing connection: %s" % e)
            self.close(exc_info=e)
            return
        if isinstance(e, Exception):
            gen_log.error("Uncaught exception, closing connection.", exc_info=e)
            self.close(exc_info=e)
        raise e

    def _find_read_pos_regex(self) -> int | None:
        # The regex part of _find_read_pos, over the unread bytes in place.
        size = self._read_buffer_size
        regex = self._read_regex
        if size and regex is not None:
            with memoryview(self) as view:
                m = regex.search(view)
                loc = m.end() if m is not None else -1
                del m
            if loc != -1:
                self._check_max_bytes(regex, loc)
                return loc
            self._check_max_bytes(regex, size)
        return None

    # -- reads and writes that start here ---------------------------------

    def read_until_regex(self, regex: bytes, max_bytes: int | None = None) -> Any:
        # Tornado's, with the compiled pattern looked up in a small dict of
        # its own before re.compile's cache (a measurable cost per HTTP
        # request, which reads its headers with a regex).
        future = self._start_read()
        compiled = _regex_cache.get(regex)
        if compiled is None:
            compiled = re.compile(regex)
            if len(_regex_cache) < 64:
                _regex_cache[regex] = compiled
        self._read_regex = compiled
        self._read_max_bytes = max_bytes
        try:
            self._try_inline_read()
        except UnsatisfiableReadError as e:
            gen_log.info("Unsatisfiable read, closing connection: %s" % e)
            self.close(exc_info=e)
            return future
        except:
            future.add_done_callback(lambda f: f.exception())
            raise
        return future

    def read_into(self, buf: bytearray, partial: bool = False) -> Any:
        with memoryview(buf) as view:
            if view.readonly:
                raise TypeError(
                    f"read_into() needs a writable buffer, not {type(buf).__name__!r}"
                )
        future = self._start_read()
        # What is buffered goes first; later reads land in buf itself.
        self._c_user_begin(buf)
        self._read_bytes = len(buf)
        self._read_partial = partial
        try:
            self._try_inline_read()
        except:
            future.add_done_callback(lambda f: f.exception())
            raise
        return future

    write = IOStreamCore._c_write  # type: ignore[assignment]

    def _c_write_full(self) -> None:
        raise StreamBufferFullError("Reached maximum write buffer size")

    # -- closing ----------------------------------------------------------

    def close_fd(self) -> None:
        self._c_set_fd(-1)
        super().close_fd()

    def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        future = super().start_tls(*args, **kwargs)
        # The socket belongs to the SSLIOStream now.
        self._c_set_fd(-1)
        return future


_core._iostream_configure(
    IOStream,
    _tiostream.BaseIOStream._handle_events,
    _tiostream.BaseIOStream._add_io_state,
    Future,
    _retrieve,
    _socket.socket,
    _csocket.socket.__dict__["family"],
    _StockIOStream.set_nodelay,
)


# -- getting it used ------------------------------------------------------

_lock = threading.Lock()
_enabled = os.environ.get("IOLOOP_C_IOSTREAM", "native").strip().lower() != "stock"
_patched = False


def _native_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    if cls is _StockIOStream and _enabled:
        io_loop = _tioloop.IOLoop.current()
        if getattr(io_loop, "_native", None) is not None:
            return IOStreamCore.__new__(IOStream)
    return object.__new__(cls)


def patch() -> None:
    """Make ``tornado.iostream.IOStream(...)`` give :class:`IOStream` while
    the current IOLoop runs on an ioloop_c loop (and the stock class
    otherwise, and always for its subclasses such as ``SSLIOStream``).
    Called when the shim binds a Tornado IOLoop to a native loop.
    Idempotent."""
    global _patched
    with _lock:
        if _patched:
            return
        _StockIOStream.__new__ = _native_new  # type: ignore[method-assign]
        _patched = True


def use_native_iostream(enabled: bool = True) -> None:
    """Turn the native IOStream on or off for streams made from now on (the
    environment variable ``IOLOOP_C_IOSTREAM=stock`` sets the default to
    off).  Streams already made keep their class."""
    global _enabled
    _enabled = bool(enabled)
    if _enabled:
        patch()


def native_iostream_enabled() -> bool:
    """Whether ``tornado.iostream.IOStream(...)`` gives the native class
    when an ioloop_c loop is current."""
    return _enabled
