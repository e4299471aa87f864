"""Upgrade a legacy (ACRN v2.2-v2.7) scenario XML to the v3 format.

:func:`upgrade` converts a whole legacy scenario, plus the
settings of its v2.x launch XMLs, into a v3 scenario;
:func:`~acrn_ivshmem.upgrade.merge.merge_regions` adds the converted
IVSHMEM regions to an existing v3 scenario instead, changing nothing
else in it. The policy tables are in :mod:`acrn_ivshmem.upgrade.tables`.

IVSHMEM (the point of this module)
    Every non-empty ``IVSHMEM_REGION`` string ``hv:/name, size, 0:2``
    becomes a structured region (``hv:/`` -> ``Hypervisor``, ``dm:/`` ->
    ``Device Model``); VM ids become the VMs' names; each VM gets VBDFs
    00:08.0, 00:09.0, ... in the order regions are processed (ACRN's
    per-VM counter; with a board, a Service VM skips native devices).
    ``IVSHMEM_ENABLED`` is dropped: v3 has no switch. When it is not
    ``y`` the regions are not carried over (ACRN v2.x ignored them) and
    each one is reported in ``notes``. Launch XML ``shm_region`` values
    already in the scenario for that VM are not duplicated; a ``dm:/``
    value that is not creates or extends a ``Device Model`` region.
    Anything the v3 rules of acrn-shm would reject (malformed strings,
    bad names or sizes, unknown VM ids, name clashes, Device Model
    regions with pre-launched or Service VMs, more than 8 hypervisor
    regions, a Device Model region left with one VM) is a
    :class:`~acrn_ivshmem.errors.UsageError` naming file, line and text.

Every VM needs a name that v3 accepts (``[A-Za-z0-9_-]{1,15}``, unique):
v2.2-v2.6 files name VMs with spaces or not at all, and are refused
until the user gives each VM a valid ``<name>``.

The rest of the scenario (policy)
    Converted: the root loses its attributes; ``vm/@id`` and ``name``
    are kept, ``vm_type`` becomes ``load_order`` plus ``vm_type``
    (``RTVM`` for ``PRE_RT_VM``/``POST_RT_VM`` or ``GUEST_FLAG_RT``,
    else ``STANDARD_VM``); the renamed hypervisor booleans in
    :data:`RENAMED`; guest flags to the booleans in :data:`GUEST_FLAGS`;
    ``cpu_affinity/pcpu_id`` to ``cpu_affinity/pcpu`` (with
    ``real_time_vcpu`` ``y`` for an RTVM, as ACRN does); a pre-launched
    VM's ``memory`` to ``hpa_region`` entries (sizes in MB); legacy and
    PCI vUARTs to ``console_vuart`` and ``hv/vuart_connections``; and
    the Service VM's bootargs to what ACRN v2.7 really passed (``root=``
    from ``board_private/rootfs``, ``console=`` from ``SERIAL_CONSOLE``,
    then ``board_private/bootargs``).

    Copied unchanged (same meaning in v3): the paths in :data:`COPIED`
    (hypervisor settings) and :data:`COPIED_VM` (per-VM settings, for
    the kinds of VM v3 allows them on). Empty elements elsewhere are
    dropped silently: an empty element means "the default" in both
    formats. Attributes of copied elements (v2.2's ``desc``) are dropped.

    Noted ("discarded <xpath>" in ``notes``): settings v3 no longer has
    or computes itself (:data:`DISCARDED`), CLOS settings while RDT is
    off, zero EPC sections of VMs that cannot have one, the Service
    VM's ``memory`` and ``cpu_affinity``, ``os_config/name``, and any
    element acrn-shm does not know (ACRN v2.x generators ignore unknown
    elements too).

    Refused (one :class:`~acrn_ivshmem.errors.UsageError` listing every
    element): settings that change what the hypervisor builds and that
    acrn-shm cannot express faithfully: ``RDT_ENABLED`` ``y`` (v3 uses
    ``CACHE_REGION``), unknown guest flags and guest flags v3 does not
    allow on that kind of VM,
    ``GUEST_FLAG_NVMX_ENABLED`` without ``NVMX_ENABLED``, non-zero EPC
    sections or passthrough (``pci_devs``, ``mmio_resources``,
    ``pt_intx``, ``PTM``) on VMs v3 does not allow them on, a
    pre-launched VM's memory that is missing or not whole MB, vUARTs
    with ``CONFIG_COM_BASE``/``VUART_PCI`` or without a matching peer,
    two consoles in one VM, and boolean values other than ``y``/``n``
    in renamed settings.

Launch XMLs (v2.7 ``<user_vm>``, v2.2-v2.6 ``<uos>``) contribute their
``shm_regions`` (above) and their other settings, converted by
:mod:`acrn_ivshmem.upgrade.launch_xml` into the VM they describe; a setting
that does not convert stops the upgrade with every such setting named.
One launch XML per VM: two that both set up one VM are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree

from ..diagnostics import Diagnostic
from ..errors import UsageError, escaped, located, quoted, shortened
from ..io.xmlio import Document, Loc, parse_bytes
from ..lint.config import LintConfig
from ..lint.engine import run_rules
from ..model.loader import (
    LEGACY_VM_TYPES, RT_GUEST_FLAG, board_from, is_legacy_rt, kind_of,
    launch_from, refuse_much_to_read, scenario_from, split_legacy,
)
from ..model.resolved import TOO_LONG, read_number, resolve_size
from ..model.syntax import (
    FIRST_IVSHMEM_DEVICE, REGION_NAME, VM_NAME, Bdf, Board, Scenario, Value,
    VmKind, decimal_int, is_decimal,
)
from ..units import MIB
from .launch_xml import LaunchSettings, convert_launch_vm
from .tables import (
    COM_PORTS, COPIED, COPIED_VM, DEVICE_MODEL, DISCARDED,
    FIRST_VUART_DEVICE, FLAG_ORDER, GUEST_FLAGS, HEX, HV_CONTAINERS,
    HYPERVISOR, LOAD_ORDER, MAX_HV_REGIONS, NO_FLAG, POST, PROVIDERS,
    RENAMED, SIZES, SOS, VUART_TAGS,
)

__all__ = ["Assignment", "UpgradeResult", "upgrade"]

@dataclass(frozen=True)
class Assignment:
    """One VM's membership in a converted region (a row of the table).

    ``size`` is in MB; ``vm_id`` is the legacy VM id; ``source`` is
    ``"scenario"`` or the path of the launch XML the member came from.
    """

    region: str
    provider: str
    size: int
    vm_id: int | None
    vm_name: str
    vbdf: str
    source: str


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` produced.

    ``data`` is the complete v3 scenario (UTF-8, 2-space indentation,
    ``<acrn-config>`` on its own line, final newline); ``assignments``
    lists every region member; ``notes`` are one-line reports of what
    was dropped or changed on the way.
    """

    data: bytes
    assignments: tuple[Assignment, ...]
    notes: tuple[str, ...]


