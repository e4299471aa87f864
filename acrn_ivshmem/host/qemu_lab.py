"""Small QEMU guests for trials and tests: what boots them.

:func:`find_tools` finds the installed ``qemu-system-x86_64``, a Linux
kernel (:func:`find_kernel`) and a static busybox, and chooses the
accelerator (:func:`choose_accel`: KVM only where the CPU has
VT-x/AMD-V and ``/dev/kvm`` is usable, else TCG). :func:`guest_initramfs`
packs busybox and a shell ``/init`` into a newc cpio (no ``cpio``
binary needed), and :func:`qemu_command` is the argv of one guest with
no display, its serial console in a file and parameters on the kernel
command line, which ``/init`` sees as variables.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError, quoted
from ..plan.qemu import option_value

__all__ = [
    "Accel", "CHECKOUT_KERNEL", "GUEST_MB", "KERNEL_ENV", "Tools",
    "choose_accel", "find_busybox", "find_kernel", "find_tools",
    "guest_initramfs", "newc", "qemu_command", "static_elf",
]

#: The variable naming a guest kernel (also read by .ci/install-e2e).
KERNEL_ENV = "ACRN_SHM_E2E_KERNEL"
#: Where .ci/install-e2e puts the Debian cloud kernel in a checkout.
CHECKOUT_KERNEL = (Path(__file__).resolve().parents[2] / ".ci" / "cache"
                   / "vmlinuz")
#: Where the host's own kernels are.
BOOT = "/boot"
#: Guest memory: 96 MB boots the cloud kernel, 64 MB does not.
GUEST_MB = 128
_QEMU = "qemu-system-x86_64"
_BUSYBOXES = ("/bin/busybox", "/usr/bin/busybox", "/sbin/busybox")
_PT_INTERP = 3


@dataclass(frozen=True)
class Accel:
    """The QEMU accelerator and why it was chosen."""

    name: str
    reason: str


@dataclass(frozen=True)
class Tools:
    """What boots the guests: QEMU, a kernel, a static busybox."""

    qemu: str
    kernel: str
    busybox: str
    accel: Accel
    qemu_version: str = ""


def static_elf(path: str | os.PathLike) -> bool:
    """True if ``path`` is a 64-bit ELF with no interpreter (static)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            if len(head) < 64 or head[:5] != b"\x7fELF\x02":
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            entsize, count = struct.unpack_from("<HH", head, 54)
            file.seek(phoff)
            table = file.read(entsize * count)
    except OSError:
        return False
    return len(table) == entsize * count and all(
        struct.unpack_from("<I", table, n * entsize)[0] != _PT_INTERP
        for n in range(count))


def _version_key(path: str) -> list:
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", path)]


def find_kernel(explicit: str | None = None,
                environ: dict[str, str] | None = None
                ) -> tuple[str | None, str]:
    """The guest kernel, and a note on where else was looked.

    In order: ``explicit`` (``--kernel``), ``$ACRN_SHM_E2E_KERNEL``, the
    Debian cloud kernel ``.ci/install-e2e`` keeps in a checkout
    (``.ci/cache/vmlinuz``), then the newest readable
    ``/boot/vmlinuz-*``. A path the user gave that is not a readable
    file is an error, not a reason to guess. Returns ``(None, what was
    tried)`` when nothing is found.
    """
    environ = os.environ if environ is None else environ
    checkout, boot = CHECKOUT_KERNEL, BOOT
    for given, what in ((explicit, "--kernel"),
                        (environ.get(KERNEL_ENV), f"${KERNEL_ENV}")):
        if given:
            if not os.path.isfile(given) or not os.access(given, os.R_OK):
                raise UsageError(f"{what} {quoted(given)} is not a readable "
                                 "file")
            return given, ""
    if checkout.is_file() and os.access(checkout, os.R_OK):
        return str(checkout), ""
    unreadable = []
    try:
        names = sorted((name for name in os.listdir(boot)
                        if name.startswith("vmlinuz-")),
                       key=_version_key, reverse=True)
    except OSError:
        names = []
    for name in names:
        path = os.path.join(boot, name)
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return path, ""
        unreadable.append(path)
    note = (f"no guest kernel (--kernel, ${KERNEL_ENV}, .ci/cache/vmlinuz "
            f"of a checkout, {boot}/vmlinuz-*")
    if unreadable:
        note += f"; {unreadable[0]} is not readable: pass a copy with --kernel"
    return None, note + ")"


def find_busybox() -> tuple[str | None, str]:
    """A static busybox, or None and why not."""
    candidates = [shutil.which("busybox"), *_BUSYBOXES]
    dynamic = None
    for path in dict.fromkeys(p for p in candidates if p):
        if static_elf(path):
            return path, ""
        if os.path.exists(path):
            dynamic = path
    if dynamic:
        return None, f"{dynamic} is not a static busybox"
    return None, "no busybox"


