"""The ivshmem server, driven by fake QEMU peers over real sockets."""

from __future__ import annotations

import fcntl
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.errors import AcrnShmError, UsageError, quoted
from acrn_ivshmem.runtime.ivshmem_client import MessageReader, PeerView
from acrn_ivshmem.runtime.ivshmem_server import BACKLOG_JOINS, IvshmemServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import ivshmem_harness  # noqa: E402 - fuzz/ is no package

MIB = 1024 * 1024
FD = "fd"  # a message that carried a file descriptor


@pytest.fixture
def sock_dir():
    """A short directory: Unix socket paths are limited to 107 bytes."""
    path = tempfile.mkdtemp(prefix="ivs-")
    yield Path(path)
    for entry in os.listdir(path):
        os.unlink(os.path.join(path, entry))
    os.rmdir(path)


@contextmanager
def serving(server: IvshmemServer):
    """Run ``server`` in a thread; close it and join the thread after."""
    server.start()
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(10)
        assert not thread.is_alive()


def wait_for(condition, what: str, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class FakePeer:
    """A client that reads the server's messages as QEMU does."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.fds: list[int] = []

    def message(self) -> tuple[int, int | None]:
        """One message: its value and the fd that came with it."""
        data, fds, _, _ = socket.recv_fds(self.sock, 8, 1,
                                          socket.MSG_CMSG_CLOEXEC)
        assert len(data) == 8
        self.fds += fds
        return struct.unpack("<q", data)[0], (fds[0] if fds else None)

    def messages(self, count: int) -> list[tuple[int, str | None]]:
        """``count`` messages, fds shown as :data:`FD`."""
        return [(value, None if fd is None else FD)
                for value, fd in (self.message() for _ in range(count))]

    def handshake(self, vectors: int, others: int) -> dict:
        """Read a whole handshake with ``others`` peers already there."""
        head = [self.message() for _ in range(3)]
        assert (head[0], head[1][1], head[2][0]) == ((0, None), None, -1)
        assert head[2][1] is not None
        self.id = head[1][0]
        self.shm = head[2][1]
        self.peers: dict[int, list[int]] = {}
        for _ in range(others * vectors):
            value, fd = self.message()
            assert fd is not None
            self.peers.setdefault(value, []).append(fd)
        self.own = []
        for _ in range(vectors):
            value, fd = self.message()
            assert (value, fd is not None) == (self.id, True)
            self.own.append(fd)
        return self.peers

    def until_eof(self) -> list[tuple[int, str | None]]:
        """Every message left before the server closed the connection."""
        found = []
        while True:
            data, fds, _, _ = socket.recv_fds(self.sock, 8, 1,
                                              socket.MSG_CMSG_CLOEXEC)
            self.fds += fds
            if not data:
                return found
            found.append((struct.unpack("<q", data)[0],
                          FD if fds else None))

    def nothing_pending(self) -> bool:
        """True when no message is waiting (nothing unexpected came)."""
        return select.select([self.sock], [], [], 0)[0] == []

    def pending(self) -> list[tuple[int, str | None]]:
        """The messages waiting now."""
        found = []
        while not self.nothing_pending():
            found += self.messages(1)
        return found

    def close(self):
        self.sock.close()
        for fd in self.fds:
            os.close(fd)
        self.fds = []


@pytest.fixture
def peers():
    """Make :class:`FakePeer` objects; all are closed after the test."""
    made: list[FakePeer] = []

    def make(path: Path) -> FakePeer:
        made.append(FakePeer(path))
        return made[-1]
    yield make
    for peer in made:
        peer.close()


def server_side(path: Path) -> int:
    """How many connections to ``path`` the server has not closed yet
    (its end keeps the socket's path in /proc/net/unix)."""
    with open("/proc/net/unix", encoding="utf-8", errors="replace") as file:
        return sum(1 for line in file
                   if line.split()[7:] == [str(path)]
                   and line.split()[3] != "00010000")  # not the listener


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# ---------------------------------------------------------------------------
# The protocol


def test_three_peers_get_exact_handshakes_in_connection_order(
        sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, 2 * MIB, 2)):
        p0 = peers(path)
        assert p0.messages(5) == [(0, None), (0, None), (-1, FD),
                                  (0, FD), (0, FD)]
        p1 = peers(path)
        assert p1.messages(7) == [(0, None), (1, None), (-1, FD),
                                  (0, FD), (0, FD), (1, FD), (1, FD)]
        p2 = peers(path)
        assert p2.messages(9) == [(0, None), (2, None), (-1, FD),
                                  (0, FD), (0, FD), (1, FD), (1, FD),
                                  (2, FD), (2, FD)]
        assert p0.messages(4) == [(1, FD), (1, FD), (2, FD), (2, FD)]
        assert p1.messages(2) == [(2, FD), (2, FD)]
        assert (p0.nothing_pending(), p1.nothing_pending(),
                p2.nothing_pending()) == (True, True, True)


def test_leave_is_announced_without_fd_and_ids_are_not_reused(
        sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1)) as server:
        p0 = peers(path)
        p0.handshake(1, 0)
        p1 = peers(path)
        p1.handshake(1, 1)
        assert p0.messages(1) == [(1, FD)]
        p1.close()
        assert p0.messages(1) == [(1, None)]
        assert server.peer_ids() == (0,)
        p2 = peers(path)
        assert p2.handshake(1, 1).keys() == {0}
        assert p2.id == 2
        assert p0.messages(1) == [(2, FD)]
        assert server.peer_ids() == (0, 2)


