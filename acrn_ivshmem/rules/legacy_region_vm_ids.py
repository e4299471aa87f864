"""ISM104 legacy-region-vm-ids: VM ids are integers separated by ':'.

What it does
    Checks that the third field of a legacy ``IVSHMEM_REGION`` string is
    a list of decimal VM ids separated by colons, such as ``0:2``.

Why it matters
    ACRN v2.x rejects the whole region when one id does not parse, with a
    message that wrongly speaks of commas; ``0;2`` or ``0 2`` are easy
    slips.

Example (fails)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0;2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, is_decimal

CODE = "ISM104"
NAME = "legacy-region-vm-ids"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per VM id that is not a decimal integer."""
    for region in scenario.regions:
        if region.legacy is None or region.malformed:
            continue
        if not region.legacy.fields[2].text:
            continue
        for member in region.members:
            if member.vm is not None and not is_decimal(member.vm.text):
                yield Finding(
                    member.vm.loc,
                    f"region {region.label} VM id {quoted(member.vm.text)} is "
                    f"not a decimal integer",
                    "list VM ids as decimal numbers separated by ':', "
                    "e.g. '0:2'")
