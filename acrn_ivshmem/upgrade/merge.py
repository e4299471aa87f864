"""Merge converted regions into an existing v3 scenario.

:func:`merge_regions` splices the IVSHMEM regions of an
:class:`~acrn_ivshmem.upgrade.scenario.UpgradeResult` into the bytes of a
v3 scenario (one edit through :mod:`acrn_ivshmem.io.textedit`), changing
nothing outside its ``IVSHMEM`` element, and checks the new lines with
the rule engine; :func:`merged_assignments` gives the VBDFs it would
write.
"""

from __future__ import annotations

from lxml import etree

from ..errors import InputError, UsageError, located, quoted
from ..io.textedit import Edit, apply_edits, tag_end
from ..io.xmlio import Document, escape, parse_bytes
from ..lint.config import LintConfig
from ..model.loader import kind_of, scenario_from
from ..model.syntax import FIRST_IVSHMEM_DEVICE, Bdf, Scenario, parse_vbdf
from .scenario import Assignment, UpgradeResult, kind_name, lint_errors
from .tables import DEVICE_MODEL, HYPERVISOR, MAX_HV_REGIONS, POST

__all__ = ["merge_regions", "merged_assignments"]


def merged_assignments(target_v3: Document,
                       result: UpgradeResult) -> tuple[Assignment, ...]:
    """The assignments as :func:`merge_regions` writes them.

    A member keeps its VBDF unless its VM already uses it in the target
    (in a region or a PCI vUART); then it gets the lowest free one from
    00:08.0. Raises :class:`UsageError` like :func:`merge_regions`.
    """
    return _Merge(target_v3, result).assignments


def merge_regions(target_v3: Document, result: UpgradeResult,
                  config: LintConfig | None = None) -> bytes:
    """Add the regions of ``result`` to the v3 scenario ``target_v3``.

    Only the bytes of the ``IVSHMEM`` element change (it is created
    inside ``hv/FEATURES`` if missing); new regions follow the existing
    ones, indented like the file. Raises :class:`UsageError` if a region
    name already exists in the target or a VM name is not a VM there,
    or if the new regions' lines have a lint error with ``config``
    (default: every rule at its own severity); see
    :func:`merged_assignments` for VBDFs.
    """
    return _Merge(target_v3, result, config).data()



# --------------------------------------------------------------------------
# Merging into an existing v3 scenario


