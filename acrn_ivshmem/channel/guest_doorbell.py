"""The doorbell inside a guest: ivshmem-doorbell's BAR0 register to ring,
an MSI-X vector on an eventfd (through VFIO) to wait.

QEMU's ivshmem-doorbell (and ACRN's ivshmem) interrupts only by MSI-X,
and a guest program can only get an MSI-X interrupt from a driver. The
one in every distribution kernel that hands it to user space is
``vfio-pci`` (``uio_pci_generic`` handles INTx only). So
:meth:`GuestDoorbell.open` needs:

- a device with MSI-X (BAR1): ivshmem-doorbell, not ivshmem-plain;
- the modules irqbypass, vfio, vfio_iommu_type1, vfio_virqfd,
  vfio-pci-core and vfio-pci loaded (``modprobe vfio-pci``);
- an IOMMU for vfio's group (in a QEMU guest: ``-M q35 -device
  intel-iommu`` and ``intel_iommu=on``), or vfio's no-IOMMU mode;
- root (to bind the device and open ``/dev/vfio``).

It binds the device to vfio-pci when no driver has it, sets Bus Master
Enable (vfio-pci leaves it off, and QEMU drops the MSI-X message of a
device without it), and routes the vector to an eventfd. Its
:attr:`word` carries the device's IVPosition (its peer id at the ivshmem
server); :meth:`ring` writes ``peer << 16 | vector`` to the Doorbell
register (BAR0 offset 12).
"""

from __future__ import annotations

import fcntl
import logging
import os
import select

from .errors import ChannelError
from .layout import DOORBELL_PRESENT
from .vfio import (
    BAR0_REGION, CONFIG_REGION, MSIX_IRQ, VfioDevice, irq_set_eventfd,
    irq_set_none,
)

__all__ = ["GuestDoorbell", "guest_doorbell"]

log = logging.getLogger(__name__)

_PCI_COMMAND = 0x4
_BUS_MASTER = 0x4


class GuestDoorbell:
    """This guest's ivshmem-doorbell: ring a peer through BAR0, wait on
    an MSI-X vector's eventfd. Same shape as
    :class:`~acrn_ivshmem.channel.ServerDoorbell`: :attr:`word`,
    :meth:`ring`, :meth:`wait`, :meth:`fileno`, :meth:`close`.
    """

    def __init__(self, vfio: VfioDevice, vector: int, eventfd: int,
                 position: int, register: int):
        self._vfio = vfio
        self._register = register  # the Doorbell register's BAR0 offset
        self._vector = vector
        self._eventfd = eventfd
        #: This device's IVPosition: its peer id at the ivshmem server.
        self.id = position
        #: How many times :meth:`wait` was woken by an interrupt.
        self.interrupts = 0
        self.where = f"ivshmem device {vfio.address}"

    @classmethod
    def open(cls, device, vector: int = 0, *, dev: str = "/dev",
             ioctl=fcntl.ioctl) -> GuestDoorbell:
        """The doorbell of ``device`` (an
        :class:`acrn_ivshmem.guest.IvshmemDevice`), waiting on MSI-X
        vector ``vector``. Raises :class:`ChannelError` naming what is
        missing (see the module's documentation)."""
        from .. import guest  # the register offsets

        if not device.has_msix:
            raise ChannelError(f"{device.address} has no MSI-X "
                               "(ivshmem-plain?)")
        vfio = VfioDevice.open(device.address, device.path, dev=dev,
                               ioctl=ioctl)
        eventfd = -1
        try:
            count = vfio.irq_count(MSIX_IRQ)
            if vector >= count:
                raise ChannelError(f"{device.address} has {count} MSI-X "
                                   f"vectors, no vector {vector}")
            command = vfio.read(CONFIG_REGION, _PCI_COMMAND, 2)
            if not command & _BUS_MASTER:
                vfio.write(CONFIG_REGION, _PCI_COMMAND, 2,
                           command | _BUS_MASTER)
            eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            vfio.set_irqs(irq_set_eventfd(MSIX_IRQ, vector, [eventfd]))
            position = vfio.read(BAR0_REGION, guest.REG_IV_POSITION, 4)
        except BaseException:
            if eventfd >= 0:
                os.close(eventfd)
            vfio.close()
            raise
        return cls(vfio, vector, eventfd, position, guest.REG_DOORBELL)

    @property
    def word(self) -> int:
        """This side's doorbell word for the state table."""
        return DOORBELL_PRESENT | (self.id & 0xFFFF) << 16 | self._vector

    def ring(self, word: int) -> bool:
        """Interrupt the peer whose doorbell word is ``word``."""
        self._vfio.write(BAR0_REGION, self._register, 4,
                         word & 0xFFFF_FFFF)
        return True

    def wait(self, seconds: float) -> bool:
        """Block until this side is rung (True) or ``seconds`` pass."""
        if not select.select([self._eventfd], [], [], max(0.0, seconds))[0]:
            return False
        try:
            os.eventfd_read(self._eventfd)
        except BlockingIOError:
            pass
        self.interrupts += 1
        return True

    def fileno(self) -> int:
        """The eventfd the MSI-X vector signals."""
        return self._eventfd

    def close(self) -> None:
        """Route the vector nowhere and close every fd (idempotent)."""
        if self._eventfd < 0:
            return
        try:
            self._vfio.set_irqs(irq_set_none(MSIX_IRQ))
        except ChannelError:
            pass  # closing the device fd turns it off too
        os.close(self._eventfd)
        self._eventfd = -1
        self._vfio.close()


def guest_doorbell(device, mode: str = "auto", *, dev: str = "/dev",
                   ioctl=fcntl.ioctl) -> GuestDoorbell | None:
    """``device``'s :class:`GuestDoorbell`, or None to poll.

    ``mode``: ``"auto"`` falls back to polling with one warning line
    naming what is missing; ``"on"`` raises :class:`ChannelError`
    instead; ``"off"`` polls without a word.
    """
    if mode == "off":
        return None
    if mode not in ("auto", "on"):
        raise ChannelError(f"doorbell {mode!r}: give auto, on or off")
    try:
        return GuestDoorbell.open(device, dev=dev, ioctl=ioctl)
    except ChannelError as exc:
        if mode == "on":
            raise
        log.warning("%s; polling instead of the doorbell", exc)
        return None
