"""The ACRN configuration as acrn-shm sees it: frozen records.

Everything a rule needs is here, with the source location of every value,
so rules never touch XML. Values keep the user's raw text; rules decide
what is valid. :mod:`acrn_ivshmem.model.loader` builds these from XML files.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from enum import Enum
from functools import cached_property
from typing import NamedTuple

from ..errors import quoted, shortened
from ..io.xmlio import Document, Loc
from ..record import frozen

__all__ = [
    "Bdf", "Board", "ElementNote", "LaunchConfig", "LaunchInputs",
    "LaunchVm",
    "LegacyText", "Loc", "Member", "Region", "Scenario", "Suppression",
    "Suppressions", "Value", "Vm", "VmKind", "VuartEndpoint",
    "decimal_int", "is_decimal", "lowest_free_id", "parse_vbdf",
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
# Far above any real value, far below int()'s limit of 4300 digits.
_MAX_DIGITS = 1000
#: The largest region id: a guest reads it as the 16-bit PCI subsystem id.
MAX_REGION_ID = 0xFFFF
#: The device number of ACRN's first automatic IVSHMEM VBDF (00:08.0),
#: as its populator and upgrader assign them.
FIRST_IVSHMEM_DEVICE = 0x08
_VBDF = re.compile(r"([0-9A-Fa-f]{1,2}):([0-1][0-9A-Fa-f])\.([0-7])")


def decimal_int(text: str) -> int | None:
    """The number ASCII decimal ``text`` stands for; None for other text
    or for more digits than ``int()`` converts (4300)."""
    if not is_decimal(text) or len(text.lstrip("0")) > _MAX_DIGITS:
        return None
    return int(text)


def lowest_free_id(used) -> int:
    """The smallest region id (from 0) that is not in ``used``."""
    taken = set(used)
    number = 0
    while number in taken:
        number += 1
    return number


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


@frozen
class Value:
    """A piece of text from the source and where it starts."""

    text: str
    loc: Loc


@frozen
class Vm:
    """A VM of a scenario.

    Attributes: ``id`` (int, or None when ``id_text`` is not one),
    ``id_text``, ``name`` (None when absent), ``kind``, ``vm_type`` (the
    raw v2 ``vm_type`` or v3 ``load_order`` text), ``loc``, ``rt`` (a
    real-time VM: v3 ``vm_type`` ``RTVM``; legacy, see
    :func:`~acrn_ivshmem.model.loader.is_legacy_rt`).
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
            return quoted(self.name)
        return f"id {shortened(self.id_text)}"


@frozen
class Member:
    """One VM's membership in a region.

    ``vm`` is the VM reference as written: a VM name (v3) or a VM id
    (legacy). ``vbdf`` is the virtual BDF (v3 only; None when absent).
    """

    vm: Value | None
    vbdf: Value | None
    loc: Loc


@frozen
class LegacyText:
    """A legacy ``IVSHMEM_REGION`` string split into its comma fields.

    ``raw`` is the element's text; ``fields`` are the comma-separated
    parts, stripped, each with its own location; ``prefix`` is the text
    up to and including ``:/`` in the first field ('' when absent).
    """

    raw: Value
    fields: tuple[Value, ...]
    prefix: Value | None


@frozen
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
        return quoted(self.name.text) if self.name else "(unnamed)"

    @property
    def id_number(self) -> int | None:
        """The id a guest sees: ``IVSHMEM_REGION_ID`` when it is a decimal
        number up to :data:`MAX_REGION_ID`, 0 (ACRN's default) when the
        region has none, None for any other text (the policy of
        :mod:`acrn_ivshmem.model.resolved`)."""
        from .resolved import resolve_region_id

        return resolve_region_id(self.region_id)[0]


@frozen
class VuartEndpoint:
    """One end of a PCI vUART connection (v3): VM name and VBDF."""

    connection: str
    vm: Value | None
    vbdf: Value | None
    loc: Loc


