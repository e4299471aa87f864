"""Add, remove and change IVSHMEM regions without reformatting the file.

Every edit is a byte-range replacement on :attr:`Document.data`: bytes
outside the edited elements stay as they were (comments, blank lines,
attribute quoting, the XML declaration, CRLF line ends). New lines use
the file's newline style and the indentation of their neighbours, one
element per line, in ACRN's element order.

The functions are pure: a parsed document in, an :class:`EditResult`
with the whole new file out. The caller lints and saves it. Values are
written as given (a size of 3 is written, and then reported by lint);
only requests that cannot be carried out raise :class:`UsageError`.

Removing a region undoes adding it, byte for byte. When the last region
goes, the file before the add is known only from what the add would
have made of it: the candidates are checked by adding the region again
(see :func:`remove_region`). A region that was not added by acrn-shm
leaves the empty list the way ACRN writes it, ``<IVSHMEM/>`` (v3) or
``IVSHMEM_ENABLED`` ``n`` with one ``<IVSHMEM_REGION/>`` (legacy).
"""

from __future__ import annotations

import codecs
import re
from collections import Counter

from lxml import etree

from ..errors import AcrnShmError, UsageError, escaped, quoted, shortened
from ..io.textedit import Edit, apply_edits, ordered, tag_end
from ..io.xmlio import Document, escape, parse_bytes, source_encoding
from ..model.loader import from_document
from ..model.resolved import load_scenario
from ..model.syntax import (
    FIRST_IVSHMEM_DEVICE, Bdf, Board, Scenario, Vm, VmKind,
    is_decimal, lowest_free_id, parse_vbdf,
)
from ..record import frozen

__all__ = ["EditResult", "RegionSpec", "add_region", "element_span",
           "region_rows", "remove_region", "set_region"]

#: ``PROVIDED_BY`` text of each provider.
PROVIDERS = {"hv": "Hypervisor", "dm": "Device Model"}
#: Region size when none is given, in MB.
DEFAULT_SIZE = 2
#: Device numbers tried, in order, for a VBDF that is not given.
AUTO_DEVICES = range(FIRST_IVSHMEM_DEVICE, 0x1F)
#: A character XML 1.0 cannot hold, not even as a character reference:
#: the complement of its Char production, written as what it leaves out
#: (the negated set up to U+10FFFF takes 8 ms to compile, this 0.8 ms).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Child order of a v3 ``IVSHMEM_REGION``.
V3_ORDER = ("NAME", "PROVIDED_BY", "IVSHMEM_SIZE", "IVSHMEM_REGION_ID",
            "IVSHMEM_VMS")
#: Spaces and tabs at the start of a line, then a tag's '<'.
_LINE_LEAD = re.compile(rb"^[ \t]*<", re.MULTILINE)
_BLANKS = re.compile(rb"[ \t]*")
# Printable ASCII, which an editable encoding keeps byte for byte.
_ASCII = "".join(map(chr, range(0x20, 0x7F)))


@frozen
class RegionSpec:
    """What the user asked for; None (or empty) keeps or defaults a field.

    ``vms`` are VM names or VM ids (decimal text) in either format;
    ``provider`` is ``"hv"`` or ``"dm"``; ``size`` is in MB; ``vbdfs``
    pairs a VM (name or id) with an explicit ``bb:dd.f`` (v3 only).
    """

    name: str | None = None
    size: int | None = None
    vms: tuple[str, ...] | None = None
    provider: str | None = None
    region_id: int | None = None
    vbdfs: tuple[tuple[str, str], ...] = ()


@frozen
class EditResult:
    """The whole new file, a one-line summary, and the v3 members.

    ``assigned`` holds ``(vm name, vbdf)`` of the edited v3 region's
    members after the edit, in member order (empty for legacy files and
    for removals). ``changes`` lists the replaced byte ranges of the old
    file as ``(start, end, length of the new bytes)``, in order (None
    when unknown); bytes outside them are kept.
    """

    data: bytes
    summary: str
    assigned: tuple[tuple[str, str], ...]
    changes: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self):
        # VM names come from the file and may hold control characters.
        object.__setattr__(self, "summary", escaped(self.summary))


def element_span(document: Document, element) -> tuple[int, int]:
    """The byte range ``[start, end)`` of ``element``, end tag included."""
    start = document.pos(element).start_byte
    close = tag_end(document.data, start)
    if document.data[close - 1:close] == b"/":
        return start, close + 1
    end_tag = document.pos(element).end_byte
    return start, document.data.index(b">", end_tag) + 1