# --------------------------------------------------------------------------
# Public API


def upgrade(scenario: Document, launches: Sequence[Document] = (), *,
            board: Document | None = None,
            config: LintConfig | None = None) -> UpgradeResult:
    """Convert a legacy scenario (and its launch XMLs) to v3.

    ``board`` (optional) lets Service VM VBDFs avoid the board's native
    PCI devices. Raises :class:`UsageError` when the input cannot be
    converted faithfully; see the module documentation for the policy.
    The result must have no lint error with ``config`` (default: every
    rule at its own severity).
    """
    kind = kind_of(scenario)
    if kind != "legacy":
        raise UsageError(located(
            scenario.path, None, None,
            f"is a {kind_name(kind)}; upgrade expects a legacy (ACRN "
            "v2.x) scenario XML"))
    # As lint would: what the structure check reads bounds the VMs and
    # regions to convert (each costs far more than an element).
    refuse_much_to_read(scenario, kind)
    for launch in launches:
        refuse_much_to_read(launch, "launch")
    board_model = None
    if board is not None:
        if kind_of(board) != "board":
            raise UsageError(located(board.path, None, None,
                                     "expected a board XML"))
        board_model = board_from(board)
    return _Upgrader(scenario, list(launches), board_model,
                     config or LintConfig()).run()


# --------------------------------------------------------------------------
# Helpers


def kind_name(kind: str) -> str:
    """How messages name a file of ``kind`` (from :func:`kind_of`)."""
    return {"board": "board XML", "launch": "launch XML",
            "v3": "v3 scenario XML", "legacy": "legacy scenario XML"}[kind]


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return (element.text or "").strip()


