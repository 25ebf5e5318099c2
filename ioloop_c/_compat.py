"""The asyncio internals the native Loop relies on or replaces, in one place.

CPython's selector event loop keeps its scheduling state in private
attributes and methods.  :class:`ioloop_c.Loop` replaces the ones that
touch that state with native ones and inherits everything else.  This
module names both lists; ``tests/test_asyncio_internals.py`` checks them
against the running Python so that a Python whose asyncio internals moved
fails loudly instead of misbehaving.
"""

from __future__ import annotations

import inspect
import selectors
import sys
import weakref
from collections.abc import Mapping
from typing import Any

if sys.platform == "win32":  # pragma: no cover - POSIX only for now
    raise ImportError("ioloop_c supports POSIX systems only")

from asyncio import base_events, events, format_helpers, unix_events

#: The selector loop we subclass: asyncio's Unix loop (signals, pipes,
#: subprocesses, Unix sockets come with it).
SelectorLoopBase = unix_events._UnixSelectorEventLoop

#: This Python, as (major, minor).
PY = sys.version_info[:2]

# -- the private methods, per version ---------------------------------
#
# Each entry: a private (or scheduling) method of asyncio's Unix selector
# loop that ioloop_c.Loop overrides, or that asyncio's own code calls on
# the loop and so reaches ours, with the signature each version's asyncio
# defines and calls it with, keyed by the first version with that
# signature.  They were read from each version's Lib/asyncio (3.11 and
# 3.12 from the host's CPython, 3.13 to 3.15 from Debian sid's) and
# checked against every call site there: tests/test_asyncio_internals.py
# compares them with the running Python's base class, scans its asyncio
# sources for every call of these names on a loop, and binds each call to
# our method's signature, so a Python that calls one differently fails
# the suite naming the method.
#
# What moved: 3.13 split run_forever() into _run_forever_setup() and
# _run_forever_cleanup(); 3.15 gave _add_reader / _add_writer a
# ``context=`` (its selector transports run their callbacks in the
# server's or connection's context) and passes ``context=`` on to
# _make_socket_transport / _make_ssl_transport.
_SIG_FD_CB = "(self, fd, callback, *args)"
_SIG_FD_CB_CTX = "(self, fd, callback, *args, context=None)"
SIGNATURES: dict[str, dict[tuple[int, int], str]] = {
    # Overridden by the native core (csrc/binding/loop*.c).
    "_add_reader": {(3, 11): _SIG_FD_CB, (3, 15): _SIG_FD_CB_CTX},
    "_add_writer": {(3, 11): _SIG_FD_CB, (3, 15): _SIG_FD_CB_CTX},
    "_remove_reader": {(3, 11): "(self, fd)"},
    "_remove_writer": {(3, 11): "(self, fd)"},
    "_run_once": {(3, 11): "(self)"},
    # Overridden in ioloop_c/_loop.py.
    "_add_callback": {(3, 11): "(self, handle)"},
    "_check_closed": {(3, 11): "(self)"},
    "_run_forever_setup": {(3, 13): "(self)"},
    "_run_forever_cleanup": {(3, 13): "(self)"},
    "_make_datagram_transport": {
        (3, 11): "(self, sock, protocol, address=None, waiter=None, "
                 "extra=None)",
    },
    # Inherited, and called by asyncio's code with these signatures; an
    # override (the native stream transport) must keep them.
    "_make_socket_transport": {
        (3, 11): "(self, sock, protocol, waiter=None, *, extra=None, "
                 "server=None)",
        (3, 15): "(self, sock, protocol, waiter=None, *, extra=None, "
                 "server=None, context=None)",
    },
    "_make_ssl_transport": {
        (3, 11): "(self, rawsock, protocol, sslcontext, waiter=None, *, "
                 "server_side=False, server_hostname=None, extra=None, "
                 "server=None, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0)",
        (3, 15): "(self, rawsock, protocol, sslcontext, waiter=None, *, "
                 "server_side=False, server_hostname=None, extra=None, "
                 "server=None, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0, context=None)",
    },
    # Overridden in ioloop_c/_loop.py: asyncio's Server reaches the
    # native accept loop (ioloop_c/_server.py) through these.
    "_start_serving": {
        (3, 11): "(self, protocol_factory, sock, sslcontext=None, "
                 "server=None, backlog=100, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0)",
        (3, 15): "(self, protocol_factory, sock, sslcontext=None, "
                 "server=None, backlog=100, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0, context=None)",
    },
    "_stop_serving": {(3, 11): "(self, sock)"},
    # Called by the native accept loop for TLS connections, as asyncio's
    # own accept loop calls it for every one.
    "_accept_connection2": {
        (3, 11): "(self, protocol_factory, conn, extra, sslcontext=None, "
                 "server=None, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0)",
        (3, 15): "(self, protocol_factory, conn, extra, sslcontext=None, "
                 "server=None, ssl_handshake_timeout=60.0, "
                 "ssl_shutdown_timeout=30.0, context=None)",
    },
    "_make_read_pipe_transport": {
        (3, 11): "(self, pipe, protocol, waiter=None, extra=None)",
    },
    "_make_write_pipe_transport": {
        (3, 11): "(self, pipe, protocol, waiter=None, extra=None)",
    },
    "_process_events": {(3, 11): "(self, event_list)"},
    "_write_to_self": {(3, 11): "(self)"},
    "_make_self_pipe": {(3, 11): "(self)"},
    "_read_from_self": {(3, 11): "(self)"},
    "_process_self_data": {(3, 11): "(self, data)"},
    "_check_running": {(3, 11): "(self)"},
    "_check_thread": {(3, 11): "(self)"},
    "_timer_handle_cancelled": {(3, 11): "(self, handle)"},
    "_set_coroutine_origin_tracking": {(3, 11): "(self, enabled)"},
    "_asyncgen_firstiter_hook": {(3, 11): "(self, agen)"},
    "_asyncgen_finalizer_hook": {(3, 11): "(self, agen)"},
    "_ensure_fd_no_transport": {(3, 11): "(self, fd)"},
}


