"""End to end, with real QEMU guests.

``acrn-shm qemu-try`` on a region of ``scenario-xmls/hybrid_rt_v3.xml``
(ivshmem-doorbell, acrn-shm's server) and on a bare region
(ivshmem-plain), and on a VBDF QEMU refuses; two guests that ring each
other through ``acrn-shm ivshmem-server`` in its own process, with the
flags of ``qemu-args --doorbell``; and acrn-shm's guest tool in two
guests on a region added with ``add-region``.

The guests are a kernel (what ``acrn-shm qemu-try`` finds:
``$ACRN_SHM_E2E_KERNEL``, ``.ci/cache/vmlinuz``, ``/boot/vmlinuz-*``)
and a busybox initramfs
built by :mod:`acrn_ivshmem.host.qemu_lab`, whose ``/init`` is qemu-try's
(:data:`~acrn_ivshmem.host.qemu_try.GUEST_INIT`) or, for the guest tool,
``test_e2e_qemu/guest_tool.sh`` with the host's Python and
``acrn_ivshmem/guest.py``. The lines the guests print on their serial
console are the verdict, not QEMU's exit status. ``.ci/install-e2e``
installs QEMU, busybox-static and the kernel; without them these tests
skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from acrn_ivshmem.host import qemu_lab
from acrn_ivshmem.host.qemu_try import (
    GUEST_INIT, message_offset, message_words,
)

from conftest import PROJECT, require, run_acrn_shm, tools_mark
from e2e_guests import (
    MISSING, TOOLS, Guests, ServerProcess, python_initramfs, qemu_args,
    unix_connections, wait_until,
)

SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
MIB = 1024 * 1024


pytestmark = tools_mark(MISSING)


def qemu_try(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """``acrn-shm qemu-try ARGV`` with the tests' kernel and its own
    temporary folder (``tmp_path/tmp``)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return run_acrn_shm(["qemu-try", *argv], tmp_path,
                        ACRN_SHM_E2E_KERNEL=TOOLS.kernel,
                        TMPDIR=str(tmp_path / "tmp"))


def seconds(report: str) -> str:
    """The time a qemu-try report says the trial took."""
    return re.search(r"^passed in (\S+) s", report, re.M).group(1)


def masked(text: str) -> str:
    """``text`` with every time (``2.7 s``) as ``N s``."""
    return re.sub(r"\b\d+\.\d s\b", "N s", text)


# ---------------------------------------------------------------------------
# The guest image


@pytest.fixture(scope="session")
def initramfs(tmp_path_factory) -> Path:
    """busybox with qemu-try's /init."""
    require(MISSING)  # before the tests' own check: a wider scope
    path = tmp_path_factory.mktemp("guest") / "initramfs.cpio"
    path.write_bytes(qemu_lab.guest_initramfs(TOOLS.busybox,
                                              GUEST_INIT.encode()))
    return path


#: The guest tool's own files, as ``pip install`` would place them.
GUEST_TOOL = ("__init__.py", "guest.py", "errors.py")
GUEST_TOOL_INIT = Path(__file__).with_suffix("") / "guest_tool.sh"


@pytest.fixture(scope="session")
def guest_tool_initramfs(tmp_path_factory) -> Path:
    """busybox, ``guest_tool.sh`` as /init, the host's python3 and the
    guest tool in /opt (no acrn-shm install, no pip)."""
    require(MISSING)
    path = tmp_path_factory.mktemp("guest-tool") / "initramfs.cpio"
    path.write_bytes(python_initramfs(GUEST_TOOL_INIT, GUEST_TOOL))
    return path


# ---------------------------------------------------------------------------
# Guests and the server


@pytest.fixture
def guests(tmp_path, initramfs):
    running = Guests(tmp_path, initramfs)
    yield running
    running.kill_all()


# ---------------------------------------------------------------------------
# Tests


