"""Turn parsed ACRN XML documents into the model.

:func:`load` recognises a board XML, a legacy (v2.x) or v3.x scenario and
a v2.x launch XML; anything else is an :class:`InputError`.
"""

from __future__ import annotations

import functools
import os
import re
from typing import NamedTuple

from lxml import etree

from ..errors import InputError, located, shortened
from ..io.xmlio import Document, Loc, parse_file
from . import vocabulary
from .syntax import (
    Bdf, Board, DeviceModelSettings, ElementNote, GpuDisplay, LaunchConfig,
    LaunchVm, LegacyText, Member, Region, Scenario, Suppression, Value,
    VirtioConsole, Vm, VmKind, VuartEndpoint,
)

LEGACY_VM_TYPES = {
    "PRE_STD_VM": VmKind.PRE_LAUNCHED,
    "PRE_RT_VM": VmKind.PRE_LAUNCHED,
    "SAFETY_VM": VmKind.PRE_LAUNCHED,
    "SOS_VM": VmKind.SERVICE,
    "SERVICE_VM": VmKind.SERVICE,
    "POST_STD_VM": VmKind.POST_LAUNCHED,
    "POST_RT_VM": VmKind.POST_LAUNCHED,
    "KATA_VM": VmKind.POST_LAUNCHED,
}
LOAD_ORDERS = {
    "PRE_LAUNCHED_VM": VmKind.PRE_LAUNCHED,
    "SERVICE_VM": VmKind.SERVICE,
    "POST_LAUNCHED_VM": VmKind.POST_LAUNCHED,
}
BOARD_SECTIONS = ("BIOS_INFO", "PCI_DEVICE", "CPU_PROCESSOR_INFO",
                  "BASE_BOARD_INFO", "processors", "devices")
_SUPPRESS = re.compile(
    r"\s*acrn-shm\s*:\s*ignore\b[\s\[=:]*([A-Za-z0-9,\s]+?)\]?\s*$")
_LSPCI_BDF = re.compile(
    r"^\s*(?:[0-9A-Fa-f]{4}:)?([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})\.([0-7])\s",
    re.M)


#: The XSD of each kind of document, in ``schemas/``: it declares the
#: elements acrn-shm reads and lets any other through.
SCHEMA_FILES = {
    "legacy": "scenario-v2.xsd",
    "v3": "scenario-v3.xsd",
    "launch": "launch-v2.xsd",
    "board": "board.xsd",
}
#: Most children and attributes of the elements acrn-shm reads (those
#: the XSD of the kind names) in one file. Each costs far more than an
#: element acrn-shm skips: the structure check takes 8 to 25
#: microseconds for each, rules and launch plans some 100 for each VM
#: or region. The largest real ACRN XMLs have 3,175 (v3.3
#: generic_board.xml, 7.9 times less than the limit), 123 (a v3
#: scenario: 16 times less), 116 (legacy) and 135 (a launch XML). The
#: limit of these is lower because an edit reads a scenario twice.
MAX_READ = {"board": 25_000, "legacy": 2_000, "v3": 2_000,
            "launch": 2_000}
#: Most characters of text and attribute values in the elements
#: acrn-shm reads, in one file: values are split (legacy region
#: strings into fields and VM ids), searched and quoted in messages.
#: The largest real ACRN XMLs have 12,751 (v2.7 cfl-k700-i7.xml, 20
#: times less), 354 (a v3 scenario), 161 (legacy) and 857 (launch).
MAX_READ_TEXT = {"board": 256_000, "legacy": 16_000, "v3": 16_000,
                 "launch": 16_000}
_KIND_NAMES = {"board": "board XML", "legacy": "scenario",
               "v3": "scenario", "launch": "launch XML"}
_REAL_MOST = {"board": ("3,175", "12,751"), "legacy": ("116", "161"),
              "v3": ("123", "354"), "launch": ("135", "857")}


class ReadSize(NamedTuple):
    """How much acrn-shm reads in a document (see :func:`read_size`):
    ``items`` children and attributes of the elements read, the most
    of them on one element (``most``, ``most_tag``), and ``chars`` of
    their text and attribute values."""

    items: int
    most: int
    most_tag: str
    chars: int


def schema_path(kind: str) -> str:
    """The XSD file used for documents of ``kind``."""
    # The package folder: this file is in its model/ folder.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(here, "schemas", SCHEMA_FILES[kind])
    if os.path.isfile(installed):
        return installed
    # A source tree, where schemas/ sits beside the package.
    return os.path.join(os.path.dirname(here), "schemas", SCHEMA_FILES[kind])


