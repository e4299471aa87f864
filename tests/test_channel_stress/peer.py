"""One side of the channel stress test (tests/test_channel_stress.py).

    python peer.py REGION PEER COUNT SEED STATE

Attaches as peer PEER (0 or 1) to the channel in the file REGION and,
at once, sends COUNT messages numbered from 0 (this incarnation's
epoch) and checks every message of the other side. A message of writer
epoch E and number N, of random size from 1 byte to a quarter of the
ring, is :func:`message` (E, N, size): its number, epoch and a CRC-32
when it has room, and bytes that depend on all three. The reader checks
each message byte for byte against the one expected next, so a lost,
repeated, reordered or garbled message fails.

The reader keeps, in word PEER of the file STATE, the writer epoch and
the numbers it has released and is about to release (one 8-byte store
each time), and receives with ``release=False``: when it is killed and
restarted, its first message must be the one after what it released, or
after what it was about to release (killed between the release and the
store), or an already released one where the last receive returned part
of a BATCH record (room goes back a whole record at a time, so that
record comes again: docs/channel-format.md, "Peers come and go"). Word 2 is set by the test once it will kill no more; then a
peer stops when it has sent COUNT messages and received the last one of
the other side's current epoch. Prints one JSON line at the end.

Exit status: 0 done, 3 a check failed (the reason on stderr).
"""

from __future__ import annotations

import json
import mmap
import os
import random
import struct
import sys
import zlib

from acrn_ivshmem import channel

POOL = random.Random(0).randbytes(1 << 16)
_HEAD = struct.Struct("<QII")
_FINAL = 2
#: The most messages one BATCH record of these rings holds (each takes 4
#: bytes of length and 1 or more of payload in a ring of 6 KiB).
SPLIT_MAX = 1300


def message(epoch: int, number: int, size: int) -> bytes:
    """Message ``number`` of writer epoch ``epoch``, ``size`` bytes."""
    start = (number * 131 + epoch * 7919) % (len(POOL) - size)
    body = POOL[start:start + size]
    if size < _HEAD.size:
        return body
    rest = body[_HEAD.size:]
    return _HEAD.pack(number, epoch, zlib.crc32(rest)) + rest


def size(number: int, salt: int, largest: int) -> int:
    """The size of message ``number``: 1 to ``largest``, scattered."""
    return ((number + salt) * 0x9E3779B1 >> 11) % largest + 1


def pack_state(epoch: int, released: int, pending: int) -> int:
    """One word: epoch (16 bits), released + 1 and pending + 1 (24
    bits each; -1 is none)."""
    return epoch << 48 | (released + 1) << 24 | (pending + 1)


def unpack_state(word: int) -> tuple[int, int, int]:
    return word >> 48, (word >> 24 & 0xFFFFFF) - 1, (word & 0xFFFFFF) - 1


def split_record_start(first: bytes, epoch: int,
                       released: int) -> int | None:
    """The number of an already released message that ``first`` is,
    when it is one of the last :data:`SPLIT_MAX` released (a BATCH
    record split by the last receive before a restart starts there)."""
    for number in range(released, max(-1, released - SPLIT_MAX), -1):
        if first == message(epoch, number, len(first)):
            return number
    return None


def fail(text: str) -> None:
    sys.stderr.write(f"peer: {text}\n")
    sys.stderr.flush()
    os._exit(3)


def main() -> int:
    path, peer, count, seed, state_path = (
        sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
        sys.argv[5])
    fd = os.open(state_path, os.O_RDWR)
    state_map = mmap.mmap(fd, 4096)
    os.close(fd)
    state = memoryview(state_map).cast("Q")
    chan = channel.open_file(path, peer, heartbeat=0.05, liveness=0.5)
    print("attached", chan.epoch, flush=True)
    writer_epoch, released, pending = unpack_state(state[peer])
    restarted = writer_epoch > 0  # check the first message against STATE
    largest = chan.max_message // 2
    salt = seed * 1000003 + peer * 1009 + chan.epoch
    sizes = random.Random(salt)
    sent = received = verified_bytes = repeated = 0
    writer_epochs = []
    reader_epochs = {chan.peer_info.epoch}
    while True:
        offered = 0
        if sent < count:
            chunk = [message(chan.epoch, number, size(number, salt, largest))
                     for number in range(sent, min(count, sent + sizes.randint(
                         1, 64)))]
            offered = chan.send_batch(chunk, timeout=0)
            sent += offered
        batch = chan.recv_batch(sizes.randint(1, 256), timeout=0,
                                release=False)
        if batch:
            epoch = chan.peer_epoch or writer_epoch
            first = batch[0]
            if epoch != writer_epoch:
                if epoch < writer_epoch:
                    fail(f"writer epoch went from {writer_epoch} to {epoch}")
                writer_epochs.append(epoch)
                writer_epoch, released, pending = epoch, -1, -1
                expected = 0
            elif restarted and first == message(epoch, pending + 1,
                                                len(first)):
                expected = pending + 1  # killed after its release
            elif restarted and (again := split_record_start(
                    first, epoch, released)) is not None:
                # Room goes back a record at a time: the last receive
                # returned part of a BATCH record, which comes again.
                expected = again
                repeated += released + 1 - again
            else:
                expected = released + 1
            restarted = False
            for got in batch:
                if got != message(epoch, expected, len(got)):
                    fail(f"message {expected} of writer epoch {epoch} "
                         f"({len(got)} bytes) is not what was sent")
                expected += 1
                verified_bytes += len(got)
            received += len(batch)
            state[peer] = pack_state(epoch, released, expected - 1)
            chan.release()
            released = pending = expected - 1
            state[peer] = pack_state(epoch, released, pending)
        reader_epochs.add(chan.peer_info.epoch)
        if (state[_FINAL] and sent >= count and released == count - 1
                and writer_epoch == chan.peer_info.epoch):
            break
        if not batch and not offered:
            os.sched_yield()
    chan.close()
    print(json.dumps({
        "peer": peer, "epoch": chan.epoch, "sent": sent,
        "received": received, "bytes": verified_bytes,
        "repeated": repeated,
        "writer_epochs_seen": writer_epochs,
        "reader_epochs_seen": sorted(reader_epochs)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