def test_peer_that_sends_data_is_dropped(sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1)) as server:
        p0 = peers(path)
        p0.handshake(1, 0)
        p1 = peers(path)
        p1.handshake(1, 1)
        assert p0.messages(1) == [(1, FD)]
        p1.sock.sendall(b"x")
        assert p0.messages(1) == [(1, None)]
        with pytest.raises(ConnectionResetError):
            p1.sock.recv(8)  # closed by the server with "x" unread
        assert server.peer_ids() == (0,)


def test_eventfds_ring_the_right_peer_and_vector(sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 2)):
        p0 = peers(path)
        p0.handshake(2, 0)
        p1 = peers(path)
        to_p0 = p1.handshake(2, 1)[0]
        to_p1 = [fd for _, fd in (p0.message(), p0.message())]
        os.eventfd_write(to_p0[1], 3)
        assert os.eventfd_read(p0.own[1]) == 3
        with pytest.raises(BlockingIOError):
            os.eventfd_read(p0.own[0])
        os.eventfd_write(to_p1[0], 1)
        assert os.eventfd_read(p1.own[0]) == 1
        with pytest.raises(BlockingIOError):
            os.eventfd_read(p1.own[1])


def test_memfd_is_the_same_memory_for_every_peer(sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, 2 * MIB, 1)):
        p0 = peers(path)
        p0.handshake(1, 0)
        p1 = peers(path)
        p1.handshake(1, 1)
        assert os.fstat(p0.shm).st_size == 2 * MIB
        with mmap.mmap(p0.shm, 2 * MIB) as a, mmap.mmap(p1.shm,
                                                         2 * MIB) as b:
            a[2 * MIB - 5:] = b"hello"
            assert b[2 * MIB - 5:] == b"hello"


def test_named_shm_is_a_file_in_dev_shm_shared_with_the_host(
        sock_dir, peers):
    name = f"acrn-shm-test-{os.getpid()}-{time.monotonic_ns()}"
    host_file = Path("/dev/shm") / name
    path = sock_dir / "s"
    try:
        with serving(IvshmemServer(path, MIB, 1, name)) as server:
            assert server.shm_path == str(host_file)
            p0 = peers(path)
            p0.handshake(1, 0)
            with mmap.mmap(p0.shm, MIB) as memory:
                memory[100:104] = b"ACRN"
            data = host_file.read_bytes()
            assert (len(data), data[100:104]) == (MIB, b"ACRN")
        # The file outlives the server: plain users may still map it.
        assert host_file.stat().st_size == MIB
    finally:
        host_file.unlink(missing_ok=True)


def test_existing_shm_file_of_the_right_size_is_kept(sock_dir, peers):
    (sock_dir / "mem").write_bytes(b"\x07" * MIB)
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1, "mem", shm_dir=str(sock_dir))):
        p0 = peers(path)
        p0.handshake(1, 0)
        with mmap.mmap(p0.shm, MIB) as memory:
            assert memory[:3] == b"\x07\x07\x07"


