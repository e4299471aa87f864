"""ISM002 board-missing: no board XML, so board rules were skipped.

What it does
    Reports, as information, that a scenario was linted without a board
    XML (none given with ``--board`` and none found beside the scenario),
    and which rules were skipped because of it.

Why it matters
    Some checks, such as a Service VM VBDF that collides with a native
    PCI device, need the board's device list. A clean run without a
    board does not mean those checks passed.

Example (reported)
    acrn-shm lint scenario.xml        # no board XML in the same folder

Use instead (passes)
    acrn-shm lint --board whl-ipc-i5.xml scenario.xml
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM002"
NAME = "board-missing"
SEVERITY = "info"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield one finding when ``board`` is None."""
    if board is not None:
        return
    from . import RULES

    skipped = ", ".join(
        code for code, rule in RULES.items()
        if rule.NEEDS_BOARD and rule.TARGET == "scenario")
    yield Finding(
        scenario.root_loc,
        f"no board XML given or found beside the scenario; "
        f"skipped {skipped}",
        "pass --board BOARD.xml or put the board XML in the same folder")