def _one_line(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _shown(text: str) -> str:
    """Text for a message: stripped, on one line."""
    text = text.strip()
    if any(char in text for char in "\r\n\t"):
        return " ".join(text.split())
    return text


def _is_empty(element: etree._Element) -> bool:
    """True when the element and all descendants hold no text."""
    return not any((node.text or "").strip() for node in element.iter())


def _sub(parent: etree._Element, tag: str,
         text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def _copy(element: etree._Element) -> etree._Element:
    """A deep copy without attributes."""
    new = etree.Element(element.tag)
    new.text = element.text if not len(element) else None
    for child in element:
        if isinstance(child.tag, str):
            new.append(_copy(child))
    return new


def _int(text: str) -> int | None:
    """A decimal or ``0x`` hex number, or None."""
    text = text.strip()
    if HEX.fullmatch(text):
        return int(text[2:], 16)
    return int(text) if is_decimal(text) else None


@dataclass
class _VmInfo:
    id: int
    name: str
    kind: VmKind
    rt: bool
    element: etree._Element


@dataclass
class _Member:
    vm: _VmInfo
    vbdf: str
    source: str


@dataclass
class _Region:
    name: str
    provider: str
    size: int
    members: list[_Member] = field(default_factory=list)
    where: str = ""

    def has(self, vm: _VmInfo) -> bool:
        return any(member.vm is vm for member in self.members)


class _Vbdfs:
    """Per-VM device numbers: IVSHMEM from 00:08.0, vUARTs from 00:10.0."""

    def __init__(self, board: Board | None):
        self.board = board
        self.used: dict[str, set[int]] = {}

    def take(self, vm: _VmInfo, start: int) -> str | None:
        used = self.used.setdefault(vm.name, set())
        # Post-launched VMs may use devices 03..1e (ACRN v3.1+).
        last = 0x1E if vm.kind is POST else 0x1F
        for device in range(start, last + 1):
            if device in used:
                continue
            if (self.board is not None and vm.kind is SOS
                    and Bdf(0, device, 0) in self.board.native_bdfs):
                continue
            used.add(device)
            return str(Bdf(0, device, 0))
        return None


# --------------------------------------------------------------------------
# The conversion


class _Upgrader:
    """One conversion: collects notes and refusals while building."""

    def __init__(self, document: Document, launches: list[Document],
                 board: Board | None, config: LintConfig):
        self.doc = document
        self.config = config
        self.path = document.path
        self.root = document.root
        self.launches = launches
        self.board = board
        self.vbdfs = _Vbdfs(board)
        self.notes: list[tuple[int, int, str]] = []
        self.refusals: list[tuple[int, str]] = []
        self.vms: list[_VmInfo] = []
        self.regions: dict[str, _Region] = {}
        self.consoles: dict[int, str] = {}
        self.connections: list[etree._Element] = []
        self.consumed: set[etree._Element] = set()
        self.launch_settings: dict[int, tuple[Document, LaunchSettings]] = {}
        self.launch_refusals: list[tuple[str, int, str]] = []
        rdt = _text(self.root.find("hv/FEATURES/RDT/RDT_ENABLED"))
        self.rdt_enabled = rdt == "y"

    # ---- reporting

    def note(self, element: etree._Element | None, message: str):
        """Report ``message`` about an element of the scenario."""
        line = self.doc.loc(element).line if element is not None else 0
        self.notes.append((0, line, located(self.path, line or None, None,
                                            message)))

    def launch_note(self, index: int, launch: Document, line: int,
                    message: str):
        """Report ``message`` about line ``line`` of a launch XML."""
        self.notes.append((index, line, located(launch.path, line, None,
                                                message)))

    def discard(self, element: etree._Element, reason: str):
        """Note a non-empty element that is not carried over."""
        if _is_empty(element):
            return
        self.note(element, f"discarded {_xpath(element)}"
                  f"{_summary(element)}: {reason}")

    def refuse(self, element: etree._Element, reason: str):
        line = self.doc.loc(element).line
        self.refusals.append(
            (line, f"{_xpath(element)} (line {line}): {reason}"))

    def fail(self, loc: Loc | None, message: str) -> UsageError:
        if loc is None:
            return UsageError(located(self.path, None, None, message))
        return UsageError(located(self.path, loc.line, loc.column, message))

    # ---- driver

    def run(self) -> UpgradeResult:
        self._collect_vms()
        self._launch_notes()
        self._ivshmem()
        self._vuarts()
        new_root = etree.Element("acrn-config")
        hv = self.root.find("hv")
        new_root.append(self._hv(hv))
        for info in self.vms:
            new_root.append(self._vm(info))
        for child in self.root:
            if child.tag not in ("hv", "vm"):
                self.discard(child, "not part of a scenario acrn-shm "
                             "converts")
        if self.refusals:
            self.refusals.sort()
            first = self.refusals[0][0]
            raise UsageError(located(
                self.path, first, None,
                "cannot convert to v3 without changing what ACRN builds: "
                + "; ".join(text for _line, text in self.refusals)
                + "; convert these by hand"))
        etree.indent(new_root, space="  ")
        data = (etree.tostring(new_root, encoding="unicode") + "\n"
                ).encode("utf-8")
        self._self_check(data)
        self.notes.sort(key=lambda note: note[:2])
        return UpgradeResult(
            data=data,
            assignments=tuple(
                Assignment(region.name, region.provider, region.size,
                           member.vm.id, member.vm.name, member.vbdf,
                           member.source)
                for region in self.regions.values()
                for member in region.members),
            notes=tuple(text for _index, _line, text in self.notes))

    def _self_check(self, data: bytes):
        # The converted file must pass acrn-shm's own scenario rules.
        document = parse_bytes(data, self.path)
        model = scenario_from(document, kind_of(document))
        for found in lint_errors(self.config, self.path, model, self.board):
            raise self.fail(None, "the converted file would not pass "
                            f"{found.code}: {found.message}")

    # ---- VMs

    def _collect_vms(self):
        seen: dict[str, _VmInfo] = {}
        ids: set[int] = set()
        for element in self.root.iterfind("vm"):
            loc = self.doc.loc(element)
            id_text = (element.get("id") or "").strip()
            if not is_decimal(id_text):
                raise self.fail(loc, f"<vm> has id {quoted(id_text)}; a "
                                "decimal id is needed")
            vm_id = int(id_text)
            vm_type = _text(element.find("vm_type"))
            kind = LEGACY_VM_TYPES.get(vm_type)
            if kind is None:
                raise self.fail(loc, f"VM id {vm_id} has vm_type "
                                f"{quoted(vm_type)}, which has no v3 "
                                "load_order")
            name_element = element.find("name")
            name = _text(name_element)
            if not name:
                raise self.fail(
                    loc, f"VM id {vm_id} has no <name>; v3 refers to VMs "
                    "by name: give it a valid <name> first (1-15 letters, "
                    "digits, '_' or '-')")
            if not VM_NAME.fullmatch(name):
                raise self.fail(
                    self.doc.loc(name_element),
                    f"VM id {vm_id} is named {quoted(name)}, which v3 does "
                    "not accept: give it a valid <name> first (1-15 letters, "
                    "digits, '_' or '-')")
            if vm_id in ids:
                raise self.fail(loc, f"VM id {vm_id} is used twice")
            if name in seen:
                raise self.fail(
                    self.doc.loc(name_element),
                    f"VM ids {seen[name].id} and {vm_id} are both named "
                    f"{quoted(name)}; v3 needs unique names: rename one first")
            info = _VmInfo(vm_id, name, kind, is_legacy_rt(element),
                           element)
            seen[name] = info
            ids.add(vm_id)
            self.vms.append(info)
        self.by_id = {info.id: info for info in self.vms}
        self.by_name = {info.name: info for info in self.vms}

    # ---- IVSHMEM

    def _ivshmem(self):
        ivshmem = self.root.find("hv/FEATURES/IVSHMEM")
        elements = []
        enabled_element = None
        if ivshmem is not None:
            enabled_element = ivshmem.find("IVSHMEM_ENABLED")
            elements = [element for element in ivshmem
                        if element.tag == "IVSHMEM_REGION"
                        and not _is_empty(element)]
            for child in ivshmem:
                if child.tag not in ("IVSHMEM_ENABLED", "IVSHMEM_REGION"):
                    self.discard(child, "not an IVSHMEM setting")
        enabled = _text(enabled_element)
        if enabled_element is not None and enabled not in ("y", "n"):
            raise self.fail(
                self.doc.text_loc(enabled_element),
                f"IVSHMEM_ENABLED is {quoted(enabled)}; it must be 'y' or 'n'")
        for element in elements:
            if len(element):
                raise self.fail(
                    self.doc.loc(element),
                    "IVSHMEM_REGION has child elements; a legacy scenario "
                    "holds 'hv:/name, size, id:id' strings")
        if enabled != "y":
            self._ivshmem_disabled(enabled_element, enabled, elements)
            return
        for element in elements:
            self._legacy_region(element)
        for index, launch in enumerate(self.launches, start=1):
            self._launch(index, launch)
        self.note(enabled_element, "IVSHMEM_ENABLED dropped: ACRN v3 "
                  "enables IVSHMEM when a region exists" + (
                      "" if self.regions else ", and there is none"))
        for region in self.regions.values():
            if len(region.members) < 2:
                raise UsageError(f"{region.where}: " + escaped(
                    f"Device Model region {quoted(region.name)} "
                    f"is used by VM {quoted(region.members[0].vm.name)} only; "
                    "v3 regions need at least two VMs: give the launch "
                    "XML of the other VM too"))
        hv_regions = [region for region in self.regions.values()
                      if region.provider == HYPERVISOR]
        if len(hv_regions) > MAX_HV_REGIONS:
            extra = hv_regions[MAX_HV_REGIONS]
            raise UsageError(
                f"{extra.where}: region {quoted(extra.name)} is hypervisor "
                f"region number {MAX_HV_REGIONS + 1}; ACRN allows at "
                f"most {MAX_HV_REGIONS}")

    def _ivshmem_disabled(self, enabled_element, enabled, elements):
        state = (f"IVSHMEM_ENABLED is {quoted(enabled)}" if enabled_element
                 is not None else "IVSHMEM_ENABLED is missing (so 'n')")
        if enabled_element is not None:
            self.note(enabled_element,
                      f"IVSHMEM_ENABLED ({quoted(enabled)}) dropped: ACRN v3 "
                      "has no switch; no region is carried over, so IVSHMEM "
                      "stays off")
        for element in elements:
            name = (element.text or "").split(",")[0].strip()
            name = name[4:] if name[:4] in PROVIDERS else name
            self.note(element, f"{state}: region {quoted(name)} not carried "
                      "over (ACRN would ignore it)")
        for index, launch in enumerate(self.launches, start=1):
            for lvm in launch_from(launch).vms:
                for value in lvm.shm_regions:
                    self.launch_note(
                        index, launch, value.loc.line,
                        f"{state}: launch shm_region "
                        f"{quoted(_shown(value.text))} not carried over (ACRN "
                        "would ignore it)")

    def _legacy_region(self, element: etree._Element):
        legacy = split_legacy(Value(element.text or "",
                                    self.doc.text_loc(element)))
        raw = _shown(legacy.raw.text)
        fields = legacy.fields
        loc = fields[0].loc

        def bad(reason: str, syntax: bool = True) -> UsageError:
            example = ("; write it as '<hv:/ or dm:/><name>, <size in MB>, "
                       "<VM id>:<VM id>[:...]', e.g. 'hv:/shm_region_0, 2, "
                       "0:2'") if syntax else ""
            return self.fail(loc, "cannot convert IVSHMEM_REGION "
                             f"{quoted(raw)}: {reason}{example}")

        if len(fields) != 3:
            raise bad(f"it has {len(fields)} comma-separated field"
                      f"{'s' if len(fields) != 1 else ''}; 3 are needed "
                      "(name, size in MB, VM ids)")
        first, size_field, ids_field = fields
        prefix = first.text[:4]
        if prefix not in PROVIDERS:
            raise bad("the name must start with 'hv:/' or 'dm:/'")
        name = first.text[4:]
        if not name:
            raise bad("the name after the prefix is empty")
        size, reason = resolve_size(size_field, legacy=True)
        if size is None and reason != TOO_LONG:
            raise bad(f"size {quoted(size_field.text)} is not a decimal "
                      "number of MB")
        parts = [part.strip() for part in ids_field.text.split(":")]
        if len(parts) < 2 or not all(is_decimal(part) for part in parts):
            raise bad(f"VM ids {quoted(ids_field.text)} must be two or more "
                      "decimal ids separated by ':'")
        self._check_name_size(name, size if size is not None
                              else shortened(size_field.text),
                              lambda reason: bad(reason, syntax=False))
        provider = PROVIDERS[prefix]
        vms = []
        listed = set()
        for part in parts:
            number = decimal_int(part)
            vm = self.by_id.get(number) if number is not None else None
            if vm is None:
                shown = number if number is not None else shortened(part)
                raise bad(f"VM id {shown} is not a VM of this scenario",
                          syntax=False)
            if vm.id in listed:
                raise bad(f"VM id {vm.id} is listed twice", syntax=False)
            if provider == DEVICE_MODEL and vm.kind is not POST:
                raise bad(
                    f"VM id {vm.id} ({quoted(vm.name)}) is {vm.kind.value}, "
                    "but v3 Device Model regions serve post-launched VMs "
                    "only: use 'hv:/' or remove the VM", syntax=False)
            vms.append(vm)
            listed.add(vm.id)
        if name in self.regions:
            raise bad(f"the name {quoted(name)} is already used by the region "
                      f"at {self.regions[name].where}; v3 needs unique names",
                      syntax=False)
        region = _Region(name, provider, int(size_field.text),
                         where=f"{self.path}:{loc.line}:{loc.column}")
        for vm in vms:
            region.members.append(_Member(vm, self._take(vm, region, loc),
                                          "scenario"))
        self.regions[name] = region

    def _check_name_size(self, name: str, size: int | str, bad):
        # size: MB, or the digits (shortened) of a number too long to read
        if not REGION_NAME.fullmatch(name):
            raise bad(f"region name {quoted(name)} is not valid in v3 (1-27 "
                      "ASCII letters, digits or '_'): rename it first")
        if size not in SIZES:
            raise bad(f"size {size} MB is not one of "
                      f"{', '.join(map(str, SIZES))}")

    def _take(self, vm: _VmInfo, region: _Region, loc: Loc,
              path: str | None = None) -> str:
        vbdf = self.vbdfs.take(vm, FIRST_IVSHMEM_DEVICE)
        if vbdf is None:
            raise UsageError(located(
                path or self.path, loc.line, loc.column,
                f"VM {quoted(vm.name)} has no free PCI device number left for "
                f"region {quoted(region.name)}"))
        return vbdf

    # ---- launch XMLs

    def _check_launch_kind(self, launch: Document):
        kind = kind_of(launch)
        if kind != "launch":
            raise UsageError(located(
                launch.path, None, None,
                f"is a {kind_name(kind)}; expected a v2.x launch XML "
                "(<user_vm> or <uos>)"))

    def _launch_notes(self):
        """Check that every launch XML is one; note what is not read."""
        for index, launch in enumerate(self.launches, start=1):
            self._check_launch_kind(launch)
            model = launch_from(launch)
            line = model.root_loc.line
            scenario_name = self.root.get("scenario")
            if (model.scenario_name and scenario_name
                    and model.scenario_name != scenario_name):
                self.launch_note(
                    index, launch, line,
                    "launch XML is for scenario "
                    f"{quoted(model.scenario_name)}, "
                    f"not {quoted(scenario_name)}")
            elements = [element for element in launch.root
                        if element.tag in ("user_vm", "uos")]
            for element, lvm in zip(elements, model.vms):
                self._launch_settings(launch, element, lvm)
        if self.launch_refusals:
            self.launch_refusals.sort()
            path, first = self.launch_refusals[0][:2]
            raise UsageError(located(
                path, first, None,
                "cannot convert these launch settings to v3: "
                + "; ".join(text for _path, _line, text
                            in self.launch_refusals)
                + "; remove them or convert them by hand"))

    def _launch_settings(self, launch: Document, element, lvm):
        settings = convert_launch_vm(element)
        if settings.empty:
            return
        vm = self._launch_vm(launch, lvm, required=True)
        if vm.id in self.launch_settings:
            other = self.launch_settings[vm.id][0]
            raise UsageError(located(
                launch.path, lvm.loc.line, lvm.loc.column,
                f"VM {quoted(vm.name)} also has launch settings in "
                f"{other.path}; give one launch XML per VM"))
        self.launch_settings[vm.id] = (launch, settings)
        vm.rt = vm.rt or settings.rt
        for refused, reason in settings.refusals:
            line = launch.loc(refused).line
            self.launch_refusals.append(
                (launch.path, line,
                 f"{_xpath(refused)}{_summary(refused)} (line {line}): "
                 f"{reason}"))

    def _launch(self, index: int, launch: Document):
        model = launch_from(launch)
        for lvm in model.vms:
            vm = self._launch_vm(launch, lvm)
            if vm is None:
                continue
            names = set()
            for value in lvm.shm_regions:
                names.add(self._launch_region(index, launch, vm, value))
            for region in self.regions.values():
                if region.has(vm) and region.name not in names:
                    self.launch_note(
                        index, launch, lvm.loc.line,
                        f"VM {quoted(vm.name)} shares region "
                        f"{quoted(region.name)} in "
                        "the scenario but has no shm_region for it here; "
                        "v3 launch scripts add the device anyway")

    def _launch_vm(self, launch, lvm, required: bool = False
                   ) -> _VmInfo | None:
        """The scenario VM of launch VM ``lvm``; None if it has no data.

        A launch VM with ``shm_region`` values or other settings
        (``required``) must map to a post-launched VM of the scenario.
        """
        required = required or bool(lvm.shm_regions)
        where = located(launch.path, lvm.loc.line, lvm.loc.column, "")
        if lvm.vm_name:
            vm = self.by_name.get(lvm.vm_name)
            if vm is None:
                if not required:
                    return None
                raise UsageError(where + escaped(
                    f"user_vm {lvm.id_text} is {quoted(lvm.vm_name)}, "
                    f"which is not a VM of {self.path}"))
        else:
            service = next((vm for vm in self.vms if vm.kind is SOS),
                           None)
            offset = (lvm.id_text or "").strip()
            vm = None
            if service is not None and is_decimal(offset):
                vm = self.by_id.get(service.id + int(offset))
            if vm is None:
                if not required:
                    return None
                raise UsageError(where + escaped(
                    f"cannot tell which scenario VM launch VM "
                    f"{offset or '(no id)'} is: it has no <vm_name> and "
                    "its id plus the Service VM's id is not a VM id"))
        if vm.kind is not POST:
            if not required:
                return None
            raise UsageError(where + escaped(
                f"launch VM {quoted(vm.name)} is {vm.kind.value} in "
                f"{self.path}; launch XMLs are for post-launched VMs"))
        return vm

    def _launch_region(self, index: int, launch: Document, vm: _VmInfo,
                       value: Value) -> str:
        raw = _shown(value.text)
        loc = value.loc

        def bad(reason: str, syntax: bool = True) -> UsageError:
            example = ("; write it as 'dm:/<name>,<size in MB>' or "
                       "'hv:/<name>,<size in MB>'") if syntax else ""
            return UsageError(located(
                launch.path, loc.line, loc.column,
                f"cannot convert shm_region {quoted(raw)} of VM "
                f"{quoted(vm.name)}: "
                f"{reason}{example}"))

        prefix = raw[:4]
        if prefix not in PROVIDERS:
            raise bad("it must start with 'hv:/' or 'dm:/'")
        fields = [part.strip() for part in raw[4:].split(",")]
        if len(fields) != 2 or not fields[0]:
            raise bad("it needs a name and a size, separated by one comma")
        name, size_text = fields
        size, reason = read_number(size_text)
        if size is None and reason != TOO_LONG:
            raise bad(f"size {quoted(size_text)} is not a decimal number "
                      "of MB")
        self._check_name_size(name, size if size is not None
                              else shortened(size_text),
                              lambda reason: bad(reason, syntax=False))
        provider = PROVIDERS[prefix]
        region = self.regions.get(name)
        if region is not None and region.provider != provider:
            raise bad(f"region {quoted(name)} is a {region.provider} region "
                      f"at {region.where}; v3 needs unique names: rename one",
                      syntax=False)
        if region is not None and region.size != size:
            raise bad(f"region {quoted(name)} has {region.size} MB at "
                      f"{region.where}; acrn-dm needs the same size",
                      syntax=False)
        if region is not None and region.has(vm):
            source = next(member.source for member in region.members
                          if member.vm is vm)
            origin = "the scenario" if source == "scenario" else source
            self.launch_note(
                index, launch, loc.line,
                f"shm_region {quoted(raw)} of VM {quoted(vm.name)} is already "
                f"in {origin}; not duplicated")
            return name
        if provider == HYPERVISOR:
            raise bad(f"the scenario does not share hypervisor region "
                      f"{quoted(name)} with VM id {vm.id}, so ACRN v2.7 "
                      "rejects it: add the VM to the scenario's "
                      "IVSHMEM_REGION "
                      "first", syntax=False)
        if region is None:
            region = _Region(name, DEVICE_MODEL, size,
                             where=f"{launch.path}:{loc.line}:{loc.column}")
            self.regions[name] = region
        region.members.append(_Member(
            vm, self._take(vm, region, loc, launch.path), launch.path))
        return name

    # ---- vUARTs

    def _vuarts(self):
        endpoints: dict[tuple[int, int], _Endpoint] = {}
        for vm in self.vms:
            self.consoles[vm.id] = self._vm_vuarts(vm, endpoints)
        paired: set[tuple[int, int]] = set()
        for key, endpoint in endpoints.items():
            if key in paired:
                continue
            peer = endpoints.get(endpoint.target)
            if (peer is None or peer.target != key
                    or peer.kind != endpoint.kind or peer is endpoint):
                self.refuse(endpoint.element, (
                    f"its peer (VM id {endpoint.target[0]}, vUART "
                    f"{endpoint.target[1]}) is not an enabled "
                    f"{endpoint.kind} vUART that points back; v3 only "
                    "has connected pairs"))
                continue
            paired.update((key, endpoint.target))
            connection = etree.Element("vuart_connection")
            _sub(connection, "name",
                 f"vUART connection {len(self.connections) + 1}")
            _sub(connection, "type", endpoint.kind)
            for end in (endpoint, peer):
                node = _sub(connection, "endpoint")
                _sub(node, "vm_name", end.vm.name)
                if end.kind == "legacy":
                    _sub(node, "io_port", end.io_port)
                else:
                    vbdf = self.vbdfs.take(end.vm, FIRST_VUART_DEVICE)
                    if vbdf is None:
                        self.refuse(end.element, "no free PCI device "
                                    "number left for this vUART")
                        vbdf = ""
                    _sub(node, "vbdf", vbdf)
            self.connections.append(connection)

    def _vm_vuarts(self, vm: _VmInfo, endpoints) -> str:
        """Collect the VM's vUART endpoints; return its v3 console."""
        consoles = []
        for element in vm.element:
            if element.tag not in VUART_TAGS:
                continue
            uart_id = (element.get("id") or "").strip()
            base = _text(element.find("base"))
            if element.tag == "legacy_vuart":
                if base in ("", "INVALID_COM_BASE"):
                    continue
                kind_text = _text(element.find("type"))
                port = COM_PORTS.get(base.removeprefix("SERVICE_VM_"))
                if kind_text not in ("", "VUART_LEGACY_PIO"):
                    self.refuse(element, f"type {quoted(kind_text)} is not "
                                "VUART_LEGACY_PIO")
                    continue
                if port is None:
                    self.refuse(element, f"base {quoted(base)} has no v3 "
                                "equivalent (v3 knows COM1-COM4 only)")
                    continue
                if uart_id == "0":
                    consoles.append((element, f"COM Port {port[1]}"))
                    continue
                kind, io_port = "legacy", port[0]
            else:
                if base in ("", "INVALID_PCI_BASE"):
                    continue
                if base != "PCI_VUART":
                    self.refuse(element, f"base {quoted(base)} is not "
                                "PCI_VUART or INVALID_PCI_BASE")
                    continue
                if element.tag == "console_vuart":
                    consoles.append((element, "PCI"))
                    continue
                kind, io_port = "pci", None
            target = (_int(_text(element.find("target_vm_id"))),
                      _int(_text(element.find("target_uart_id"))))
            if not is_decimal(uart_id) or None in target:
                self.refuse(element, "needs a decimal id, target_vm_id and "
                            "target_uart_id")
                continue
            key = (vm.id, int(uart_id))
            if key in endpoints:
                self.refuse(element, f"vUART id {uart_id} is used twice "
                            "in this VM")
                continue
            endpoints[key] = _Endpoint(vm, kind, target, element, io_port)
        if len(consoles) > 1:
            self.refuse(consoles[1][0], "a second console vUART; v3 has "
                        "one console per VM")
        return consoles[0][1] if consoles else "None"

    # ---- hypervisor settings

    def _hv(self, hv: etree._Element | None) -> etree._Element:
        new = etree.Element("hv")
        if hv is not None:
            self._hv_children(hv, new, "hv", new)
        features = new.find("FEATURES")
        if features is None:
            features = _sub(new, "FEATURES")
        if features.find("IVSHMEM") is None:
            features.append(self._ivshmem_element())
        if self.connections:
            connections = _sub(new, "vuart_connections")
            connections.extend(self.connections)
        return new

    def _hv_children(self, old: etree._Element, new: etree._Element,
                     path: str, new_hv: etree._Element):
        for child in old:
            child_path = f"{path}/{child.tag}"
            if child_path == "hv/FEATURES/IVSHMEM":
                new.append(self._ivshmem_element())
            elif child_path in COPIED:
                new.append(_copy(child))
            elif child_path in RENAMED:
                self._renamed(child, child_path, new, new_hv)
            elif child_path in ("hv/FEATURES/RDT/CLOS_MASK",
                                "hv/FEATURES/RDT/MBA_DELAY"):
                same = old.findall(child.tag)
                if child is same[0] and not self.rdt_enabled:
                    values = [f"{quoted(_text(node))}" for node in same
                              if _text(node)]
                    if values:
                        self.note(child, (
                            f"discarded {child_path[3:]} ({len(values)}: "
                            f"{_one_line(', '.join(values), 40)}): "
                            "RDT_ENABLED is not 'y', so it has no effect"))
            elif child_path == "hv/FEATURES/RDT" and self.rdt_enabled:
                self.refuse(child, "RDT_ENABLED is 'y': ACRN v3 allocates "
                            "caches with CACHE_REGION, which acrn-shm "
                            "does not convert (CLOS_MASK, MBA_DELAY, vm/clos)")
            elif child_path in HV_CONTAINERS:
                container = _sub(new, child.tag)
                self._hv_children(child, container, child_path, new_hv)
                if not len(container) and child_path != "hv/FEATURES":
                    new.remove(container)
            elif child_path in DISCARDED:
                self.discard(child, DISCARDED[child_path])
            else:
                self.discard(child, "not a setting acrn-shm converts")

    def _renamed(self, child, child_path, new, new_hv):
        target, values = RENAMED[child_path]
        value = _text(child)
        if not value:
            return
        if value not in values:
            self.refuse(child, f"value {quoted(value)} is not 'y' or 'n'")
            return
        element = etree.Element(target.rsplit("/", 1)[1])
        element.text = values[value]
        if target.count("/") == 1:
            new_hv.insert(0, element)  # BUILD_TYPE leads hv, as in v3
        else:
            new.append(element)

    def _ivshmem_element(self) -> etree._Element:
        ivshmem = etree.Element("IVSHMEM")
        for region in self.regions.values():
            element = _sub(ivshmem, "IVSHMEM_REGION")
            _sub(element, "NAME", region.name)
            _sub(element, "PROVIDED_BY", region.provider)
            _sub(element, "IVSHMEM_SIZE", str(region.size))
            vms = _sub(element, "IVSHMEM_VMS")
            for member in region.members:
                vm = _sub(vms, "IVSHMEM_VM")
                _sub(vm, "VM_NAME", member.vm.name)
                _sub(vm, "VBDF", member.vbdf)
        return ivshmem

    # ---- VM settings

    def _vm(self, info: _VmInfo) -> etree._Element:
        old = info.element
        new = etree.Element("vm", id=str(info.id))
        _sub(new, "load_order", LOAD_ORDER[info.kind])
        _sub(new, "vm_type", "RTVM" if info.rt else "STANDARD_VM")
        _sub(new, "name", info.name)
        console_done = False
        for child in old:
            tag = child.tag
            if tag in ("vm_type", "name"):
                continue
            if tag in VUART_TAGS:
                if not console_done:
                    _sub(new, "console_vuart", self.consoles[info.id])
                    console_done = True
                continue
            handler = self._VM_HANDLERS.get(tag)
            if handler is not None:
                handler(self, info, child, new)
            elif tag in COPIED_VM:
                self._copy_vm(info, child, new)
            elif f"vm/{tag}" in DISCARDED:
                self.discard(child, DISCARDED[f"vm/{tag}"])
            else:
                self.discard(child, "not a setting acrn-shm converts")
        if not console_done:
            _sub(new, "console_vuart", "None")
        stored = self.launch_settings.get(info.id)
        if stored is not None:
            self._apply_launch(info, stored[1], new)
        return new

    def _apply_launch(self, info: _VmInfo, settings: LaunchSettings, new):
        """Put a launch XML's converted settings into VM ``new``."""
        elements = list(settings.elements)
        if settings.pcpu_ids:
            affinity = etree.Element("cpu_affinity")
            for pcpu_id in settings.pcpu_ids:
                pcpu = _sub(affinity, "pcpu")
                _sub(pcpu, "pcpu_id", pcpu_id)
                if info.rt:
                    _sub(pcpu, "real_time_vcpu", "y")
            elements.insert(0, affinity)
        if settings.lapic_passthrough:
            lapic = etree.Element("lapic_passthrough")
            lapic.text = "y"
            elements.append(lapic)
        for element in elements:
            existing = new.find(element.tag)
            if existing is None:
                new.append(element)
            else:
                new.replace(existing, element)
        if settings.pci_devs:
            container = new.find("pci_devs")
            if container is None:
                container = _sub(new, "pci_devs")
            have = {(_text(dev).split() or [""])[0] for dev in container}
            for text in settings.pci_devs:
                if text.split()[0] not in have:
                    _sub(container, "pci_dev", text)
                    have.add(text.split()[0])
        if settings.pci_console:
            console = new.find("console_vuart")
            if console.text == "None":
                console.text = "PCI"
            else:
                self.refuse(info.element, "its launch XML enables a PCI "
                            "console vUART but the scenario already "
                            f"gives it {quoted(console.text)}; v3 has one "
                            "console per VM")

    def _copy_vm(self, info: _VmInfo, child, new):
        tag = child.tag
        if info.kind in COPIED_VM[tag]:
            if tag == "pci_devs":
                devices = [dev for dev in child if _text(dev)]
                if devices:
                    container = _sub(new, "pci_devs")
                    container.extend(_copy(dev) for dev in devices)
                return
            new.append(_copy(child))
            return
        if _is_empty(child):
            return
        zero = all(_int(node.text or "0") == 0 for node in child.iter()
                   if (node.text or "").strip())
        harmless = all(_text(node) in ("n", "") for node in child.iter())
        if tag == "epc_section" and zero:
            self.discard(child, f"a {info.kind.value} VM cannot have an "
                         "EPC section in v3, and this one is empty")
        elif tag in ("PTM", "mmio_resources") and harmless:
            self.discard(child, f"not a v3 setting of a {info.kind.value} "
                         "VM, and it is off")
        else:
            self.refuse(child, f"v3 does not allow it on a "
                        f"{info.kind.value} VM")

    def _vm_guest_flags(self, info: _VmInfo, child, new):
        wanted = set()
        for flag in child.iterfind("guest_flag"):
            text = _text(flag)
            if text in NO_FLAG or text == RT_GUEST_FLAG:
                continue
            mapped = GUEST_FLAGS.get(text)
            if mapped is None:
                self.refuse(flag, f"unknown guest flag {quoted(text)}")
                continue
            element, kinds = mapped
            if info.kind not in kinds:
                self.refuse(flag, f"v3 has no {element} for a "
                            f"{info.kind.value} VM")
                continue
            if (text == "GUEST_FLAG_NVMX_ENABLED" and _text(
                    self.root.find("hv/FEATURES/NVMX_ENABLED")) != "y"):
                self.refuse(flag, "NVMX_ENABLED is not 'y', so ACRN v2.7 "
                            "ignored the flag, but v3 would enable nested "
                            "virtualization")
                continue
            wanted.add(element)
        for element in FLAG_ORDER:
            if element in wanted:
                _sub(new, element, "y")
        for other in child:
            if other.tag != "guest_flag":
                self.discard(other, "not a guest flag")

    def _vm_cpu_affinity(self, info: _VmInfo, child, new):
        if info.kind is SOS:
            self.discard(child, "ACRN v3 gives the Service VM the pCPUs "
                         "that no pre-launched VM owns")
            return
        ids = [_text(pcpu) for pcpu in child.iterfind("pcpu_id")
               if _text(pcpu)]
        if ids:
            affinity = _sub(new, "cpu_affinity")
            for pcpu_id in ids:
                pcpu = _sub(affinity, "pcpu")
                _sub(pcpu, "pcpu_id", pcpu_id)
                if info.rt:
                    _sub(pcpu, "real_time_vcpu", "y")
        for other in child:
            if other.tag != "pcpu_id":
                self.discard(other, "not a pCPU id")

    def _vm_clos(self, info: _VmInfo, child, new):
        if not self.rdt_enabled:
            self.discard(child, "RDT_ENABLED is not 'y', so it has no "
                         "effect")

    def _vm_memory(self, info: _VmInfo, child, new):
        if info.kind is SOS:
            self.discard(child, "ACRN v3 gives the Service VM the memory "
                         "that no other VM owns")
            return
        if info.kind is POST:
            self.discard(child, "launch settings size a post-launched VM")
            return
        values = {node.tag: _text(node) for node in child}
        regions = []
        for start_tag, size_tag in (("start_hpa", "size"),
                                    ("start_hpa2", "size_hpa2")):
            start = _int(values.get(start_tag, ""))
            size = _int(values.get(size_tag, ""))
            if start_tag == "start_hpa2" and not (start or size):
                continue
            if not start or not size or size % MIB:
                shown = [f"{tag} {quoted(values[tag])}" if values.get(tag)
                         else f"no {tag}" for tag in (start_tag, size_tag)]
                self.refuse(child, f"{shown[0]} and {shown[1]} are not a "
                            "start address and a whole number of MB")
                return
            regions.append((values[start_tag], size // MIB))
        memory = _sub(new, "memory")
        for start, size in regions:
            region = _sub(memory, "hpa_region")
            _sub(region, "start_hpa", start)
            _sub(region, "size_hpa", str(size))
        for node in child:
            if node.tag not in ("start_hpa", "size", "start_hpa2",
                                "size_hpa2"):
                self.discard(node, "not a memory setting")

    def _vm_os_config(self, info: _VmInfo, child, new):
        if info.kind is POST:
            self.discard(child, "launch settings choose a post-launched "
                         "VM's kernel")
            return
        os_config = _sub(new, "os_config")
        for node in child:
            tag = node.tag
            if tag == "name":
                self.discard(node, "ACRN v3 does not name guest OSes")
            elif tag == "bootargs" and info.kind is SOS:
                self._service_bootargs(info, node, os_config)
            elif f"os_config/{tag}" in COPIED_VM:
                os_config.append(_copy(node))
            else:
                self.discard(node, "not a setting acrn-shm converts")

    def _service_bootargs(self, info: _VmInfo, node, os_config):
        if not _text(node):
            os_config.append(_copy(node))
            return
        # ACRN v2.7 ignored this text and used SERVICE_VM_OS_BOOTARGS:
        # root=<rootfs> console=<SERIAL_CONSOLE> <board_private bootargs>
        # (misc_cfg.h.xsl@v2.7; maxcpus/hugepages ACRN v3 adds itself).
        private = info.element.find("board_private")
        parts = []
        rootfs = _text(private.find("rootfs")) if private is not None \
            else ""
        if rootfs:
            parts.append(f"root={rootfs}")
        serial = _text(self.root.find("hv/DEBUG_OPTIONS/SERIAL_CONSOLE"))
        if serial:
            # /dev/ttyS0 gives ttyS0; text with one slash stays as it is.
            fields = serial.split("/", 2)
            tty = fields[2] if len(fields) == 3 else serial
            parts.append(f"console={tty}")
        extra = _text(private.find("bootargs")) if private is not None \
            else ""
        if extra:
            parts.append(" ".join(extra.split()))
        if private is not None:
            self.consumed.add(private)
        bootargs = " ".join(parts)
        _sub(os_config, "bootargs", bootargs)
        self.note(node, f"Service VM bootargs written as {quoted(bootargs)}: "
                  "ACRN v2.7 built them from board_private/rootfs, "
                  "SERIAL_CONSOLE and board_private/bootargs")

    def _vm_board_private(self, info: _VmInfo, child, new):
        if child not in self.consumed:
            self.discard(child, "ACRN v2.7 used it only for a Service VM "
                         "with bootargs")

    _VM_HANDLERS = {
        "guest_flags": _vm_guest_flags,
        "cpu_affinity": _vm_cpu_affinity,
        "clos": _vm_clos,
        "memory": _vm_memory,
        "os_config": _vm_os_config,
        "board_private": _vm_board_private,
    }


@dataclass
class _Endpoint:
    vm: _VmInfo
    kind: str
    target: tuple[int | None, int | None]
    element: etree._Element
    io_port: str | None


def _xpath(element: etree._Element) -> str:
    """A short XPath such as ``vm[@id='0']/clos`` for messages."""
    steps = []
    node = element
    while node is not None and node.getparent() is not None:
        step = shortened(node.tag)
        if node.get("id") is not None:
            step += f"[@id={quoted(node.get('id'))}]"
        else:
            parent = node.getparent()
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            if len(same) > 1:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        node = node.getparent()
    return "/".join(reversed(steps))


def _summary(element: etree._Element) -> str:
    if not len(element):
        return f" = '{_one_line(element.text or '', 40)}'"
    leaves = [f"{leaf.tag}='{_one_line(leaf.text or '', 20)}'"
              for leaf in element.iter() if leaf is not element
              and not len(leaf) and (leaf.text or "").strip()]
    return f" ({_one_line(', '.join(leaves), 70)})"


def lint_errors(config: LintConfig, path: str, scenario: Scenario,
            board: Board | None) -> list[Diagnostic]:
    """The error findings of the scenario rules on ``scenario``, as
    lint reports them with ``config``; in rule order."""
    return run_rules(config, path, "scenario", (scenario, board),
                     suppressions=scenario.suppressions,
                     severities=("error",)).diagnostics