@functools.cache
def schema_text(kind: str) -> bytes:
    """The bytes of the XSD used for documents of ``kind``."""
    with open(schema_path(kind), "rb") as stream:
        return stream.read()


@functools.cache
def read_tags(kind: str) -> frozenset[str]:
    """The element names the XSD of ``kind`` declares: the elements
    acrn-shm reads in such a document."""
    tree = etree.fromstring(schema_text(kind))
    return frozenset(element.get("name") for element in tree.iter(
        "{http://www.w3.org/2001/XMLSchema}element"))


def read_size(document: Document, kind: str) -> ReadSize:
    """How much acrn-shm reads in ``document`` (of ``kind``): the root
    and, inside an element read, those :func:`read_tags` names."""
    tags = read_tags(kind)
    items, chars, most, most_tag = 0, 0, -1, document.root.tag
    stack = [document.root]
    while stack:
        element = stack.pop()
        attributes = element.attrib
        count = len(element) + len(attributes)
        items += count
        chars += len(element.text or "") + sum(map(len, attributes.values()))
        if count > most:
            most, most_tag = count, element.tag
        # Not iterchildren(*tags): lxml would parse the tags each time.
        stack.extend(child for child in element if child.tag in tags)
    return ReadSize(items, most, most_tag, chars)


def refuse_much_to_read(document: Document, kind: str) -> None:
    """Raise :class:`InputError` when :func:`read_size` of ``document``
    (of ``kind``) is over :data:`MAX_READ` or :data:`MAX_READ_TEXT`.

    A document found small enough is not measured again (the loader and
    the structure check both ask)."""
    if kind in document.small_enough:
        return
    # What is read is at most every element and attribute, and every
    # character: a small file needs no count.
    bound = document.node_bound
    if (bound is not None and bound <= MAX_READ[kind]
            and len(document.data) <= MAX_READ_TEXT[kind]):
        document.small_enough.add(kind)
        return
    size = read_size(document, kind)
    real_items, real_chars = _REAL_MOST[kind]
    for amount, limits, what, real in (
            (size.items, MAX_READ, "children and attributes on the "
             f"elements acrn-shm reads ({size.most} on one "
             f"<{size.most_tag}>)", real_items),
            (size.chars, MAX_READ_TEXT, "characters of text and attribute "
             "values in the elements acrn-shm reads", real_chars)):
        if amount > limits[kind]:
            raise InputError(located(
                document.path, None, None,
                f"{amount} {what}; the limit is {limits[kind]} for a "
                f"{_KIND_NAMES[kind]} (real ones have up to {real})"))
    document.small_enough.add(kind)


class Loaded(NamedTuple):
    """A loaded file: the model object and the document it came from."""

    model: Scenario | Board | LaunchConfig
    document: Document


def load(path: str) -> Loaded:
    """Parse ``path`` and build the model object for whatever it is."""
    document = parse_file(path)
    return Loaded(from_document(document), document)


def kind_of(document: Document) -> str:
    """``"board"``, ``"legacy"``, ``"v3"`` or ``"launch"``; else raise."""
    root = document.root
    if root.tag != "acrn-config":
        loc = document.loc(root)
        raise InputError(located(
            document.path, loc.line, loc.column,
            f"root element is <{shortened(root.tag)}>; expected <acrn-config> "
            "(an ACRN board, scenario or launch XML)"))
    children = {child.tag for child in root if isinstance(child.tag, str)}
    if "user_vm" in children or "uos" in children or (
            "user_vm_launcher" in root.attrib
            or "uos_launcher" in root.attrib):
        return "launch"
    if "hv" in children or "vm" in children:
        return _scenario_format(root)
    if children & set(BOARD_SECTIONS):
        return "board"
    loc = document.loc(root)
    raise InputError(located(
        document.path, loc.line, loc.column,
        "<acrn-config> holds no <hv> or <vm> (scenario), no <user_vm> "
        "(launch XML) and no <BIOS_INFO>/<PCI_DEVICE> (board)"))


