"""The channel library (acrn_ivshmem.channel) on host memory.

Regions here are ``bytearray`` buffers or files in a temporary folder;
the format's exact bytes are pinned by ``tests/test_channel/`` golden
files (``UPDATE_GOLDEN=1`` rewrites them; review the diff). C, the
doorbells, the stress test and the fuzz property have their own
test_channel_*.py modules.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_guest import sysfs  # noqa: F401 - the fake sysfs fixture

from acrn_ivshmem import channel
from acrn_ivshmem.channel import (
    Channel, ChannelError, ChannelTimeout, CorruptRegion, Header, PeerInfo,
    Region, init_region, layout,
)
from acrn_ivshmem.errors import AcrnShmError

DATA = Path(__file__).parent / "test_channel"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
KIB = 1024
RING = 30720  # each ring of a 64 KiB region


def region(size: int = 64 * KIB, name: str = "shm_region_0") -> Region:
    made = Region.from_buffer(bytearray(size))
    init_region(made, name)
    return made


def pair(made: Region, **options) -> tuple[Channel, Channel]:
    options.setdefault("heartbeat", 0)
    return Channel(made, 0, **options), Channel(made, 1, **options)


def dump(data: bytes) -> str:
    """16 bytes a line, as ``offset: hex``."""
    return "".join(f"{at:04x}: {data[at:at + 16].hex(' ')}\n"
                   for at in range(0, len(data), 16))


def golden(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text, encoding="ascii")
    assert text == path.read_text(encoding="ascii")


def word(made: Region, offset: int) -> int:
    return made.words[offset // 8]


def set_word(made: Region, offset: int, value: int) -> None:
    made.words[offset // 8] = value


def rewrite_header(made: Region, offset: int, data: bytes,
                   crc: bool = True) -> None:
    """Patch header bytes (and the CRC, unless told not to)."""
    view = made.view
    view[offset:offset + len(data)] = data
    if crc:
        view[0xFC:0x100] = struct.pack(
            "<I", zlib.crc32(bytes(view[:0xFC])))


# ---------------------------------------------------------------------------
# The header


def test_fresh_region_bytes():
    made = region()
    golden("fresh-64k.txt", dump(bytes(made.view[:0x400])))
    assert bytes(made.view[0x400:0x1000]) == bytes(0xC00)


def test_header_reads_back():
    assert region().header() == Header(
        "shm_region_0", 65536, ((0x1000, RING), (0x1000 + RING, RING)),
        (1, 0))
    assert layout.default_rings(2 * 1024 * KIB) == (
        (0x1000, 0xFF800), (0x100800, 0xFF800))


@pytest.mark.parametrize("name, message", [
    ("", "region name '' is 0 bytes of UTF-8; give 1 to 63"),
    ("x" * 64, f"region name '{'x' * 64}' is 64 bytes of UTF-8; give 1 to 63"),
    ("é" * 32, f"region name '{'é' * 32}' is 64 bytes of UTF-8; give 1 to 63"),
    ("a\nb", r"region name 'a\x0ab' has a control character (U+000A)"),
    ("a\x85", r"region name 'a\x85' has a control character (U+0085)"),
    ("\udcff", "region name '\udcff' is not valid UTF-8 text"),
    (7, "region name 7 is not text"),
])
def test_bad_names(name, message):
    with pytest.raises(ChannelError) as caught:
        init_region(Region.from_buffer(bytearray(16 * KIB)), name)
    assert str(caught.value) == message


def test_longest_and_unicode_names():
    assert region(name="x" * 63).header().name == "x" * 63
    assert region(name="環境-1").header().name == "環境-1"


@pytest.mark.parametrize("patch, message", [
    ((0, b"IVSHMCHX", False), "buffer: no channel header (the first bytes "
     "are 49 56 53 48 4d 43 48 58, not 49 56 53 48 4d 43 48 4e); "
     "initialise it first"),
    ((8, b"\x02\x00\x01\x00", False),
     "buffer: channel layout version 2.1; this library reads 1.x"),
    ((0x20, b"S", False),
     "buffer: the channel header's CRC-32 does not match its bytes"),
    ((0x0C, struct.pack("<I", 0x2000), True),
     "buffer: header size 8192, 2 peers, flags 0x0; layout 1 has 4096, "
     "2, 0"),
    ((0x1C, b"\x01", True),
     "buffer: header size 4096, 2 peers, flags 0x1; layout 1 has 4096, "
     "2, 0"),
    ((0x10, struct.pack("<Q", 128 * KIB), True),
     "buffer: the header's region size 131072 is not 4608 to the 65536 "
     "bytes mapped"),
    ((0x68, struct.pack("<Q", RING + 64), True),
     "buffer: ring at 0x8800 of 0x7800 bytes: rings are 64-byte aligned, "
     "256 bytes or more, after 0x1000, apart, and inside the 0x10000 "
     "bytes of the region"),
    ((0x70, struct.pack("<Q", 0x8004), True),
     "buffer: ring at 0x8004 of 0x7800 bytes: rings are 64-byte aligned, "
     "256 bytes or more, after 0x1000, apart, and inside the 0x10000 "
     "bytes of the region"),
    ((0x20, b"\xff\xfe", True),
     "buffer: the header's name b'\\xff\\xfem_region_0' is not 1 to 63 "
     "bytes of printable UTF-8"),
    ((0x20, b"\x00", True),
     "buffer: the header's name b'' is not 1 to 63 bytes of printable "
     "UTF-8"),
    ((0x2E, b"\x00x", True),
     "buffer: bytes after the name's NUL are not zero"),
])
def test_broken_headers(patch, message):
    made = region()
    offset, data, crc = patch
    rewrite_header(made, offset, data, crc)
    with pytest.raises(ChannelError) as caught:
        made.header()
    assert str(caught.value) == message
    # Anything past the missing magic and the version is corruption.
    assert isinstance(caught.value, CorruptRegion) == (offset >= 0x0C
                                                       or offset == 0x20)


def test_too_small_regions():
    with pytest.raises(ChannelError) as caught:
        init_region(Region.from_buffer(bytearray(4000)), "a")
    assert str(caught.value) == ("buffer: 4000 bytes is too small for a "
                                 "channel")
    with pytest.raises(ChannelError) as caught:
        init_region(Region.from_buffer(bytearray(4600)), "a")
    assert str(caught.value) == ("a region of 4600 bytes is too small for "
                                 "a channel: give 4608 or more")
    smallest = region(4608)
    assert smallest.header().rings == ((0x1000, 256), (0x1100, 256))
    assert smallest.header().max_message(0) == 120


def test_a_larger_mapping_is_accepted():
    # QEMU takes a backing file larger than the region; so does a header.
    made = region()
    bigger = Region.from_buffer(bytearray(128 * KIB))
    bigger.view[:64 * KIB] = made.view
    assert bigger.header().region_size == 64 * KIB


def test_init_refuses_an_attached_peer():
    made = region()
    chan = Channel(made, 1, heartbeat=0)
    with pytest.raises(ChannelError) as caught:
        init_region(made, "again")
    assert str(caught.value) == (
        "buffer: peer 1 of channel 'shm_region_0' is attached (epoch 1); "
        "stop it, or initialise with force")
    assert init_region(made, "again", force=True).name == "again"
    assert word(made, 0x180) == 0
    chan.close()


def test_init_stores_the_magic_last():
    stores = []

    class Words:
        def __init__(self, words):
            self.words = words

        def __setitem__(self, index, value):
            stores.append((index, value, bytes(made.view[8:0x100])))
            self.words[index] = value

        def __getitem__(self, index):
            return self.words[index]

    made = Region.from_buffer(bytearray(16 * KIB))
    made.view[:8] = b"IVSHMCHN"
    made.words = Words(made.words)
    init_region(made, "late", force=True)
    magic = int.from_bytes(b"IVSHMCHN", "little")
    # Unpublished first; published only once the rest is written.
    assert [(index, value) for index, value, _ in stores] == [
        (0, 0), (0, magic)]
    assert stores[0][2] == bytes(0xF8)
    assert stores[1][2] == layout.encode_header("late", 16 * KIB)[8:]


# ---------------------------------------------------------------------------
# Records


def test_record_bytes():
    made = region()
    writer, reader = pair(made)
    writer.send(b"abc")
    assert writer.send_batch([b"", b"12345678", b"z"]) == 3
    ring = bytes(made.view[0x1000:0x1000 + 96])
    golden("records.txt", dump(ring))
    assert word(made, 0x200) == 16 + 16 + 40
    assert reader.recv_batch() == [b"abc", b"", b"12345678", b"z"]
    assert word(made, 0x280) == 72


def test_wrap_record_and_wrapped_counters():
    made = region(4608)  # rings of 256 bytes, messages up to 120
    writer, reader = pair(made)
    assert reader.recv_batch(timeout=0) == []
    writer.send(b"a" * 100)  # 16 (epoch) + 112
    assert reader.recv_batch() == [b"a" * 100]
    writer.send(b"b" * 100)  # head 240: 16 bytes to the end
    writer.send(b"c" * 100)  # a wrap record there, then at 0
    assert struct.unpack_from("<II", made.view, 0x1000 + 240) == (0, 2)
    assert bytes(made.view[0x1000:0x1008]) == struct.pack("<II", 100, 1)
    assert word(made, 0x200) == 256 + 112
    assert reader.recv_batch() == [b"b" * 100, b"c" * 100]
    assert word(made, 0x280) == 256 + 112
    writer.send(b"d")
    assert reader.recv_batch() == [b"d"]
    assert (word(made, 0x200), word(made, 0x280)) == (384, 384)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.one_of(st.integers(0, 80), st.integers(0, 1016),
                                st.just(1016)), max_size=300),
       chunks=st.lists(st.integers(1, 50), min_size=1, max_size=20),
       limits=st.lists(st.integers(1, 40), min_size=1, max_size=20),
       into=st.lists(st.sampled_from([0, 1016, 1500, 4096]), min_size=1,
                     max_size=20))
def test_any_messages_arrive_in_order_and_intact(sizes, chunks, limits,
                                                 into):
    made = region(8 * KIB)  # rings of 2 KiB: wraps all the time
    writer, reader = pair(made)
    messages = [(index.to_bytes(4, "little") * (size // 4 + 1))[:size]
                for index, size in enumerate(sizes)]
    got, sent, turn = [], 0, 0
    while len(got) < len(messages):
        chunk = messages[sent:sent + chunks[turn % len(chunks)]]
        sent += writer.send_batch(chunk, timeout=0)
        limit, room = limits[turn % len(limits)], into[turn % len(into)]
        if room:  # into a buffer of `room` bytes, back to back
            buffer = bytearray(room)
            lengths = reader.recv_batch_into(buffer, limit, timeout=0)
            assert len(lengths) <= limit and sum(lengths) <= room
            ends = list(accumulate(lengths, initial=0))
            got += [bytes(buffer[start:end])
                    for start, end in zip(ends, ends[1:])]
        else:
            got += reader.recv_batch(limit, timeout=0)
        turn += 1
        assert turn < 10 * len(messages) + 10
    assert got == messages
    assert reader.recv_batch(timeout=0) == []


def test_longest_message_and_one_byte_more():
    made = region()
    writer, reader = pair(made)
    assert writer.max_message == RING // 2 - 8 == 15352
    writer.send(bytes(range(256)) * 59 + b"x" * 248)
    assert reader.recv() == bytes(range(256)) * 59 + b"x" * 248
    with pytest.raises(ChannelError) as caught:
        writer.send_batch([b"ok", b"x" * 15353, b"never"], timeout=0)
    assert reader.recv_batch() == [b"ok"]  # sent: the ones before it
    assert str(caught.value) == (
        "channel 'shm_region_0' (buffer) ring 0: a message of 15353 bytes "
        "is longer than the 15352 bytes this ring carries")


def test_messages_must_be_bytes():
    writer, _ = pair(region())
    with pytest.raises(TypeError):
        writer.send_batch([b"a", memoryview(b"abcdefgh").cast("Q")])
    with pytest.raises(TypeError):
        writer.send(memoryview(bytes(16)).cast("I"))
    assert writer.send_batch([bytearray(b"ab"), memoryview(b"cd")]) == 2


def test_timeouts():
    made = region(4608)
    writer, reader = pair(made)
    start = time.monotonic()
    with pytest.raises(ChannelTimeout) as caught:
        reader.recv(timeout=0.05)
    assert time.monotonic() - start >= 0.05
    assert str(caught.value) == ("channel 'shm_region_0' (buffer): no "
                                 "message in 0.05 s")
    assert isinstance(caught.value, TimeoutError)
    # 16 (epoch) + 112 + 112 = 240 of 256 bytes
    assert writer.send_batch([b"x" * 100] * 3, timeout=0.01) == 2
    with pytest.raises(ChannelTimeout) as caught:
        writer.send(b"y" * 10, timeout=0)  # 24 bytes: wraps, then full
    assert str(caught.value) == ("channel 'shm_region_0' (buffer): ring 0 "
                                 "still full after 0 s")


def test_a_batch_of_nothing_is_refused():
    _, reader = pair(region())
    with pytest.raises(ChannelError) as caught:
        reader.recv_batch(0, timeout=0)
    assert str(caught.value) == "max_messages 0: give 1 or more"


def test_batch_limits_and_leftovers():
    made = region()
    writer, reader = pair(made)
    writer.send_batch([b"%d" % n for n in range(10)])
    assert reader.recv_batch(3) == [b"0", b"1", b"2"]
    # The rest of the BATCH record is kept; its room is not released.
    assert word(made, 0x280) == 16
    assert reader.recv_batch(3, release=False) == [b"3", b"4", b"5"]
    assert reader.recv_batch(10, release=False) == [b"6", b"7", b"8", b"9"]
    assert word(made, 0x280) == 16
    reader.release()
    assert word(made, 0x280) == word(made, 0x200)



def test_a_receiver_killed_inside_a_batch_record_gets_all_of_it_again():
    made = region()
    writer, reader = pair(made)
    writer.send_batch([b"%d" % n for n in range(10)])
    assert reader.recv_batch(3) == [b"0", b"1", b"2"]
    # Killed here (never closed): its successor takes the slot over and
    # resumes at the released tail, the start of the BATCH record.
    successor = Channel(made, 1, heartbeat=0, takeover=True)
    assert successor.recv_batch(20, timeout=0) == [b"%d" % n
                                                   for n in range(10)]


def test_recv_into_copies_each_kind_of_record_into_the_buffer():
    made = region()
    writer, reader = pair(made)
    big = bytes(range(256)) * 20
    writer.send(big)  # a MESSAGE record (after the writer's EPOCH record)
    writer.send_batch([b"one", b"three"])  # a BATCH record
    buffer = bytearray(len(big) + 5)
    assert reader.recv_into(buffer) == len(big)
    assert buffer[:len(big)] == big and buffer[len(big):] == bytes(5)
    assert reader.recv_into(memoryview(buffer)[10:]) == 3
    assert buffer[10:13] == b"one"
    assert reader.recv_into(buffer) == 5 and buffer[:5] == b"three"
    assert word(made, 0x280) == word(made, 0x200)
    with pytest.raises(ChannelTimeout) as caught:
        reader.recv_into(buffer, timeout=0)
    assert str(caught.value).endswith("no message in 0 s")


def test_reserve_and_commit_send_with_no_copy():
    made, sent = region(4608), region(4608)  # rings of 256 bytes
    writer, reader = pair(made)
    view = writer.reserve(100)
    assert (len(view), view.readonly) == (100, False)
    view[:5] = b"hello"
    with pytest.raises(ChannelError) as caught:
        writer.send(b"other")
    assert str(caught.value) == (
        "channel 'shm_region_0' (buffer) ring 0: room is reserved for a "
        "message; commit it before sending another")
    with pytest.raises(ChannelError) as caught:
        writer.commit(101)
    assert str(caught.value) == ("channel 'shm_region_0' (buffer) ring 0: "
                                 "commit of 101 bytes in room reserved for "
                                 "100")
    writer.commit(5)
    with pytest.raises(ValueError):
        view[0]  # released: the room is the record's now
    writer.send(b"m" * 100)  # head 144: 112 bytes to the end
    # The same bytes as send() writes, before and after a WRAP.
    twin, twin_reader = pair(sent)
    twin.send(b"hello")
    twin.send(b"m" * 100)
    assert bytes(made.view[0x1000:0x1100]) == bytes(sent.view[0x1000:0x1100])
    assert reader.recv_batch() == [b"hello", b"m" * 100]
    assert twin_reader.recv_batch() == [b"hello", b"m" * 100]
    writer.reserve(108)[:] = b"e" * 108  # 120 bytes: a WRAP, then at 0
    writer.commit(108)
    twin.send(b"e" * 108)
    assert struct.unpack_from("<II", made.view, 0x1000 + 144) == (0, 2)
    assert bytes(made.view[0x1000:0x1100]) == bytes(sent.view[0x1000:0x1100])
    assert reader.recv_batch() == [b"e" * 108]
    with pytest.raises(ChannelError) as caught:
        writer.commit(0)
    assert str(caught.value) == ("channel 'shm_region_0' (buffer) ring 0: "
                                 "commit with no room reserved")
    with pytest.raises(ChannelError) as caught:
        writer.reserve(121)
    assert str(caught.value) == (
        "channel 'shm_region_0' (buffer) ring 0: room for 121 bytes: give 0 "
        "to the 120 bytes a message of this ring has")
    writer.send_batch([b"x" * 100, b"y" * 100])  # 32 bytes free
    with pytest.raises(ChannelTimeout) as caught:
        writer.reserve(120, timeout=0)
    assert str(caught.value) == ("channel 'shm_region_0' (buffer): ring 0 "
                                 "still full after 0 s")
    writer.reserve(0)  # the last 8 bytes, left open: close() releases it
    writer.close()
    made.close()


def test_recv_batch_into_copies_messages_back_to_back():
    made = region(4608)  # rings of 256 bytes, messages up to 120
    writer, reader = pair(made)
    writer.send(b"a" * 100)  # after the EPOCH record: 16 + 112
    writer.send_batch([b"bc", b"", b"def"])  # a BATCH record of 32 bytes
    writer.send(b"g" * 60)  # 68 of 96 bytes to the end
    buffer = bytearray(200)
    assert reader.recv_batch_into(buffer) == [100, 2, 0, 3, 60]
    assert buffer[:165] == b"a" * 100 + b"bcdef" + b"g" * 60
    assert buffer[165:] == bytes(35)
    assert word(made, 0x280) == word(made, 0x200) == 16 + 112 + 32 + 72
    writer.send(b"h" * 8)  # 16 of the last 24 bytes
    writer.send(b"i" * 30)  # 40 bytes: a WRAP record, then at 0
    writer.send_batch([b"jk", b"lmn"])
    assert struct.unpack_from("<II", made.view, 0x1000 + 248) == (0, 2)
    # A BATCH record whose messages pass the limit is left for later.
    assert reader.recv_batch_into(buffer, 3) == [8, 30]
    assert buffer[:38] == b"h" * 8 + b"i" * 30
    assert reader.recv_batch_into(buffer, 1) == [2]  # one of the BATCH
    assert buffer[:2] == b"jk"
    assert word(made, 0x280) == 296  # kept until the BATCH is all read
    assert reader.recv_batch_into(buffer, timeout=0) == [3]
    assert buffer[:3] == b"lmn"
    assert word(made, 0x280) == word(made, 0x200) == 328
    assert reader.recv_batch_into(buffer, timeout=0) == []


def test_recv_batch_into_stops_where_the_buffer_or_the_epoch_ends():
    made = region()
    writer, reader = pair(made)
    writer.send(b"x" * 50)
    writer.send(b"y" * 40)
    writer.send_batch([b"z" * 20, b"w" * 20])
    buffer = bytearray(100)
    assert reader.recv_batch_into(buffer) == [50, 40]  # 40 more: no room
    assert reader.recv_batch_into(memoryview(buffer)[60:]) == [20, 20]
    assert buffer[60:100] == b"z" * 20 + b"w" * 20
    writer.send(b"old")
    writer.close()
    restarted = Channel(made, 0, heartbeat=0)
    restarted.send(b"new")
    assert reader.recv_batch_into(buffer) == [3]  # not past the EPOCH
    assert (buffer[:3], reader.peer_epoch) == (b"old", 1)
    assert reader.recv_batch_into(buffer) == [3]
    assert (buffer[:3], reader.peer_epoch) == (b"new", 2)


@pytest.mark.parametrize(("call", "last"), [
    ("recv_into", 2), ("recv_batch_into", [2])])
def test_a_short_buffer_leaves_the_message(call, last):
    writer, reader = pair(region())
    receive = getattr(reader, call)
    writer.send(b"x" * 100)
    writer.send_batch([b"abcdef", b"gh"])
    short = bytearray(4)
    for expected in (b"x" * 100, b"abcdef"):
        with pytest.raises(ChannelError) as caught:
            receive(short, timeout=0)
        assert str(caught.value) == (
            "channel 'shm_region_0' (buffer) ring 0: the next message "
            f"has {len(expected)} bytes; the buffer holds 4")
        assert reader.recv(timeout=0) == expected
    assert receive(short, timeout=0) == last
    assert short[:2] == b"gh"
    with pytest.raises(TypeError) as caught:
        receive(b"read-only")
    assert str(caught.value) == f"{call} needs a writable buffer"


def test_recv_batch_into_takes_at_least_one_message():
    writer, reader = pair(region())
    with pytest.raises(ChannelError) as caught:
        reader.recv_batch_into(bytearray(4), 0)
    assert str(caught.value) == "max_messages 0: give 1 or more"


# ---------------------------------------------------------------------------
# Peers, epochs, restarts


def test_peer_states_and_epochs():
    made = region()
    first = Channel(made, 0, heartbeat=0)
    assert word(made, 0x100) == 1 << 8 | 1
    second = Channel(made, 1, heartbeat=0)
    assert first.peer_info == PeerInfo(1, "attached", 1, True)
    second.close()
    assert first.peer_info == PeerInfo(1, "detached", 1, False)
    again = Channel(made, 1, heartbeat=0)
    assert (again.epoch, first.peer_info) == (
        2, PeerInfo(1, "attached", 2, True))
    set_word(made, 0x180, 2 << 8 | 9)
    assert first.peer_info == PeerInfo(1, "unknown(9)", 2, False)
    first.close()
    again.close()
    with pytest.raises(ChannelError) as caught:
        Channel(made, 2)
    assert str(caught.value) == "peer 2: a channel has peers 0 and 1"
    with pytest.raises(ChannelError) as caught:
        Channel(made, 0, name="other")
    assert str(caught.value) == ("buffer: holds channel 'shm_region_0', "
                                 "not 'other'")


def test_a_restarted_writer_is_seen_exactly_where_it_starts():
    made = region()
    writer = Channel(made, 0, heartbeat=0)
    reader = Channel(made, 1, heartbeat=0)
    writer.send_batch([b"a1", b"a2"])
    # Killed: no detach, and a record written but never published.
    writer._writer.write([b"lost"])
    made.view[0x1000 + 48:0x1000 + 64] = b"\xff" * 16
    restarted = Channel(made, 0, heartbeat=0, takeover=True)
    assert restarted.epoch == 2
    restarted.send(b"b1")
    assert (reader.recv_batch(), reader.peer_epoch) == ([b"a1", b"a2"], 1)
    assert (reader.recv_batch(), reader.peer_epoch) == ([b"b1"], 2)


def test_a_restarted_reader_gets_what_it_did_not_release():
    made = region()
    writer, reader = pair(made)
    for message in (b"1", b"2", b"3"):
        writer.send(message)
    assert reader.recv_batch(2) == [b"1", b"2"]
    assert reader.recv_batch(release=False) == [b"3"]
    # Killed before release: the next reader resumes at the tail.
    restarted = Channel(made, 1, heartbeat=0, takeover=True)
    assert restarted.recv_batch() == [b"3"]
    assert restarted.peer_epoch == 0  # the EPOCH record was released
    assert writer.peer_info.epoch == 2


def test_a_live_peer_is_not_taken_over(tmp_path):
    made = Region.open_file(tmp_path / "ring", create_size=16 * KIB)
    init_region(made, "ring")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "ring")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "attached\n"
        with pytest.raises(ChannelError) as caught:
            Channel(made, 0, liveness=0.3)
        assert str(caught.value) == (
            f"channel 'ring' ({tmp_path / 'ring'}): peer 0 is in use by "
            "another process (epoch 1, heartbeat moving); stop it, or take "
            "it over")
        holder.kill()
        holder.wait()
        # Dead now: after the liveness time without a beat, attach.
        start = time.monotonic()
        chan = Channel(made, 0, liveness=0.3)
        assert time.monotonic() - start >= 0.3
        assert chan.epoch == 2
        chan.close()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        made.close()


HOLDER = """
import sys, time
from acrn_ivshmem import channel
chan = channel.open_file(sys.argv[1], 0, heartbeat=0.01)
print("attached", flush=True)
time.sleep(60)
"""


def test_liveness_follows_the_heartbeat():
    made = region()
    watcher = Channel(made, 0, heartbeat=0, liveness=0.2)
    beating = Channel(made, 1, heartbeat=0.02)
    time.sleep(0.3)
    assert watcher.peer_info.alive
    beating._stop.set()  # as if the process hung: no more beats
    beating._beater.join()
    time.sleep(0.05)
    assert watcher.peer_info.alive  # the last beat is still recent
    time.sleep(0.25)
    assert watcher.peer_info == PeerInfo(1, "attached", 1, False)
    beating.heartbeat()
    assert watcher.peer_info.alive


# ---------------------------------------------------------------------------
# Corruption


@pytest.mark.parametrize("offset, value, message", [
    (0x200, 9, "head went from 16 to 9 (tail 0): it only grows, in steps "
     "of 8, up to tail + 30720"),
    (0x200, 8, "head went from 16 to 8 (tail 0): it only grows, in steps "
     "of 8, up to tail + 30720"),
    (0x200, 30728, "head went from 16 to 30728 (tail 0): it only grows, in "
     "steps of 8, up to tail + 30720"),
])
def test_a_bad_head_is_refused(offset, value, message):
    made = region()
    writer, reader = pair(made)
    set_word(made, offset, value)
    with pytest.raises(CorruptRegion) as caught:
        reader.recv_batch(timeout=0)
    assert str(caught.value) == (
        f"channel 'shm_region_0' (buffer) ring 0: {message}")
    # Broken for good, even if the counter is put back.
    set_word(made, offset, 16)
    with pytest.raises(CorruptRegion) as again:
        reader.recv_batch(timeout=0)
    assert str(again.value) == str(caught.value)
    with pytest.raises(CorruptRegion):
        reader.send(b"x")


def receive(reader: Channel, way: str) -> list[bytes]:
    """What one receive call of ``way`` returns, as a list of messages
    (without waiting)."""
    if way == "recv_batch":
        return reader.recv_batch(timeout=0)
    buffer = bytearray(2 * reader.max_received)
    if way == "recv_into":
        try:
            return [bytes(buffer[:reader.recv_into(buffer, timeout=0)])]
        except ChannelTimeout:
            return []
    ends = list(accumulate(reader.recv_batch_into(buffer, timeout=0),
                           initial=0))
    return [bytes(buffer[start:end]) for start, end in zip(ends, ends[1:])]


WAYS = ["recv_batch", "recv_into", "recv_batch_into"]


@pytest.mark.parametrize("record, message", [
    (struct.pack("<II", 4, 7), "record at offset 0x10 has kind 7 (1 to 4 "
     "expected)"),
    (struct.pack("<II", 0, 0), "record at offset 0x10 has kind 0 (1 to 4 "
     "expected)"),
    (struct.pack("<II", 9, 1), "record at offset 0x10 of kind 1 needs 24 "
     "bytes; 16 are published before the end of the ring"),
    (struct.pack("<II", 15353, 1), "record at offset 0x10 holds 15353 "
     "bytes; this ring carries at most 15352"),
    (struct.pack("<II", 4, 2), "wrap record at offset 0x10 with length 4 "
     "(a wrap has length 0 and never starts the ring)"),
    (struct.pack("<II", 0, 2), "wrap record at offset 0x10 skips 30704 "
     "bytes; only 16 are published"),
    (struct.pack("<II", 4, 3), "epoch record at offset 0x10 has length 4, "
     "not 8"),
    (struct.pack("<II", 8, 4) + struct.pack("<I", 3),
     "batch record at offset 0x10 of 8 bytes counts 3 messages"),
    (struct.pack("<II", 8, 4) + struct.pack("<I", 0),
     "batch record at offset 0x10 of 8 bytes counts 0 messages"),
    (struct.pack("<II", 8, 4) + struct.pack("<II", 1, 5),
     "batch record at offset 0x10: its 1 lengths add up to 5, not the 0 "
     "bytes it holds"),
])
@pytest.mark.parametrize("way", WAYS)
def test_a_bad_record_is_refused(record, message, way):
    made = region()
    writer, reader = pair(made)
    made.view[0x1010:0x1010 + len(record)] = record
    set_word(made, 0x200, 32)
    with pytest.raises(CorruptRegion) as caught:
        receive(reader, way)
    assert str(caught.value) == (
        f"channel 'shm_region_0' (buffer) ring 0: {message}")


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("bad, at, patch, message", [
    ([b"bad"], 0x1024, 9, "record at offset 0x20 has kind 9 (1 to 4 "
     "expected)"),
    ([b"b1", b"b2"], 0x102C, 3, "batch record at offset 0x20: its 2 "
     "lengths add up to 5, not the 4 bytes it holds"),
])
def test_good_messages_before_a_bad_record_are_returned_first(
        bad, at, patch, message, way):
    made = region()
    writer, reader = pair(made)
    writer.send(b"good")
    writer.send_batch(bad)
    made.view[at:at + 4] = struct.pack("<I", patch)
    assert receive(reader, way) == [b"good"]
    with pytest.raises(CorruptRegion) as caught:
        receive(reader, way)
    assert str(caught.value) == (
        f"channel 'shm_region_0' (buffer) ring 0: {message}")
    assert word(made, 0x280) == 32  # the good one released


@pytest.mark.parametrize("head, tail, message", [
    (8, 16, "head 8 and tail 16 are not multiples of 8 with tail <= head "
     "<= tail + 30720"),
    (30728, 0, "head 30728 and tail 0 are not multiples of 8 with tail <= "
     "head <= tail + 30720"),
    (4, 0, "head 4 and tail 0 are not multiples of 8 with tail <= head <= "
     "tail + 30720"),
])
def test_bad_counters_are_refused_at_open(head, tail, message):
    made = region()
    set_word(made, 0x300, head)
    set_word(made, 0x380, tail)
    with pytest.raises(CorruptRegion) as caught:
        Channel(made, 0, heartbeat=0)
    assert str(caught.value) == (
        f"channel 'shm_region_0' (buffer) ring 1: {message}")
    assert word(made, 0x100) == 0  # not attached


def test_a_broken_tail_at_open_leaves_the_slot_detached():
    made = region(4608)
    set_word(made, 0x200, 256)  # ring 0 full: no room for the EPOCH record

    class Words:
        """The tail jumps beyond the head after the writer's first
        load."""

        def __init__(self, words):
            self.words, self.loads = words, 0

        def __getitem__(self, index):
            if index == 0x280 // 8:
                self.loads += 1
                if self.loads > 1:
                    return 264
            return self.words[index]

        def __setitem__(self, index, value):
            self.words[index] = value
    made.words = Words(made.words)
    with pytest.raises(CorruptRegion) as caught:
        Channel(made, 0, heartbeat=0)
    assert str(caught.value) == (
        "channel 'shm_region_0' (buffer) ring 0: tail went from 0 to 264 "
        "(head 256): it only grows, in steps of 8, up to head")
    assert word(made, 0x100) == 1 << 8 | 2  # epoch 1, detached again


@pytest.mark.parametrize("ring", [0, 1])
def test_bad_counters_in_a_file_leave_nothing_mapped(ring, tmp_path):
    # The file is unmapped on the way out: no view of it may be left
    # (mmap.close would raise BufferError over the CorruptRegion).
    path = tmp_path / "ring"
    with Region.open_file(path, create_size=16 * KIB) as made:
        init_region(made, "ring")
        set_word(made, 0x200 + 0x100 * ring, 12)
    with pytest.raises(CorruptRegion) as caught:
        channel.open_file(path, 0)
    assert str(caught.value) == (
        f"channel 'ring' ({path}) ring {ring}: head 12 and tail 0 are not "
        "multiples of 8 with tail <= head <= tail + 6144")


def test_a_tail_beyond_head_is_refused_by_the_writer():
    made = region(4608)
    writer, reader = pair(made)
    writer.send_batch([b"x" * 100] * 2, timeout=0)
    set_word(made, 0x280, 248)
    with pytest.raises(CorruptRegion) as caught:
        writer.send(b"y" * 100, timeout=0)
    assert str(caught.value) == (
        "channel 'shm_region_0' (buffer) ring 0: tail went from 0 to 248 "
        "(head 240): it only grows, in steps of 8, up to head")


# ---------------------------------------------------------------------------
# Regions and packaging


def test_open_file_errors(tmp_path):
    with pytest.raises(ChannelError) as caught:
        Region.open_file(tmp_path / "missing")
    assert str(caught.value) == (f"{tmp_path / 'missing'}: cannot open: "
                                 "No such file or directory")
    (tmp_path / "empty").touch()
    with pytest.raises(ChannelError) as caught:
        Region.open_file(tmp_path / "empty")
    assert str(caught.value) == f"{tmp_path / 'empty'}: the file is empty"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ChannelError) as caught:
        Region.open_file(tmp_path / "fifo")
    assert str(caught.value) == f"{tmp_path / 'fifo'}: not a regular file"
    os.symlink(tmp_path / "empty", tmp_path / "link")
    with pytest.raises(ChannelError) as caught:
        Region.open_file(tmp_path / "link")
    assert str(caught.value) == (f"{tmp_path / 'link'}: cannot open: Too "
                                 "many levels of symbolic links")
    made = Region.open_file(tmp_path / "new", create_size=16 * KIB)
    assert (made.size, oct(os.stat(tmp_path / "new").st_mode & 0o777)) == (
        16 * KIB, "0o600")
    made.close()
    with pytest.raises(ChannelError) as caught:
        Region.from_buffer(b"read only")
    assert str(caught.value) == "buffer: the memory is mapped read-only"


def test_two_processes_share_a_file(tmp_path):
    path = tmp_path / "ring"
    made = Region.open_file(path, create_size=64 * KIB)
    init_region(made, "ring")
    made.close()
    echo = subprocess.Popen([sys.executable, "-c", ECHO, str(path)])
    with channel.open_file(path, 0, name="ring") as chan:
        chan.send_batch([b"one", b"two", b"three"])
        assert [chan.recv(timeout=30) for _ in range(3)] == [
            b"ENO", b"OWT", b"EERHT"]
        assert chan.peer_epoch == 1
    assert echo.wait(30) == 0


ECHO = """
import sys
from acrn_ivshmem import channel
with channel.open_file(sys.argv[1], 1) as chan:
    for _ in range(3):
        chan.send(chan.recv(timeout=30)[::-1].upper())
