"""The asyncio internals the native Loop relies on are still where it expects,
with the signatures this Python's asyncio calls them with.

ioloop_c/_compat.py lists, per Python version, each private method the Loop
overrides or is called through, with its signature.  Here the running
Python is held to that list three ways: its base class's signatures must
equal the listed ones; every way the listed signature can be called must
bind to ours; and every call of one of those names on a loop, anywhere in
this Python's Lib/asyncio, must bind to ours.  A Python whose asyncio
calls one of them differently fails here, naming the method and the call.
"""

import ast
import asyncio
import contextvars
import inspect
import os
import socket

import pytest

import ioloop_c
from ioloop_c import _compat

pytestmark = pytest.mark.timeout(30)

NAMES = _compat.names_for()


def test_no_internal_name_missing():
    assert _compat.missing_names() == {}


def test_replaced_methods_are_native():
    # Every scheduling-state method asyncio would use is ours, not asyncio's.
    for name in _compat.REPLACED:
        ours = getattr(ioloop_c.Loop, name)
        theirs = getattr(_compat.SelectorLoopBase, name)
        assert ours is not theirs, name


def test_loop_is_an_asyncio_loop():
    loop = ioloop_c.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(loop, asyncio.SelectorEventLoop)
    finally:
        loop.close()


@pytest.mark.parametrize("name", NAMES)
def test_listed_signature_is_this_pythons(name):
    # The per-version list must say what this Python's asyncio defines.
    theirs = str(inspect.signature(getattr(_compat.SelectorLoopBase, name)))
    assert theirs == _compat.signature_for(name), (
        f"asyncio {_compat.PY} defines {name}{theirs}; "
        f"ioloop_c/_compat.py lists {_compat.signature_for(name)}"
    )


def test_list_covers_every_version():
    # 3.15's context= is listed, and absent before it.
    assert "context" in _compat.signature_for("_add_reader", (3, 15))
    assert "context" not in _compat.signature_for("_add_reader", (3, 14))
    assert _compat.signature_for("_run_forever_setup", (3, 12)) is None
    assert _compat.signature_for("_run_forever_setup", (3, 13)) == "(self)"


def _calls_allowed_by(sig):
    """(args, kwargs) for each distinct way ``sig`` may be called."""
    params = list(sig.parameters.values())[1:]  # self
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in pos if p.default is p.empty]
    kwonly = [p for p in params if p.kind == p.KEYWORD_ONLY]
    star = any(p.kind == p.VAR_POSITIONAL for p in params)
    kwonly_required = {p.name: object() for p in kwonly if p.default is p.empty}
    calls = []
    for n in range(len(required), len(pos) + 1):
        calls.append(([object()] * n, dict(kwonly_required)))
    if star:
        calls.append(([object()] * (len(pos) + 2), dict(kwonly_required)))
    for p in pos[len(required):]:
        if p.kind == p.POSITIONAL_OR_KEYWORD:
            calls.append(([object()] * len(required), {p.name: object(), **kwonly_required}))
    for p in kwonly:
        calls.append(([object()] * len(required), {p.name: object(), **kwonly_required}))
    return calls


def _bind_or_fail(name, ours, args, kwargs, where):
    try:
        inspect.signature(ours).bind(object(), *args, **kwargs)
    except TypeError as exc:
        pytest.fail(
            f"ioloop_c.Loop.{name}{inspect.signature(ours)} does not accept "
            f"{where}: {len(args)} positional, keywords {sorted(kwargs)} ({exc})"
        )


@pytest.mark.parametrize("name", NAMES)
def test_ours_accepts_every_call_the_listed_signature_allows(name):
    ours = getattr(ioloop_c.Loop, name)
    listed = _compat.signature_for(name)
    base = inspect.signature(getattr(_compat.SelectorLoopBase, name))
    for args, kwargs in _calls_allowed_by(base):
        _bind_or_fail(name, ours, args, kwargs, f"a call that {listed} allows")


# -- every call site in this Python's Lib/asyncio ---------------------------
def _loop_classes(module):
    out = set()
    for attr, value in vars(module).items():
        if isinstance(value, type) and issubclass(value, asyncio.AbstractEventLoop):
            out.add(attr)
    return out


def _receiver_is_loop(node, in_loop_class):
    # self.X(...) inside a loop class; loop.X(...), self._loop.X(...),
    # anything._loop.X(...) elsewhere.
    if isinstance(node, ast.Name):
        return node.id == "loop" or (node.id == "self" and in_loop_class)
    if isinstance(node, ast.Attribute):
        return node.attr in ("_loop", "loop")
    return False


def _call_sites():
    """(name, positional count, has *args, keyword names, where) for each call
    of a listed name on a loop in this Python's Lib/asyncio."""
    import importlib

    pkg_dir = os.path.dirname(asyncio.__file__)
    sites = []
    for fn in sorted(os.listdir(pkg_dir)):
        if not fn.endswith(".py") or fn.startswith(("windows_", "proactor_", "__")):
            continue
        modname = "asyncio." + fn[:-3]
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        loop_classes = _loop_classes(module)
        path = os.path.join(pkg_dir, fn)
        tree = ast.parse(open(path, encoding="utf-8").read(), path)

        def visit(node, in_loop_class):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    visit(child, child.name in loop_classes)
                    continue
                if (
                    isinstance(child, ast.Call)
                    and isinstance(child.func, ast.Attribute)
                    and child.func.attr in NAMES
                    and _receiver_is_loop(child.func.value, in_loop_class)
                ):
                    starred = any(isinstance(a, ast.Starred) for a in child.args)
                    npos = sum(not isinstance(a, ast.Starred) for a in child.args)
                    kws = [k.arg for k in child.keywords if k.arg is not None]
                    sites.append(
                        (child.func.attr, npos, starred, kws, f"{fn}:{child.lineno}")
                    )
                visit(child, in_loop_class)

        visit(tree, False)
    return sites


