"""``acrn-shm ivshmem-server`` under load, in a process of its own: peers
that never read, thousands of joins and leaves, and the open-file limit
reached on purpose.

The figures (welcome latency, CPU, fds) are printed (``pytest -s``);
what is asserted are properties: every peer that reads gets a whole
welcome, peers that never read delay no one, the server sleeps while
nothing happens and while it waits for fds (it logs that once), and its
fd count returns to where it started. The goal for a welcome is 100 ms;
the bound asserted is ten times that (:data:`WELCOME_BOUND`): the worst
seen on the 2-core development machine at a load average of 9 was
55 ms, and a server that waits on a peer that does not read takes 5 s
or more.
"""

from __future__ import annotations

import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from acrn_ivshmem.runtime.ivshmem_client import MessageReader

TICK = os.sysconf("SC_CLK_TCK")
#: Server CPU allowed while idle or waiting for fds, in seconds of CPU
#: per second: a spinning loop uses close to 1.0.
IDLE_CPU = 0.05
#: Seconds a reading peer may wait for its whole welcome.
WELCOME_BOUND = 1.0


#: Runs a command as root without the capabilities that lift the limit
#: on fds in flight (CAP_SYS_RESOURCE, CAP_SYS_ADMIN).
UNPRIVILEGED = ["setpriv", "--bounding-set=-sys_resource,-sys_admin"]


class Server:
    """The command in a process of its own, its stderr in a file."""

    def __init__(self, folder: Path, vectors: int, fd_limit: int,
                 prefix: tuple[str, ...] = ()):
        self.path = folder / "s"
        self.log = folder / "log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "acrn_ivshmem",
                 "ivshmem-server", "--socket", str(self.path), "--size", "1",
                 "--vectors", str(vectors)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log, preexec_fn=lambda: resource.setrlimit(
                    resource.RLIMIT_NOFILE, (fd_limit, fd_limit)))
        wait_for(lambda: "listening" in self.log.read_text(), "the server")

    def cpu(self) -> float:
        """Seconds of CPU the server has used."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()[1:]  # after "listening"

    def limit(self, soft: int) -> None:
        """Set the server's soft open-file limit (prlimit)."""
        _, hard = resource.prlimit(self.process.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(self.process.pid, resource.RLIMIT_NOFILE,
                         (soft, hard))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


class Peer:
    """A peer that reads everything: it checks the stream, closes each
    fd at once, and keeps the ids it knows and when its welcome ended."""

    def __init__(self, path: Path, vectors: int, selector):
        self.vectors = vectors
        self.reader = MessageReader()
        self.id = None
        self.count = 0  # messages read
        self.own = 0
        self.known: set[int] = set()
        self.started = time.monotonic()
        self.welcomed: float | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.setblocking(False)
        self.selector = selector
        selector.register(self.sock, selectors.EVENT_READ, self)

    def pump(self) -> None:
        while True:
            try:
                messages = self.reader.receive(self.sock)
            except BlockingIOError:
                return
            assert messages is not None, f"peer {self.id} was dropped"
            for value, fd in messages:
                self.take(value, fd)

    def take(self, value: int, fd: int | None) -> None:
        if fd is not None:
            os.close(fd)
        self.count += 1
        if self.count == 1:
            assert (value, fd) == (0, None)
        elif self.count == 2:
            self.id = value
        elif self.count == 3:
            assert value == -1 and fd is not None
        elif value == self.id:
            self.own += 1
            if self.own == self.vectors:
                self.welcomed = time.monotonic()
        elif fd is None:
            self.known.discard(value)
        else:
            self.known.add(value)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.selector.unregister(self.sock)
            self.sock.close()


def wait_for(condition, what: str, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def pump(selector, condition, what: str, seconds: float = 10.0):
    """Read whatever arrives until ``condition()``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for key, _ in selector.select(0.05):
            key.data.pump()


def pump_for(selector, seconds: float) -> None:
    """Read whatever arrives for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.02):
            key.data.pump()


def idle_cpu(server: Server, seconds: float) -> float:
    before = server.cpu()
    time.sleep(seconds)
    return (server.cpu() - before) / seconds


@pytest.fixture
def folder():
    path = tempfile.mkdtemp(prefix="ivsoak-")  # short: socket paths
    yield Path(path)
    for entry in os.listdir(path):
        os.unlink(os.path.join(path, entry))
    os.rmdir(path)


def test_out_of_fds_the_server_sleeps_logs_once_and_resumes(folder):
    """Room for a few peers only: the next ones wait, unaccepted, while
    the server sleeps; one log line says why; a leave lets one in."""
    server = Server(folder, vectors=1, fd_limit=64)
    selector = selectors.DefaultSelector()
    peers = []
    try:
        peers += [Peer(server.path, 1, selector) for _ in range(40)]
        pump(selector, lambda: sum(peer.welcomed is not None
                                   for peer in peers) > 5, "welcomes")
        time.sleep(0.3)
        cpu = idle_cpu(server, 1.0)
        pump_for(selector, 0.1)
        waiting = [peer for peer in peers if peer.welcomed is None]
        print(f"\nout of fds: {len(peers) - len(waiting)} peers in, "
              f"{len(waiting)} waiting; server CPU {cpu:.3f} s/s")
        assert waiting
        assert cpu < IDLE_CPU
        assert server.lines() == [
            "acrn-shm: cannot take more peers (Too many open files): new "
            "peers wait until a peer leaves; retrying every 1 s at most"]
        next(peer for peer in peers if peer.welcomed is not None).close()
        pump(selector, lambda: sum(peer.welcomed is None
                                   for peer in peers) < len(waiting),
             "a waiting peer to get in")
    finally:
        status = server.stop()
        for peer in peers:
            peer.close()
        selector.close()
    assert status == 0


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="as root, setpriv (util-linux) is needed to drop "
                    "CAP_SYS_RESOURCE")
