"""Benchmark the message channel between two QEMU guests under TCG.

Boots two guests the way tests/test_e2e_channel.py does (its /init, the
host's Python and acrn_ivshmem in an initramfs, the vfio modules of
.ci/install-e2e) on ``shm_region_0`` of scenario-xmls/hybrid_rt_v3.xml
as ivshmem-doorbell through ``acrn-shm ivshmem-server``, with a q35
machine and an intel-iommu so that the guest doorbell works. In the
guests (bench/channel_guest_work.py): a memcpy of 64 KiB blocks (the
anchor), 64-byte and 64 KiB messages one way, and a 64-byte ping-pong,
in C (acrn_ivshmem/channel/channel_bench.c, built static here) and in
Python, polling, and the Python ping-pong woken by the doorbell.

Absolute figures under TCG mean little; the ratio to the memcpy inside
the same guest is the figure. Nothing here asserts a time.

Usage: python bench/channel_guest_bench.py [--cc COMPILER] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT), str(PROJECT / "tests")]

from acrn_ivshmem import channel  # noqa: E402
from e2e_guests import (  # noqa: E402
    CHANNEL_INIT, CHANNEL_PACKAGE, IOMMU_PARAMS, MISSING, Q35_IOMMU, TOOLS,
    Guests, ServerProcess, python_initramfs, qemu_args, unix_connections,
    vfio_modules, wait_until,
)

SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
REGION = "shm_region_0"
VMS = {"a": "PRE_RT_VM0", "b": "POST_STD_VM1"}
WORK = PROJECT / "bench" / "channel_guest_work.py"
SMALL, BIG = 64, 65536
GB = 1e9


def build_c(cc: str, folder: Path) -> Path:
    """channel_bench.c, static (the guest has no libc)."""
    binary = folder / "channel_bench"
    source = PROJECT / "acrn_ivshmem" / "channel"
    subprocess.run([cc, "-static", "-O2", "-std=c99", "-I", str(source),
                    str(source / "channel_bench.c"), "-o", str(binary)],
                   check=True)
    return binary


def run_guests(folder: Path, binary: Path) -> dict[str, list[str]]:
    """Boot both guests on the server's memory; return their IVB lines
    (name: values)."""
    modules, missing = vfio_modules()
    if missing:
        raise SystemExit(f"{missing}; run .ci/install-e2e")
    image = folder / "initramfs.cpio"
    image.write_bytes(python_initramfs(
        CHANNEL_INIT, CHANNEL_PACKAGE,
        {"opt/guest.py": WORK, "opt/channel_bench": binary}, modules))
    sock_dir = tempfile.mkdtemp(prefix="ivc-bench-")
    socket_path = os.path.join(sock_dir, "ivshmem.sock")
    shm_name = f"acrn-shm-bench-{os.getpid()}-{secrets.token_hex(4)}"
    shm_file = Path("/dev/shm") / shm_name
    with channel.Region.open_file(shm_file, create_size=2 << 20) as region:
        channel.init_region(region, REGION)
    guests = Guests(folder, image, seconds=600, memory_mb=256)
    server = ServerProcess(socket_path, shm_name)
    try:
        wait_until(lambda: unix_connections(socket_path)[0],
                   "the server to listen")
        for name, vm in VMS.items():
            flags = Q35_IOMMU + qemu_args(
                "--scenario", str(SCENARIO), "--vm", vm, "--doorbell",
                "--socket", socket_path, "--vectors", "1")
            guests.start(name, flags, ivrole=name, ivname=REGION,
                         **IOMMU_PARAMS)
        lines = {name: guests.results(name, "IVC ") for name in "ab"}
        measured = {name: guests.results(name, "IVB ") for name in "ab"}
    finally:
        guests.kill_all()
        server.stop()
        shm_file.unlink(missing_ok=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    results = {}
    for name in "ab":
        if lines[name][-1:] != ["done rc=0"]:
            raise SystemExit(f"guest {name} failed:\n{guests.log(name)}")
        for line in measured[name]:
            words = line.split()
            results[f"{name}:{words[0]}"] = words[1:]
    return results


def rate(value: float) -> str:
    return f"{value / 1e6:.2f} M/s"


def bandwidth(value: float) -> str:
    return f"{value / GB:.2f} GB/s"


def micro(nanoseconds: str) -> str:
    return f"{int(nanoseconds) / 1000:.1f} us"


def report(results: dict[str, list[str]], seconds: float) -> None:
    from channel_guest_work import (
        C_BIG, C_SMALL, COPY_BYTES, PY_BIG, PY_PINGS, PY_SMALL,
    )

    def value(key: str) -> float:
        return float(results[key][0])

    memcpy = COPY_BYTES / value("a:memcpy-c")
    py_copy = COPY_BYTES / value("a:memcpy-python")
    c_big = C_BIG * BIG / value("b:c-big")
    py_big = PY_BIG * BIG / value("b:python-big")
    print(f"two TCG guests (QEMU {TOOLS.qemu_version}, {TOOLS.kernel}), "
          f"ivshmem-doorbell + acrn-shm ivshmem-server, q35 + "
          f"intel-iommu; {seconds:.0f} s in all")
    print(f"memcpy of 64 KiB blocks in guest A: C {bandwidth(memcpy)}, "
          f"Python slice copy {bandwidth(py_copy)}")
    rows = [
        ("C, 64 B messages, one way", rate(C_SMALL / value("b:c-small")),
         "-"),
        ("C, 64 KiB messages, one way", bandwidth(c_big),
         f"{c_big / memcpy:.0%} of memcpy"),
        ("Python, 64 B messages (batches of 256)",
         rate(PY_SMALL / value("b:python-small")), "-"),
        ("Python, 64 KiB messages", bandwidth(py_big),
         f"{py_big / memcpy:.0%} of memcpy"),
    ]
    for label, figure, ratio in rows:
        print(f"  {label:<40} {figure:>12}   {ratio}")
    print("64-byte ping-pong round trip, median / 99th percentile:")
    for label, key in (("C, polling", "a:ping-c-polling"),
                       ("Python, polling", "a:ping-python-polling"),
                       ("Python, guest doorbell (vfio MSI-X)",
                        "a:ping-python-doorbell")):
        median, p99 = results[key]
        print(f"  {label:<40} {micro(median):>10} / {micro(p99)}")
    print(f"doorbell interrupts taken: A {results['a:interrupts'][0]}, "
          f"B {results['b:interrupts'][0]} (for {PY_PINGS} pings and "
          "the warm-up)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default=shutil.which("cc") or "gcc")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the guests' logs and image in DIR")
    args = parser.parse_args()
    if MISSING:
        raise SystemExit(f"{MISSING}; run .ci/install-e2e")
    sys.path.insert(0, str(PROJECT / "bench"))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.keep or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        results = run_guests(folder, build_c(args.cc, folder))
        report(results, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