def _scenario_format(root: etree._Element) -> str:
    # The VMs tell the version most reliably; IVSHMEM only as a fallback,
    # so that a v3 file with a legacy-style region is checked as v3.
    for vm in root.iterfind("vm"):
        if vm.find("load_order") is not None:
            return "v3"
    for vm in root.iterfind("vm"):
        if _text(vm.find("vm_type")) in LEGACY_VM_TYPES:
            return "legacy"
    ivshmem = root.find("hv/FEATURES/IVSHMEM")
    if ivshmem is not None:
        if ivshmem.find("IVSHMEM_ENABLED") is not None:
            return "legacy"
        for region in ivshmem.iterfind("IVSHMEM_REGION"):
            if len(region):
                return "v3"
            if (region.text or "").strip():
                return "legacy"
    return "v3"


def from_document(document: Document) -> Scenario | Board | LaunchConfig:
    """Build the model object for a parsed document.

    Raises :class:`InputError` for a document that is no ACRN XML or
    has too much to read (:func:`refuse_much_to_read`).
    """
    kind = kind_of(document)
    refuse_much_to_read(document, kind)
    if kind == "board":
        return board_from(document)
    if kind == "launch":
        return launch_from(document)
    return scenario_from(document, kind)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return element.text or ""


def _value(document: Document, element: etree._Element | None,
           strip: bool = False) -> Value | None:
    if element is None:
        return None
    text = element.text or ""
    loc = document.text_loc(element)
    if strip:
        stripped = text.lstrip()
        loc = _advance(loc, text, len(text) - len(stripped))
        text = stripped.rstrip()
    return Value(text, loc)


def _advance(loc: Loc, text: str, offset: int, start: int = 0) -> Loc:
    # The location of text[offset] when text[start] is at loc: the cost
    # grows with offset - start only.
    newlines = text.count("\n", start, offset)
    if not newlines:
        return Loc(loc.line, loc.column + offset - start)
    return Loc(loc.line + newlines,
               offset - text.rindex("\n", start, offset))


def suppressed_codes(comment: str) -> frozenset[str] | None:
    """The codes of a comment ``acrn-shm: ignore CODE...`` (its text
    without the comment marks), or None for any other comment."""
    match = _SUPPRESS.match(comment)
    if match is None:
        return None
    return frozenset(code.upper()
                     for code in re.split(r"[\s,]+", match.group(1))
                     if code)


def suppressions_of(document: Document) -> tuple[Suppression, ...]:
    """Every ``<!-- acrn-shm: ignore CODE... -->`` and the lines it covers."""
    found = []
    for comment in document.comments:
        codes = suppressed_codes(comment.text)
        if codes is None or comment.next_element is None:
            continue
        pos = document.pos(comment.next_element)
        found.append(Suppression(codes, pos.start, pos.end, comment.loc))
    return tuple(found)


def scenario_from(document: Document, fmt: str) -> Scenario:
    """Build a :class:`Scenario` of format ``fmt`` (legacy or v3)."""
    root = document.root
    vms = tuple(_vm(document, vm) for vm in root.iterfind("vm"))
    # ACRN allows one IVSHMEM; the regions of every block are read, so
    # that rules, `regions` and the edits see them all (ISM213 reports
    # the later blocks).
    blocks = list(root.iterfind("hv/FEATURES/IVSHMEM"))
    ivshmem = blocks[0] if blocks else None
    regions: list[Region] = []
    enabled = None
    if ivshmem is not None:
        enabled = _value(document, ivshmem.find("IVSHMEM_ENABLED"),
                         strip=True)
    for block in blocks:
        for element in block.iterfind("IVSHMEM_REGION"):
            if fmt == "legacy":
                region = _legacy_region(document, element)
            else:
                region = _v3_region(document, element)
            if region is not None:
                regions.append(region)
    return Scenario(
        path=document.path,
        format=fmt,
        board_name=root.get("board"),
        vms=vms,
        regions=tuple(regions),
        ivshmem_loc=document.loc(ivshmem) if ivshmem is not None else None,
        ivshmem_enabled=enabled,
        pci_vuarts=_pci_vuarts(document) if fmt == "v3" else (),
        suppressions=suppressions_of(document),
        root_loc=document.loc(root),
        scheduler=_stripped(root.find("hv/FEATURES/SCHEDULER")),
        ssram=_stripped(root.find("hv/FEATURES/SSRAM/SSRAM_ENABLED"))
        == "y",
        dm_settings=_dm_settings(document) if fmt == "v3" else (),
        ivshmem_blocks=tuple(document.loc(block) for block in blocks),
        element_notes=element_notes(document, fmt),
    )


