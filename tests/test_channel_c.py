"""The C implementation (ivshmem_channel.h) against the Python one.

The programs in ``tests/test_channel_c/`` are compiled here by gcc and
clang (a test skips, naming the compiler, when one is missing; with
``ACRN_SHM_REQUIRE_TOOLS=1``, as in CI, it fails instead). They share
regions with the Python library through files: both write the same
bytes, exchange messages both ways, read corrupted regions alike (the
reader built with AddressSanitizer and UBSan), and never see a torn
counter.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acrn_ivshmem import channel
from acrn_ivshmem.channel import (
    Channel, ChannelError, CorruptRegion, Region, init_region,
)

DATA = Path(__file__).parent / "test_channel_c"
HEADER_DIR = Path(channel.__file__).parent
REQUIRE_TOOLS = bool(os.environ.get("ACRN_SHM_REQUIRE_TOOLS"))
STRICT = ["-Wall", "-Wextra", "-Werror", "-Wpedantic", "-Wshadow",
          "-Wconversion", "-Wsign-conversion", "-Wcast-qual",
          "-Wstrict-prototypes", "-O2"]
KIB = 1024
#: (compiler, IVCH_ORDERING, -std): the three ways the header orders
#: memory, each with both compilers.
BUILDS = [(cc, ordering, "c11" if ordering == 2 else "c99")
          for cc in ("gcc", "clang") for ordering in (1, 2, 3)]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if REQUIRE_TOOLS:
            pytest.fail(f"{tool} is not installed (ACRN_SHM_REQUIRE_TOOLS)")
        pytest.skip(f"{tool} is not installed")
    return path


def compile_c(cc: str, source: str, output: Path, *flags: str) -> Path:
    """Build ``tests/test_channel_c/SOURCE`` with the shipped header;
    any diagnostic fails the test."""
    done = subprocess.run(
        [need(cc), *flags, f"-I{HEADER_DIR}", str(DATA / source), "-o",
         str(output)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    return output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``built(cc, program, ordering=1)`` -> path of the binary."""
    folder = tmp_path_factory.mktemp("c")
    cache = {}

    def build(cc: str, program: str, ordering: int = 1) -> Path:
        key = (cc, program, ordering)
        if key not in cache:
            std = "c11" if ordering == 2 else "c99"
            cache[key] = compile_c(
                cc, f"{program}.c", folder / f"{program}-{cc}-{ordering}",
                f"-std={std}", f"-DIVCH_ORDERING={ordering}", "-Wall",
                "-Wextra", "-Werror", "-O2")
        return cache[key]
    return build


def region_file(path: Path, size: int = 64 * KIB) -> Path:
    with open(path, "wb") as file:
        file.truncate(size)
    return path


# ---------------------------------------------------------------------------
# Building


@pytest.mark.parametrize("cc, ordering, std", BUILDS)
def test_the_header_compiles_clean(cc, ordering, std, tmp_path):
    compile_c(cc, "all_calls.c", tmp_path / "all.o", "-c", f"-std={std}",
              f"-DIVCH_ORDERING={ordering}", *STRICT)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("level", ["-O0", "-O2", "-O3", "-Os"])
def test_freestanding_it_needs_only_memcpy(cc, level, tmp_path):
    # An RTOS guest (Zephyr) has no libc to speak of: the header may
    # call memcpy and nothing else, at any optimisation level.
    need("nm")
    obj = compile_c(cc, "all_calls.c", tmp_path / "all.o", "-c",
                    "-std=c99", "-ffreestanding", level, "-Wall", "-Wextra",
                    "-Werror")
    done = subprocess.run(["nm", "-u", str(obj)], capture_output=True,
                          text=True, check=True)
    assert [line.split()[-1] for line in done.stdout.splitlines()] == (
        ["memcpy"])


def test_an_unknown_ordering_is_refused(tmp_path):
    done = subprocess.run(
        [need("gcc"), "-std=c99", "-DIVCH_ORDERING=4", f"-I{HEADER_DIR}",
         "-c", str(DATA / "all_calls.c"), "-o", str(tmp_path / "x.o")],
        capture_output=True, text=True)
    assert done.returncode != 0
    assert ('#error "ivshmem_channel.h: IVCH_ORDERING must be 1, 2 or 3"'
            in done.stderr)


