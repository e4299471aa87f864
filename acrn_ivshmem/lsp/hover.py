"""Hover: a rule code's documentation, the allowed region sizes, who uses
a VBDF and what is free, and what a VM name stands for."""

from __future__ import annotations

from lsprotocol import types

from ..model.resolved import read_number
from . import vbdfs
from .context import code_at, element_at, sibling_value
from .engine import (
    ALLOWED_SIZES, Board, Scenario, parse_vbdf, rule_markdown,
)
from .text import Pos, Text, lsp_range

#: How many free VBDFs a hover lists before "and N more".
SHOWN_FREE = 8


def hover(text: Text, pos: Pos, scenario: Scenario | None,
          board: Board | None) -> types.Hover | None:
    """The hover at ``pos``, or None."""
    offset = text.offset(pos)
    code = code_at(text.source, offset)
    if code is not None:
        page = rule_markdown(code[0])
        if page is not None:
            return _hover(text, page, code[1], code[2])
    context = element_at(text.source, offset)
    if context is None:
        return None
    if context.tag == "IVSHMEM_SIZE":
        body = size_text(context.value.strip())
    elif scenario is not None and context.tag in ("VM_NAME", "vm_name"):
        body = vm_text(scenario, context.value.strip())
    elif scenario is not None and context.tag == "VBDF":
        vm = sibling_value(text.source, offset, "IVSHMEM_VM", "VM_NAME")
        if not vm:
            return None
        body = vbdf_text(scenario, board, vm, context.value.strip())
    else:
        return None
    return _hover(text, body, context.start, context.end)


def _hover(text: Text, body: str, start: int, end: int) -> types.Hover:
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                     value=body),
        range=lsp_range(text.pos_at(start), text.pos_at(end)))


def size_text(value: str) -> str:
    """What the hover on an ``IVSHMEM_SIZE`` says."""
    allowed = ", ".join(str(mb) for mb in ALLOWED_SIZES)
    lines = [(f"**IVSHMEM_SIZE**: the region's size in MB, one of "
              f"{allowed} (ISM201).")]
    if read_number(value)[0] in ALLOWED_SIZES:
        lines.append(f"`{value}` MB is allowed.")
    elif value:
        lines.append(f"`{value}` is not allowed.")
    return "\n\n".join(lines)


def vm_text(scenario: Scenario, name: str) -> str:
    """What the hover on a VM name says: the VM's kind and id."""
    vm = scenario.vm_named(name)
    if vm is None:
        known = ", ".join(f"`{v.name}`" for v in scenario.vms if v.name)
        return (f"No VM is called `{name}` in this scenario"
                + (f"; its VMs: {known}." if known else "."))
    kind = vm.kind.value + (", real-time" if vm.rt else "")
    order = f" (`{vm.vm_type.strip()}`)" if vm.vm_type else ""
    return (f"**VM `{vm.name}`**: {kind}{order}, id "
            f"`{vm.id_text if vm.id_text is not None else '?'}`, "
            f"line {vm.loc.line}.")


def vbdf_text(scenario: Scenario, board: Board | None, vm: str,
              value: str) -> str:
    """What the hover on a VBDF says: the VM's devices, free VBDFs."""
    found = vbdfs.table(scenario, board, vm)
    wanted = parse_vbdf(value)
    lines = [f"**VBDF `{value}`** of VM `{vm}`."]
    same = [owner for written, owner, _ in found.uses
            if wanted is not None and parse_vbdf(written.strip()) == wanted]
    if wanted is None:
        lines.append("Not a VBDF of the form `bb:dd.f` (ISM301).")
    elif len(same) > 1:
        lines.append(f"Used {len(same)} times by this VM (ISM302).")
    if wanted is not None and wanted in found.native:
        lines.append("A native PCI device of the board has this address "
                     "(ISM304).")
    rows = [f"- `{written}`: {owner}" for written, owner, _ in found.uses]
    lines.append(f"Devices of `{vm}`:\n" + ("\n".join(rows) or "- none"))
    shown = ", ".join(f"`{bdf}`" for bdf in found.free[:SHOWN_FREE])
    more = len(found.free) - SHOWN_FREE
    lines.append("Free: " + (shown or "none")
                 + (f" and {more} more" if more > 0 else "")
                 + " (00:08.0 to 00:1e.0).")
    return "\n\n".join(lines)
