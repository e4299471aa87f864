"""The ACRN shared-memory regions of a VM, under QEMU and libvirt.

A :class:`QemuPlan` lists the ivshmem devices one QEMU process needs:
:func:`plan_for_vm` builds it from a scenario (every region the VM is a
member of, at the slot of its VBDF), :func:`standalone_plan` from a name
and a size. The plan renders as QEMU flags (:meth:`QemuPlan.args`,
:meth:`QemuPlan.command_line`), as libvirt ``<shmem>`` elements
(:func:`acrn_ivshmem.emit.libvirt_xml.libvirt_xml`), and
:func:`acrn_ivshmem.host.prep.host_prep` creates or checks its backing
files.

Under QEMU both kinds of ACRN region (``Hypervisor`` and ``Device
Model``) become an ``ivshmem-plain`` device on a
``memory-backend-file`` with ``share=on``; the backing file is
``<shm-dir>/<region name>``. Region and VM names are user data: QEMU
ids are sanitised from them, a ``,`` in a QEMU option value is doubled
(QEMU's own escape), names that are not one plain file name are refused,
and the command line is shell-quoted.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from dataclasses import dataclass

from ..errors import UsageError, located, quoted
from ..model.resolved import NOT_VBDF, load_scenario
from ..model.syntax import (
    FIRST_IVSHMEM_DEVICE, Bdf, Region, Scenario, Vm, is_decimal,
)
from ..shm import MAX_SOCKET_PATH, SHM_DIR, meminfo, mount_of
from ..units import MIB

__all__ = [
    "DEFAULT_SHM_DIR", "Doorbell", "MAX_VECTORS", "QemuPlan", "ShmDevice",
    "option_value", "parse_addr", "plan_for_vm", "plan_from_file",
    "region_named", "standalone_plan",
]

#: Where the backing files go unless told otherwise (POSIX shm).
DEFAULT_SHM_DIR = SHM_DIR
#: Most MSI-X vectors QEMU's ivshmem-server hands out.
MAX_VECTORS = 64
_LAST_DEFAULT_DEVICE = 0x0F
# Slots QEMU's pc and q35 machines fill themselves.
_MACHINE_SLOTS = {0x00: "the host bridge", 0x01: "the ISA bridge (pc) "
                  "or VGA (q35)", 0x02: "VGA (pc)", 0x1F: "the LPC "
                  "bridge (q35)"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_ADDR = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{1,2})(?:\.([0-7]))?")


# --------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Doorbell:
    """An ivshmem server to connect to: its socket and MSI-X vectors."""

    socket: str
    vectors: int = 1


@dataclass(frozen=True)
class ShmDevice:
    """One ivshmem device of a QEMU process.

    ``name`` is the region name (user data, unchanged); ``size_mb`` is
    None for a doorbell device (the server owns the memory);
    ``mem_path`` is the backing file (None for a doorbell device);
    ``base_id`` is the sanitised, unique stem of the QEMU ids
    (:attr:`memdev_id`, :attr:`chardev_id`, :attr:`device_id`);
    ``slot``/``function`` the PCI address on bus 0 (``slot`` None: QEMU
    chooses); ``multifunction`` is set on function 0 of a slot that
    holds other functions too.
    """

    name: str
    size_mb: int | None
    mem_path: str | None
    base_id: str
    slot: int | None = None
    function: int = 0
    multifunction: bool = False
    master: bool = False
    doorbell: Doorbell | None = None

    @property
    def memdev_id(self) -> str:
        """The id of the ``memory-backend-file`` object."""
        return f"shm-{self.base_id}"

    @property
    def chardev_id(self) -> str:
        """The id of the doorbell's socket chardev."""
        return f"shmchr-{self.base_id}"

    @property
    def device_id(self) -> str:
        """The id of the ivshmem device."""
        return f"ivshmem-{self.base_id}"

    @property
    def addr(self) -> str | None:
        """QEMU's ``addr=`` value (``08.0``), or None."""
        if self.slot is None:
            return None
        return f"{self.slot:02x}.{self.function:x}"

    def args(self) -> tuple[str, ...]:
        """The QEMU flags for this device, unquoted."""
        options = [f"id={self.device_id}"]
        if self.doorbell is not None:
            head = ("-chardev", "socket,id=" + self.chardev_id + ",path="
                    + option_value(self.doorbell.socket))
            options[0:0] = ["ivshmem-doorbell"]
            options += [f"chardev={self.chardev_id}",
                        f"vectors={self.doorbell.vectors}"]
        else:
            head = ("-object", f"memory-backend-file,id={self.memdev_id},"
                    f"size={self.size_mb}M,share=on,mem-path="
                    + option_value(self.mem_path or ""))
            options[0:0] = ["ivshmem-plain"]
            options.append(f"memdev={self.memdev_id}")
        if self.addr is not None:
            options.append(f"addr={self.addr}")
        if self.multifunction:
            options.append("multifunction=on")
        if self.master:
            options.append("master=on")
        return (*head, "-device", ",".join(options))