"""


def bar2(root: str, address: str) -> Path:
    return Path(root) / "bus" / "pci" / "devices" / address / "resource2"


def test_a_guest_finds_its_region_by_name(sysfs):  # noqa: F811
    from acrn_ivshmem import guest

    # The first guest initialises regions it picks by address.
    devices = guest.find_devices(sysfs)
    for address, name in (("00:08.0", "alpha"), ("0a.0", "beta")):
        with Region.from_device(guest.select_device(devices,
                                                    address)) as made:
            init_region(made, name)
    with channel.find_guest_region("beta", sysfs) as found:
        assert (found.where, found.size, found.header().name) == (
            "0000:00:0a.0", 1024 * KIB, "beta")
    with channel.open_guest("beta", 0, sysfs=sysfs) as chan, \
            channel.open_file(bar2(sysfs, "0000:00:0a.0"), 1) as other:
        chan.send(b"by name")
        assert other.recv(timeout=5) == b"by name"
        assert chan.where == "channel 'beta' (0000:00:0a.0)"
    with pytest.raises(ChannelError) as caught:
        channel.find_guest_region("gamma", sysfs)
    assert str(caught.value) == (
        "no ivshmem device holds channel 'gamma'; devices: 0000:00:08.0 "
        "('alpha'), 0000:00:09.0 (no channel), 0000:00:0a.0 ('beta'), "
        "0000:01:00.0 (no channel)")
    with Region.open_file(bar2(sysfs, "0000:01:00.0")) as made:
        init_region(made, "alpha")
    with pytest.raises(ChannelError) as caught:
        channel.open_guest("alpha", 0, sysfs=sysfs)
    assert str(caught.value).startswith(
        "more than one ivshmem device holds channel 'alpha'; devices: ")
    with pytest.raises(ChannelError) as caught:
        channel.find_guest_region("a\nb", sysfs)
    assert str(caught.value) == (
        r"region name 'a\x0ab' has a control character (U+000A)")


def test_the_runtime_side_needs_only_the_standard_library(tmp_path):
    # The files a guest gets: the package's __init__, errors, guest and
    # channel/, run by a Python that sees no site-packages at all.
    package = Path(channel.__file__).parent.parent
    copy = tmp_path / "acrn_ivshmem"
    (copy / "channel").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "guest.py"):
        shutil.copy(package / name, copy / name)
    for source in (package / "channel").iterdir():
        if source.is_file():
            shutil.copy(source, copy / "channel" / source.name)
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", STDLIB_ONLY, str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "[b'hello', b'world']\n"
        "acrn_ivshmem acrn_ivshmem.channel acrn_ivshmem.channel.channel "
        "acrn_ivshmem.channel.doorbell acrn_ivshmem.channel.errors "
        "acrn_ivshmem.channel.guest_doorbell "
        "acrn_ivshmem.channel.layout acrn_ivshmem.channel.peers "
        "acrn_ivshmem.channel.region acrn_ivshmem.channel.ring "
        "acrn_ivshmem.channel.status acrn_ivshmem.channel.vfio "
        "acrn_ivshmem.errors\n"
        "third-party: none\n")


STDLIB_ONLY = """
import sys
sys.path.insert(0, sys.argv[1])
from acrn_ivshmem import channel
region = channel.Region.from_buffer(bytearray(16384))
channel.init_region(region, "guest")
a = channel.Channel(region, 0, heartbeat=0)
b = channel.Channel(region, 1, heartbeat=0)
a.send_batch([b"hello", b"world"])
print(b.recv_batch())
print(" ".join(sorted(m for m in sys.modules if m.startswith("acrn"))))
stdlib = sys.stdlib_module_names
third = sorted({m.split(".")[0] for m in sys.modules} - set(stdlib)
               - {"acrn_ivshmem", "__main__"}
               - set(sys.builtin_module_names))
print("third-party:", " ".join(third) or "none")
"""


def test_only_x86_64(monkeypatch):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(ChannelError) as caught:
        Channel(region(), 0)
    assert str(caught.value) == (
        "the Python channel needs an x86-64 CPU (this is 'aarch64'): it "
        "relies on its total store order; use the C header "
        "(ivshmem_channel.h) here")


def test_errors_are_acrn_shm_errors():
    assert issubclass(ChannelError, AcrnShmError)
    assert issubclass(CorruptRegion, ChannelError)
    assert issubclass(ChannelTimeout, TimeoutError)


def test_c_header_is_shipped(tmp_path):
    text = channel.c_header()
    assert text.startswith("/*\n * ivshmem_channel.h - acrn-shm message "
                           "channel, layout 1.0")
    assert channel.write_c_header(tmp_path) == str(
        tmp_path / "ivshmem_channel.h")
    assert (tmp_path / "ivshmem_channel.h").read_text() == text
    with pytest.raises(ChannelError) as caught:
        channel.write_c_header(tmp_path / "missing")
    assert str(caught.value) == (
        f"{tmp_path / 'missing' / 'ivshmem_channel.h'}: cannot write: No "
        "such file or directory")
