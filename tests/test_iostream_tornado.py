"""Tornado's own IOStream tests (tornado.test.iostream_test), run against
ioloop_c.tornado.IOStream directly: each test class is subclassed with
factories that make the native class, on two loops, the shim's IOLoop over
a native loop (the C event path on the native add_handler) and Tornado's
stock AsyncIOLoop over asyncio's own loop (the native class does not need
our loop).  ``make tornado-suite`` runs the same module (and the rest of
Tornado's suite) through each way in, where ``IOStream(...)`` gives the
native class by itself."""

import asyncio
import logging
import socket
import unittest

import pytest

pytest.importorskip("tornado")
from tornado.platform.asyncio import AsyncIOLoop  # noqa: E402
from tornado.test import iostream_test as t  # noqa: E402

import ioloop_c.tornado as shim  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    # Overriding get_new_ioloop is how a test picks its loop in Tornado 6.
    pytest.mark.filterwarnings("ignore:get_new_ioloop is deprecated:DeprecationWarning"),
]


@pytest.fixture(autouse=True, scope="module")
def quiet_access_log():
    """As Tornado's own runner does: the access log is not what these tests
    look at, and Tornado's test case fails on any unexpected log line."""
    access = logging.getLogger("tornado.access")
    level = access.level
    access.setLevel(logging.CRITICAL)
    yield
    access.setLevel(level)


def _native(sock, **kwargs):
    stream = shim.IOStream(sock, **kwargs)
    assert type(stream) is shim.IOStream
    return stream


class _OnShim:
    def get_new_ioloop(self):
        return shim.IOLoop()


class _OnStockAsyncio:
    def get_new_ioloop(self):
        return AsyncIOLoop(asyncio_loop=asyncio.new_event_loop())


class _NativePair:
    def _make_server_iostream(self, connection, **kwargs):
        return _native(connection, **kwargs)

    def _make_client_iostream(self, connection, **kwargs):
        return _native(connection, **kwargs)


class _NativeWebClient:
    def _make_client_iostream(self):
        return _native(socket.socket())


class TestNativeIOStreamShim(_OnShim, _NativePair, t.TestIOStream):
    pass


class TestNativeIOStreamStockLoop(_OnStockAsyncio, _NativePair, t.TestIOStream):
    pass


class TestNativeIOStreamWebShim(_OnShim, _NativeWebClient, t.TestIOStreamWebHTTP):
    pass


class TestNativeIOStreamWebStockLoop(
    _OnStockAsyncio, _NativeWebClient, t.TestIOStreamWebHTTP
):
    pass


def test_every_tornado_iostream_test_is_run():
    """The subclasses above run every test method of Tornado's classes
    (nothing is shadowed or dropped by the mixins)."""
    loader = unittest.TestLoader()
    for ours, theirs in [
        (TestNativeIOStreamShim, t.TestIOStream),
        (TestNativeIOStreamStockLoop, t.TestIOStream),
        (TestNativeIOStreamWebShim, t.TestIOStreamWebHTTP),
        (TestNativeIOStreamWebStockLoop, t.TestIOStreamWebHTTP),
    ]:
        names = loader.getTestCaseNames(theirs)
        assert len(names) >= 5
        assert loader.getTestCaseNames(ours) == names