@dataclass(frozen=True)
class QemuPlan:
    """The ivshmem devices of one QEMU process, and what to watch for.

    ``vm`` is the scenario VM's name (None for a standalone plan);
    ``shm_dir`` the directory of the backing files; ``hugepages``
    whether huge pages were asked for; ``warnings`` one-line notes
    (the command is still usable); ``page_warnings`` those of them
    about QEMU's backing files and huge pages (libvirt picks its own).
    """

    vm: str | None
    shm_dir: str
    hugepages: bool
    devices: tuple[ShmDevice, ...]
    warnings: tuple[str, ...] = ()
    page_warnings: tuple[str, ...] = ()

    def args(self) -> tuple[str, ...]:
        """The QEMU flags, one list element per shell word."""
        return tuple(arg for device in self.devices
                     for arg in device.args())

    def command_line(self) -> str:
        """The flags as one shell-quoted line, ready to paste."""
        return shlex.join(self.args())


def option_value(text: str) -> str:
    """``text`` as one value of a QEMU option list: QEMU's parser ends
    a value at ``,`` unless it is doubled."""
    return text.replace(",", ",,")


def _check_text(what: str, text: str):
    if _CONTROL.search(text):
        raise UsageError(f"{what} {quoted(text)} contains a control "
                         "character; QEMU command lines cannot carry it")


def _check_file_name(name: str):
    _check_text("region name", name)
    if not name or name in (".", "..") or "/" in name:
        raise UsageError(
            f"region name {quoted(name)} cannot be the backing file's "
            "name: it must be one file name (not empty, '.', '..', and "
            "without '/')")


def _check_size(size_mb: int, what: str):
    if size_mb < 1 or size_mb & (size_mb - 1):
        raise UsageError(f"{what} is {size_mb} MB; QEMU needs a power of "
                         "two (1, 2, 4, ... MB): other sizes make it "
                         "abort")


def _check_doorbell(doorbell: Doorbell):
    path = doorbell.socket
    _check_text("socket path", path)
    if not path:
        raise UsageError("the doorbell needs the ivshmem server's socket "
                         "path")
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise UsageError(
            f"socket path {quoted(path)} is {len(os.fsencode(path))} "
            f"bytes; Unix sockets allow at most {MAX_SOCKET_PATH}: use a "
            "shorter directory")
    if not 1 <= doorbell.vectors <= MAX_VECTORS:
        raise UsageError(
            f"{doorbell.vectors} vectors asked; ivshmem-server hands "
            f"out 1 to {MAX_VECTORS}")


class _Ids:
    """QEMU ids from region names: ASCII letters, digits, '_', '.', '-'
    (QEMU's rule), unique within one plan."""

    def __init__(self):
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        base = _ID_UNSAFE.sub("_", name) or "region"
        unique, number = base, 2
        while unique in self.used:
            unique, number = f"{base}-{number}", number + 1
        self.used.add(unique)
        return unique


