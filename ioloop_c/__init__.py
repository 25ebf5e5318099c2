"""ioloop_c: a native event loop for Python.

Two faces of one native core:

* :class:`IOLoop`: Tornado's IOLoop API, no Tornado needed.
* :class:`Loop` / :func:`new_event_loop` / :func:`run`: a complete asyncio
  event loop.

``ioloop_c.tornado`` plugs the loop into real Tornado 6.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from . import _core, _tornado_hook
from ._ioloop import IOLoop, PeriodicCallback
from ._loop import Loop

# Whenever Tornado is (or gets) imported too, the IOLoop it makes for an
# ioloop_c loop is the shim's, with the native fast paths.
_tornado_hook.watch()

__all__ = [
    "ERROR",
    "EventLoopPolicy",
    "IOLoop",
    "Loop",
    "PeriodicCallback",
    "READ",
    "WRITE",
    "available_backends",
    "install",
    "new_event_loop",
    "run",
]
__version__ = "0.1.0"

READ: int = _core.READ
WRITE: int = _core.WRITE
ERROR: int = _core.ERROR

_T = TypeVar("_T")


def available_backends() -> list[str]:
    """Names of the backends this host can use, best first.

    The first is the default; ``IOLoop(backend=...)``, ``Loop(backend=...)``
    or the ``IOLOOP_C_BACKEND`` environment variable choose another.
    """
    return _core.available_backends()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An asyncio policy whose new loops are ioloop_c loops."""

    _loop_factory = Loop  # type: ignore[assignment]


def install() -> None:
    """Use ioloop_c for the whole process: asyncio's policy makes our loops,
    and, if Tornado is installed, Tornado's IOLoops run on them through
    :mod:`ioloop_c.tornado`."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
    try:
        import tornado  # noqa: F401
    except ImportError:
        return
    from . import tornado as _shim

    _shim.install()


def new_event_loop() -> Loop:
    """A new asyncio event loop on the native core."""
    return Loop()


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a new ioloop_c loop, like :func:`asyncio.run`."""
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
