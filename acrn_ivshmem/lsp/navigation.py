"""Go to a VM from its name in a region; the outline of VMs and regions."""

from __future__ import annotations

from lsprotocol import types

from .context import element_at
from .engine import Document, LaunchConfig, Scenario, element_ends
from .text import Pos, Text, lsp_range


def definition(uri: str, text: Text, pos: Pos,
               scenario: Scenario | None,
               document: Document | None) -> types.Location | None:
    """The ``<vm>`` that the ``VM_NAME`` (or ``vm_name``) at ``pos``
    names, or None."""
    context = element_at(text.source, text.offset(pos))
    if (scenario is None or context is None
            or context.tag not in ("VM_NAME", "vm_name")):
        return None
    vm = scenario.vm_named(context.value.strip())
    if vm is None:
        return None
    return types.Location(uri=uri, range=_span(
        text, tuple(vm.loc), _ends(document).get(tuple(vm.loc))))


def _ends(document: Document | None) -> dict:
    return element_ends(document) if document is not None else {}


def _span(text: Text, start: tuple[int, int],
          end: tuple[int, int] | None) -> types.Range:
    # From the start tag's "<" to the end tag's ">".
    first = text.from_loc(*start)
    last = text.from_loc(*(end or start))
    close = text.source.find(">", text.offset(last))
    return lsp_range(first, text.pos_at(
        close + 1 if close >= 0 else len(text.source)))


def symbols(text: Text, model: Scenario | LaunchConfig | None,
            document: Document | None) -> list[types.DocumentSymbol]:
    """The VMs, then the IVSHMEM block with its regions and members."""
    if not isinstance(model, Scenario) or document is None:
        return []
    ends = element_ends(document)

    def symbol(name: str, detail: str, kind: types.SymbolKind,
               start: tuple[int, int],
               children=None) -> types.DocumentSymbol:
        span = _span(text, start, ends.get(start))
        return types.DocumentSymbol(
            name=name or "(unnamed)", detail=detail, kind=kind,
            range=span, selection_range=span, children=children)

    found = []
    for vm in model.vms:
        found.append(symbol(
            vm.name or f"vm {vm.id_text}",
            f"{vm.kind.value}, id {vm.id_text}", types.SymbolKind.Object,
            tuple(vm.loc)))
    regions = []
    for region in model.regions:
        members = [symbol(
            m.vm.text.strip() if m.vm is not None else "(no VM)",
            m.vbdf.text.strip() if m.vbdf is not None else "",
            types.SymbolKind.Field, tuple(m.loc))
            for m in region.members if region.legacy is None]
        size = region.size.text if region.size is not None else "?"
        regions.append(symbol(
            region.name.text if region.name is not None else "",
            f"{size} MB, {region.land or 'unknown provider'}",
            types.SymbolKind.Struct, tuple(region.loc),
            children=members or None))
    if model.ivshmem_loc is not None:
        found.append(symbol("IVSHMEM", f"{len(regions)} regions",
                            types.SymbolKind.Namespace,
                            tuple(model.ivshmem_loc),
                            children=regions or None))
    return found