def parse_addr(text: str) -> tuple[int, int]:
    """Parse a PCI address ``dd[.f]`` (hex device, ``0x`` allowed) into
    ``(slot, function)``; raise :class:`UsageError` if it is not one."""
    match = _ADDR.fullmatch(text.strip())
    if match is None or int(match.group(1), 16) > 0x1F:
        raise UsageError(f"PCI address {quoted(text)} is not 'dd' or "
                         "'dd.f' (hex device 00-1f, function 0-7)")
    return int(match.group(1), 16), int(match.group(2) or "0")


# --------------------------------------------------------------------------
# Huge pages


def _hugepage_warnings(shm_dir: str, hugepages: bool,
                       sizes: list[tuple[str, int]],
                       proc: str) -> list[str]:
    mount = mount_of(shm_dir, proc)
    if mount is None or mount.fstype != "hugetlbfs":
        if not hugepages:
            return []
        return [f"{quoted(shm_dir)} is not on a hugetlbfs mount, so QEMU "
                "uses normal pages: mount one with 'mount -t hugetlbfs -o "
                "pagesize=2M none DIR' and pass --shm-dir DIR"]
    page = mount.page_size or meminfo(proc).get("Hugepagesize")
    if not page:
        return []
    return [f"region {quoted(name)} ({size} MB) is smaller than the "
            f"{page // MIB} MB huge pages of {quoted(mount.point)}; QEMU "
            "refuses a backend smaller than its page size"
            for name, size in sizes if size * MIB < page]


# --------------------------------------------------------------------------
# Building plans


def standalone_plan(name: str, size_mb: int | None = None,
                    shm_dir: str = DEFAULT_SHM_DIR, *,
                    doorbell: Doorbell | None = None, master: bool = False,
                    addr: str | None = None, hugepages: bool = False,
                    proc: str = "/proc") -> QemuPlan:
    """One ivshmem device named ``name`` of ``size_mb`` MB.

    Without ``doorbell``: an ``ivshmem-plain`` device on
    ``<shm_dir>/<name>``; ``size_mb`` is required. With ``doorbell``:
    an ``ivshmem-doorbell`` device connected to the server's socket (the
    server owns the memory, so ``size_mb`` is only checked). ``addr``
    (``dd[.f]``) pins the PCI slot. ``proc`` is the procfs to read
    mounts from (tests). Raises :class:`UsageError` for bad values.
    """
    _check_file_name(name)
    _check_text("shm directory", shm_dir)
    slot, function = parse_addr(addr) if addr is not None else (None, 0)
    if size_mb is not None:
        _check_size(size_mb, f"the size of {quoted(name)}")
    warnings = []
    if slot is not None and slot in _MACHINE_SLOTS:
        warnings.append(_machine_slot_warning(name, slot))
    base_id = _Ids().take(name)
    if doorbell is not None:
        _check_doorbell(doorbell)
        device = ShmDevice(name, size_mb, None, base_id, slot, function,
                           master=master, doorbell=doorbell)
        return QemuPlan(None, shm_dir, hugepages, (device,),
                        tuple(warnings))
    if size_mb is None:
        raise UsageError(f"give the size of {quoted(name)} in MB (a power "
                         "of two)")
    pages = _hugepage_warnings(shm_dir, hugepages, [(name, size_mb)],
                               proc)
    device = ShmDevice(name, size_mb, posixpath.join(shm_dir, name),
                       base_id, slot, function, master=master)
    return QemuPlan(None, shm_dir, hugepages, (device,),
                    tuple(warnings + pages), tuple(pages))


def plan_from_file(path: str, vm: str, shm_dir: str = DEFAULT_SHM_DIR, *,
                   master: bool = False, hugepages: bool = False,
                   proc: str = "/proc", region: str | None = None,
                   doorbell: Doorbell | None = None) -> QemuPlan:
    """Load the scenario at ``path`` and call :func:`plan_for_vm`.

    Raises :class:`~acrn_ivshmem.errors.InputError` for unreadable
    files and :class:`UsageError` for a board or launch XML.
    """
    model = load_scenario(
        path, refusal="{path}: is a {kind} XML; give a scenario XML").model
    return plan_for_vm(model, vm, shm_dir, master=master,
                       hugepages=hugepages, proc=proc, region=region,
                       doorbell=doorbell)


