"""The Tornado face: :class:`IOLoop` and :class:`PeriodicCallback`.

Usable with ``import ioloop_c`` alone; Tornado need not be installed.  An
``IOLoop`` is also a complete asyncio event loop (it subclasses
:class:`ioloop_c.Loop`), with Tornado's clock: ``time()`` is
``time.time()`` and ``call_at`` / ``add_timeout`` deadlines are in those
terms, converted to the monotonic clock inside.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import random
import threading
from asyncio import events
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import _core
from ._loop import Loop, _to_future

__all__ = ["IOLoop", "PeriodicCallback"]

logger = logging.getLogger("ioloop_c")

_T = TypeVar("_T")
_current = threading.local()


class IOLoop(Loop):
    """Tornado's IOLoop API on the native core.

    >>> loop = IOLoop()
    >>> loop.add_callback(loop.stop)
    >>> loop.start()
    >>> loop.close()
    """

    NONE = 0
    READ = _core.READ
    WRITE = _core.WRITE
    ERROR = _core.ERROR

    _wall_clock = True

    # Tornado's call_later/call_at bind **kwargs, log exceptions to the
    # callback logger and await awaitable results; the deadline of call_at
    # is in time() terms, that is wall-clock.
    call_later = _core.Loop._tornado_call_later
    call_at = _core.Loop._tornado_call_at

    def __init__(
        self, backend: str | None = None, *, make_current: bool = True
    ) -> None:
        super().__init__(backend)
        if make_current:
            self.make_current()

    # -- current -------------------------------------------------------
    @staticmethod
    def current(instance: bool = True) -> IOLoop | None:
        """The IOLoop of this thread: the running one, or the one made
        current; with ``instance`` (the default), one is created if none."""
        running = events._get_running_loop()
        if isinstance(running, Loop):
            return running  # type: ignore[return-value]
        loop = getattr(_current, "loop", None)
        if loop is not None and not loop.is_closed():
            return loop
        if not instance:
            return None
        loop = IOLoop()
        loop.make_current()
        return loop

    instance = current

    def make_current(self) -> None:
        """Make this loop the one :meth:`current` returns in this thread."""
        _current.loop = self

    @staticmethod
    def clear_current() -> None:
        """Forget this thread's current loop."""
        _current.loop = None

    # -- running -------------------------------------------------------
    def start(self) -> None:
        """Run until :meth:`stop` is called."""
        self.run_forever()

    def close(self, all_fds: bool = False) -> None:  # type: ignore[override]
        """Close the loop; with ``all_fds``, also close every registered fd
        (file objects through their ``close()``)."""
        if getattr(_current, "loop", None) is self and not self.is_running():
            _current.loop = None
        self._close_with(all_fds)

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Start the loop, run ``func`` (a coroutine function, or a plain
        function returning an awaitable or a value), stop when it is done
        and return its result.  After ``timeout`` seconds,
        :class:`TimeoutError` is raised."""
        cell: list = [None]

        def run() -> None:
            try:
                result = func()
                fut = _to_future(result, self) if result is not None else None
            except Exception as exc:
                fut = self.create_future()
                fut.set_exception(exc)
            else:
                if fut is None:
                    fut = self.create_future()
                    fut.set_result(result)
            cell[0] = fut
            fut.add_done_callback(lambda f: self.stop())

        self.add_callback(run)
        handle = None
        if timeout is not None:

            def on_timeout() -> None:
                if cell[0] is not None:
                    cell[0].cancel()
                self.stop()

            handle = self.call_later(timeout, on_timeout)
        self.start()
        if handle is not None:
            self.remove_timeout(handle)
        fut = cell[0]
        if fut is None or fut.cancelled() or not fut.done():
            if fut is not None and not fut.done():
                fut.cancel()
            raise TimeoutError(f"Operation timed out after {timeout} seconds")
        return fut.result()

    def add_timeout(  # type: ignore[override]
        self,
        deadline: float | datetime.timedelta,
        callback: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Run ``callback`` at ``deadline`` (a time in :meth:`time` terms,
        or a ``timedelta`` from now); returns a handle for
        :meth:`remove_timeout`."""
        return _core.Loop.add_timeout(self, deadline, callback, *args, **kwargs)

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """Run ``func(*args)`` in ``executor`` (default: a thread pool)."""
        return super().run_in_executor(executor, func, *args)

    def set_default_executor(self, executor: Any) -> None:
        """Use ``executor`` for ``run_in_executor(None, ...)``."""
        super().set_default_executor(executor)

    def split_fd(self, fd: Any) -> tuple:
        """Return ``(fd_number, fd_or_object)`` as Tornado does."""
        if isinstance(fd, int):
            return fd, fd
        return fd.fileno(), fd


class PeriodicCallback:
    """Call ``callback`` every ``callback_time`` milliseconds.

    ``jitter`` (a fraction) spreads the calls randomly by that much.  A
    callback that returns an awaitable is awaited before the next call is
    scheduled.  If a call overruns, the missed slots are skipped.
    """

    def __init__(
        self,
        callback: Callable[[], Awaitable[Any] | None],
        callback_time: float | datetime.timedelta,
        jitter: float = 0,
    ) -> None:
        if isinstance(callback_time, datetime.timedelta):
            callback_time = callback_time / datetime.timedelta(milliseconds=1)
        if not callback_time > 0:
            raise ValueError("Periodic callback must have a positive callback_time")
        self.callback = callback
        self.callback_time = float(callback_time)
        self.jitter = jitter
        self._running = False
        self._timeout: Any = None
        self._next_timeout = 0.0
        self.io_loop: Loop | None = None

    def start(self) -> None:
        """Start calling; the first call is one period from now."""
        self.io_loop = IOLoop.current()
        self._running = True
        self._next_timeout = self.io_loop.time()
        self._schedule_next()

    def stop(self) -> None:
        """Stop calling."""
        self._running = False
        if self._timeout is not None and self.io_loop is not None:
            self.io_loop.remove_timeout(self._timeout)
            self._timeout = None

    def is_running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._running

    def _run(self) -> None:
        if not self._running:
            return
        try:
            result = self.callback()
        except Exception:
            logger.error("Exception in callback %r", self.callback, exc_info=True)
            result = None
        fut = _to_future(result, self.io_loop) if result is not None else None
        if fut is None:
            self._schedule_next()
        else:
            # The next call is scheduled once this one's awaitable is done.
            fut.add_done_callback(self._on_done)

    def _on_done(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            logger.error("Exception in callback %r", self.callback,
                         exc_info=fut.exception())
        self._schedule_next()

    def _schedule_next(self) -> None:
        if self._running and self.io_loop is not None:
            self._update_next(self.io_loop.time())
            self._timeout = self.io_loop.add_timeout(self._next_timeout, self._run)

    def _update_next(self, current_time: float) -> None:
        period = self.callback_time / 1000.0
        if self.jitter:
            period *= 1 + (self.jitter * (random.random() - 0.5))
        if self._next_timeout <= current_time:
            # Skip the slots an overrun missed, keeping the phase.
            self._next_timeout += (
                math.floor((current_time - self._next_timeout) / period) + 1
            ) * period
        else:
            self._next_timeout += period