def test_mem_dir_memory_is_a_file_there_that_no_name_reaches(
        sock_dir, peers):
    # QEMU's ivshmem-server -m DIR (a hugetlbfs mount, say).
    folder = sock_dir / "mem"
    folder.mkdir()
    path = sock_dir / "s"
    with serving(IvshmemServer(path, 2 * MIB, 1, shm_dir=folder)) as server:
        assert (server.shm_path, server.mem_dir) == (None, str(folder))
        p0 = peers(path)
        p0.handshake(1, 0)
        p1 = peers(path)
        p1.handshake(1, 1)
        info = os.fstat(p0.shm)
        assert (info.st_size, info.st_nlink, info.st_dev) == (
            2 * MIB, 0, folder.stat().st_dev)
        with mmap.mmap(p0.shm, 2 * MIB) as a, mmap.mmap(p1.shm,
                                                         2 * MIB) as b:
            a[:4] = b"ACRN"
            assert b[:4] == b"ACRN"
        assert os.listdir(folder) == []
    assert os.listdir(folder) == []
    folder.rmdir()


def test_named_file_in_mem_dir_outlives_the_server(sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1, "r0", shm_dir=sock_dir)):
        peers(path).handshake(1, 0)
    assert (sock_dir / "r0").stat().st_size == MIB


