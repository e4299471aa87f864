"""Crash safety: ``add-region`` killed with SIGKILL at every step of a save.

A ``xmlio.step_hook`` (the test-only hook of ``xmlio.save_atomic``),
set in the child, makes the save write the temporary file in 200
pieces and the process kill itself after step N of 209. Each run is a
real ``add-region`` command (``cli.main`` with ``sys.argv`` set) in a
process forked from one server that has already imported everything
and compiled the schemas (``cli_server.CliServer``), so that 209 runs
take seconds, not minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal

import pytest
from cli_server import CliServer

from acrn_ivshmem.io.xmlio import TEST_CHUNKS

TEMP_NAME = re.compile(r"\.scenario\.xml\.[0-9a-f]{8}\.tmp")
# The steps save_atomic counts (see its docstring): 1 start, 2 checked,
# 3 temp file created, 4..203 a piece written each, 204 owner and
# group, 205 mode, 206 fsync, 207 checked again, 208 renamed, 209
# folder synced.
CREATED, RENAMED, LAST = 3, 208, 209

# The child kills itself with SIGKILL after the step of the save given.
CRASH_AT = ("import os, signal; xmlio.step_hook = lambda step: step == {} "
            "and os.kill(os.getpid(), signal.SIGKILL)")


@pytest.fixture
def workspace(tmp_path, acrn_data):
    """``configs/scenario.xml`` (whl-ipc-i5 hybrid_rt, v3.3) and its board
    in their own folder, and a folder for the server's files."""
    configs = tmp_path / "configs"
    configs.mkdir()
    whl = acrn_data / "v3.3" / "whl-ipc-i5"
    shutil.copy(whl / "hybrid_rt.xml", configs / "scenario.xml")
    shutil.copy(whl / "whl-ipc-i5.xml", tmp_path / "board.xml")
    server_folder = tmp_path / "server"
    server_folder.mkdir()
    return configs / "scenario.xml", tmp_path / "board.xml", server_folder


def others(path) -> set[str]:
    """Names in ``path``'s folder other than the file itself."""
    return set(os.listdir(path.parent)) - {path.name}


def test_sigkill_at_each_of_209_steps_leaves_old_or_new(workspace):
    scenario, board, server_folder = workspace
    old = scenario.read_bytes()
    argv = ["add-region", str(scenario), "--board", str(board),
            "--vms", "PRE_RT_VM0,POST_STD_VM1", "--size", "4"]
    summary = (f"{scenario}: added region 'shm_region_1' (4 MB, hv) for "
               "PRE_RT_VM0 00:09.0, POST_STD_VM1 00:09.0\n")

    def run(crash_at: int | None):
        outcome = server.run(argv, server_folder, setup=None if
                             crash_at is None else CRASH_AT.format(crash_at))
        assert not outcome.hung
        return outcome[:4]

    # Warmed up with a dry run: each child only does the edit.
    server = CliServer(server_folder, [*argv, "--dry-run"])
    try:
        # Set but never reached: the whole save, written in pieces.
        assert run(LAST + 1) == (None, 0, summary, "")
        new = scenario.read_bytes()
        assert new != old and b"<NAME>shm_region_1</NAME>" in new
        assert others(scenario) == set()
        outcomes = []
        previous: set[str] = set()
        for step in range(1, LAST + 1):
            scenario.write_bytes(old)
            assert run(step) == (signal.SIGKILL, None, "", ""), step
            now = scenario.read_bytes()
            assert now in (old, new), f"step {step}: a mixed file"
            outcomes.append("new" if now == new else "old")
            left = others(scenario)
            # The last kill's temp file went when this run took the lock.
            assert not left & previous, step
            if CREATED <= step < RENAMED:
                (name,) = left
                assert TEMP_NAME.fullmatch(name), name
                pieces = min(step - CREATED, TEST_CHUNKS)
                written = len(new) * pieces // TEST_CHUNKS
                assert (scenario.parent / name).read_bytes() == \
                    new[:written], step
            else:
                assert left == set(), step
            previous = left
        assert outcomes == ["old"] * (RENAMED - 1) + ["new"] * (
            LAST - RENAMED + 1)
        # A normal run after the last kill: new bytes, nothing left over.
        scenario.write_bytes(old)
        assert run(None) == (None, 0, summary, "")
        assert scenario.read_bytes() == new
        assert others(scenario) == set()
    finally:
        server.close()