@frozen
class VirtioConsole:
    """A v3 ``virtio_devices/console``: use type, backend and its path."""

    use_type: str | None
    backend: str | None
    path: str | None


@frozen
class GpuDisplay:
    """One display of a v3 virtio GPU (window or full screen)."""

    resolution: str | None
    horizontal_offset: str | None
    vertical_offset: str | None
    monitor_id: str | None


@frozen
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


@frozen
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


class Suppressions:
    """Answers :meth:`Suppression.covers` for many suppressions at once,
    in time that grows with the logarithm of their number."""

    def __init__(self, suppressions: tuple[Suppression, ...]):
        # By code: the starts in order, and the furthest end of any
        # suppression that starts there or before. ``loc`` is covered
        # when that end is at or after it.
        spans: dict[str, list[tuple[Loc, Loc]]] = {}
        for item in suppressions:
            for code in item.codes:
                spans.setdefault(code, []).append((item.first, item.last))
        self._starts: dict[str, list[Loc]] = {}
        self._reach: dict[str, list[Loc]] = {}
        for code, pairs in spans.items():
            pairs.sort()
            reach = []
            for _first, last in pairs:
                reach.append(max(last, reach[-1]) if reach else last)
            self._starts[code] = [first for first, _last in pairs]
            self._reach[code] = reach

    def covers(self, code: str, loc: Loc) -> bool:
        """True when any of the suppressions silences ``code`` at ``loc``."""
        starts = self._starts.get(code)
        if not starts:
            return False
        index = bisect_right(starts, loc)
        return index > 0 and self._reach[code][index - 1] >= loc


@frozen
class ElementNote:
    """An element of a scenario that ACRN refuses and acrn-shm skips.

    ``kind`` is ``"unknown"`` (no ACRN version of the file's format
    knows the name there), ``"repeated"`` (ACRN allows one under the
    parent and this is a later one; ``first`` is where the first one
    starts) or ``"namespaced"`` (in the XML namespace ``namespace``).
    ``name`` is the element's name as written (with its prefix),
    ``parent`` its parent's name, ``loc`` where it starts and
    ``suggestion`` a name ACRN knows there that it was perhaps meant to
    be (unknown elements only; None when nothing is close).
    """

    kind: str
    name: str
    parent: str
    loc: Loc
    first: Loc | None = None
    namespace: str | None = None
    suggestion: str | None = None