def signature_for(name: str, version: tuple[int, int] = PY) -> str | None:
    """The signature ``version``'s asyncio gives ``name``, or None if that
    version has no such method."""
    best = None
    for since, sig in sorted(SIGNATURES[name].items()):
        if since <= version:
            best = sig
    return best


def names_for(version: tuple[int, int] = PY) -> tuple[str, ...]:
    """The private names listed for ``version``."""
    return tuple(n for n in SIGNATURES if signature_for(n, version))


#: Methods the native core or the Loop provides in place of asyncio's.
REPLACED = (
    "call_soon",
    "call_soon_threadsafe",
    "call_later",
    "call_at",
    "time",
    "stop",
    "is_running",
    "is_closed",
    "close",
    "run_forever",
    "_run_once",
    "_add_callback",
    "_add_reader",
    "_remove_reader",
    "_add_writer",
    "_remove_writer",
    "_check_closed",
    "_make_datagram_transport",
    "_make_socket_transport",
    "_make_ssl_transport",
    "_start_serving",
    "_stop_serving",
) + (("_run_forever_setup", "_run_forever_cleanup") if PY >= (3, 13) else ())

#: Private asyncio names the inherited code uses and we rely on existing
#: (on the loop, and on asyncio's transports).
RELIED_ON = (
    "_make_self_pipe",
    "_read_from_self",
    "_process_self_data",
    "_check_running",
    "_set_coroutine_origin_tracking",
    "_asyncgen_firstiter_hook",
    "_asyncgen_finalizer_hook",
    "_ensure_fd_no_transport",
    "_check_thread",
    "_accept_connection2",
)

#: asyncio's transports: a callback bound to one that raises during the
#: transport's life fails the transport through this method (see
#: Loop._report_handle_exception).
TRANSPORT_FATAL_ERROR = "_fatal_error"

#: 3.14+: the handle type call_soon_threadsafe() returns (cancel() waits
#: for a running callback); None before.
THREADSAFE_HANDLE: Any = getattr(events, "_ThreadSafeHandle", None)

#: asyncio's own Unix policy class, reached without the deprecation
#: warning that 3.14+ attaches to the public name.
UnixPolicyBase = unix_events._UnixDefaultEventLoopPolicy