def add_region(document: Document, spec: RegionSpec,
               board: Board | None = None) -> EditResult:
    """Add a region shared by ``spec.vms``.

    Defaults: the first free ``shm_region_N`` name, 2 MB, the
    hypervisor as provider and, in v3 files, for each VM the first VBDF
    from ``00:08.0`` to ``00:1e.0`` that none of its IVSHMEM devices or
    PCI vUARTs uses (nor, for the Service VM, a native device of
    ``board``), and, when any region of the file has an
    ``IVSHMEM_REGION_ID``, the lowest id no region has (one without the
    element has ACRN's default, 0). Legacy files also get
    ``IVSHMEM_ENABLED`` set to ``y``. A missing ``IVSHMEM`` goes first
    into ``FEATURES`` (ACRN writes an empty one last), so that removing
    the region again can tell the two apart.
    """
    editor = _Editor(document)
    scenario = editor.scenario
    _refuse_v3_only(scenario, spec)
    names = [name for _, name in editor.regions()]
    name = _free_name(names) if spec.name is None else spec.name
    _check_name(name)
    if name in names:
        raise UsageError(f"region name {quoted(name)} is already used")
    if spec.vms is None:
        raise UsageError("name at least 2 VMs to share the region")
    vms = _resolve_vms(scenario, spec.vms)
    land = _land(spec.provider or "hv")
    size = DEFAULT_SIZE if spec.size is None else spec.size
    if scenario.is_legacy:
        shown = _add_legacy(editor, name, size, land, vms)
        return editor.outcome(
            f"added region {quoted(name)} ({size} MB, {land}) for {shown}")
    explicit = _explicit_vbdfs(scenario, spec.vbdfs,
                               {vm.name for vm in vms}, name)
    used = _used_vbdfs(scenario)
    members = tuple(
        (vm.name, explicit.get(vm.name) or _free_vbdf(used, vm, board))
        for vm in vms)
    region_id = spec.region_id
    if region_id is None and any(r.region_id is not None
                                 for r in scenario.regions):
        region_id = lowest_free_id(r.id_number for r in scenario.regions)
    lines = _v3_region_lines(name, PROVIDERS[land], size, region_id,
                             members)
    editor.add_to_ivshmem(lines)
    shown = ", ".join(f"{shortened(vm)} {vbdf}" for vm, vbdf in members)
    number = "" if region_id is None else f", id {region_id}"
    return editor.outcome(
        f"added region {quoted(name)} ({size} MB, {land}{number}) for "
        f"{shown}", members)


def remove_region(document: Document, name: str) -> EditResult:
    """Remove the region called ``name`` together with its line.

    When no region is left, the file is given back as it was before
    :func:`add_region` added this region, when adding it again to that
    file gives exactly the current bytes: without the ``IVSHMEM``,
    ``FEATURES`` or ``hv`` the add created, or with the empty list it
    filled. Else the list is written the way ACRN writes an empty one:
    ``<IVSHMEM/>`` (v3), or ``<IVSHMEM_REGION/>`` with
    ``IVSHMEM_ENABLED`` set to ``n`` (legacy). Two files the add turns
    into the same bytes cannot be told apart; the one with fewer
    elements is given back (an ``hv`` or ``FEATURES`` that held only an
    empty ``IVSHMEM`` does not come back).
    """
    editor = _Editor(document)
    region = editor.region(name)
    note = ""
    if editor.scenario.is_legacy:
        note = _remove_legacy(editor, region)
    else:
        _remove_v3(editor, region)
    emptied = editor.outcome(f"removed region {quoted(name)}{note}")
    if any(other is not region for other, label in editor.regions()
           if label is not None):
        return emptied
    return _undo_add(document, region, emptied)


def set_region(document: Document, name: str, spec: RegionSpec,
               board: Board | None = None) -> EditResult:
    """Change the fields of region ``name`` that ``spec`` gives.

    Single values are edited in place (or inserted in ACRN's order);
    ``spec.vms`` replaces the member list, keeping the VBDF of VMs that
    stay and choosing VBDFs for new ones as :func:`add_region` does.
    A legacy region string is rewritten as ``hv:/name, size, ids``.
    """
    editor = _Editor(document)
    scenario = editor.scenario
    _refuse_v3_only(scenario, spec)
    region = editor.region(name)
    if spec.name is not None and spec.name != name:
        _check_name(spec.name)
        if spec.name in [other for _, other in editor.regions()]:
            raise UsageError(
                f"region name {quoted(spec.name)} is already used")
    vms = None if spec.vms is None else _resolve_vms(scenario, spec.vms)
    land = None if spec.provider is None else _land(spec.provider)
    changes = []
    if spec.name is not None:
        changes.append(f"name {quoted(spec.name)}")
    if spec.size is not None:
        changes.append(f"size {spec.size} MB")
    if land is not None:
        changes.append(f"provider {land}")
    if spec.region_id is not None:
        changes.append(f"region id {spec.region_id}")
    if scenario.is_legacy:
        if vms is not None:
            changes.append("VMs " + _legacy_vms_text(vms))
        _set_legacy(editor, region, spec, land, vms)
        assigned: tuple[tuple[str, str], ...] = ()
    else:
        assigned = _set_v3(editor, region, spec, land, vms, board)
        if vms is not None or spec.vbdfs:
            changes.append("VMs " + ", ".join(
                f"{vm} {vbdf}".rstrip() for vm, vbdf in assigned))
    summary = (f"changed region {quoted(name)}: " + "; ".join(changes)
               if changes
               else f"nothing to change in region {quoted(name)}")
    return editor.outcome(summary, assigned)


