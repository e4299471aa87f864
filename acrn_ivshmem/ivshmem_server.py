"""An ivshmem server: shared memory and doorbells for QEMU guests.

QEMU's ``ivshmem-doorbell`` device gets its shared memory and its
interrupt eventfds from a server on a Unix socket; Debian ships none,
so this is one in the standard library only. The protocol
(``docs/specs/ivshmem-spec.rst`` in QEMU) is one-way: every message
from the server is one little-endian int64, some with one file
descriptor (SCM_RIGHTS). A new peer gets, in order:

1. the protocol version, 0;
2. its peer id (ids follow connection order: 0, 1, 2, ...);
3. -1 with the shared-memory fd;
4. for every existing peer, that peer's id once per vector, each with
   the eventfd that rings that vector of that peer;
5. its own id once per vector, each with the eventfd it is rung by.

Then every other peer learns of the join (step 4 for the new peer).
When a peer leaves, the others get its id with no fd. A peer that
sends anything, or vanishes, is dropped; the server keeps serving.
"""

from __future__ import annotations

import array
import logging
import os
import selectors
import signal
import socket
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .errors import UsageError, quoted

__all__ = ["IvshmemServer", "MAX_VECTORS", "PROTOCOL_VERSION", "run"]

#: The protocol version QEMU 2.5 and later speak.
PROTOCOL_VERSION = 0
#: Most eventfds (MSI-X vectors) per peer this server hands out.
MAX_VECTORS = 1024
#: Where ``shm_name`` files live (POSIX shared memory).
SHM_DIR = "/dev/shm"
# The doorbell register carries the peer id in 16 bits.
_ID_LIMIT = 1 << 16
#: Longest Unix socket path (``sun_path`` is 108 bytes with the NUL).
MAX_SOCKET_PATH = 107
# A peer that stops reading must not stall every other peer forever.
_SEND_TIMEOUT = 5.0
_MIB = 1024 * 1024
_PAGE = 4096

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Peer:
    id: int
    sock: socket.socket
    eventfds: tuple[int, ...]


def size_text(size: int) -> str:
    """``size`` bytes as ``N MiB`` when whole, else ``N bytes``."""
    if size % _MIB == 0:
        return f"{size // _MIB} MiB"
    return f"{size} bytes"


