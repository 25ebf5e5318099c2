"""TLS on the native transport: asyncio's SSLProtocol, its data phase in C.

asyncio's :class:`~asyncio.sslproto.SSLProtocol` keeps the TLS state
machine (handshake and its timeout, shutdown and its timeout, flow
control, errors, the extra info ``ssl_object`` / ``peercert`` /
``cipher`` / ``compression`` / ``sslcontext``).  :class:`NativeSSLProtocol`
is that class with one change: its app transport is
:class:`SSLAppTransport`, whose ``write()`` is native.  Over ioloop_c's native
socket transport, the transport's read step recognises the protocol and,
while the session is established (``WRAPPED``), reads, decrypts and calls
``data_received()`` in C (csrc/binding/tls.c); ``write()`` encrypts and
sends in C.  Every other step is SSLProtocol's own Python, on the same
attributes.

While established, the C steps call OpenSSL directly on the SSL object's
own ``SSL`` and memory BIOs (csrc/binding/tls_ossl.c, with the functions
of the loaded ``_ssl`` extension); where that cannot be checked safely,
or with ``IOLOOP_C_TLS=methods``, they call the ``_ssl`` objects' Python
methods instead.

``IOLOOP_C_TLS=python`` in the environment, or ``loop.native_tls = False``,
keeps asyncio's SSLProtocol unchanged (still over the native transport
unless ``loop.native_transport`` is False too).
"""

from __future__ import annotations

import os
from asyncio import sslproto
from typing import Any

from . import _core

__all__ = [
    "SSLAppTransport",
    "NativeSSLProtocol",
    "available",
    "native_by_default",
    "set_direct",
    "direct",
]

try:
    import _ssl
    import ssl
except ImportError:  # pragma: no cover - a Python built without ssl
    ssl = None  # type: ignore[assignment]

#: The SSLProtocol attributes csrc/binding/tls.c reads and calls: if this
#: Python's SSLProtocol lacks any, the native path stays off.
_PROTOCOL_NAMES = (
    "_state", "_app_reading_paused", "_ssl_buffer", "_incoming", "_outgoing",
    "_sslobj", "_app_protocol", "_app_protocol_is_buffer", "_write_backlog",
    "_ssl_writing_paused", "_transport", "_write_buffer_size",
    "_outgoing_high_water", "_outgoing_low_water", "_app_writing_paused",
    "_incoming_high_water", "_incoming_low_water", "_ssl_reading_paused",
)
_PROTOCOL_METHODS = (
    "_do_write", "_control_app_writing", "_control_ssl_reading",
    "_call_eof_received", "_start_shutdown", "_fatal_error", "_write_appdata",
    "_get_app_transport", "_do_read",
)


def _supported() -> bool:
    if ssl is None or not hasattr(_core, "TLSWrite") or not hasattr(_core, "TLSState"):
        return False
    if not all(callable(getattr(sslproto.SSLProtocol, m, None)) for m in _PROTOCOL_METHODS):
        return False
    state = getattr(sslproto, "SSLProtocolState", None)
    return (
        state is not None
        and hasattr(state, "WRAPPED")
        and hasattr(ssl, "SSLObject")
        and hasattr(sslproto, "SSLAgainErrors")
        and hasattr(_ssl, "_SSLSocket")
    )


available: bool = _supported()


def native_by_default() -> bool:
    """Whether new loops run TLS's data phase natively (the environment's say)."""
    choice = os.environ.get("IOLOOP_C_TLS", "native").strip().lower()
    return available and choice != "python"


if available:

    class SSLAppTransport(_core.TLSWrite, sslproto._SSLProtocolTransport):  # type: ignore[misc]
        """asyncio's TLS app transport with a native ``write()``."""

    class NativeSSLProtocol(_core.TLSState, sslproto.SSLProtocol):  # type: ignore[misc]
        """asyncio's SSLProtocol whose established phase runs in C over
        ioloop_c's native transport (see the module docstring).

        ``_core.TLSState`` holds the attributes the C steps read as slots
        (``_state``, the BIOs, ``_sslobj``, the backlog, flow-control
        marks and flags): SSLProtocol's methods assign them as before,
        the C side reads them without a dict lookup."""

        def _get_app_transport(self) -> Any:
            if self._app_transport is None:
                if self._app_transport_created:
                    raise RuntimeError("Creating _SSLProtocolTransport twice")
                self._app_transport = SSLAppTransport(self._loop, self)
                self._app_transport_created = True
            return self._app_transport

    def _check_names() -> bool:
        # An SSLProtocol made the way asyncio makes one must carry every
        # attribute the C side reads; a version that renamed any keeps
        # the Python path.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        proto = sslproto.SSLProtocol(None, None, ctx, None, server_hostname="x")
        try:
            return all(hasattr(proto, n) for n in _PROTOCOL_NAMES)
        finally:
            proto._app_transport._closed = True

    available = _check_names()
    if available:
        _core.TLSWrite._setup(
            NativeSSLProtocol,
            sslproto.SSLProtocolState.WRAPPED,
            ssl.SSLObject,
            tuple(sslproto.SSLAgainErrors),
            ssl.MemoryBIO,
            _ssl._SSLSocket,
            _ssl._SSLContext,
        )
else:  # pragma: no cover
    SSLAppTransport = None
    NativeSSLProtocol = None

#: Whether the native steps call OpenSSL directly (see set_direct()).
direct: bool = False


def set_direct(on: bool) -> bool:
    """Let the native TLS steps call OpenSSL directly (``on``), with the
    functions of the loaded ``_ssl`` extension, or make them call the
    ``_ssl`` objects' Python methods.  Process-wide; returns whether the
    direct calls are now on (False where they cannot be: no native TLS,
    ``_ssl`` not a shared library, a free-threaded build)."""
    global direct
    if not available:
        direct = False
        return False
    path = getattr(_ssl, "__file__", None) if on else None
    direct = bool(_core.TLSWrite._set_direct(path if isinstance(path, str) else None))
    return direct


if available:
    set_direct(os.environ.get("IOLOOP_C_TLS", "native").strip().lower() != "methods")