SITES = _call_sites()


def test_call_sites_found():
    names = {s[0] for s in SITES}
    # The scan sees asyncio's own calls (at least these, on every version).
    assert {"_add_reader", "_remove_reader", "_add_writer", "_make_socket_transport"} <= names
    if _compat.PY >= (3, 15):
        assert any(s[0] == "_add_reader" and "context" in s[3] for s in SITES)


@pytest.mark.parametrize("site", SITES, ids=[f"{s[0]}@{s[4]}" for s in SITES])
def test_every_asyncio_call_site_binds_to_ours(site):
    name, npos, starred, kws, where = site
    ours = getattr(ioloop_c.Loop, name)
    kwargs = {k: object() for k in kws}
    for extra in (0, 2) if starred else (0,):
        args = [object()] * (npos + extra)
        _bind_or_fail(name, ours, args, kwargs, f"asyncio's call at {where}")


# -- context= on _add_reader / _add_writer ----------------------------------
VAR = contextvars.ContextVar("VAR", default="unset")


@pytest.mark.parametrize("method", ["_add_reader", "_add_writer"])
def test_fd_callback_runs_in_given_context(aloop, method):
    a, b = socket.socketpair()
    try:
        b.send(b"x")
        ctx = contextvars.copy_context()
        ctx.run(VAR.set, "given")
        seen = []

        def cb(tag):
            seen.append((tag, VAR.get()))
            getattr(aloop, "_remove_" + method[5:])(a)
            aloop.stop()

        VAR.set("caller")
        getattr(aloop, method)(a.fileno(), cb, "t", context=ctx)
        aloop.run_forever()
        assert seen == [("t", "given")]
        # Without context=: a copy of the caller's, as before.
        getattr(aloop, method)(a.fileno(), cb, "u")
        aloop.run_forever()
        assert seen[1] == ("u", "caller")
        getattr(aloop, method)(a.fileno(), cb, "v", context=None)
        aloop.run_forever()
        assert seen[2] == ("v", "caller")
    finally:
        VAR.set("unset")
        a.close()
        b.close()


@pytest.mark.parametrize("method", ["_add_reader", "_add_writer"])
def test_fd_callback_bad_keywords(aloop, method):
    a, b = socket.socketpair()
    try:
        with pytest.raises(TypeError, match="context must be a contextvars.Context"):
            getattr(aloop, method)(a.fileno(), print, context={})
        with pytest.raises(TypeError, match="unexpected keyword argument 'ctx'"):
            getattr(aloop, method)(a.fileno(), print, ctx=None)
        with pytest.raises(TypeError, match="at least 2 positional"):
            getattr(aloop, method)(a.fileno(), context=None)
        assert aloop._fd_info(a.fileno()) is None  # nothing registered
    finally:
        a.close()
        b.close()


# -- a mistake in that layer surfaces, never hangs ----------------------------
def test_transport_setup_error_reaches_the_caller(aloop):
    """A TypeError raised while a transport sets itself up (what 3.15's
    _add_reader(..., context=) did to a loop that took no keywords) must
    reach whoever waits on the connection, not leave it silent forever."""
    reported = []
    aloop.set_exception_handler(lambda loop, ctx: reported.append(ctx))
    real_add_reader = aloop._add_reader

    def failing_add_reader(fd, callback, *args, **kwargs):
        if getattr(callback, "__name__", "") == "_read_ready":
            raise TypeError("injected: _add_reader() got an unexpected keyword")
        return real_add_reader(fd, callback, *args, **kwargs)

    async def main():
        server = await asyncio.start_server(lambda r, w: w.write(b"hello"), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        aloop._add_reader = failing_add_reader
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            with pytest.raises(TypeError, match="injected"):
                await asyncio.wait_for(reader.read(5), 5)
            writer.close()
        finally:
            del aloop._add_reader
            server.close()
            await server.wait_closed()

    aloop.run_until_complete(main())
    assert any(isinstance(c.get("exception"), TypeError) for c in reported)
    assert all("transport" in c for c in reported if isinstance(c.get("exception"), TypeError))


def test_transport_callback_error_when_closing_is_only_reported(aloop):
    # A failing callback of a transport that is already closing (its
    # protocol's connection_lost raised) is reported as asyncio does.
    reported = []
    aloop.set_exception_handler(lambda loop, ctx: reported.append(ctx))

    class Proto(asyncio.Protocol):
        def connection_lost(self, exc):
            raise ValueError("from connection_lost")

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        transport, _ = await aloop.connect_accepted_socket(Proto, a)
        transport.close()
        await asyncio.sleep(0.01)
        b.close()

    aloop.run_until_complete(main())
    assert [type(c["exception"]) for c in reported] == [ValueError]
    assert reported[0]["message"].startswith("Exception in callback")
    assert "handle" in reported[0]