def plan_for_vm(scenario: Scenario, vm: str,
                shm_dir: str = DEFAULT_SHM_DIR, *, master: bool = False,
                hugepages: bool = False, proc: str = "/proc",
                region: str | None = None,
                doorbell: Doorbell | None = None) -> QemuPlan:
    """The ivshmem devices VM ``vm`` of ``scenario`` gets under QEMU.

    One ``ivshmem-plain`` device per region the VM is a member of
    (Hypervisor and Device Model alike), on ``<shm_dir>/<region name>``,
    at the device and function of the member's VBDF. A v3 member
    without a VBDF gets ACRN's default (the lowest free 00:08.0 ..
    00:0f.0 of that VM); a legacy (v2.x) scenario has no VBDFs, so each
    VM counts up from 00:08.0 in region order, as ACRN's upgrader does.
    ``vm`` is a VM name (in a legacy scenario also a VM id). Devices are
    ordered by address. ``region`` keeps only the region of that name
    (at the address it has among all of the VM's regions). With
    ``doorbell`` the region is an ``ivshmem-doorbell`` device whose
    memory the ivshmem server at ``doorbell.socket`` owns; a server
    serves one region, so the VM must be in one (or ``region`` names
    it). Raises :class:`UsageError` naming the file and line when a
    region cannot be mapped.
    """
    _check_text("shm directory", shm_dir)
    if doorbell is not None:
        _check_doorbell(doorbell)
    target = _find_vm(scenario, vm)
    regions = _regions_of(scenario, target)
    if not regions:
        raise UsageError(located(scenario.path, None, None,
                                 _no_region_message(scenario, target)))
    addresses = _addresses(scenario, target, regions)
    if region is not None:
        regions, addresses = _only_region(scenario, target, region,
                                          regions, addresses)
    if doorbell is not None and len(regions) > 1:
        names = ", ".join(item.label for item in regions)
        raise UsageError(located(
            scenario.path, None, None,
            f"VM {target.label} is in {len(regions)} regions ({names}); "
            "an ivshmem server serves one region: choose it with "
            "--region NAME"))
    ids = _Ids()
    warnings: list[str] = []
    found: list[tuple[Region, int, Bdf]] = []
    seen_paths: dict[str, Region] = {}
    for region, member_vbdf in zip(regions, addresses):
        name = region.name.text if region.name else ""
        try:
            _check_file_name(name)
        except UsageError as exc:
            raise UsageError(_at(scenario, region, str(exc))) from None
        if region.land is None:
            raise UsageError(_at(
                scenario, region,
                f"region {quoted(name)} is provided by "
                f"{quoted(region.provider.text)}; expected 'Hypervisor' "
                "or 'Device Model'"))
        size = _region_size(scenario, region)
        if name in seen_paths:
            raise UsageError(_at(
                scenario, region,
                f"VM {target.label} is in two regions named "
                f"{quoted(name)}; under QEMU both would be "
                f"{quoted(posixpath.join(shm_dir, name))}"))
        seen_paths[name] = region
        if member_vbdf.bus != 0:
            warnings.append(
                f"region {quoted(name)}: VBDF {member_vbdf} is on bus "
                f"{member_vbdf.bus:02x}; QEMU puts the device on bus 0 at "
                f"{member_vbdf.device:02x}.{member_vbdf.function}")
        if region.region_id is not None and region.region_id.text and (
                region.id_number != 0):
            warnings.append(
                f"region {quoted(name)} has region id "
                f"{quoted(region.region_id.text)}, which QEMU cannot show "
                "as the PCI subsystem id: find the device by its address "
                f"{member_vbdf.device:02x}.{member_vbdf.function} instead")
        found.append((region, size, member_vbdf))
    devices = _place(found, ids, shm_dir, master, warnings, scenario,
                     doorbell)
    pages = [] if doorbell is not None else _hugepage_warnings(
        shm_dir, hugepages,
        [(device.name, device.size_mb or 0) for device in devices], proc)
    return QemuPlan(target.name, shm_dir, hugepages, devices,
                    tuple(warnings + pages), tuple(pages))


