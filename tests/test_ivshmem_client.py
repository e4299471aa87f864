"""The peer's side of the doorbell protocol: the stream decoder and the
view it builds, against a real server, split streams and bad ones."""

from __future__ import annotations

import os
import socket
import struct
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.errors import IvshmemProtocolError
from acrn_ivshmem.runtime.ivshmem_client import MessageReader, PeerView
from acrn_ivshmem.runtime.ivshmem_server import IvshmemServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import ivshmem_harness  # noqa: E402 - fuzz/ is no package

MIB = 1024 * 1024


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def message(value: int) -> bytes:
    return struct.pack("<q", value)


def memory(size: int = 4096) -> int:
    fd = os.memfd_create("test", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    return fd


def event() -> int:
    return os.eventfd(0, os.EFD_CLOEXEC)


@contextmanager
def served(vectors: int):
    folder = tempfile.mkdtemp(prefix="ivc-")
    path = Path(folder) / "s"
    server = IvshmemServer(path, MIB, vectors)
    server.start()
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield path
    finally:
        server.close()
        thread.join(10)
        os.rmdir(folder)


def join(path: Path, vectors: int, others: int) -> tuple[socket.socket,
                                                         PeerView]:
    """Connect and read a whole welcome with ``others`` peers there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    reader, view = MessageReader(), PeerView(vectors)
    while not view.ready:
        for value, fd in reader.receive(sock):
            view.apply(value, fd)
    assert len(view.peers) == others
    return sock, view


# ---------------------------------------------------------------------------
# Against the server


def test_views_of_two_peers_match_and_ring_each_other():
    before = open_fds()
    with served(2) as path:
        first_sock, first = join(path, 2, 0)
        second_sock, second = join(path, 2, 1)
        reader = MessageReader()
        for _ in range(2):  # the second peer's join, one per vector
            for value, fd in reader.receive(first_sock):
                first.apply(value, fd)
        assert (first.version, first.id, second.id) == (0, 0, 1)
        assert (first.peers.keys(), second.peers.keys()) == ({1}, {0})
        assert os.fstat(first.shm).st_size == MIB
        os.eventfd_write(second.peers[0][1], 7)
        assert os.eventfd_read(first.own[1]) == 7
        os.eventfd_write(first.peers[1][0], 2)
        assert os.eventfd_read(second.own[0]) == 2
        second_sock.close()
        second.close()
        assert reader.receive(first_sock) == [(1, None)]
        first.apply(1, None)
        assert first.peers == {}
        first_sock.close()
        first.close()
    assert open_fds() == before


def test_end_of_stream_is_none_between_messages():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(message(0))
        left.close()
        reader = MessageReader()
        assert reader.receive(right) == [(0, None)]
        assert reader.receive(right) is None


# ---------------------------------------------------------------------------
# Streams split anywhere


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-2**63, 2**63 - 1), min_size=1,
                       max_size=6),
       cuts=st.lists(st.integers(1, 8), max_size=20))
def test_any_split_of_the_stream_gives_the_same_messages(values, cuts):
    stream = b"".join(message(value) for value in values)
    reader, found, start = MessageReader(), [], 0
    for cut in cuts + [len(stream)]:
        found += reader.feed(stream[start:start + cut], [])
        start += cut
        if start >= len(stream):
            break
    assert found == [(value, None) for value in values]
    assert not reader.partial


def test_an_fd_belongs_to_the_message_its_first_byte_starts():
    fd = event()
    reader = MessageReader()
    assert reader.feed(message(5)[:3], [fd]) == []
    assert reader.feed(message(5)[3:] + message(6), []) == [(5, fd), (6, None)]
    os.close(fd)


def test_read_from_a_socket_never_passes_a_message_boundary():
    left, right = socket.socketpair()
    fd = event()
    with left, right:
        left.sendall(message(1) + message(2))
        socket.send_fds(left, [message(3)], [fd])
        reader = MessageReader()
        got = [reader.receive(right) for _ in range(3)]
        assert got[:2] == [[(1, None)], [(2, None)]]
        assert got[2][0][0] == 3
        assert os.fstat(got[2][0][1]).st_ino == os.fstat(fd).st_ino
        os.close(got[2][0][1])
    os.close(fd)


# ---------------------------------------------------------------------------
# What a server must not send: one line each, and no fd left open


@pytest.mark.parametrize("chunks, error", [
    ([(message(1)[:4], 0), (message(1)[4:], 1)],
     "1 fd(s) arrived in the middle of a message; the protocol sends at "
     "most one, with a message's first byte"),
    ([(message(1), 2)],
     "2 fd(s) arrived with one message; the protocol sends at most one, "
     "with a message's first byte"),
    ([(b"", 1)],
     "1 fd(s) arrived without a message; the protocol sends at most one, "
     "with a message's first byte"),
])
def test_fds_that_fit_no_message_are_refused_and_closed(chunks, error):
    before = open_fds()
    reader = MessageReader()
    with pytest.raises(IvshmemProtocolError) as caught:
        for data, count in chunks:
            reader.feed(data, [event() for _ in range(count)])
    assert str(caught.value) == error
    assert not reader.partial
    assert open_fds() == before


def test_a_stream_cut_inside_a_message_is_refused():
    left, right = socket.socketpair()
    with left, right:
        fd = event()
        socket.send_fds(left, [message(9)[:5]], [fd])
        os.close(fd)
        left.close()
        before = open_fds()
        reader = MessageReader()
        assert reader.receive(right) == []
        with pytest.raises(IvshmemProtocolError) as caught:
            reader.receive(right)
        assert str(caught.value) == "the stream ended 5 byte(s) into a message"
    assert open_fds() < before  # the message's fd too


def test_more_fds_than_the_reader_has_room_for_are_refused():
    left, right = socket.socketpair()
    fds = [event() for _ in range(6)]
    with left, right:
        socket.send_fds(left, [message(0)], fds)
        before = open_fds()
        with pytest.raises(IvshmemProtocolError) as caught:
            MessageReader().receive(right)
        assert str(caught.value) == ("more fds arrived than a message may "
                                     "carry")
        assert open_fds() == before
    for fd in fds:
        os.close(fd)


def welcomed(vectors: int = 1) -> PeerView:
    view = PeerView(vectors)
    for value, fd in ((0, None), (3, None), (-1, memory())):
        view.apply(value, fd)
    return view


@pytest.mark.parametrize("steps, error", [
    ([(1, None)], "protocol version 1 without an fd; peers speak version 0"),
    ([(0, "event")], "protocol version 0 with an fd; peers speak version 0"),
    ([(0, None), (65536, None)],
     "peer id 65536 without an fd; ids are 0 to 65535, with no fd"),
    ([(0, None), (-1, None)],
     "peer id -1 without an fd; ids are 0 to 65535, with no fd"),
    ([(0, None), (2, "event")],
     "peer id 2 with an fd; ids are 0 to 65535, with no fd"),
    ([(0, None), (2, None), (-1, None)],
     "shared memory -1 without an fd; expected -1 with the memory's fd"),
    ([(0, None), (2, None), (4, "memory")],
     "shared memory 4 with an fd; expected -1 with the memory's fd"),
    ([(0, None), (2, None), (-1, "small")],
     "shared memory of 12288 bytes; QEMU maps a power of two, 4 KiB or "
     "more"),
    ([(0, None), (2, None), (-1, "event")],
     "shared memory of 0 bytes; QEMU maps a power of two, 4 KiB or more"),
])
def test_a_bad_welcome_is_refused_in_one_line(steps, error):
    assert_refused(lambda: PeerView(1), steps, error)


def assert_refused(make_view, steps, error: str) -> None:
    """Applying ``steps`` (value, kind of fd) to a new view ends in
    ``error``, and no fd is left open once the view is closed."""
    before = open_fds()
    view = make_view()
    makers = {"event": event, "memory": memory,
              "small": lambda: memory(3 * 4096)}
    with pytest.raises(IvshmemProtocolError) as caught:
        for value, kind in steps:
            view.apply(value, None if kind is None else makers[kind]())
    assert str(caught.value) == error
    view.close()
    assert open_fds() == before


@pytest.mark.parametrize("steps, error", [
    ([(-1, "memory")],
     "message -1 with an fd after the shared memory; peer ids are 0 to "
     "65535"),
    ([(-5, None)],
     "message -5 without an fd after the shared memory; peer ids are 0 to "
     "65535"),
    ([(7, "event"), (7, "event")],
     "eventfd 2 for peer 7; this peer has 1 vector(s)"),
    ([(3, "event"), (3, "event")],
     "eventfd 2 for peer 3; this peer has 1 vector(s)"),
    ([(3, None)], "told that peer 3, this peer, left"),
])
def test_a_bad_message_after_the_welcome_is_refused(steps, error):
    assert_refused(welcomed, steps, error)


def test_leave_of_a_peer_never_told_of_is_ignored_as_qemu_does():
    view = welcomed()
    view.apply(9, None)
    view.apply(7, event())
    view.apply(7, None)
    assert (view.peers, view.ready) == ({}, False)
    view.close()


# ---------------------------------------------------------------------------
# Any bytes and fds


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20), st.integers(0, 2)),
                max_size=12),
       st.integers(1, 3))
def test_any_bytes_and_fds_end_in_messages_or_one_protocol_error(
        chunks, vectors):
    """Whatever arrives, only IvshmemProtocolError escapes, and once the
    view is closed no fd it was given is left open."""
    before = open_fds()
    reader, view = MessageReader(), PeerView(vectors)
    try:
        for data, count in chunks:
            fds = [memory() if count == 2 else event()
                   for _ in range(count)]
            for value, fd in reader.feed(data, fds):
                view.apply(value, fd)
    except IvshmemProtocolError as error:
        assert "\n" not in str(error)
    reader.close()
    view.close()
    assert open_fds() == before


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_stream_over_a_socket_is_read_or_refused_in_one_line(data):
    """fuzz/ivshmem_harness.py's client check: bytes and fds of several
    kinds, as many per sendmsg as the input says, over a socket pair."""
    ivshmem_harness.check_client(data)


def test_the_fuzz_seeds_pass():
    check = ivshmem_harness.ServerCheck()
    try:
        for seed in ivshmem_harness.seeds():
            if seed[0] & 1:
                check.check(seed[1:])
            else:
                ivshmem_harness.check_client(seed[1:])
    finally:
        check.close()
