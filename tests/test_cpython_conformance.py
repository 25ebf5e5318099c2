"""CPython's own asyncio tests on ioloop_c, in the suite.

The full side-by-side report (every test_asyncio module, ours against
stock asyncio) is `make conformance`; here the modules that exercise the
loop itself run on ioloop_c and must pass as they do on stock asyncio.
"""

import json
import os
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "conformance", "cpython_asyncio.py")

sys.path.insert(0, os.path.dirname(SCRIPT))
import cpython_asyncio  # noqa: E402


@pytest.mark.timeout(150)
@pytest.mark.parametrize("module", ["test_events", "test_sock_lowlevel", "test_streams",
                                    "test_base_events", "test_unix_events"])
def test_module_passes_on_ioloop_c(module):
    # Inside the 150 s above: a hung test is reported by name (with its
    # traceback) and the module stops there.
    result = cpython_asyncio.run_module("ioloop_c", module, timeout=100,
                                        test_timeout=30, max_timeouts=1)
    assert result["run"] > 0
    assert result["failed"] == [] and result["errors"] == [], json.dumps(result, indent=1)