@frozen
class Scenario:
    """A scenario XML.

    Attributes: ``path``, ``format`` (``"legacy"`` for ACRN v2.2-v2.7,
    ``"v3"`` for v3.x), ``board_name`` (the root's ``board`` attribute,
    None when absent), ``vms``, ``regions`` (document order, from
    every ``IVSHMEM`` block, see ``ivshmem_blocks``), ``ivshmem_loc``
    (the first ``IVSHMEM`` element, None when absent),
    ``ivshmem_enabled`` (legacy ``IVSHMEM_ENABLED`` of the first block),
    ``pci_vuarts``, ``suppressions``, ``root_loc``; for v3 files also
    ``scheduler``, ``ssram`` and ``dm_settings`` (VM name -> the
    :class:`DeviceModelSettings` of each post-launched VM);
    ``ivshmem_blocks`` (where every ``hv/FEATURES/IVSHMEM`` starts: ACRN
    allows one) and ``element_notes`` (what ACRN would refuse and
    acrn-shm does not read, see :class:`ElementNote`).
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
    ivshmem_blocks: tuple[Loc, ...] = ()
    element_notes: tuple[ElementNote, ...] = ()

    @property
    def is_legacy(self) -> bool:
        """True for the ACRN v2.x format."""
        return self.format == "legacy"

    @cached_property
    def resolved(self):
        """The typed facts of this scenario
        (:class:`~acrn_ivshmem.model.resolved.ResolvedScenario`), made
        on first use and kept."""
        from .resolved import _resolve_scenario

        return _resolve_scenario(self)

    def vm_for(self, ref: str) -> Vm | None:
        """The VM a member reference names: by id (legacy) or name (v3)."""
        if self.is_legacy:
            number = decimal_int(ref.strip())
            return None if number is None else self._vms_by_id.get(number)
        return self.vm_named(ref)

    def vm_named(self, name: str) -> Vm | None:
        """The VM called ``name``, or None."""
        return self._vms_by_name.get(name)

    def members_of(self, vm_name: str) -> tuple[tuple[Region, Member], ...]:
        """Every (region, member) whose member names ``vm_name`` as
        written, in document order."""
        return self._members_by_vm.get(vm_name, ())

    def settings_of(self, vm_name: str) -> DeviceModelSettings | None:
        """The Device Model settings of post-launched VM ``vm_name``."""
        return self._settings_by_name.get(vm_name)

    # Look-ups made once: rules and plans ask for every VM and member.
    # The first VM of a name or id wins, as a search in order would.

    @cached_property
    def _members_by_vm(self) -> dict[str, tuple[tuple[Region, Member], ...]]:
        found: dict[str, list[tuple[Region, Member]]] = {}
        for region in self.regions:
            for member in region.members:
                if member.vm is not None:
                    found.setdefault(member.vm.text, []).append(
                        (region, member))
        return {name: tuple(pairs) for name, pairs in found.items()}

    @cached_property
    def _settings_by_name(self) -> dict[str, DeviceModelSettings]:
        found: dict[str, DeviceModelSettings] = {}
        for name, settings in self.dm_settings:
            found.setdefault(name, settings)
        return found

    @cached_property
    def _vms_by_id(self) -> dict[int | None, Vm]:
        found: dict[int | None, Vm] = {}
        for vm in self.vms:
            found.setdefault(vm.id, vm)
        return found

    @cached_property
    def _vms_by_name(self) -> dict[str | None, Vm]:
        found: dict[str | None, Vm] = {}
        for vm in self.vms:
            found.setdefault(vm.name, vm)
        return found


@frozen
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


@frozen
class LaunchVm:
    """A ``user_vm`` (``uos`` before v2.7) of a v2.x launch XML."""

    id_text: str | None
    vm_name: str | None
    shm_regions: tuple[Value, ...]
    loc: Loc


@frozen
class LaunchConfig:
    """A v2.x launch XML: the post-launched VMs and their ``shm_region``."""

    path: str
    board_name: str | None
    scenario_name: str | None
    vms: tuple[LaunchVm, ...]
    suppressions: tuple[Suppression, ...]
    root_loc: Loc


@frozen
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


@frozen
class LaunchScript:
    """The parts of an acrn-dm launch script that ``check-launch`` reads.

    ``vm_name`` comes from the ``# Launch script for VM name:`` header,
    else from acrn-dm's last argument (None when neither gives one);
    ``anchor`` is the ``acrn-dm`` call (or the ``dm_params`` array),
    where a missing device is reported; ``dm_call`` is where the acrn-dm
    command starts and ``dm_argument`` its last argument as written
    (None without an acrn-dm command). ``suppressions`` come from
    ``# acrn-shm: ignore CODE`` comment lines: each covers the next
    command (the next line that is neither blank nor a comment, with
    its continuation lines).
    """

    path: str
    vm_name: str | None
    devices: tuple[ScriptIvshmem, ...]
    anchor: Loc
    dm_call: Loc | None = None
    dm_argument: str | None = None
    suppressions: tuple[Suppression, ...] = ()


@frozen
class LaunchInputs:
    """A v3 scenario (converted if it was legacy) and its board.

    ``sources`` are the files the scenario's values come from, launch
    XMLs first: the v3 scenario, or the legacy one and its launch XMLs.
    """

    scenario: Scenario
    board: Board | None
    legacy: bool
    sources: tuple[Document, ...] = ()