def choose_accel(wanted: str = "auto", cpuinfo: str = "/proc/cpuinfo",
                 kvm: str = "/dev/kvm") -> Accel:
    """KVM only with real VT-x/AMD-V and a usable ``/dev/kvm``, else TCG.

    A ``/dev/kvm`` alone proves nothing: a software KVM (PVM) opens
    fine and then cannot run a stock kernel.
    """
    if wanted in ("kvm", "tcg"):
        return Accel(wanted, "asked for")
    if wanted != "auto":
        raise UsageError(f"--accel {quoted(wanted)}: choose auto, kvm or "
                         "tcg")
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as file:
            flags = set(file.read().split())
    except OSError:
        flags = set()
    if not flags & {"vmx", "svm"}:
        return Accel("tcg", "no VT-x/AMD-V in /proc/cpuinfo")
    if not os.path.exists(kvm):
        return Accel("tcg", f"no {kvm}")
    if not os.access(kvm, os.R_OK | os.W_OK):
        return Accel("tcg", f"no access to {kvm}")
    return Accel("kvm", f"VT-x/AMD-V and {kvm}")


def find_tools(kernel: str | None = None, accel: str = "auto",
               environ: dict[str, str] | None = None) -> Tools:
    """QEMU, a kernel and a static busybox, or one :class:`UsageError`
    line naming all that is missing and the Debian packages to install."""
    chosen = choose_accel(accel)
    qemu = shutil.which(_QEMU)
    kernel_path, kernel_note = find_kernel(kernel, environ)
    busybox, busybox_note = find_busybox()
    missing, packages = [], []
    if qemu is None:
        missing.append(f"no {_QEMU} on PATH")
        packages.append("qemu-system-x86")
    if busybox is None:
        missing.append(busybox_note)
        packages.append("busybox-static")
    if kernel_path is None:
        missing.append(kernel_note)
        packages.append("linux-image-cloud-amd64")
    if missing:
        raise UsageError(
            "cannot boot the guests: " + "; ".join(missing) + "; install "
            "the Debian packages: sudo apt-get install "
            "--no-install-recommends " + " ".join(packages))
    return Tools(qemu, kernel_path, busybox, chosen, _qemu_version(qemu))


def _qemu_version(qemu: str) -> str:
    try:
        done = subprocess.run([qemu, "--version"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"version (\S+)", done.stdout)
    return match.group(1) if match else ""


# --------------------------------------------------------------------------
# The guest image and command line


def newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A newc cpio archive (what the kernel unpacks as an initramfs) of
    ``(name, mode, data, rdev)`` entries."""
    out = bytearray()
    trailer = [("TRAILER!!!", 0, b"", 0)]
    for number, (name, mode, data, rdev) in enumerate(entries + trailer):
        raw = name.encode() + b"\0"
        fields = (number + 1, mode, 0, 0, 1, 0, len(data), 0, 0,
                  os.major(rdev), os.minor(rdev), len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % value for value in fields)
        out += raw + b"\0" * (-(110 + len(raw)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return bytes(out)


def guest_initramfs(busybox: str, init: bytes) -> bytes:
    """busybox, ``init`` as /init and /dev/console (the kernel opens it
    before anything mounts devtmpfs)."""
    directory = 0o040755
    with open(busybox, "rb") as file:
        binary = file.read()
    return newc([
        ("bin", directory, b"", 0),
        ("dev", directory, b"", 0),
        ("dev/console", 0o020600, b"", os.makedev(5, 1)),
        ("proc", directory, b"", 0),
        ("sys", directory, b"", 0),
        ("bin/busybox", 0o100755, binary, 0),
        ("init", 0o100755, init, 0),
    ])


def qemu_command(tools: Tools, initramfs: str, console_log: str,
                 params: dict[str, str],
                 device_args: tuple[str, ...] | list[str],
                 memory_mb: int = GUEST_MB) -> list[str]:
    """The argv of one small guest: no display, no reboot, its serial
    console in ``console_log``, ``params`` on the kernel command line
    (where /init finds them as variables). ``memory_mb`` must hold the
    unpacked initramfs too."""
    extra = "".join(f" {key}={value}" for key, value in params.items())
    return [
        tools.qemu, "-accel", tools.accel.name, "-m", str(memory_mb),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-no-reboot", "-chardev",
        f"file,id=console,path={option_value(console_log)}",
        "-serial", "chardev:console", "-kernel", tools.kernel,
        "-initrd", initramfs, "-append",
        f"console=ttyS0 panic=-1 quiet{extra}", *device_args]