def hugetlbfs_mount() -> str | None:
    """A hugetlbfs mount this process may write in, if there is one."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "hugetlbfs" and os.access(fields[1], os.W_OK):
                return fields[1]
    return None


def huge_page_pool(page: int) -> int:
    folder = f"/sys/kernel/mm/hugepages/hugepages-{page // 1024}kB"
    return sum(int(Path(folder, name).read_text())
               for name in ("nr_hugepages", "nr_overcommit_hugepages"))


@pytest.mark.skipif(hugetlbfs_mount() is None,
                    reason="no writable hugetlbfs mount (mount -t hugetlbfs "
                    "none DIR)")
def test_hugetlbfs_takes_whole_pages_from_its_pool(sock_dir, peers):
    mount = hugetlbfs_mount()
    page = os.statvfs(mount).f_bsize
    pool = huge_page_pool(page)
    path = sock_dir / "s"
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, page // 2, 1, shm_dir=mount).start()
    assert str(error.value) == (
        f"{mount}: its huge pages are {page // MIB} MiB; shared memory of "
        f"{page // 2 // MIB} MiB must be a multiple")
    beyond = max(page, 1 << (pool * page).bit_length())
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, beyond, 1, shm_dir=mount).start()
    assert str(error.value) == (
        f"{mount}: shared memory of {beyond // MIB} MiB is more than the "
        f"{pool} huge page(s) of {page // MIB} MiB the host has "
        "(nr_hugepages + nr_overcommit_hugepages)")
    if pool == 0:
        return
    with serving(IvshmemServer(path, page, 1, shm_dir=mount)):
        p0 = peers(path)
        p0.handshake(1, 0)
        assert os.fstat(p0.shm).st_size == page


def ram_and_swap() -> int:
    fields = dict(line.split(":") for line in
                  Path("/proc/meminfo").read_text().splitlines())
    return sum(int(fields[name].split()[0]) * 1024
               for name in ("MemTotal", "SwapTotal"))


@pytest.mark.parametrize("size", [1 << 62, 1 << 63, 1 << 70])
def test_memory_beyond_ram_and_swap_is_refused(sock_dir, size):
    # 8 EiB (1 << 63) overflowed ftruncate; 4 EiB was served.
    path = sock_dir / "s"
    before = open_fds()
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, size, 1).start()
    assert str(error.value) == (
        f"shared memory of {size // MIB} MiB is more than the "
        f"{ram_and_swap() // MIB} MiB of RAM and swap this host has")
    assert not path.exists()
    assert open_fds() == before


def test_file_beyond_its_file_system_is_refused_and_not_made(sock_dir):
    info = os.statvfs(sock_dir)
    room = info.f_blocks * info.f_frsize
    size = 1 << room.bit_length()
    with pytest.raises(UsageError) as error:
        IvshmemServer(sock_dir / "s", size, 1, "mem",
                      shm_dir=sock_dir).start()
    assert str(error.value) == (
        f"{sock_dir}: shared memory of {size // MIB} MiB is more than the "
        f"{room // MIB} MiB it can hold")
    assert os.listdir(sock_dir) == []


# ---------------------------------------------------------------------------
# Peers that vanish


def test_peer_vanishing_mid_handshake_does_not_stop_the_server(
        sock_dir, peers):
    # 512 messages with fds overflow the socket buffer (about 130 fit),
    # so the server is still sending when the peer goes.
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 512)) as server:
        quitter = peers(path)
        assert quitter.messages(2) == [(0, None), (0, None)]
        # A peer from its accept on: its welcome waits in its queue.
        assert server.peer_ids() == (0,)
        quitter.close()
        wait_for(lambda: server.peer_ids() == (), "the quitter to go")
        late = peers(path)
        late.handshake(512, 0)
        assert (late.id, len(late.own), server.peer_ids()) == (1, 512, (1,))


def test_peers_vanishing_before_reading_are_announced_or_not_seen(
        sock_dir, peers):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1)) as server:
        p0 = peers(path)
        p0.handshake(1, 0)
        peers(path).close()  # before reading: EPIPE or ECONNRESET
        wait_for(lambda: server_side(path) == 1, "the server to drop it")
        # Whether the server finished welcoming it is a race; if it did,
        # the peer joined and left.
        assert p0.pending() in ([], [(1, FD), (1, None)])
        gone = peers(path)
        gone.messages(3)
        gone.close()  # with unread fds queued
        wait_for(lambda: server_side(path) == 1, "the server to drop it")
        assert p0.pending() in ([], [(2, FD), (2, None)])
        late = peers(path)
        assert late.handshake(1, 1).keys() == {0}
        assert (late.id, p0.messages(1)) == (3, [(3, FD)])
        assert server.peer_ids() == (0, 3)


def test_no_fd_leaks_and_shutdown_removes_the_socket(sock_dir, peers):
    path = sock_dir / "s"
    before = open_fds()
    with serving(IvshmemServer(path, MIB, 4)) as server:
        p0 = peers(path)
        p0.handshake(4, 0)
        p1 = peers(path)
        p1.handshake(4, 1)
        peers(path).close()
        wait_for(lambda: server_side(path) == 2, "the quitter to go")
        p1.close()
        wait_for(lambda: server.peer_ids() == (0,), "peer 1 to leave")
        assert path.is_socket()
        # Whether the quitter lived long enough to be announced is a
        # race; so is how many of its eventfds went out before it left.
        assert p0.messages(4) == [(1, FD)] * 4
        rest = p0.messages(1)
        while rest[-1] != (1, None):
            rest += p0.messages(1)
        quitter = rest[:-1]
        assert quitter == [] or quitter == [(2, FD)] * (len(quitter) - 1) + [
            (2, None)] and len(quitter) <= 5
    assert p0.until_eof() == []  # shutdown closed the connection
    assert not path.exists()
    p0.close()
    assert open_fds() == before


def test_sigterm_stops_run_cleanly(sock_dir):
    path = sock_dir / "s"
    code = ("import sys\n"
            "from acrn_ivshmem.runtime.ivshmem_server import run\n"
            "run(sys.argv[1], 1, 1, ready_callback=lambda server: "
            "print('ready', server.vectors, flush=True))\n"
            "print('stopped', flush=True)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "ready 1\n"
        peer = FakePeer(path)
        peer.handshake(1, 0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert process.stdout.read() == "stopped\n"
        assert peer.sock.recv(8) == b""
        peer.close()
        assert not path.exists()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_close_without_serving_releases_everything(sock_dir):
    path = sock_dir / "s"
    before = open_fds()
    with IvshmemServer(path, MIB, 1) as server:
        assert path.is_socket()
        assert server.peer_ids() == ()
    assert not path.exists()
    assert open_fds() == before


# ---------------------------------------------------------------------------
# Peers that do not read


class Drainer:
    """A peer that reads whatever is there when asked, closing each fd
    at once (the test process would hold thousands otherwise)."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.setblocking(False)
        self.values: list[tuple[int, str | None]] = []

    def drain(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 8, 1)
            except BlockingIOError:
                return
            for fd in fds:
                os.close(fd)
            if not data:
                return
            self.values.append((struct.unpack("<q", data)[0],
                                FD if fds else None))

    def close(self) -> None:
        self.sock.close()


def read_view(sock: socket.socket, vectors: int,
              until=lambda view: view.ready) -> PeerView:
    """Read from ``sock`` into a new view until ``until(view)``."""
    reader, view = MessageReader(), PeerView(vectors)
    return read_more(sock, reader, view, until)


def read_more(sock, reader, view, until):
    while not until(view):
        for value, fd in reader.receive(sock):
            view.apply(value, fd)
    return view


