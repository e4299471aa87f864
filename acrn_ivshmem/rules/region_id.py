"""ISM211 region-id: IVSHMEM_REGION_ID is a decimal integer 0..65535.

What it does
    Checks that ``IVSHMEM_REGION_ID`` (ACRN v3.3) is written in decimal
    and lies between 0 and 65535.

Why it matters
    The id reaches the guest as the 16-bit PCI subsystem id. ACRN's
    schema accepts any integer and truncates it to 16 bits, and acrn-dm
    parses the option in base 10, so ``0x10`` silently becomes 0.

Example (fails)
    <IVSHMEM_REGION_ID>0x10</IVSHMEM_REGION_ID>

Use instead (passes)
    <IVSHMEM_REGION_ID>16</IVSHMEM_REGION_ID>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.resolved import OUT_OF_RANGE, TOO_LONG
from ..model.syntax import MAX_REGION_ID, Board, Scenario

CODE = "ISM211"
NAME = "region-id"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
MAXIMUM = MAX_REGION_ID


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per region id that is not decimal or too large."""
    for facts in scenario.resolved.regions:
        region, rid = facts.syntax, facts.syntax.region_id
        if rid is None or facts.region_id is not None:
            continue
        text = rid.text
        if facts.region_id_reason in (OUT_OF_RANGE, TOO_LONG):
            yield Finding(
                rid.loc,
                f"region {region.label} id {quoted(text)} is above "
                f"{MAXIMUM}; the guest sees it as a 16-bit PCI subsystem id",
                f"use a number from 0 to {MAXIMUM}")
            continue
        hint = f"use a decimal number from 0 to {MAXIMUM}"
        try:
            number = int(text, 0)
        except ValueError:  # also for more digits than int() reads
            number = None
        if number is not None and 0 <= number <= MAXIMUM:
            hint = (f"write {quoted(number)}; acrn-dm reads the id in base "
                    f"10, so {quoted(text)} would become 0")
        yield Finding(
            rid.loc,
            f"region {region.label} id {quoted(text)} is not a decimal "
            f"integer from 0 to {MAXIMUM}",
            hint)
