"""The guest-side tool (:mod:`acrn_ivshmem.guest`) on a fake sysfs.

``tests/test_guest/sys`` holds the sysfs files of five PCI functions:
a host bridge, an ACRN v3.3 device (region id 5, 00:08.0), a QEMU
ivshmem-plain (00:09.0), a QEMU ivshmem-doorbell bound to uio_pci_generic
(00:0a.0) and an ACRN device on bus 1 bound to another driver (region
id 7). The ``sysfs`` fixture copies it and adds the ``resourceN`` files
as sparse regular files of the BAR sizes (``mmap`` works on those).
"""

from __future__ import annotations

import ast
import json
import shutil
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from acrn_ivshmem import guest
from acrn_ivshmem.errors import AcrnShmError
from acrn_ivshmem.guest import (
    Bar, GuestError, Registers, find_devices, main, read_registers, read_shm,
    ring_doorbell, select_device, uio_bind_commands, write_shm,
)

DATA = Path(__file__).parent / "test_guest"
MIB = 1024 * 1024
ACRN = "0000:00:08.0"
PLAIN = "0000:00:09.0"
BELL = "0000:00:0a.0"
BUS1 = "0000:01:00.0"


@pytest.fixture
def sysfs(tmp_path) -> str:
    """A writable copy of the fake sysfs with its BAR files."""
    root = tmp_path / "sys"
    shutil.copytree(DATA / "sys", root, symlinks=True)
    for device in (root / "bus" / "pci" / "devices").iterdir():
        lines = (device / "resource").read_text().splitlines()
        for index, line in enumerate(lines[:6]):
            start, end, _flags = (int(word, 16) for word in line.split())
            if end:
                with open(device / f"resource{index}", "wb") as file:
                    file.truncate(end - start + 1)
    return str(root)


def bar_file(sysfs: str, address: str, index: int) -> Path:
    return Path(sysfs) / "bus" / "pci" / "devices" / address / (
        f"resource{index}")


def device(sysfs: str, address: str):
    return select_device(find_devices(sysfs), address)


# --------------------------------------------------------------------------
# Discovery


def test_find_devices(sysfs):
    devices = find_devices(sysfs)
    root = Path(sysfs) / "bus" / "pci" / "devices"
    assert [(d.address, d.path, d.region_id, d.shm_size, d.has_msix,
             d.driver, d.revision) for d in devices] == [
        (ACRN, str(root / ACRN), 5, 2 * MIB, True, None, 1),
        (PLAIN, str(root / PLAIN), None, 4 * MIB, False, None, 1),
        (BELL, str(root / BELL), None, MIB, True, "uio_pci_generic", 1),
        (BUS1, str(root / BUS1), 7, 2 * MIB, True, "ivshmem_net", 1),
    ]
    assert devices[0].bars == (
        Bar(0, 0xA0000000, 0x100, 0x40200),
        Bar(1, 0xA0001000, 0x1000, 0x40200),
        Bar(2, 0x4000000000, 2 * MIB, 0x14220C),
    )
    assert devices[1].bar(1) is None
    assert (devices[1].subsystem_vendor, devices[1].subsystem_device) == (
        0x1AF4, 0x1100)


def test_find_devices_none(tmp_path):
    assert find_devices(str(DATA / "empty")) == ()
    with pytest.raises(GuestError) as info:
        find_devices(str(tmp_path / "nosys"))
    assert str(info.value) == (
        f"cannot list {tmp_path}/nosys/bus/pci/devices: No such file or "
        "directory")


@pytest.mark.parametrize("selector, address", [
    (ACRN, ACRN), ("00:08.0", ACRN), ("08.0", ACRN), ("0000:00:0A.0", BELL),
    ("0a.0", BELL), ("id=5", ACRN), ("id=0x7", BUS1), ("ID=7", BUS1),
    ("01:00.0", BUS1),
])
def test_select_device(sysfs, selector, address):
    assert select_device(find_devices(sysfs), selector).address == address