# ---------------------------------------------------------------------------
# Same bytes


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_and_python_write_the_same_bytes(cc, built, tmp_path):
    peer = built(cc, "peer")
    c_file = region_file(tmp_path / "c")
    subprocess.run([peer, "init", c_file, "shm_region_0"], check=True)
    python = Region.from_buffer(bytearray(64 * KIB))
    init_region(python, "shm_region_0")
    assert c_file.read_bytes() == bytes(python.view)
    # Peer 1 of each sends the same messages, one at a time.
    messages = ["a", "bc" * 300, "x" * 15352, "end"]
    subprocess.run([peer, "send", c_file, "1", *messages], check=True)
    with Channel(python, 1, heartbeat=0) as chan:
        for message in messages:
            chan.send(message.encode())
    assert c_file.read_bytes() == bytes(python.view)


def test_reserve_and_commit_send_with_no_copy(built, tmp_path):
    """ivch_reserve gives room in the ring, ivch_commit makes what was
    written there a record; a second reservation, a write or a longer
    commit in between is refused (peer.c rules checks each code)."""
    peer = built("gcc", "peer")
    path = region_file(tmp_path / "ring")
    subprocess.run([peer, "init", path, "ring"], check=True)
    done = subprocess.run([peer, "rules", path, "0"], capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    with channel.open_file(path, 1, heartbeat=0) as chan:
        assert chan.recv_batch(timeout=0) == [b"abc"]
        assert chan.recv_batch(timeout=0) == []


# ---------------------------------------------------------------------------
# Both ways


def generated(index: int) -> bytes:
    """What peer.c's gen(index) sends."""
    length = 1 + index * 7919 % 3000
    return b"G" + bytes((index + k) & 0xFF for k in range(length))


def exchange(path: Path, peer: Path, count: int, seed: int) -> None:
    """Python (peer 0) and peer.c (peer 1) on ``path``: Python sends
    ``count`` messages of random sizes (single and batched) while C
    echoes them and sends ``count`` of its own, all at once."""
    rng = random.Random(seed)
    outgoing = [rng.randbytes(rng.choice((0, 1, 7, 64, 1000, 4095, 4096,
                                          15351)))
                for _ in range(count)]
    process = subprocess.Popen([peer, "echo", path, "1", str(count),
                                str(count)])
    try:
        echoes: list[bytes] = []
        mine: list[bytes] = []
        with channel.open_file(path, 0) as chan:
            sent = 0
            deadline = time.monotonic() + 120
            while len(echoes) < count or len(mine) < count:
                chunk = outgoing[sent:sent + rng.randint(1, 20)]
                if chunk:
                    sent += chan.send_batch(chunk, timeout=0)
                for message in chan.recv_batch(timeout=0.005):
                    (echoes if message[:1] == b"E" else mine).append(
                        message)
                assert time.monotonic() < deadline, (len(echoes),
                                                     len(mine))
            assert chan.peer_epoch == 1
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()
    assert echoes == [b"E" + message[::-1] for message in outgoing]
    assert mine == [generated(index) for index in range(count)]


@pytest.mark.parametrize("cc, ordering, std", BUILDS)
def test_c_and_python_exchange_messages_both_ways(cc, ordering, std, built,
                                                  tmp_path):
    peer = built(cc, "peer", ordering)
    path = region_file(tmp_path / "ring")
    subprocess.run([peer, "init", path, "ring"], check=True)
    exchange(path, peer, 400, seed=ordering)


def test_c_reads_a_region_python_initialised(built, tmp_path):
    peer = built("gcc", "peer")
    path = region_file(tmp_path / "ring")
    with Region.open_file(path) as made:
        init_region(made, "ring")
    exchange(path, peer, 2000, seed=7)


# ---------------------------------------------------------------------------
# Corrupted regions


def varied_region() -> bytes:
    """8 KiB with every record kind in ring 0, part of it read."""
    made = Region.from_buffer(bytearray(8 * KIB))
    init_region(made, "diff")
    rng = random.Random(3)
    writer = Channel(made, 0, heartbeat=0)
    reader = Channel(made, 1, heartbeat=0)
    for turn in range(40):
        writer.send_batch([rng.randbytes(rng.randint(0, 200))
                           for _ in range(rng.randint(1, 4))], timeout=0)
        if turn == 30:  # a restarted writer: an EPOCH record
            writer = Channel(made, 0, heartbeat=0, takeover=True)
        if turn < 36:
            reader.recv_batch(rng.randint(1, 6), timeout=0)
    return bytes(made.view)


def corrupted(rng: random.Random, base: bytes) -> bytes:
    """``base`` with a few random bytes or words changed, or cut short,
    or nothing like a region at all."""
    choice = rng.random()
    if choice < 0.05:
        return rng.randbytes(rng.choice((0, 100, 4096, 4608, 8192)))
    data = bytearray(base)
    if choice < 0.1:
        del data[rng.randrange(len(data)):]
    for _ in range(rng.randint(1, 4)):
        area = rng.random()
        if area < 0.3:
            at = rng.randrange(0x100)
        elif area < 0.55:
            at = rng.randrange(0x100, 0x400) & ~7
        else:
            at = rng.randrange(0x1000, len(base)) & ~3
        value = rng.choice((rng.randbytes(1), rng.randbytes(4),
                            struct.pack("<Q", rng.getrandbits(64)),
                            struct.pack("<Q", rng.randrange(0, 4096, 8))))
        data[at:at + len(value)] = value
    if rng.random() < 0.2 and len(data) >= 0x100:  # keep the CRC right
        import zlib
        data[0xFC:0x100] = struct.pack("<I", zlib.crc32(bytes(data[:0xFC])))
    return bytes(data)


def python_reads(data: bytes) -> list[str]:
    """What the Python library reads from ``data``, as reader.c prints
    it."""
    made = Region.from_buffer(bytearray(data))
    try:
        chan = Channel(made, 1, heartbeat=0, takeover=True)
    except ChannelError as exc:
        return [f"open {code(exc)}"]
    lines = []
    try:
        while True:
            batch = chan.recv_batch(1 << 20, timeout=0)
            if not batch:
                return [*lines, "end 1"]
            lines += [f"msg {chan.peer_epoch} {message.hex()}"
                      for message in batch]
    except CorruptRegion:
        return [*lines, "end -3"]


def code(exc: ChannelError) -> int:
    """The ivch return code for a Python error."""
    text = str(exc)
    if isinstance(exc, CorruptRegion):
        return -3
    if "no channel header" in text:
        return -1
    if "channel layout version" in text:
        return -2
    if "too small" in text or "used every epoch" in text:
        return -4
    raise AssertionError(text)


def test_corrupted_regions_read_alike_and_safely(tmp_path):
    # The C reader is built with AddressSanitizer and UBSan: a read
    # outside the region's heap block, or any undefined behaviour,
    # aborts it.
    reader = compile_c("gcc", "reader.c", tmp_path / "reader", "-std=c99",
                       "-g", "-O1", "-fsanitize=address,undefined",
                       "-fno-sanitize-recover=all", "-Wall", "-Wextra",
                       "-Werror")
    base = varied_region()
    rng = random.Random(11)
    cases = [base] + [corrupted(rng, base) for _ in range(400)]
    paths = []
    for index, data in enumerate(cases):
        path = tmp_path / f"case-{index:03d}"
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run([reader, *paths], capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    expected = [line for data in cases for line in python_reads(data)]
    assert done.stdout.splitlines() == expected
    outcomes = {line.split()[0] + " " + line.split()[1]
                for line in expected if not line.startswith("msg")}
    # The cases reach every outcome: each way to fail, and clean ends.
    assert outcomes == {"open -1", "open -2", "open -3", "open -4",
                        "end -3", "end 1"}


# ---------------------------------------------------------------------------
# Torn counters


TORN_PYTHON = """
import mmap, os, sys, time
fd = os.open(sys.argv[2], os.O_RDWR)
mapped = mmap.mmap(fd, 4096)
words = memoryview(mapped).cast("Q")
end = time.monotonic() + float(sys.argv[3])
count = torn = i = 0
if sys.argv[1] == "write":
    while time.monotonic() < end:
        for _ in range(4096):
            i = (i + 1) & 0xFFFF
            words[0x40] = i * 0x0001000100010001
        count += 4096
    print(count)
else:
    while time.monotonic() < end:
        for _ in range(4096):
            value = words[0x40]
            if value != (value & 0xFFFF) * 0x0001000100010001:
                torn += 1
        count += 4096
    print(count, torn)
"""


@pytest.mark.parametrize("writer, reader", [("python", "c"), ("c", "python")])
def test_counters_are_never_torn(writer, reader, built, tmp_path):
    # One side stores values whose four 16-bit quarters are equal into
    # ring 0's head, the other loads it: a torn store or load would show
    # unequal quarters.
    path = region_file(tmp_path / "word", 4096)
    c_program = built("gcc", "torn")

    def command(side: str, role: str) -> list:
        if side == "c":
            return [c_program, role, path, "1"]
        return [sys.executable, "-c", TORN_PYTHON, role, str(path), "1"]
    writing = subprocess.Popen(command(writer, "write"),
                               stdout=subprocess.PIPE, text=True)
    reading = subprocess.run(command(reader, "read"), capture_output=True,
                             text=True, timeout=60, check=True)
    stores = int(writing.communicate(timeout=60)[0])
    loads, torn = map(int, reading.stdout.split())
    assert stores > 10000 and loads > 10000
    assert torn == 0
