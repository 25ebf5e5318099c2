"""Tornado's ``IOStream`` on ioloop_c's native stream core.

:class:`IOStream` subclasses ``tornado.iostream.IOStream`` (so every
``isinstance`` check holds) and the C type ``ioloop_c._core.IOStreamCore``,
which holds the read buffer (one contiguous block, read into in place,
delimiters found with ``memmem``), ``read_into()``'s direct reads and the
write queue (the caller's objects, sent with one ``sendmsg``).  Tornado's
control flow is kept as Tornado writes it; only the methods that touch the
buffers are replaced, so the order in which futures resolve and callbacks
run, the errors raised and the ``error`` attribute are Tornado's.

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

import os
import threading
from typing import Any

from tornado import ioloop as _tioloop
from tornado import iostream as _tiostream
from tornado.concurrent import Future, future_set_result_unless_cancelled
from tornado.log import gen_log

from ._core import IOStreamCore

__all__ = ["IOStream", "patch", "use_native_iostream"]

_StockIOStream = _tiostream.IOStream
_READ = _tioloop.IOLoop.READ
_WRITE = _tioloop.IOLoop.WRITE
StreamBufferFullError = _tiostream.StreamBufferFullError
UnsatisfiableReadError = _tiostream.UnsatisfiableReadError
StreamClosedError = _tiostream.StreamClosedError


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


class IOStream(_StockIOStream, IOStreamCore):
    """A ``tornado.iostream.IOStream`` whose buffers and socket calls are
    native.  Same constructor, same behaviour."""

    def __new__(cls, *args: Any, **kwargs: Any) -> IOStream:
        return IOStreamCore.__new__(cls)

    def __init__(self, socket: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(socket, *args, **kwargs)
        self._c_set_fd(socket.fileno())

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

    # -- the read side ----------------------------------------------------

    def _read_to_buffer(self) -> int | None:
        # Tornado's _read_to_buffer, with read_from_fd() and the append
        # as one native recv (unless read_from_fd was replaced).
        try:
            if (
                type(self).read_from_fd is _StockIOStream.read_from_fd
                and "read_from_fd" not in self.__dict__
            ):
                bytes_read = self._c_recv(self.read_chunk_size)
            else:
                bytes_read = self._read_via_read_from_fd()
        except OSError as e:
            if self._is_connreset(e):
                self.close(exc_info=e)
                return None
            self.close(exc_info=e)
            raise
        if bytes_read is None:
            return 0
        if bytes_read == 0:
            self.close()
            return 0
        if self._read_buffer_size > self.max_buffer_size:
            gen_log.error("Reached maximum read buffer size")
            buffer_full_error = StreamBufferFullError("Reached maximum read buffer size")
            self.close(exc_info=buffer_full_error)
            raise buffer_full_error
        return bytes_read  # type: ignore[no-any-return]

    def _read_via_read_from_fd(self) -> int | None:
        if self._user_read_buffer:
            with (
                memoryview(self._read_buffer) as m,
                m[self._read_buffer_size :] as view,
            ):
                n = self.read_from_fd(view)
            if n:
                self._c_append(n)
            return n
        buf = bytearray(self.read_chunk_size)
        n = self.read_from_fd(buf)
        if n:
            with memoryview(buf) as m, m[:n] as view:
                self._c_append(view)
        return n

    def _find_read_pos(self) -> int | None:
        size = self._read_buffer_size
        read_bytes = self._read_bytes
        if read_bytes is not None and (
            size >= read_bytes or (self._read_partial and size > 0)
        ):
            return min(read_bytes, size)
        delimiter = self._read_delimiter
        if delimiter is not None:
            if size:
                loc = self._c_find(delimiter)
                if loc != -1:
                    end = loc + len(delimiter)
                    self._check_max_bytes(delimiter, end)
                    return end
                self._check_max_bytes(delimiter, size)
        elif self._read_regex is not None:
            if size:
                with memoryview(self) as view:
                    m = self._read_regex.search(view)
                    loc = m.end() if m is not None else -1
                if loc != -1:
                    self._check_max_bytes(self._read_regex, loc)
                    return loc
                self._check_max_bytes(self._read_regex, size)
        return None

    def _consume(self, loc: int) -> bytes:
        return self._c_take(loc)  # type: ignore[no-any-return]

    def _finish_read(self, size: int) -> None:
        result: int | bytes
        if self._user_read_buffer:
            self._c_user_end()
            result = size
        else:
            result = self._c_take(size)
        future = self._read_future
        if future is not None:
            self._read_future = None
            future_set_result_unless_cancelled(future, result)
        self._maybe_add_error_listener()

    def read_into(self, buf: bytearray, partial: bool = False) -> Any:
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

    # -- the write side ---------------------------------------------------

    def write(self, data: bytes | memoryview) -> Future[None]:
        if self._closed:
            raise StreamClosedError(real_error=self.error)
        if data:
            if isinstance(data, memoryview):
                data = data.cast("B")
            if (
                self.max_write_buffer_size is not None
                and self._c_wsize + len(data) > self.max_write_buffer_size
            ):
                raise StreamBufferFullError("Reached maximum write buffer size")
            self._total_write_index += self._c_queue(data)
        future: Future[None] = Future()
        future.add_done_callback(_retrieve)
        self._write_futures.append((self._total_write_index, future))
        if not self._connecting:
            self._handle_write()
            if self._c_wsize:
                self._add_io_state(_WRITE)
            self._maybe_add_error_listener()
        return future

    def _handle_write(self) -> None:
        try:
            done = self._c_flush()
        except OSError as e:
            if not self._is_connreset(e):
                gen_log.warning("Write error on %s: %s", self.fileno(), e)
            self.close(exc_info=e)
            return
        futures = self._write_futures
        while futures:
            index, future = futures[0]
            if index > done:
                break
            futures.popleft()
            future_set_result_unless_cancelled(future, None)

    # -- closing ----------------------------------------------------------

    def close_fd(self) -> None:
        self._c_set_fd(-1)
        super().close_fd()

    def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        future = super().start_tls(*args, **kwargs)
        # The socket belongs to the SSLIOStream now.
        self._c_set_fd(-1)
        return future


def _retrieve(future: Future[None]) -> None:
    # Write futures mark their exception as retrieved, as Tornado's do.
    future.exception()


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