@pytest.mark.parametrize("gap", [0, 0.05], ids=["together", "one_by_one"])
def test_fds_in_flight_to_mute_peers_stall_others_only_until_they_go(
        folder, gap):
    """Linux refuses to pass more fds than the sender's open-file limit
    while they wait unread (ETOOMANYREFS). Mute peers reach that limit;
    a peer that comes then waits (not dropped: the server says why once
    and sleeps), and gets its welcome once they go, together or one by
    one (each going frees room for a send, and the next send fails
    again: still one episode, one line)."""
    prefix = tuple(UNPRIVILEGED) if os.geteuid() == 0 else ()
    server = Server(folder, vectors=1, fd_limit=64, prefix=prefix)
    selector = selectors.DefaultSelector()
    mute, late = [], None
    try:
        for _ in range(20):  # each holds up to 6 fds unread
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(server.path))
            mute.append(sock)
            time.sleep(0.01)
        wait_for(lambda: len(server.lines()) == 1, "the fds in flight to "
                 "reach the limit")
        late = Peer(server.path, 1, selector)
        pump_for(selector, 0.5)
        cpu = idle_cpu(server, 1.0)
        assert late.welcomed is None and late.count < 3 + 21 + 1
        for sock in mute:
            sock.close()
            pump_for(selector, gap)
        pump(selector, lambda: late.welcomed is not None, "the welcome")
        print(f"\nfds in flight: a late peer waited "
              f"{(late.welcomed - late.started) * 1000:.0f} ms; server CPU "
              f"while it waited {cpu:.3f} s/s")
        assert cpu < IDLE_CPU
        assert server.lines() == [
            "acrn-shm: cannot send to peers (Too many references: cannot "
            "splice): waiting for peers to read; retrying every 1 s at most"]
    finally:
        status = server.stop()
        for sock in mute:
            sock.close()
        if late is not None:
            late.close()
        selector.close()
    assert status == 0


def test_soak(folder):
    """50 peers, 10 of which never read; 2,000 joins and leaves; the
    open-file limit reached on purpose; then everyone leaves."""
    vectors, churn, batch = 1, 2000, 4
    server = Server(folder, vectors=vectors, fd_limit=4096)
    selector = selectors.DefaultSelector()
    latencies: list[float] = []
    mute, readers, blocked = [], [], []
    try:
        fds_at_start = server.fds()
        started = time.monotonic()
        for _ in range(10):  # never read: their sockets just sit there
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(server.path))
            mute.append(sock)
        for _ in range(40):
            peer = Peer(server.path, vectors, selector)
            pump(selector, lambda peer=peer: peer.welcomed is not None,
                 "a welcome")
            latencies.append(peer.welcomed - peer.started)
            readers.append(peer)
        for _ in range(churn // batch):
            comers = [Peer(server.path, vectors, selector)
                      for _ in range(batch)]
            pump(selector, lambda comers=comers: all(
                peer.welcomed is not None for peer in comers), "welcomes")
            latencies += [peer.welcomed - peer.started for peer in comers]
            for peer in comers:
                peer.close()
        churned = time.monotonic() - started
        live = {peer.id for peer in readers}

        # Every reader knows exactly the peers there (the mute ones
        # too: it was told of them in its welcome).
        pump(selector, lambda: all(
            peer.known | {peer.id} >= live and len(peer.known) == 49
            for peer in readers), "the readers to catch up")
        idle = idle_cpu(server, 1.0)

        # The open-file limit, reached on purpose: room for two peers.
        fds_now = server.fds()
        server.limit(fds_now + 2 * (vectors + 1))
        blocked += [Peer(server.path, vectors, selector) for _ in range(5)]
        pump(selector, lambda: sum(peer.welcomed is not None
                                   for peer in blocked) == 2, "two in")
        time.sleep(0.2)
        starved = idle_cpu(server, 1.0)
        pump_for(selector, 0.1)
        assert sum(peer.welcomed is not None for peer in blocked) == 2
        server.limit(4096)
        left = time.monotonic()
        for peer in [peer for peer in blocked if peer.welcomed is not None]:
            peer.close()  # a leave lets the others in at once
        pump(selector, lambda: all(peer.welcomed is not None
                                   for peer in blocked), "the rest")
        resumed = max(peer.welcomed for peer in blocked) - left

        for peer in readers + blocked:
            peer.close()
        for sock in mute:
            sock.close()
        wait_for(lambda: server.fds() == fds_at_start, "the fds to return",
                 seconds=5)
        lines = server.lines()
    finally:
        status = server.stop()
        for peer in readers + blocked:
            peer.close()
        for sock in mute:
            sock.close()
        selector.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"\nsoak: {len(latencies)} welcomes in {churned:.1f} s; welcome "
          f"latency median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
          f"server CPU idle {idle:.3f} s/s, out of fds {starved:.3f} s/s; "
          f"waiting peers in {resumed * 1000:.0f} ms after a leave; "
          f"server fds {fds_at_start} at start, {fds_now} with 50 peers")
    assert status == 0
    assert latencies[-1] < WELCOME_BOUND
    assert idle < IDLE_CPU
    assert starved < IDLE_CPU
    assert lines == [
        "acrn-shm: cannot take more peers (Too many open files): new "
        "peers wait until a peer leaves; retrying every 1 s at most"]