def element_notes(document: Document, fmt: str
                  ) -> tuple[ElementNote, ...]:
    """The elements of a ``fmt`` scenario that ACRN refuses, in order.

    Walks the whole document against :mod:`vocabulary`: an element in
    an XML namespace, one that no ACRN version of the format knows
    under its parent, and a later copy of one that ACRN allows once.
    Nothing inside a namespaced or unknown element is looked at (the
    note about it says enough).
    """
    notes = []
    pending = [(document.root, vocabulary.children(fmt))]
    while pending:
        element, known = pending.pop()
        once: set[str] = set()  # the tags allowed once seen so far
        for child in element.iterchildren(etree.Element):
            tag = child.tag
            entry = known.get(tag)  # never a namespaced one
            if entry is not None:
                if entry.repeats:
                    pass
                elif tag not in once:
                    once.add(tag)
                else:
                    first = next(element.iterchildren(tag))
                    notes.append(ElementNote(
                        "repeated", tag, _local(element), document.loc(child),
                        first=document.loc(first)))
                if len(child):  # nothing to look at in a leaf
                    pending.append((child, entry.children))
            elif tag[0] == "{":  # in a namespace
                qname = etree.QName(child)
                written = (f"{child.prefix}:{qname.localname}"
                           if child.prefix else qname.localname)
                notes.append(ElementNote(
                    "namespaced", written, _local(element),
                    document.loc(child), namespace=qname.namespace))
            else:
                notes.append(ElementNote(
                    "unknown", tag, _local(element), document.loc(child),
                    suggestion=_close_name(tag, known)))
    return tuple(sorted(notes, key=lambda note: note.loc))


def _local(element: etree._Element) -> str:
    return element.tag.rpartition("}")[2]


def _close_name(name: str, known: dict) -> str | None:
    # The known name that ``name`` was most likely meant to be.
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    return close[0] if close else None


def _stripped(element: etree._Element | None) -> str | None:
    text = _text(element)
    return text.strip() if text is not None else None


def _texts(element: etree._Element, path: str) -> tuple[str, ...]:
    return tuple(text for text in (
        (node.text or "").strip() for node in element.iterfind(path))
        if text)


def _dm_settings(document: Document
                 ) -> tuple[tuple[str, DeviceModelSettings], ...]:
    """The Device Model settings of every named post-launched VM."""
    root = document.root
    # Each VM's vUART connections in order, with its first endpoint in
    # each: one pass over them all, not one a VM.
    connections: dict[str, list[tuple[etree._Element, etree._Element]]]
    connections = {}
    for connection in root.iterfind("hv/vuart_connections/"
                                    "vuart_connection"):
        firsts: dict[str, etree._Element] = {}
        for end in connection.iterfind("endpoint"):
            firsts.setdefault(_stripped(end.find("vm_name")), end)
        for vm_name, end in firsts.items():
            connections.setdefault(vm_name, []).append((connection, end))
    found = []
    for element in root.iterfind("vm"):
        # Its first child of each name: a dict lookup instead of a find.
        child: dict[str, etree._Element] = {}
        for node in element:
            child.setdefault(node.tag, node)
        if _stripped(child.get("load_order")) != "POST_LAUNCHED_VM":
            continue
        name = _stripped(child.get("name"))
        if not name:
            continue

        def flag(tag: str, default: str = "n") -> bool:
            return (_stripped(child.get(tag)) or default) == "y"

        pci_vuarts = []
        for index, (connection, end) in enumerate(
                connections.get(name, ()), start=1):
            if _stripped(connection.find("type")) == "pci":
                pci_vuarts.append((index, _value(document, end.find("vbdf"))))
        virtio = child.get("virtio_devices")
        if virtio is None:
            virtio = etree.Element("virtio_devices")
        gpu = None
        gpu_element = virtio.find("gpu")
        if gpu_element is not None and gpu_element.find(
                "display_type") is not None:
            gpu = (_stripped(gpu_element.find("display_type")), tuple(
                GpuDisplay(_stripped(display.find("window_resolutions")),
                           _stripped(display.find("horizontal_offset")),
                           _stripped(display.find("vertical_offset")),
                           _stripped(display.find("monitor_id")))
                for display in gpu_element.iterfind("displays/display")))
        found.append((name, DeviceModelSettings(
            vm_type=_stripped(child.get("vm_type")) or "STANDARD_VM",
            os_type=_stripped(child.get("os_type")),
            own_pcpu=flag("own_pcpu"),
            pcpus=_texts(element, "cpu_affinity//pcpu_id"),
            memory_mb=_stripped(element.find("memory/size")),
            vbootloader=flag("vbootloader", "y"),
            vuart0=flag("vuart0"),
            console_vuart=_stripped(child.get("console_vuart")),
            lapic_passthrough=flag("lapic_passthrough"),
            usb_devs=_texts(element, "usb_xhci/usb_dev"),
            inputs=tuple(
                (_stripped(node.find("backend_device_file")) or "",
                 _stripped(node.find("id")))
                for node in virtio.iterfind("input")
                if _stripped(node.find("backend_device_file"))),
            consoles=tuple(
                VirtioConsole(
                    _stripped(node.find("use_type")),
                    _stripped(node.find("backend_type")),
                    _stripped(node.find("output_file_path"))
                    or _stripped(node.find("tty_device_path"))
                    or _stripped(node.find("sock_file_path")))
                for node in virtio.iterfind("console") if len(node)),
            networks=tuple(
                (_stripped(node.find("virtio_framework")),
                 _stripped(node.find("interface_name")) or "")
                for node in virtio.iterfind("network") if len(node)),
            blocks=_texts(virtio, "block"),
            gpu=gpu,
            vsocks=_texts(virtio, "vsock"),
            pci_devs=_texts(element, "pci_devs/pci_dev"),
            customized_parameters=_stripped(
                child.get("customized_parameters")) or None,
            pci_vuarts=tuple(pci_vuarts),
        )))
    return tuple(found)


