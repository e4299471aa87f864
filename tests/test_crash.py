"""Crash safety: ``add-region`` killed with SIGKILL at every step of a save.

``ACRN_SHM_TEST_CRASH_AT=N`` (a test-only hook of ``xmlio.save_atomic``)
writes the temporary file in 200 pieces and makes the process kill
itself after step N of 209. Each run is a real ``add-region`` command
(``cli.main`` with ``sys.argv`` set) in a process forked from one server
that has already imported everything and compiled the schemas, so that
209 runs take seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.xmlio import TEST_CRASH_CHUNKS, save_atomic

LOCK_NAME = ".scenario.xml.acrn-shm.lock"
TEMP_NAME = re.compile(r"\.scenario\.xml\.[0-9a-f]{8}\.tmp")
# The steps save_atomic counts (see its docstring): 1 start, 2 checked,
# 3 temp file created, 4..203 a piece written each, 204 owner, 205
# mode, 206 fsync, 207 checked again, 208 renamed, 209 folder synced.
CREATED, RENAMED, LAST = 3, 208, 209

# Reads requests "N\n" on stdin (N=0: hook unset), forks a child that
# runs acrn-shm with argv[1] (JSON) and ACRN_SHM_TEST_CRASH_AT=N, its
# stdout and stderr going to argv[2] and argv[3], and answers with the
# child's exit code or signal as one JSON line.
SERVER = r"""
import contextlib, io, json, os, sys
from acrn_ivshmem import cli

argv, out_path, err_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
replies = os.fdopen(os.dup(1), "w")
# Warm up in this process (imports, compiled schemas, the result
# cache) with a dry run, so that each child only does the edit.
with contextlib.redirect_stdout(io.StringIO()), \
        contextlib.redirect_stderr(io.StringIO()):
    sys.argv = [*argv, "--dry-run"]
    try:
        cli.main()
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
replies.write("ready\n")
replies.flush()
for line in sys.stdin:
    crash_at = int(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            for fd, path in ((1, out_path), (2, err_path)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT
                                | os.O_TRUNC), fd)
            os.environ.pop("ACRN_SHM_TEST_CRASH_AT", None)
            if crash_at:
                os.environ["ACRN_SHM_TEST_CRASH_AT"] = str(crash_at)
            sys.argv = argv
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _pid, status, _usage = os.wait4(pid, 0)
    replies.write(json.dumps({
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    }) + "\n")
    replies.flush()
"""


class Server:
    """A running SERVER: ``run(n)`` forks one add-region, returns
    ``(signal, code, stdout, stderr)``."""

    def __init__(self, argv: list[str], folder):
        self.out = folder / "out.txt"
        self.err = folder / "err.txt"
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, json.dumps(argv), str(self.out),
             str(self.err)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=folder)
        assert self.process.stdout.readline() == "ready\n"

    def run(self, crash_at: int):
        self.process.stdin.write(f"{crash_at}\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return (reply["signal"], reply["code"], self.out.read_text(),
                self.err.read_text())

    def close(self):
        self.process.stdin.close()
        self.process.stdout.close()
        assert self.process.wait(timeout=30) == 0


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
    argv = ["acrn-shm", "add-region", str(scenario), "--board", str(board),
            "--vms", "PRE_RT_VM0,POST_STD_VM1", "--size", "4"]
    summary = (f"{scenario}: added region 'shm_region_1' (4 MB, hv) for "
               "PRE_RT_VM0 00:09.0, POST_STD_VM1 00:09.0\n")
    server = Server(argv, server_folder)
    try:
        # Set but never reached: the whole save, written in pieces.
        assert server.run(LAST + 1) == (None, 0, summary, "")
        new = scenario.read_bytes()
        assert new != old and b"<NAME>shm_region_1</NAME>" in new
        assert others(scenario) == {LOCK_NAME}
        outcomes = []
        previous: set[str] = set()
        for step in range(1, LAST + 1):
            scenario.write_bytes(old)
            assert server.run(step) == (signal.SIGKILL, None, "", ""), step
            now = scenario.read_bytes()
            assert now in (old, new), f"step {step}: a mixed file"
            outcomes.append("new" if now == new else "old")
            left = others(scenario) - {LOCK_NAME}
            # The last kill's temp file went when this run took the lock.
            assert not left & previous, step
            if CREATED <= step < RENAMED:
                (name,) = left
                assert TEMP_NAME.fullmatch(name), name
                pieces = min(step - CREATED, TEST_CRASH_CHUNKS)
                written = len(new) * pieces // TEST_CRASH_CHUNKS
                assert (scenario.parent / name).read_bytes() == \
                    new[:written], step
            else:
                assert left == set(), step
            previous = left
        assert outcomes == ["old"] * (RENAMED - 1) + ["new"] * (
            LAST - RENAMED + 1)
        # A normal run after the last kill: new bytes, nothing left over.
        scenario.write_bytes(old)
        assert server.run(0) == (None, 0, summary, "")
        assert scenario.read_bytes() == new
        assert others(scenario) == {LOCK_NAME}
    finally:
        server.close()


@pytest.mark.parametrize("value", ["soon", "0", "-1", "1.5", "\u0663"])
def test_bad_crash_step_is_refused(tmp_path, monkeypatch, value):
    path = tmp_path / "scenario.xml"
    path.write_bytes(b"<acrn-config/>\n")
    monkeypatch.setenv("ACRN_SHM_TEST_CRASH_AT", value)
    with pytest.raises(UsageError) as caught:
        save_atomic(str(path), b"<acrn-config><hv/></acrn-config>\n",
                    b"<acrn-config/>\n")
    assert str(caught.value) == (
        f"ACRN_SHM_TEST_CRASH_AT: not a step number (1, 2, ...): {value!r}")
    assert path.read_bytes() == b"<acrn-config/>\n"
    assert os.listdir(tmp_path) == ["scenario.xml"]
