"""The asyncio internals the native Loop relies on are still where it expects.

If a future Python moves them, this fails loudly instead of the loop
misbehaving quietly.
"""

import asyncio

import ioloop_c
from ioloop_c import _compat


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