@pytest.mark.parametrize("selector, message", [
    (None, f"4 ivshmem devices ({ACRN}, {PLAIN}, {BELL}, {BUS1}); choose "
           "one with --device"),
    ("00:0b.0", "no ivshmem device matches '00:0b.0'; the devices are "
                f"{ACRN}, {PLAIN}, {BELL}, {BUS1}"),
    ("id=9", "no ivshmem device matches 'id=9'; the devices are "
             f"{ACRN}, {PLAIN}, {BELL}, {BUS1}"),
    ("id=x", "bad region id in 'id=x'"),
])
def test_select_device_errors(sysfs, selector, message):
    with pytest.raises(GuestError) as info:
        select_device(find_devices(sysfs), selector)
    assert str(info.value) == message


def test_select_device_ambiguous(sysfs):
    # The same slot on two buses: '08.0' names both.
    acrn = find_devices(sysfs)[0]
    other = replace(acrn, address="0000:02:08.0")
    with pytest.raises(GuestError) as info:
        select_device((acrn, other), "08.0")
    assert str(info.value) == (
        "more than one ivshmem device matches '08.0'; the devices are "
        f"{ACRN}, 0000:02:08.0")


def test_select_the_only_device(sysfs):
    only = find_devices(sysfs)[:1]
    assert select_device(only) is only[0]
    with pytest.raises(GuestError) as info:
        select_device(())
    assert str(info.value) == "no ivshmem device (1af4:1110) found"


# --------------------------------------------------------------------------
# Shared memory


@pytest.mark.parametrize("offset, data", [
    (0, b"hello"), (4090, bytes(range(20))), (2 * MIB - 4, b"\xff\x00ab"),
    (65536, b"x" * 9000),
])
def test_write_then_read(sysfs, offset, data):
    target = device(sysfs, ACRN)
    write_shm(target, offset, data)
    assert read_shm(target, offset, len(data)) == data
    raw = bar_file(sysfs, ACRN, 2).read_bytes()
    assert raw[offset:offset + len(data)] == data
    assert raw.count(0) == 2 * MIB - len(data) + data.count(0)


def test_empty_access_at_the_end(sysfs):
    target = device(sysfs, ACRN)
    assert read_shm(target, 2 * MIB, 0) == b""
    write_shm(target, 2 * MIB, b"")


@pytest.mark.parametrize("offset, length, message", [
    (2 * MIB - 3, 4, "offset 0x1ffffd + length 0x4 is outside BAR2 of "
                     f"{ACRN} (0x200000 bytes)"),
    (2 * MIB + 1, 0, "offset 0x200001 + length 0x0 is outside BAR2 of "
                     f"{ACRN} (0x200000 bytes)"),
    (-1, 1, "offset -0x1 + length 0x1 is outside BAR2 of "
            f"{ACRN} (0x200000 bytes)"),
])
def test_out_of_range(sysfs, offset, length, message):
    with pytest.raises(GuestError) as info:
        read_shm(device(sysfs, ACRN), offset, length)
    assert str(info.value) == message


def test_missing_bar_file(sysfs):
    target = device(sysfs, ACRN)
    bar_file(sysfs, ACRN, 2).unlink()
    with pytest.raises(GuestError) as info:
        read_shm(target, 0, 1)
    assert str(info.value) == (
        f"cannot open {bar_file(sysfs, ACRN, 2)}: No such file or "
        "directory (root needed?)")


# --------------------------------------------------------------------------
# Registers and doorbell


def test_registers(sysfs):
    bar_file(sysfs, BELL, 0).write_bytes(
        struct.pack("<4I", 0xFFFFFFFF, 1, 3, 0) + bytes(0xF0))
    assert read_registers(device(sysfs, BELL)) == Registers(
        0xFFFFFFFF, 1, 3)


def test_doorbell(sysfs):
    ring_doorbell(device(sysfs, BELL), 1, 2)
    raw = bar_file(sysfs, BELL, 0).read_bytes()
    assert raw[12:16] == struct.pack("<I", 0x00010002)
    assert raw[:12] == bytes(12) and raw[16:] == bytes(0xF0)


def test_doorbell_limits(sysfs):
    with pytest.raises(GuestError) as info:
        ring_doorbell(device(sysfs, BELL), 0x10000)
    assert str(info.value) == "peer 65536 and vector 0 must be 0-65535"


def test_no_such_bar(sysfs):
    target = replace(device(sysfs, PLAIN), bars=())
    with pytest.raises(GuestError) as info:
        read_registers(target)
    assert str(info.value) == f"{PLAIN} has no BAR0"


# --------------------------------------------------------------------------
# uio_pci_generic


