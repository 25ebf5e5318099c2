"""Every way in gets the native paths: Tornado's map from asyncio loops to
IOLoops, taught to adopt ioloop_c loops.

Tornado finds the IOLoop of a running (or current) asyncio loop with
``IOLoop._ioloop_for_asyncio[loop]`` in ``IOLoop.current()``, and on a
miss wraps the loop in its stock ``AsyncIOMainLoop``, whose ``add_handler``,
``add_callback`` and ``call_at`` are Python.  Here that map becomes a dict
subclass whose ``__missing__`` wraps an ioloop_c loop in the shim's
:class:`ioloop_c.tornado.MainLoop` instead (the native methods bound) and
leaves every other loop to Tornado.  Hits cost what they cost before;
``run_forever`` is untouched, so nothing is paid by programs that never
touch Tornado, and ``IOLoop.configure`` keeps deciding what ``IOLoop()``
makes.

The map is patched as soon as both ioloop_c and ``tornado.ioloop`` are
imported, in either order: :func:`watch` (run when ioloop_c is imported)
patches at once if Tornado is already loaded, and otherwise leaves a
finder on ``sys.meta_path`` that patches ``tornado.ioloop`` right after
it has executed.  The same finder waits for ``tornado.iostream``: once
that has executed, ``tornado.iostream.IOStream(...)`` is taught to give
the native IOStream on an ioloop_c loop (:func:`ioloop_c._iostream.patch`),
so even a stream made before anything asked for ``IOLoop.current()``
(``TCPClient().connect()`` as a program's first step) is native.  The
finder answers only for those two names, hands the import to the finders
after it, and removes itself once both are done.

When an ioloop_c loop closes, :func:`forget` drops the shim IOLoop
registered for it, so a closed loop is not kept alive by the map.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__all__ = ["forget", "patch", "watch"]

_TARGET = "tornado.ioloop"
_IOSTREAM = "tornado.iostream"
_lock = threading.Lock()
#: The patched tornado.ioloop module, once patched.
_patched: ModuleType | None = None


class AdoptingMap(dict):  # type: ignore[type-arg]
    """Tornado's asyncio-loop-to-IOLoop map; a miss on an open ioloop_c loop
    registers a shim ``MainLoop`` for it and returns that."""

    __slots__ = ()

    def __missing__(self, loop: Any) -> Any:
        from ._loop import Loop

        if isinstance(loop, Loop) and not loop.is_closed():
            from .tornado import MainLoop

            # MainLoop's initialize registers itself in this map.
            return MainLoop(asyncio_loop=loop)
        raise KeyError(loop)


def patch(module: ModuleType) -> None:
    """Teach ``module.IOLoop`` (tornado.ioloop's) to adopt ioloop_c loops.
    Idempotent; the entries already in the map are kept."""
    global _patched
    with _lock:
        cls = module.IOLoop
        current = cls.__dict__.get("_ioloop_for_asyncio")
        if isinstance(current, AdoptingMap):
            _patched = module
            return
        if type(current) is dict:
            cls._ioloop_for_asyncio = AdoptingMap(current)
            _patched = module
            return
    # Not the plain dict this module knows (a future Tornado): fall back
    # to registering a MainLoop each time an ioloop_c loop starts.
    from . import _loop

    if _adopt_on_run not in _loop.run_hooks:
        _loop.run_hooks.append(_adopt_on_run)


def _adopt_on_run(loop: Any) -> None:
    from .tornado import _adopt

    _adopt(loop)


def forget(loop: Any) -> None:
    """Drop the shim IOLoop that Tornado's map holds for ``loop`` (called
    as ``loop`` closes).  Entries of other IOLoop classes stay: those
    remove themselves in their own ``close()``."""
    module = _patched
    if module is None:
        return
    mapping = module.IOLoop._ioloop_for_asyncio
    entry = mapping.get(loop)
    if entry is not None and getattr(entry, "_native", None) is loop:
        entry.closing = True
        mapping.pop(loop, None)


class _PatchAfterExec:
    """Wraps the loader of tornado.ioloop for one import: runs the real
    loader, then :func:`patch`.  The module ends up with the real loader
    as ``__loader__`` and ``__spec__.loader``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _done(module.__name__)
        if module.__name__ == _TARGET:
            patch(module)
        else:
            _patch_iostream()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Watcher:
    """A ``sys.meta_path`` finder that answers only for tornado.ioloop and
    tornado.iostream."""

    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if name not in _waiting:
            return None
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, _Watcher):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module"):
                spec.loader = _PatchAfterExec(loader)
            return spec  # type: ignore[no-any-return]
        return None

    def __repr__(self) -> str:
        return "<ioloop_c: patches tornado.ioloop and tornado.iostream once imported>"


_watcher = _Watcher()
#: The modules the finder still waits for.
_waiting: set[str] = set()


def _done(name: str) -> None:
    _waiting.discard(name)
    if not _waiting:
        try:
            sys.meta_path.remove(_watcher)
        except ValueError:
            pass


def _patch_iostream() -> None:
    from . import _iostream

    _iostream.patch()


def _loaded(name: str, attr: str) -> ModuleType | None:
    # A module that has finished executing (not one mid-import).
    module = sys.modules.get(name)
    if module is None or not hasattr(module, attr):
        return None
    if getattr(module.__spec__, "_initializing", False):
        return None
    return module


def watch() -> None:
    """Patch tornado.ioloop and tornado.iostream now if they are loaded,
    else once they are."""
    module = _loaded(_TARGET, "IOLoop")
    if module is not None:
        patch(module)
    else:
        _waiting.add(_TARGET)
    if _loaded(_IOSTREAM, "IOStream") is not None:
        _patch_iostream()
    else:
        _waiting.add(_IOSTREAM)
    if _waiting and _watcher not in sys.meta_path:
        sys.meta_path.insert(0, _watcher)