class _Merge:
    """Splices converted regions into a v3 scenario's bytes."""

    def __init__(self, target: Document, result: UpgradeResult,
                 config: LintConfig | None = None):
        kind = kind_of(target)
        if kind != "v3":
            raise UsageError(located(
                target.path, None, None,
                f"is a {kind_name(kind)}; --into expects a v3 scenario"))
        self.target = target
        self.config = config or LintConfig()
        self.model: Scenario = scenario_from(target, "v3")
        self.assignments = self._assign(result)

    def _assign(self, result: UpgradeResult) -> tuple[Assignment, ...]:
        model = self.model
        path = self.target.path
        existing = {region.name.text: region for region in model.regions
                    if region.name is not None}
        used: dict[str, set[int]] = {}
        for region in model.regions:
            for member in region.members:
                if member.vm is not None and member.vbdf is not None:
                    _mark(used, member.vm.text.strip(), member.vbdf.text)
        for endpoint in model.pci_vuarts:
            if endpoint.vm is not None and endpoint.vbdf is not None:
                _mark(used, endpoint.vm.text, endpoint.vbdf.text)
        rows = []
        for row in result.assignments:
            if row.region in existing:
                loc = existing[row.region].loc
                raise UsageError(located(
                    path, loc.line, loc.column,
                    f"region {quoted(row.region)} already exists here; remove "
                    "or rename it before merging"))
            vm = model.vm_named(row.vm_name)
            if vm is None:
                raise UsageError(located(
                    path, None, None,
                    f"region {quoted(row.region)} needs VM "
                    f"{quoted(row.vm_name)}, "
                    "which is not a VM of this scenario"))
            if row.provider == DEVICE_MODEL and vm.kind is not POST:
                raise UsageError(located(
                    path, vm.loc.line, vm.loc.column,
                    f"Device Model region {quoted(row.region)} needs VM "
                    f"{quoted(row.vm_name)}, which is {vm.kind.value} here"))
            taken = used.setdefault(row.vm_name, set())
            bdf = parse_vbdf(row.vbdf)
            vbdf = row.vbdf
            if bdf is None or bdf.device in taken or bdf.bus:
                device = next((d for d in range(FIRST_IVSHMEM_DEVICE,
                                                0x1F) if d not in taken),
                              None)
                if device is None:
                    raise UsageError(located(
                        path, None, None,
                        f"VM {quoted(row.vm_name)} has no free PCI device "
                        f"number left for region {quoted(row.region)}"))
                vbdf = str(Bdf(0, device, 0))
            taken.add(parse_vbdf(vbdf).device)
            rows.append(Assignment(row.region, row.provider, row.size,
                                   row.vm_id, row.vm_name, vbdf,
                                   row.source))
        hv_count = sum(1 for region in model.regions
                       if region.land == "hv")
        hv_count += len({row.region for row in rows
                         if row.provider == HYPERVISOR})
        if hv_count > MAX_HV_REGIONS:
            raise UsageError(located(
                path, None, None,
                f"merging gives {hv_count} hypervisor regions; ACRN allows "
                f"at most {MAX_HV_REGIONS}"))
        return tuple(rows)

    def data(self) -> bytes:
        data = self.target.data
        if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
            raise InputError(located(self.target.path, None, None,
                                     "UTF-16 files cannot be merged into"))
        if not self.assignments:
            return data
        # The deepest of hv/FEATURES/IVSHMEM that exists, and the rest.
        parent = self.target.root
        missing = ["hv", "FEATURES", "IVSHMEM"]
        while missing and parent.find(missing[0]) is not None:
            parent = parent.find(missing.pop(0))
        if parent is self.target.root:
            raise UsageError(located(self.target.path, None, None,
                                     "has no <hv> element to merge into"))
        unit = self._unit(parent)
        indent = self._indent(parent)
        lines = [(level, f"<{tag}>") for level, tag in enumerate(missing)]
        lines += self._regions(len(missing))
        lines += [(level, f"</{tag}>")
                  for level, tag in reversed(list(enumerate(missing)))]
        newline = "\r\n" if b"\r\n" in data else "\n"
        block = "".join(f"{indent}{unit * (level + 1)}{text}{newline}"
                        for level, text in lines)
        edit, inner = _append_into(data, self.target, parent,
                                   block.encode("utf-8"), indent.encode(),
                                   newline.encode())
        new = apply_edits(data, [edit])
        offset = edit.start + inner
        first = new.count(b"\n", 0, offset) + 1
        self._verify(new, range(first, first + len(lines)))
        return new

    def _regions(self, depth: int) -> list[tuple[int, str]]:
        lines = []
        regions: dict[str, list[Assignment]] = {}
        for row in self.assignments:
            regions.setdefault(row.region, []).append(row)
        for name, rows in regions.items():
            first = rows[0]
            lines += [
                (depth, "<IVSHMEM_REGION>"),
                (depth + 1, f"<NAME>{escape(name)}</NAME>"),
                (depth + 1, f"<PROVIDED_BY>{escape(first.provider)}"
                 "</PROVIDED_BY>"),
                (depth + 1, f"<IVSHMEM_SIZE>{first.size}</IVSHMEM_SIZE>"),
                (depth + 1, "<IVSHMEM_VMS>"),
            ]
            for row in rows:
                lines += [
                    (depth + 2, "<IVSHMEM_VM>"),
                    (depth + 3, f"<VM_NAME>{escape(row.vm_name)}</VM_NAME>"),
                    (depth + 3, f"<VBDF>{escape(row.vbdf)}</VBDF>"),
                    (depth + 2, "</IVSHMEM_VM>"),
                ]
            lines += [(depth + 1, "</IVSHMEM_VMS>"),
                      (depth, "</IVSHMEM_REGION>")]
        return lines

    def _indent(self, element: etree._Element) -> str:
        data = self.target.data
        start = self.target.pos(element).start_byte
        line_start = data.rfind(b"\n", 0, start) + 1
        lead = data[line_start:start]
        return lead.decode() if not lead.strip() else ""

    def _unit(self, element: etree._Element) -> str:
        # The step between this element's indentation and a child's (or
        # its parent's and its own); two spaces by default.
        children = [child for child in element
                    if isinstance(child.tag, str)]
        pairs = []
        if children:
            pairs.append((element, children[0]))
        if element.getparent() is not None:
            pairs.append((element.getparent(), element))
        for outer, inner in pairs:
            outer_indent = self._indent(outer)
            inner_indent = self._indent(inner)
            if (inner_indent.startswith(outer_indent)
                    and len(inner_indent) > len(outer_indent)):
                return inner_indent[len(outer_indent):]
        return "  "

    def _verify(self, data: bytes, lines: range):
        document = parse_bytes(data, self.target.path)
        model = scenario_from(document, kind_of(document))
        names = [region.name.text for region in model.regions
                 if region.name is not None]
        wanted = ([region.name.text for region in self.model.regions
                   if region.name is not None]
                  + list(dict.fromkeys(row.region
                                       for row in self.assignments)))
        if names != wanted:  # pragma: no cover - a bug, not user input
            raise AssertionError(f"merge produced regions {names}")
        # The new regions must pass acrn-shm's rules; problems the target
        # had before are its own business.
        for found in lint_errors(self.config, self.target.path, model, None):
            if found.line in lines:
                raise UsageError(located(
                    self.target.path, found.line, None,
                    "the merged regions would not pass "
                    f"{found.code}: {found.message}"))


def _mark(used: dict[str, set[int]], vm_name: str, vbdf: str):
    bdf = parse_vbdf(vbdf.strip())
    if bdf is not None and bdf.bus == 0:
        used.setdefault(vm_name, set()).add(bdf.device)


def _append_into(data: bytes, document: Document, element: etree._Element,
                 block: bytes, indent: bytes,
                 newline: bytes) -> tuple[Edit, int]:
    """The edit that inserts ``block`` (whole lines) as the last content
    of ``element``, and where ``block`` starts in its new bytes."""
    pos = document.pos(element)
    close = tag_end(data, pos.start_byte)
    if data[close - 1:close] == b"/":
        # <TAG/> or <TAG attr="..." />: turn it into a start/end pair.
        head = data[pos.start_byte:close - 1].rstrip() + b">"
        tag = element.tag.encode()
        return (Edit(pos.start_byte, close + 1,
                     head + newline + block + indent + b"</" + tag + b">"),
                len(head) + len(newline))
    end = pos.end_byte
    line_start = data.rfind(b"\n", 0, end) + 1
    if not data[line_start:end].strip() and line_start > pos.start_byte:
        return Edit(line_start, line_start, block), 0
    # The end tag shares its line with other content.
    return Edit(end, end, newline + block + indent), len(newline)
