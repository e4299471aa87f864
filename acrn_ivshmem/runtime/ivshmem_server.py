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
When a peer leaves, the others that were told of it get its id with no
fd. A peer that sends anything, or vanishes, is dropped.

No peer can stall or starve the others: one thread serves every socket
without blocking, each peer has its own queue of messages, and a peer
that lets more than :data:`BACKLOG_JOINS` joins and leaves pile up
unread is dropped (one log line; the others are told it left). Queued
messages hold no fd of their own (a leaving peer's eventfds are taken
out of every queue before they are closed), and each socket's kernel
buffer is kept small, so that the fds in flight to a peer that does not
read stay few. When fds run out the server stops accepting, says so
once, and tries again when a peer leaves or a back-off (up to a second)
passes; it never spins.
"""

from __future__ import annotations

import array
import errno
import logging
import os
import resource
import selectors
import signal
import socket
import stat
import struct
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError, quoted
from ..shm import MAX_SOCKET_PATH, SHM_DIR, size_text
from ..units import MIB
from .ivshmem_memory import open_memory

__all__ = ["BACKLOG_JOINS", "MAX_PEER_ID", "MAX_VECTORS", "PROTOCOL_VERSION",
           "IvshmemServer", "run"]

#: The protocol version QEMU 2.5 and later speak.
PROTOCOL_VERSION = 0
#: Most eventfds (MSI-X vectors) per peer this server hands out.
MAX_VECTORS = 1024
#: Peer ids are 16 bits: the doorbell register carries them so.
MAX_PEER_ID = 0xFFFF
#: How many other peers' joins and leaves a peer may leave unread (a
#: join is one message per vector, a leave one) before it is dropped.
BACKLOG_JOINS = 64
# The kernel buffer of each peer's socket: the least Linux allows (4608
# bytes, at 768 a message: 6 messages, so 6 fds in flight per peer).
# Linux counts fds in flight against the sender's open-file limit, so
# peers that do not read could otherwise starve the rest (ETOOMANYREFS).
_SNDBUF = 1
# Messages sent to one peer per turn, so that all get their turn.
_TURN = 64
# Connections accepted per turn.
_ACCEPT_TURN = 16
_LISTEN_BACKLOG = 128
# Retry after running out of fds: first, and at most (doubling).
_RETRY_FIRST = 0.05
_RETRY_MAX = 1.0
# fds the process keeps for itself beyond the peers' (logging, imports).
_FD_RESERVE = 16
# sendmsg errors that are the host's state, not the peer's fault: too
# many fds in flight for this user (ETOOMANYREFS), no kernel memory.
_SEND_STARVED = (errno.ETOOMANYREFS, errno.ENOBUFS, errno.ENOMEM)
_PAGE = 4096

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Peer:
    id: int
    sock: socket.socket
    eventfds: tuple[int, ...]
    #: (value, fd or None, part of its welcome) not sent yet. An fd is
    #: the server's or a live peer's: never closed while queued.
    queue: deque = field(default_factory=deque)
    #: Queued messages that are not its welcome.
    backlog: int = 0
    #: Peers it got an eventfd of: they owe it a leave message.
    told: set = field(default_factory=set)
    #: Registered for EVENT_WRITE.
    writing: bool = False


class _Backoff:
    """Running out of something (fds, kernel memory): one log line when
    it starts, retries at doubling intervals up to :data:`_RETRY_MAX`,
    until it ends."""

    def __init__(self, what: str, meanwhile: str):
        self.what = what
        self.meanwhile = meanwhile
        self.active = False
        #: When to try again, or None.
        self.retry: float | None = None
        self._delay = _RETRY_FIRST

    def failed(self, reason: str) -> None:
        if self.active:
            self._delay = min(self._delay * 2, _RETRY_MAX)
        else:
            self.active = True
            self._delay = _RETRY_FIRST
            log.warning("cannot %s (%s): %s; retrying every %g s at most",
                        self.what, reason, self.meanwhile, _RETRY_MAX)
        self.retry = time.monotonic() + self._delay

    def due(self, now: float) -> bool:
        """True (once) when the time to try again has come."""
        if self.retry is None or now < self.retry:
            return False
        self.retry = None
        return True

    def succeeded(self) -> None:
        if self.active:
            self.active = False
            log.info("can %s again", self.what)


def _send(sock: socket.socket, value: int, fd: int | None = None):
    """Send one message: ``value`` as int64, with ``fd`` if given."""
    ancillary = [] if fd is None else [
        (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    sent = sock.sendmsg([struct.pack("<q", value)], ancillary,
                        socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
    if sent != 8:  # a stream socket sends all of 8 bytes or nothing
        raise OSError(errno.EIO, f"short send of {sent} bytes")


def _close_fds(fds) -> None:
    for fd in fds:
        os.close(fd)


def _new_eventfds(count: int) -> list[int]:
    """``count`` eventfds, or OSError with none left open."""
    fds: list[int] = []
    try:
        for _ in range(count):
            fds.append(os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
    except OSError:
        _close_fds(fds)
        raise
    return fds


_LISTENER = "listener"
_WAKE = "wake"


class IvshmemServer:
    """An ivshmem server on the Unix socket ``socket_path``.

    ``size_bytes`` is the shared memory's size (a power of two, at
    least 4 KiB, and no more than the host can back); ``vectors`` the
    eventfds per peer (1 to :data:`MAX_VECTORS`; QEMU's ``vectors=``
    should match). The memory is an anonymous memfd; with ``shm_name``,
    the file ``<shm_dir>/<shm_name>`` (``shm_dir`` is /dev/shm unless
    given), created if missing, so that ``memory-backend-file`` users
    and the host can share it; that file outlives the server. With
    ``shm_dir`` and no ``shm_name``, an unnamed file in ``shm_dir`` (a
    hugetlbfs mount, say), as QEMU's ivshmem-server ``-m`` makes.

    :meth:`start` (or ``with``) creates the memory and listens;
    :meth:`serve_forever` serves until :meth:`shutdown`; :meth:`close`
    (or leaving the ``with``) releases every fd and removes the socket.
    Raises :class:`~acrn_ivshmem.errors.UsageError` for bad values.
    """

    def __init__(self, socket_path: str | os.PathLike, size_bytes: int,
                 vectors: int, shm_name: str | None = None, *,
                 shm_dir: str | os.PathLike | None = None):
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
        directory = None if shm_dir is None else os.fspath(shm_dir)
        self.size_bytes = size_bytes
        self.vectors = vectors
        self.shm_path = (None if shm_name is None else
                         os.path.join(directory or SHM_DIR, shm_name))
        #: The folder of an unnamed memory file, else None.
        self.mem_dir = directory if shm_name is None else None
        self._backlog_limit = BACKLOG_JOINS * (vectors + 1)
        self._listener: socket.socket | None = None
        self._socket_id: tuple[int, int] | None = None
        self._shm_fd = -1
        self._wake_fd = -1
        self._peers: dict[int, _Peer] = {}
        self._next_id = 0
        # Serving state, used by the serving thread only.
        self._selector: selectors.BaseSelector | None = None
        self._listening = False
        self._doomed: dict[_Peer, tuple[int, str]] = {}
        self._dirty: dict[_Peer, None] = {}
        self._stalled: set[_Peer] = set()
        #: An fd went out during this settling round.
        self._fd_sent = False
        self._accepting = _Backoff("take more peers",
                                   "new peers wait until a peer leaves")
        self._sending = _Backoff("send to peers",
                                 "waiting for peers to read")
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
        the path is not a socket, the memory cannot be had, or the
        open-file limit leaves no room for one peer.
        """
        with self._lock:
            if self._closed:
                raise UsageError("the ivshmem server is closed")
            if self._listener is not None:
                return
            self._check_fd_room()
            try:
                self._shm_fd = open_memory(self.size_bytes, self.shm_path,
                                           self.mem_dir)
                self._wake_fd = os.eventfd(
                    0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                self._listen()
            except BaseException:
                self._release()
                raise
        log.info("listening on %s: %s of %s, %d vector(s)",
                 self.socket_path, size_text(self.size_bytes),
                 self.shm_path or self.mem_dir or "memfd", self.vectors)

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

    def _check_fd_room(self) -> None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return
        # The memory, the wake-up eventfd, the listener, the selector.
        room = soft - len(os.listdir("/proc/self/fd")) - 4 - _FD_RESERVE
        if room < self.vectors + 1:
            raise UsageError(
                f"{self.vectors} vector(s) take {self.vectors + 1} fds per "
                f"peer, and the open-file limit of {soft} (ulimit -n) "
                f"leaves {max(room, 0)}: not one peer fits")

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
            listener.listen(_LISTEN_BACKLOG)
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
        self._doomed.clear()
        self._dirty.clear()
        self._stalled.clear()
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
            self._selector = selector
            selector.register(self._listener, selectors.EVENT_READ,
                              _LISTENER)
            selector.register(self._wake_fd, selectors.EVENT_READ, _WAKE)
            self._listening = True
            try:
                while not self._stop.is_set():
                    for key, mask in selector.select(self._timeout()):
                        if self._stop.is_set():
                            break
                        self._handle(key.data, mask)
                    self._retry_when_due()
                    self._settle()
            finally:
                self._selector = None

    def _handle(self, data, mask: int) -> None:
        if data is _LISTENER:
            self._accept_peers()
        elif data is _WAKE:
            try:
                os.eventfd_read(self._wake_fd)
            except BlockingIOError:
                pass
        elif self._peers.get(data.id) is data:
            if mask & selectors.EVENT_READ:
                # The protocol is one-way: data or EOF both end it.
                self._doomed.setdefault(data, _why_readable(data.sock))
            else:
                self._dirty[data] = None

    def _timeout(self) -> float | None:
        """Seconds to the next retry after running out of fds; None
        (sleep until something happens) when no retry is due."""
        due = [when for when in (self._accepting.retry, self._sending.retry)
               if when is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _retry_when_due(self) -> None:
        now = time.monotonic()
        if self._accepting.due(now):
            self._resume_accepting()
        if self._sending.due(now):
            self._dirty.update(dict.fromkeys(self._stalled))
            self._stalled.clear()

    # -- joining -------------------------------------------------------

    def _accept_peers(self) -> None:
        for _ in range(_ACCEPT_TURN):
            if not self._listening:
                return
            if len(self._peers) > MAX_PEER_ID:
                self._pause_accepting(f"all {MAX_PEER_ID + 1} peer ids are "
                                      "taken")
                return
            # The eventfds first: out of fds, the peer waits unaccepted.
            try:
                eventfds = _new_eventfds(self.vectors)
            except OSError as exc:
                self._pause_accepting(exc.strerror or str(exc))
                return
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                _close_fds(eventfds)
                return
            except OSError as exc:
                _close_fds(eventfds)
                if exc.errno == errno.ECONNABORTED:
                    continue
                self._pause_accepting(exc.strerror or str(exc))
                return
            self._join(conn, eventfds)

    def _pause_accepting(self, reason: str) -> None:
        """Stop accepting until a peer leaves or a back-off passes."""
        self._accepting.failed(reason)
        if self._listening:
            self._selector.unregister(self._listener)
            self._listening = False

    def _resume_accepting(self) -> None:
        self._accepting.retry = None
        if not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ,
                                    _LISTENER)
            self._listening = True

    def _join(self, conn: socket.socket, eventfds: list[int]) -> None:
        self._accepting.succeeded()
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        peer = _Peer(self._free_id(), conn, tuple(eventfds))
        others = list(self._peers.values())
        welcome = [(PROTOCOL_VERSION, None), (peer.id, None),
                   (-1, self._shm_fd)]
        for other in others:
            welcome += [(other.id, fd) for fd in other.eventfds]
        welcome += [(peer.id, fd) for fd in eventfds]
        peer.queue.extend((value, fd, True) for value, fd in welcome)
        with self._lock:
            self._peers[peer.id] = peer
        self._selector.register(conn, selectors.EVENT_READ, peer)
        self._dirty[peer] = None
        log.info("peer %d joined", peer.id)
        for other in others:
            for fd in eventfds:
                self._push(other, peer.id, fd)

    def _free_id(self) -> int:
        # Ids of peers that left are not reused at once (as in QEMU's
        # server), so that late messages cannot be mistaken. A free one
        # exists: _accept_peers checked.
        while True:
            candidate = self._next_id
            self._next_id = (candidate + 1) % (MAX_PEER_ID + 1)
            if candidate not in self._peers:
                return candidate

    # -- sending -------------------------------------------------------

    def _push(self, peer: _Peer, value: int, fd: int | None) -> None:
        """Queue a message that is not part of ``peer``'s welcome;
        doom ``peer`` if too many wait."""
        peer.queue.append((value, fd, False))
        peer.backlog += 1
        self._dirty[peer] = None
        if peer.backlog > self._backlog_limit and peer not in self._doomed:
            why = (f"dropped: {peer.backlog} messages wait unread, more "
                   f"than the {self._backlog_limit} allowed")
            self._doomed[peer] = (logging.WARNING, why)

    def _settle(self) -> None:
        """Drop the doomed peers, then send what is queued, until
        neither leaves more to do."""
        self._fd_sent = False
        while self._doomed or self._dirty:
            while self._doomed:
                peer = next(iter(self._doomed))
                level, why = self._doomed.pop(peer)
                self._drop(peer, level, why)
            dirty = list(self._dirty)
            self._dirty.clear()
            for peer in dirty:
                if self._peers.get(peer.id) is peer:
                    self._flush(peer)
        # The episode is over when an fd went out and no peer still waits
        # for room; one that ends as each mute peer goes, to start again
        # at the next, would otherwise log once per peer.
        if self._fd_sent and not self._stalled:
            self._sending.succeeded()

    def _flush(self, peer: _Peer) -> None:
        """Send ``peer`` what its socket takes now, one turn at most."""
        if self._sending.retry is not None:
            self._stalled.add(peer)
            self._want_write(peer, False)
            return
        for _ in range(_TURN):
            if not peer.queue:
                break
            value, fd, welcome = peer.queue[0]
            try:
                _send(peer.sock, value, fd)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _SEND_STARVED:
                    self._sending.failed(exc.strerror)
                    self._stalled.add(peer)
                    self._want_write(peer, False)
                else:
                    self._doomed.setdefault(
                        peer, (logging.INFO, f"left ({exc.strerror})"))
                return
            peer.queue.popleft()
            if not welcome:
                peer.backlog -= 1
            if fd is not None:
                # Only an fd proves the episode over (ETOOMANYREFS).
                self._fd_sent = True
                if value not in (-1, peer.id):
                    peer.told.add(value)
        self._want_write(peer, bool(peer.queue))

    def _want_write(self, peer: _Peer, writing: bool) -> None:
        if peer.writing != writing:
            events = selectors.EVENT_READ
            if writing:
                events |= selectors.EVENT_WRITE
            self._selector.modify(peer.sock, events, peer)
            peer.writing = writing

    # -- leaving -------------------------------------------------------

    def _drop(self, peer: _Peer, level: int, why: str) -> None:
        """Drop ``peer``; tell those that know of it."""
        with self._lock:
            if self._peers.get(peer.id) is not peer:
                return
            del self._peers[peer.id]
        self._selector.unregister(peer.sock)
        peer.sock.close()
        self._dirty.pop(peer, None)
        self._stalled.discard(peer)
        log.log(level, "peer %d %s", peer.id, why)
        for other in self._peers.values():
            # Its eventfds leave every queue before they are closed.
            if other.queue:
                _purge(other, peer.id)
            if peer.id in other.told:
                other.told.discard(peer.id)
                self._push(other, peer.id, None)
        _close_fds(peer.eventfds)
        if self._accepting.active:
            self._resume_accepting()


def _purge(peer: _Peer, gone: int) -> None:
    """Take the eventfds of peer ``gone`` out of ``peer``'s queue."""
    kept = deque(entry for entry in peer.queue
                 if entry[0] != gone or entry[1] is None)
    if len(kept) != len(peer.queue):
        peer.queue = kept
        peer.backlog = sum(1 for entry in kept if not entry[2])


def _why_readable(sock: socket.socket) -> tuple[int, str]:
    """(log level, reason) for a peer whose socket became readable."""
    try:  # peeked, not read: unread data makes close() reset the peer
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError as exc:
        return logging.INFO, f"left ({exc.strerror})"
    if data:
        return logging.WARNING, ("dropped: it sent data, and peers only "
                                 "listen")
    return logging.INFO, "left"


def raise_fd_limit() -> None:
    """Raise this process's soft open-file limit to its hard one: each
    peer takes ``vectors + 1`` fds, and 1024 (a common soft limit)
    leaves room for few peers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:  # the kernel's ceiling for one process
            with open("/proc/sys/fs/nr_open", encoding="ascii") as file:
                target = int(file.read())
        except (OSError, ValueError):
            return
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):
            pass


def write_pidfile(path: str) -> tuple[int, int]:
    """Write this process's id to ``path``; return the file's (device,
    inode) for :func:`remove_pidfile`.

    A new file in the same folder, renamed over ``path``: a symbolic
    link there is replaced, never followed, and readers never see a
    half-written file. Raises :class:`UsageError` if it cannot be
    written.
    """
    folder = os.path.dirname(path) or "."
    try:
        fd, temporary = tempfile.mkstemp(prefix=".pid.", dir=folder)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the pid file: "
                         f"{exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(f"{os.getpid()}\n")
            os.fchmod(file.fileno(), 0o644)
            info = os.fstat(file.fileno())
        os.rename(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise UsageError(f"{path}: cannot write the pid file: "
                         f"{exc.strerror}") from None
    return info.st_dev, info.st_ino


def remove_pidfile(path: str, identity: tuple[int, int]) -> None:
    """Remove the pid file at ``path`` if it is still the one written
    (another server may have replaced it since)."""
    try:
        info = os.lstat(path)
        if (info.st_dev, info.st_ino) == identity:
            os.unlink(path)
    except OSError:
        pass


def run(socket_path: str, size_mb: int, vectors: int,
        shm_name: str | None = None,
        ready_callback: Callable[[IvshmemServer], None] | None = None,
        *, shm_dir: str | None = None, pidfile: str | None = None
        ) -> None:
    """Serve on ``socket_path`` until SIGTERM, SIGINT or SIGHUP.

    The command ``acrn-shm ivshmem-server``: ``size_mb`` MB of shared
    memory (see :class:`IvshmemServer` for ``shm_name`` and
    ``shm_dir``), ``vectors`` eventfds per peer. Once the socket
    listens, the process id goes to ``pidfile`` (if given) and
    ``ready_callback(server)`` runs (start the guests then). On return
    every fd is closed, and the socket and the pid file are removed.
    Raises :class:`UsageError` for bad values.
    """
    if size_mb < 1:
        raise UsageError(f"shared memory of {size_mb} MB: give 1 MB or "
                         "more (a power of two)")
    server = IvshmemServer(socket_path, size_mb * MIB, vectors, shm_name,
                           shm_dir=shm_dir)
    raise_fd_limit()
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {}
    written = None
    try:
        server.start()
        if threading.current_thread() is threading.main_thread():
            for number in handled:
                previous[number] = signal.signal(
                    number, lambda *_: server.shutdown())
        if pidfile is not None:
            written = write_pidfile(pidfile)
        if ready_callback is not None:
            ready_callback(server)
        server.serve_forever()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.close()
        if written is not None:
            remove_pidfile(pidfile, written)
