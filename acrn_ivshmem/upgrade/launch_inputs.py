"""The inputs of launch-script and check-launch: a v3 scenario.

:func:`load_for_launch` reads a scenario and its board; a legacy
(v2.x) scenario is converted to v3 in memory with its launch XMLs, as
``acrn-shm upgrade`` would, so that the emitters below it only ever see
v3. It lives here, above both the loader and the upgrade, so that
:mod:`acrn_ivshmem.emit.launch` never calls the upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from ..io.xmlio import parse_bytes
from ..lint.engine import Linter
from ..model.loader import scenario_from
from ..model.resolved import load_board, load_scenario
from ..model.syntax import LaunchInputs
from .scenario import upgrade

__all__ = ["load_for_launch"]


def load_for_launch(scenario_path: str, board_path: str | None,
                    launch_paths: Sequence[str] = (),
                    linter: Linter | None = None) -> LaunchInputs:
    """Read the scenario (and board); convert a legacy one to v3.

    Files are loaded through ``linter`` (a new one by default), so that
    linting them afterwards with the same linter reads each file once;
    its configuration is the one the conversion is checked with.
    """
    linter = linter or Linter()
    loaded = load_scenario(scenario_path, via=linter.load)
    model = loaded.model
    board = None
    board_document = None
    if board_path is not None:
        loaded_board = load_board(board_path, via=linter.load)
        board, board_document = loaded_board.model, loaded_board.document
    if not model.is_legacy:
        if launch_paths:
            raise UsageError(f"{scenario_path}: is a v3 scenario; --launch "
                             "is for legacy (v2.x) ones")
        return LaunchInputs(model, board, False, (loaded.document,))
    launches = [linter.load(path).document for path in launch_paths]
    result = upgrade(loaded.document, launches, board=board_document,
                     config=linter.config)
    converted = parse_bytes(result.data, scenario_path)
    return LaunchInputs(scenario_from(converted, "v3"), board, True,
                        (*launches, loaded.document))