class _Editor:
    """Byte edits on one document, and what new text should look like."""

    def __init__(self, document: Document):
        model = load_scenario(
            document, refusal="{quoted} is not a scenario XML; regions "
            "live in the scenario").model
        self.document = document
        self.data = document.data
        self.scenario: Scenario = model
        self.root = document.root
        self.encoding = _encoding(document)
        self.newline = "\r\n" if _uses_crlf(self.data) else "\n"
        self._leads: dict[int, bytes] = {}
        self.step = self._indent_step()
        self.edits: list[Edit] = []

    # -- finding things --------------------------------------------------

    def ivshmem(self) -> etree._Element | None:
        """The ``IVSHMEM`` element, or None."""
        return self.root.find("hv/FEATURES/IVSHMEM")

    def regions(self) -> list[tuple[etree._Element, str | None]]:
        """Every ``IVSHMEM_REGION`` element and its region name, from
        every ``IVSHMEM`` block (ACRN allows one; lint says ISM213)."""
        return [(element, _region_name(element, self.scenario.is_legacy))
                for element in self.root.iterfind(
                    "hv/FEATURES/IVSHMEM/IVSHMEM_REGION")]

    def region(self, name: str) -> etree._Element:
        """The one region called ``name``."""
        found = [element for element, other in self.regions()
                 if other == name]
        if not found:
            raise UsageError(f"no region named {quoted(name)}")
        if len(found) > 1:
            raise UsageError(
                f"{len(found)} regions are named {quoted(name)}; rename one "
                "by hand first")
        return found[0]

    def span(self, element) -> tuple[int, int]:
        """See :func:`element_span`."""
        return element_span(self.document, element)

    def is_empty_tag(self, element) -> bool:
        """True for ``<a/>``."""
        close = tag_end(self.data, self.document.pos(element).start_byte)
        return self.data[close - 1:close] == b"/"

    def content(self, element) -> tuple[int, int]:
        """The bytes between the start and end tags of a non-empty one."""
        start = self.document.pos(element).start_byte
        return (tag_end(self.data, start) + 1,
                self.document.pos(element).end_byte)

    def line_indent(self, element) -> str | None:
        """The whitespace before ``element`` if it starts its line."""
        return self._lead(self.document.pos(element).start_byte)

    def _lead(self, start: int) -> str | None:
        # The spaces and tabs from the start of the line to ``start``,
        # or None if anything else is there.
        lead = self._leads.get(start)
        return None if lead is None else lead.decode("ascii")

    def indent(self, element) -> str:
        """``element``'s indentation, guessed from its parents if inline."""
        own = self.line_indent(element)
        if own is not None:
            return own
        parent = element.getparent()
        return "" if parent is None else self.indent(parent) + self.step

    def _indent_step(self) -> str:
        # The most common parent-to-child indentation, else two spaces.
        # The leads of the lines that start with a tag are found all at
        # once: a search back from each element would cost as much as a
        # line is long.
        leads = self._leads = {
            match.end() - 1: match.group()[:-1]
            for match in _LINE_LEAD.finditer(self.data)}
        steps: Counter[bytes] = Counter()
        for start, parent in self.document.start_bytes():
            inner = leads.get(start)
            if inner is None:
                continue
            outer = leads.get(parent)
            if (outer is not None and inner.startswith(outer)
                    and inner != outer):
                steps[inner[len(outer):]] += 1
        if not steps:
            return "  "
        return steps.most_common(1)[0][0].decode("ascii")

    # -- changing things -------------------------------------------------

    def replace(self, start: int, end: int, text: str) -> None:
        """Replace bytes ``[start, end)`` with ``text``."""
        self.edits.append(Edit(start, end, text.encode(
            self.encoding, errors="xmlcharrefreplace")))

    def outcome(self, summary: str,
                assigned: tuple[tuple[str, str], ...] = ()) -> EditResult:
        """The :class:`EditResult` of the edits made so far."""
        return EditResult(apply_edits(self.data, self.edits), summary,
                          assigned, tuple((start, end, len(new)) for
                                          start, end, new
                                          in ordered(self.edits)))

    def render(self, lines: list[tuple[int, str]], indent: str) -> str:
        """``(depth, text)`` lines, indented and joined with newlines."""
        return self.newline.join(indent + self.step * depth + text
                                 for depth, text in lines)

    def insert(self, parent, lines: list[tuple[int, str]],
               after=None) -> None:
        """Insert ``lines`` into ``parent`` after child ``after``.

        ``after`` None puts them first. An empty-element ``parent``
        becomes a start and end tag pair.
        """
        newline = self.newline
        if self.is_empty_tag(parent):
            start, end = self.span(parent)
            outer = self.indent(parent)
            opening = self.data[start:end - 2].decode(self.encoding) + ">"
            self.replace(start, end, (
                opening + newline + self.render(lines, outer + self.step)
                + newline + outer + f"</{parent.tag}>"))
            return
        if after is not None:
            indent = self.line_indent(after)
            if indent is None:
                indent = self.indent(parent) + self.step
            point = self.line_end(self.span(after)[1], comments=True)
            self.replace(point, point, newline + self.render(lines, indent))
            return
        first = next(iter(parent.iterchildren(etree.Element)), None)
        indent = self.line_indent(first) if first is not None else None
        if indent is None:
            indent = self.indent(parent) + self.step
        opened, closing = self.content(parent)
        text = newline + self.render(lines, indent)
        if first is None and not self.data[opened:closing].strip(b" \t"):
            # <a></a>: the end tag goes on a line of its own.
            text += newline + self.indent(parent)
        point = self.line_end(opened, comments=True)
        self.replace(point, point, text)

    def line_end(self, offset: int, comments: bool = False) -> int:
        """``offset``, moved past spaces (and, if asked, comments) that
        end its line; unchanged when something else follows."""
        after = offset
        while True:
            after = _BLANKS.match(self.data, after).end()
            if not (comments and self.data.startswith(b"<!--", after)):
                break
            close = self.data.find(b"-->", after)
            if close < 0:
                break
            after = close + 3
        if self.data[after:after + 1] in (b"\r", b"\n", b""):
            return after
        return offset

    def remove(self, element) -> None:
        """Remove ``element`` and, if it has a line of its own, the line."""
        self.replace(*self.removal(element), "")

    def removal(self, element) -> tuple[int, int]:
        """The bytes that :meth:`remove` takes away.

        A line goes with the newline before it (and the spaces after the
        element), so that removing an element that :meth:`insert` put
        there gives back the exact bytes.
        """
        start, end = self.span(element)
        if self.line_indent(element) is None or start == 0:
            return start, end
        line = self.data.rfind(b"\n", 0, start)
        if line > 0 and self.data[line - 1:line] == b"\r":
            line -= 1
        return max(line, 0), self.line_end(end)

    def collapse(self, element) -> None:
        """Write ``element`` as an empty-element tag, attributes kept."""
        start, end = self.span(element)
        opened, _ = self.content(element)
        tag = self.data[start:opened - 1].decode(self.encoding)
        self.replace(start, end, tag + "/>")

    def set_value(self, element, value: str) -> None:
        """Make ``element``'s text ``value``, keeping spaces around it."""
        if self.is_empty_tag(element):
            start, end = self.span(element)
            opening = self.data[start:end - 2].decode(self.encoding)
            self.replace(start, end, (f"{opening}>{escape(value)}"
                                      f"</{element.tag}>"))
            return
        opened, closing = self.content(element)
        # Only the text before a comment or child is the value.
        cut = self.data.find(b"<", opened, closing)
        text = self.data[opened:closing if cut < 0 else cut]
        if (element.text or "").strip() == value:
            return
        if not text.strip():
            self.replace(opened, opened + len(text), escape(value))
            return
        lead = len(text) - len(text.lstrip())
        self.replace(opened + lead, opened + len(text.rstrip()),
                     escape(value))

    def add_to_ivshmem(self, lines: list[tuple[int, str]],
                       legacy_enabled: bool = False) -> None:
        """Put a region (and IVSHMEM_ENABLED) into IVSHMEM, creating the
        missing hv/FEATURES/IVSHMEM elements."""
        parent = self.root
        missing: list[str] = []
        for tag in ("hv", "FEATURES", "IVSHMEM"):
            child = parent.find(tag) if not missing else None
            if child is None:
                missing.append(tag)
            else:
                parent = child
        if legacy_enabled and missing:
            lines = [(0, "<IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>")] + lines
        for tag in reversed(missing):
            lines = _wrap(tag, lines)
        children = list(parent.iterchildren(etree.Element))
        if not missing:
            regions = [c for c in children if c.tag == "IVSHMEM_REGION"]
            children = regions or children
        # A new hv goes first, as in every ACRN scenario; so does a new
        # IVSHMEM in FEATURES, unlike ACRN's own (see add_region).
        after = children[-1] if children and missing != ["IVSHMEM"] and (
            parent is not self.root) else None
        self.insert(parent, lines, after)


