"""Waiting for a peer: back-off polling, or a doorbell.

A channel waits (for data, or for room) in one of two ways:

- :class:`Backoff` polls the counters, spinning briefly and then
  sleeping longer and longer up to a cap. It needs nothing.
- A doorbell interrupts the waiting side. On the host,
  :class:`ServerDoorbell` is a client of the ivshmem server
  (``acrn-shm ivshmem-server``, QEMU's protocol): the server hands it
  its peer id, the shared memory and the eventfds of every peer; it
  rings a peer by writing that peer's eventfd (QEMU turns it into an
  MSI-X interrupt in a guest) and waits by reading its own. It needs
  read and write access to the server's socket and nothing else.

A doorbell object has ``word`` (the value for the state table: ``1 <<
32 | id << 16 | vector``), ``ring(word)``, ``wait(seconds)``, ``fileno()``
and ``close()``; the guest's (BAR0 doorbell register to ring, a vfio
MSI-X eventfd to wait: :class:`~.guest_doorbell.GuestDoorbell`) follows
the same shape.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import struct
import threading
import time

from ..errors import quoted
from .errors import ChannelError
from .layout import DOORBELL_PRESENT

log = logging.getLogger(__name__)

_MESSAGE = struct.Struct("<q")
_PROTOCOL_VERSION = 0
_FENCE = threading.Lock()


def full_fence() -> None:
    """A full memory barrier (store-load included) from Python.

    x86-64 may let a load pass an earlier store; the doorbell handshake
    (store ``waiting``, then load the counter; store the counter, then
    load ``waiting``) must not. An uncontended ``threading.Lock``
    acquire and release each run a ``lock``-prefixed instruction
    (glibc's semaphore or mutex), which is a full barrier on x86-64.
    """
    _FENCE.acquire()
    _FENCE.release()


class Backoff:
    """Polling with back-off: spin for ``spin`` seconds (yielding the
    CPU to anything else that is ready at each poll), then sleep from
    ``first_sleep`` seconds, doubling up to ``max_sleep``.

    :meth:`reset` after progress; :meth:`pause` once per empty poll.
    """

    def __init__(self, spin: float = 50e-6, first_sleep: float = 20e-6,
                 max_sleep: float = 1e-3):
        self.spin = spin
        self.first_sleep = first_sleep
        self.max_sleep = max_sleep
        self._started: float | None = None
        self._sleep = first_sleep

    def reset(self) -> None:
        """Start over: the next waits spin again."""
        self._started = None
        self._sleep = self.first_sleep

    def pause(self, remaining: float | None) -> None:
        """Wait a little (never past ``remaining`` seconds)."""
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if now - self._started < self.spin:
            # Free when the CPU is idle; on a busy machine it lets the
            # other side (or anything else) run instead of spinning.
            os.sched_yield()
            return
        pause = self._sleep
        self._sleep = min(self._sleep * 2, self.max_sleep)
        if remaining is not None:
            pause = min(pause, remaining)
        if pause > 0:
            time.sleep(pause)


class ServerDoorbell:
    """A peer of an ivshmem server, for its doorbells (host side).

    :meth:`connect` reads the server's greeting: protocol version, this
    peer's id, the shared memory fd (:attr:`shm_fd`, kept open until
    :meth:`close`) and the eventfds of the peers already there and of
    this one. Peers that join or leave later are learned when needed.
    """

    def __init__(self, sock: socket.socket, where: str):
        self._sock = sock
        self.where = where
        self.id = -1
        self.shm_fd = -1
        self._own: list[int] = []
        self._peers: dict[int, list[int]] = {}
        self._vector = 0
        self._listening = True

    @classmethod
    def connect(cls, socket_path: str, timeout: float = 5.0,
                vector: int = 0) -> ServerDoorbell:
        """Connect to the server at ``socket_path``; wait on ``vector``.

        Raises :class:`ChannelError` when the server is not there or
        speaks another protocol.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        bell = cls(sock, f"ivshmem server {quoted(socket_path)}")
        try:
            sock.connect(socket_path)
            version, _ = bell._message()
            if version != _PROTOCOL_VERSION:
                raise ChannelError(f"{bell.where} speaks protocol "
                                   f"{version}, not {_PROTOCOL_VERSION}")
            bell.id, _ = bell._message()
            value, bell.shm_fd = bell._message()
            if value != -1 or bell.shm_fd < 0:
                raise ChannelError(f"{bell.where} sent no shared memory")
            bell._vector = vector
            while len(bell._own) <= vector:
                bell._take(*bell._message())
            bell._drain()
        except OSError as exc:
            bell.close()
            raise ChannelError(f"{bell.where}: {exc.strerror or exc}"
                               ) from None
        except BaseException:
            bell.close()
            raise
        return bell

    @property
    def word(self) -> int:
        """This peer's doorbell word for the state table."""
        return DOORBELL_PRESENT | self.id << 16 | self._vector

    def _message(self) -> tuple[int, int]:
        """One message: its value and its fd (-1 without one)."""
        try:
            data, fds, _, _ = socket.recv_fds(self._sock, 8, 1,
                                              socket.MSG_CMSG_CLOEXEC)
            while data and len(data) < 8:  # a stream may split one
                more = self._sock.recv(8 - len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            raise ChannelError(f"{self.where}: {exc.strerror or exc}"
                               ) from None
        if len(data) != 8:
            for fd in fds:
                os.close(fd)
            raise ChannelError(f"{self.where} closed the connection")
        return _MESSAGE.unpack(data)[0], (fds[0] if fds else -1)

    def _take(self, peer: int, fd: int) -> None:
        if fd < 0:  # a peer left
            for old in self._peers.pop(peer, ()):
                os.close(old)
        elif peer == self.id:
            self._own.append(fd)
        else:
            self._peers.setdefault(peer, []).append(fd)

    def _drain(self) -> None:
        """Take every message waiting now (joins and leaves). When the
        server has gone, keep the eventfds known and stop listening."""
        try:
            while (self._listening
                   and select.select([self._sock], [], [], 0)[0]):
                self._take(*self._message())
        except ChannelError as exc:
            self._listening = False
            log.warning("%s; peers that join later cannot be rung", exc)

    def ring(self, word: int) -> bool:
        """Interrupt the peer whose doorbell word is ``word``; False
        when the server does not know that peer (it left)."""
        peer, vector = (word >> 16) & 0xFFFF, word & 0xFFFF
        fds = self._peers.get(peer)
        if fds is None or vector >= len(fds):
            self._drain()
            fds = self._peers.get(peer)
            if fds is None or vector >= len(fds):
                return False
        os.eventfd_write(fds[vector], 1)
        return True

    def wait(self, seconds: float) -> bool:
        """Block until this peer is rung (True) or ``seconds`` pass."""
        own = self._own[self._vector]
        deadline = time.monotonic() + seconds
        while True:
            watched = [own, self._sock] if self._listening else [own]
            ready = select.select(watched, [], [],
                                  max(0.0, deadline - time.monotonic()))[0]
            if own in ready:
                try:
                    os.eventfd_read(own)
                except BlockingIOError:
                    pass
                return True
            if not ready:
                return False
            self._drain()

    def fileno(self) -> int:
        """The eventfd this peer is rung on (for select or poll)."""
        return self._own[self._vector]

    def close(self) -> None:
        """Close the connection and every fd (the server then tells the
        other peers that this one left)."""
        self._sock.close()
        fds = [*self._own, *(fd for fds in self._peers.values()
                             for fd in fds)]
        if self.shm_fd >= 0:
            fds.append(self.shm_fd)
        for fd in fds:
            os.close(fd)
        self._own, self._peers, self.shm_fd = [], {}, -1


def server_doorbell(socket_path: str | None) -> ServerDoorbell | None:
    """A :class:`ServerDoorbell` for ``socket_path``, or None (polling)
    with one warning line when there is no path or no server there."""
    if socket_path is None:
        return None
    try:
        return ServerDoorbell.connect(socket_path)
    except ChannelError as exc:
        log.warning("%s; polling instead of the doorbell", exc)
        return None