def test_qemu_try_on_a_scenario_region(tmp_path):
    """docs/getting-started.md's trial: bytes and a doorbell cross
    between the two VMs of shm_region_0, each at its VBDF 00:08.0."""
    keep = tmp_path / "try"
    result = qemu_try(tmp_path, "--scenario", str(SCENARIO), "--keep",
                      str(keep))
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    assert masked(result.stdout) == (
        "trying region 'shm_region_0' (2 MB) as ivshmem-doorbell between "
        "guest A (VM 'PRE_RT_VM0') at 00:08.0 and guest B (VM "
        "'POST_STD_VM1') at 00:08.0; "
        f"{TOOLS.accel.name.upper()}: {TOOLS.accel.reason}\n"
        "guest A (VM 'PRE_RT_VM0') at 0000:00:08.0, peer 0, N s:\n"
        "  wrote 'hello from PRE_RT_VM0' at 0x40\n"
        "  read  'hello from POST_STD_VM1' at 0x80\n"
        "  rang peer 1 and got a ring from peer 1\n"
        "guest B (VM 'POST_STD_VM1') at 0000:00:08.0, peer 1, N s:\n"
        "  wrote 'hello from POST_STD_VM1' at 0x80\n"
        "  read  'hello from PRE_RT_VM0' at 0x40\n"
        "  rang peer 0 and got a ring from peer 0\n"
        "the host reads both messages in the region's memory "
        f"({keep}/shm_region_0)\n"
        f"passed in N s (QEMU {TOOLS.qemu_version}, kernel "
        f"{TOOLS.kernel})\n")
    memory = (keep / "shm_region_0").read_bytes()
    assert (len(memory), memory[message_offset(0):][:22],
            memory[message_offset(1):][:24]) == (
        2 * MIB, b"hello from PRE_RT_VM0\0", b"hello from POST_STD_VM1\0")
    assert sorted(path.name for path in keep.iterdir()) == [
        "A.cmdline", "A.log", "A.qemu.txt", "B.cmdline", "B.log",
        "B.qemu.txt", "initramfs.cpio", "shm_region_0"]
    print(f"qemu-try doorbell e2e: {seconds(result.stdout)} s "
          f"({TOOLS.accel.name})")


def test_qemu_try_plain_on_a_bare_region(tmp_path):
    result = qemu_try(tmp_path, "--name", "demo", "--size", "4", "--plain")
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = masked(result.stdout).splitlines()
    # QEMU chooses the slot; no server, so no peer ids and no rings.
    assert [re.sub(r" at 0000:00:0[0-9a-f]\.0", " at SLOT", line)
            for line in lines[1:]] == [
        "guest A at SLOT, N s:",
        "  wrote 'hello from guest A' at 0x40",
        "  read  'hello from guest B' at 0x80",
        "guest B at SLOT, N s:",
        "  wrote 'hello from guest B' at 0x80",
        "  read  'hello from guest A' at 0x40",
        "the host reads both messages in the region's memory",
        f"passed in N s (QEMU {TOOLS.qemu_version}, kernel {TOOLS.kernel})",
    ]
    assert lines[0].startswith("trying region 'demo' (4 MB) as "
                               "ivshmem-plain between guest A and guest B;")
    # A pass leaves no file behind.
    assert list((tmp_path / "tmp").iterdir()) == []
    print(f"qemu-try plain e2e: {seconds(result.stdout)} s "
          f"({TOOLS.accel.name})")


def test_qemu_try_reports_what_qemu_refuses(tmp_path):
    """B's VBDF is slot 1, the pc machine's ISA bridge: QEMU exits at
    once, and A is stopped rather than left waiting for it."""
    scenario = tmp_path / "slot1.xml"
    text = SCENARIO.read_text(encoding="utf-8")
    last = text.rindex("<VBDF>00:08.0</VBDF>")
    scenario.write_text(text[:last] + "<VBDF>00:01.0</VBDF>"
                        + text[last + 20:], encoding="utf-8")
    result = qemu_try(tmp_path, "--scenario", str(scenario))
    assert (result.returncode, result.stderr) == (1, (
        "acrn-shm: warning: 'shm_region_0' is at slot 01, where QEMU puts "
        "the ISA bridge (pc) or VGA (q35); QEMU fails if that device is "
        "there: use slot 03-1e\n"))
    work, = (tmp_path / "tmp").iterdir()  # kept after a failure
    assert masked(result.stdout).splitlines()[1:] == [
        "guest A (VM 'PRE_RT_VM0'), N s:",
        "  failed: stopped when guest B failed (no line from /init: the "
        "kernel did not get that far)",
        f"  its console: {work}/A.log",
        "guest B (VM 'POST_STD_VM1'), N s:",
        "  failed: QEMU exited with status 1: 'qemu-system-x86_64: -device "
        "ivshmem-doorbell,id=ivshmem-shm_region_0,chardev=shmchr-"
        "shm_region_0,vectors=1,addr=01.0: PCI: slot 1 function 0 not "
        "available for ivshmem-doorbell, in use by PIIX3,id=(null)'",
        f"  its console: {work}/B.log",
        f"failed in N s; the files are in {work}",
    ]


