"""A PCI device through Linux VFIO, standard library only.

What the guest doorbell needs from VFIO: bind a device to ``vfio-pci``
(``driver_override`` and ``drivers_probe`` in sysfs), open its group in a
container, then read and write its config space and BAR0 through the
device fd, and route one MSI-X vector to an eventfd
(``VFIO_DEVICE_SET_IRQS``). The ioctl numbers and structures are those
of the kernel's ``linux/vfio.h`` (a stable ABI); every argument is packed
with :mod:`struct` in native byte order and passed to
:func:`fcntl.ioctl` as a mutable buffer, so that the call's return value
(an fd, a version) comes back as well as the filled-in structure.

A group needs an IOMMU (in a QEMU guest: ``-M q35 -device intel-iommu``
and the kernel parameter ``intel_iommu=on``) or ``vfio`` loaded with
``enable_unsafe_noiommu_mode=1`` (a kernel built with
``CONFIG_VFIO_NOIOMMU``; Debian's is not).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from .errors import ChannelError

__all__ = [
    "VfioDevice", "VfioError", "irq_set_eventfd", "irq_set_none",
]

# linux/vfio.h: _IO(VFIO_TYPE, VFIO_BASE + n), VFIO_TYPE is ';'.
_VFIO_TYPE = ord(";")
_VFIO_BASE = 100


def _io(number: int) -> int:
    return _VFIO_TYPE << 8 | (_VFIO_BASE + number)


GET_API_VERSION = _io(0)
CHECK_EXTENSION = _io(1)
SET_IOMMU = _io(2)
GROUP_GET_STATUS = _io(3)
GROUP_SET_CONTAINER = _io(4)
GROUP_GET_DEVICE_FD = _io(6)
DEVICE_GET_REGION_INFO = _io(8)
DEVICE_GET_IRQ_INFO = _io(9)
DEVICE_SET_IRQS = _io(10)

API_VERSION = 0
TYPE1_IOMMU = 1
NOIOMMU_IOMMU = 8
GROUP_FLAGS_VIABLE = 1 << 0
IRQ_SET_DATA_NONE = 1 << 0
IRQ_SET_DATA_EVENTFD = 1 << 2
IRQ_SET_ACTION_TRIGGER = 1 << 5
#: Region and interrupt indexes of a vfio-pci device.
BAR0_REGION = 0
CONFIG_REGION = 7
MSIX_IRQ = 2

_GROUP_STATUS = struct.Struct("=II")          # argsz, flags
_REGION_INFO = struct.Struct("=IIIIQQ")       # argsz, flags, index,
#                                               cap_offset, size, offset
_IRQ_INFO = struct.Struct("=IIII")            # argsz, flags, index, count
_IRQ_SET = struct.Struct("=IIIII")            # argsz, flags, index, start,
#                                               count; then the data
_DRIVER = "vfio-pci"


class VfioError(ChannelError):
    """What VFIO lacks for a device, as one line (the module, the IOMMU,
    root)."""


def irq_set_eventfd(index: int, start: int, fds) -> bytearray:
    """``struct vfio_irq_set`` that routes vectors ``start``... of
    interrupt ``index`` to the eventfds ``fds``."""
    data = struct.pack(f"={len(fds)}i", *fds)
    return bytearray(_IRQ_SET.pack(
        _IRQ_SET.size + len(data),
        IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER, index, start,
        len(fds)) + data)


def irq_set_none(index: int) -> bytearray:
    """``struct vfio_irq_set`` that turns interrupt ``index`` off."""
    return bytearray(_IRQ_SET.pack(
        _IRQ_SET.size, IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER, index,
        0, 0))


def _read_link(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{exc.strerror} (root needed)"
    return exc.strerror or str(exc)


class VfioDevice:
    """One PCI function opened through VFIO (container, group, device
    fds). :meth:`open` binds and opens it; :meth:`close` closes the fds
    (the device stays bound to ``vfio-pci``).

    ``ioctl`` is :func:`fcntl.ioctl` (tests pass a fake one).
    """

    def __init__(self, address: str, ioctl=fcntl.ioctl):
        self.address = address
        self._ioctl = ioctl
        self._fds: list[int] = []
        self.device_fd = -1
        self._regions: dict[int, int] = {}

    @classmethod
    def open(cls, address: str, sysfs_path: str, *, dev: str = "/dev",
             ioctl=fcntl.ioctl) -> VfioDevice:
        """Bind the function at ``sysfs_path`` (``.../devices/ADDRESS``)
        to ``vfio-pci`` if no driver has it, and open it under ``dev``.
        Raises :class:`VfioError` naming what is missing."""
        group = _bind(address, sysfs_path)
        self = cls(address, ioctl)
        try:
            self._open(group, dev)
        except BaseException:
            self.close()
            raise
        return self

    def _call(self, fd: int, request: int, arg, what: str) -> int:
        try:
            return self._ioctl(fd, request, arg, True)
        except OSError as exc:
            raise VfioError(f"{self.address}: {what}: {_why(exc)}"
                            ) from None

    def _open_fd(self, path: str, hint: str) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise VfioError(f"{self.address}: no {path} ({hint})") from None
        except OSError as exc:
            raise VfioError(f"{self.address}: cannot open {path}: "
                            f"{_why(exc)}") from None
        self._fds.append(fd)
        return fd

    def _open(self, group: str, dev: str) -> None:
        container = self._open_fd(os.path.join(dev, "vfio", "vfio"),
                                  "the vfio module is not loaded")
        version = self._call(container, GET_API_VERSION, 0, "API version")
        if version != API_VERSION:
            raise VfioError(f"{self.address}: VFIO API version {version}, "
                            f"not {API_VERSION}")
        noiommu = os.path.exists(os.path.join(dev, "vfio",
                                              f"noiommu-{group}"))
        kind = NOIOMMU_IOMMU if noiommu else TYPE1_IOMMU
        if self._call(container, CHECK_EXTENSION, kind,
                      "IOMMU type") != 1:
            raise VfioError(f"{self.address}: VFIO lacks the "
                            + ("no-IOMMU mode" if noiommu else
                               "type 1 IOMMU (vfio_iommu_type1 not "
                               "loaded?)"))
        name = f"noiommu-{group}" if noiommu else group
        group_fd = self._open_fd(os.path.join(dev, "vfio", name),
                                 "vfio-pci does not hold its group")
        status = bytearray(_GROUP_STATUS.pack(_GROUP_STATUS.size, 0))
        self._call(group_fd, GROUP_GET_STATUS, status, "group status")
        if not _GROUP_STATUS.unpack(status)[1] & GROUP_FLAGS_VIABLE:
            raise VfioError(f"{self.address}: IOMMU group {group} is not "
                            "viable: bind every device of the group to "
                            "vfio-pci")
        self._call(group_fd, GROUP_SET_CONTAINER,
                   bytearray(struct.pack("=i", container)), "set container")
        self._call(container, SET_IOMMU, kind, "set IOMMU")
        self.device_fd = self._call(
            group_fd, GROUP_GET_DEVICE_FD,
            bytearray(self.address.encode("ascii") + b"\0"), "device fd")
        self._fds.append(self.device_fd)

    # -- regions and interrupts -----------------------------------------

    def region_offset(self, index: int) -> int:
        """Where region ``index`` (a BAR, the config space) starts in the
        device fd."""
        if index not in self._regions:
            info = bytearray(_REGION_INFO.pack(_REGION_INFO.size, 0, index,
                                               0, 0, 0))
            self._call(self.device_fd, DEVICE_GET_REGION_INFO, info,
                       f"region {index}")
            self._regions[index] = _REGION_INFO.unpack(info)[5]
        return self._regions[index]

    def read(self, index: int, offset: int, size: int) -> int:
        """A ``size``-byte little-endian value at ``offset`` of region
        ``index`` (one access of that size)."""
        at = self.region_offset(index) + offset
        try:
            data = os.pread(self.device_fd, size, at)
        except OSError as exc:
            raise VfioError(f"{self.address}: read region {index}: "
                            f"{_why(exc)}") from None
        return int.from_bytes(data, "little")

    def write(self, index: int, offset: int, size: int, value: int) -> None:
        """Write a ``size``-byte value at ``offset`` of region ``index``."""
        at = self.region_offset(index) + offset
        try:
            os.pwrite(self.device_fd, value.to_bytes(size, "little"), at)
        except OSError as exc:
            raise VfioError(f"{self.address}: write region {index}: "
                            f"{_why(exc)}") from None

    def irq_count(self, index: int) -> int:
        """How many vectors interrupt ``index`` (:data:`MSIX_IRQ`) has."""
        info = bytearray(_IRQ_INFO.pack(_IRQ_INFO.size, 0, index, 0))
        self._call(self.device_fd, DEVICE_GET_IRQ_INFO, info,
                   f"interrupt {index}")
        return _IRQ_INFO.unpack(info)[3]

    def set_irqs(self, arg: bytearray) -> None:
        """``VFIO_DEVICE_SET_IRQS`` with ``arg`` (:func:`irq_set_eventfd`,
        :func:`irq_set_none`)."""
        self._call(self.device_fd, DEVICE_SET_IRQS, arg, "set interrupts")

    def close(self) -> None:
        """Close the device, group and container fds (idempotent)."""
        for fd in reversed(self._fds):
            os.close(fd)
        self._fds = []
        self.device_fd = -1


def _bind(address: str, path: str) -> str:
    """Bind the function at ``path`` to vfio-pci (if no driver has it);
    return its IOMMU group's number."""
    driver = _read_link(os.path.join(path, "driver"))
    pci = os.path.dirname(os.path.dirname(path))  # .../bus/pci
    if driver is None:
        if not os.path.isdir(os.path.join(pci, "drivers", _DRIVER)):
            raise VfioError(f"{address}: the vfio-pci driver is not loaded "
                            "(modules irqbypass, vfio, vfio_iommu_type1, "
                            "vfio_virqfd, vfio-pci-core, vfio-pci)")
        try:
            with open(os.path.join(path, "driver_override"), "w",
                      encoding="ascii") as file:
                file.write(_DRIVER)
            with open(os.path.join(pci, "drivers_probe"), "w",
                      encoding="ascii") as file:
                file.write(address)
        except OSError as exc:
            raise VfioError(f"{address}: cannot bind vfio-pci: "
                            f"{_why(exc)}") from None
        driver = _read_link(os.path.join(path, "driver"))
        if driver is None:
            raise VfioError(
                f"{address}: vfio-pci did not take the device: no IOMMU "
                "(QEMU: -M q35 -device intel-iommu, kernel: intel_iommu=on)"
                " and no vfio enable_unsafe_noiommu_mode")
    if driver != _DRIVER:
        raise VfioError(f"{address} is bound to {driver}, not vfio-pci")
    group = _read_link(os.path.join(path, "iommu_group"))
    if group is None:
        raise VfioError(f"{address}: no IOMMU group")
    return group
