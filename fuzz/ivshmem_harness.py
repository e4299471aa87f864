"""What the two readers of the ivshmem doorbell protocol do with any
bytes and fds, and what must hold.

- :func:`check_client`: the input is what a server sends a peer, over a
  real socket pair; :class:`~acrn_ivshmem.runtime.ivshmem_client.MessageReader`
  and :class:`~acrn_ivshmem.runtime.ivshmem_client.PeerView` read it.
- :class:`ServerCheck`: the input is what a peer sends a live
  :class:`~acrn_ivshmem.runtime.ivshmem_server.IvshmemServer`, which another
  peer (the observer) is connected to.

Either raises :class:`Violation` where acrn-shm would misbehave: an
exception other than ``IvshmemProtocolError`` (client side), a message
that is not one line, an fd left open, a view that breaks the protocol's
rules, a server that keeps a peer that sent data, dies, or leaves the
observer believing in a peer that is gone.

An input is chunks, each ``HEAD [KIND...] [BYTE...]``: ``HEAD & 7`` fds
(of the kinds that follow: eventfds, memfds of several sizes, a pipe,
/dev/null), ``HEAD >> 3`` bytes of data, sent by one ``sendmsg``. The
first byte of an input is an option byte (see each check).

Used by ``fuzz_ivshmem_server.py`` and by the property tests in
``tests/test_ivshmem_client.py`` and ``tests/test_ivshmem_server.py``;
needs neither atheris nor hypothesis.
"""

from __future__ import annotations

import array
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

from acrn_ivshmem.errors import IvshmemProtocolError
from acrn_ivshmem.runtime.ivshmem_client import MessageReader, PeerView
from acrn_ivshmem.runtime.ivshmem_server import MAX_PEER_ID, IvshmemServer

#: How long the server may take to act on one input, in seconds.
PATIENCE = 5.0
_MIB = 1024 * 1024


