"""``acrn-shm lint FOLDER`` on a tree of board folders.

A folder argument is walked (:func:`acrn_ivshmem.lint.engine.xml_folders`):
every folder at or below it that holds XML files is a board folder whose
scenarios are linted with its own board, in one process, with one
summary. Golden transcripts (argv, exit status, stdout, stderr) of runs
on ACRN's own trees (``../shared/acrn-data``) and on a generated tree
live in ``tests/test_cli_tree/golden``; refresh them with
``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import ACRN_DATA, run_acrn_shm

from acrn_ivshmem.errors import InputError
from acrn_ivshmem.lint.engine import XmlFolder, xml_folders

DATA = Path(__file__).parent / "test_cli_tree"
GOLDEN = DATA / "golden"
V27 = ACRN_DATA / "v2.7"
V33 = ACRN_DATA / "v3.3"

#: Runs in the folder that holds acrn-data, so paths read acrn-data/...
REAL = {
    "real-v3.3-text": ["lint", "acrn-data/v3.3"],
    "real-v3.3-json": ["lint", "-f", "json", "acrn-data/v3.3"],
    "real-v2.7-text": ["lint", "acrn-data/v2.7"],
    "real-v2.7-json": ["lint", "-f", "json", "acrn-data/v2.7"],
    "real-both-text": ["lint", "acrn-data"],
    # One board for the whole tree: every other board's legacy scenario
    # names its own board (ISM307).
    "real-v2.7-one-board": [
        "lint", "--board", "acrn-data/v2.7/cfl-k700-i7/cfl-k700-i7.xml",
        "acrn-data/v2.7"],
}
#: Runs in a folder holding the generated ``tree`` (see make_tree).
GENERATED = {
    "tree-text": ["lint", "tree"],
    "tree-json": ["lint", "-f", "json", "tree"],
    "tree-diff": ["lint", "--diff", "tree"],
    "tree-fix": ["lint", "--fix", "tree"],
    "tree-folder-below": ["lint", "tree/v2.7"],
    "tree-without-xml": ["lint", "tree/empty"],
}


def transcript(argv: list[str], result) -> str:
    """The golden text of one run."""
    return (f"$ acrn-shm {' '.join(argv)}\n"
            f"exit: {result.returncode}\n"
            f"--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}")


def check_golden(name: str, actual: str) -> None:
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


def make_tree(top: Path) -> Path:
    """A tree of board folders, from real ACRN files, with problems.

    ``whl-ipc-i5/``: a v3.3 board, a clean scenario and one with a size
    of 3 (ISM201) and an upper-case VBDF (ISM306, safe to fix);
    ``v2.7/cfl-k700-i7/``: a clean scenario and whl-ipc-i5's hybrid_rt,
    which names its own board (ISM307); ``v2.7/nested/deeper/qemu/``: a
    folder three levels down with two boards, one named after the folder
    (the one used); ``two-boards/``: two board XMLs, neither
    named after the folder; ``bad/``: malformed XML; ``empty/``: no
    XML; hidden ``.cache/`` and ``whl-ipc-i5/.scenario.xml``: garbage
    that must not be read; ``loop`` -> the tree itself and ``zz-link``
    -> ``whl-ipc-i5``: folders already visited.
    """
    tree = top / "tree"
    whl = tree / "whl-ipc-i5"
    cfl = tree / "v2.7" / "cfl-k700-i7"
    qemu = tree / "v2.7" / "nested" / "deeper" / "qemu"
    for folder in (whl, cfl, qemu, tree / "two-boards", tree / "bad",
                   tree / "empty", tree / ".cache"):
        folder.mkdir(parents=True)
    (tree / "README.txt").write_text("not XML\n")
    shutil.copy(V33 / "whl-ipc-i5" / "whl-ipc-i5.xml", whl)
    shutil.copy(V33 / "whl-ipc-i5" / "hybrid_rt.xml", whl)
    text = (V33 / "whl-ipc-i5" / "hybrid_rt.xml").read_text()
    broken = text.replace("<IVSHMEM_SIZE>2</IVSHMEM_SIZE>",
                          "<IVSHMEM_SIZE>3</IVSHMEM_SIZE>")
    broken = broken.replace("<VBDF>00:08.0</VBDF>", "<VBDF>00:0A.0</VBDF>",
                            1)
    assert broken.count("00:0A.0") == 1 and "<IVSHMEM_SIZE>3<" in broken
    (whl / "broken.xml").write_text(broken)
    (whl / ".scenario.xml").write_text("<not-even-xml")
    shutil.copy(V27 / "cfl-k700-i7" / "cfl-k700-i7.xml", cfl)
    shutil.copy(V27 / "cfl-k700-i7" / "shared.xml", cfl)
    shutil.copy(V27 / "whl-ipc-i5" / "hybrid_rt.xml", cfl)
    shutil.copy(V27 / "qemu" / "qemu.xml", qemu)
    shutil.copy(V27 / "qemu" / "shared.xml", qemu)
    shutil.copy(V27 / "cfl-k700-i7" / "cfl-k700-i7.xml", qemu / "spare.xml")
    shutil.copy(V33 / "qemu" / "qemu.xml", tree / "two-boards" / "a.xml")
    shutil.copy(V33 / "cfl-k700-i7" / "cfl-k700-i7.xml",
                tree / "two-boards" / "b.xml")
    shutil.copy(V33 / "qemu" / "shared.xml", tree / "two-boards")
    (tree / "bad" / "malformed.xml").write_text(
        "<acrn-config>\n  <hv>\n</acrn-config>\n")
    (tree / "empty" / "notes.txt").write_text("nothing\n")
    (tree / ".cache" / "stale.xml").write_text("<not-even-xml")
    (tree / "loop").symlink_to(".", target_is_directory=True)
    (tree / "zz-link").symlink_to("whl-ipc-i5", target_is_directory=True)
    return tree


@pytest.fixture
def tree_home(tmp_path, acrn_data) -> Path:
    make_tree(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_trees(name, acrn_data):
    argv = REAL[name]
    check_golden(name, transcript(argv, run_acrn_shm(argv,
                                                     acrn_data.parent)))


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_tree(name, tree_home):
    argv = GENERATED[name]
    check_golden(name, transcript(argv, run_acrn_shm(argv, tree_home)))


def test_fix_on_a_tree_changes_only_the_fixed_file(tree_home):
    before = {path: path.read_bytes()
              for path in (tree_home / "tree").rglob("*.xml")
              if "loop" not in path.parts and "zz-link" not in path.parts}
    done = run_acrn_shm(["lint", "--fix", "tree"], tree_home)
    assert done.returncode == 2  # the malformed file and the two boards
    changed = sorted(str(path.relative_to(tree_home))
                     for path, data in before.items()
                     if path.read_bytes() != data)
    assert changed == ["tree/whl-ipc-i5/broken.xml"]
    fixed = (tree_home / "tree" / "whl-ipc-i5" / "broken.xml").read_text()
    assert fixed == before[tree_home / "tree" / "whl-ipc-i5"
                           / "broken.xml"].decode().replace("00:0A.0",
                                                            "00:0a.0")


@pytest.mark.parametrize("output_format", ["sarif", "github"])
def test_every_format_reports_the_same_tree(output_format, tree_home):
    """SARIF and GitHub annotations carry the findings of the JSON run."""
    listed = json.loads(run_acrn_shm(["lint", "-f", "json", "tree"],
                                     tree_home).stdout)
    wanted = [(d["path"], d["line"], d["column"], d["code"])
              for d in listed]
    assert len(wanted) == 3
    done = run_acrn_shm(["lint", "-f", output_format, "tree"], tree_home)
    assert done.returncode == 2
    if output_format == "sarif":
        results = json.loads(done.stdout)["runs"][0]["results"]
        found = [(r["locations"][0]["physicalLocation"]["artifactLocation"]
                  ["uri"],
                  r["locations"][0]["physicalLocation"]["region"]
                  ["startLine"],
                  r["locations"][0]["physicalLocation"]["region"]
                  ["startColumn"], r["ruleId"]) for r in results]
    else:
        found = []
        for line in done.stdout.splitlines():
            fields = dict(part.split("=", 1) for part in
                          line.split(" ", 1)[1].split("::", 1)[0]
                          .split(","))
            found.append((fields["file"], int(fields["line"]),
                          int(fields["col"]),
                          fields["title"].split(" ")[0]))
    assert found == wanted
    assert done.stderr == run_acrn_shm(["lint", "tree"], tree_home).stderr


def test_walk_order_hidden_names_and_links(tree_home):
    tree = tree_home / "tree"
    found = [(os.path.relpath(folder.path, tree_home), folder.names)
             for folder in xml_folders(str(tree))]
    assert found == [
        ("tree/bad", ("malformed.xml",)),
        ("tree/two-boards", ("a.xml", "b.xml", "shared.xml")),
        ("tree/v2.7/cfl-k700-i7",
         ("cfl-k700-i7.xml", "hybrid_rt.xml", "shared.xml")),
        ("tree/v2.7/nested/deeper/qemu",
         ("qemu.xml", "shared.xml", "spare.xml")),
        ("tree/whl-ipc-i5",
         ("broken.xml", "hybrid_rt.xml", "whl-ipc-i5.xml")),
    ]


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path,
                                                    monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "s.xml").write_text("<acrn-config/>")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "s.xml").write_text("<acrn-config/>")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("a"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = list(xml_folders(str(tmp_path)))
    assert isinstance(found[0], InputError)
    assert str(found[0]) == (f"{tmp_path / 'a'}: cannot read this folder: "
                             "Permission denied")
    assert found[1:] == [XmlFolder(str(tmp_path / "b"), ("s.xml",))]


def test_no_stray_golden_files():
    assert sorted(path.stem for path in GOLDEN.iterdir()) == sorted(
        [*REAL, *GENERATED])
