"""Channels that wait on doorbells: the host side, through a real
ivshmem server (acrn_ivshmem.runtime.ivshmem_server) and its eventfds.

A waiting side sleeps on its eventfd for at most ``WAIT_CAP`` seconds
before it looks at the counters again; the tests raise that cap to 60
s, so a receive that returns within seconds was woken by the doorbell.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from acrn_ivshmem import channel
from acrn_ivshmem.channel import ChannelError, Region, init_region
from acrn_ivshmem.channel import channel as channel_module
from acrn_ivshmem.channel.layout import DOORBELL_PRESENT
from acrn_ivshmem.runtime.ivshmem_server import IvshmemServer

KIB = 1024


@pytest.fixture
def sock_dir():
    """A short folder: Unix socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="ivch-") as path:
        yield Path(path)


@pytest.fixture
def no_cap(monkeypatch):
    """Doorbell waits that only a ring ends early."""
    monkeypatch.setattr(channel_module, "WAIT_CAP", 60.0)


@contextmanager
def serving(sock_dir: Path, shm_name: str | None = "ring",
            size: int = 64 * KIB):
    server = IvshmemServer(sock_dir / "s", size, 1, shm_name,
                           shm_dir=str(sock_dir))
    server.start()
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(10)


def initialised(path: Path, name: str = "ring") -> Path:
    with Region.open_file(path) as made:
        init_region(made, name)
    return path


def in_thread(function):
    """Run ``function`` in a thread; return (thread, result list)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    return thread, result


def test_a_blocked_receive_is_woken_by_the_doorbell(sock_dir, no_cap):
    with serving(sock_dir) as server:
        path = initialised(sock_dir / "ring")
        socket = str(sock_dir / "s")
        with channel.open_file(path, 1, server=socket) as receiver, \
                channel.open_file(path, 0, server=socket) as sender:
            assert server.peer_ids() == (0, 1)
            assert receiver._words[0x190 // 8] == DOORBELL_PRESENT | 0 << 16
            assert sender._words[0x110 // 8] == DOORBELL_PRESENT | 1 << 16
            thread, got = in_thread(lambda: receiver.recv(timeout=30))
            time.sleep(0.3)  # it sleeps on its eventfd by now
            assert receiver._words[0x198 // 8] == 1  # waiting for data
            start = time.monotonic()
            sender.send(b"ding")
            thread.join(30)
            assert got == [b"ding"]
            assert time.monotonic() - start < 10
            assert receiver._words[0x198 // 8] == 0


def test_a_full_ring_is_woken_when_the_reader_makes_room(sock_dir, no_cap):
    with serving(sock_dir, size=8 * KIB):
        path = initialised(sock_dir / "ring")
        socket = str(sock_dir / "s")
        with channel.open_file(path, 0, server=socket) as sender, \
                channel.open_file(path, 1, server=socket) as receiver:
            big = b"x" * sender.max_message
            sender.send(big)
            thread, sent = in_thread(
                lambda: sender.send_batch([big, big], timeout=30))
            time.sleep(0.3)
            assert sender._words[0x118 // 8] == 2  # waiting for room
            start = time.monotonic()
            assert receiver.recv_batch(timeout=5) == [big]
            assert receiver.recv(timeout=30) == big
            assert receiver.recv(timeout=30) == big
            thread.join(30)
            assert sent == [2]
            assert time.monotonic() - start < 10


def test_a_side_without_doorbell_is_polled(sock_dir, no_cap):
    with serving(sock_dir):
        path = initialised(sock_dir / "ring")
        with channel.open_file(path, 1, server=str(sock_dir / "s")) as rx, \
                channel.open_file(path, 0) as tx:
            # The sender cannot ring: the receiver sees no doorbell in
            # its slot and polls instead of sleeping for 60 s.
            thread, got = in_thread(lambda: rx.recv(timeout=30))
            time.sleep(0.2)
            start = time.monotonic()
            tx.send(b"polled")
            thread.join(30)
            assert got == [b"polled"]
            assert time.monotonic() - start < 10


def test_a_peer_that_rejoins_is_rung_under_its_new_id(sock_dir, no_cap):
    with serving(sock_dir) as server:
        path = initialised(sock_dir / "ring")
        socket = str(sock_dir / "s")
        with channel.open_file(path, 0, server=socket) as sender:
            first = channel.open_file(path, 1, server=socket)
            first.close()
            with channel.open_file(path, 1, server=socket) as again:
                assert server.peer_ids() == (0, 2)
                assert again.epoch == 2
                thread, got = in_thread(lambda: again.recv(timeout=30))
                time.sleep(0.3)
                start = time.monotonic()
                sender.send(b"new id")
                thread.join(30)
                assert got == [b"new id"]
                assert time.monotonic() - start < 10


def test_server_memory_without_a_file(sock_dir, no_cap):
    with serving(sock_dir, shm_name=None):
        socket = str(sock_dir / "s")
        with channel.connect(socket, 0, init="mem") as first, \
                channel.connect(socket, 1, name="mem") as second:
            thread, got = in_thread(lambda: second.recv_batch(timeout=30))
            time.sleep(0.3)
            first.send_batch([b"a", b"b"])
            thread.join(30)
            assert got == [[b"a", b"b"]]
            assert first.where == f"channel 'mem' (ivshmem server '{socket}')"


def test_no_server_means_polling_after_one_line(sock_dir, caplog):
    path = sock_dir / "ring"
    Region.open_file(path, create_size=16 * KIB).close()
    initialised(path)
    caplog.set_level(logging.WARNING)
    with channel.open_file(path, 0, server=str(sock_dir / "none")) as chan:
        assert chan._doorbell is None
        assert chan._words[0x110 // 8] == 0
    assert [record.getMessage() for record in caplog.records] == [
        f"ivshmem server '{sock_dir / 'none'}': No such file or directory; "
        "polling instead of the doorbell"]


def test_a_server_of_other_memory_is_refused(sock_dir):
    with serving(sock_dir, shm_name="other"):
        path = sock_dir / "ring"
        Region.open_file(path, create_size=64 * KIB).close()
        initialised(path)
        with pytest.raises(ChannelError) as caught:
            channel.open_file(path, 0, server=str(sock_dir / "s"))
        assert str(caught.value) == (
            f"ivshmem server '{sock_dir / 's'}' serves other memory than "
            f"'{path}'")


def test_a_server_that_is_not_one(sock_dir):
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_dir / "s"))
    listener.listen(1)

    def greet():
        conn, _ = listener.accept()
        conn.sendall((7).to_bytes(8, "little"))
        conn.close()
    thread = threading.Thread(target=greet)
    thread.start()
    try:
        with pytest.raises(ChannelError) as caught:
            channel.ServerDoorbell.connect(str(sock_dir / "s"))
        assert str(caught.value) == (
            f"ivshmem server '{sock_dir / 's'}' speaks protocol 7, not 0")
    finally:
        thread.join(10)
        listener.close()