NOTE = ("# uio_pci_generic handles INTx only; ivshmem interrupts are MSI-X, "
        "so no doorbell reaches /dev/uioN (use vfio-pci for interrupts)")


def test_uio_commands_for_every_device():
    assert uio_bind_commands() == (
        NOTE, "modprobe uio_pci_generic",
        "echo '1af4 1110' > /sys/bus/pci/drivers/uio_pci_generic/new_id")


def test_uio_commands_for_an_unbound_device(sysfs):
    base = f"{sysfs}/bus/pci"
    assert uio_bind_commands(device(sysfs, ACRN), sysfs) == (
        NOTE, "modprobe uio_pci_generic",
        f"echo uio_pci_generic > {base}/devices/{ACRN}/driver_override",
        f"echo {ACRN} > {base}/drivers_probe")


def test_uio_commands_for_a_bound_device(sysfs):
    base = f"{sysfs}/bus/pci"
    assert uio_bind_commands(device(sysfs, BUS1), sysfs) == (
        NOTE, "modprobe uio_pci_generic",
        f"echo uio_pci_generic > {base}/devices/{BUS1}/driver_override",
        f"echo {BUS1} > {base}/devices/{BUS1}/driver/unbind",
        f"echo {BUS1} > {base}/drivers_probe")


def test_uio_commands_when_already_bound(sysfs):
    assert uio_bind_commands(device(sysfs, BELL), sysfs) == (
        f"# {BELL} is already bound to uio_pci_generic",)


# --------------------------------------------------------------------------
# The command line


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_main_list(sysfs, capsys):
    assert run(capsys, "--sysfs", sysfs, "list") == (0, (
        "ADDRESS       REGION_ID  SIZE       PHYS                MSIX  "
        "DRIVER\n"
        "0000:00:08.0  5          2 MiB      0x4000000000        yes   -\n"
        "0000:00:09.0  -          4 MiB      0xfe800000          no    -\n"
        "0000:00:0a.0  -          1 MiB      0xfd000000          yes   "
        "uio_pci_generic\n"
        "0000:01:00.0  7          2 MiB      0x4000200000        yes   "
        "ivshmem_net\n"), "")


def test_main_list_json(sysfs, capsys):
    status, out, err = run(capsys, "--sysfs", sysfs, "list", "--json")
    assert (status, err) == (0, "")
    assert json.loads(out)[0] == {
        "address": ACRN, "region_id": 5, "subsystem_vendor": 0x8086,
        "subsystem_device": 5, "revision": 1, "shm_size": 2 * MIB,
        "shm_phys": 0x4000000000, "msix": True, "driver": None}
    assert [entry["address"] for entry in json.loads(out)] == [
        ACRN, PLAIN, BELL, BUS1]


def test_main_list_nothing(capsys):
    assert run(capsys, "--sysfs", str(DATA / "empty"), "list") == (
        0, "no ivshmem device\n", "")


def test_main_write_and_read(sysfs, capsys):
    assert run(capsys, "--sysfs", sysfs, "write", "-d", "id=5",
               "--offset", "0x10", "--data", "héllo") == (
        0, f"wrote 6 bytes at 0x10 of {ACRN}\n", "")
    assert run(capsys, "--sysfs", sysfs, "read", "-d", "id=5", "--offset",
               "16", "--length", "8", "--format", "hex") == (
        0, "68c3a96c6c6f0000\n", "")
    assert run(capsys, "--sysfs", sysfs, "read", "-d", "id=5", "--offset",
               "16", "--length", "8", "--format", "text") == (
        0, "héllo\n", "")
    assert run(capsys, "--sysfs", sysfs, "read", "-d", "id=5", "--offset",
               "0x8", "--length", "20") == (0, (
        "00000008  00 00 00 00 00 00 00 00 68 c3 a9 6c 6c 6f 00 00  "
        "|........h..llo..|\n"
        "00000018  00 00 00 00                                      "
        "|....|\n"), "")


def test_main_write_hex_and_file(sysfs, capsys, tmp_path):
    assert run(capsys, "--sysfs", sysfs, "write", "-d", PLAIN, "--hex",
               "de ad be ef")[0] == 0
    payload = tmp_path / "payload"
    payload.write_bytes(b"\x00\x01\x02")
    assert run(capsys, "--sysfs", sysfs, "write", "-d", PLAIN, "--offset",
               "4", "--file", str(payload))[0] == 0
    assert bar_file(sysfs, PLAIN, 2).read_bytes()[:8] == (
        b"\xde\xad\xbe\xef\x00\x01\x02\x00")


