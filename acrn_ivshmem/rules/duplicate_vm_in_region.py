"""ISM205 duplicate-vm-in-region: no VM is listed twice in one region.

What it does
    Checks that a VM appears at most once in a region's VM list.

Why it matters
    A second entry gives the VM two devices for the same memory; ACRN v2
    rejects ``0:0:2`` and ACRN v3 rejects a doubled ``VM_NAME`` with a
    message that names no line.

Example (fails)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2:0</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.resolved import vm_key
from ..model.syntax import Board, Scenario

CODE = "ISM205"
NAME = "duplicate-vm-in-region"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each repeated VM of a region."""
    for region in scenario.regions:
        if region.malformed:
            continue
        seen: set[str] = set()
        for member in region.members:
            if member.vm is None or not member.vm.text:
                continue
            ref = member.vm.text
            key = vm_key(ref, scenario.is_legacy)
            if key in seen:
                yield Finding(
                    member.vm.loc,
                    f"region {region.label} lists VM {quoted(ref)} more than "
                    f"once",
                    "list each VM once")
            seen.add(key)
