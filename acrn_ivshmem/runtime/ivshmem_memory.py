"""The shared memory an ivshmem server hands its peers.

An anonymous memfd; a named file (``/dev/shm/NAME`` as QEMU's
ivshmem-server ``-M`` makes, or any folder's), which outlives the
server so that ``memory-backend-file`` users and the host can map it
too; or an unnamed file in a folder, a hugetlbfs mount say, as QEMU's
ivshmem-server ``-m`` makes. A size the host cannot back is refused
before anything is created: more than its RAM and swap (a memfd), more
than the folder's file system holds, or, on hugetlbfs, not a multiple
of its page size or more than the huge page pool.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile

from ..errors import UsageError
from ..shm import size_text
from ..units import MIB

__all__ = ["open_memory"]

_PAGE = 4096


def open_memory(size: int, path: str | None, folder: str | None) -> int:
    """An fd of ``size`` bytes of shared memory: the file ``path`` if
    given (created if missing; an existing one must have that size),
    else an unnamed file in ``folder`` if given, else a memfd.

    Raises :class:`UsageError` with one line for what cannot be done.
    """
    check_room(size, path, folder)
    if path is not None:
        fd = _open_named(path, size)
    elif folder is not None:
        fd = _open_unnamed(folder)
    else:
        fd = os.memfd_create("ivshmem", os.MFD_CLOEXEC)
    try:
        if os.fstat(fd).st_size == 0:
            os.ftruncate(fd, size)
    except OSError as exc:
        os.close(fd)
        raise UsageError(
            f"{path or folder or 'memfd'}: cannot make shared memory of "
            f"{size_text(size)}: {exc.strerror}") from None
    return fd


def check_room(size: int, path: str | None, folder: str | None) -> None:
    """Refuse a ``size`` the host cannot back (see :func:`open_memory`
    for ``path`` and ``folder``); sizes past what ``ftruncate`` takes
    are refused so too."""
    if path is None and folder is None:
        room = _ram_and_swap()
        if room is not None and size > room:
            raise UsageError(
                f"shared memory of {size_text(size)} is more than the "
                f"{room // MIB} MiB of RAM and swap this host has")
        return
    folder = folder or os.path.dirname(path)
    try:
        info = os.statvfs(folder)
    except OSError as exc:
        raise UsageError(f"{folder}: {exc.strerror}") from None
    pool = _huge_page_pool(info.f_bsize)
    if pool is not None and size % info.f_bsize:
        raise UsageError(
            f"{folder}: its huge pages are {size_text(info.f_bsize)}; "
            f"shared memory of {size_text(size)} must be a multiple")
    if info.f_blocks:
        room = info.f_blocks * info.f_frsize
        if size > room:
            raise UsageError(
                f"{folder}: shared memory of {size_text(size)} is more "
                f"than the {room // MIB} MiB it can hold")
    elif pool is not None and size > pool * info.f_bsize:
        raise UsageError(
            f"{folder}: shared memory of {size_text(size)} is more than "
            f"the {pool} huge page(s) of {size_text(info.f_bsize)} the "
            "host has (nr_hugepages + nr_overcommit_hugepages)")


def _open_named(path: str, size: int) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UsageError(f"{path}: cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path}: not a regular file")
        if info.st_size not in (0, size):
            raise UsageError(
                f"{path}: is {size_text(info.st_size)}, not the "
                f"{size_text(size)} asked for")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_unnamed(folder: str) -> int:
    """A new file in ``folder`` that no name reaches."""
    try:
        try:
            return os.open(folder, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC,
                           0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR):
                raise
        # No O_TMPFILE there: a fresh name, unlinked at once.
        fd, name = tempfile.mkstemp(prefix="ivshmem.", dir=folder)
        os.unlink(name)
        return fd
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create shared memory there: "
                         f"{exc.strerror}") from None


def _ram_and_swap() -> int | None:
    """Bytes of RAM and swap (what can back a memfd), or None."""
    total = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                name, _, value = line.partition(":")
                if name in ("MemTotal", "SwapTotal"):
                    total += int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return total or None


def _huge_page_pool(page: int) -> int | None:
    """How many huge pages of ``page`` bytes the host may hand out
    (``nr_hugepages + nr_overcommit_hugepages``); None if ``page`` is
    no huge page size (a folder that is not hugetlbfs)."""
    if page <= _PAGE:
        return None
    folder = f"/sys/kernel/mm/hugepages/hugepages-{page // 1024}kB"
    pool = 0
    for name in ("nr_hugepages", "nr_overcommit_hugepages"):
        try:
            with open(os.path.join(folder, name), encoding="ascii") as file:
                pool += int(file.read())
        except (OSError, ValueError):
            return None
    return pool
