"""Measure the message channel beside memcpy, a UNIX socket pair and a
pipe, all in the same run on the same machine.

:func:`report` prints three tables: the anchors (what users reach for
instead, and the physical limit), the channel's throughput one way
between two processes (C and Python) beside its goal (issue 17,
section 4), and the round-trip latency of a 64-byte ping-pong (polling
and doorbell, C and Python, beside a UNIX socket pair). Throughput
figures are the median of three runs (one with ``quick``). Nothing
asserts a time: the goals are printed.

The channel runs over a fresh region in a temporary folder of
``/dev/shm`` for each measurement, or over one given region
(``target``: a host file, or a guest's ``resource2``), initialised
again (same name) before each. The doorbell ping-pong always runs over
an ivshmem server's memory. The C side (``channel_bench.c``, shipped
beside ``ivshmem_channel.h``) is built with the compiler given.

Used by ``acrn-shm channel bench`` and ``bench/channel_bench.py``;
``python -m acrn_ivshmem.channel.bench --worker ...`` is one Python
side of a measurement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import channel
from ..runtime.ivshmem_server import IvshmemServer

__all__ = ["BIG", "Bench", "REGION", "SMALL", "find_compiler", "main",
           "report"]

HERE = Path(__file__).resolve().parent
#: The C side, shipped in the package beside ivshmem_channel.h.
C_SOURCE = HERE / "channel_bench.c"
REGION = 2 << 20  # 2 MiB: two rings of about 1 MiB
SMALL, BIG = 64, 65536
#: Rounds of the 64 KiB figures (one with --quick).
ROUNDS = 5
GB = 1e9


def run(argv: list, **kwargs) -> str:
    try:
        done = subprocess.run([str(part) for part in argv],
                              capture_output=True, text=True, check=False,
                              timeout=600, **kwargs)
    except OSError as exc:
        raise channel.ChannelError(f"cannot run {argv[0]}: "
                                   f"{exc.strerror}") from None
    if done.returncode:
        raise channel.ChannelError(
            f"failed ({done.returncode}): {' '.join(map(str, argv))}: "
            + " ".join(done.stderr.split()))
    return done.stdout


# A worker runs this module's main() from the same package, installed or
# not (bench/channel_bench.py runs from a checkout).
_WORKER = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
           "from acrn_ivshmem.channel.bench import main; "
           "sys.exit(main(sys.argv[1:]))")


def fresh_region(folder: str, size: int = REGION) -> str:
    """A new initialised region file of ``size`` bytes in ``folder``."""
    fd, path = tempfile.mkstemp(dir=folder)
    os.close(fd)
    os.unlink(path)
    with channel.Region.open_file(path, create_size=size) as region:
        channel.init_region(region, "bench")
    return path


def reinit(path: str) -> None:
    """Initialise the channel in ``path`` again, keeping its name (or
    ``bench`` when it has none)."""
    with channel.Region.open_file(path) as region:
        try:
            name = region.header().name
        except channel.ChannelError:
            name = "bench"
        channel.init_region(region, name, force=True)


def pair(first: list, second: list) -> tuple[str, str]:
    """Run two processes at once; return both outputs."""
    procs = [subprocess.Popen([str(part) for part in argv],
                              stdout=subprocess.PIPE, text=True)
             for argv in (first, second)]
    outs = [proc.communicate(timeout=600)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise channel.ChannelError(f"failed: {first} / {second}")
    return outs[0], outs[1]


def find_compiler(cc: str | None = None) -> str | None:
    """``cc`` if given, else the first of cc, gcc, clang on PATH."""
    if cc is not None:
        return cc
    return next((name for name in ("cc", "gcc", "clang")
                 if shutil.which(name)), None)


# -- Python workers (this script run again with --worker) -----------------


#: Throughput runs poll for up to 20 ms (yielding) before they sleep:
#: a streaming side rarely waits longer.
STREAMING = {"heartbeat": 0, "backoff": None}


def worker(kind: str, path: str, size: int, count: int) -> None:
    STREAMING["backoff"] = channel.Backoff(spin=0.02)
    if kind == "send":
        with channel.open_file(path, 0, **STREAMING) as chan:
            message = b"x" * size
            # A call's own cost spread over 1 MiB of messages (the same
            # object each time: its bytes stay in this core's cache).
            batch = [message] * max(1, min(4096, (1 << 20) // size))
            sent = 0
            while sent < count:
                sent += chan.send_batch(batch[:count - sent])
    elif kind == "recv" and size >= 4096:
        # Large messages: copied straight from the ring into a buffer
        # of the sender's batch (no bytes object), many per call.
        with channel.open_file(path, 1, **STREAMING) as chan:
            most = max(1, (256 << 10) // size)
            buffer = bytearray(size * most)
            first = len(chan.recv_batch_into(buffer, most))
            received = first
            start = time.perf_counter()
            while received < count:
                received += len(chan.recv_batch_into(buffer, most))
            # The clock ran for the messages after the first batch:
            # scaled to `count`, as the caller divides by it.
            seconds = time.perf_counter() - start
            print(f"{seconds * count / max(1, count - first):.9f}")
    elif kind == "recv":
        with channel.open_file(path, 1, **STREAMING) as chan:
            # Release every 256 KiB or so, for the writer to refill.
            most = max(1, (256 << 10) // size)
            got = chan.recv_batch(most)
            start = time.perf_counter()
            received = len(got)
            while received < count:
                received += len(chan.recv_batch(most))
            print(f"{time.perf_counter() - start:.9f}")
    else:  # "ping0"/"ping1" with "poll" or a server socket as `path`
        region, mode = path.split(",", 1)
        options = {"heartbeat": 0}
        if mode == "poll":
            options["backoff"] = channel.Backoff(spin=3600)
        else:
            options["server"] = mode
        peer = int(kind[-1])
        with channel.open_file(region, peer, **options) as chan:
            while chan.peer_info.state != "attached":
                time.sleep(0.001)
            message, trips = b"p" * size, []
            for index in range(count + 1):
                start = time.perf_counter()
                if peer == 0:
                    chan.send(message)
                got = chan.recv(timeout=30)
                if peer == 1:
                    chan.send(got)
                elif index:
                    trips.append(time.perf_counter() - start)
            if peer == 0:
                print(*percentiles(trips))


def percentiles(trips: list[float]) -> tuple[float, float]:
    """Median and 99th percentile, in microseconds."""
    trips = sorted(trips)
    return (trips[len(trips) // 2] * 1e6,
            trips[len(trips) * 99 // 100] * 1e6)


# -- Python anchors ---------------------------------------------------------


def python_stream(kind: str, size: int, count: int) -> float:
    """Seconds to move ``count`` messages of ``size`` bytes one way,
    one write per message, through a socket pair or a pipe."""
    if kind == "unix":
        one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if size > 4096:
            one.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 << 20)
            two.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 << 20)
        send, reader, writer = one.send, two.fileno(), one.fileno()
    else:
        reader, writer = os.pipe()
        send = None
    child = os.fork()
    if child == 0:
        try:
            got, total = 0, size * count
            while got < total:
                got += len(os.read(reader, size))
        finally:
            os._exit(0)
    message = b"x" * size
    start = time.perf_counter()
    if send is not None:
        for _ in range(count):
            send(message)
    else:
        for _ in range(count):
            os.write(writer, message)
    os.waitpid(child, 0)
    seconds = time.perf_counter() - start
    if kind == "unix":
        one.close()
        two.close()
    else:
        os.close(reader)
        os.close(writer)
    return seconds


def python_sockping(count: int) -> tuple[float, float]:
    one, two = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = os.fork()
    if child == 0:
        try:
            for _ in range(count + 1):
                two.send(two.recv(64))
        finally:
            os._exit(0)
    trips = []
    message = b"p" * SMALL
    for index in range(count + 1):
        start = time.perf_counter()
        one.send(message)
        one.recv(64)
        if index:
            trips.append(time.perf_counter() - start)
    os.waitpid(child, 0)
    one.close()
    two.close()
    return percentiles(trips)


# -- the benchmark ----------------------------------------------------------


class Bench:
    """The measurements. ``work``: a folder for the C program; ``shm``:
    a folder in /dev/shm for fresh regions of ``size`` bytes (and the
    doorbell server's memory); ``target``: one region file to measure
    over instead (initialised again before each measurement)."""

    def __init__(self, quick: bool, cc: str, work: str, shm: str,
                 size: int = REGION, target: str | None = None):
        self.quick = quick
        self.runs = 1 if quick else 3
        self.shm = shm
        self.size = size
        self.target = target
        self.c = Path(work) / "channel_bench"
        run([cc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
             f"-I{HERE}", C_SOURCE, "-o", self.c])
        self.me = [sys.executable, "-c", _WORKER, str(HERE.parent.parent),
                   "--worker"]

    def region(self) -> str:
        """A fresh region's path (the target, initialised again)."""
        if self.target is not None:
            reinit(self.target)
            return self.target
        return fresh_region(self.shm, self.size)

    def done(self, path: str) -> None:
        """Remove a fresh region (never the target)."""
        if path != self.target:
            os.unlink(path)

    def where(self) -> str:
        """How :func:`report` names the regions."""
        if self.target is not None:
            return f"over {self.target}"
        return (f"over fresh regions of {self.size / (1 << 20):g} MiB in "
                "/dev/shm")

    def median(self, measure, runs: int | None = None) -> float:
        return statistics.median(
            measure() for _ in range(runs or self.runs))

    def count(self, size: int, full: int) -> int:
        return max(1000, full // (20 if self.quick else 1)) if size == SMALL \
            else max(2000, full // (10 if self.quick else 1))

    # anchors
    def ring_capacity(self) -> int:
        """The capacity of ring 0 of the regions measured over."""
        if self.target is None:
            return channel.layout.default_rings(self.size)[0][1]
        with channel.Region.open_file(self.target) as region:
            try:
                return region.header().rings[0][1]
            except channel.ChannelError:
                return channel.layout.default_rings(region.size)[0][1]

    def memcpy(self, span: int) -> float:
        """Bytes per second of a one-thread memcpy of 64 KiB blocks into
        a ``span``-byte buffer round (``BIG``: cache-hot)."""
        total = 4e9 if not self.quick else 1e9
        return total / self.median(lambda: float(
            run([self.c, "memcpy", BIG, total, span]).split()[0]))

    def big_rounds(self, span: int, count: int) -> list[tuple[float, ...]]:
        """Bytes per second of 64 KiB messages, round by round: (the
        handoff through ``span`` bytes, the C channel, the Python
        channel), measured back to back in each round.

        How fast the two CPUs of a virtual machine pass cache lines to
        each other can change between rounds (the host moves them), so
        each channel is compared with the handoff of its own round."""
        rounds = []
        total = 4e9 if not self.quick else 1e9
        for _ in range(ROUNDS if self.runs > 1 else 1):
            handoff = total / float(
                run([self.c, "handoff", BIG, total, span]))
            rounds.append((handoff,
                           self.c_channel(BIG, count, 1, runs=1) * BIG,
                           self.py_channel(BIG, count, runs=1) * BIG))
        return rounds

    def c_stream(self, kind: str, size: int, count: int) -> float:
        return count / self.median(lambda: float(
            run([self.c, "sock", kind, size, count])))

    def py_stream(self, kind: str, size: int, count: int) -> float:
        return count / self.median(lambda: python_stream(kind, size, count))

    # the channel
    def c_channel(self, size: int, count: int, batch: int,
                  runs: int | None = None) -> float:
        def once():
            path = self.region()
            try:
                received, _ = pair([self.c, "recv", path, size, count],
                                   [self.c, "send", path, size, count,
                                    batch])
            finally:
                self.done(path)
            return float(received)
        return count / self.median(once, runs)

    def py_channel(self, size: int, count: int,
                   runs: int | None = None) -> float:
        def once():
            path = self.region()
            try:
                received, _ = pair([*self.me, "recv", path, size, count],
                                   [*self.me, "send", path, size, count])
            finally:
                self.done(path)
            return float(received)
        return count / self.median(once, runs)

    def c_ping(self, count: int, bell: bool) -> tuple[float, float]:
        path = self.region()
        fds = [os.eventfd(0), os.eventfd(0)] if bell else []
        try:
            extra = [[fds[0], fds[1]], [fds[1], fds[0]]] if bell else [[], []]
            procs = [subprocess.Popen(
                [str(part) for part in
                 [self.c, "ping", path, count, role, *extra[role]]],
                stdout=subprocess.PIPE, text=True, pass_fds=fds)
                for role in (1, 0)]
            out = [proc.communicate(timeout=600)[0] for proc in procs][1]
        finally:
            self.done(path)
            for fd in fds:
                os.close(fd)
        median, p99 = map(float, out.split())
        return median / 1000, p99 / 1000

    def py_ping(self, count: int, bell: bool) -> tuple[float, float]:
        server = None
        if bell:
            sock = os.path.join(self.shm, "s")
            server = IvshmemServer(sock, REGION, 1, "ring", shm_dir=self.shm)
            server.start()
            thread = threading.Thread(target=server.serve_forever)
            thread.start()
            path = os.path.join(self.shm, "ring")
            with channel.Region.open_file(path) as region:
                channel.init_region(region, "bench", force=True)
        else:
            path = self.region()
        try:
            mode = f"{path},{sock}" if bell else f"{path},poll"
            _, out = pair([*self.me, "ping1", mode, SMALL, count],
                          [*self.me, "ping0", mode, SMALL, count])
        finally:
            if server is not None:
                server.close()
                thread.join(10)
                os.unlink(path)
            else:
                self.done(path)
        median, p99 = map(float, out.split())
        return median, p99


def rate(value: float) -> str:
    return f"{value / 1e6:.2f} M msg/s"


def bandwidth(value: float) -> str:
    return f"{value / GB:.2f} GB/s"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows])
              for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(width)
                               for cell, width in zip(row, widths)).rstrip())


