"""ISM103 legacy-region-size-decimal: the size field is a decimal number.

What it does
    Checks that the second field of a legacy ``IVSHMEM_REGION`` string is
    a plain decimal number of megabytes.

Why it matters
    ACRN v2.2 and later read the size in decimal MB; ``0x2``, ``2M`` or
    a size in bytes (some ACRN samples wrongly show ``2097152``) are
    rejected or give a region of the wrong size.

Example (fails)
    <IVSHMEM_REGION>hv:/shm_region_0, 0x2, 0:2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.resolved import NOT_DECIMAL
from ..model.syntax import Board, Scenario

CODE = "ISM103"
NAME = "legacy-region-size-decimal"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per legacy size field that is not decimal."""
    for facts in scenario.resolved.regions:
        region, size = facts.syntax, facts.syntax.size
        if region.legacy is None or region.malformed:
            continue
        if size is None or facts.size_reason != NOT_DECIMAL:
            continue
        yield Finding(
            size.loc,
            f"region {region.label} size {quoted(size.text)} is not a decimal "
            f"number of MB",
            "write the size in decimal megabytes, e.g. '2' for 2 MB")
