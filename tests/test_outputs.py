"""Output files (``upgrade -o``, ``launch-script -o``, ``graph -o``).

Every command that writes an output goes through ``xmlio.save_output``:
a new file gets the command's mode (0755 for a launch script, 0666 less
the umask otherwise), an existing one keeps its owner, group and mode,
and nothing is ever written through a symbolic link (or into a FIFO or
other special file) at the output's name: refused, one line, exit 2.
Each case runs the real command in its own process.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest
from cli_server import CliServer
from conftest import ACRN_DATA

from acrn_ivshmem.errors import InputError
from acrn_ivshmem.io import xmlio
from acrn_ivshmem.io.xmlio import save_output

V33 = ACRN_DATA / "v3.3" / "whl-ipc-i5"
V27 = ACRN_DATA / "v2.7" / "whl-ipc-i5"

pytestmark = pytest.mark.skipif(not V33.is_dir(),
                                reason=f"{V33} is missing")

# command: (arguments, the output they write, its mode when new under
# umask 022 and under umask 077: a launch script is always 0755)
OUTPUTS = {
    "upgrade": (["upgrade", "legacy.xml", "-o", "out/new.xml"],
                "out/new.xml", (0o644, 0o600)),
    "launch-script": (["launch-script", "scenario.xml", "--board",
                       "board.xml", "--vm", "POST_STD_VM1", "-o", "out"],
                      "out/launch_user_vm_id1.sh", (0o755, 0o755)),
    "graph": (["graph", "scenario.xml", "-o", "out/topology.dot"],
              "out/topology.dot", (0o644, 0o600)),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One warmed-up CLI server for the module."""
    folder = tmp_path_factory.mktemp("server")
    with CliServer(folder, ["lint", str(V33)]) as running:
        yield running


@pytest.fixture
def work(tmp_path):
    """A v3.3 scenario with its board, a legacy one, an ``out`` folder."""
    shutil.copy(V33 / "hybrid_rt.xml", tmp_path / "scenario.xml")
    shutil.copy(V33 / "whl-ipc-i5.xml", tmp_path / "board.xml")
    shutil.copy(V27 / "hybrid_rt.xml", tmp_path / "legacy.xml")
    (tmp_path / "out").mkdir()
    return tmp_path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o700, 0o444], ids=oct)
@pytest.mark.parametrize("umask", [0o022, 0o077], ids=oct)
@pytest.mark.parametrize("command", OUTPUTS)
def test_new_output_gets_the_commands_mode_and_keeps_the_users(
        server, work, command, umask, mode):
    argv, output, modes = OUTPUTS[command]
    target = work / output
    outcome = server.run(argv, work, setup=f"os.umask({umask})")
    assert (outcome.hung, outcome.code) == (False, 0), outcome
    assert mode_of(target) == modes[umask == 0o077]
    # The user changes it: the next run keeps that.
    target.write_bytes(b"old\n")
    target.chmod(mode)
    inode = target.stat().st_ino
    outcome = server.run(argv, work, setup=f"os.umask({umask})")
    assert (outcome.hung, outcome.code) == (False, 0), outcome
    assert target.read_bytes() != b"old\n"
    assert target.stat().st_ino != inode
    assert mode_of(target) == mode
    assert os.listdir(work / "out") == [Path(output).name]


@pytest.mark.parametrize("victim_mode", [0o600, 0o644])
@pytest.mark.parametrize("command", OUTPUTS)
def test_symlink_at_the_output_is_refused(server, work, tmp_path, command,
                                          victim_mode):
    argv, output, _modes = OUTPUTS[command]
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    victim.chmod(victim_mode)
    (work / output).symlink_to(victim)
    outcome = server.run(argv, work)
    assert not outcome.hung
    assert (outcome.code, outcome.stderr.splitlines()[-1]) == (
        2, f"acrn-shm: error: {output}: is a symbolic link, not a regular "
        "file; nothing written")
    assert victim.read_bytes() == b"precious\n"
    assert mode_of(victim) == victim_mode
    assert (work / output).is_symlink()
    assert os.listdir(work / "out") == [Path(output).name]


@pytest.mark.parametrize("kind", ["fifo", "socket", "folder"])
@pytest.mark.parametrize("command", OUTPUTS)
def test_special_file_at_the_output_is_refused(server, work, command, kind):
    argv, output, _modes = OUTPUTS[command]
    target = work / output
    kept = []
    if kind == "fifo":
        os.mkfifo(target)
        message = "is a FIFO, not a regular file"
    elif kind == "socket":
        kept.append(socket.socket(socket.AF_UNIX))
        kept[0].bind(str(target))
        message = "is a socket, not a regular file"
    else:
        target.mkdir()
        message = "is a folder, not a file"
    try:
        outcome = server.run(argv, work)
    finally:
        for held in kept:
            held.close()
    assert not outcome.hung
    assert (outcome.code, outcome.stderr.splitlines()[-1]) == (
        2, f"acrn-shm: error: {output}: {message}; nothing written")
    assert os.listdir(work / "out") == [Path(output).name]


def test_save_output_replaces_no_link_raced_in(tmp_path, monkeypatch):
    # A link planted between the check and the rename is itself
    # replaced (rename does not follow it); its target is untouched.
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    output = tmp_path / "out.txt"
    output.write_bytes(b"old\n")

    def plant(step):
        if step == 206:
            output.unlink()
            output.symlink_to(victim)

    monkeypatch.setattr(xmlio, "step_hook", plant)
    with pytest.raises(InputError) as caught:
        save_output(str(output), b"new\n")
    assert str(caught.value) == (f"{output}: is a symbolic link, not a "
                                 "regular file; nothing written")
    assert victim.read_bytes() == b"precious\n"
    assert output.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["out.txt", "victim"]
