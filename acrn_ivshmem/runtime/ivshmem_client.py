"""The peer's side of the ivshmem doorbell protocol, checked.

What QEMU's ``ivshmem-doorbell`` device reads from an ivshmem server
(see :mod:`acrn_ivshmem.runtime.ivshmem_server` for the protocol), for host
programs that join as a peer and for tests. :class:`MessageReader`
turns what ``recvmsg`` returns into messages (one little-endian int64,
at most one fd, which must come with the message's first byte);
:class:`PeerView` applies them in order and refuses what a server must
not send. Both own every fd handed to them: a message that is refused
has its fd closed, and :meth:`PeerView.close` closes the rest.
"""

from __future__ import annotations

import array
import os
import socket
import struct

from ..errors import IvshmemProtocolError
from .ivshmem_server import MAX_PEER_ID, PROTOCOL_VERSION

__all__ = ["MESSAGE_SIZE", "MessageReader", "PeerView"]

#: Every message is one little-endian int64.
MESSAGE_SIZE = 8
# Room for more fds than a message may carry, to see (and close) them.
_FDS_PER_READ = 4
_PAGE = 4096


def _close(fds) -> None:
    for fd in fds:
        os.close(fd)


class MessageReader:
    """Reassemble the server's stream into ``(value, fd or None)``."""

    def __init__(self):
        self._data = b""
        self._fd: int | None = None

    @property
    def partial(self) -> bool:
        """True while part of a message has arrived and not the rest."""
        return bool(self._data)

    def feed(self, data: bytes,
             fds: list[int]) -> list[tuple[int, int | None]]:
        """The messages completed by ``data``, which came with ``fds``.

        The fds belong to the message that ``data`` starts; a server
        sends each with its message's first byte, and one at most.
        Raises :class:`IvshmemProtocolError` otherwise (every fd given
        and held is closed then).
        """
        if fds:
            where = ("without a message" if not data else
                     "in the middle of a message" if self._data else
                     None if len(fds) == 1 else "with one message")
            if where is not None:
                _close(fds)
                self.close()
                raise IvshmemProtocolError(
                    f"{len(fds)} fd(s) arrived {where}; the protocol sends "
                    "at most one, with a message's first byte")
            self._fd = fds[0]
        messages = []
        buffer = self._data + data
        whole = len(buffer) - len(buffer) % MESSAGE_SIZE
        for start in range(0, whole, MESSAGE_SIZE):
            value = struct.unpack_from("<q", buffer, start)[0]
            messages.append((value, self._fd))
            self._fd = None
        self._data = buffer[whole:]
        return messages

    def receive(self, sock: socket.socket
                ) -> list[tuple[int, int | None]] | None:
        """Read once from ``sock``: the messages completed, or None at
        the end of the stream. Raises :class:`IvshmemProtocolError` for
        a stream cut inside a message or fds that cannot be messages',
        and :class:`BlockingIOError` from a non-blocking ``sock``."""
        # Never past the current message: its fd comes with its bytes.
        want = MESSAGE_SIZE - len(self._data)
        data, ancillary, flags, _ = sock.recvmsg(
            want, socket.CMSG_SPACE(_FDS_PER_READ * 4),
            socket.MSG_CMSG_CLOEXEC)
        fds = array.array("i")
        for level, kind, payload in ancillary:
            if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                fds.frombytes(payload[:len(payload) - len(payload) % 4])
        if flags & socket.MSG_CTRUNC:
            _close(fds)
            self.close()
            raise IvshmemProtocolError("more fds arrived than a message "
                                       "may carry")
        if not data:
            _close(fds)
            if self._data:
                count = len(self._data)
                self.close()
                raise IvshmemProtocolError(
                    f"the stream ended {count} byte(s) into a message")
            return None
        return self.feed(data, list(fds))

    def close(self) -> None:
        """Drop a partial message and close its fd."""
        self._data = b""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PeerView:
    """What a peer knows, from the server's messages applied in order.

    ``vectors`` is the peer's own vector count (QEMU's ``vectors=``):
    no peer may be given more eventfds. After the welcome, ``version``
    is 0, ``id`` the peer's id, ``shm`` the shared memory's fd, ``own``
    the eventfds that ring this peer, and ``peers`` maps every other
    peer's id to the eventfds that ring it. :attr:`ready` says when the
    welcome is over (its own eventfds come last).
    """

    def __init__(self, vectors: int):
        if vectors < 1:
            raise ValueError(f"{vectors} vectors: a peer has 1 or more")
        self.vectors = vectors
        self.version: int | None = None
        self.id: int | None = None
        self.shm: int | None = None
        self.own: list[int] = []
        self.peers: dict[int, list[int]] = {}

    @property
    def ready(self) -> bool:
        """True once the peer has its id, the memory and its eventfds."""
        return len(self.own) == self.vectors

    def apply(self, value: int, fd: int | None) -> None:
        """Apply one message; :class:`IvshmemProtocolError` (the fd
        closed) if a server must not send it now."""
        try:
            self._apply(value, fd)
        except IvshmemProtocolError:
            if fd is not None:
                os.close(fd)
            raise

    def _apply(self, value: int, fd: int | None) -> None:
        if self.version is None:
            if (value, fd) != (PROTOCOL_VERSION, None):
                raise IvshmemProtocolError(
                    _text("protocol version", value, fd)
                    + f"; peers speak version {PROTOCOL_VERSION}")
            self.version = value
        elif self.id is None:
            if fd is not None or not 0 <= value <= MAX_PEER_ID:
                raise IvshmemProtocolError(
                    _text("peer id", value, fd) + f"; ids are 0 to "
                    f"{MAX_PEER_ID}, with no fd")
            self.id = value
        elif self.shm is None:
            if value != -1 or fd is None:
                raise IvshmemProtocolError(
                    _text("shared memory", value, fd)
                    + "; expected -1 with the memory's fd")
            _check_memory(fd)
            self.shm = fd
        elif not 0 <= value <= MAX_PEER_ID:
            raise IvshmemProtocolError(
                _text("message", value, fd) + " after the shared memory; "
                f"peer ids are 0 to {MAX_PEER_ID}")
        elif fd is None:
            self._leave(value)
        else:
            fds = self.own if value == self.id else self.peers.setdefault(
                value, [])
            if len(fds) == self.vectors:
                raise IvshmemProtocolError(
                    f"eventfd {len(fds) + 1} for peer {value}; this peer "
                    f"has {self.vectors} vector(s)")
            fds.append(fd)

    def _leave(self, peer_id: int) -> None:
        if peer_id == self.id:
            raise IvshmemProtocolError(
                f"told that peer {peer_id}, this peer, left")
        # QEMU's server tells every peer, even one never told of it.
        _close(self.peers.pop(peer_id, ()))

    def close(self) -> None:
        """Close every fd this view holds."""
        _close(self.own)
        self.own = []
        for fds in self.peers.values():
            _close(fds)
        self.peers = {}
        if self.shm is not None:
            os.close(self.shm)
            self.shm = None


def _text(what: str, value: int, fd: int | None) -> str:
    return f"{what} {value} {'with' if fd is not None else 'without'} an fd"


def _check_memory(fd: int) -> None:
    """QEMU maps the whole file as BAR2: a power of two, 4 KiB or more."""
    try:
        size = os.fstat(fd).st_size
    except OSError as exc:
        raise IvshmemProtocolError(
            f"shared memory fd: {exc.strerror}") from None
    if size < _PAGE or size & (size - 1):
        raise IvshmemProtocolError(
            f"shared memory of {size} bytes; QEMU maps a power of two, "
            "4 KiB or more")
