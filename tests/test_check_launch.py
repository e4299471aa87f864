"""``acrn-shm check-launch``: drift between a launch script and scenario.

Scripts are written by ``launch-script`` into ``tmp_path`` and then
changed one way per test; ``tests/test_check_launch/`` holds a
hand-written raw-form script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acrn_ivshmem.script_reader import parse_script
from conftest import ACRN_DATA, run_acrn_shm

HERE = Path(__file__).resolve().parent / "test_check_launch"
WHL = ACRN_DATA / "v3.3" / "whl-ipc-i5"
WAAG = WHL / "hybrid_rt_launch_1user_vm_waag.xml"
LINE = "    $(add_virtual_device 8 ivshmem hv:/shm_region_0,2)\n"

pytestmark = pytest.mark.skipif(not ACRN_DATA.is_dir(),
                                reason=f"{ACRN_DATA} is missing")


@pytest.fixture
def script(tmp_path) -> Path:
    """POST_STD_VM1's script as acrn-shm writes it."""
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL / "whl-ipc-i5.xml"),
         "--vm", "POST_STD_VM1"], tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "launch_user_vm_id1.sh"
    path.write_text(result.stdout)
    assert result.stdout.count(LINE) == 1
    return path


def check(path: Path, *extra: str):
    return run_acrn_shm(["check-launch", str(path), "--scenario",
                         str(WAAG), *extra], path.parent)


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text.rstrip("\n")) + 1


def test_in_sync_script_passes(script):
    result = check(script)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "no problems in 1 file\n", "")


@pytest.mark.parametrize("new, code, message", [
    ("    $(add_virtual_device 8 ivshmem hv:/shm_region_0,4)\n", "ISM513",
     "ivshmem device 'shm_region_0' has size '4' but region "
     "'shm_region_0' is 2 MB"),
    ("    $(add_virtual_device 8 ivshmem dm:/shm_region_0,2)\n", "ISM514",
     "ivshmem device 'shm_region_0' has dm:/ but region 'shm_region_0' "
     "is hv:/"),
    ("    $(add_virtual_device 9 ivshmem hv:/shm_region_0,2)\n", "ISM515",
     "ivshmem device 'shm_region_0' is on slot '9' but VM 'POST_STD_VM1' "
     "has VBDF 00:08.0 (slot 8) in region 'shm_region_0'"),
    ("    $(add_virtual_device 8 ivshmem hv:/shm_old,2)\n", "ISM516",
     "ivshmem device on slot 8 is named 'shm_old' but VM 'POST_STD_VM1' "
     "has region 'shm_region_0' there"),
])
def test_each_drift_at_its_line(script, new, code, message):
    """One changed device: one diagnostic at the device's line."""
    script.write_text(script.read_text().replace(LINE, new))
    result = check(script)
    line = line_of(script, new)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{script}:{line}:7: {code} [error] {message}")
    assert result.stdout.endswith("1 error in 1 file\n")


@pytest.mark.parametrize("config, expected", [
    ('ignore = ["ISM513"]\n', "no problems in 1 file\n"),
    ('ignore = ["ISM51"]\n', "no problems in 1 file\n"),
    ('severity = { ISM513 = "warning" }\n', "{script}:{line}:7: ISM513 "
     "[warning] ivshmem device 'shm_region_0' has size '4' but region "
     "'shm_region_0' is 2 MB\n    hint: use 2\n1 warning in 1 file\n"),
])
def test_pyproject_configures_script_rules(script, config, expected):
    """[tool.acrn-shm] of the nearest pyproject.toml, as lint reads it."""
    new = LINE.replace(",2)", ",4)")
    script.write_text(script.read_text().replace(LINE, new))
    (script.parent / "pyproject.toml").write_text(
        "[tool.acrn-shm]\n" + config)
    result = check(script)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, expected.format(script=script, line=line_of(script, new)), "")


def test_missing_and_extra(script):
    """A dropped device is missing at acrn-dm; a new one is extra."""
    text = script.read_text().replace(LINE, "").replace(
        "    POST_STD_VM1\n)",
        "    -s 9,ivshmem,hv:/shm_region_9,2\n    POST_STD_VM1\n)")
    script.write_text(text)
    anchor = line_of(script, "dm_params=(")
    extra = line_of(script, "    -s 9,ivshmem,hv:/shm_region_9,2")
    result = check(script)
    assert result.returncode == 1
    assert result.stdout == (
        f"{script}:{anchor}:1: ISM511 [error] region 'shm_region_0' (hv, "
        "2 MB, slot 8) lists VM 'POST_STD_VM1' but the script has no "
        "ivshmem device for it\n"
        "    hint: add: add_virtual_device 8 ivshmem hv:/shm_region_0,2\n"
        f"{script}:{extra}:5: ISM512 [error] ivshmem device "
        "'shm_region_9' (slot 9) is not a region of the scenario that "
        "lists VM 'POST_STD_VM1'\n"
        "    hint: remove it from the script or add the VM to the region\n"
        "2 errors in 1 file\n")


def test_raw_form_with_continuations():
    """-s arguments over continued lines; comments are not read."""
    path = HERE / "raw_form.sh"
    result = check(path, "--vm", "POST_STD_VM1")
    assert (result.returncode, result.stdout) == (
        0, "no problems in 1 file\n")
    parsed = parse_script(path.read_text(), str(path))
    assert [(d.loc, d.slot, d.provider, d.name, d.size)
            for d in parsed.devices] == [
        ((8, 3), "8", "hv", "shm_region_0", "2")]


def test_raw_form_drift_json(tmp_path):
    """The lint formats work here too (json shown)."""
    path = tmp_path / "raw.sh"
    path.write_text((HERE / "raw_form.sh").read_text().replace(
        "-s 8,ivshmem,hv:/shm_region_0,2", "-s 8,ivshmem,hv:/shm_region_0,8"))
    result = check(path, "--vm", "POST_STD_VM1", "-f", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == [{
            "path": str(path), "line": 8, "column": 3, "code": "ISM513",
            "severity": "error",
            "message": "ivshmem device 'shm_region_0' has size '8' but "
            "region 'shm_region_0' is 2 MB", "hint": "use 2"}]


def test_no_header_needs_vm(tmp_path):
    """Without a header or --vm the VM is unknown: exit 2, one line."""
    result = check(HERE / "raw_form.sh")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"acrn-shm: error: {HERE / 'raw_form.sh'}: no '# Launch script for "
        "VM name:' header; say which VM with --vm\n")


def test_missing_script(tmp_path):
    result = check(tmp_path / "nope.sh", "--vm", "POST_STD_VM1")
    assert (result.returncode, result.stderr) == (
        2, f"acrn-shm: error: {tmp_path / 'nope.sh'}: no such file\n")
