"""Inputs that are not regular files, in every place a command reads one.

A FIFO, a socket, character and block devices, ``/dev/null``, a folder,
a symbolic link to each of them, a link loop and a dangling link are put
in every argument position of every command that reads a file (and as
the VERSION file of an ACRN tree, and named ``*.xml`` or
``pyproject.toml`` beside a scenario). Each command runs in its own
process (``cli_server``) with a time limit: none may hang, each refuses
at once with one line and exit status 2 (or, for a file it merely
passes by, does what it does without it), and nothing is left behind.
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

V33 = ACRN_DATA / "v3.3" / "whl-ipc-i5"
V27 = ACRN_DATA / "v2.7" / "whl-ipc-i5"

pytestmark = pytest.mark.skipif(not V33.is_dir(),
                                reason=f"{V33} is missing")

LOOP = "is a symbolic link loop (or too many links in a row)"

# kind: the message acrn-shm gives for it. Each is also reached
# through a symbolic link ("link-to-KIND"), with the same message.
KINDS = {
    "fifo": "is a FIFO, not a regular file",
    "socket": "is a socket, not a regular file",
    "char-device": "is a character device, not a regular file",
    "block-device": "is a block device, not a regular file",
    "dev-null": "is a character device, not a regular file",
    "folder": "is a folder, not a file",
}
LINKS = {
    "link-loop": LOOP,
    "dangling-link": "is a symbolic link to a missing file",
}
ALL_KINDS = {**KINDS, **{f"link-to-{kind}": message
                         for kind, message in KINDS.items()}, **LINKS}

# Where a command reads a file: (arguments with {X} for the special
# file, the name the message gives: {X} or the file in a tree).
POSITIONS = {
    "lint": (["lint", "{X}"], "{X}"),
    "lint --board": (["lint", "--board", "{X}", "scenario.xml"], "{X}"),
    "lint --config": (["lint", "--config", "{X}", "scenario.xml"], "{X}"),
    "lint --skip-other-xml": (["lint", "--skip-other-xml", "{X}"], "{X}"),
    "lint --fix": (["lint", "--fix", "{X}"], "{X}"),
    "add-region": (["add-region", "{X}", "--vms", "0,1"], "{X}"),
    "add-region --board": (["add-region", "scenario.xml", "--board", "{X}",
                            "--vms", "PRE_RT_VM0,POST_STD_VM1"], "{X}"),
    "remove-region": (["remove-region", "{X}", "shm_region_0"], "{X}"),
    "set-region": (["set-region", "{X}", "shm_region_0", "--size", "4"],
                   "{X}"),
    "upgrade": (["upgrade", "{X}"], "{X}"),
    "upgrade --launch": (["upgrade", "legacy.xml", "--launch", "{X}"],
                         "{X}"),
    "upgrade --board": (["upgrade", "legacy.xml", "--board", "{X}"], "{X}"),
    "upgrade --into": (["upgrade", "legacy.xml", "--into", "{X}"], "{X}"),
    "launch-script": (["launch-script", "{X}", "--board", "board.xml"],
                      "{X}"),
    "launch-script --board": (["launch-script", "scenario.xml", "--board",
                               "{X}"], "{X}"),
    "launch-script --launch": (["launch-script", "legacy.xml", "--launch",
                                "{X}", "--board", "board.xml"], "{X}"),
    "check-launch": (["check-launch", "{X}", "--scenario", "scenario.xml"],
                     "{X}"),
    "check-launch --scenario": (["check-launch", "script.sh", "--scenario",
                                 "{X}"], "{X}"),
    "check-launch --launch": (["check-launch", "script.sh", "--scenario",
                               "legacy.xml", "--launch", "{X}"], "{X}"),
    "graph": (["graph", "{X}", "-f", "dot"], "{X}"),
    "regions": (["regions", "{X}"], "{X}"),
    "qemu-args": (["qemu-args", "--scenario", "{X}", "--vm",
                   "POST_STD_VM1"], "{X}"),
    "libvirt-xml": (["libvirt-xml", "--scenario", "{X}", "--vm",
                     "POST_STD_VM1"], "{X}"),
    "host-prep": (["host-prep", "--scenario", "{X}", "--vm", "POST_STD_VM1",
                   "--check"], "{X}"),
    "build --board": (["build", "--acrn-src", "acrn", "--board", "{X}",
                       "--scenario", "scenario.xml"], "{X}"),
    "build --scenario": (["build", "--acrn-src", "acrn", "--board",
                          "board.xml", "--scenario", "{X}"], "{X}"),
    "build VERSION": (["build", "--acrn-src", "{X}", "--board", "board.xml",
                       "--scenario", "scenario.xml"], "{X}/VERSION"),
}
# Where a folder is a valid input (lint lints what it holds).
FOLDER_IS_INPUT = {"lint", "lint --skip-other-xml", "lint --fix"}


def make_kind(kind: str, path: Path, keep: list) -> Path:
    """Make a file of ``kind`` at ``path`` (or return the system file
    it names); sockets go to ``keep`` so that they stay bound."""
    if kind.startswith("link-to-"):
        target = make_kind(kind[len("link-to-"):],
                           path.with_name(path.name + ".target"), keep)
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        keep.append(server)
    elif kind in ("char-device", "block-device"):
        kind_bits, device = ((stat.S_IFCHR, os.makedev(1, 3))
                             if kind == "char-device"
                             else (stat.S_IFBLK, os.makedev(7, 0)))
        try:
            os.mknod(path, 0o600 | kind_bits, device)
        except PermissionError:
            pytest.skip("cannot make device nodes here (needs CAP_MKNOD)")
    elif kind == "dev-null":
        return Path(os.devnull)
    elif kind == "folder":
        path.mkdir()
    elif kind == "link-loop":
        path.symlink_to(path.with_name(path.name + ".other"))
        path.with_name(path.name + ".other").symlink_to(path)
    elif kind == "dangling-link":
        path.symlink_to(path.with_name("missing.xml"))
    else:  # pragma: no cover - a typo in KINDS
        raise AssertionError(kind)
    return path


def listing(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every name below ``folder`` with its mode, inode and size."""
    found = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(root, name)
            info = path.lstat()
            found[str(path.relative_to(folder))] = (
                info.st_mode, info.st_ino,
                info.st_size if stat.S_ISREG(info.st_mode) else 0)
    return found


