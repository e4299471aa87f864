"""ISM201 region-size: a power of two from 2 to 512 MB.

What it does
    Checks that each region's size (``IVSHMEM_SIZE``, or the legacy size
    field) is one of 2, 4, 8, 16, 32, 64, 128, 256 or 512 (MB).

Why it matters
    The PCI BAR that maps the memory must be a power of two, and both
    the hypervisor and acrn-dm refuse sizes below 2 MB or of 1 GB and
    more; a wrong size fails at VM start, not at build time.

Example (fails)
    <IVSHMEM_SIZE>3</IVSHMEM_SIZE>

Use instead (passes)
    <IVSHMEM_SIZE>4</IVSHMEM_SIZE>

Fix safety
    Unsafe: it raises a v3 ``IVSHMEM_SIZE`` written as a plain decimal
    below 512 to the next allowed size (3 becomes 4), and every VM of
    the region then sees a larger BAR, which a program that checks the
    size it expects notices. ``--fix`` alone leaves it; ``--fix
    --unsafe-fixes`` applies it. Legacy size fields, sizes above 512
    and sizes that are not plain decimals get no fix.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import UNSAFE, Finding, TextFix
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM201"
NAME = "region-size"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
ALLOWED = tuple(2 ** power for power in range(1, 10))


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per region whose size is not allowed."""
    for facts in scenario.resolved.regions:
        region, size = facts.syntax, facts.syntax.size
        if region.malformed or size is None:
            continue
        if region.legacy is not None and not facts.size_decimal:
            continue  # ISM103 reports it
        if facts.size_mb in ALLOWED:
            continue
        fix = _raise_to_allowed(region.legacy is None, size.text)
        yield Finding(
            size.loc,
            f"region {region.label} size {quoted(size.text)} is not a power "
            f"of two from 2 to 512 (MB)",
            "use one of " + ", ".join(str(mb) for mb in ALLOWED),
            TextFix(size.loc, size.text, fix, UNSAFE) if fix else None)


def _raise_to_allowed(v3: bool, text: str) -> str | None:
    """The next allowed size for a v3 size written as a plain decimal
    below 512, else None."""
    if not v3 or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0")
    if len(digits) > 3:  # above 512, and int() refuses 4,300 digits
        return None
    return next((str(mb) for mb in ALLOWED if mb >= int(digits or "0")),
                None)
