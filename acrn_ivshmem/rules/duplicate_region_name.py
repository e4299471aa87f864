"""ISM206 duplicate-region-name: region names are unique.

What it does
    Checks that no two regions of a scenario have the same name.

Why it matters
    The hypervisor finds a region by name and always takes the first, so
    two groups of VMs that were meant to be apart share one memory (or a
    VM fails to start when the sizes differ). ACRN v3 only catches the
    case where the two regions also share a VM.

Example (fails)
    two <IVSHMEM_REGION> elements with <NAME>shm_region_0</NAME>

Use instead (passes)
    <NAME>shm_region_0</NAME> and <NAME>shm_region_1</NAME>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM206"
NAME = "duplicate-region-name"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each region whose name was used before."""
    first_line: dict[str, int] = {}
    for region in scenario.regions:
        if region.name is None or not region.name.text:
            continue
        name = region.name.text
        if name in first_line:
            yield Finding(
                region.name.loc,
                f"region name {quoted(name)} is already used by the region at "
                f"line {first_line[name]}",
                "give every region its own name")
        else:
            first_line[name] = region.loc.line