def _send(sock: socket.socket, value: int, fd: int | None = None):
    """Send one message: ``value`` as int64, with ``fd`` if given."""
    ancillary = [] if fd is None else [
        (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    sent = sock.sendmsg([struct.pack("<q", value)], ancillary,
                        socket.MSG_NOSIGNAL)
    if sent != 8:
        raise OSError(f"short send of {sent} bytes")


def _close_fds(fds) -> None:
    for fd in fds:
        os.close(fd)


class IvshmemServer:
    """An ivshmem server on the Unix socket ``socket_path``.

    ``size_bytes`` is the shared memory's size (a power of two, at
    least 4 KiB); ``vectors`` the eventfds per peer (1 to
    :data:`MAX_VECTORS`; QEMU's ``vectors=`` should match). Without
    ``shm_name`` the memory is an anonymous memfd; with it, the file
    ``<shm_dir>/<shm_name>``, created if missing, so that
    ``memory-backend-file`` users and the host can share it. That file
    outlives the server.

    :meth:`start` (or ``with``) creates the memory and listens;
    :meth:`serve_forever` serves until :meth:`shutdown`; :meth:`close`
    (or leaving the ``with``) releases every fd and removes the socket.
    Raises :class:`~acrn_ivshmem.errors.UsageError` for bad values.
    """

    def __init__(self, socket_path: str | os.PathLike, size_bytes: int,
                 vectors: int, shm_name: str | None = None, *,
                 shm_dir: str = SHM_DIR):
        self.socket_path = os.fspath(socket_path)
        length = len(os.fsencode(self.socket_path))
        if not self.socket_path or length > MAX_SOCKET_PATH:
            raise UsageError(
                f"socket path {quoted(self.socket_path)} is {length} bytes; "
                f"Unix sockets allow 1 to {MAX_SOCKET_PATH}")
        if size_bytes < _PAGE or size_bytes & (size_bytes - 1):
            raise UsageError(
                f"shared memory of {size_text(size_bytes)}: QEMU needs a "
                "power of two (4 KiB or more)")
        if not 1 <= vectors <= MAX_VECTORS:
            raise UsageError(f"{vectors} vectors: the server hands out 1 "
                             f"to {MAX_VECTORS}")
        if shm_name is not None and (shm_name in ("", ".", "..")
                                     or "/" in shm_name
                                     or "\0" in shm_name):
            raise UsageError(f"shm name {quoted(shm_name)} must be one file "
                             "name (not empty, '.', '..', and without '/')")
        self.size_bytes = size_bytes
        self.vectors = vectors
        self.shm_path = (None if shm_name is None
                         else os.path.join(shm_dir, shm_name))
        self._listener: socket.socket | None = None
        self._socket_id: tuple[int, int] | None = None
        self._shm_fd = -1
        self._wake_fd = -1
        self._peers: dict[int, _Peer] = {}
        self._next_id = 0
        # Re-entrant: shutdown() may run in a signal handler of the
        # serving thread while it holds the lock.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._serving: int | None = None
        self._closed = False

    # -- life cycle ----------------------------------------------------

    def start(self) -> None:
        """Create the shared memory and listen on the socket.

        A stale socket file (nobody listening) is replaced. Raises
        :class:`UsageError` if a server is listening there already,
        the path is not a socket, or the memory cannot be had.
        """
        with self._lock:
            if self._closed:
                raise UsageError("the ivshmem server is closed")
            if self._listener is not None:
                return
            try:
                self._shm_fd = self._open_memory()
                self._wake_fd = os.eventfd(
                    0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                self._listen()
            except BaseException:
                self._release()
                raise
        log.info("listening on %s: %s of %s, %d vector(s)",
                 self.socket_path, size_text(self.size_bytes),
                 self.shm_path or "memfd", self.vectors)

    def serve_forever(self) -> None:
        """Serve peers until :meth:`shutdown`, then release everything."""
        with self._lock:
            if self._closed or self._serving is not None:
                return
            self.start()
            self._serving = threading.get_ident()
        try:
            self._loop()
        finally:
            with self._lock:
                self._release()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever`; safe from threads and signal
        handlers. From another thread, wait until it has released
        everything."""
        self._stop.set()
        with self._lock:
            if self._wake_fd >= 0:
                os.eventfd_write(self._wake_fd, 1)
        serving = self._serving
        if serving is not None and serving != threading.get_ident():
            self._stopped.wait()

    def close(self) -> None:
        """Shut down, close every fd and remove the socket file."""
        with self._lock:
            serving = self._serving is not None
            if not serving:
                self._release()
        if serving:
            self.shutdown()

    def __enter__(self) -> IvshmemServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def peer_ids(self) -> tuple[int, ...]:
        """The ids of the peers connected now, in joining order."""
        with self._lock:
            return tuple(self._peers)

    # -- setup ---------------------------------------------------------

    def _open_memory(self) -> int:
        if self.shm_path is None:
            fd = os.memfd_create("ivshmem", os.MFD_CLOEXEC)
            os.ftruncate(fd, self.size_bytes)
            return fd
        try:
            fd = os.open(self.shm_path, os.O_RDWR | os.O_CREAT
                         | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(f"{self.shm_path}: cannot open: "
                             f"{exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(f"{self.shm_path}: not a regular file")
            if info.st_size == 0:
                os.ftruncate(fd, self.size_bytes)
            elif info.st_size != self.size_bytes:
                raise UsageError(
                    f"{self.shm_path}: is {size_text(info.st_size)}, not "
                    f"the {size_text(self.size_bytes)} asked for")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _listen(self) -> None:
        path = self.socket_path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(info.st_mode):
                raise UsageError(f"{path}: exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)  # left behind by a killed server
            except OSError as exc:
                raise UsageError(f"{path}: {exc.strerror}") from None
            else:
                raise UsageError(f"{path}: a server is listening there "
                                 "already")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(16)
            listener.setblocking(False)
            info = os.stat(path)
        except OSError as exc:
            listener.close()
            raise UsageError(f"{path}: cannot listen: "
                             f"{exc.strerror}") from None
        self._listener = listener
        self._socket_id = (info.st_dev, info.st_ino)

    def _release(self) -> None:
        """Close everything (the lock is held)."""
        self._closed = True
        for peer in self._peers.values():
            peer.sock.close()
            _close_fds(peer.eventfds)
        self._peers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:
                info = os.stat(self.socket_path)
                # Only our own socket: a later server may own the path.
                if (info.st_dev, info.st_ino) == self._socket_id:
                    os.unlink(self.socket_path)
            except OSError:
                pass
        for name in ("_shm_fd", "_wake_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)

    # -- serving -------------------------------------------------------

    def _loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ, None)
            selector.register(self._wake_fd, selectors.EVENT_READ, -1)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if self._stop.is_set():
                        break
                    if key.data is None:
                        self._accept(selector)
                    elif key.data >= 0:
                        # The protocol is one-way: data or EOF both end it.
                        self._remove(selector, self._peers.get(key.data))

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("cannot accept a peer: %s", exc)
            return
        conn.settimeout(_SEND_TIMEOUT)
        peer_id = self._free_id()
        if peer_id is None:
            log.warning("refused a peer: all %d ids are taken", _ID_LIMIT)
            conn.close()
            return
        eventfds: list[int] = []
        try:
            for _ in range(self.vectors):
                eventfds.append(os.eventfd(
                    0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
            self._welcome(conn, peer_id, eventfds)
        except OSError as exc:
            log.warning("peer %d dropped while joining: %s", peer_id, exc)
            conn.close()
            _close_fds(eventfds)
            return
        peer = _Peer(peer_id, conn, tuple(eventfds))
        with self._lock:
            self._peers[peer_id] = peer
        selector.register(conn, selectors.EVENT_READ, peer_id)
        log.info("peer %d joined", peer_id)
        failed = []
        for other in list(self._peers.values()):
            if other.id == peer_id:
                continue
            try:
                for fd in peer.eventfds:
                    _send(other.sock, peer_id, fd)
            except OSError:
                failed.append(other)
        for other in failed:
            self._remove(selector, other)

    def _free_id(self) -> int | None:
        # Ids of peers that left are not reused at once (as in QEMU's
        # server), so that late messages cannot be mistaken.
        for _ in range(_ID_LIMIT):
            candidate = self._next_id
            self._next_id = (candidate + 1) % _ID_LIMIT
            if candidate not in self._peers:
                return candidate
        return None

    def _welcome(self, conn: socket.socket, peer_id: int,
                 eventfds: list[int]) -> None:
        _send(conn, PROTOCOL_VERSION)
        _send(conn, peer_id)
        _send(conn, -1, self._shm_fd)
        for other in self._peers.values():
            for fd in other.eventfds:
                _send(conn, other.id, fd)
        for fd in eventfds:
            _send(conn, peer_id, fd)

    def _remove(self, selector: selectors.BaseSelector,
                peer: _Peer | None) -> None:
        """Drop ``peer``, tell the others; drop those that fail too."""
        pending = [] if peer is None else [peer]
        while pending:
            gone = pending.pop()
            with self._lock:
                if self._peers.pop(gone.id, None) is None:
                    continue
            selector.unregister(gone.sock)
            log.info("peer %d left", gone.id)
            for other in list(self._peers.values()):
                try:
                    _send(other.sock, gone.id)
                except OSError:
                    pending.append(other)
            gone.sock.close()
            _close_fds(gone.eventfds)


def run(socket_path: str, size_mb: int, vectors: int,
        shm_name: str | None = None,
        ready_callback: Callable[[IvshmemServer], None] | None = None
        ) -> None:
    """Serve on ``socket_path`` until SIGTERM, SIGINT or SIGHUP.

    The command ``acrn-shm ivshmem-server``: ``size_mb`` MB of shared
    memory (a memfd, or ``/dev/shm/<shm_name>``), ``vectors`` eventfds
    per peer. ``ready_callback(server)`` runs once the socket listens
    (start the guests then). On return every fd is closed and the
    socket removed. Raises :class:`UsageError` for bad values.
    """
    if size_mb < 1:
        raise UsageError(f"shared memory of {size_mb} MB: give 1 MB or "
                         "more (a power of two)")
    server = IvshmemServer(socket_path, size_mb * _MIB, vectors, shm_name)
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {}
    try:
        server.start()
        if threading.current_thread() is threading.main_thread():
            for number in handled:
                previous[number] = signal.signal(
                    number, lambda *_: server.shutdown())
        if ready_callback is not None:
            ready_callback(server)
        server.serve_forever()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.close()