#: Legacy ``vm_type`` values of real-time VMs.
LEGACY_RT_TYPES = ("PRE_RT_VM", "POST_RT_VM")
#: The legacy guest flag of a real-time VM.
RT_GUEST_FLAG = "GUEST_FLAG_RT"


def is_legacy_rt(element: etree._Element) -> bool:
    """Whether a legacy ``<vm>`` is real-time: an RT ``vm_type`` or the
    ``GUEST_FLAG_RT`` guest flag (v3 writes such a VM as ``RTVM``)."""
    vm_type = (_text(element.find("vm_type")) or "").strip()
    return vm_type in LEGACY_RT_TYPES or RT_GUEST_FLAG in _texts(
        element, "guest_flags/guest_flag")


def _vm(document: Document, element: etree._Element) -> Vm:
    id_text = element.get("id")
    try:
        vm_id = int(id_text) if id_text is not None else None
    except ValueError:
        vm_id = None
    load_order = _text(element.find("load_order"))
    vm_type = _text(element.find("vm_type"))
    if load_order is not None:
        kind = LOAD_ORDERS.get(load_order.strip(), VmKind.UNKNOWN)
        type_text = load_order
        rt = (vm_type or "").strip() == "RTVM"
    else:
        kind = LEGACY_VM_TYPES.get((vm_type or "").strip(), VmKind.UNKNOWN)
        type_text = vm_type
        rt = is_legacy_rt(element)
    name = _text(element.find("name"))
    return Vm(vm_id, id_text, name.strip() if name else None, kind,
              type_text, document.loc(element), rt)


def _v3_region(document: Document, element: etree._Element) -> Region:
    vms = element.find("IVSHMEM_VMS")
    members = []
    if vms is not None:
        for member in vms.iterfind("IVSHMEM_VM"):
            members.append(Member(
                vm=_value(document, member.find("VM_NAME")),
                vbdf=_value(document, member.find("VBDF")),
                loc=document.loc(member)))
    return Region(
        name=_value(document, element.find("NAME")),
        provider=_value(document, element.find("PROVIDED_BY")),
        size=_value(document, element.find("IVSHMEM_SIZE"), strip=True),
        region_id=_value(document, element.find("IVSHMEM_REGION_ID"),
                         strip=True),
        members=tuple(members),
        loc=document.loc(element),
        vms_loc=document.loc(vms) if vms is not None else None,
    )


def split_legacy(raw: Value) -> LegacyText:
    """Split a legacy region string on commas, keeping each field's place."""
    fields = []
    offset = 0
    # Each field's place from the one before: linear in the text.
    loc, done = raw.loc, 0
    for part in raw.text.split(","):
        stripped = part.strip()
        lead = len(part) - len(part.lstrip())
        loc = _advance(loc, raw.text, offset + lead, done)
        done = offset + lead
        fields.append(Value(stripped, loc))
        offset += len(part) + 1
    prefix = None
    first = fields[0]
    cut = first.text.find(":/")
    if cut >= 0:
        prefix = Value(first.text[:cut + 2], first.loc)
    return LegacyText(raw, tuple(fields), prefix)


