"""The asyncio internals the native Loop relies on or replaces, in one place.

CPython's selector event loop keeps its scheduling state in private
attributes and methods.  :class:`ioloop_c.Loop` replaces the ones that
touch that state with native ones and inherits everything else.  This
module names both lists; ``tests/test_asyncio_internals.py`` checks them
against the running Python so that a Python whose asyncio internals moved
fails loudly instead of misbehaving.
"""

from __future__ import annotations

import selectors
import sys
import weakref
from collections.abc import Mapping
from typing import Any

if sys.platform == "win32":  # pragma: no cover - POSIX only for now
    raise ImportError("ioloop_c supports POSIX systems only")

from asyncio import unix_events

#: The selector loop we subclass: asyncio's Unix loop (signals, pipes,
#: subprocesses, Unix sockets come with it).
SelectorLoopBase = unix_events._UnixSelectorEventLoop

#: Methods the native core provides in place of asyncio's.
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
    "_make_socket_transport",
    "_make_ssl_transport",
)

#: Private asyncio names the inherited code uses and we rely on existing.
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
)


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
    for name in REPLACED + RELIED_ON:
        if not hasattr(SelectorLoopBase, name):
            missing[name] = "absent from asyncio's selector loop"
    return missing

