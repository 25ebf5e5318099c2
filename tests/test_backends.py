"""Backend selection."""

import os
import subprocess
import sys

import pytest

import ioloop_c


def test_available_backends():
    names = ioloop_c.available_backends()
    assert "poll" in names and "select" in names
    if sys.platform.startswith("linux"):
        assert names[0] == "epoll"
    assert "kqueue" not in names or sys.platform != "linux"


def test_default_and_explicit(backend):
    lp = ioloop_c.IOLoop(backend=backend, make_current=False)
    try:
        assert lp.backend == backend
    finally:
        lp.close()
    default = ioloop_c.Loop()
    try:
        assert default.backend == ioloop_c.available_backends()[0]
    finally:
        default.close()


def test_unknown_backend():
    with pytest.raises(ValueError):
        ioloop_c.IOLoop(backend="nope", make_current=False)


@pytest.mark.parametrize("name", ioloop_c.available_backends())
def test_environment_variable(name):
    code = "import ioloop_c; l = ioloop_c.Loop(); print(l.backend); l.close()"
    env = dict(os.environ, IOLOOP_C_BACKEND=name)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/",
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == name
