"""ISM213 duplicate-ivshmem: a scenario has one IVSHMEM block.

What it does
    Reports every ``hv/FEATURES/IVSHMEM`` element after the first, be it
    a second ``<IVSHMEM>`` in ``FEATURES`` or one inside a second
    ``FEATURES`` or ``hv``. acrn-shm still checks the regions inside it
    (``regions`` lists them, ``remove-region`` and ``set-region`` find
    them), so that nothing in the file goes unchecked.

Why it matters
    ACRN's schema allows one ``IVSHMEM`` and refuses the file otherwise;
    ACRN v2.x's tools, where the schema check was optional, read only
    the regions of the first block. Regions in another block were meant
    to be shared and are not.

Example (fails)
    <FEATURES>
      <IVSHMEM>
        <IVSHMEM_REGION>...shm_region_0...</IVSHMEM_REGION>
      </IVSHMEM>
      <IVSHMEM>
        <IVSHMEM_REGION>...shm_region_1...</IVSHMEM_REGION>
      </IVSHMEM>
    </FEATURES>

Use instead (passes)
    <FEATURES>
      <IVSHMEM>
        <IVSHMEM_REGION>...shm_region_0...</IVSHMEM_REGION>
        <IVSHMEM_REGION>...shm_region_1...</IVSHMEM_REGION>
      </IVSHMEM>
    </FEATURES>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM213"
NAME = "duplicate-ivshmem"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each IVSHMEM block after the first."""
    blocks = scenario.ivshmem_blocks
    for loc in blocks[1:]:
        yield Finding(
            loc,
            f"another <IVSHMEM> block (the first is at line "
            f"{blocks[0].line}); "
            "ACRN's schema allows one and refuses the file",
            "move its IVSHMEM_REGION elements into the first IVSHMEM "
            "block and delete this one")
