"""The native datagram transport: the Python half.

:class:`ioloop_c._core.DatagramTransport` (csrc/binding/datagram.c and
datagram_send.c) holds the data path: datagrams read in the tick into
the loop's buffer and handed to ``datagram_received(data, addr)``,
``error_received`` for the kernel's errors (ECONNREFUSED on a connected
socket), ``sendto`` with its queue and flow control, ``close``, ``abort``,
``pause_reading`` and ``resume_reading`` (its life cycle shared with the
stream transport's, in csrc/binding/transport_life.c).  This subclass
adds the set-up; ``connection_lost``, reports, ``repr`` and the
ResourceWarning of a transport dropped open come from
:class:`ioloop_c._transport.NativeTransportBase`, as the stream
transport's do.

The Loop makes these in ``_make_datagram_transport`` (what asyncio's
``create_datagram_endpoint`` calls) for AF_INET, AF_INET6 and AF_UNIX
datagram sockets; ``IOLOOP_C_TRANSPORT=python`` in the environment, or
``loop.native_transport = False``, keeps asyncio's own transport.

Behaviour follows asyncio's ``_SelectorDatagramTransport`` of the running
Python: where it has a ``_header_size`` (3.13 on, and 3.12's later
releases; not 3.12.1), empty datagrams are sent and each queued datagram
counts that many bytes (8) more towards the write buffer size; elsewhere,
empty ones are dropped and only the data counts.  Two deliberate
differences: an exception raised by ``datagram_received`` or ``error_received`` in the
loop goes to the loop's exception handler without a handle (asyncio's
report names its reader handle), and ``sendto`` on a transport whose
``connection_lost`` has run drops the datagram (asyncio fails there on
the socket it no longer has).
"""

from __future__ import annotations

import socket
from asyncio import futures, selector_events, transports, trsock
from typing import Any

from . import _core, _transport

__all__ = ["DatagramTransport", "FAMILIES", "native_for"]

#: The socket families the native transport takes.
FAMILIES = (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)

# Newer asyncio (3.13 on, and 3.12's later releases; 3.12.1 not yet): empty
# datagrams are sent, and the write buffer size counts a header per queued
# datagram.  Told by the running asyncio's own transport, not the version.
_HEADER_SIZE = int(
    getattr(selector_events._SelectorDatagramTransport, "_header_size", 0)
)
_NEW_SEMANTICS = _HEADER_SIZE > 0

_core_type: Any = getattr(_core, "DatagramTransport", None)
DatagramTransport: Any = None


def native_for(sock: Any) -> bool:
    """Whether the native transport can serve this socket."""
    return (
        _core_type is not None
        and isinstance(sock, socket.socket)
        and sock.type == socket.SOCK_DGRAM
        and sock.family in FAMILIES
    )


class _UnnamedPeer(str):
    """The peername of a connected socket whose peer has no address: equal
    to ``''``, as ``getpeername()`` says, but true, as a peer that exists."""

    __slots__ = ()

    def __new__(cls) -> _UnnamedPeer:
        return super().__new__(cls, "")

    def __bool__(self) -> bool:
        return True


if _core_type is not None:

    class DatagramTransport(_core_type, _transport.NativeTransportBase):  # type: ignore[no-redef]
        """An asyncio datagram transport whose data path is native."""

        max_size = 256 * 1024

        def __init__(
            self,
            loop: Any,
            sock: socket.socket,
            protocol: Any,
            address: Any = None,
            waiter: Any = None,
            extra: dict[str, Any] | None = None,
        ) -> None:
            transports.BaseTransport.__init__(self, extra)
            self._extra["socket"] = trsock.TransportSocket(sock)
            try:
                self._extra["sockname"] = sock.getsockname()
            except OSError:
                self._extra["sockname"] = None
            if "peername" not in self._extra:
                try:
                    self._extra["peername"] = sock.getpeername()
                except OSError:
                    self._extra["peername"] = None
            if self._extra["peername"] == "":
                # A connected socket whose peer has no name (a Unix
                # socketpair): connected all the same, as uvloop has it,
                # so sendto(data) sends to the peer.
                self._extra["peername"] = _UnnamedPeer()
            self._native_init(
                loop, sock, protocol, address, bool(self._extra["peername"]),
                _HEADER_SIZE, _NEW_SEMANTICS,
            )
            _transport.register(loop, self._sock_fd, self)
            loop.call_soon(protocol.connection_made, self)
            # Reading starts only once connection_made() has run.
            loop.call_soon(self._start_reading)
            if waiter is not None:
                loop.call_soon(futures._set_result_unless_cancelled, waiter, None)