def test_peers_that_never_read_do_not_delay_the_others(sock_dir, peers):
    # With 64 vectors each welcome and each join overflows what the
    # kernel buffers for a peer; a server that blocked on one (5 s each
    # before) would keep every later peer waiting.
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 64)) as server:
        stuck = [peers(path) for _ in range(6)]
        wait_for(lambda: len(server.peer_ids()) == 6, "the six to join", 2)
        late = peers(path)
        late.sock.settimeout(2)
        assert late.handshake(64, 6).keys() == {0, 1, 2, 3, 4, 5}
        assert server.peer_ids() == (0, 1, 2, 3, 4, 5, 6)
        assert stuck[0].messages(4) == [(0, None), (0, None), (-1, FD),
                                        (0, FD)]


def test_a_peer_that_stops_reading_is_dropped_in_one_line_and_its_leave_told(
        sock_dir, peers, caplog):
    path = sock_dir / "s"
    limit = BACKLOG_JOINS * 2  # one vector: a join is one message
    drainers = []
    try:
        with serving(IvshmemServer(path, MIB, 1)) as server:
            drainers.append(Drainer(path))
            stuck = peers(path)
            wait_for(lambda: server.peer_ids() == (0, 1), "two peers")
            while 1 in server.peer_ids() and len(drainers) < 400:
                drainers.append(Drainer(path))
                count = len(drainers) + 1
                wait_for(lambda count=count: len(server.peer_ids()) == count
                         or 1 not in server.peer_ids(), "a peer to join")
                for drainer in drainers:
                    drainer.drain()
            assert 1 not in server.peer_ids()
            # Everyone else is still there and those told of peer 1 heard
            # it leave, once: all but the last, whose join overflowed
            # peer 1, so that its fd left the last one's welcome unsent
            # (and one more, if it came before the drop was seen here).
            assert len(server.peer_ids()) == len(drainers)

            def heard() -> bool:
                for drainer in drainers:
                    drainer.drain()
                return all(drainer.values.count((1, None))
                           == drainer.values.count((1, FD))
                           for drainer in drainers)
            wait_for(heard, "the leave to be told")
            told = [drainer.values.count((1, FD)) for drainer in drainers]
            assert told in ([1] * (len(told) - 1) + [0],
                            [1] * (len(told) - 2) + [0, 0])
        assert [record.getMessage() for record in caplog.records
                if record.levelname == "WARNING"] == [
            f"peer 1 dropped: {limit + 1} messages wait unread, more than "
            f"the {limit} allowed"]
        # What it was sent before is still there to read; then the end.
        rest = stuck.until_eof()
        assert rest[:5] == [(0, None), (1, None), (-1, FD), (0, FD),
                            (1, FD)]
        assert rest[5:] == [(peer_id, FD)
                            for peer_id in range(2, len(rest) - 3)]
    finally:
        for drainer in drainers:
            drainer.close()