def test_main_read_raw(sysfs, capsysbinary):
    write_shm(device(sysfs, BUS1), 0, b"\x00raw\xff")
    assert main(["--sysfs", sysfs, "read", "-d", BUS1, "--length", "5",
                 "--format", "raw"]) == 0
    assert capsysbinary.readouterr() == (b"\x00raw\xff", b"")


def test_main_registers_and_doorbell(sysfs, capsys):
    bar_file(sysfs, BELL, 0).write_bytes(
        struct.pack("<4I", 0, 0, 1, 0) + bytes(0xF0))
    assert run(capsys, "--sysfs", sysfs, "registers", "-d", BELL) == (
        0, "IntrMask   0x00000000\nIntrStatus 0x00000000\nIVPosition 1\n",
        "")
    assert run(capsys, "--sysfs", sysfs, "doorbell", "-d", BELL, "--peer",
               "0", "--vector", "0x1") == (
        0, f"rang peer 0 vector 1 from {BELL}\n", "")
    assert bar_file(sysfs, BELL, 0).read_bytes()[12:16] == (
        struct.pack("<I", 1))


def test_main_uio_bind(sysfs, capsys):
    status, out, err = run(capsys, "--sysfs", sysfs, "uio-bind", "-d",
                           "08.0")
    assert (status, err) == (0, "")
    assert out.splitlines() == list(uio_bind_commands(
        device(sysfs, ACRN), sysfs))
    status, out, _ = run(capsys, "--sysfs", sysfs, "uio-bind")
    assert out.splitlines()[-1] == (
        f"echo '1af4 1110' > {sysfs}/bus/pci/drivers/uio_pci_generic/"
        "new_id")


@pytest.mark.parametrize("argv, message", [
    (["read", "--length", "4"],
     f"4 ivshmem devices ({ACRN}, {PLAIN}, {BELL}, {BUS1}); choose one "
     "with --device"),
    (["read", "-d", ACRN, "--offset", "0x200000", "--length", "1"],
     f"offset 0x200000 + length 0x1 is outside BAR2 of {ACRN} (0x200000 "
     "bytes)"),
    (["write", "-d", ACRN, "--hex", "xyz"], "--hex 'xyz' is not hex digits"),
    (["write", "-d", ACRN, "--file", "/nonexistent/x"],
     "cannot read /nonexistent/x: No such file or directory"),
])
def test_main_errors(sysfs, capsys, argv, message):
    assert run(capsys, "--sysfs", sysfs, *argv) == (
        2, "", f"acrn-shm guest: error: {message}\n")


@pytest.mark.parametrize("argv", [
    [], ["bogus"], ["read"], ["read", "--length", "-1"],
    ["read", "--length", "ten"], ["write", "--data", "a", "--hex", "00"],
])
def test_main_usage_errors(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("usage: python3 -m acrn_ivshmem.guest")


def test_main_help(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert out.startswith("usage: python3 -m acrn_ivshmem.guest")


def test_guest_error_is_an_acrn_shm_error():
    assert issubclass(GuestError, AcrnShmError)


# --------------------------------------------------------------------------
# Standard library only, and runnable alone


def test_imports_only_the_standard_library():
    tree = ast.parse(Path(guest.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            assert node.module == "errors"  # errors.py: no imports at all
    assert names <= sys.stdlib_module_names, names - sys.stdlib_module_names
    errors = Path(guest.__file__).with_name("errors.py").read_text()
    assert not [node for node in ast.walk(ast.parse(errors))
                if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_runs_as_a_lone_file(sysfs, tmp_path):
    lone = tmp_path / "lone" / "ivshmem_guest.py"
    lone.parent.mkdir()
    shutil.copy(guest.__file__, lone)
    # -I -S: no site-packages and no project on the path.
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(lone), "--sysfs", sysfs, "read",
         "-d", "id=7", "--length", "2", "--format", "hex"],
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "0000\n", "")
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(lone), "--sysfs", sysfs, "read",
         "--length", "1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("acrn-shm guest: error: 4 ivshmem")


def test_runs_as_a_module(sysfs):
    result = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem.guest", "--sysfs", sysfs,
         "list", "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4
