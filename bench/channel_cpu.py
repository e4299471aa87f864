"""CPU time of the Python channel per 64 KiB message, with no scheduler
in the way: both peers in one process, taking turns, beside the two
slice copies the same bytes take round the ring with no channel.

The two-process figures of ``bench/channel_bench.py`` depend on both
processes having a CPU each; on a shared machine they often do not.
This one measures what the calls cost: the process's CPU time over
batches of 4 messages sent with ``send_batch`` and received with
``recv_into`` (one each) or ``recv_batch_into`` (4 at once). The
interpreter's share is the difference to the bare copies.

Usage: python bench/channel_cpu.py [--batches N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acrn_ivshmem import channel  # noqa: E402
from acrn_ivshmem.channel.bench import BIG, REGION  # noqa: E402

BATCH = 4


def measure(batches: int, runs: int) -> dict[str, float]:
    """The best of ``runs`` CPU times per message, in microseconds, of
    each way to move ``batches`` batches of :data:`BATCH` messages."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        path = os.path.join(folder, "region")
        with channel.Region.open_file(path, create_size=REGION) as region:
            channel.init_region(region, "cpu")
            writer = channel.Channel(region, 0, heartbeat=0)
            reader = channel.Channel(region, 1, heartbeat=0)
            try:
                return _measure(region, writer, reader, batches, runs)
            finally:
                writer.close()
                reader.close()


def _measure(region, writer, reader, batches: int, runs: int):
    message = b"x" * BIG
    batch = [message] * BATCH
    one, many = bytearray(BIG), bytearray(BIG * BATCH)
    ring = writer.max_message * 2 + 16  # the capacity of ring 0

    def each():
        for _ in range(batches):
            writer.send_batch(batch)
            for _ in range(BATCH):
                reader.recv_into(one)

    def at_once():
        for _ in range(batches):
            writer.send_batch(batch)
            reader.recv_batch_into(many, BATCH)

    def bare():
        data = region.view[0x1000:0x1000 + ring]
        source, target = memoryview(message), memoryview(many)
        at = 0
        for _ in range(batches):
            for turn in (0, 1):  # in as the writer, out as the reader
                position = at
                for index in range(BATCH):
                    offset = position % ring
                    if offset + BIG + 8 > ring:
                        position += ring - offset
                        offset = 0
                    start = offset + 8
                    if turn:
                        target[index * BIG:(index + 1) * BIG] = \
                            data[start:start + BIG]
                    else:
                        data[start:start + BIG] = source
                    position += BIG + 8
            at = position
        data.release()

    ways = {"send_batch of 4, recv_into each": each,
            "send_batch of 4, recv_batch_into of 4": at_once,
            "the two slice copies alone, round the ring": bare}
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(runs):
        for name, way in ways.items():
            start = time.process_time()
            way()
            seconds = time.process_time() - start
            best[name] = min(best[name], seconds / batches / BATCH * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/channel_cpu.py",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10000,
                        help="batches of 4 messages per run (10000)")
    parser.add_argument("--runs", type=int, default=5,
                        help="runs of each; the best is printed (5)")
    args = parser.parse_args(argv)
    print(f"CPU time per {BIG >> 10} KiB message, both sides in one "
          f"process, best of {args.runs} runs of {args.batches} batches "
          f"of {BATCH}:")
    for name, micros in measure(args.batches, args.runs).items():
        print(f"  {name:44s} {micros:6.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
