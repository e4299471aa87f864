"""The build folder: what board and scenario it remembers, whether make
would refuse or misuse it (ACRN issue #7345, :class:`StaleBuildDir`),
and removing it for ``--clean``."""

from __future__ import annotations

import os
import shutil

from ..errors import AcrnShmError, InputError, UsageError, quoted
from ..model.resolved import load_scenario
from .plan import BuildPlan, assignments, expected_regions, read_text

class StaleBuildDir(AcrnShmError):
    """make would refuse or misuse the build folder: it is configured for
    another board or scenario, or holds configuration make would not
    regenerate."""


def configured_for(plan: BuildPlan) -> tuple[str, str] | None:
    """The (board, scenario) the build folder remembers, or None."""
    record = os.path.join(plan.hv_dir, plan.interface.record)
    try:
        values = assignments(read_text(record))
    except InputError:
        return None
    board = values.get("CONFIG_BOARD", "")
    scenario = values.get("CONFIG_SCENARIO", "")
    if not (board or scenario):
        return None
    return board, scenario


def check_build_dir(plan: BuildPlan) -> None:
    """Raise :class:`StaleBuildDir` when make would refuse or misuse the
    existing build folder."""
    configured = configured_for(plan)
    record = os.path.join(plan.hv_dir, plan.interface.record)
    wanted = (plan.board_name, plan.scenario_name)
    if configured is not None and configured != wanted:
        # ACRN 2.2-2.3 do not compare; they rebuild the old configuration.
        outcome = ("stops on such a folder ('Configuration conflict "
                   "identified')" if plan.interface.regenerates else
                   "would build the old configuration again")
        raise StaleBuildDir(
            f"{plan.hv_dir} is configured for board {quoted(configured[0])} "
            f"and scenario {quoted(configured[1])} ({record}), not board "
            f"{quoted(wanted[0])} and scenario {quoted(wanted[1])}; ACRN "
            f"{plan.version} {outcome}: rerun with --clean to remove it, "
            "or choose another --out")
    if plan.interface.regenerates:
        _check_scenario_copy(plan)
        return
    result = os.path.join(plan.hv_dir, ".cfg_src_result")
    if not os.path.exists(result):
        return
    configured_at = os.path.getmtime(result)
    for path in (plan.scenario, plan.board):
        if os.path.getmtime(path) > configured_at:
            raise StaleBuildDir(
                f"{plan.hv_dir} holds configuration sources generated "
                f"before {path} last changed, and ACRN {plan.version} "
                "does not regenerate them in a used build folder "
                f"({result}): rerun with --clean")


def _check_scenario_copy(plan: BuildPlan) -> None:
    # make copies the scenario to .scenario.xml only when the scenario is
    # newer, so an older file of the same name would be silently ignored.
    copy = os.path.join(plan.hv_dir, ".scenario.xml")
    if not os.path.exists(copy) or (os.path.getmtime(plan.scenario)
                                    > os.path.getmtime(copy)):
        return
    try:
        copied = load_scenario(copy).model
    except AcrnShmError:  # unreadable, or not a scenario
        return
    if expected_regions(copied) != plan.expected_regions:
        raise StaleBuildDir(
            f"{copy}, ACRN's copy of the scenario, has other IVSHMEM "
            f"regions than {plan.scenario}, and make will not copy the "
            "scenario again because it is not newer: rerun with --clean")


# Files that show a folder is (part of) an ACRN hypervisor build.
_BUILD_MARKERS = ("configs", ".config", ".board.xml", ".scenario.xml",
                  "acrn.out", "acrn.bin", ".cfg_src_result", "include")


def clean_build_dir(plan: BuildPlan) -> bool:
    """Remove ``<out>/hypervisor``; False when there was none.

    Refuses (:class:`UsageError`) a non-empty folder that does not look
    like an ACRN build.
    """
    if not os.path.isdir(plan.hv_dir):
        return False
    entries = os.listdir(plan.hv_dir)
    if entries and not set(entries) & set(_BUILD_MARKERS):
        raise UsageError(f"refusing to remove {plan.hv_dir}: it does not "
                         "look like an ACRN build folder")
    shutil.rmtree(plan.hv_dir)
    return True
