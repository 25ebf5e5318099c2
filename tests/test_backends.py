"""Backend selection: available_backends(), IOLoop(backend=...), the
IOLOOP_C_BACKEND environment variable, loop.backend."""

import os
import subprocess
import sys

import pytest

import ioloop_c

pytestmark = pytest.mark.timeout(60)


def test_available_backends():
    names = ioloop_c.available_backends()
    assert isinstance(names, list)
    assert "poll" in names and "select" in names
    assert len(set(names)) == len(names)
    if sys.platform.startswith("linux"):
        assert "epoll" in names
        assert names[0] == "epoll"  # best first
        assert "kqueue" not in names


def test_explicit_backend_is_reported(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    try:
        assert lp.backend == backend
    finally:
        lp.close()


def test_the_loop_fixture_uses_its_backend(loop, backend):
    assert loop.backend == backend


def test_default_is_the_best(monkeypatch):
    monkeypatch.delenv("IOLOOP_C_BACKEND", raising=False)
    code = "import ioloop_c; l = ioloop_c.IOLoop(); print(l.backend); l.close()"
    env = {k: v for k, v in os.environ.items() if k != "IOLOOP_C_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/",
                         capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == ioloop_c.available_backends()[0]


@pytest.mark.parametrize("name", ["nope", "epoll2"])
def test_unknown_backend_is_value_error(name):
    ioloop_c.IOLoop.clear_current()
    with pytest.raises(ValueError):
        ioloop_c.IOLoop(backend=name)
    # The half-made loop did not become current.
    assert ioloop_c.IOLoop.current(instance=False) is None


@pytest.mark.parametrize("name", ioloop_c.available_backends())
def test_environment_variable_picks_the_default(name):
    code = ("import ioloop_c; l = ioloop_c.IOLoop(); "
            "out = []; l.add_callback(out.append, 1); l.add_callback(l.stop); l.start(); "
            "print(l.backend, out); l.close()")
    env = dict(os.environ, IOLOOP_C_BACKEND=name)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/",
                         capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == f"{name} [1]"


def test_explicit_backend_beats_environment_variable():
    names = ioloop_c.available_backends()
    want = names[-1]
    env_name = names[0]
    code = (f"import ioloop_c; l = ioloop_c.IOLoop(backend={want!r}); "
            "print(l.backend); l.close()")
    env = dict(os.environ, IOLOOP_C_BACKEND=env_name)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/",
                         capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == want