def _only_region(scenario: Scenario, vm: Vm, name: str,
                 regions: list[Region], addresses: list[Bdf]
                 ) -> tuple[list[Region], list[Bdf]]:
    """The region called ``name`` among ``regions``, and its address."""
    wanted = region_named(scenario, name)
    for region, address in zip(regions, addresses):
        if region is wanted:
            return [region], [address]
    mine = ", ".join(region.label for region in regions)
    raise UsageError(located(
        scenario.path, None, None,
        f"VM {vm.label} is not in region {quoted(name)}; its regions are: "
        f"{mine}"))


def region_named(scenario: Scenario, name: str) -> Region:
    """The region of ``scenario`` called ``name``; raise
    :class:`UsageError` listing the regions if there is none."""
    for region in scenario.regions:
        if region.name is not None and region.name.text == name:
            return region
    known = ", ".join(region.label for region in scenario.regions) or "none"
    raise UsageError(located(
        scenario.path, None, None,
        f"no region named {quoted(name)}; the regions are: {known}"))


def _at(scenario: Scenario, region: Region, message: str) -> str:
    """``message`` located at ``region`` of ``scenario``."""
    return located(scenario.path, region.loc.line, region.loc.column,
                   message)


def _find_vm(scenario: Scenario, name: str) -> Vm:
    vm = scenario.vm_named(name)
    if vm is None and scenario.is_legacy and is_decimal(name.strip()):
        vm = scenario.vm_for(name)
    if vm is not None:
        return vm
    known = ", ".join(vm.label for vm in scenario.vms) or "none"
    hint = " (or id)" if scenario.is_legacy else ""
    raise UsageError(located(
        scenario.path, None, None,
        f"no VM named {quoted(name)}; the VMs{hint} are: {known}"))


def _is_member(scenario: Scenario, vm: Vm, ref: str) -> bool:
    if scenario.is_legacy:
        return scenario.vm_for(ref) is vm
    return ref.strip() == vm.name


def _regions_of(scenario: Scenario, vm: Vm) -> list[Region]:
    if scenario.is_legacy:
        enabled = (scenario.ivshmem_enabled.text
                   if scenario.ivshmem_enabled else None)
        if scenario.regions and enabled != "y":
            state = (f"is {quoted(enabled)}" if enabled is not None
                     else "is missing")
            raise UsageError(located(
                scenario.path, None, None,
                f"IVSHMEM_ENABLED {state}, so ACRN v2.x ignores every "
                "IVSHMEM_REGION: set it to 'y'"))
        for region in scenario.regions:
            if region.malformed:
                raise UsageError(_at(
                    scenario, region,
                    f"cannot read IVSHMEM_REGION "
                    f"{quoted(region.legacy.raw.text)}: run 'acrn-shm lint' "
                    "on the file"))
    return [region for region in scenario.regions
            if any(member.vm is not None
                   and _is_member(scenario, vm, member.vm.text)
                   for member in region.members)]


def _no_region_message(scenario: Scenario, vm: Vm) -> str:
    if not scenario.regions:
        return (f"VM {vm.label} is in no IVSHMEM region: the scenario "
                "has none")
    listed = []
    for region in scenario.regions:
        names = []
        for member in region.members:
            if member.vm is None:
                continue
            other = scenario.vm_for(member.vm.text)
            names.append(other.label if other else quoted(member.vm.text))
        listed.append(f"{region.label} ({', '.join(names) or 'no VM'})")
    return (f"VM {vm.label} is in no IVSHMEM region; the regions are: "
            + "; ".join(listed))


