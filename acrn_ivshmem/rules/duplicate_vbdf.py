"""ISM302 duplicate-vbdf: a VM uses each VBDF once.

What it does
    Checks that within one VM no two IVSHMEM devices or PCI vUARTs have
    the same VBDF. VBDFs are compared as numbers, so ``00:0A.0`` and
    ``0:0a.0`` are the same.

Why it matters
    Two devices cannot sit at one PCI address; the second fails when the
    VM starts. ACRN compares the text, so ``00:0A.0`` and ``00:0a.0``
    pass its check and collide at run time.

Example (fails)
    region A: <VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:08.0</VBDF>
    region B: <VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:08.0</VBDF>

Use instead (passes)
    region B: <VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:09.0</VBDF>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, parse_vbdf
from ._vbdfs import VbdfUse, vbdf_uses

CODE = "ISM302"
NAME = "duplicate-vbdf"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each later use of a VM's VBDF."""
    first: dict[tuple, VbdfUse] = {}
    for use in vbdf_uses(scenario):
        bdf = parse_vbdf(use.vbdf.text)
        if bdf is None:
            continue
        key = (use.vm_name, bdf)
        earlier = first.get(key)
        if earlier is None:
            first[key] = use
            continue
        if earlier.region_index is not None and (
                earlier.region_index == use.region_index):
            continue  # the VM is listed twice: ISM205 reports it
        yield Finding(
            use.vbdf.loc,
            f"VM {quoted(use.vm_name)} uses VBDF {quoted(use.vbdf.text)} for "
            f"{use.owner} and already for {earlier.owner} at line "
            f"{earlier.vbdf.loc.line}",
            "give each device of a VM its own VBDF")
