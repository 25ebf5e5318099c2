"""ioloop_c: a native event loop for Python.

Two faces of one native core:

* :class:`IOLoop`: Tornado's IOLoop API, no Tornado needed.
* :class:`Loop` / :func:`new_event_loop` / :func:`run`: a complete asyncio
  event loop.

``ioloop_c.tornado`` plugs the loop into real Tornado 6.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

from . import _compat, _core
from ._ioloop import IOLoop, PeriodicCallback
from ._loop import Loop

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


class _EventLoopPolicy(_compat.UnixPolicyBase):  # type: ignore[misc,name-defined]
    """An asyncio policy whose new loops are ioloop_c loops.

    Python 3.14 deprecated the policy system (removal planned for 3.16);
    from 3.14 on, reaching this class as ``ioloop_c.EventLoopPolicy`` warns
    as ``asyncio.DefaultEventLoopPolicy`` does.  The ways in that are not
    deprecated: :func:`run`, ``asyncio.run(main(),
    loop_factory=ioloop_c.new_event_loop)`` and ``asyncio.Runner(
    loop_factory=ioloop_c.new_event_loop)``.
    """

    _loop_factory = Loop  # type: ignore[assignment]


_EventLoopPolicy.__name__ = _EventLoopPolicy.__qualname__ = "EventLoopPolicy"

if _compat.POLICY_DEPRECATED:
    # As asyncio's own __all__ dropped its policy names in 3.14, so that
    # `from ioloop_c import *` does not warn.
    __all__.remove("EventLoopPolicy")


def _deprecated(name: str, stacklevel: int) -> None:
    # The words of warnings._deprecated(), which asyncio uses for its own
    # policy names (that helper refuses to run past its removal version).
    warnings.warn(
        f"{name!r} is deprecated and slated for removal in Python 3.16",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def __getattr__(name: str) -> Any:
    if name == "EventLoopPolicy":
        if _compat.POLICY_DEPRECATED:
            _deprecated("ioloop_c.EventLoopPolicy", 2)
        return _EventLoopPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def install() -> None:
    """Use ioloop_c for the whole process: asyncio's policy makes our loops,
    and, if Tornado is installed, Tornado's IOLoops run on them through
    :mod:`ioloop_c.tornado`.

    This sets an event loop policy, which Python 3.14 deprecated: there it
    warns, once, as ``asyncio.set_event_loop_policy`` does.  Prefer
    :func:`run` or ``asyncio.run(main(),
    loop_factory=ioloop_c.new_event_loop)``."""
    if _compat.POLICY_DEPRECATED:
        _deprecated("ioloop_c.install", 2)
        with warnings.catch_warnings():
            # The one warning is ours, pointing at the caller.
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(_EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(_EventLoopPolicy())
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
