"""Inside a guest: find ivshmem devices, read and write their memory.

Standard library only, so that it runs in a guest with a plain Python 3
(copy this one file in, or install the package)::

    python3 -m acrn_ivshmem.guest list
    python3 -m acrn_ivshmem.guest read --offset 0 --length 64
    python3 -m acrn_ivshmem.guest write --offset 0 --data hello
    python3 -m acrn_ivshmem.guest registers
    python3 -m acrn_ivshmem.guest doorbell --peer 1
    python3 -m acrn_ivshmem.guest uio-bind

An ivshmem device is PCI 1af4:1110 (ACRN's and QEMU's alike). BAR0
holds four 32-bit registers (QEMU's ivshmem spec), BAR1 the MSI-X table
when the device can interrupt, BAR2 the shared memory. ACRN v3.3 shows a
region's ``IVSHMEM_REGION_ID`` as the PCI subsystem id, with subsystem
vendor 0x8086; QEMU cannot, so there a device is found by its address.
BARs are reached by ``mmap`` of the sysfs ``resourceN`` files, which
works with no driver bound (those files cannot be read or written).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shlex
import sys
from dataclasses import dataclass

try:
    from .errors import AcrnShmError as _Base
except ImportError:  # this file copied alone into a guest
    _Base = Exception

__all__ = [
    "ACRN_SUBSYSTEM_VENDOR", "Bar", "DEVICE_ID", "GuestError",
    "IvshmemDevice", "REG_DOORBELL", "REG_INTR_MASK", "REG_INTR_STATUS",
    "REG_IV_POSITION", "Registers", "VENDOR_ID", "find_devices", "main",
    "read_registers", "read_shm", "ring_doorbell", "select_device",
    "uio_bind_commands", "write_shm",
]

VENDOR_ID = 0x1AF4
DEVICE_ID = 0x1110
#: ACRN v3.3 marks the region id (subsystem id) with this vendor.
ACRN_SUBSYSTEM_VENDOR = 0x8086
#: BAR0 register offsets (QEMU docs/specs/ivshmem-spec).
REG_INTR_MASK = 0x0
REG_INTR_STATUS = 0x4
REG_IV_POSITION = 0x8
REG_DOORBELL = 0xC
_REGISTERS_SIZE = 0x10
_UIO = "uio_pci_generic"


class GuestError(_Base):
    """A problem the user can fix: no device, bad offset, no rights.

    A subclass of :class:`acrn_ivshmem.errors.AcrnShmError` when the
    package is installed; of :class:`Exception` when this file runs
    alone.
    """


@dataclass(frozen=True)
class Bar:
    """A PCI BAR from sysfs ``resource``: physical start, size, flags."""

    index: int
    start: int
    size: int
    flags: int


@dataclass(frozen=True)
class IvshmemDevice:
    """One 1af4:1110 PCI function as sysfs shows it.

    ``address`` is the full PCI address (``0000:00:08.0``); ``path`` its
    sysfs directory; ``bars`` the BARs that exist (size > 0), by index;
    ``driver`` the bound driver's name or None.
    """

    address: str
    path: str
    subsystem_vendor: int | None
    subsystem_device: int | None
    revision: int | None
    bars: tuple[Bar, ...]
    driver: str | None

    def bar(self, index: int) -> Bar | None:
        """BAR ``index``, or None when the device does not have it."""
        return next((bar for bar in self.bars if bar.index == index), None)

    @property
    def region_id(self) -> int | None:
        """ACRN's region id (v3.3), or None when the device has none."""
        if self.subsystem_vendor == ACRN_SUBSYSTEM_VENDOR:
            return self.subsystem_device
        return None

    @property
    def shm_size(self) -> int:
        """The size of the shared memory (BAR2) in bytes."""
        bar = self.bar(2)
        return bar.size if bar else 0

    @property
    def has_msix(self) -> bool:
        """True when BAR1 (the MSI-X table) exists: the device can
        interrupt (QEMU ivshmem-doorbell, any ACRN ivshmem)."""
        return self.bar(1) is not None

    def as_json(self) -> dict:
        """The device as JSON-ready data."""
        bar2 = self.bar(2)
        return {
            "address": self.address,
            "region_id": self.region_id,
            "subsystem_vendor": self.subsystem_vendor,
            "subsystem_device": self.subsystem_device,
            "revision": self.revision,
            "shm_size": self.shm_size,
            "shm_phys": bar2.start if bar2 else None,
            "msix": self.has_msix,
            "driver": self.driver,
        }


@dataclass(frozen=True)
class Registers:
    """The readable BAR0 registers."""

    intr_mask: int
    intr_status: int
    iv_position: int


# --------------------------------------------------------------------------
# Discovery


