"""ISM106 ivshmem-enabled-without-regions: enabled, but nothing shared.

What it does
    Warns when a legacy scenario sets ``IVSHMEM_ENABLED`` to ``y`` and
    lists no non-empty ``IVSHMEM_REGION``.

Why it matters
    The feature is compiled into the hypervisor for nothing; usually a
    region was meant to be there.

Example (warns)
    <IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>
    <IVSHMEM_REGION/>

Use instead (passes)
    <IVSHMEM_ENABLED>n</IVSHMEM_ENABLED>
    <IVSHMEM_REGION/>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM106"
NAME = "ivshmem-enabled-without-regions"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Warn when IVSHMEM_ENABLED is 'y' and no region is set."""
    enabled = scenario.ivshmem_enabled
    if not scenario.is_legacy or enabled is None or enabled.text != "y":
        return
    if not scenario.regions:
        yield Finding(
            enabled.loc,
            "IVSHMEM_ENABLED is 'y' but no IVSHMEM_REGION is set",
            "add a region such as 'hv:/shm_region_0, 2, 0:2', or set "
            "IVSHMEM_ENABLED to 'n'")