def _legacy_region(document: Document,
                   element: etree._Element) -> Region | None:
    text = element.text or ""
    if not text.strip() or len(element):
        return None
    legacy = split_legacy(Value(text, document.text_loc(element)))
    fields = legacy.fields
    first = fields[0]
    if legacy.prefix is not None:
        cut = len(legacy.prefix.text)
        name = Value(first.text[cut:], Loc(first.loc.line,
                                           first.loc.column + cut))
    else:
        name = first
    size = fields[1] if len(fields) > 1 else None
    members = []
    vms_loc = None
    if len(fields) > 2:
        ids = fields[2]
        vms_loc = ids.loc
        offset = 0
        for part in ids.text.split(":"):
            lead = len(part) - len(part.lstrip())
            loc = Loc(ids.loc.line, ids.loc.column + offset + lead)
            members.append(Member(Value(part.strip(), loc), None, loc))
            offset += len(part) + 1
    return Region(
        name=name,
        provider=legacy.prefix,
        size=size,
        region_id=None,
        members=tuple(members),
        loc=document.loc(element),
        vms_loc=vms_loc,
        legacy=legacy,
        malformed=len(fields) != 3,
    )


def _pci_vuarts(document: Document) -> tuple[VuartEndpoint, ...]:
    found = []
    for connection in document.root.iterfind(
            "hv/vuart_connections/vuart_connection"):
        if (_text(connection.find("type")) or "").strip() != "pci":
            continue
        name = (_text(connection.find("name")) or "").strip()
        for endpoint in connection.iterfind("endpoint"):
            found.append(VuartEndpoint(
                connection=name,
                vm=_value(document, endpoint.find("vm_name"), strip=True),
                vbdf=_value(document, endpoint.find("vbdf")),
                loc=document.loc(endpoint)))
    return tuple(found)


def board_from(document: Document) -> Board:
    """Build a :class:`Board`: its name and native PCI functions.

    Native functions come from the lspci-style ``PCI_DEVICE`` text and
    from the ``devices`` tree (functions with a vendor id; ACPI-only
    placeholders are ignored).
    """
    root = document.root
    bdfs = set()
    for match in _LSPCI_BDF.finditer(_text(root.find("PCI_DEVICE")) or ""):
        bus, device, function = match.groups()
        bdfs.add(Bdf(int(bus, 16), int(device, 16), int(function)))
    devices = root.find("devices")
    if devices is not None:
        for bus in devices.iter("bus"):
            if bus.get("type") != "pci":
                continue
            try:
                bus_number = int(bus.get("address", ""), 16)
            except ValueError:
                continue
            for device in bus.iterfind("device"):
                bdf = _tree_bdf(bus_number, device)
                if bdf is not None:
                    bdfs.add(bdf)
    apic_ids = []
    for thread in root.iterfind("processors//thread"):
        cpu_id, apic_id = (_stripped(thread.find("cpu_id")),
                           _stripped(thread.find("apic_id")))
        try:
            apic_ids.append((int(cpu_id or ""), int(apic_id or "", 0)))
        except ValueError:
            continue
    # The root's line is enough here; columns would cost an extra pass.
    return Board(document.path, root.get("board"), frozenset(bdfs),
                 Loc(root.sourceline or 1, 1), tuple(sorted(apic_ids)))


def _tree_bdf(bus: int, device: etree._Element) -> Bdf | None:
    if device.find("vendor") is None:
        return None
    try:
        address = int(device.get("address", ""), 16)
    except ValueError:
        return None
    number, function = address >> 16, address & 0xFFFF
    if number > 31 or function > 7:
        return None
    return Bdf(bus, number, function)


def launch_from(document: Document) -> LaunchConfig:
    """Build a :class:`LaunchConfig` from a v2.x launch XML."""
    root = document.root
    vms = []
    for element in root:
        if element.tag not in ("user_vm", "uos"):
            continue
        # Raw text: ACRN v2.x compares it character by character.
        regions = tuple(
            value for value in (
                _value(document, shm)
                for shm in element.iterfind("shm_regions/shm_region"))
            if value is not None and value.text.strip())
        name = _text(element.find("vm_name"))
        vms.append(LaunchVm(element.get("id"),
                            name.strip() if name else None, regions,
                            document.loc(element)))
    return LaunchConfig(
        path=document.path,
        board_name=root.get("board"),
        scenario_name=root.get("scenario"),
        vms=tuple(vms),
        suppressions=suppressions_of(document),
        root_loc=document.loc(root),
    )