def _read_hex(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as file:
            return int(file.read().strip(), 16)
    except (OSError, ValueError):
        return None


def _bars(path: str) -> tuple[Bar, ...]:
    bars = []
    try:
        with open(os.path.join(path, "resource"), encoding="ascii") as file:
            lines = file.read().splitlines()
    except OSError:
        return ()
    # Lines 0-5 are the BARs ("start end flags", hex); later lines are
    # the ROM and bridge windows.
    for index, line in enumerate(lines[:6]):
        try:
            start, end, flags = (int(word, 16) for word in line.split())
        except ValueError:
            continue
        if end:
            bars.append(Bar(index, start, end - start + 1, flags))
    return tuple(bars)


def find_devices(sysfs: str = "/sys") -> tuple[IvshmemDevice, ...]:
    """Every ivshmem device under ``<sysfs>/bus/pci/devices``, by
    address."""
    root = os.path.join(sysfs, "bus", "pci", "devices")
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        raise GuestError(f"cannot list {root}: {exc.strerror}") from None
    found = []
    for name in names:
        path = os.path.join(root, name)
        if (_read_hex(os.path.join(path, "vendor")) != VENDOR_ID
                or _read_hex(os.path.join(path, "device")) != DEVICE_ID):
            continue
        driver = None
        link = os.path.join(path, "driver")
        if os.path.islink(link):
            driver = os.path.basename(os.readlink(link))
        found.append(IvshmemDevice(
            address=name, path=path,
            subsystem_vendor=_read_hex(os.path.join(path,
                                                    "subsystem_vendor")),
            subsystem_device=_read_hex(os.path.join(path,
                                                    "subsystem_device")),
            revision=_read_hex(os.path.join(path, "revision")),
            bars=_bars(path), driver=driver))
    return tuple(found)


def _short(address: str) -> str:
    return address.split(":", 1)[1] if address.count(":") == 2 else address


def select_device(devices: tuple[IvshmemDevice, ...],
                  selector: str | None = None) -> IvshmemDevice:
    """The device ``selector`` names: a PCI address (``0000:00:08.0``,
    ``00:08.0`` or ``08.0``) or ``id=N`` (ACRN region id). Without a
    selector, the only device. Raises :class:`GuestError`."""
    if not devices:
        raise GuestError(f"no ivshmem device ({VENDOR_ID:04x}:"
                         f"{DEVICE_ID:04x}) found")
    listed = ", ".join(device.address for device in devices)
    if selector is None:
        if len(devices) > 1:
            raise GuestError(f"{len(devices)} ivshmem devices ({listed}); "
                             "choose one with --device")
        return devices[0]
    wanted = selector.strip().lower()
    if wanted.startswith("id="):
        try:
            region_id = int(wanted[3:], 0)
        except ValueError:
            raise GuestError(f"bad region id in {selector!r}") from None
        matches = [device for device in devices
                   if device.region_id == region_id]
    else:
        matches = [device for device in devices
                   if wanted in (device.address.lower(),
                                 _short(device.address).lower(),
                                 device.address.lower()[-4:])]
    if len(matches) != 1:
        how = "no" if not matches else "more than one"
        raise GuestError(f"{how} ivshmem device matches {selector!r}; "
                         f"the devices are {listed}")
    return matches[0]


# --------------------------------------------------------------------------
# Access


def _check_range(device: IvshmemDevice, bar: int, offset: int,
                 length: int):
    size = device.bar(bar).size if device.bar(bar) else 0
    if not size:
        raise GuestError(f"{device.address} has no BAR{bar}")
    if offset < 0 or length < 0 or offset + length > size:
        raise GuestError(
            f"offset {offset:#x} + length {length:#x} is outside "
            f"BAR{bar} of {device.address} ({size:#x} bytes)")


def _window(device: IvshmemDevice, bar: int, offset: int, length: int,
            write: bool):
    """Map the pages of BAR ``bar`` that hold ``offset..offset+length``;
    return the map and where ``offset`` is in it."""
    _check_range(device, bar, offset, length)
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    path = os.path.join(device.path, f"resource{bar}")
    try:
        fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
    except OSError as exc:
        raise GuestError(f"cannot open {path}: {exc.strerror} (root "
                         "needed?)") from None
    try:
        mapped = mmap.mmap(
            fd, offset + length - start, mmap.MAP_SHARED,
            mmap.PROT_READ | (mmap.PROT_WRITE if write else 0),
            offset=start)
    except (OSError, ValueError) as exc:
        raise GuestError(f"cannot map {path}: {exc}") from None
    finally:
        os.close(fd)
    return mapped, offset - start


def read_shm(device: IvshmemDevice, offset: int, length: int) -> bytes:
    """``length`` bytes of the shared memory from ``offset``."""
    if length == 0:
        _check_range(device, 2, offset, 0)
        return b""
    mapped, at = _window(device, 2, offset, length, write=False)
    with mapped:
        return mapped[at:at + length]


def write_shm(device: IvshmemDevice, offset: int, data: bytes):
    """Write ``data`` into the shared memory at ``offset``."""
    if not data:
        _check_range(device, 2, offset, 0)
        return
    mapped, at = _window(device, 2, offset, len(data), write=True)
    with mapped:
        mapped[at:at + len(data)] = data
        mapped.flush()


def read_registers(device: IvshmemDevice) -> Registers:
    """IntrMask, IntrStatus and IVPosition, read as 32-bit words."""
    mapped, at = _window(device, 0, 0, _REGISTERS_SIZE, write=False)
    with mapped:
        # One 32-bit load each: QEMU's registers ignore narrower access.
        words = memoryview(mapped)[at:at + _REGISTERS_SIZE].cast("I")
        try:
            return Registers(words[REG_INTR_MASK // 4],
                             words[REG_INTR_STATUS // 4],
                             words[REG_IV_POSITION // 4])
        finally:
            words.release()


def ring_doorbell(device: IvshmemDevice, peer: int, vector: int = 0):
    """Interrupt ``vector`` of peer ``peer`` (its IVPosition).

    The peer only gets it if it has enabled MSI-X; otherwise the
    doorbell is dropped silently (QEMU's ivshmem-doorbell has no other
    interrupt).
    """
    if not 0 <= peer <= 0xFFFF or not 0 <= vector <= 0xFFFF:
        raise GuestError(f"peer {peer} and vector {vector} must be "
                         "0-65535")
    mapped, at = _window(device, 0, 0, _REGISTERS_SIZE, write=True)
    with mapped:
        words = memoryview(mapped)[at:at + _REGISTERS_SIZE].cast("I")
        try:
            words[REG_DOORBELL // 4] = (peer << 16) | vector
        finally:
            words.release()


def uio_bind_commands(device: IvshmemDevice | None = None,
                      sysfs: str = "/sys") -> tuple[str, ...]:
    """The shell commands (for root) that bind ``uio_pci_generic``.

    With a device: only that one, through ``driver_override``; without:
    every 1af4:1110 device, through ``new_id``. Comment lines say what
    uio gives: it handles INTx only, and ivshmem interrupts are MSI-X,
    so the doorbell does not reach ``/dev/uioN`` (use vfio-pci for
    that); the memory stays reachable through the sysfs BAR files.
    """
    drivers = os.path.join(sysfs, "bus", "pci", "drivers")
    commands = [
        f"# {_UIO} handles INTx only; ivshmem interrupts are MSI-X, so "
        "no doorbell reaches /dev/uioN (use vfio-pci for interrupts)",
        f"modprobe {_UIO}",
    ]
    if device is None:
        commands.append(
            f"echo '{VENDOR_ID:04x} {DEVICE_ID:04x}' > "
            + shlex.quote(os.path.join(drivers, _UIO, "new_id")))
        return tuple(commands)
    address = shlex.quote(device.address)
    if device.driver == _UIO:
        return (f"# {device.address} is already bound to {_UIO}",)
    commands.append(f"echo {_UIO} > "
                    + shlex.quote(os.path.join(device.path,
                                               "driver_override")))
    if device.driver is not None:
        commands.append(f"echo {address} > " + shlex.quote(
            os.path.join(device.path, "driver", "unbind")))
    commands.append(f"echo {address} > " + shlex.quote(
        os.path.join(sysfs, "bus", "pci", "drivers_probe")))
    return tuple(commands)


# --------------------------------------------------------------------------
# Command line


def _number(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number (decimal or 0x hex)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


#: How the guest tool is run without the package installed.
MODULE_PROG = "python3 -m acrn_ivshmem.guest"


def _parser(prog: str) -> argparse.ArgumentParser:
    other = "acrn-shm guest" if prog == MODULE_PROG else MODULE_PROG
    parser = argparse.ArgumentParser(
        prog=prog,
        description="ivshmem shared memory inside a guest",
        epilog=f"Example: {prog} read -d 00:08.0 --length 64 (also: "
        f"{other} read ...; the module needs Python's standard library "
        "only)")
    parser.add_argument("--sysfs", default="/sys",
                        help="sysfs mount (default /sys)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list ivshmem devices")
    listing.add_argument("--json", action="store_true",
                         help="print JSON")

    def device_option(sub):
        sub.add_argument("-d", "--device",
                         help="PCI address or id=REGION_ID (default: the "
                         "only device)")

    read = commands.add_parser("read", help="read shared memory")
    device_option(read)
    read.add_argument("--offset", type=_number, default=0)
    read.add_argument("--length", type=_number, required=True)
    read.add_argument("--format", default="hexdump",
                      choices=("hexdump", "hex", "raw", "text"))
    write = commands.add_parser("write", help="write shared memory")
    device_option(write)
    write.add_argument("--offset", type=_number, default=0)
    data = write.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="text, written as UTF-8")
    data.add_argument("--hex", help="bytes as hex digits")
    data.add_argument("--file", help="a file's bytes ('-': stdin)")
    registers = commands.add_parser("registers",
                                    help="show the BAR0 registers")
    device_option(registers)
    doorbell = commands.add_parser("doorbell", help="interrupt a peer")
    device_option(doorbell)
    doorbell.add_argument("--peer", type=_number, required=True)
    doorbell.add_argument("--vector", type=_number, default=0)
    uio = commands.add_parser(
        "uio-bind", help="print the commands that bind uio_pci_generic")
    uio.add_argument("-d", "--device",
                     help="PCI address or id=REGION_ID (default: every "
                     "ivshmem device, by new_id)")
    return parser


def _hexdump(data: bytes, base: int) -> str:
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{base + at:08x}  {chunk.hex(' '):<47}  |{text}|\n")
    return "".join(lines)


def _list(devices: tuple[IvshmemDevice, ...], as_json: bool) -> str:
    if as_json:
        return json.dumps([device.as_json() for device in devices],
                          indent=2) + "\n"
    if not devices:
        return "no ivshmem device\n"
    lines = [f"{'ADDRESS':<14}{'REGION_ID':<11}{'SIZE':<11}"
             f"{'PHYS':<20}{'MSIX':<6}DRIVER\n"]
    for device in devices:
        bar2 = device.bar(2)
        region = "-" if device.region_id is None else str(device.region_id)
        size = device.shm_size
        size_text = (f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024)
                     == 0 and size else f"{size} B")
        phys = f"{bar2.start:#x}" if bar2 else "-"
        lines.append(f"{device.address:<14}{region:<11}{size_text:<11}"
                     f"{phys:<20}{'yes' if device.has_msix else 'no':<6}"
                     f"{device.driver or '-'}\n")
    return "".join(lines)


def _payload(args) -> bytes:
    if args.data is not None:
        return args.data.encode("utf-8")
    if args.hex is not None:
        try:
            return bytes.fromhex(args.hex)
        except ValueError:
            raise GuestError(f"--hex {args.hex!r} is not hex "
                             "digits") from None
    if args.file == "-":
        return sys.stdin.buffer.read()
    try:
        with open(args.file, "rb") as file:
            return file.read()
    except OSError as exc:
        raise GuestError(f"cannot read {args.file}: "
                         f"{exc.strerror}") from None


def _run(args) -> int:
    devices = find_devices(args.sysfs)
    if args.command == "list":
        sys.stdout.write(_list(devices, args.json))
        return 0
    if args.command == "uio-bind":
        device = (select_device(devices, args.device) if args.device
                  else None)
        sys.stdout.write("".join(f"{line}\n" for line in
                                 uio_bind_commands(device, args.sysfs)))
        return 0
    device = select_device(devices, args.device)
    if args.command == "read":
        data = read_shm(device, args.offset, args.length)
        if args.format == "raw":
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        elif args.format == "hex":
            sys.stdout.write(data.hex() + "\n")
        elif args.format == "text":
            text = data.split(b"\0", 1)[0].decode("utf-8", "replace")
            sys.stdout.write(text + "\n")
        else:
            sys.stdout.write(_hexdump(data, args.offset))
    elif args.command == "write":
        data = _payload(args)
        write_shm(device, args.offset, data)
        sys.stdout.write(f"wrote {len(data)} bytes at {args.offset:#x} of "
                         f"{device.address}\n")
    elif args.command == "registers":
        registers = read_registers(device)
        sys.stdout.write(f"IntrMask   {registers.intr_mask:#010x}\n"
                         f"IntrStatus {registers.intr_status:#010x}\n"
                         f"IVPosition {registers.iv_position}\n")
    elif args.command == "doorbell":
        ring_doorbell(device, args.peer, args.vector)
        sys.stdout.write(f"rang peer {args.peer} vector {args.vector} "
                         f"from {device.address}\n")
    return 0


def main(argv: list[str] | None = None, prog: str = MODULE_PROG) -> int:
    """Run the guest command line; return the exit status: 0 ok, 2 a
    :class:`GuestError` or bad usage (a problem the user can fix, as for
    every acrn-shm command). ``prog`` is how usage and help name the
    command (``acrn-shm guest`` from the CLI)."""
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and bad usage
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except GuestError as exc:
        sys.stderr.write(f"acrn-shm guest: error: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
