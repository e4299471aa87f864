"""Shared memory on a Linux host: facts both sides of acrn-shm use.

The QEMU planner (configuration side) and the ivshmem server and host
preparation (runtime side) agree on where named memory lives, how long a
Unix socket path may be and how a size is shown; the planner and host
preparation read the same mount table. Kept here, below both, so that
neither side imports the other for them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from .units import MIB

__all__ = ["MAX_SOCKET_PATH", "SHM_DIR", "Mount", "meminfo", "mount_of",
           "parse_bytes", "size_text"]

#: Where named memory lives by default (POSIX shared memory).
SHM_DIR = "/dev/shm"
#: Longest Unix socket path (``sun_path`` is 108 bytes with the NUL).
MAX_SOCKET_PATH = 107


def size_text(size: int) -> str:
    """``size`` bytes as ``N MiB`` when whole, else ``N bytes``."""
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size} bytes"


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/mounts``: mount point, type and options."""

    point: str
    fstype: str
    options: tuple[str, ...]

    @property
    def page_size(self) -> int | None:
        """The ``pagesize=`` option of a hugetlbfs mount in bytes."""
        for option in self.options:
            if option.startswith("pagesize="):
                return parse_bytes(option[len("pagesize="):])
        return None


def parse_bytes(text: str) -> int | None:
    """``2M`` (as mount options write sizes) in bytes, or None."""
    match = re.fullmatch(r"(\d+)([KkMmGg]?)", text)
    if match is None:
        return None
    unit = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}
    return int(match.group(1)) * unit[match.group(2).lower()]


def _unescape_mount(text: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mount_of(path: str, proc: str) -> Mount | None:
    """The mount that holds ``path``, from ``<proc>/mounts``."""
    try:
        with open(posixpath.join(proc, "mounts"), encoding="utf-8",
                  errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    target = posixpath.normpath(posixpath.abspath(path))
    best = None
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point = _unescape_mount(fields[1])
        inside = target == point or target.startswith(
            point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            best = Mount(point, fields[2], tuple(fields[3].split(",")))
    return best


def meminfo(proc: str) -> dict[str, int]:
    """``<proc>/meminfo`` in bytes by key; empty when unreadable."""
    found = {}
    try:
        with open(posixpath.join(proc, "meminfo"), encoding="ascii",
                  errors="replace") as file:
            for line in file:
                key, _, rest = line.partition(":")
                words = rest.split()
                if words and words[0].isdigit():
                    scale = 1024 if words[1:2] == ["kB"] else 1
                    found[key.strip()] = int(words[0]) * scale
    except OSError:
        pass
    return found
