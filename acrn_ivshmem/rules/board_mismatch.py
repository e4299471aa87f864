"""ISM307 board-mismatch: the scenario is for the board it is used with.

What it does
    Warns when the scenario's root names a board (``<acrn-config
    board="whl-ipc-i5">``, written by ACRN v2.x and sometimes kept in v3
    files) and the board XML it is linted with names another one in its
    own root (``<acrn-config board="nuc11tnbi5">``). The names are
    compared exactly, as ACRN does. Needs the board XML; a scenario or
    board without the attribute is not judged.

Why it matters
    VBDFs and regions are checked against the board's devices: with the
    wrong board XML, ISM304 passes or fails for another machine. ACRN
    v2.x's configuration tools compare the two names too and stop when
    they differ, but only at build time.

Example (warns, linted with a board XML whose root says board="nuc11tnbi5")
    <acrn-config board="whl-ipc-i5" scenario="hybrid_rt">

Use instead (passes)
    acrn-shm lint --board whl-ipc-i5.xml hybrid_rt.xml
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM307"
NAME = "board-mismatch"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = True


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Warn when the scenario's board attribute names another board."""
    if board is None or not scenario.board_name or not board.name:
        return
    if scenario.board_name == board.name:
        return
    yield Finding(
        scenario.root_loc,
        f"the scenario is for board '{scenario.board_name}' (its board "
        f"attribute), but the board XML '{os.path.basename(board.path)}' "
        f"is board '{board.name}'",
        f"lint with the board XML of '{scenario.board_name}' (--board), "
        "or correct the board attribute")