def _region_size(scenario: Scenario, region: Region) -> int:
    size = scenario.resolved.region(region).size_mb
    if size is None:
        text = region.size.text if region.size else ""
        raise UsageError(_at(scenario, region,
                             f"region {region.label} has size "
                             f"{quoted(text)}; expected a number of MB"))
    try:
        _check_size(size, f"the size of region {region.label}")
    except UsageError as exc:
        raise UsageError(_at(scenario, region, str(exc))) from None
    return size


def _addresses(scenario: Scenario, vm: Vm,
               regions: list[Region]) -> list[Bdf]:
    """The VM's VBDF in each of ``regions`` (ACRN's defaults if none)."""
    if scenario.is_legacy:
        # ACRN's upgrader: a per-VM counter from 00:08.0, in region order.
        return [Bdf(0, FIRST_IVSHMEM_DEVICE + index, 0)
                for index in range(len(regions))]
    explicit: list[Bdf | None] = []
    for region in regions:
        member = next(
            facts for facts in scenario.resolved.region(region).members
            if facts.syntax.vm is not None
            and _is_member(scenario, vm, facts.syntax.vm.text))
        if member.vbdf_reason == NOT_VBDF:
            loc = member.syntax.vbdf.loc
            raise UsageError(located(
                scenario.path, loc.line, loc.column,
                f"VBDF {quoted(member.syntax.vbdf.text)} of VM {vm.label} "
                f"in region {region.label} is not 'bb:dd.f'"))
        explicit.append(member.vbdf)  # None: ACRN's default below
    # ACRN's populator: the lowest of 00:08.0..00:0f.0 this VM leaves free.
    used = {bdf for bdf in explicit if bdf is not None}
    result = []
    for region, bdf in zip(regions, explicit):
        if bdf is None:
            bdf = next((Bdf(0, device, 0) for device in range(
                FIRST_IVSHMEM_DEVICE, _LAST_DEFAULT_DEVICE + 1)
                if Bdf(0, device, 0) not in used), None)
            if bdf is None:
                raise UsageError(_at(
                    scenario, region,
                    f"VM {vm.label} has no VBDF in region {region.label} "
                    "and 00:08.0-00:0f.0 are all taken; give it one"))
            used.add(bdf)
        result.append(bdf)
    return result


def _machine_slot_warning(name: str, slot: int) -> str:
    return (f"{quoted(name)} is at slot {slot:02x}, where QEMU puts "
            f"{_MACHINE_SLOTS[slot]}; QEMU fails if that device is "
            "there: use slot 03-1e")


def _place(found: list[tuple[Region, int, Bdf]], ids: _Ids, shm_dir: str,
           master: bool, warnings: list[str], scenario: Scenario,
           doorbell: Doorbell | None) -> tuple[ShmDevice, ...]:
    by_addr: dict[tuple[int, int], Region] = {}
    for region, _size, bdf in found:
        key = (bdf.device, bdf.function)
        if key in by_addr:
            raise UsageError(_at(
                scenario, region,
                f"regions {by_addr[key].label} and {region.label} are both "
                f"at {bdf.device:02x}.{bdf.function} of this VM; QEMU "
                "needs one device per address"))
        by_addr[key] = region
    slots = {}
    for device, function in by_addr:
        slots.setdefault(device, set()).add(function)
    devices = []
    for region, size, bdf in sorted(found, key=lambda item: (
            item[2].device, item[2].function)):
        name = region.name.text
        functions = slots[bdf.device]
        if bdf.device in _MACHINE_SLOTS:
            warnings.append(_machine_slot_warning(name, bdf.device))
        if bdf.function and 0 not in functions:
            warnings.append(
                f"region {quoted(name)} is function {bdf.function} of slot "
                f"{bdf.device:02x}, which has no function 0; guests do "
                "not scan such a slot")
        mem_path = None if doorbell else posixpath.join(shm_dir, name)
        devices.append(ShmDevice(
            name, size, mem_path, ids.take(name), bdf.device, bdf.function,
            multifunction=bdf.function == 0 and len(functions) > 1,
            master=master, doorbell=doorbell))
    return tuple(devices)