def test_two_guests_ring_each_other_through_the_server(guests):
    """acrn-shm ivshmem-server as its own process, the flags of
    ``qemu-args --name --doorbell``, qemu-try's /init in the guests."""
    started = time.monotonic()
    # A short directory: socket paths are limited to 107 bytes.
    sock_dir = tempfile.mkdtemp(prefix="ivs-e2e-")
    socket_path = os.path.join(sock_dir, "ivshmem.sock")
    shm_name = f"acrn-shm-e2e-{os.getpid()}-{secrets.token_hex(4)}"
    shm_file = Path("/dev/shm") / shm_name
    nonce = f"0x{secrets.randbits(30) | 1:08X}"
    messages = {"a": b"ring from a", "b": b"ring from b"}
    server = ServerProcess(socket_path, shm_name)
    try:
        wait_until(lambda: unix_connections(socket_path)[0],
                   "the server to listen")
        flags = qemu_args("--name", "doorbell", "--size", "2", "--doorbell",
                          "--socket", socket_path, "--vectors", "1")
        for name in ("a", "b"):
            guests.start(name, flags, ivrole=name, ivnonce=nonce, ivbell="1",
                         ivwait="30",
                         ivmsg=",".join(message_words(messages[name])))
            # Peer ids follow connection order: B connects after A.
            wait_until(lambda: unix_connections(socket_path)[1] >= 1,
                       "guest A to connect")
        results = {name: guests.results(name, "IVT ") for name in "ab"}
        data = shm_file.read_bytes()
    finally:
        guests.kill_all()
        stopped = server.stop()
        socket_left = os.path.exists(socket_path)
        shm_file.unlink(missing_ok=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    for name, me, peer in (("a", 0, 1), ("b", 1, 0)):
        lines = results[name]
        assert lines[:1] == ["boot"], guests.log(name)
        assert re.fullmatch(r"device 0000:00:[01][0-9a-f]\.0",
                            lines[1]), guests.log(name)
        other = message_words(messages["ab"[peer]])
        assert lines[2:] == [
            f"id {me}", f"wrote {message_offset(me)}", "ready",
            f"read {message_offset(peer)} {' '.join(other)}",
            f"rang {peer}", f"doorbell {peer}", "done rc=0",
        ], guests.log(name)
    assert (len(data), data[message_offset(0):][:12],
            data[message_offset(1):][:12]) == (
        2 * MIB, b"ring from a\0", b"ring from b\0")
    assert (stopped[0], socket_left) == (0, False), stopped[1]
    print(f"doorbell e2e: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")


def test_guest_tool_in_two_real_guests(tmp_path, guest_tool_initramfs):
    """docs/getting-started.md, section 5, in two real guests: the
    scenario gains shm_video (8 MB, 00:09.0 in both VMs), QEMU takes the
    flags of ``acrn-shm qemu-args``, and ``python3 -m acrn_ivshmem.guest``
    lists, writes and reads the region through BAR2."""
    started = time.monotonic()
    scenario = tmp_path / "my-scenario.xml"
    shutil.copy(SCENARIO, scenario)
    added = run_acrn_shm(["add-region", str(scenario), "--name",
                          "shm_video", "--size", "8", "--vms",
                          "PRE_RT_VM0,POST_STD_VM1"], PROJECT)
    assert added.returncode == 0, added
    shm_dir = tmp_path / "shm"
    shm_dir.mkdir()
    # The initramfs holds a Python: 128 MB cannot unpack it.
    guests = Guests(tmp_path, guest_tool_initramfs, seconds=120,
                    memory_mb=256)
    try:
        for name, vm in (("a", "PRE_RT_VM0"), ("b", "POST_STD_VM1")):
            # add-region gave shm_video the next free region id, 1.
            flags = qemu_args(
                "--scenario", str(scenario), "--vm", vm, "--shm-dir",
                str(shm_dir), warning=(
                    "region 'shm_video' has region id '1', which QEMU "
                    "cannot show as the PCI subsystem id: find the device "
                    "by its address 09.0 instead"))
            guests.start(name, flags, ivscen=f"tool-{name}")
        results = {name: guests.results(name) for name in ("a", "b")}
    finally:
        guests.kill_all()
    # QEMU has no region ids and no MSI-X on ivshmem-plain; no driver.
    listing = [
        "list ADDRESS       REGION_ID  SIZE       PHYS                MSIX  "
        "DRIVER",
        "list 0000:00:08.0  -          2 MiB      0xfe800000          no    "
        "-",
        "list 0000:00:09.0  -          8 MiB      0xfe000000          no    "
        "-",
    ]
    assert results["a"] == listing + [
        "write wrote 5 bytes at 0x0 of 0000:00:09.0",
        "read world at 16", "done rc=0"], guests.log("a")
    assert results["b"] == listing + [
        "read hello at 0",
        "write wrote 5 bytes at 0x10 of 0000:00:09.0",
        "done rc=0"], guests.log("b")
    video = (shm_dir / "shm_video").read_bytes()
    assert (len(video), video[:5], video[16:21]) == (
        8 * MIB, b"hello", b"world")
    print(f"guest tool e2e: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")
