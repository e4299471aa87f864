"""The benchmark's scenario generator (bench/scenarios.py) is correct.

Every scenario it writes must hold exactly the VMs and regions asked
for, respect the board, and lint clean: the scaling benchmark times
clean lints only. No timing is asserted here.
"""

from __future__ import annotations

import importlib.util
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
