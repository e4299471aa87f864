"""End to end: a message channel between two real QEMU guests.

The host initialises the region of ``scenario-xmls/hybrid_rt_v3.xml``
(``shm_region_0``, 2 MB) with a channel header of that name; each guest
gets the flags ``acrn-shm qemu-args`` gives its VM. Guest A opens the
channel by name and sends 10,000 messages of random sizes with sequence
numbers and checksums; guest B checks each and answers through the
other ring; A checks the answers (``test_e2e_channel/exchange.py``).
Once over ivshmem-plain, polling; once over ivshmem-doorbell with
``acrn-shm ivshmem-server``, where both guests must have been woken by
the doorbell (vfio-pci and MSI-X in the guest: q35 with an intel-iommu,
the kernel's vfio modules from ``.ci/install-e2e``). And once over
ivshmem-doorbell without an IOMMU, then without the modules: each guest
polls after the one line that says what is missing.

The guests run the host's own Python and ``acrn_ivshmem`` from an
initramfs (:func:`e2e_guests.python_initramfs`). Without QEMU, busybox
or the kernel these tests skip, and without the kernel's vfio modules
the doorbell tests skip, saying what is missing; in CI
(``ACRN_SHM_REQUIRE_TOOLS=1``) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from acrn_ivshmem import channel

from conftest import require, tools_mark
from e2e_guests import (
    CHANNEL_INIT, CHANNEL_PACKAGE, IOMMU_PARAMS, MISSING, PROJECT,
    Q35_IOMMU, TOOLS, Guests, ServerProcess, python_initramfs, qemu_args,
    unix_connections, vfio_modules, wait_until,
)

SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
REGION = "shm_region_0"  # its region in the scenario: 2 MB, 00:08.0
VMS = {"a": "PRE_RT_VM0", "b": "POST_STD_VM1"}
COUNT = 10_000
EXCHANGE = Path(__file__).with_suffix("") / "exchange.py"
GUEST_MB = 256  # the initramfs holds a Python: 128 MB cannot unpack it
GUEST_SECONDS = 150

MODULES, NO_MODULES = vfio_modules()
pytestmark = tools_mark(MISSING)


@pytest.fixture
def vfio_route():
    """The guest kernel's vfio modules (the doorbell tests need them):
    skip without them, or fail in CI."""
    require(NO_MODULES)


def load_exchange():
    """The guest program as a module (for its message generator)."""
    spec = importlib.util.spec_from_file_location("exchange", EXCHANGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def channel_initramfs(tmp_path_factory) -> Path:
    """busybox, channel_init.sh, Python, acrn_ivshmem, exchange.py as
    /opt/guest.py and the vfio modules."""
    require(MISSING)  # before the tests' own check: a wider scope
    path = tmp_path_factory.mktemp("channel-guest") / "initramfs.cpio"
    path.write_bytes(python_initramfs(CHANNEL_INIT, CHANNEL_PACKAGE,
                                      {"opt/guest.py": EXCHANGE}, MODULES))
    return path


def init_backing_file(path: Path) -> None:
    """What the host does before the guests start: the region's file,
    with a channel header named as the scenario names the region."""
    with channel.Region.open_file(path, create_size=2 << 20) as region:
        channel.init_region(region, REGION)


def run_exchange(guests: Guests, flags: dict[str, list[str]],
                 **params: str) -> dict[str, list[str]]:
    """Boot A and B with ``flags`` per guest; return their IVC lines."""
    seed = str(secrets.randbits(31))
    for name in "ab":
        guests.start(name, flags[name], ivrole=name, ivname=REGION,
                     ivcount=str(COUNT), ivseed=seed, **params)
    results = {name: guests.results(name, "IVC ") for name in "ab"}
    exchange = load_exchange()
    total = sum(map(len, exchange.messages(int(seed), COUNT)))
    for name in "ab":
        seconds = [line for line in results[name]
                   if line.startswith("seconds ")]
        print(f"guest {name}: {seconds}")
    results["bytes"] = total
    return results


def without_seconds(lines: list[str]) -> list[str]:
    return [line for line in lines
            if not re.fullmatch(r"seconds \d+\.\d\d", line)]


def test_two_guests_exchange_10000_messages_polling(tmp_path,
                                                    channel_initramfs):
    started = time.monotonic()
    shm_dir = tmp_path / "shm"
    shm_dir.mkdir()
    init_backing_file(shm_dir / REGION)
    flags = {name: qemu_args("--scenario", str(SCENARIO), "--vm", vm,
                             "--shm-dir", str(shm_dir))
             for name, vm in VMS.items()}
    assert "ivshmem-plain," in " ".join(flags["a"])
    guests = Guests(tmp_path, channel_initramfs, seconds=GUEST_SECONDS,
                    memory_mb=GUEST_MB)
    try:
        results = run_exchange(guests, flags)
    finally:
        guests.kill_all()
    total = results["bytes"]
    # ivshmem-plain has no MSI-X: one line says so, and the sides poll.
    polling = ("stderr 0000:00:08.0 has no MSI-X (ivshmem-plain?); polling "
               "instead of the doorbell")
    assert without_seconds(results["a"]) == [
        f"opened '{REGION}' as peer 0, polling",
        f"sent {COUNT} messages ({total} bytes), {COUNT} answers checked",
        polling, "done rc=0"], guests.log("a")
    assert without_seconds(results["b"]) == [
        f"opened '{REGION}' as peer 1, polling",
        f"received {COUNT} messages ({total} bytes), all checked and "
        "answered", polling, "done rc=0"], guests.log("b")
    print(f"channel e2e, polling: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")


@pytest.fixture
def doorbell_server(tmp_path, vfio_route):
    """``acrn-shm ivshmem-server`` serving the region's file, already
    initialised; yields the flags of each VM (ivshmem-doorbell) and the
    file. Checks at the end that the file still holds the channel and
    that the server stopped cleanly."""
    # A short directory: socket paths are limited to 107 bytes.
    sock_dir = tempfile.mkdtemp(prefix="ivc-e2e-")
    socket_path = os.path.join(sock_dir, "ivshmem.sock")
    shm_name = f"acrn-shm-e2e-{os.getpid()}-{secrets.token_hex(4)}"
    shm_file = Path("/dev/shm") / shm_name
    init_backing_file(shm_file)  # the server serves this file
    server = ServerProcess(socket_path, shm_name)
    try:
        wait_until(lambda: unix_connections(socket_path)[0],
                   "the server to listen")
        flags = {name: qemu_args(
            "--scenario", str(SCENARIO), "--vm", vm, "--doorbell",
            "--socket", socket_path, "--vectors", "1")
            for name, vm in VMS.items()}
        assert "ivshmem-doorbell," in " ".join(flags["a"])
        yield flags
        with channel.Region.open_file(shm_file) as region:
            name = region.header().name
    finally:
        stopped = server.stop()
        shm_file.unlink(missing_ok=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert (name, stopped[0]) == (REGION, 0), stopped[1]


def test_two_guests_exchange_10000_messages_woken_by_the_doorbell(
        tmp_path, channel_initramfs, doorbell_server):
    started = time.monotonic()
    guests = Guests(tmp_path, channel_initramfs, seconds=GUEST_SECONDS,
                    memory_mb=GUEST_MB)
    try:
        results = run_exchange(
            guests, {name: Q35_IOMMU + flags
                     for name, flags in doorbell_server.items()},
            ivdoorbell="on", **IOMMU_PARAMS)
    finally:
        guests.kill_all()
    total = results["bytes"]
    lines = {}
    for side in "ab":
        found = without_seconds(results[side])
        woken = [line for line in found if line.startswith("woken by ")]
        # Both sides blocked on their MSI-X eventfd and were rung.
        assert len(woken) == 1 and int(woken[0].split()[4]) > 0, (
            guests.log(side))
        lines[side] = [line for line in found if line not in woken]
    ids = [re.fullmatch(r"opened '\w+' as peer \d, doorbell id (\d+)",
                        lines[side][0]) for side in "ab"]
    assert all(ids) and len({match.group(1) for match in ids}) == 2, lines
    assert lines["a"][1:] == [
        f"sent {COUNT} messages ({total} bytes), {COUNT} answers checked",
        "done rc=0"], guests.log("a")
    assert lines["b"][1:] == [
        f"received {COUNT} messages ({total} bytes), all checked and "
        "answered", "done rc=0"], guests.log("b")
    print(f"channel e2e, doorbell: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")


def test_a_doorbell_device_without_its_route_polls_after_one_line(
        tmp_path, channel_initramfs, doorbell_server):
    """ivshmem-doorbell on the pc machine (no IOMMU): guest A has the
    vfio modules, which cannot take the device; guest B has none. Each
    opens the channel, says what is missing in one line and polls."""
    guests = Guests(tmp_path, channel_initramfs, seconds=GUEST_SECONDS,
                    memory_mb=GUEST_MB)
    try:
        for name in "ab":
            guests.start(name, doorbell_server[name], ivrole=name,
                         ivname=REGION, ivcount="0", ivseed="1",
                         **({"ivvfio": "1"} if name == "a" else {}))
        results = {name: without_seconds(guests.results(name, "IVC "))
                   for name in "ab"}
    finally:
        guests.kill_all()
    polling = "; polling instead of the doorbell"
    assert results["a"] == [
        f"opened '{REGION}' as peer 0, polling",
        "sent 0 messages (0 bytes), 0 answers checked",
        "stderr 0000:00:08.0: vfio-pci did not take the device: no IOMMU "
        "(QEMU: -M q35 -device intel-iommu, kernel: intel_iommu=on) and no "
        f"vfio enable_unsafe_noiommu_mode{polling}", "done rc=0"], (
        guests.log("a"))
    assert results["b"] == [
        f"opened '{REGION}' as peer 1, polling",
        "received 0 messages (0 bytes), all checked and answered",
        "stderr 0000:00:08.0: the vfio-pci driver is not loaded (modules "
        "irqbypass, vfio, vfio_iommu_type1, vfio_virqfd, vfio-pci-core, "
        f"vfio-pci){polling}", "done rc=0"], guests.log("b")
