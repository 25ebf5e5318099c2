"""The asyncio face: :class:`Loop`, an asyncio event loop on the native core.

The scheduling core (ready queue, timers, fd watching, the tick, the
waker, ``time()``) is native and comes from :class:`ioloop_c._core.Loop`.
asyncio's own pure-Python transports, servers, SSL, subprocess and
``sock_*`` code are inherited from ``asyncio.SelectorEventLoop`` and reach
the core only through the private methods listed in :mod:`ioloop_c._compat`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import logging
import signal
import socket
import sys
import threading
from asyncio import base_events, constants, events, format_helpers, sslproto
from collections.abc import Callable
from typing import Any

from . import _compat, _core, _datagram, _server, _tls, _tornado_hook, _transport
from ._compat import SelectorLoopBase, SelectorView

__all__ = ["Loop"]

logger = logging.getLogger("ioloop_c")

# Handles show themselves as asyncio's do ("<Handle cb() at file:line>").
_core._handle_repr_configure(_compat.handle_repr, _compat.describe_handle)

#: Called with the loop each time a loop starts running (after it became
#: the running loop).  ioloop_c.tornado.install() adds one.
run_hooks: list[Callable[[Loop], None]] = []


class Loop(_core.Loop, SelectorLoopBase):  # type: ignore[misc]
    """An asyncio event loop whose scheduling core is native.

    ``time()`` is the monotonic clock, as in asyncio.  The loop also offers
    Tornado's IOLoop methods that do not clash with asyncio's
    (``add_handler``, ``add_callback``, ``add_timeout``...); see
    :class:`ioloop_c.IOLoop` for Tornado's wall-clock flavour.
    """

    _wall_clock = False
    #: Logger for exceptions from Tornado-style callbacks and handlers.
    _callback_logger = logger

    #: Whether socket transports (create_connection, create_server, their
    #: Unix and sock= forms, connect_accepted_socket, TLS over them) and
    #: datagram transports (create_datagram_endpoint) are the native
    #: ones; False uses asyncio's Python transports.  Defaults
    #: to True unless IOLOOP_C_TRANSPORT=python is in the environment.
    native_transport: bool
    #: Whether TLS over the native transport runs its established phase
    #: in C (ioloop_c._tls.NativeSSLProtocol); False keeps asyncio's
    #: SSLProtocol as it is.  Defaults to True unless IOLOOP_C_TLS=python
    #: is in the environment.
    native_tls: bool

    def __init__(self, backend: str | None = None) -> None:
        _core.Loop.__init__(self, backend, wall_clock=self._wall_clock)
        try:
            SelectorLoopBase.__init__(self, SelectorView(self))
        except BaseException:
            _core.Loop._close(self)
            raise
        self._transports = _transport.TransportTable()
        self.native_transport = _transport.native_by_default()
        # Listening sockets served by the native accept loop (_server.py).
        self._listeners: dict[Any, Any] = {}
        self.native_tls = _tls.native_by_default()

    def _make_socket_transport(  # type: ignore[override]
        self,
        sock: Any,
        protocol: Any,
        waiter: Any = None,
        *,
        extra: Any = None,
        server: Any = None,
        context: Any = None,
    ) -> Any:
        # asyncio's plain socket paths all make their transport here.
        # (3.15 passes `context`; earlier versions never do.)
        if self._native_for(sock):
            self._ensure_fd_no_transport(sock)
            return _transport.SocketTransport(
                self, sock, protocol, waiter, extra, server, context
            )
        kw = {} if context is None else {"context": context}
        return super()._make_socket_transport(
            sock, protocol, waiter, extra=extra, server=server, **kw
        )

    def _native_for(self, sock: Any) -> bool:
        # The native transport needs a real socket; and where the loop's
        # fd primitives were replaced on the instance (tests do that with
        # mocks), asyncio's transport, which goes through them, honours
        # the replacement.
        return (
            self.native_transport
            and _transport.SocketTransport is not None
            and isinstance(sock, socket.socket)
            and "_add_reader" not in self.__dict__
            and "_add_writer" not in self.__dict__
        )

    def _start_serving(  # type: ignore[override]
        self,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: Any = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = constants.SSL_SHUTDOWN_TIMEOUT,
        context: Any = None,
    ) -> None:
        # asyncio's Server calls this for each of its sockets (3.15 with
        # the server's context).  The native accept loop serves real
        # sockets; anything else gets asyncio's Python accept loop.
        if _server.usable(self, sock):
            _server.start(
                self, protocol_factory, sock, sslcontext, server, backlog,
                ssl_handshake_timeout, ssl_shutdown_timeout, context,
            )
            return
        kw = {} if context is None else {"context": context}
        super()._start_serving(
            protocol_factory, sock, sslcontext, server, backlog,
            ssl_handshake_timeout, ssl_shutdown_timeout, **kw,
        )

    def _stop_serving(self, sock: Any) -> None:
        # The native accept loop lets go of the socket; asyncio's own
        # method then closes it (and, 3.13+, unlinks a Unix socket's path).
        _server.stop(self, sock)
        super()._stop_serving(sock)

    def _make_ssl_transport(  # type: ignore[override]
        self,
        rawsock: Any,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: Any = None,
        extra: Any = None,
        server: Any = None,
        ssl_handshake_timeout: Any = constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = constants.SSL_SHUTDOWN_TIMEOUT,
        context: Any = None,
    ) -> Any:
        # asyncio's TLS: its SSLProtocol (a BufferedProtocol) over a
        # socket transport, which asyncio makes here without going through
        # _make_socket_transport.
        if not self._native_for(rawsock):
            kw = {} if context is None else {"context": context}
            return super()._make_ssl_transport(
                rawsock, protocol, sslcontext, waiter,
                server_side=server_side, server_hostname=server_hostname,
                extra=extra, server=server,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, **kw,
            )
        self._ensure_fd_no_transport(rawsock)
        native = self.native_tls and _tls.available
        factory = _tls.NativeSSLProtocol if native else sslproto.SSLProtocol
        ssl_protocol = factory(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        _transport.SocketTransport(
            self, rawsock, ssl_protocol, None, extra, server, context
        )
        return ssl_protocol._app_transport

    # -- running -------------------------------------------------------
    def run_forever(self) -> None:
        """Run ticks until :meth:`stop` is called."""
        self._run_forever_setup()
        try:
            self._run()
        finally:
            self._run_forever_cleanup()

    # asyncio 3.13+ splits its run_forever() into these two; ours exist on
    # every version, so code written against 3.13's split runs here too.
    _old_agen_hooks: Any = None

    def _run_forever_setup(self) -> None:
        """Make this the running loop of this thread (checks first)."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook,
            finalizer=self._asyncgen_finalizer_hook,
        )
        events._set_running_loop(self)
        try:
            for hook in run_hooks:
                hook(self)
        except BaseException:
            self._run_forever_cleanup()
            raise

    def _run_forever_cleanup(self) -> None:
        """Undo :meth:`_run_forever_setup`."""
        self._stopping = False
        self._thread_id = None
        events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def _run_once(self) -> None:
        _core.Loop._run_once(self)

    # -- signals: asyncio's handlers, and the user's wakeup fd given back --
    _user_wakeup_fd: int | None = None

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        """asyncio's add_signal_handler (SIGCHLD included).  asyncio points
        the process's wakeup fd at the loop and, once the last handler is
        removed, sets it to -1; ours remembers the wakeup fd that was in
        force before and restores it then (and on close)."""
        first = not self._signal_handlers
        if first and threading.current_thread() is threading.main_thread():
            previous = signal.set_wakeup_fd(-1)
            signal.set_wakeup_fd(previous)
            self._user_wakeup_fd = previous
        try:
            super().add_signal_handler(sig, callback, *args)
        except BaseException:
            if first:
                self._restore_wakeup_fd()
            raise

    def remove_signal_handler(self, sig: int) -> bool:
        removed = super().remove_signal_handler(sig)
        if not self._signal_handlers:
            self._restore_wakeup_fd()
        return removed

    def _restore_wakeup_fd(self) -> None:
        fd, self._user_wakeup_fd = self._user_wakeup_fd, None
        if fd is not None and fd != -1:
            try:
                signal.set_wakeup_fd(fd)
            except (ValueError, OSError):
                # Closed meanwhile, or not the main thread: nothing to
                # give back.
                pass

    if _compat.THREADSAFE_HANDLE is not None:
        # 3.14+: call_soon_threadsafe() returns asyncio's _ThreadSafeHandle,
        # whose cancel() and cancelled() from another thread wait for a
        # callback already running to finish.  The handle runs through the
        # native threadsafe queue; its _run() re-checks cancellation under
        # its lock, as asyncio's loop relies on.
        def call_soon_threadsafe(  # type: ignore[override]
            self, callback: Callable[..., Any], *args: Any, context: Any = None
        ) -> asyncio.Handle:
            """Like call_soon(), from any thread (asyncio's handle type)."""
            if inspect.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
                raise TypeError("coroutines cannot be used with call_soon_threadsafe()")
            if not callable(callback):
                raise TypeError(
                    "a callable object was expected by call_soon_threadsafe(), "
                    f"got {callback!r}"
                )
            if context is not None and not isinstance(context, contextvars.Context):
                raise TypeError(f"context must be a contextvars.Context, got {context!r}")
            self._check_closed()
            handle = _compat.THREADSAFE_HANDLE(callback, args, self, context)
            _core.Loop.call_soon_threadsafe(self, handle._run)
            if handle._source_traceback:
                del handle._source_traceback[-1]
            return handle

    def _add_callback(self, handle: asyncio.Handle) -> None:
        # asyncio's signal delivery queues a ready-made asyncio Handle.
        if not handle._cancelled:
            self.call_soon(handle._run)

    def close(self) -> None:
        """Close the loop: drop pending work, release the native resources."""
        self._close_with(False)

    def _close_with(self, all_fds: bool) -> None:
        # all_fds (Tornado's close(all_fds=True)) also closes the fds and
        # file objects registered with add_handler.
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        # The shim IOLoop Tornado registered for this loop goes with it.
        _tornado_hook.forget(self)
        # asyncio's own close: signal handlers, the self-pipe, the default
        # executor.  Its `_closed` flag is the core's.
        SelectorLoopBase.close(self)
        _core.Loop._close(self, all_fds)

    # asyncio's base class keeps a `_closed` flag of its own; this one
    # follows the core's, which is the only one.
    @property
    def _closed(self) -> bool:  # type: ignore[override]
        return _core.Loop.is_closed(self)

    @_closed.setter
    def _closed(self, value: bool) -> None:
        pass

    def _check_closed(self) -> None:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    # -- reporting -----------------------------------------------------
    def _report_handle_exception(self, handle: Any, exc: BaseException) -> None:
        try:
            name = _compat.callback_source(
                handle._callback, handle._args, handle._kwargs, self.get_debug()
            )
        except Exception:
            # A callback that cannot be named (its __qualname__ raises) is
            # still reported, by the one repr that cannot fail.
            name = object.__repr__(handle._callback)
        context: dict[str, Any] = {
            "message": f"Exception in callback {name}",
            "exception": exc,
            "handle": handle,
        }
        tb = handle._source_traceback
        if tb:
            # Debug mode: where the handle was made, as asyncio reports.
            context["source_traceback"] = tb
        transport = getattr(handle._callback, "__self__", None)
        if (
            isinstance(transport, asyncio.BaseTransport)
            and isinstance(exc, Exception)
            and not transport.is_closing()
            and hasattr(transport, _compat.TRANSPORT_FATAL_ERROR)
        ):
            # A transport's own step (its set-up: _add_reader...) failed,
            # which asyncio would only log, leaving the connection open
            # and silent forever.  Fail the transport instead: its
            # protocol sees connection_lost(exc), so whoever waits on the
            # connection gets the exception.
            getattr(transport, _compat.TRANSPORT_FATAL_ERROR)(
                exc, context["message"]
            )
            return
        self.call_exception_handler(context)

    # -- transports --------------------------------------------------
    def _make_datagram_transport(
        self,
        sock: Any,
        protocol: Any,
        address: Any = None,
        waiter: Any = None,
        extra: Any = None,
    ) -> Any:
        if self._native_for(sock) and _datagram.native_for(sock):
            self._ensure_fd_no_transport(sock)
            return _datagram.DatagramTransport(
                self, sock, protocol, address, waiter, extra
            )
        transport = super()._make_datagram_transport(
            sock, protocol, address, waiter, extra
        )
        # A connected socket whose peer has no name (a Unix socketpair)
        # reports peername '', which asyncio's transport takes for "not
        # connected" and so calls sendto(data, None).  Mark it connected,
        # as uvloop does: sendto(data) then sends to the peer.
        extra_info = getattr(transport, "_extra", None)
        if isinstance(extra_info, dict) and extra_info.get("peername") == "":
            extra_info["peername"] = _UnnamedPeer()
        return transport

    def _report_callback_exception(self, callback: Any, exc: BaseException) -> None:
        self._callback_logger.error(
            "Exception in callback %r", callback, exc_info=exc
        )

    def handle_callback_exception(self, callback: Any) -> None:
        """Log the exception being handled (Tornado's reporting hook)."""
        self._callback_logger.error(
            "Exception in callback %r", callback, exc_info=True
        )

    def _handle_callback_result(self, result: Any) -> None:
        # A Tornado-style callback that returns an awaitable has it run to
        # completion, and its exception logged, as Tornado does.
        fut = _to_future(result, self)
        if fut is not None:
            fut.add_done_callback(self._discard_future_result)

    def _discard_future_result(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._report_callback_exception(future, exc)

    # -- debug mode ----------------------------------------------------
    # asyncio's debug mode costs nothing here until it is turned on: then
    # the scheduling methods are shadowed, per instance, by wrappers that
    # check the thread and record where each handle was created, and the
    # native slow-callback detector reports asyncio's way.
    _DEBUG_WRAPPED = ("call_soon", "call_later", "call_at", "call_soon_threadsafe")
    _slow_callback_duration = 0.1
    _user_slow_threshold = False

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        for name in self._DEBUG_WRAPPED:
            if enabled:
                setattr(self, name, self._debug_wrapper(name))
            else:
                self.__dict__.pop(name, None)
        if not self._user_slow_threshold:
            self._set_slow_threshold(self._slow_callback_duration if enabled else None)

    def _debug_wrapper(self, name: str) -> Callable[..., Any]:
        native = getattr(type(self), name)
        check_thread = name != "call_soon_threadsafe"

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if check_thread:
                self._check_thread()
            handle = native(self, *args, **kwargs)
            handle._source_traceback = format_helpers.extract_stack(sys._getframe(1))
            return handle

        wrapper.__name__ = name
        return wrapper

    @property
    def slow_callback_duration(self) -> float:
        """asyncio's debug-mode threshold for reporting slow callbacks."""
        return self._slow_callback_duration

    @slow_callback_duration.setter
    def slow_callback_duration(self, value: float) -> None:
        self._slow_callback_duration = value
        if getattr(self, "_debug", False) and not self._user_slow_threshold:
            self._set_slow_threshold(value)

    # -- seeing inside ------------------------------------------------
    _slow_report: Callable[[Any, float], Any] | None = None

    def set_slow_callback_threshold(
        self,
        seconds: float | None,
        report: Callable[[Any, float], Any] | None = None,
    ) -> None:
        """Report every callback or handler that holds the loop for at least
        ``seconds``.  By default a warning is logged on logger ``ioloop_c``;
        ``report(handle, duration)`` replaces that.  ``None`` turns it off.
        Cheap enough for production: the loop times callbacks anyway."""
        self._slow_report = report
        self._user_slow_threshold = seconds is not None
        self._set_slow_threshold(seconds)

    def set_callback_timing(self, enabled: bool) -> None:
        """Time every callback (the default) or only each batch of them.

        Timing costs one clock read per callback and feeds ``stats()``'s
        ``slowest_callback`` figures and the slow-callback detector.  Off,
        ``stats()`` still counts everything and splits time between waiting
        and running, but records no slowest callback, and nothing is
        reported as slow.  Setting a threshold turns timing back on."""
        if not enabled:
            self._set_slow_threshold(None)
            self._user_slow_threshold = False
        self._set_timing(bool(enabled))

    def _report_slow_callback(self, handle: Any, duration: float) -> None:
        inner = getattr(getattr(handle, "_callback", None), "__self__", None)
        if isinstance(inner, asyncio.Handle):
            # An asyncio handle run through ours (call_soon_threadsafe on
            # 3.14+, signal delivery): name the user's callback.
            handle = inner
        if not self._user_slow_threshold:
            # asyncio's debug mode, in asyncio's words.
            base_events.logger.warning(
                "Executing %s took %.3f seconds",
                _compat.describe_handle(handle), duration,
            )
        elif self._slow_report is not None:
            self._slow_report(handle, duration)
        else:
            logger.warning(
                "slow callback: %r held the loop for %.3f s", handle, duration
            )

    # -- Tornado conveniences usable on any ioloop_c loop ---------------
    def add_future(
        self, future: Any, callback: Callable[[Any], Any]
    ) -> None:
        """Call ``callback(future)`` on the loop once ``future`` is done."""
        if isinstance(future, concurrent.futures.Future):
            future.add_done_callback(lambda f: self.add_callback(callback, f))
        else:
            fut = asyncio.ensure_future(future, loop=self)
            fut.add_done_callback(lambda f: self.add_callback(callback, f))


_UnnamedPeer = _datagram._UnnamedPeer


def _to_future(result: Any, loop: Loop) -> asyncio.Future[Any] | None:
    """An asyncio future for an awaitable result, or None if it is not one."""
    if isinstance(result, asyncio.Future):
        return result
    if isinstance(result, concurrent.futures.Future):
        return asyncio.wrap_future(result, loop=loop)
    if inspect.isawaitable(result):
        return asyncio.ensure_future(result, loop=loop)
    gen = sys.modules.get("tornado.gen")
    if gen is not None:
        try:
            return gen.convert_yielded(result)  # lists/dicts of futures
        except gen.BadYieldError:
            return None
    return None