def test_a_peer_that_never_reads_has_six_messages_in_the_kernel_at_most(
        sock_dir, peers):
    """Each fd in flight counts against the server's open-file limit
    until it is read (ETOOMANYREFS past it), so the rest of what waits
    for a peer waits in the server's queue, which holds no fd."""
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 4)) as server:
        mute = [peers(path) for _ in range(8)]
        wait_for(lambda: len(server.peer_ids()) == 8, "eight peers")
        time.sleep(0.1)
        unread = [struct.unpack("i", fcntl.ioctl(
            peer.sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
            for peer in mute]
        assert unread == [6 * 8] * 8
        # All of it comes, in order, once read.
        assert mute[0].handshake(4, 0) == {}
        assert mute[0].messages(28) == [(peer_id, FD) for peer_id in
                                        range(1, 8) for _ in range(4)]


def test_a_slow_peer_learns_exactly_the_live_peers_and_holds_no_fds(
        sock_dir):
    """Peers come and go while one peer reads nothing; the server's fds
    do not grow with what waits for it, and when it reads it learns of
    exactly the peers there, by eventfds that ring them."""
    path = sock_dir / "s"
    sockets = []
    with serving(IvshmemServer(path, MIB, 2)) as server:
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slow.settimeout(5)
        slow.connect(str(path))
        sockets.append(slow)
        kept = {}
        for _ in range(4):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(str(path))
            sockets.append(sock)
            view = read_view(sock, 2)
            kept[view.id] = view
        fds = open_fds()
        for _ in range(100):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(str(path))
            view = read_view(sock, 2)
            sock.close()
            view.close()
            wait_for(lambda gone=view.id: gone not in server.peer_ids(),
                     "a peer to leave")
        assert open_fds() == fds
        live = set(server.peer_ids()) - {0}
        assert live == set(kept)
        # Read all it was sent, until nothing comes for 0.3 s.
        reader, slow_view = MessageReader(), PeerView(2)
        slow.settimeout(0.3)
        with pytest.raises(TimeoutError):
            read_more(slow, reader, slow_view, lambda view: False)
        assert slow_view.ready and not reader.partial
        assert {peer_id: len(fds) for peer_id, fds
                in slow_view.peers.items()} == dict.fromkeys(live, 2)
        for peer_id, view in kept.items():
            for vector in (0, 1):
                os.eventfd_write(slow_view.peers[peer_id][vector],
                                 peer_id + 1)
                assert os.eventfd_read(view.own[vector]) == peer_id + 1
        for view in [slow_view, *kept.values()]:
            view.close()
    for sock in sockets:
        sock.close()


@pytest.fixture(scope="module")
def server_check():
    check = ivshmem_harness.ServerCheck()
    yield check
    check.close()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_whatever_a_peer_sends_it_is_dropped_and_the_others_told(
        server_check, data):
    """Any bytes and fds (fuzz/ivshmem_harness.py): the peer is dropped,
    the watching peer hears of its join and leave, and the server is
    left serving with the fds it had."""
    server_check.check(data)


# ---------------------------------------------------------------------------
# User errors


def test_stale_socket_is_replaced(sock_dir, peers):
    path = sock_dir / "s"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    with serving(IvshmemServer(path, MIB, 1)):
        peers(path).handshake(1, 0)


def test_live_socket_is_refused_and_left_alone(sock_dir):
    path = sock_dir / "s"
    with serving(IvshmemServer(path, MIB, 1)):
        with pytest.raises(UsageError) as error:
            IvshmemServer(path, MIB, 1).start()
        assert str(error.value) == (
            f"{path}: a server is listening there already")
        assert path.is_socket()


def test_path_that_is_not_a_socket_is_refused(sock_dir):
    path = sock_dir / "s"
    path.write_text("keep me")
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, MIB, 1).start()
    assert str(error.value) == f"{path}: exists and is not a socket"
    assert path.read_text() == "keep me"


def test_missing_directory_is_refused(sock_dir):
    path = sock_dir / "no" / "s"
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, MIB, 1).start()
    assert str(error.value) == (
        f"{path}: cannot listen: No such file or directory")


def test_shm_file_of_another_size_is_refused(sock_dir):
    (sock_dir / "mem").write_bytes(b"\0" * 4096)
    before = open_fds()
    with pytest.raises(UsageError) as error:
        IvshmemServer(sock_dir / "s", MIB, 1, "mem",
                      shm_dir=str(sock_dir)).start()
    assert str(error.value) == (
        f"{sock_dir}/mem: is 4096 bytes, not the 1 MiB asked for")
    assert not (sock_dir / "s").exists()
    assert open_fds() == before


@pytest.mark.parametrize("size, vectors, name, message", [
    (3 * MIB, 1, None,
     "shared memory of 3 MiB: QEMU needs a power of two (4 KiB or more)"),
    (2048, 1, None,
     "shared memory of 2048 bytes: QEMU needs a power of two (4 KiB or "
     "more)"),
    (MIB, 0, None, "0 vectors: the server hands out 1 to 1024"),
    (MIB, 1025, None, "1025 vectors: the server hands out 1 to 1024"),
    (MIB, 1, "a/b", "shm name 'a/b' must be one file name (not empty, "
     "'.', '..', and without '/')"),
    (MIB, 1, "..", "shm name '..' must be one file name (not empty, "
     "'.', '..', and without '/')"),
])
def test_bad_values_are_one_line_user_errors(sock_dir, size, vectors, name,
                                             message):
    with pytest.raises(AcrnShmError) as error:
        IvshmemServer(sock_dir / "s", size, vectors, name)
    assert str(error.value) == message


def test_socket_path_longer_than_107_bytes_is_refused(sock_dir):
    path = str(sock_dir) + "/" + "x" * 107
    with pytest.raises(UsageError) as error:
        IvshmemServer(path, MIB, 1)
    assert str(error.value) == (
        f"socket path {quoted(path)} is {len(path)} bytes; Unix sockets "
        "allow 1 to 107")