def _encoding(document: Document) -> str:
    # The bytes come first: lxml calls a UTF-16 file with a byte order
    # mark and no XML declaration UTF-8.
    wide = source_encoding(document.data)
    if wide.startswith(("utf-16", "utf-32")):
        raise UsageError(f"cannot edit a file encoded as {quoted(wide)}")
    name = document.root.getroottree().docinfo.encoding or "utf-8"
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise UsageError(f"unknown encoding {quoted(name)}") from None
    # Byte offsets and the tag scan assume that ASCII text is its own
    # bytes (not so in UTF-7, where '+' is '+-' and '<' may be '+ADw-').
    if _ASCII.encode(codec.name, errors="replace") != _ASCII.encode():
        raise UsageError(f"cannot edit a file encoded as {quoted(name)}")
    return codec.name


def _uses_crlf(data: bytes) -> bool:
    first = data.find(b"\n")
    return first > 0 and data[first - 1:first] == b"\r"


def _wrap(tag: str, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return ([(0, f"<{tag}>")] + [(depth + 1, text) for depth, text in lines]
            + [(0, f"</{tag}>")])


def _leaf(tag: str, value) -> tuple[int, str]:
    return 0, f"<{tag}>{escape(str(value))}</{tag}>"


def _region_name(element, legacy: bool) -> str | None:
    if legacy:
        if len(element) or not (element.text or "").strip():
            return None
        first = element.text.split(",")[0].strip()
        cut = first.find(":/")
        return first[cut + 2:] if cut >= 0 else first
    name = element.find("NAME")
    return None if name is None else (name.text or "").strip()


def _free_name(names: list[str | None]) -> str:
    taken = set(names)
    number = 0
    while f"shm_region_{number}" in taken:
        number += 1
    return f"shm_region_{number}"


def _check_name(name: str) -> None:
    if not name.strip():
        raise UsageError(f"region name {quoted(name)} is empty")
    # Written as given, but XML 1.0 cannot hold these at all (a lone
    # surrogate is what Python makes of a name that is not UTF-8).
    bad = _NOT_XML.search(name)
    if bad:
        raise UsageError(
            f"region name {quoted(name)} has a character XML cannot hold "
            f"(U+{ord(bad.group()):04X})")


def _land(provider: str) -> str:
    text = provider.strip().lower()
    if text in ("hv", "hypervisor"):
        return "hv"
    if text in ("dm", "device model"):
        return "dm"
    raise UsageError(f"provider {quoted(provider)} is not 'hv' or 'dm'")


def _refuse_v3_only(scenario: Scenario, spec: RegionSpec) -> None:
    if not scenario.is_legacy:
        return
    if spec.vbdfs:
        raise UsageError(
            f"VBDF {quoted(spec.vbdfs[0][1])} cannot be set in a legacy (ACRN "
            "v2.x) scenario; ACRN v2.x assigns VBDFs itself")
    if spec.region_id is not None:
        raise UsageError(
            f"region id {quoted(spec.region_id)} cannot be set in a legacy "
            "(ACRN v2.x) scenario; region ids came with ACRN v3.3")


def _resolve_vm(scenario: Scenario, ref: str) -> Vm:
    wanted = ref.strip()
    vm = scenario.vm_named(wanted)
    if vm is None and is_decimal(wanted):
        vm = next((v for v in scenario.vms if v.id == int(wanted)), None)
    if vm is None:
        known = ", ".join(v.name or f"id {v.id_text}" for v in scenario.vms)
        raise UsageError(f"unknown VM {quoted(ref)} (the scenario has: "
                         f"{escaped(known)})")
    if scenario.is_legacy and vm.id is None:
        raise UsageError(f"VM {quoted(ref)} has no numeric id to refer to")
    if not scenario.is_legacy and not vm.name:
        raise UsageError(f"VM {quoted(ref)} has no name to refer to")
    return vm


def _resolve_vms(scenario: Scenario, refs: tuple[str, ...]) -> list[Vm]:
    found: dict[object, Vm] = {}
    for ref in refs:
        vm = _resolve_vm(scenario, ref)
        # Members name VMs by id (legacy) or name (v3): one entry each.
        found.setdefault(vm.id if scenario.is_legacy else vm.name, vm)
    if len(found) < 2:
        shown = ", ".join(quoted(ref) for ref in refs) or "none"
        raise UsageError(
            f"a region needs at least 2 distinct VMs; got {len(found)} "
            f"({shown})")
    return list(found.values())


def _explicit_vbdfs(scenario: Scenario, pairs, members: set[str],
                    region: str) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for ref, vbdf in pairs:
        vm = _resolve_vm(scenario, ref)
        if vm.name not in members:
            raise UsageError(
                f"VM {quoted(ref)} got a VBDF but is not in region "
                f"{quoted(region)}")
        if parse_vbdf(vbdf.strip()) is None:
            raise UsageError(
                f"VBDF {quoted(vbdf)} is not of the form bb:dd.f (e.g. "
                "00:08.0)")
        chosen[vm.name] = vbdf.strip()
    return chosen


def _used_vbdfs(scenario: Scenario) -> dict[str, set[Bdf | None]]:
    # The VBDFs of each VM's IVSHMEM devices and PCI vUARTs, by VM name
    # (None for one that is missing or not a VBDF): one pass for all.
    used: dict[str, set[Bdf | None]] = {}
    for region in scenario.regions:
        for member in region.members:
            if member.vm is not None:
                used.setdefault(member.vm.text.strip(), set()).add(
                    parse_vbdf(member.vbdf.text.strip())
                    if member.vbdf is not None else None)
    for endpoint in scenario.pci_vuarts:
        if endpoint.vm is not None:
            used.setdefault(endpoint.vm.text, set()).add(
                parse_vbdf(endpoint.vbdf.text.strip())
                if endpoint.vbdf is not None else None)
    return used


def _free_vbdf(used_by: dict[str, set[Bdf | None]], vm: Vm,
               board: Board | None) -> str:
    # ``used_by`` comes from _used_vbdfs.
    used = set(used_by.get(vm.name, ()))
    if vm.kind == VmKind.SERVICE and board is not None:
        used |= board.native_bdfs
    for device in AUTO_DEVICES:
        if Bdf(0, device, 0) not in used:
            return str(Bdf(0, device, 0))
    raise UsageError(
        f"VM {quoted(vm.name)} has no free VBDF from 00:08.0 to 00:1e.0; "
        "give one explicitly")


def _v3_region_lines(name: str, provider: str, size: int,
                     region_id: int | None,
                     members) -> list[tuple[int, str]]:
    lines = [_leaf("NAME", name), _leaf("PROVIDED_BY", provider),
             _leaf("IVSHMEM_SIZE", size)]
    if region_id is not None:
        lines.append(_leaf("IVSHMEM_REGION_ID", region_id))
    vms: list[tuple[int, str]] = []
    for vm, vbdf in members:
        vms += _wrap("IVSHMEM_VM", [_leaf("VM_NAME", vm),
                                    _leaf("VBDF", vbdf)])
    return _wrap("IVSHMEM_REGION", lines + _wrap("IVSHMEM_VMS", vms))


def _legacy_vms_text(vms: list[Vm]) -> str:
    return ", ".join(f"{shortened(vm.name)} (id {vm.id})" if vm.name
                     else f"id {vm.id}" for vm in vms)


def _add_legacy(editor: _Editor, name: str, size: int, land: str,
                vms: list[Vm]) -> str:
    raw = f"{land}:/{name}, {size}, " + ":".join(str(vm.id) for vm in vms)
    line = (0, f"<IVSHMEM_REGION>{escape(raw)}</IVSHMEM_REGION>")
    shown = _legacy_vms_text(vms)
    enabled_now = shown + "; IVSHMEM_ENABLED is now y"
    ivshmem = editor.ivshmem()
    if ivshmem is None:
        editor.add_to_ivshmem([line], legacy_enabled=True)
        return enabled_now
    if editor.is_empty_tag(ivshmem):
        editor.insert(ivshmem, [_leaf("IVSHMEM_ENABLED", "y"), line])
        return enabled_now
    regions = list(ivshmem.iterfind("IVSHMEM_REGION"))
    filled = [r for r in regions if _region_name(r, True) is not None]
    enabled = ivshmem.find("IVSHMEM_ENABLED")
    if filled:
        editor.insert(ivshmem, [line], filled[-1])
    elif len(regions) == 1:
        # ACRN's templates hold one empty region: fill it in.
        editor.set_value(regions[0], raw)
    elif enabled is not None:
        editor.insert(ivshmem, [line], enabled)
    elif regions:
        editor.insert(ivshmem, [line], regions[-1])
    if enabled is None:
        # Both go first when there is nothing else to follow.
        editor.insert(ivshmem, [_leaf("IVSHMEM_ENABLED", "y")]
                      + ([] if regions else [line]))
        return enabled_now
    if (enabled.text or "").strip() == "y":
        return shown
    editor.set_value(enabled, "y")
    return enabled_now


def _remove_legacy(editor: _Editor, region) -> str:
    ivshmem = region.getparent()
    regions = list(ivshmem.iterfind("IVSHMEM_REGION"))
    left = [r for r in regions
            if r is not region and _region_name(r, True) is not None]
    if left:
        editor.remove(region)
        return ""
    if len(regions) == 1:
        editor.collapse(region)
    else:
        editor.remove(region)
    enabled = ivshmem.find("IVSHMEM_ENABLED")
    if enabled is None or (enabled.text or "").strip() != "y":
        return ""
    # Enabled without regions is ISM106; ACRN's templates say 'n'.
    editor.set_value(enabled, "n")
    return "; IVSHMEM_ENABLED is now n"


def _undo_add(document: Document, element,
              emptied: EditResult) -> EditResult:
    """The file before :func:`add_region` added ``element``, the last
    region, when that file is known; else ``emptied``.

    A candidate is the file before the add when adding the region to it
    again gives exactly the bytes of ``document``. They are tried from
    the most removed (the ``hv``, ``FEATURES`` or ``IVSHMEM`` that holds
    nothing but the region) to ACRN's empty forms.
    """
    scenario = from_document(document)
    spec = _spec_of(scenario, document.loc(element))
    if spec is None:
        return emptied
    name = quoted(spec.name or "")
    candidates = []
    for wrapper in _wrappers(element, scenario.is_legacy):
        editor = _Editor(document)
        editor.remove(wrapper)
        candidates.append(editor.outcome(
            f"removed region {name} and the {wrapper.tag} element that "
            "held only it"))
    candidates.append(emptied)
    editor = _Editor(document)
    editor.collapse(element.getparent())
    candidates.append(editor.outcome(f"removed region {name}"))
    if scenario.is_legacy:
        # ACRN's template, IVSHMEM_ENABLED left as it is.
        editor = _Editor(document)
        editor.collapse(element)
        candidates.append(editor.outcome(f"removed region {name}"))
    tried = set()
    for candidate in candidates:
        if candidate.data in tried:
            continue
        tried.add(candidate.data)
        try:
            again = add_region(parse_bytes(candidate.data, document.path),
                               spec)
        except AcrnShmError:
            continue
        if again.data == document.data:
            return candidate
    return emptied


def _wrappers(element, legacy: bool) -> list:
    """``hv``, ``FEATURES`` and ``IVSHMEM`` above ``element``, outermost
    first, as far as they hold nothing else (but ``IVSHMEM_ENABLED``)."""
    found = []
    inner = element
    parent = element.getparent()
    for tag in ("IVSHMEM", "FEATURES", "hv"):
        if parent is None or parent.tag != tag:
            break
        allowed = {"IVSHMEM_ENABLED"} if legacy and tag == "IVSHMEM" else ()
        if any(child is not inner and child.tag not in allowed
               for child in parent.iterchildren(etree.Element)):
            break
        found.insert(0, parent)
        inner, parent = parent, parent.getparent()
    return found


def _spec_of(scenario: Scenario, loc) -> RegionSpec | None:
    """What add_region needs to write the region at ``loc`` again, or
    None for values it would not write that way."""
    facts = next((r for r in scenario.resolved.regions
                  if r.syntax.loc == loc), None)
    if (facts is None or facts.name is None or not facts.size_explicit
            or facts.size_mb is None or facts.provider is None
            or facts.syntax.malformed or facts.region_id is None):
        return None
    region = facts.syntax
    members = [m for m in region.members if m.vm is not None]
    return RegionSpec(
        name=facts.name, size=facts.size_mb, provider=facts.provider,
        region_id=facts.region_id if facts.region_id_explicit else None,
        vms=tuple(m.vm.text for m in members),
        vbdfs=() if scenario.is_legacy else tuple(
            (m.vm.text, m.vbdf.text) for m in members
            if m.vbdf is not None))


def _remove_v3(editor: _Editor, region) -> None:
    ivshmem = region.getparent()
    others = [child for child in ivshmem.iterchildren(etree.Element)
              if child is not region]
    opened, closing = editor.content(ivshmem)
    start, end = editor.removal(region)
    rest = editor.data[opened:start] + editor.data[end:closing]
    if others or rest.strip():
        editor.remove(region)
    else:
        editor.collapse(ivshmem)


def _set_legacy(editor: _Editor, region, spec: RegionSpec,
                land: str | None, vms: list[Vm] | None) -> None:
    if spec.name is None and spec.size is None and land is None and (
            vms is None):
        return
    raw = (region.text or "").strip()
    fields = [field.strip() for field in raw.split(",")]
    if len(fields) != 3:
        raise UsageError(
            f"region string {quoted(raw)} is not 'name, size, ids'; fix it "
            "by hand")
    cut = fields[0].find(":/")
    prefix = fields[0][:cut + 2] if cut >= 0 else ""
    name = fields[0][cut + 2:] if cut >= 0 else fields[0]
    if land is not None:
        prefix = f"{land}:/"
    if spec.name is not None:
        name = spec.name
    size = fields[1] if spec.size is None else str(spec.size)
    ids = (fields[2] if vms is None
           else ":".join(str(vm.id) for vm in vms))
    editor.set_value(region, f"{prefix}{name}, {size}, {ids}")


def _set_v3(editor: _Editor, region, spec: RegionSpec, land: str | None,
            vms: list[Vm] | None,
            board: Board | None) -> tuple[tuple[str, str], ...]:
    values = {
        "NAME": spec.name,
        "PROVIDED_BY": None if land is None else PROVIDERS[land],
        "IVSHMEM_SIZE": spec.size,
        "IVSHMEM_REGION_ID": spec.region_id,
    }
    for tag, value in values.items():
        if value is not None:
            _set_leaf(editor, region, tag, str(value))
    name = spec.name or _region_name(region, False)
    return _set_members(editor, region, name, spec.vbdfs, vms, board)


def _set_leaf(editor: _Editor, region, tag: str, value: str) -> None:
    element = region.find(tag)
    if element is not None:
        editor.set_value(element, value)
        return
    rank = V3_ORDER.index(tag)
    before = [child for child in region.iterchildren(etree.Element)
              if child.tag in V3_ORDER[:rank]]
    editor.insert(region, [_leaf(tag, value)],
                  before[-1] if before else None)


def _set_members(editor: _Editor, region, name: str, vbdfs,
                 vms: list[Vm] | None,
                 board: Board | None) -> tuple[tuple[str, str], ...]:
    scenario = editor.scenario
    container = region.find("IVSHMEM_VMS")
    members = ([] if container is None
               else list(container.iterfind("IVSHMEM_VM")))
    current = [((m.findtext("VM_NAME") or "").strip(), m) for m in members]
    wanted = ([vm for vm, _ in current] if vms is None
              else [vm.name for vm in vms])
    wanted_set = set(wanted)
    explicit = _explicit_vbdfs(scenario, vbdfs, wanted_set, name)
    kept: dict[str, etree._Element] = {}
    for vm, member in current:
        if vm in wanted_set and vm not in kept:
            kept[vm] = member
        elif vms is not None:
            editor.remove(member)
    assigned = []
    for vm, member in kept.items():
        vbdf = (member.findtext("VBDF") or "").strip()
        if vm in explicit:
            vbdf = explicit[vm]
            element = member.find("VBDF")
            if element is not None:
                editor.set_value(element, vbdf)
            else:
                editor.insert(member, [_leaf("VBDF", vbdf)],
                              member.find("VM_NAME"))
        assigned.append((vm, vbdf))
    used = _used_vbdfs(scenario)
    added = [(vm.name, explicit.get(vm.name) or _free_vbdf(used, vm, board))
             for vm in vms or () if vm.name not in kept]
    lines: list[tuple[int, str]] = []
    for vm, vbdf in added:
        lines += _wrap("IVSHMEM_VM", [_leaf("VM_NAME", vm),
                                      _leaf("VBDF", vbdf)])
    if lines and container is None:
        before = [child for child in region.iterchildren(etree.Element)
                  if child.tag in V3_ORDER]
        editor.insert(region, _wrap("IVSHMEM_VMS", lines),
                      before[-1] if before else None)
    elif lines:
        editor.insert(container, lines,
                      list(kept.values())[-1] if kept else None)
    return tuple(assigned + added)


def region_rows(scenario: Scenario) -> list[dict]:
    """The regions of ``scenario`` as ``acrn-shm regions -f json`` shows
    them: name, provider, size in MB, region id, line, and the member
    VMs (name, id, VBDF), in document order. Sizes and region ids are
    the resolved facts as written: None when missing (ACRN's default
    applies) or unreadable (see :mod:`acrn_ivshmem.model.resolved`)."""
    rows = []
    for facts in scenario.resolved.regions:
        members = []
        for member in facts.members:
            ref = member.syntax.vm.text if member.syntax.vm else ""
            vm = member.vm
            members.append({
                "vm": vm.name if vm and vm.name else ref,
                "vm_id": vm.id if vm else None,
                "vbdf": member.syntax.vbdf.text if member.syntax.vbdf
                else None})
        rows.append({
            "name": facts.name,
            "provider": facts.provider,
            "size_mb": facts.size_mb if facts.size_explicit else None,
            "region_id": facts.region_id if facts.region_id_explicit
            else None,
            "line": facts.syntax.loc.line,
            "vms": members,
        })
    return rows
