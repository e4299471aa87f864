"""The benchmark's scenario generator (bench/scenarios.py) is correct,
and issue 16's paired figures (bench/first_sight.py) pair the runs.

Every scenario it writes must hold exactly the VMs and regions asked
for, respect the board, and lint clean: the scaling benchmark times
clean lints only. No timing is asserted here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import PROJECT

from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import Linter
from acrn_ivshmem.model.loader import load
from acrn_ivshmem.model.syntax import Scenario

_SPEC = importlib.util.spec_from_file_location(
    "bench_scenarios", PROJECT / "bench" / "scenarios.py")
scenarios = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(scenarios)


@pytest.fixture
def whl(acrn_data):
    """(source scenario, board) of ACRN v3.3 whl-ipc-i5."""
    folder = acrn_data / "v3.3" / "whl-ipc-i5"
    return folder / "shared.xml", folder / "whl-ipc-i5.xml"


@pytest.fixture
def grid(whl, tmp_path):
    """The default grid of generated scenarios."""
    source, board = whl
    return scenarios.write_grid(tmp_path, source=source, board=board)


def test_grid_lints_clean(grid, whl):
    _, board = whl
    assert [(g.vms, g.regions) for g in grid] == [
        (v, r) for v in (2, 4, 8, 16) for r in (0, 1, 2, 4, 8)]
    result = Linter(LintConfig(use_cache=False)).lint(
        [str(g.path) for g in grid], str(board))
    assert result.errors == ()
    assert result.diagnostics == ()
    assert result.files == len(grid)


def test_exact_counts(grid):
    for item in grid:
        root = ET.parse(item.path).getroot()
        vms = root.findall("vm")
        names = [vm.findtext("name") for vm in vms]
        assert len(vms) == item.vms
        assert [vm.get("id") for vm in vms] == [
            str(i) for i in range(item.vms)]
        assert len(set(names)) == item.vms
        regions = root.findall("hv/FEATURES/IVSHMEM/IVSHMEM_REGION")
        assert len(regions) == item.regions
        assert item.members == item.vms * item.regions
        for region in regions:
            members = region.findall("IVSHMEM_VMS/IVSHMEM_VM")
            assert [m.findtext("VM_NAME") for m in members] == names
            size = int(region.findtext("IVSHMEM_SIZE"))
            assert size >= 2 and size & (size - 1) == 0
        model = load(str(item.path)).model
        assert isinstance(model, Scenario) and model.format == "v3"
        assert len(model.vms) == item.vms
        assert len(model.regions) == item.regions
        assert sum(len(r.members) for r in model.regions) == item.members


def test_each_vm_has_distinct_vbdfs(grid):
    for item in grid:
        root = ET.parse(item.path).getroot()
        per_vm: dict[str, list[str]] = {}
        for member in root.iter("IVSHMEM_VM"):
            per_vm.setdefault(member.findtext("VM_NAME"), []).append(
                member.findtext("VBDF"))
        for vbdfs in per_vm.values():
            assert len(set(vbdfs)) == len(vbdfs) == item.regions


def test_board_limits_respected(grid, whl):
    _, board = whl
    limits = scenarios.board_limits(board)
    assert limits.pcpus == frozenset(range(4))
    for item in grid:
        root = ET.parse(item.path).getroot()
        posts = [vm for vm in root.findall("vm")
                 if vm.findtext("load_order") == "POST_LAUNCHED_VM"]
        assert sum(int(vm.findtext("memory/size")) for vm in posts) \
            <= limits.ram_mb // 2
        for pcpu in root.iter("pcpu_id"):
            assert int(pcpu.text) in limits.pcpus
        vuart_names = {e.text for e in root.iter("vm_name")}
        assert vuart_names <= {vm.findtext("name")
                               for vm in root.findall("vm")}


@pytest.mark.parametrize("vms, regions", [(1, 0), (17, 1), (2, 9),
                                          (4, -1)])
def test_counts_out_of_range_refused(whl, vms, regions):
    source, board = whl
    with pytest.raises(ValueError):
        scenarios.generate(vms, regions, source, board)


# --- first_sight.py: issue 16's paired figures ------------------------------

def _first_sight():
    import sys

    sys.path.insert(0, str(PROJECT / "bench"))
    try:
        import first_sight
    finally:
        sys.path.remove(str(PROJECT / "bench"))
    return first_sight


def test_importtime_lines_are_parsed():
    first_sight = _first_sight()
    stderr = ("import time: self [us] | cumulative | imported package\n"
              "import time:       120 |        120 |   _io\n"
              "import time:      4500 |      15000 | lxml.etree\n"
              "something else\n")
    assert first_sight.parse_importtime(stderr) == [
        first_sight.Import("_io", 120, 120),
        first_sight.Import("lxml.etree", 4500, 15000)]


def test_the_validator_is_skipped_with_a_reason(tmp_path):
    first_sight = _first_sight()
    assert first_sight.find_acrn(None, "python3") == (
        "no ACRN source tree (set ACRN_SRC or pass --acrn-src)")
    assert first_sight.find_acrn(str(tmp_path), "python3") == (
        f"{tmp_path / first_sight.VALIDATOR} is missing")
    validator = tmp_path / first_sight.VALIDATOR
    validator.parent.mkdir(parents=True)
    validator.write_text("")
    assert first_sight.find_acrn(str(tmp_path), None).startswith(
        "no Python for ACRN's validator")
    assert first_sight.find_acrn(str(tmp_path), "/no/such/python") == (
        "/no/such/python is not an executable")
    assert first_sight.find_acrn(str(tmp_path), sys.executable) == (
        first_sight.Acrn(sys.executable, validator))


def test_cases_are_paired_with_the_validator(acrn_data, tmp_path, capsys):
    # A stand-in for ACRN's validator records the files it is given.
    first_sight = _first_sight()
    validator = tmp_path / "acrn" / first_sight.VALIDATOR
    validator.parent.mkdir(parents=True)
    log = tmp_path / "validated.txt"
    validator.write_text(
        "import sys\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(' '.join(p.rsplit('/', 1)[-1] for p in sys.argv[1:])"
        " + '\\n')\n")
    acrn = first_sight.find_acrn(str(tmp_path / "acrn"), sys.executable)
    work = tmp_path / "work"
    work.mkdir()
    cases = first_sight.measure(acrn_data / "v3.3", [
        sys.executable, "-m", "acrn_ivshmem"], acrn, work, dict(os.environ),
        runs=1)
    assert [case.label for case in cases] == list(first_sight.CASES)
    assert all(case.shm > 0 and case.acrn > 0 for case in cases)
    assert log.read_text().splitlines() == [
        "whl-ipc-i5.xml hybrid_rt.xml",  # the warm-up
        "whl-ipc-i5.xml hybrid_rt.xml",
        f"whl-ipc-i5.xml changed_0_{os.getpid()}.xml",
        "whl-ipc-i5.xml hybrid_rt.xml"]
    first_sight.report_cases(cases, acrn)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["case", "acrn-shm", "CPU", "ACRN",
                                "validator", "CPU", "ratio", "CPU", "ratio",
                                "goal"]
    assert [line[:20].strip() for line in lines[2:5]] == list(
        first_sight.CASES)
    assert all(">= 30x" in line for line in lines[2:5])


def test_without_the_validator_acrn_shm_is_reported_alone(capsys):
    first_sight = _first_sight()
    cases = [first_sight.Case(label, 0.05, 0.04, None, None)
             for label in first_sight.CASES]
    first_sight.report_cases(cases, "no ACRN source tree (set ACRN_SRC or "
                             "pass --acrn-src)")
    out = capsys.readouterr().out.splitlines()
    assert out[2].split() == ["the", "same", "bytes", "again", "50ms",
                              "40ms", "skipped", ">=", "30x"]
    assert out[-1] == ("ACRN's validator skipped: no ACRN source tree (set "
                       "ACRN_SRC or pass --acrn-src)")
