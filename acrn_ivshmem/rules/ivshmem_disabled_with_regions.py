"""ISM105 ivshmem-disabled-with-regions: regions that ACRN will ignore.

What it does
    Warns when a legacy scenario sets ``IVSHMEM_ENABLED`` to ``n`` but
    lists ``IVSHMEM_REGION`` strings.

Why it matters
    ACRN v2.x neither checks nor builds those regions, so the shared
    memory silently does not exist; ACRN's upgrader to v3 carries them
    over anyway, so they come back to life after an upgrade.

Example (warns)
    <IVSHMEM_ENABLED>n</IVSHMEM_ENABLED>
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM105"
NAME = "ivshmem-disabled-with-regions"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Warn once when regions exist while IVSHMEM_ENABLED is 'n'."""
    enabled = scenario.ivshmem_enabled
    if not scenario.is_legacy or enabled is None or enabled.text != "n":
        return
    if scenario.regions:
        count = len(scenario.regions)
        yield Finding(
            enabled.loc,
            f"IVSHMEM_ENABLED is 'n' but {count} IVSHMEM_REGION "
            f"{'string is' if count == 1 else 'strings are'} set; ACRN "
            f"ignores them",
            "set IVSHMEM_ENABLED to 'y', or remove the regions")