#: 3.14 deprecated the policy system (removal planned for 3.16).
POLICY_DEPRECATED = PY >= (3, 14)


class SelectorView:
    """Stands in for the selector asyncio's base class would create.

    The native core watches fds itself.  asyncio's code (and its tests)
    sometimes ask the selector what is registered; this answers from the
    core, read-only, as ``selectors.SelectorKey`` with ``data`` set to the
    ``(reader, writer)`` handles, as asyncio's own selector loop stores.
    """

    def __init__(self, loop: Any) -> None:
        self._loop_ref = weakref.ref(loop)

    @property
    def _loop(self) -> Any:
        return self._loop_ref() if self._loop_ref is not None else None

    def _key(self, fd: int, fileobj: Any) -> selectors.SelectorKey | None:
        loop = self._loop
        info = loop._fd_info(fd) if loop is not None else None
        if info is None:
            return None
        events, reader, writer = info
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))

    def close(self) -> None:
        self._loop_ref = None

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        try:
            fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        except (AttributeError, TypeError, ValueError):
            raise KeyError(fileobj) from None
        key = self._key(fd, fileobj)
        if key is None:
            raise KeyError(fileobj)
        return key

    def get_map(self) -> Mapping[Any, Any]:
        loop = self._loop
        if loop is None:
            return {}
        keys = (self._key(fd, fd) for fd in loop._watched_fds())
        return {key.fd: key for key in keys if key is not None}

    def select(self, timeout: Any = None) -> Any:  # pragma: no cover
        raise RuntimeError("the native loop does not use a selector")


def missing_names() -> dict[str, str]:
    """Names from the lists above that this Python's asyncio lacks."""
    missing = {}
    for name in REPLACED + RELIED_ON + names_for():
        if not hasattr(SelectorLoopBase, name):
            missing[name] = "absent from asyncio's selector loop"
    return missing


# -- how handles and callbacks are named ------------------------------
#
# asyncio names a callback in its reprs and error messages through
# format_helpers: "name(args) at file:line".  Since 3.13 the arguments are
# shown only in debug mode (they may hold secrets); those versions take a
# `debug` keyword, which is looked for rather than assumed.
_format_callback = getattr(format_helpers, "_format_callback", None)
_function_source = getattr(format_helpers, "_get_function_source", None)
_FORMAT_TAKES_DEBUG = _format_callback is not None and (
    "debug" in inspect.signature(_format_callback).parameters
)


def callback_source(
    func: Any, args: Any, kwargs: Any = None, debug: bool = False
) -> str:
    """``func`` as asyncio's messages name a callback, for this Python."""
    if _format_callback is None or _function_source is None:
        return repr(func)
    if _FORMAT_TAKES_DEBUG:
        text = _format_callback(func, args, kwargs, debug=debug)
    else:
        text = _format_callback(func, args, kwargs)
    source = _function_source(func)
    if source:
        text += f" at {source[0]}:{source[1]}"
    return str(text)


def handle_repr(handle: Any, debug: Any, when: float | None) -> str:
    """asyncio's ``Handle.__repr__`` for a native handle (its C repr calls
    this): the class, "cancelled", a timer's "when=", the callback as
    :func:`callback_source` names it, and "created at" in debug mode."""
    info = [type(handle).__name__]
    if handle.cancelled():
        info.append("cancelled")
    if when is not None:
        info.append(f"when={when}")
    callback = handle._callback
    if callback is not None:
        info.append(
            callback_source(callback, handle._args, handle._kwargs, bool(debug))
        )
    tb = handle._source_traceback
    if tb:
        frame = tb[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return "<{}>".format(" ".join(info))


def describe_handle(handle: Any) -> str:
    """A handle as asyncio's reports name it ("Executing ... took"): a
    task's step by the task's repr, anything else by the handle's.  An
    asyncio handle run through one of ours (call_soon_threadsafe on 3.14+,
    signal delivery) is named by itself, the user's callback."""
    inner = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(inner, events.Handle):
        handle = inner
    return str(base_events._format_handle(handle))
