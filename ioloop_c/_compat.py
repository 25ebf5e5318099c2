"""The asyncio internals the native Loop relies on or replaces, in one place.

CPython's selector event loop keeps its scheduling state in private
attributes and methods.  :class:`ioloop_c.Loop` replaces the ones that
touch that state with native ones and inherits everything else.  This
module names both lists; ``tests/test_asyncio_internals.py`` checks them
against the running Python so that a Python whose asyncio internals moved
fails loudly instead of misbehaving.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Mapping

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
)


class NullSelector:
    """Stands in for the selector asyncio's base class would create.

    The native core watches fds itself; asyncio's code only closes the
    selector, or asks it for registrations when checking for transports.
    """

    def close(self) -> None:
        pass

    def get_map(self) -> Mapping[Any, Any]:
        return {}

    def get_key(self, fileobj: Any) -> Any:
        raise KeyError(fileobj)

    def select(self, timeout: Any = None) -> Any:  # pragma: no cover
        raise RuntimeError("the native loop does not use a selector")


def missing_names() -> Dict[str, str]:
    """Names from the lists above that this Python's asyncio lacks."""
    missing = {}
    for name in REPLACED + RELIED_ON:
        if not hasattr(SelectorLoopBase, name):
            missing[name] = "absent from asyncio's selector loop"
    return missing