def dev_leftovers() -> set[str]:
    """acrn-shm's temporary or lock files in /dev (there must be none)."""
    return {name for name in os.listdir("/dev")
            if name.startswith((".null.", ".zero."))}


@pytest.fixture
def work(tmp_path):
    """A folder with a v3.3 scenario, its board, a legacy scenario and
    launch XML, a launch script and a fake ACRN tree."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(V33 / "hybrid_rt.xml", folder / "scenario.xml")
    shutil.copy(V33 / "whl-ipc-i5.xml", folder / "board.xml")
    shutil.copy(V27 / "hybrid_rt.xml", folder / "legacy.xml")
    shutil.copy(V27 / "hybrid_rt_launch_1user_vm_waag.xml",
                folder / "launch.xml")
    (folder / "script.sh").write_text("#!/bin/bash\n")
    (folder / "acrn").mkdir()
    (folder / "acrn" / "VERSION").write_text(
        "MAJOR_VERSION=3\nMINOR_VERSION=3\n")
    (folder / "acrn" / "Makefile").write_text("")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One warmed-up CLI server for the module."""
    folder = tmp_path_factory.mktemp("server")
    with CliServer(folder, ["lint", str(V33)]) as running:
        yield running


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_reader_refuses_at_once(server, work, tmp_path, kind):
    keep: list = []
    special = tmp_path / "special"
    special.mkdir()
    try:
        for position, (template, shown) in POSITIONS.items():
            if kind.endswith("folder") and position in FOLDER_IS_INPUT:
                continue
            if position == "build VERSION":
                tree = special / f"acrn-{len(keep)}-{position[-1]}"
                tree.mkdir()
                (tree / "Makefile").write_text("")
                path = tree
                made = make_kind(kind, tree / "VERSION", keep)
                if made != tree / "VERSION":  # /dev/null
                    (tree / "VERSION").symlink_to(made)
            else:
                path = make_kind(
                    kind, special / f"x-{len(os.listdir(special))}.xml",
                    keep)
            argv = [arg.replace("{X}", str(path)) for arg in template]
            before = listing(work), listing(special), dev_leftovers()
            outcome = server.run(argv, work)
            assert not outcome.hung, (position, argv)
            name = shown.replace("{X}", str(path))
            assert outcome[1:4] == (
                2, "", f"acrn-shm: error: {name}: {ALL_KINDS[kind]}\n"), (
                position, outcome)
            assert (listing(work), listing(special), dev_leftovers()) == \
                before, position
    finally:
        for held in keep:
            held.close()


# Commands that look around the scenario's folder (for its board, a
# pyproject.toml) but are not given the special file.
BESIDE = {
    "lint": ["lint", "scenario.xml"],
    "add-region": ["add-region", "scenario.xml", "--vms",
                   "PRE_RT_VM0,POST_STD_VM1"],
    "set-region": ["set-region", "scenario.xml", "shm_region_0", "--size",
                   "4"],
    "remove-region": ["remove-region", "scenario.xml", "shm_region_0"],
    "upgrade": ["upgrade", "legacy.xml"],
    "regions": ["regions", "scenario.xml"],
    "qemu-args": ["qemu-args", "--scenario", "scenario.xml", "--vm",
                  "POST_STD_VM1"],
}


def run_each(server, folder: Path, pristine: Path) -> dict:
    """Each BESIDE command in ``folder``, its scenario restored from
    ``pristine`` first: the outcome and the scenario's bytes after."""
    found = {}
    for command, argv in BESIDE.items():
        shutil.copy(pristine / "scenario.xml", folder / "scenario.xml")
        outcome = server.run(argv, folder)
        assert not outcome.hung, command
        found[command] = outcome, (folder / "scenario.xml").read_bytes()
    return found


@pytest.mark.parametrize("name", ["aaa.xml", "pyproject.toml"])
def test_a_special_file_beside_the_scenario_changes_nothing(
        server, work, tmp_path, name):
    # The same commands in the folder without it give the same results.
    # "aaa.xml" sorts before the board, so a board search that opened
    # every XML would open it first.
    pristine = tmp_path / "pristine"
    shutil.copytree(work, pristine)
    expected = run_each(server, work, pristine)
    assert expected["add-region"][0].code == 0  # the board was found
    for kind in ALL_KINDS:
        if kind == "dev-null":
            continue
        folder = tmp_path / kind
        shutil.copytree(pristine, folder)
        keep: list = []
        try:
            make_kind(kind, folder / name, keep)
            names = set(os.listdir(folder))
            assert run_each(server, folder, pristine) == expected, kind
            assert set(os.listdir(folder)) == names, kind
        finally:
            for held in keep:
                held.close()
