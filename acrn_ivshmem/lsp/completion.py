"""Completion of values inside a v3 IVSHMEM block.

In ``VM_NAME`` the scenario's VM names (those not yet in the region
first), in ``VBDF`` the next free VBDF of the member's VM, in
``IVSHMEM_SIZE`` the sizes 2 to 512 MB, in ``PROVIDED_BY`` the two
providers, in ``IVSHMEM_REGION_ID`` the smallest id no other region
uses (a region without one has id 0, ACRN's default). Each item
replaces the element's whole text.
"""

from __future__ import annotations

from lsprotocol import types

from . import vbdfs
from .context import element_at, sibling_value
from .engine import ALLOWED_SIZES, MAX_REGION_ID, Board, Scenario
from .text import Pos, Text, lsp_range

PROVIDERS = ("Hypervisor", "Device Model")


def complete(text: Text, pos: Pos, scenario: Scenario | None,
             board: Board | None) -> list[types.CompletionItem]:
    """The completion items at ``pos`` (none outside these elements)."""
    offset = text.offset(pos)
    context = element_at(text.source, offset)
    if context is None or context.on_tag:
        return []
    span = lsp_range(text.pos_at(context.start), text.pos_at(context.end))
    if context.tag == "IVSHMEM_SIZE":
        values = [(str(mb), f"{mb} MB") for mb in ALLOWED_SIZES]
    elif context.tag == "PROVIDED_BY":
        values = [(name, "region provider") for name in PROVIDERS]
    elif scenario is None or scenario.is_legacy:
        return []
    elif context.tag == "VM_NAME":
        values = _vm_names(text, offset, scenario)
    elif context.tag == "VBDF":
        vm = sibling_value(text.source, offset, "IVSHMEM_VM", "VM_NAME")
        if not vm:
            return []
        found = vbdfs.table(scenario, board, vm,
                            skip=text.to_loc(text.pos_at(context.start)))
        values = [(bdf, f"next free VBDF of {vm}") for bdf in found.free[:1]]
    elif context.tag == "IVSHMEM_REGION_ID":
        free = next_region_id(scenario, sibling_value(
            text.source, offset, "IVSHMEM_REGION", "NAME"))
        values = [] if free is None else [(str(free), "next free region id")]
    else:
        return []
    return [types.CompletionItem(
        label=value, detail=detail, kind=types.CompletionItemKind.Value,
        sort_text=f"{index:04d}", preselect=index == 0 or None,
        text_edit=types.TextEdit(range=span, new_text=value))
        for index, (value, detail) in enumerate(values)]


def _vm_names(text: Text, offset: int,
              scenario: Scenario) -> list[tuple[str, str]]:
    region = sibling_value(text.source, offset, "IVSHMEM_REGION", "NAME")
    members = set()
    for candidate in scenario.regions:
        if candidate.name is not None and candidate.name.text == region:
            members = {m.vm.text.strip() for m in candidate.members
                       if m.vm is not None}
    vms = [vm for vm in scenario.vms if vm.name]
    vms.sort(key=lambda vm: vm.name in members)
    return [(vm.name, f"{vm.kind.value} VM, id {vm.id_text}")
            for vm in vms]


def next_region_id(scenario: Scenario, region: str | None) -> int | None:
    """The smallest region id that no region but ``region`` uses."""
    used = set()
    for other in scenario.regions:
        if other.name is not None and other.name.text == region:
            continue
        if other.id_number is not None:
            used.add(other.id_number)
    return next((n for n in range(MAX_REGION_ID + 1) if n not in used),
                None)
