"""The guest doorbell (:mod:`acrn_ivshmem.channel.guest_doorbell`,
:mod:`acrn_ivshmem.channel.vfio`) without QEMU.

A fake sysfs (``test_guest/sys``, see test_guest.py), a fake ``/dev/vfio``
of regular files and a fake ``ioctl`` that records every call with its
argument bytes and answers as the kernel would; the device fd is a
regular file whose bytes stand for the config space and BAR0. The real
thing, in two guests: test_e2e_channel.py.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from pathlib import Path

import pytest

from acrn_ivshmem import channel
from acrn_ivshmem.channel import (
    ChannelError, GuestDoorbell, guest_doorbell, vfio,
)
from acrn_ivshmem.channel import layout
from acrn_ivshmem.channel.layout import DOORBELL_PRESENT
from acrn_ivshmem.guest import find_devices, select_device
from test_guest import ACRN, BELL, PLAIN, sysfs  # noqa: F401

BAR0_AT, CONFIG_AT = 0x1000, 0x2000  # where the fake device fd has them
GROUP = "5"


def test_ioctl_numbers_are_linux_vfio_h():
    # _IO(';', 100 + n): type 0x3b in bits 8-15, no size, no direction.
    assert [vfio.GET_API_VERSION, vfio.CHECK_EXTENSION, vfio.SET_IOMMU,
            vfio.GROUP_GET_STATUS, vfio.GROUP_SET_CONTAINER,
            vfio.GROUP_GET_DEVICE_FD, vfio.DEVICE_GET_REGION_INFO,
            vfio.DEVICE_GET_IRQ_INFO, vfio.DEVICE_SET_IRQS] == [
        0x3B64, 0x3B65, 0x3B66, 0x3B67, 0x3B68, 0x3B6A, 0x3B6C, 0x3B6D,
        0x3B6E]


def test_irq_set_packing_byte_for_byte():
    # struct vfio_irq_set: argsz, flags, index, start, count, data[].
    assert bytes(vfio.irq_set_eventfd(vfio.MSIX_IRQ, 0, [7])) == (
        bytes.fromhex("18000000" "24000000" "02000000" "00000000"
                      "01000000" "07000000"))
    assert bytes(vfio.irq_set_eventfd(2, 1, [9, 300])) == bytes.fromhex(
        "1c000000" "24000000" "02000000" "01000000" "02000000" "09000000"
        "2c010000")
    assert bytes(vfio.irq_set_none(vfio.MSIX_IRQ)) == bytes.fromhex(
        "14000000" "21000000" "02000000" "00000000" "00000000")


class FakeKernel:
    """The ioctls of vfio for one device, recorded as (fd name, request,
    argument) with buffers as bytes before the call."""

    def __init__(self, device_file: Path, *, viable: bool = True,
                 vectors: int = 1, fail: int | None = None):
        self.device_fd = os.open(device_file, os.O_RDWR)
        self.viable = viable
        self.vectors = vectors
        self.fail = fail
        self.names: dict[int, str] = {self.device_fd: "device"}
        self.calls: list[tuple[str, int, object]] = []

    def __call__(self, fd, request, arg, mutate=True):
        assert mutate is True  # else the return value is lost
        self.calls.append((self.names.get(fd, str(fd)), request,
                           bytes(arg) if isinstance(arg, bytearray)
                           else arg))
        if request == self.fail:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        if request == vfio.GET_API_VERSION:
            return 0
        if request == vfio.CHECK_EXTENSION:
            return int(arg == vfio.TYPE1_IOMMU)
        if request == vfio.GROUP_GET_STATUS:
            struct.pack_into("=I", arg, 4, int(self.viable))
        elif request == vfio.GROUP_GET_DEVICE_FD:
            return self.device_fd
        elif request == vfio.DEVICE_GET_REGION_INFO:
            index, = struct.unpack_from("=I", arg, 8)
            struct.pack_into("=QQ", arg, 16, 0x100,
                             {0: BAR0_AT, 7: CONFIG_AT}[index])
        elif request == vfio.DEVICE_GET_IRQ_INFO:
            struct.pack_into("=I", arg, 12, self.vectors)
        return 0

    def name(self, path: str, fd: int) -> None:
        self.names[fd] = path


@pytest.fixture
def bound(sysfs, tmp_path):  # noqa: F811
    """00:08.0 bound to vfio-pci in IOMMU group 5, /dev/vfio with the
    container and the group, and the device's bytes: command register
    0x0003 (memory and I/O decode, no bus master), IVPosition 3."""
    pci = Path(sysfs) / "bus" / "pci"
    (pci / "drivers" / "vfio-pci").mkdir()
    groups = Path(sysfs) / "kernel" / "iommu_groups" / GROUP
    groups.mkdir(parents=True)
    device = pci / "devices" / ACRN
    (device / "driver").symlink_to(pci / "drivers" / "vfio-pci")
    (device / "iommu_group").symlink_to(groups)
    dev = tmp_path / "dev"
    (dev / "vfio").mkdir(parents=True)
    for name in ("vfio", GROUP):
        (dev / "vfio" / name).write_bytes(b"")
    memory = bytearray(CONFIG_AT + 0x100)
    struct.pack_into("<H", memory, CONFIG_AT + 4, 0x0003)
    struct.pack_into("<I", memory, BAR0_AT + 8, 3)
    (tmp_path / "device").write_bytes(memory)
    return select_device(find_devices(sysfs), ACRN), dev, tmp_path


def opened_fds(kernel: FakeKernel, dev: Path, monkeypatch) -> None:
    """Name the fds os.open gives for /dev/vfio files in the record."""
    real_open = os.open

    def watched(path, flags, *args):
        fd = real_open(path, flags, *args)
        if str(path).startswith(str(dev)):
            kernel.name(os.path.basename(path), fd)
        return fd

    monkeypatch.setattr(os, "open", watched)


def test_opening_the_doorbell_asks_the_kernel_byte_for_byte(
        bound, monkeypatch):
    device, dev, folder = bound
    kernel = FakeKernel(folder / "device")
    opened_fds(kernel, dev, monkeypatch)
    bell = GuestDoorbell.open(device, dev=str(dev), ioctl=kernel)
    try:
        container = [fd for fd, name in kernel.names.items()
                     if name == "vfio"][0]
        assert kernel.calls == [
            ("vfio", vfio.GET_API_VERSION, 0),
            ("vfio", vfio.CHECK_EXTENSION, vfio.TYPE1_IOMMU),
            (GROUP, vfio.GROUP_GET_STATUS, bytes.fromhex("0800000000000000")),
            (GROUP, vfio.GROUP_SET_CONTAINER, struct.pack("=i", container)),
            ("vfio", vfio.SET_IOMMU, vfio.TYPE1_IOMMU),
            (GROUP, vfio.GROUP_GET_DEVICE_FD, b"0000:00:08.0\0"),
            ("device", vfio.DEVICE_GET_IRQ_INFO,
             bytes.fromhex("10000000" "00000000" "02000000" "00000000")),
            ("device", vfio.DEVICE_GET_REGION_INFO, bytes.fromhex(
                "20000000" "00000000" "07000000" "00000000" + "00" * 16)),
            ("device", vfio.DEVICE_SET_IRQS, bytes.fromhex(
                "18000000" "24000000" "02000000" "00000000" "01000000")
             + struct.pack("=i", bell.fileno())),
            ("device", vfio.DEVICE_GET_REGION_INFO, bytes.fromhex(
                "20000000" "00000000" "00000000" "00000000" + "00" * 16)),
        ]
        memory = (folder / "device").read_bytes()
        # Bus Master Enable set, decoding left as it was.
        assert struct.unpack_from("<H", memory, CONFIG_AT + 4) == (0x0007,)
        assert (bell.id, hex(bell.word)) == (
            3, hex(DOORBELL_PRESENT | 3 << 16))
        assert bell.ring(DOORBELL_PRESENT | 1 << 16 | 0) is True
        memory = (folder / "device").read_bytes()
        assert memory[BAR0_AT + 12:BAR0_AT + 16] == bytes.fromhex(
            "00000100")  # peer 1 << 16 | vector 0, little-endian
        assert bell.wait(0.01) is False
        os.eventfd_write(bell.fileno(), 1)
        assert (bell.wait(5), bell.interrupts, bell.wait(0)) == (
            True, 1, False)
        del kernel.calls[:]
    finally:
        bell.close()
    assert kernel.calls == [("device", vfio.DEVICE_SET_IRQS, bytes.fromhex(
        "14000000" "21000000" "02000000" "00000000" "00000000"))]
    bell.close()  # idempotent


def test_a_bus_master_already_on_is_left_alone(bound, monkeypatch):
    device, dev, folder = bound
    memory = bytearray((folder / "device").read_bytes())
    struct.pack_into("<H", memory, CONFIG_AT + 4, 0x0407)
    (folder / "device").write_bytes(memory)
    kernel = FakeKernel(folder / "device")
    with channel.Region.from_buffer(bytearray(64 * 1024)) as region:
        channel.init_region(region, "ring")
        bell = GuestDoorbell.open(device, dev=str(dev), ioctl=kernel)
        # A channel takes it like any doorbell; its word is in the table.
        with channel.Channel(region, 0, doorbell=bell, heartbeat=0,
                             owned=(bell,)) as chan:
            assert chan.doorbell is bell
            at = layout.SLOT_OFFSETS[0] + layout.SLOT_DOORBELL
            assert region.words[at // 8] == bell.word
    assert struct.unpack_from(
        "<H", (folder / "device").read_bytes(), CONFIG_AT + 4) == (0x0407,)


@pytest.mark.parametrize(("change", "message"), [
    ("no module", "0000:00:08.0: no {dev}/vfio/vfio (the vfio module is "
                  "not loaded)"),
    ("no group file", "0000:00:08.0: no {dev}/vfio/5 (vfio-pci does not "
                      "hold its group)"),
    ("not viable", "0000:00:08.0: IOMMU group 5 is not viable: bind every "
                   "device of the group to vfio-pci"),
    ("no vectors", "0000:00:08.0 has 0 MSI-X vectors, no vector 0"),
    ("not root", "0000:00:08.0: set interrupts: Operation not permitted "
                 "(root needed)"),
])
def test_what_is_missing_is_named(bound, change, message):
    device, dev, folder = bound
    options = {"not viable": {"viable": False},
               "no vectors": {"vectors": 0},
               "not root": {"fail": vfio.DEVICE_SET_IRQS}}.get(change, {})
    if change == "no module":
        (dev / "vfio" / "vfio").unlink()
    if change == "no group file":
        (dev / "vfio" / GROUP).unlink()
    kernel = FakeKernel(folder / "device", **options)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(ChannelError) as caught:
        GuestDoorbell.open(device, dev=str(dev), ioctl=kernel)
    assert str(caught.value) == message.format(dev=dev)
    if change in ("no module", "no group file", "not viable"):
        os.close(kernel.device_fd)  # never handed out
    # Every fd it opened is closed again (the fake's device fd too).
    assert set(os.listdir("/proc/self/fd")) <= before


def test_binding_writes_driver_override_and_probes(sysfs):  # noqa: F811
    """An unbound device is given to vfio-pci; when vfio-pci does not
    take it (no IOMMU group: the fake kernel never binds), that is the
    message."""
    pci = Path(sysfs) / "bus" / "pci"
    (pci / "drivers" / "vfio-pci").mkdir()
    (pci / "drivers_probe").write_text("")
    device = select_device(find_devices(sysfs), ACRN)
    with pytest.raises(ChannelError) as caught:
        GuestDoorbell.open(device, dev="/nonexistent")
    assert str(caught.value) == (
        "0000:00:08.0: vfio-pci did not take the device: no IOMMU (QEMU: "
        "-M q35 -device intel-iommu, kernel: intel_iommu=on) and no vfio "
        "enable_unsafe_noiommu_mode")
    assert (pci / "devices" / ACRN / "driver_override").read_text() == (
        "vfio-pci")
    assert (pci / "drivers_probe").read_text() == ACRN


def test_fallback_is_one_line_naming_what_is_missing(
        sysfs, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING)
    devices = find_devices(sysfs)
    for address in (PLAIN, BELL, ACRN):
        assert guest_doorbell(select_device(devices, address),
                              dev="/nonexistent") is None
    assert [record.getMessage() for record in caplog.records] == [
        "0000:00:09.0 has no MSI-X (ivshmem-plain?); polling instead of the "
        "doorbell",
        "0000:00:0a.0 is bound to uio_pci_generic, not vfio-pci; polling "
        "instead of the doorbell",
        "0000:00:08.0: the vfio-pci driver is not loaded (modules "
        "irqbypass, vfio, vfio_iommu_type1, vfio_virqfd, vfio-pci-core, "
        "vfio-pci); polling instead of the doorbell",
    ]
    caplog.clear()
    plain = select_device(devices, PLAIN)
    assert guest_doorbell(plain, "off") is None
    assert caplog.records == []
    with pytest.raises(ChannelError) as caught:
        guest_doorbell(plain, "on")
    assert str(caught.value) == "0000:00:09.0 has no MSI-X (ivshmem-plain?)"
    with pytest.raises(ChannelError) as caught:
        guest_doorbell(plain, "yes")
    assert str(caught.value) == "doorbell 'yes': give auto, on or off"


def test_open_guest_polls_after_one_line(sysfs, caplog):  # noqa: F811
    from acrn_ivshmem.channel import Region, init_region

    caplog.set_level(logging.WARNING)
    with Region.from_device(select_device(find_devices(sysfs),
                                          PLAIN)) as made:
        init_region(made, "plain")
    with channel.open_guest("plain", 1, sysfs=sysfs) as chan:
        assert chan.doorbell is None
    assert [record.getMessage() for record in caplog.records] == [
        "0000:00:09.0 has no MSI-X (ivshmem-plain?); polling instead of the "
        "doorbell"]
    with pytest.raises(ChannelError) as caught:
        channel.open_guest("plain", 1, sysfs=sysfs, doorbell="on")
    assert str(caught.value) == "0000:00:09.0 has no MSI-X (ivshmem-plain?)"
