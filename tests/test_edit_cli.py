"""The editing commands end to end: real processes, real files.

Golden transcripts (argv, exit status, stdout, stderr, and the file
afterwards) live in ``tests/test_edit_cli/golden``; refresh them with
``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_acrn_shm

from acrn_ivshmem.edit.regions import region_rows
from acrn_ivshmem.model.loader import load

DATA = Path(__file__).parent / "test_edit_cli"
GOLDEN = DATA / "golden"

CASES = {
    "add-v3": ["add-region", "v3.xml", "--vms",
               "ACRN_Service_VM,POST_STD_VM1", "--size", "4",
               "--region-id", "7"],
    "add-v3-by-id-with-vbdf": ["add-region", "v3.xml", "--name", "ring",
                               "--vms", "1,2", "--vbdf",
                               "POST_STD_VM1=00:0c.0"],
    "add-legacy": ["add-region", "legacy.xml", "--vms", "2,3",
                   "--provider", "dm", "--size", "8"],
    "add-gate": ["add-region", "v3.xml", "--vms", "0,2", "--size", "3"],
    "add-gate-forced": ["add-region", "v3.xml", "--vms", "0,2", "--size",
                        "3", "--force"],
    "add-dry-run-diff": ["add-region", "posts_v3.xml", "--vms",
                         "POST_STD_VM1,POST_STD_VM2", "--provider", "dm",
                         "--dry-run", "--diff"],
    "add-unknown-vm": ["add-region", "v3.xml", "--vms", "PRE_RT_VM0,NOPE"],
    "add-bad-vbdf-arg": ["add-region", "v3.xml", "--vms", "0,2", "--vbdf",
                         "PRE_RT_VM0"],
    "remove-v3": ["remove-region", "v3.xml", "shm_region_0"],
    "remove-legacy": ["remove-region", "legacy.xml", "shm_region_0"],
    "remove-missing": ["remove-region", "v3.xml", "nope"],
    "set-v3": ["set-region", "v3.xml", "shm_region_0", "--size", "16",
               "--vms", "PRE_RT_VM0,ACRN_Service_VM"],
    "set-legacy": ["set-region", "legacy.xml", "shm_region_0", "--size",
                   "4"],
    "regions-json": ["regions", "v3.xml", "-f", "json"],
    "regions-legacy-json": ["regions", "legacy.xml", "-f", "json"],
    "regions-text": ["regions", "v3.xml"],
    # Names from the file are shown as written, never read as rich markup.
    "regions-markup-names": ["regions", "markup.xml"],
    # --diff previews: the diff, nothing written, the edit's status.
    "add-diff": ["add-region", "v3.xml", "--vms", "0,2", "--diff"],
    "set-diff": ["set-region", "v3.xml", "shm_region_0", "--size", "8",
                 "--diff"],
    "remove-diff": ["remove-region", "legacy.xml", "shm_region_0",
                    "--diff"],
    "set-diff-refused": ["set-region", "v3.xml", "shm_region_0", "--size",
                         "3", "--diff"],
    "set-diff-forced": ["set-region", "v3.xml", "shm_region_0", "--size",
                        "3", "--diff", "--force"],
    # Sizes with units; one that is no size at all.
    "add-size-unit": ["add-region", "legacy.xml", "--vms", "2,3", "--size",
                      "8M"],
    "set-size-unit": ["set-region", "v3.xml", "shm_region_0", "--size",
                      "0.5G"],
    "set-size-gib": ["set-region", "v3.xml", "shm_region_0", "--size",
                     "1GiB"],
    # Region ids: the lowest free one; one another region has.
    "add-id-free": ["add-region", "ids_v3.xml", "--vms",
                    "ACRN_Service_VM,POST_STD_VM1"],
    "add-id-taken": ["add-region", "ids_v3.xml", "--vms",
                     "ACRN_Service_VM,POST_STD_VM1", "--region-id", "2"],
    "regions-ids-json": ["regions", "ids_v3.xml", "-f", "json"],
    "lint-diff": ["lint", "--diff", "fixable.xml"],
    "lint-fix": ["lint", "--fix", "fixable.xml"],
    # Fix safety: ISM306 and ISM216 (a region id) are safe, ISM201 (a
    # size raised) unsafe.
    "lint-fixes-counted": ["lint", "mixed_fixes.xml"],
    "lint-fix-safe-only": ["lint", "--fix", "mixed_fixes.xml"],
    "lint-fix-unsafe": ["lint", "--fix", "--unsafe-fixes",
                        "mixed_fixes.xml"],
    "lint-diff-safe-only": ["lint", "--diff", "mixed_fixes.xml"],
    "lint-diff-unsafe": ["lint", "--diff", "--unsafe-fixes",
                         "mixed_fixes.xml"],
    "lint-json-fix-class": ["lint", "-f", "json", "mixed_fixes.xml"],
    "lint-fix-legacy-spacing": ["lint", "--fix", "spacing_legacy.xml"],
}


run = run_acrn_shm


@pytest.fixture
def workdir(tmp_path) -> Path:
    target = tmp_path / "work"
    shutil.copytree(DATA, target, ignore=shutil.ignore_patterns("golden"))
    return target


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, workdir):
    argv = CASES[name]
    target = next(arg for arg in argv if arg.endswith(".xml"))
    edited = workdir / target
    before = edited.read_bytes()
    result = run(argv, workdir)
    after = edited.read_bytes()
    actual = (f"$ acrn-shm {' '.join(argv)}\n"
              f"exit: {result.returncode}\n"
              f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
              f"--- {target} "
              + ("unchanged\n" if after == before else
                 f"after\n{after.decode('utf-8')}"))
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, status, changed", [
    ("add-v3", 0, True), ("add-legacy", 0, True), ("add-gate", 1, False),
    ("add-gate-forced", 0, True), ("add-dry-run-diff", 0, False),
    ("add-unknown-vm", 2, False), ("remove-missing", 2, False),
    ("lint-diff", 1, False), ("lint-fix", 0, True),
    ("add-diff", 0, False), ("set-diff", 0, False), ("remove-diff", 0, False),
    ("set-diff-refused", 1, False), ("set-diff-forced", 0, False),
    ("add-size-unit", 0, True), ("set-size-unit", 2, False),
    ("set-size-gib", 1, False), ("add-id-free", 0, True),
    ("add-id-taken", 1, False), ("lint-fixes-counted", 1, False),
    ("lint-fix-safe-only", 1, True), ("lint-fix-unsafe", 0, True),
    ("lint-diff-safe-only", 1, False), ("lint-diff-unsafe", 1, False),
    ("lint-json-fix-class", 1, False), ("lint-fix-legacy-spacing", 0, True),
])
def test_status_and_whether_the_file_changed(name, status, changed):
    text = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert text.splitlines()[1] == f"exit: {status}"
    assert text.rstrip().endswith("unchanged") is not changed


def test_add_then_remove_gives_back_the_bytes(workdir):
    for scenario in ("v3.xml", "legacy.xml", "posts_v3.xml"):
        before = (workdir / scenario).read_bytes()
        vms = "1,2" if scenario == "posts_v3.xml" else "0,2"
        assert run(["add-region", scenario, "--name", "tmp_r", "--vms", vms,
                    "--provider", "dm" if scenario == "posts_v3.xml"
                    else "hv"], workdir).returncode == 0
        assert (workdir / scenario).read_bytes() != before
        assert run(["remove-region", scenario, "tmp_r"],
                   workdir).returncode == 0
        assert (workdir / scenario).read_bytes() == before


def test_twenty_concurrent_add_region_processes(workdir):
    procs = [subprocess.Popen(
        [sys.executable, "-m", "acrn_ivshmem", "add-region", "posts_v3.xml",
         "--vms", "POST_STD_VM1,POST_STD_VM2", "--provider", "dm"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(20)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        outcomes.append((proc.returncode, out, err))
    ok = [o for o in outcomes if o[0] == 0]
    pids = {proc.pid for proc in procs}
    for status, _out, err in outcomes:
        if status:
            holder = re.fullmatch(
                r"acrn-shm: error: posts_v3\.xml: another acrn-shm edit "
                r"holds the lock \(process (\d+) of user \S+\); try "
                r"again\n", err)
            assert holder and int(holder[1]) in pids, err
    regions = json.loads(run(["regions", "posts_v3.xml", "-f", "json"],
                             workdir).stdout)
    assert len(regions) == len(ok) >= 1
    assert sorted(r["name"] for r in regions) == sorted(
        f"shm_region_{i}" for i in range(len(ok)))
    vbdfs = [m["vbdf"] for r in regions for m in r["vms"]
             if m["vm"] == "POST_STD_VM1"]
    assert len(set(vbdfs)) == len(vbdfs)
    lint = run(["lint", "posts_v3.xml"], workdir)
    assert lint.returncode == 0, lint.stdout


def test_file_changed_during_edit_is_not_overwritten(workdir):
    # A step hook holds the edit 1.5 s between write and rename (step
    # 206 of xmlio.save_atomic); a plain editor changes the file then.
    delayed = ("import sys, time; from acrn_ivshmem import cli; "
               "from acrn_ivshmem.io import xmlio; "
               "xmlio.step_hook = lambda step: step == 206 and "
               "time.sleep(1.5); sys.argv[0] = 'acrn-shm'; cli.main()")
    proc = subprocess.Popen(
        [sys.executable, "-c", delayed, "add-region", "v3.xml",
         "--vms", "0,2"], cwd=workdir, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    import time

    time.sleep(1.0)
    (workdir / "v3.xml").write_bytes(b"<acrn-config><vm id='0'/>"
                                     b"</acrn-config>\n")
    _out, err = proc.communicate(timeout=60)
    status = proc.returncode
    assert status == 2
    assert err == ("acrn-shm: error: v3.xml: changed on disk since it was "
                   "read; nothing written\n")
    assert (workdir / "v3.xml").read_bytes() == (
        b"<acrn-config><vm id='0'/></acrn-config>\n")


def test_upgrade_command_writes_a_v3_file_that_lints_clean(tmp_path,
                                                          acrn_data):
    # Relative names, so the transcript (notes name files and lines) is
    # the same on every machine.
    legacy = acrn_data / "v2.7" / "whl-ipc-i5"
    for source in (legacy / "hybrid_rt.xml",
                   legacy / "hybrid_rt_launch_1user_vm_waag.xml",
                   acrn_data / "v3.3" / "whl-ipc-i5" / "whl-ipc-i5.xml"):
        shutil.copy(source, tmp_path)
    argv = ["upgrade", "hybrid_rt.xml", "--launch",
            "hybrid_rt_launch_1user_vm_waag.xml", "--board",
            "whl-ipc-i5.xml", "-o", "new.xml"]
    result = run(argv, tmp_path)
    actual = (f"$ acrn-shm {' '.join(argv)}\n"
              f"exit: {result.returncode}\n"
              f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
              f"--- new.xml\n{(tmp_path / 'new.xml').read_text('utf-8')}")
    golden = GOLDEN / "upgrade.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")
    lint = run(["lint", "--board", "whl-ipc-i5.xml", "new.xml"], tmp_path)
    assert (lint.returncode, lint.stdout) == (0, "no problems in 1 file\n")
    ours = json.loads(run(["regions", "new.xml", "-f", "json"],
                          tmp_path).stdout)
    acrns = json.loads(run(["regions", str(
        acrn_data / "v3.3" / "whl-ipc-i5" / "hybrid_rt.xml"), "-f", "json"],
        tmp_path).stdout)
    for region in ours + acrns:
        del region["line"]
    assert ours == acrns


def test_upgrade_output_that_exists_is_replaced_other_errors_one_line(
        tmp_path, acrn_data):
    shutil.copy(acrn_data / "v2.7" / "whl-ipc-i5" / "hybrid_rt.xml",
                tmp_path)
    (tmp_path / "new.xml").write_text("old\n")
    assert run(["upgrade", "hybrid_rt.xml", "-o", "new.xml"],
               tmp_path).returncode == 0
    assert (tmp_path / "new.xml").read_text().startswith("<acrn-config>\n")
    result = run(["upgrade", "hybrid_rt.xml", "-o", "no/such/dir/new.xml"],
                 tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == (
        "acrn-shm: error: no/such/dir/new.xml: cannot create a temporary "
        "file beside it: No such file or directory; nothing written")


def test_upgrade_refuses_a_v3_file(tmp_path, acrn_data):
    v3 = acrn_data / "v3.3" / "whl-ipc-i5" / "hybrid_rt.xml"
    result = run(["upgrade", str(v3)], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"acrn-shm: error: {v3}: not a legacy (ACRN "
                             "v2.x) scenario; nothing to upgrade\n")


def test_editing_a_missing_file_leaves_nothing_behind(tmp_path):
    result = run(["add-region", "missing.xml", "--vms", "0,1"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "acrn-shm: error: missing.xml: no such file\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["regions-json", "regions-legacy-json",
                                  "regions-ids-json"])
def test_region_rows_are_what_regions_prints(name):
    # The rows come from the library; the command only prints them.
    target = DATA / CASES[name][1]
    golden = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    printed = golden.split("--- stdout\n", 1)[1].split("--- stderr\n")[0]
    assert region_rows(load(str(target)).model) == json.loads(printed)