class Violation(Exception):
    """acrn-shm would misbehave on this input (a fuzzing finding)."""


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(data, fd kinds)`` of each chunk of ``data``."""
    found, at = [], 0
    while at < len(data):
        head = data[at]
        kinds = data[at + 1:at + 1 + (head & 7)]
        at += 1 + len(kinds)
        found.append((data[at:at + (head >> 3)], kinds))
        at += head >> 3
    return found


def make_fd(kind: int) -> int:
    """A new fd of one of the kinds a peer or server could pass."""
    kind %= 6
    if kind == 0:
        return os.eventfd(0, os.EFD_CLOEXEC)
    if kind == 4:
        read, write = os.pipe()
        os.close(write)
        return read
    if kind == 5:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    fd = os.memfd_create("fuzz", os.MFD_CLOEXEC)
    os.ftruncate(fd, (4096, 2 * _MIB, 3 * 4096)[kind - 1])
    return fd


def send_chunks(sock: socket.socket, data: bytes) -> int:
    """Send the chunks of ``data``; the bytes sent. Stops, without an
    error, when the other end has gone."""
    sent = 0
    for payload, kinds in chunks(data):
        fds = [make_fd(kind) for kind in kinds]
        try:
            if payload:  # a stream socket sends no fd without data
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                              array.array("i", fds))] if fds else []
                sent += sock.sendmsg([payload], ancillary)
        except (BrokenPipeError, ConnectionResetError):
            return sent
        finally:
            for fd in fds:
                os.close(fd)
    return sent


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def check_view(view: PeerView) -> None:
    """The rules every state of a view keeps."""
    if view.id is not None and not 0 <= view.id <= MAX_PEER_ID:
        raise Violation(f"peer id {view.id}")
    if len(view.own) > view.vectors:
        raise Violation(f"{len(view.own)} own eventfds")
    for peer_id, fds in view.peers.items():
        if peer_id == view.id or not 0 <= peer_id <= MAX_PEER_ID:
            raise Violation(f"a peer {peer_id} (this peer is {view.id})")
        if not 1 <= len(fds) <= view.vectors:
            raise Violation(f"{len(fds)} eventfds for peer {peer_id}")
    if (view.peers or view.own) and view.shm is None:
        raise Violation("eventfds before the shared memory")


def check_client(data: bytes) -> None:
    """A peer reads ``data[1:]`` as a server's stream; ``data[0] % 3 +
    1`` is its vector count."""
    vectors = data[0] % 3 + 1 if data else 1
    before = open_fds()
    server_end, peer_end = socket.socketpair()
    reader, view = MessageReader(), PeerView(vectors)
    try:
        send_chunks(server_end, data[1:])
        server_end.close()
        while True:
            messages = reader.receive(peer_end)
            if messages is None:
                break
            for value, fd in messages:
                view.apply(value, fd)
                check_view(view)
    except IvshmemProtocolError as error:
        if "\n" in str(error) or not str(error):
            raise Violation(f"not one line: {str(error)!r}") from None
    finally:
        reader.close()
        view.close()
        server_end.close()
        peer_end.close()
    if open_fds() != before:
        raise Violation(f"{open_fds() - before} fd(s) left open")


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise Violation(f"the server did not {what} in {PATIENCE} s")
        time.sleep(0.0002)


class ServerCheck:
    """A live server on a socket of its own, and a peer that reads."""

    def __init__(self, vectors: int = 2):
        self.folder = tempfile.mkdtemp(prefix="ivfuzz-")
        self.vectors = vectors
        self.server = IvshmemServer(os.path.join(self.folder, "s"), _MIB,
                                    vectors)
        self.server.start()
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.observer, self.observer_view = self._join()
        self.observer_reader = MessageReader()
        self.baseline = open_fds()

    def _join(self, until_ready: bool = True):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(PATIENCE)
        sock.connect(self.server.socket_path)
        reader, view = MessageReader(), PeerView(self.vectors)
        while until_ready and not view.ready:
            for value, fd in reader.receive(sock):
                view.apply(value, fd)
        return sock, view

    def check(self, data: bytes) -> None:
        """A peer reads ``data[0] & 0x3f`` messages, sends the chunks of
        ``data[1:]``, half-closes if ``data[0] & 0x40``, and leaves."""
        option = data[0] if data else 0
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(PATIENCE)
        sock.connect(self.server.socket_path)
        reader, view = MessageReader(), PeerView(self.vectors)
        alone = (self.observer_view.id,)
        try:
            _wait(lambda: len(self.server.peer_ids()) == 2, "take a peer")
            peer_id = self.server.peer_ids()[1]
            for _ in range(option & 0x3F):
                messages = [] if view.ready else reader.receive(sock)
                for value, fd in messages or ():
                    view.apply(value, fd)
            sent = send_chunks(sock, data[1:])
            if option & 0x40:
                sock.shutdown(socket.SHUT_WR)
            if sent or option & 0x40:
                _wait(lambda: self.server.peer_ids() == alone,
                      "drop a peer that sent data or its end")
        finally:
            sock.close()
            reader.close()
            view.close()
        _wait(lambda: self.server.peer_ids() == alone, "see a peer leave")
        self._observe(peer_id)
        if not self.thread.is_alive():
            raise Violation("the server stopped")
        _wait(lambda: open_fds() == self.baseline, "close the peer's fds")

    def _observe(self, peer_id: int) -> None:
        """The observer reads until it has heard of ``peer_id``'s join
        and then its leave, and knows of no peer."""
        view, reader = self.observer_view, self.observer_reader
        joined = left = False
        while not left:
            try:
                messages = reader.receive(self.observer)
            except TimeoutError:
                raise Violation(f"the observer was not told of peer "
                                f"{peer_id}'s " + ("leave" if joined else
                                                   "join")) from None
            if messages is None:
                raise Violation("the server dropped the observer")
            for value, fd in messages:
                if value != peer_id:
                    raise Violation(f"the observer was told of peer {value}"
                                    f", not {peer_id}")
                joined |= fd is not None
                left = fd is None
                view.apply(value, fd)
                check_view(view)
        if view.peers or reader.partial:
            raise Violation(f"the observer knows of {sorted(view.peers)}")

    def close(self) -> None:
        self.server.close()
        self.thread.join(PATIENCE)
        self.observer.close()
        self.observer_reader.close()
        self.observer_view.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def seeds() -> list[bytes]:
    """Inputs of ``fuzz_ivshmem_server.py`` to start from (byte 0 picks
    the side: even the client, odd the server): a whole welcome with
    peers joining and leaving, a part of one, and a few peers' sends."""
    def chunk(value: int, kind: int | None = None) -> bytes:
        head = (8 << 3) | (0 if kind is None else 1)
        return (bytes([head]) + (b"" if kind is None else bytes([kind]))
                + struct.pack("<q", value))

    welcome = (chunk(0) + chunk(3) + chunk(-1, 1) + chunk(0, 0) + chunk(0, 0)
               + chunk(3, 0) + chunk(3, 0) + chunk(5, 0) + chunk(5, 0)
               + chunk(0) + chunk(5))
    inputs = [bytes([1]) + welcome, bytes([0]) + welcome[:40],
              bytes([3]) + chunk(7, 0), bytes([0x40]), bytes([0]),
              bytes([5, 9, 0]) + b"x", bytes([0, (1 << 3) | 2, 1, 0]) + b"y"]
    return [bytes([side]) + data for side in (0, 1) for data in inputs]
