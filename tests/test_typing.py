"""The public API as a type checker sees it: tests/typing/public_api.py
must pass mypy --strict against the installed package (its .pyi stub and
py.typed marker), so users' type checks get real types, not Any."""

import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.timeout(300)


def _mypy(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--no-incremental", *args],
        capture_output=True, text=True, cwd=cwd)


def test_public_api_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    # Checked from a temporary directory, so the installed package (not the
    # source tree) is what mypy resolves.
    target = tmp_path / "public_api.py"
    shutil.copy(os.path.join(HERE, "typing", "public_api.py"), target)
    proc = _mypy(str(target), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_use_is_caught(tmp_path):
    """The check can fail: a wrong type is reported, not hidden by Any."""
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    target = tmp_path / "wrong.py"
    target.write_text(
        "import ioloop_c\n"
        "loop = ioloop_c.IOLoop()\n"
        "when: str = loop.call_later(1, print).when()\n"
    )
    proc = _mypy(str(target), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Incompatible types in assignment" in proc.stdout
