"""Plug ioloop_c into real Tornado 6.

One line switches an application::

    from tornado.ioloop import IOLoop
    IOLoop.configure("ioloop_c.tornado.IOLoop")

or, for the whole process (``IOLoop.current()``, ``AsyncTestCase``,
``asyncio.new_event_loop()`` all give ours)::

    import ioloop_c
    ioloop_c.install()

Without either, the IOLoop Tornado makes around a running ioloop_c loop
(``asyncio.run(main(), loop_factory=ioloop_c.new_event_loop)``,
``ioloop_c.run(main())``, ``new_event_loop()`` + ``set_event_loop()``) is
already a :class:`MainLoop` with the native paths: see
:mod:`ioloop_c._tornado_hook`.

Tornado 6 accepts only subclasses of its ``BaseAsyncIOLoop`` in
``IOLoop.configure``, so :class:`IOLoop` subclasses ``AsyncIOLoop`` and runs
on a native :class:`ioloop_c.Loop` as its ``asyncio_loop``.  The methods
Tornado calls on every request (``add_handler`` and friends, ``call_at``,
``add_timeout``, ``remove_timeout``, ``add_callback``) are bound straight
to the native loop's C methods, so none of them runs a line of Python:
no ``functools.partial``, no readers/writers sets, no ``_handle_events``,
no wall-clock conversion in Python.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tornado import ioloop as _tioloop
from tornado.platform import asyncio as _tasyncio

from . import _iostream, _tornado_hook
from ._iostream import IOStream, native_iostream_enabled, use_native_iostream
from ._loop import Loop

__all__ = [
    "IOLoop",
    "IOStream",
    "MainLoop",
    "TornadoLoop",
    "native_iostream_enabled",
    "use_native_iostream",
]

app_log = logging.getLogger("tornado.application")


class TornadoLoop(Loop):
    """The native loop under a Tornado IOLoop.

    Exceptions from Tornado-style callbacks and fd handlers are logged on
    ``tornado.application`` as "Exception in callback ...", which is what
    Tornado's own loop does.
    """

    _callback_logger = app_log


#: The methods bound straight to the native loop.  Tornado's base class
#: defines each in Python; an instance attribute shadows it at no cost.
_NATIVE = {
    "add_handler": "add_handler",
    "update_handler": "update_handler",
    "remove_handler": "remove_handler",
    "add_callback": "add_callback",
    "spawn_callback": "add_callback",
    "call_at": "_tornado_call_at_wall",
    "call_later": "_tornado_call_later",
    "add_timeout": "_add_timeout_wall",
    "remove_timeout": "remove_timeout",
}


class _NativeMixin:
    """What :class:`IOLoop` and :class:`MainLoop` share."""

    asyncio_loop: Any

    def _bind_native(self) -> None:
        native = self.asyncio_loop
        if not isinstance(native, Loop):
            # An AsyncIOMainLoop over some other asyncio loop: stay stock.
            self._native = None
            return
        self._native = native
        # Exceptions from Tornado-style callbacks are Tornado's to log, on
        # tornado.application, as TornadoLoop does; a plain Loop logs on
        # "ioloop_c" until Tornado adopts it.
        native._callback_logger = app_log
        for name, native_name in _NATIVE.items():
            setattr(self, name, getattr(native, native_name))
        # tornado.iostream.IOStream(...) gives the native IOStream while
        # an IOLoop like this one is current.
        if _iostream.native_iostream_enabled():
            _iostream.patch()

    def close(self, all_fds: bool = False) -> None:
        native = self._native
        if native is None:
            return super().close(all_fds=all_fds)  # type: ignore[misc]
        if getattr(self, "is_current", False):
            self._clear_current()  # type: ignore[attr-defined]
        self.closing = True
        _tioloop.IOLoop._ioloop_for_asyncio.pop(native, None)
        native._close_with(all_fds)

    # Seeing inside: the native loop's statistics and slow-callback
    # detector, from the Tornado object (``IOLoop.current().stats()``).
    def stats(self) -> dict[str, Any]:
        """The native loop's counters; see :meth:`ioloop_c.Loop.stats`."""
        return self._require_native().stats()

    def set_slow_callback_threshold(
        self,
        seconds: float | None,
        report: Callable[[Any, float], Any] | None = None,
    ) -> None:
        """See :meth:`ioloop_c.Loop.set_slow_callback_threshold`."""
        self._require_native().set_slow_callback_threshold(seconds, report)

    def set_callback_timing(self, enabled: bool) -> None:
        """See :meth:`ioloop_c.Loop.set_callback_timing`."""
        self._require_native().set_callback_timing(enabled)

    def _require_native(self) -> Loop:
        if self._native is None:
            raise TypeError(
                f"this IOLoop runs on {self.asyncio_loop!r}, not on an ioloop_c loop"
            )
        return self._native


class IOLoop(_NativeMixin, _tasyncio.AsyncIOLoop):
    """A Tornado IOLoop on a native ioloop_c loop.

    Use ``IOLoop.configure("ioloop_c.tornado.IOLoop")``; then every new
    Tornado IOLoop (and ``IOLoop.current()`` where it creates one) is ours.
    """

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        created = None
        if "asyncio_loop" not in kwargs:
            kwargs["asyncio_loop"] = created = TornadoLoop()
        try:
            super().initialize(**kwargs)
        except Exception:
            if created is not None:
                created.close()
            raise
        self._bind_native()


class MainLoop(_NativeMixin, _tasyncio.AsyncIOMainLoop):
    """Tornado's wrapper for an already running (or current) asyncio loop,
    with the native fast paths when that loop is an ioloop_c loop.

    This is what ``IOLoop.current()`` gives for an ioloop_c loop, however
    that loop was made (``asyncio.run(..., loop_factory=...)``,
    ``ioloop_c.run()``, ``asyncio.Runner``, ``new_event_loop()`` with
    ``set_event_loop``, ``install()``): see :mod:`ioloop_c._tornado_hook`.
    ``asyncio_loop=`` names the loop; by default it is asyncio's current
    one, as for Tornado's ``AsyncIOMainLoop``."""

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        asyncio_loop = kwargs.pop("asyncio_loop", None)
        if asyncio_loop is None:
            super().initialize(**kwargs)
        else:
            # What AsyncIOMainLoop.initialize does, with the loop given
            # instead of looked up.
            _tasyncio.BaseAsyncIOLoop.initialize(self, asyncio_loop, **kwargs)
        self._bind_native()


def _adopt(loop: Loop) -> None:
    # Register a MainLoop for a loop Tornado has not seen yet (the run
    # hook used only if Tornado's map could not be patched).
    if loop not in _tioloop.IOLoop._ioloop_for_asyncio:
        MainLoop(asyncio_loop=loop)


def install() -> None:
    """Make Tornado use ioloop_c everywhere in this process: new IOLoops
    are :class:`IOLoop`, and the IOLoop Tornado puts around a running
    ioloop_c loop is a :class:`MainLoop` (as it is without install())."""
    _tioloop.IOLoop.configure(IOLoop)
    _tornado_hook.patch(_tioloop)


# Importing the shim is one of the ways Tornado's map gets patched.
_tornado_hook.patch(_tioloop)
