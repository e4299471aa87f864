"""Shared memory that holds (or will hold) a channel, however mapped.

A :class:`Region` is a writable buffer: a host file (a QEMU
``memory-backend-file`` such as ``/dev/shm/NAME``), an fd (the ivshmem
server's memory), a guest's BAR2 (``resource2`` in sysfs), or any
``bytearray`` (tests). :func:`init_region` writes a channel header into
it; :func:`find_guest_region` opens, inside a guest, the ivshmem device
whose header carries a name.

Counters and state words are read and written through :attr:`words`, a
memoryview of the first page cast to ``'Q'``: CPython turns an item
access of such a view into one aligned 8-byte load or store (see
docs/channel-format.md, "Memory ordering").
"""

from __future__ import annotations

import mmap
import os
import stat

from ..errors import quoted
from . import layout
from .errors import ChannelError
from .layout import Header

__all__ = ["Region", "find_guest_device", "find_guest_region",
           "init_region"]

_MAGIC_WORD = int.from_bytes(layout.MAGIC, "little")


class Region:
    """A writable mapping of shared memory.

    ``where`` names it in messages (a path, a PCI address). ``size`` is
    the bytes mapped; :attr:`view` a byte memoryview of all of them;
    :attr:`words` the first :data:`~layout.HEADER_SIZE` bytes as 8-byte
    words. :meth:`close` (or leaving a ``with``) unmaps it; close every
    channel on it first.
    """

    def __init__(self, buffer, where: str, *, owner=None):
        self.view = memoryview(buffer)
        if self.view.readonly:
            self.view.release()
            raise ChannelError(f"{where}: the memory is mapped read-only")
        self.where = where
        self.size = self.view.nbytes
        self.words = (self.view[:layout.HEADER_SIZE].cast("Q")
                      if self.size >= layout.HEADER_SIZE else None)
        self._owner = owner

    # -- opening -------------------------------------------------------

    @classmethod
    def from_buffer(cls, buffer, where: str = "buffer") -> Region:
        """A region over a writable buffer (a ``bytearray``, an mmap)."""
        return cls(buffer, where)

    @classmethod
    def from_fd(cls, fd: int, size: int, where: str) -> Region:
        """Map ``size`` bytes of ``fd`` shared, read and write."""
        try:
            mapped = mmap.mmap(fd, size, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as exc:
            raise ChannelError(f"{where}: cannot map {size} bytes: "
                               f"{exc}") from None
        return cls(mapped, where, owner=mapped)

    @classmethod
    def open_file(cls, path: str | os.PathLike,
                  create_size: int | None = None) -> Region:
        """Map the whole of the regular file ``path``.

        With ``create_size``, a missing or empty file is created (mode
        0600) or grown to that many bytes first, as a QEMU backing file
        would be. Raises :class:`ChannelError`.
        """
        where = os.fspath(path)
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        if create_size is not None:
            flags |= os.O_CREAT
        try:
            fd = os.open(where, flags, 0o600)
        except OSError as exc:
            raise ChannelError(f"{where}: cannot open: "
                               f"{exc.strerror}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ChannelError(f"{where}: not a regular file")
            size = info.st_size
            if size == 0 and create_size is not None:
                os.ftruncate(fd, create_size)
                size = create_size
            if size == 0:
                raise ChannelError(f"{where}: the file is empty")
            return cls.from_fd(fd, size, where)
        finally:
            os.close(fd)

    @classmethod
    def from_device(cls, device) -> Region:
        """Inside a guest: BAR2 of an ivshmem device (an
        :class:`acrn_ivshmem.guest.IvshmemDevice`), mapped read-write
        (root needed), header or not: the way for the first guest to
        initialise a region it picked by address or region id."""
        path = os.path.join(device.path, "resource2")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ChannelError(f"cannot open {path}: {exc.strerror} (root "
                               "needed?)") from None
        try:
            return cls.from_fd(fd, device.shm_size, device.address)
        finally:
            os.close(fd)

    # -- access --------------------------------------------------------

    def header(self) -> Header:
        """The region's checked channel header (raises
        :class:`ChannelError`, :class:`CorruptRegion`)."""
        if self.words is None:
            raise ChannelError(f"{self.where}: {self.size} bytes is too "
                               "small for a channel")
        # The magic first, in one load: the fields copied after it are at
        # least as new as the store that published it.
        magic = self.words[0].to_bytes(8, "little")
        data = magic + bytes(self.view[8:layout.HEADER_BYTES])
        return layout.parse_header(data, self.size, self.where)

    def close(self) -> None:
        """Release the views and unmap (idempotent)."""
        if self.words is not None:
            self.words.release()
            self.words = None
        self.view.release()
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def __enter__(self) -> Region:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def init_region(region: Region, name: str, *, force: bool = False,
                rings=None) -> Header:
    """Write a fresh channel header named ``name`` into ``region``.

    Every counter and state slot becomes zero, so both rings are empty
    and both peers free. The magic is stored last, in one 8-byte store,
    so that a peer never sees a half-written header as valid. Refuses
    (:class:`ChannelError`) a region with a valid header and an
    attached peer unless ``force``. ``rings`` overrides the default
    equal split: ((offset, capacity), (offset, capacity)).
    """
    if region.words is None:
        raise ChannelError(f"{region.where}: {region.size} bytes is too "
                           "small for a channel")
    encoded = layout.encode_header(name, region.size, rings)
    if not force:
        _refuse_attached(region)
    words = region.words
    words[0] = 0
    region.view[8:layout.HEADER_BYTES] = encoded[8:]
    region.view[layout.HEADER_BYTES:layout.HEADER_SIZE] = bytes(
        layout.HEADER_SIZE - layout.HEADER_BYTES)
    words[0] = _MAGIC_WORD
    return region.header()


def _refuse_attached(region: Region) -> None:
    try:
        header = region.header()
    except ChannelError:
        return  # no channel yet, or a broken one: nothing to protect
    for peer, slot in enumerate(layout.SLOT_OFFSETS):
        status = region.words[(slot + layout.SLOT_STATUS) // 8]
        if status & 0xFF == layout.ATTACHED:
            raise ChannelError(
                f"{region.where}: peer {peer} of channel "
                f"{quoted(header.name)} is attached (epoch "
                f"{status >> 8}); stop it, or initialise with force")


def find_guest_device(name: str, sysfs: str = "/sys"):
    """Inside a guest: the ivshmem device (an
    :class:`acrn_ivshmem.guest.IvshmemDevice`) whose BAR2 holds the
    channel header named ``name`` (root needed).

    Scans every 1af4:1110 PCI function (:func:`acrn_ivshmem.guest.
    find_devices`) and reads each BAR2 header; devices without one are
    skipped. Raises :class:`ChannelError` when none or several match.
    """
    from .. import guest

    layout.check_name(name)
    seen = []
    matches = []
    for device in guest.find_devices(sysfs):
        if device.shm_size < layout.MIN_REGION:
            seen.append(f"{device.address} (too small)")
            continue
        data = guest.read_shm(device, 0, layout.HEADER_BYTES)
        try:
            header = layout.parse_header(data, device.shm_size,
                                         device.address)
        except ChannelError:
            seen.append(f"{device.address} (no channel)")
            continue
        seen.append(f"{device.address} ({quoted(header.name)})")
        if header.name == name:
            matches.append(device)
    listed = ", ".join(seen) or "none"
    if len(matches) != 1:
        how = "no" if not matches else "more than one"
        raise ChannelError(f"{how} ivshmem device holds channel "
                           f"{quoted(name)}; devices: {listed}")
    return matches[0]


def find_guest_region(name: str, sysfs: str = "/sys") -> Region:
    """Inside a guest: BAR2 of :func:`find_guest_device`'s device,
    mapped read-write (root needed)."""
    return Region.from_device(find_guest_device(name, sysfs))
