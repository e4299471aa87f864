"""Inside a bench guest (as /opt/guest.py): one side of
bench/channel_guest_bench.py's measurements.

Guest A (``ivrole=a``, peer 0) and guest B (``ivrole=b``, peer 1) run
the same phases in the same order on the channel named ``ivname``; each
phase consumes exactly what the other side's phase produces, so the two
need no other synchronisation. Phases, with the C ones by
``/opt/channel_bench`` (acrn_ivshmem/channel/channel_bench.c, static)
on the BAR2 ``resource2`` file:

1. memcpy of 64 KiB blocks in C and in Python (A only): the anchor;
2. C: 64-byte messages A to B, then 64 KiB messages, then a 64-byte
   ping-pong (polling);
3. Python: the same (64-byte messages in batches), polling;
4. Python: the ping-pong woken by the doorbell (needs the guest
   doorbell: ivshmem-doorbell, vfio-pci, an IOMMU).

Each result is a line ``IVB NAME VALUE...`` on stdout (seconds, or
nanoseconds for the ping-pong's median and 99th percentile).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

SMALL, BIG = 64, 65536
C_SMALL, C_BIG, C_PINGS = 2_000_000, 4096, 2000
PY_SMALL, PY_BIG, PY_PINGS = 200_000, 2048, 1000
BATCH = 256
WARM_UP = 50
COPY_BYTES = 1 << 30
WAIT = 120.0
C_BENCH = "/opt/channel_bench"


def say(*words) -> None:
    print("IVB", *words, flush=True)


def c_run(*argv) -> list[str]:
    done = subprocess.run([C_BENCH, *map(str, argv)], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        say("fail", " ".join(map(str, argv)), done.stderr.strip())
        raise SystemExit(1)
    return done.stdout.split()


def python_memcpy() -> float:
    """Seconds to copy :data:`COPY_BYTES` in 64 KiB blocks round a
    2 MiB buffer (a slice assignment is one memcpy)."""
    source = bytes(BIG)
    target = bytearray(2 << 20)
    view = memoryview(target)
    started = time.perf_counter()
    at = 0
    for _ in range(COPY_BYTES // BIG):
        if at + BIG > len(target):
            at = 0
        view[at:at + BIG] = source
        at += BIG
    return time.perf_counter() - started


def percentiles(trips: list[float]) -> tuple[int, int]:
    trips.sort()
    return (round(trips[len(trips) // 2] * 1e9),
            round(trips[len(trips) * 99 // 100] * 1e9))


def stream_send(chan, size: int, count: int, batch: int) -> None:
    messages = [bytes(size)] * batch
    sent = 0
    while sent < count:
        now = messages[:min(batch, count - sent)]
        if chan.send_batch(now, timeout=WAIT) != len(now):
            say("fail", f"ring full for {WAIT} s")
            raise SystemExit(1)
        sent += len(now)


def stream_recv(chan, size: int, count: int) -> float:
    """Seconds from the first message to the last."""
    got = 0
    started = None
    while got < count:
        found = chan.recv_batch(min(1024, count - got), timeout=WAIT)
        if not found:
            say("fail", f"no message in {WAIT} s after {got}")
            raise SystemExit(1)
        if started is None:
            started = time.perf_counter()
        for message in found:
            if len(message) != size:
                say("fail", f"a message of {len(message)} bytes")
                raise SystemExit(1)
        got += len(found)
    return time.perf_counter() - started


def ping(chan, count: int, measure: bool) -> list[float]:
    trips = []
    message = bytes(SMALL)
    for number in range(WARM_UP + count):
        started = time.perf_counter()
        if measure:
            chan.send(message, timeout=WAIT)
            chan.recv(timeout=WAIT)
        else:
            chan.send(chan.recv(timeout=WAIT), timeout=WAIT)
        if number >= WARM_UP:
            trips.append(time.perf_counter() - started)
    return trips


def main() -> None:
    from acrn_ivshmem import channel

    role, name = os.environ["ivrole"], os.environ["ivname"]
    peer = "ab".index(role)
    device = channel.find_guest_device(name)
    bar2 = os.path.join(device.path, "resource2")
    if peer == 0:
        say("memcpy-c", c_run("memcpy", BIG, COPY_BYTES)[0])
        say("memcpy-python", f"{python_memcpy():.6f}")
        c_run("send", bar2, SMALL, C_SMALL, 64)
        c_run("send", bar2, BIG, C_BIG, 1)
        say("ping-c-polling", *c_run("ping", bar2, C_PINGS, 0))
    else:
        say("c-small", c_run("recv", bar2, SMALL, C_SMALL)[0])
        say("c-big", c_run("recv", bar2, BIG, C_BIG)[0])
        c_run("ping", bar2, C_PINGS, 1)
    with channel.open_guest(name, peer, doorbell="off") as chan:
        if peer == 0:
            stream_send(chan, SMALL, PY_SMALL, BATCH)
            stream_send(chan, BIG, PY_BIG, 8)
            say("ping-python-polling",
                *percentiles(ping(chan, PY_PINGS, True)))
        else:
            say("python-small", f"{stream_recv(chan, SMALL, PY_SMALL):.6f}")
            say("python-big", f"{stream_recv(chan, BIG, PY_BIG):.6f}")
            ping(chan, PY_PINGS, False)
    with channel.open_guest(name, peer, doorbell="on") as chan:
        trips = ping(chan, PY_PINGS, peer == 0)
        if peer == 0:
            say("ping-python-doorbell", *percentiles(trips))
        say("interrupts", chan.doorbell.interrupts)


if __name__ == "__main__":
    sys.exit(main())
