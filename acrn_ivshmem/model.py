"""The ACRN configuration as acrn-shm sees it: frozen dataclasses.

Everything a rule needs is here, with the source location of every value,
so rules never touch XML. Values keep the user's raw text; rules decide
what is valid. :mod:`acrn_ivshmem.loader` builds these from XML files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from .xmlio import Loc

__all__ = [
    "Bdf", "Board", "LaunchConfig", "LaunchVm", "LegacyText", "Loc",
    "Member", "Region", "Scenario", "Suppression", "Value", "Vm",
    "VmKind", "VuartEndpoint", "is_decimal", "parse_vbdf",
]


class VmKind(str, Enum):
    """How a VM is started: before the Service VM, as it, or by it."""

    PRE_LAUNCHED = "pre-launched"
    SERVICE = "service"
    POST_LAUNCHED = "post-launched"
    UNKNOWN = "unknown"


class Bdf(NamedTuple):
    """A PCI bus, device and function number."""

    bus: int
    device: int
    function: int

    def __str__(self) -> str:
        return f"{self.bus:02x}:{self.device:02x}.{self.function}"


def is_decimal(text: str) -> bool:
    """True for ASCII decimal digits only (``str.isdecimal`` takes any
    script's digits, which ACRN's C and Python code do not)."""
    return text.isascii() and text.isdecimal()


#: A VM name ACRN v3 accepts (``VMNameType``).
VM_NAME = re.compile(r"[A-Za-z0-9_-]{1,15}")
#: A region name acrn-shm accepts (ASCII, room for ``hv:/`` in 32 bytes).
REGION_NAME = re.compile(r"[A-Za-z0-9_]{1,27}")
#: The device number of ACRN's first automatic IVSHMEM VBDF (00:08.0),
#: as its populator and upgrader assign them.
FIRST_IVSHMEM_DEVICE = 0x08
_VBDF = re.compile(r"([0-9A-Fa-f]{1,2}):([0-1][0-9A-Fa-f])\.([0-7])")


def parse_vbdf(text: str | None) -> Bdf | None:
    """Parse ACRN's ``bb:dd.f`` VBDF syntax; None if it does not match.

    The syntax is ACRN's ``VBDFType``: 1-2 hex digits of bus, 2 hex
    digits of device (first digit 0 or 1), one octal digit of function.
    """
    if text is None:
        return None
    match = _VBDF.fullmatch(text)
    if match is None:
        return None
    bus, device, function = match.groups()
    return Bdf(int(bus, 16), int(device, 16), int(function))


@dataclass(frozen=True)
class Value:
    """A piece of text from the source and where it starts."""

    text: str
    loc: Loc


@dataclass(frozen=True)
class Vm:
    """A VM of a scenario.

    Attributes: ``id`` (int, or None when ``id_text`` is not one),
    ``id_text``, ``name`` (None when absent), ``kind``, ``vm_type`` (the
    raw v2 ``vm_type`` or v3 ``load_order`` text), ``loc``, ``rt`` (a
    real-time VM: v3 ``vm_type`` ``RTVM``; legacy, see
    :func:`~acrn_ivshmem.loader.is_legacy_rt`).
    """

    id: int | None
    id_text: str | None
    name: str | None
    kind: VmKind
    vm_type: str | None
    loc: Loc
    rt: bool = False

    @property
    def label(self) -> str:
        """How messages name the VM."""
        if self.name:
            return f"'{self.name}'"
        return f"id {self.id_text}"


@dataclass(frozen=True)
class Member:
    """One VM's membership in a region.

    ``vm`` is the VM reference as written: a VM name (v3) or a VM id
    (legacy). ``vbdf`` is the virtual BDF (v3 only; None when absent).
    """

    vm: Value | None
    vbdf: Value | None
    loc: Loc


@dataclass(frozen=True)
class LegacyText:
    """A legacy ``IVSHMEM_REGION`` string split into its comma fields.

    ``raw`` is the element's text; ``fields`` are the comma-separated
    parts, stripped, each with its own location; ``prefix`` is the text
    up to and including ``:/`` in the first field ('' when absent).
    """

    raw: Value
    fields: tuple[Value, ...]
    prefix: Value | None


@dataclass(frozen=True)
class Region:
    """A shared-memory region.

    Attributes: ``name`` (without ``hv:/``/``dm:/``), ``provider`` (v3
    ``PROVIDED_BY`` text, or the legacy prefix; None when absent, which
    means Hypervisor), ``size`` (MB, as text), ``region_id`` (text or
    None), ``members``, ``loc`` (the ``IVSHMEM_REGION`` element),
    ``vms_loc`` (the member list), ``legacy`` (the split string of a
    legacy region), ``malformed`` (a legacy string whose fields could not
    be told apart; value rules skip such regions).
    """

    name: Value | None
    provider: Value | None
    size: Value | None
    region_id: Value | None
    members: tuple[Member, ...]
    loc: Loc
    vms_loc: Loc | None
    legacy: LegacyText | None = None
    malformed: bool = False

    @property
    def land(self) -> str | None:
        """``"hv"``, ``"dm"``, or None for an unknown provider text."""
        if self.provider is None:
            return "hv"
        text = self.provider.text
        if text in ("Hypervisor", "hv:/"):
            return "hv"
        if text in ("Device Model", "dm:/"):
            return "dm"
        return None

    @property
    def label(self) -> str:
        """How messages name the region."""
        return f"'{self.name.text}'" if self.name else "(unnamed)"


@dataclass(frozen=True)
class VuartEndpoint:
    """One end of a PCI vUART connection (v3): VM name and VBDF."""

    connection: str
    vm: Value | None
    vbdf: Value | None
    loc: Loc


@dataclass(frozen=True)
class VirtioConsole:
    """A v3 ``virtio_devices/console``: use type, backend and its path."""

    use_type: str | None
    backend: str | None
    path: str | None


@dataclass(frozen=True)
class GpuDisplay:
    """One display of a v3 virtio GPU (window or full screen)."""

    resolution: str | None
    horizontal_offset: str | None
    vertical_offset: str | None
    monitor_id: str | None


@dataclass(frozen=True)
class DeviceModelSettings:
    """What acrn-dm needs for a post-launched VM (v3 ``<vm>`` settings).

    Text stays as written (stripped); flags are booleans. ``pcpus`` are
    pCPU ids; ``pci_vuarts`` pairs the 1-based index ACRN gives each
    vUART connection of this VM with the VBDF of this VM's end (PCI
    connections only); ``gpu`` is (display type, displays) or None.
    """

    vm_type: str
    os_type: str | None
    own_pcpu: bool
    pcpus: tuple[str, ...]
    memory_mb: str | None
    vbootloader: bool
    vuart0: bool
    console_vuart: str | None
    lapic_passthrough: bool
    usb_devs: tuple[str, ...]
    inputs: tuple[tuple[str, str | None], ...]
    consoles: tuple[VirtioConsole, ...]
    networks: tuple[tuple[str | None, str], ...]
    blocks: tuple[str, ...]
    gpu: tuple[str | None, tuple[GpuDisplay, ...]] | None
    vsocks: tuple[str, ...]
    pci_devs: tuple[str, ...]
    customized_parameters: str | None
    pci_vuarts: tuple[tuple[int, Value | None], ...]


@dataclass(frozen=True)
class Suppression:
    """``<!-- acrn-shm: ignore CODE -->``: codes silenced in an element.

    ``first`` and ``last`` are the start of the element's start and end
    tags; a finding between them (inclusive) is inside the element.
    """

    codes: frozenset[str]
    first: Loc
    last: Loc
    loc: Loc

    def covers(self, code: str, loc: Loc) -> bool:
        """True when this silences ``code`` at ``loc``."""
        return code in self.codes and self.first <= loc <= self.last


@dataclass(frozen=True)
class Scenario:
    """A scenario XML.

    Attributes: ``path``, ``format`` (``"legacy"`` for ACRN v2.2-v2.7,
    ``"v3"`` for v3.x), ``board_name`` (the root's ``board`` attribute,
    legacy files only), ``vms``, ``regions`` (document order),
    ``ivshmem_loc`` (the ``IVSHMEM`` element, None when absent),
    ``ivshmem_enabled`` (legacy ``IVSHMEM_ENABLED``), ``pci_vuarts``,
    ``suppressions``, ``root_loc``; for v3 files also ``scheduler``,
    ``ssram`` and ``dm_settings`` (VM name -> the
    :class:`DeviceModelSettings` of each post-launched VM).
    """

    path: str
    format: str
    board_name: str | None
    vms: tuple[Vm, ...]
    regions: tuple[Region, ...]
    ivshmem_loc: Loc | None
    ivshmem_enabled: Value | None
    pci_vuarts: tuple[VuartEndpoint, ...]
    suppressions: tuple[Suppression, ...]
    root_loc: Loc
    scheduler: str | None = None
    ssram: bool = False
    dm_settings: tuple[tuple[str, DeviceModelSettings], ...] = ()

    @property
    def is_legacy(self) -> bool:
        """True for the ACRN v2.x format."""
        return self.format == "legacy"

    def vm_for(self, ref: str) -> Vm | None:
        """The VM a member reference names: by id (legacy) or name (v3)."""
        if self.is_legacy:
            if not is_decimal(ref.strip()):
                return None
            wanted = int(ref.strip())
            return next((vm for vm in self.vms if vm.id == wanted), None)
        return next((vm for vm in self.vms if vm.name == ref), None)

    def vm_named(self, name: str) -> Vm | None:
        """The VM called ``name``, or None."""
        return next((vm for vm in self.vms if vm.name == name), None)


@dataclass(frozen=True)
class Board:
    """A board XML: its name and the PCI functions that exist natively.

    ``loc`` is the line of the root element (column 1); ``apic_ids``
    pairs each logical CPU id with its local APIC id.
    """

    path: str
    name: str | None
    native_bdfs: frozenset[Bdf]
    loc: Loc
    apic_ids: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class LaunchVm:
    """A ``user_vm`` (``uos`` before v2.7) of a v2.x launch XML."""

    id_text: str | None
    vm_name: str | None
    shm_regions: tuple[Value, ...]
    loc: Loc


@dataclass(frozen=True)
class LaunchConfig:
    """A v2.x launch XML: the post-launched VMs and their ``shm_region``."""

    path: str
    board_name: str | None
    scenario_name: str | None
    vms: tuple[LaunchVm, ...]
    suppressions: tuple[Suppression, ...]
    root_loc: Loc


@dataclass(frozen=True)
class ScriptIvshmem:
    """An ivshmem device found in a launch script.

    ``slot`` is the acrn-dm slot as written (``8``, ``8:1``,
    ``0:8:0``) and ``device``/``function`` what it means (None when it
    cannot be read); ``provider`` is ``hv``, ``dm`` or None (no prefix);
    ``size`` and ``region_id`` are text; ``loc`` is where the device's
    parameter starts.
    """

    slot: str
    device: int | None
    function: int | None
    provider: str | None
    name: str
    size: str
    region_id: str | None
    loc: Loc


@dataclass(frozen=True)
class LaunchScript:
    """The parts of an acrn-dm launch script that ``check-launch`` reads.

    ``vm_name`` comes from the ``# Launch script for VM name:`` header,
    else from acrn-dm's last argument (None when neither gives one);
    ``anchor`` is the ``acrn-dm`` call (or the ``dm_params`` array),
    where a missing device is reported; ``dm_call`` is where the acrn-dm
    command starts and ``dm_argument`` its last argument as written
    (None without an acrn-dm command).
    """

    path: str
    vm_name: str | None
    devices: tuple[ScriptIvshmem, ...]
    anchor: Loc
    dm_call: Loc | None = None
    dm_argument: str | None = None

