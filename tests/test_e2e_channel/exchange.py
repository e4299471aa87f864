"""Inside a test guest (as /opt/guest.py): one side of the exchange.

Guest A (``ivrole=a``, peer 0) opens the channel named ``ivname`` by
name, sends ``ivcount`` messages of random sizes (seeded by ``ivseed``),
each a sequence number, the CRC-32 of its payload and the payload, and
checks each answer. Guest B (``ivrole=b``, peer 1) checks every message
(order, checksum) and answers it through the other ring: the same
sequence number, the payload reversed and its CRC-32. ``ivdoorbell`` is
open_guest's doorbell mode. A keeps at most :data:`WINDOW_BYTES` bytes
and :data:`WINDOW` messages unanswered, so that neither ring can fill
while its reader is blocked sending.

Prints ``IVC`` lines; exits 1 with a ``fail`` line at the first wrong
message. The host test imports :func:`messages` to know the byte count.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import time
import zlib
from collections import deque

HEAD = struct.Struct("<II")  # sequence number, CRC-32 of the payload
WINDOW = 256
WINDOW_BYTES = 256 * 1024
LOG2_MAX = 14  # payloads of 0 to 16383 bytes, log-uniform
WAIT = 60.0


def messages(seed: int, count: int):
    """The messages A sends, in order."""
    rng = random.Random(seed)
    for sequence in range(count):
        payload = rng.randbytes(int(2 ** rng.uniform(0, LOG2_MAX)) - 1)
        yield HEAD.pack(sequence, zlib.crc32(payload)) + payload


def say(*words) -> None:
    print("IVC", *words, flush=True)


def fail(text: str) -> None:
    say("fail", text)
    raise SystemExit(1)


def payload_of(data: bytes, sequence: int, what: str) -> bytes:
    """The payload of ``data`` after checking its head."""
    if len(data) < HEAD.size:
        fail(f"{what} {sequence}: {len(data)} bytes")
    number, crc = HEAD.unpack_from(data)
    payload = data[HEAD.size:]
    if number != sequence:
        fail(f"{what} {sequence}: sequence number {number}")
    if zlib.crc32(payload) != crc:
        fail(f"{what} {sequence}: bad checksum")
    return payload


def side_a(chan, seed: int, count: int) -> None:
    unanswered: deque[bytes] = deque()
    in_flight = sent_bytes = answered = 0
    source = messages(seed, count)
    pending = next(source, None)
    while answered < count:
        batch = []
        while pending is not None and len(unanswered) < WINDOW and (
                not unanswered or in_flight + len(pending) <= WINDOW_BYTES):
            batch.append(pending)
            unanswered.append(pending)
            in_flight += len(pending)
            sent_bytes += len(pending)
            pending = next(source, None)
        if batch and chan.send_batch(batch, timeout=WAIT) != len(batch):
            fail(f"ring 0 full for {WAIT} s")
        replies = chan.recv_batch(WINDOW, timeout=WAIT)
        if not replies:
            fail(f"no answer in {WAIT} s after {answered}")
        for reply in replies:
            if not unanswered:
                fail(f"answer {answered}: not asked for")
            asked = unanswered.popleft()
            in_flight -= len(asked)
            if payload_of(reply, answered, "answer") != (
                    asked[HEAD.size:][::-1]):
                fail(f"answer {answered}: not the payload reversed")
            answered += 1
    say(f"sent {count} messages ({sent_bytes} bytes), {answered} answers "
        "checked")


def side_b(chan, count: int) -> None:
    received = received_bytes = 0
    while received < count:
        batch = chan.recv_batch(WINDOW, timeout=WAIT)
        if not batch:
            fail(f"no message in {WAIT} s after {received}")
        replies = []
        for data in batch:
            backwards = payload_of(data, received, "message")[::-1]
            replies.append(HEAD.pack(received, zlib.crc32(backwards))
                           + backwards)
            received += 1
            received_bytes += len(data)
        if chan.send_batch(replies, timeout=WAIT) != len(replies):
            fail(f"ring 1 full for {WAIT} s")
    say(f"received {received} messages ({received_bytes} bytes), all "
        "checked and answered")


def main() -> None:
    from acrn_ivshmem import channel

    role, name = os.environ["ivrole"], os.environ["ivname"]
    count = int(os.environ["ivcount"])
    peer = "ab".index(role)
    chan = channel.open_guest(name, peer,
                              doorbell=os.environ.get("ivdoorbell", "auto"))
    bell = chan.doorbell
    say(f"opened {name!r} as peer {peer}, "
        + (f"doorbell id {bell.id}" if bell else "polling"))
    started = time.monotonic()
    with chan:
        if peer == 0:
            side_a(chan, int(os.environ["ivseed"]), count)
        else:
            side_b(chan, count)
    say(f"seconds {time.monotonic() - started:.2f}")
    if bell:
        say(f"woken by the doorbell {bell.interrupts} times")


if __name__ == "__main__":
    sys.exit(main())
