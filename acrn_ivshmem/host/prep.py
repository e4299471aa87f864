"""Prepare this host for a QEMU plan: its backing files and huge pages.

:func:`host_prep` creates or checks the backing file of each device of a
:class:`~acrn_ivshmem.plan.qemu.QemuPlan` (``acrn-shm host-prep``), and
checks the hugetlbfs mount and the free huge pages when the plan uses
them. Nothing outside the backing files is changed: what needs root is
returned as shell commands.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
from dataclasses import dataclass
from enum import Enum

from ..plan.qemu import QemuPlan, ShmDevice
from ..shm import Mount, meminfo, mount_of, size_text
from ..units import MIB

__all__ = ["PrepItem", "PrepReport", "PrepStatus", "host_prep"]


class PrepStatus(str, Enum):
    """What :func:`host_prep` found or did for one subject."""

    OK = "ok"
    CREATED = "created"
    GROWN = "grown"
    WARNING = "warning"
    NEEDS_ROOT = "needs-root"
    PROBLEM = "problem"


@dataclass(frozen=True)
class PrepItem:
    """One finding or action: its subject (a path, or ``hugepages``),
    status and a one-line message."""

    subject: str
    status: PrepStatus
    message: str


@dataclass(frozen=True)
class PrepReport:
    """The result of :func:`host_prep`.

    ``commands`` are the exact shell commands (quoted) that would
    finish the job with more rights (run them as root), in order.
    """

    items: tuple[PrepItem, ...]
    commands: tuple[str, ...]

    @property
    def ready(self) -> bool:
        """True when nothing is left to do or fix."""
        return not self.commands and all(
            item.status not in (PrepStatus.PROBLEM, PrepStatus.NEEDS_ROOT)
            for item in self.items)


def host_prep(plan: QemuPlan, *, create: bool = True, mode: int = 0o660,
              proc: str = "/proc", sysfs: str = "/sys") -> PrepReport:
    """Create or check the backing files of ``plan``.

    A missing file is created with ``mode`` and the plan's size (with
    ``create`` False only reported, with the commands to do it). A
    smaller file is grown, unless a process maps or holds it open; a
    larger one is left alone (QEMU accepts it). Files are never
    shrunk, truncated or followed through symlinks. With huge pages
    (asked for, or ``shm_dir`` on hugetlbfs) the mount and the free
    huge pages are checked too. Nothing outside the backing files is
    changed: what needs root (mounts, ``nr_hugepages``, someone else's
    files) is returned as ``commands``. ``proc``/``sysfs`` are the
    procfs and sysfs to read (tests).
    """
    prep = _Prep(plan, create, mode, proc, sysfs)
    prep.run()
    return PrepReport(tuple(prep.items), tuple(prep.commands))


class _Prep:
    def __init__(self, plan: QemuPlan, create: bool, mode: int, proc: str,
                 sysfs: str):
        self.plan = plan
        self.create = create
        self.mode = mode
        self.proc = proc
        self.sysfs = sysfs
        self.items: list[PrepItem] = []
        self.commands: list[str] = []
        self.new_bytes = 0

    def add(self, subject: str, status: PrepStatus, message: str,
            *commands: list[str]):
        self.items.append(PrepItem(subject, status, message))
        for command in commands:
            line = shlex.join(command)
            if line not in self.commands:
                self.commands.append(line)

    def run(self):
        files = [device for device in self.plan.devices
                 if device.mem_path is not None]
        if not files:
            self.add("plan", PrepStatus.OK, "no backing file: the ivshmem "
                     "server owns the memory")
            return
        mount = mount_of(self.plan.shm_dir, self.proc)
        huge = mount is not None and mount.fstype == "hugetlbfs"
        # Commands get absolute paths: a relative '-x' is no option.
        directory = os.path.abspath(self.plan.shm_dir)
        if self.plan.hugepages and not huge:
            self.add(self.plan.shm_dir, PrepStatus.PROBLEM,
                     "huge pages asked for, but this is not a hugetlbfs "
                     "mount", ["mkdir", "-p", directory],
                     ["mount", "-t", "hugetlbfs", "-o", "pagesize=2M",
                      "none", directory])
            return
        if not os.path.isdir(self.plan.shm_dir):
            self.add(self.plan.shm_dir, PrepStatus.PROBLEM,
                     "the shm directory does not exist",
                     ["mkdir", "-p", directory])
            return
        users = _file_users(self.proc)
        for device in files:
            self.file(device, users)
        if huge:
            self.hugepages(mount)
        else:
            self.space(files)

    def space(self, files: list[ShmDevice]):
        # tmpfs allocates on first touch: a full one kills QEMU (SIGBUS).
        missing = 0
        for device in files:
            try:
                used = os.lstat(device.mem_path).st_blocks * 512
            except OSError:
                used = 0
            missing += max(device.size_mb * MIB - used, 0)
        try:
            info = os.statvfs(self.plan.shm_dir)
        except OSError:
            return
        free = info.f_bavail * info.f_frsize
        if free < missing:
            self.add(self.plan.shm_dir, PrepStatus.WARNING,
                     f"{size_text(free)} free, but the regions may take "
                     f"{size_text(missing)} more once written")

    def file(self, device: ShmDevice, users: dict[tuple[int, int], set]):
        path = device.mem_path
        size = device.size_mb * MIB
        make = [["truncate", "-s", f"{device.size_mb}M",
                 os.path.abspath(path)],
                ["chmod", f"{self.mode:o}", os.path.abspath(path)]]
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            self.new_bytes += size
            if not self.create:
                self.add(path, PrepStatus.PROBLEM, "missing", *make)
                return
            self.make(path, size, make)
            return
        if not stat.S_ISREG(info.st_mode):
            self.add(path, PrepStatus.PROBLEM,
                     "exists but is not a regular file (a symlink or "
                     "device?); remove it or choose another name")
            return
        holders = users.get((info.st_dev, info.st_ino), set())
        if info.st_size < size:
            if holders:
                self.add(path, PrepStatus.PROBLEM,
                         f"is {size_text(info.st_size)}, smaller than "
                         f"{device.size_mb} MiB, but in use by "
                         f"{_pids(holders)}; not resized (QEMU refuses a "
                         "smaller file)")
                return
            self.new_bytes += size - info.st_size
            if not self.create:
                self.add(path, PrepStatus.PROBLEM,
                         f"is {size_text(info.st_size)}, smaller than "
                         f"{device.size_mb} MiB", make[0])
                return
            self.grow(path, info, size, make)
            return
        status, note, commands = self.check_mode(path, info)
        if info.st_size > size:
            status = (PrepStatus.WARNING if status is PrepStatus.OK
                      else status)
            note = (f"is {size_text(info.st_size)}, larger than the "
                    f"{device.size_mb} MiB asked: QEMU uses the start of "
                    f"it; left as is; {note}")
        else:
            note = f"{size_text(info.st_size)}, {note}"
        if holders:
            note += f"; in use by {_pids(holders)}"
        self.add(path, status, note, *commands)

    def make(self, path: str, size: int, make: list[list[str]]):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL
                         | os.O_NOFOLLOW | os.O_CLOEXEC, self.mode)
        except PermissionError:
            self.add(path, PrepStatus.NEEDS_ROOT, "missing, and no right "
                     "to create it", *make)
            return
        except OSError as exc:
            self.add(path, PrepStatus.PROBLEM,
                     f"cannot create: {exc.strerror}")
            return
        try:
            os.fchmod(fd, self.mode)  # the umask narrowed os.open's mode
            os.ftruncate(fd, size)
        except OSError as exc:
            os.close(fd)
            os.unlink(path)
            self.add(path, PrepStatus.PROBLEM,
                     f"cannot give it {size // MIB} MiB: {exc.strerror}")
            return
        os.close(fd)
        self.add(path, PrepStatus.CREATED,
                 f"{size // MIB} MiB, mode {self.mode:o}")

    def grow(self, path: str, info: os.stat_result, size: int,
             make: list[list[str]]):
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except PermissionError:
            self.add(path, PrepStatus.NEEDS_ROOT,
                     f"is {size_text(info.st_size)}, smaller than "
                     f"{size // MIB} MiB, and not writable", make[0])
            return
        try:
            now = os.fstat(fd)
            # Only grow the very file that was checked (no swap-in).
            if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino) or (
                    now.st_size >= size):
                self.add(path, PrepStatus.PROBLEM,
                         "changed while being checked; run again")
                return
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        self.add(path, PrepStatus.GROWN,
                 f"from {size_text(info.st_size)} to {size // MIB} MiB")

    def check_mode(self, path: str, info: os.stat_result
                   ) -> tuple[PrepStatus, str, list[list[str]]]:
        """Widen the file's mode to include ``self.mode`` if needed."""
        mode = stat.S_IMODE(info.st_mode)
        if mode & self.mode == self.mode:
            return PrepStatus.OK, f"mode {mode:o}", []
        wanted = mode | self.mode
        try:
            os.chmod(path, wanted, follow_symlinks=False)
        except PermissionError:
            return (PrepStatus.NEEDS_ROOT,
                    f"mode {mode:o} lacks {self.mode:o} and the file "
                    f"belongs to uid {info.st_uid}",
                    [["chmod", f"{wanted:o}", os.path.abspath(path)]])
        return PrepStatus.OK, f"mode {mode:o} widened to {wanted:o}", []

    def hugepages(self, mount: Mount):
        info = meminfo(self.proc)
        default = info.get("Hugepagesize")
        page = mount.page_size or default
        if not page:
            self.add("hugepages", PrepStatus.WARNING,
                     "cannot tell the huge page size")
            return
        needed = -(-self.new_bytes // page)
        if page == default:
            free = info.get("HugePages_Free", 0)
            total_path = posixpath.join(self.proc, "sys/vm/nr_hugepages")
            shown_total = "/proc/sys/vm/nr_hugepages"
        else:
            base = posixpath.join(
                "kernel/mm/hugepages", f"hugepages-{page // 1024}kB")
            free = _read_int(posixpath.join(self.sysfs, base,
                                            "free_hugepages")) or 0
            total_path = posixpath.join(self.sysfs, base, "nr_hugepages")
            shown_total = posixpath.join("/sys", base, "nr_hugepages")
        if free >= needed:
            self.add("hugepages", PrepStatus.OK,
                     f"{free} free {page // MIB} MiB pages, {needed} "
                     "needed")
            return
        total = _read_int(total_path) or 0
        wanted = total + needed - free
        self.add("hugepages", PrepStatus.NEEDS_ROOT,
                 f"{free} free {page // MIB} MiB pages, {needed} needed",
                 ["sh", "-c", f"echo {wanted} > {shown_total}"])


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def _pids(holders: set) -> str:
    return "pid " + ", ".join(str(pid) for pid in sorted(holders))


def _file_users(proc: str) -> dict[tuple[int, int], set[int]]:
    """Which processes map or hold open which files (device, inode).

    Reads ``<proc>/*/maps`` (device and inode columns) and
    ``<proc>/*/fd``; processes we may not inspect are skipped.
    """
    users: dict[tuple[int, int], set[int]] = {}
    try:
        entries = os.listdir(proc)
    except OSError:
        return users
    for entry in entries:
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(posixpath.join(proc, entry, "maps"), encoding="utf-8",
                      errors="replace") as file:
                for line in file:
                    fields = line.split(maxsplit=5)
                    if len(fields) < 6 or fields[4] == "0":
                        continue
                    major, _, minor = fields[3].partition(":")
                    device = os.makedev(int(major, 16), int(minor, 16))
                    users.setdefault((device, int(fields[4])),
                                     set()).add(pid)
        except (OSError, ValueError):
            pass
        fd_dir = posixpath.join(proc, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                info = os.stat(posixpath.join(fd_dir, fd))
            except OSError:
                continue
            users.setdefault((info.st_dev, info.st_ino), set()).add(pid)
    return users