def verdict(ok: bool, detail: str) -> str:
    return f"{'ok' if ok else 'BELOW GOAL'} ({detail})"


def main(argv: list[str] | None = None) -> int:
    """``python -m acrn_ivshmem.channel.bench [--quick] [--cc CC]``."""
    parser = argparse.ArgumentParser(
        prog="python bench/channel_bench.py",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer messages and one run per figure")
    parser.add_argument("--cc", help="C compiler (default: cc, gcc, clang)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, path, size, count = args.worker
        worker(kind, path, int(size), int(count))
        return 0
    try:
        measure(args.quick, args.cc)
    except channel.ChannelError as exc:
        print(f"channel bench: {exc}", file=sys.stderr)
        return 2
    return 0


def measure(quick: bool, cc: str | None = None, size: int = REGION,
            target: str | None = None) -> None:
    """Build the C side, measure and print :func:`report`'s tables.
    Raises :class:`~acrn_ivshmem.channel.ChannelError` when something
    cannot be measured (no C compiler, a region too small)."""
    compiler = find_compiler(cc)
    if compiler is None:
        raise channel.ChannelError("no C compiler (cc, gcc, clang) on "
                                   "PATH; give one with --cc")
    if channel.max_message((size - channel.layout.HEADER_SIZE) // 2) < BIG:
        raise channel.ChannelError(
            f"a region of {size} bytes has rings too small for "
            f"{BIG}-byte messages; give 1 MiB or more")
    with tempfile.TemporaryDirectory() as work, \
            tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        report(Bench(quick, compiler, work, shm, size, target))


def report(bench: Bench) -> None:
    n_small, n_big = bench.count(SMALL, 2_000_000), bench.count(BIG, 20_000)
    n_c_small = bench.count(SMALL, 20_000_000)
    n_ping = 2000 if bench.quick else 20000
    load = os.getloadavg()[0]
    print(f"channel bench: {os.cpu_count()} CPUs, load average {load:.1f}; "
          f"{bench.where()}; "
          f"{'one run' if bench.runs == 1 else 'median of 3 runs'} per "
          "throughput figure"
          f"{'' if bench.runs == 1 else f' (of {ROUNDS} rounds at 64 KiB)'}",
          flush=True)

    # The goal ratios use the cache-hot memcpy (the issue's "memcpy of
    # the same buffer"); the copy through a ring-sized buffer is what
    # the bytes of a message actually travel through.
    memcpy = bench.memcpy(BIG)
    capacity = bench.ring_capacity()
    memcpy_ring = bench.memcpy(capacity)
    rounds = bench.big_rounds(capacity, n_big)
    handoff, c_big, py_big = (statistics.median(column)
                              for column in zip(*rounds))
    # Each channel beside the handoff of its own round.
    c_handoff = statistics.median(c / h for h, c, _ in rounds)
    py_handoff = statistics.median(p / h for h, _, p in rounds)
    c_unix = bench.c_stream("unix", SMALL, n_c_small // 10)
    c_pipe = bench.c_stream("pipe", SMALL, n_c_small // 10)
    c_unix_big = bench.c_stream("unix", BIG, n_big) * BIG
    c_pipe_big = bench.c_stream("pipe", BIG, n_big) * BIG
    py_unix = bench.py_stream("unix", SMALL, n_small // 5)
    py_pipe = bench.py_stream("pipe", SMALL, n_small // 5)
    py_unix_big = bench.py_stream("unix", BIG, n_big) * BIG
    py_pipe_big = bench.py_stream("pipe", BIG, n_big) * BIG
    table("anchors (two processes, one write per message)",
          ["", "C", "Python"],
          [["memcpy of 64 KiB blocks, one thread, cache-hot (ratios use it)",
            bandwidth(memcpy), "-"],
           [f"memcpy of 64 KiB blocks round a {capacity >> 10} KiB buffer "
            "(the ring)", bandwidth(memcpy_ring), "-"],
           [f"64 KiB blocks handed to another process through "
            f"{capacity >> 10} KiB, no channel", bandwidth(handoff), "-"],
           ["UNIX socket pair, 64 B", rate(c_unix), rate(py_unix)],
           ["pipe, 64 B", rate(c_pipe), rate(py_pipe)],
           ["UNIX socket pair, 64 KiB", bandwidth(c_unix_big),
            bandwidth(py_unix_big)],
           ["pipe, 64 KiB", bandwidth(c_pipe_big), bandwidth(py_pipe_big)]])

    c_each = bench.c_channel(SMALL, n_c_small, 1)
    c_batch = bench.c_channel(SMALL, n_c_small, 64)
    py_small = bench.py_channel(SMALL, n_small)
    table("channel throughput, one way between two processes",
          ["", "measured", "goal", ""],
          [["C, 64 B, ivch_send (a publish each)", rate(c_each),
            ">= 10 M msg/s", verdict(c_each >= 10e6, f"{c_each / 1e6:.1f}")],
           ["C, 64 B, ivch_write + a publish per 64", rate(c_batch),
            ">= 10 M msg/s", verdict(c_batch >= 10e6,
                                     f"{c_batch / 1e6:.1f}")],
           ["C, 64 KiB", bandwidth(c_big), ">= 80% of cache-hot memcpy",
            verdict(c_big >= 0.8 * memcpy, f"{c_big / memcpy:.0%}; "
                    f"{c_big / memcpy_ring:.0%} of the ring memcpy, "
                    f"{c_handoff:.0%} of the handoff")],
           ["Python, 64 B, send_batch/recv_batch", rate(py_small),
            ">= 5x the Python socket pair",
            verdict(py_small >= 5 * py_unix, f"{py_small / py_unix:.1f}x")],
           ["Python, 64 KiB, recv_batch_into", bandwidth(py_big),
            ">= 50% of cache-hot memcpy",
            verdict(py_big >= 0.5 * memcpy, f"{py_big / memcpy:.0%}; "
                    f"{py_big / memcpy_ring:.0%} of the ring memcpy, "
                    f"{py_handoff:.0%} of the handoff")]])
    table("64 KiB, one way, round by round (each round measures the three "
          "back to back; medians above)",
          ["", "handoff, no channel", "C channel", "Python channel"],
          [[f"round {number}", *(f"{bandwidth(value)} ({value / memcpy:.0%})"
                                 for value in values)]
           for number, values in enumerate(rounds, 1)])

    rows = []
    for label, (median, p99) in (
            ("C channel, polling", bench.c_ping(n_ping, False)),
            ("C channel, doorbell (eventfd)", bench.c_ping(n_ping, True)),
            ("C UNIX socket pair", tuple(x / 1000 for x in map(float, run(
                [bench.c, "sockping", n_ping]).split()))),
            ("Python channel, polling", bench.py_ping(n_ping // 4, False)),
            ("Python channel, doorbell (ivshmem server)",
             bench.py_ping(n_ping // 4, True)),
            ("Python UNIX socket pair", python_sockping(n_ping // 4))):
        rows.append([label, f"{median:.1f} µs", f"{p99:.1f} µs"])
    table("latency, 64-byte ping-pong round trip", ["", "median", "p99"],
          rows)


if __name__ == "__main__":
    sys.exit(main())
