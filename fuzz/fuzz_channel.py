"""Atheris fuzz target for the channel's header and record parser.

An input is ``FLAGS REGION...``: the region is any bytes; ``FLAGS``
bit 0 picks the peer that opens it, bit 1 puts the magic in place and
bit 2 recomputes the header's CRC-32 (so that mutations get past those
two checks), bits 3-7 the most messages per receive. :func:`check` then
opens the channel, receives until the ring is empty or refused, and
sends a little. The property:

- only :class:`~acrn_ivshmem.channel.ChannelError` escapes, with a
  one-line message;
- receiving ends: each call returns or raises, and the calls that
  return messages are at most the published bytes / 8;
- no message is longer than the ring it came from carries.

Python cannot read outside the region (every access is a bounds-checked
slice of its memoryview); for C the same bytes go through an ASan
build in tests/test_channel_c.py. Needs no atheris for :func:`check`
and :func:`seeds`; ``tests/test_channel_fuzz.py`` uses both.

    fuzz/run --target channel --seconds 60
    python fuzz/fuzz_channel.py -max_total_time=60 CORPUS_DIR
    python fuzz/fuzz_channel.py CRASH_FILE       # reproduce one input
"""

from __future__ import annotations

import contextlib
import random
import re
import struct
import sys
import zlib
from itertools import accumulate, pairwise

_instrumented = contextlib.nullcontext()
if __name__ == "__main__":
    import atheris

    _instrumented = atheris.instrument_imports(include=["acrn_ivshmem"])
with _instrumented:
    from acrn_ivshmem.channel import (
        Channel, ChannelError, ChannelTimeout, CorruptRegion, Region,
        init_region,
    )

MAGIC = b"IVSHMCHN"
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class Violation(Exception):
    """The channel misbehaved on this input (a fuzzing finding)."""


def region_of(data: bytes) -> tuple[int, int, bytearray]:
    """(peer, most messages per receive, region bytes) of an input."""
    flags = data[0] if data else 0
    region = bytearray(data[1:])
    if flags & 2 and len(region) >= 8:
        region[:8] = MAGIC
    if flags & 4 and len(region) >= 0x100:
        region[0xFC:0x100] = struct.pack("<I", zlib.crc32(region[:0xFC]))
    return flags & 1, 1 + (flags >> 3) * 8, region


def check(data: bytes) -> list[bytes]:
    """Run one input; return the messages received. Raises
    :class:`Violation` when the property fails."""
    peer, limit, region = region_of(data)
    made = Region.from_buffer(region, "fuzz")
    try:
        chan = Channel(made, peer, heartbeat=0, takeover=True)
    except ChannelError as exc:
        _one_line(exc)
        made.close()
        return []
    got: list[bytes] = []
    calls = 0
    try:
        while True:
            calls += 1
            if calls > len(region) // 8 + 2:
                raise Violation(f"receiving did not end after {calls} "
                                "calls")
            if limit == 1:  # recv_into: the ring copied into a buffer
                batch = _recv_into(chan)
            elif limit == 9:  # recv_batch_into: back to back in one
                batch = _recv_batch_into(chan, limit)
            else:
                batch = chan.recv_batch(limit, timeout=0)
            if not batch:
                break
            for message in batch:
                if len(message) > chan.max_received:
                    raise Violation(f"a message of {len(message)} bytes "
                                    f"from a ring of {chan.max_received}")
            got += batch
        chan.send_batch([b"x", b"y" * 100], timeout=0)
    except CorruptRegion as exc:
        _one_line(exc)
    except ChannelError as exc:  # a send: ring full or message too long
        _one_line(exc)
    finally:
        chan.close()
        made.close()
    return got


def _recv_into(chan: Channel) -> list[bytes]:
    """One message through ``recv_into``, as a list ([] when none)."""
    buffer = bytearray(chan.max_received)
    try:
        size = chan.recv_into(buffer, timeout=0)
    except ChannelTimeout:
        return []
    return [bytes(buffer[:size])]


def _recv_batch_into(chan: Channel, limit: int) -> list[bytes]:
    """Up to ``limit`` messages through ``recv_batch_into`` (into room
    for two of the longest), cut apart by the lengths returned."""
    buffer = bytearray(2 * chan.max_received)
    lengths = chan.recv_batch_into(buffer, limit, timeout=0)
    if len(lengths) > limit or sum(lengths) > len(buffer):
        raise Violation(f"recv_batch_into gave lengths {lengths} for "
                        f"{limit} messages in {len(buffer)} bytes")
    ends = list(accumulate(lengths, initial=0))
    return [bytes(buffer[start:end]) for start, end in pairwise(ends)]


def _one_line(exc: ChannelError) -> None:
    text = str(exc)
    if not text or _CONTROL.search(text):
        raise Violation(f"not one line: {text!r}")


def seeds(count: int = 24) -> list[bytes]:
    """Inputs that open: regions of 8 KiB with every record kind in
    ring 0 (and ring 1), some of it read; flags vary."""
    rng = random.Random(5)
    found = []
    for index in range(count):
        made = Region.from_buffer(bytearray(8192 if index % 4 else 4608))
        init_region(made, f"seed{index}")
        writer = Channel(made, 0, heartbeat=0)
        reader = Channel(made, 1, heartbeat=0)
        largest = min(300, writer.max_message)
        for turn in range(rng.randint(1, 30)):
            writer.send_batch([rng.randbytes(rng.randint(0, largest))
                               for _ in range(rng.randint(1, 5))],
                              timeout=0)
            reader.send_batch([rng.randbytes(rng.randint(0, 40))],
                              timeout=0)
            if turn % 7 == 3:
                writer = Channel(made, 0, heartbeat=0, takeover=True)
            if rng.random() < 0.6:
                reader.recv_batch(rng.randint(1, 8), timeout=0)
        found.append(bytes([rng.randrange(256) | 6]) + bytes(made.view))
    return found


def test_one_input(data: bytes) -> None:
    check(data)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
