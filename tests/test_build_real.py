"""The build driver against a real ACRN 3.x tree (about 20-60 s a build).

Runs only when ``ACRN_SRC`` names an ACRN 3.x source tree; the Python
for ACRN's make comes from ``ACRN_SHM_BUILD_PYTHON`` (it needs
``elementpath>=2.5,<3`` and ``xmlschema>=1.10,<2``), else ``python3`` on
PATH. Builds ACRN's own whl-ipc-i5 board with its hybrid_rt scenario
from ``../shared/acrn-data/v3.3``, as shipped and with a second region.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import run_acrn_shm

from acrn_ivshmem.build.hypervisor import build
from acrn_ivshmem.build.make import Phase
from acrn_ivshmem.build.plan import BuildRequest, ShmRegion, read_version
from acrn_ivshmem.units import MIB

# Read at import: the autouse fixture clears ACRN* variables per test.
ACRN_SRC = os.environ.get("ACRN_SRC")
BUILD_PYTHON = os.environ.get("ACRN_SHM_BUILD_PYTHON")

pytestmark = pytest.mark.skipif(
    not ACRN_SRC, reason="set ACRN_SRC to an ACRN 3.x source tree (and "
    "ACRN_SHM_BUILD_PYTHON to a Python with elementpath>=2.5,<3 and "
    "xmlschema>=1.10,<2) to build the real hypervisor")

SECOND = ShmRegion("hv:/shm_region_1", 4 * MIB, 0)


@pytest.mark.parametrize("added", [None, SECOND], ids=["shipped", "added"])
def test_real_build_of_whl_ipc_i5_hybrid_rt(acrn_data, tmp_path, added):
    if read_version(ACRN_SRC).major != 3:
        pytest.skip(f"{ACRN_SRC} is ACRN {read_version(ACRN_SRC)}; this "
                    "test builds v3.3 data")
    data = acrn_data / "v3.3" / "whl-ipc-i5"
    board = data / "whl-ipc-i5.xml"
    scenario = tmp_path / "hybrid_rt.xml"
    shutil.copy(data / "hybrid_rt.xml", scenario)
    scenario.chmod(0o644)
    if added is not None:
        edit = run_acrn_shm(
            ["add-region", str(scenario), "--name", "shm_region_1",
             "--size", "4", "--vms", "PRE_RT_VM0,POST_STD_VM1",
             "--board", str(board)], tmp_path)
        assert edit.returncode == 0, edit.stderr
    phases = []
    result = build(BuildRequest(ACRN_SRC, str(board), str(scenario),
                                out=str(tmp_path / "out"),
                                python=BUILD_PYTHON),
                   lambda event: phases.append(event.phase))
    hv = tmp_path / "out" / "hypervisor"
    assert result.regions == (ShmRegion("hv:/shm_region_0", 2 * MIB, 0),
                              ) + ((added,) if added else ())
    assert result.ivshmem_header == (
        f"{hv}/configs/scenarios/hybrid_rt/ivshmem_cfg.h")
    assert [a.name for a in result.artefacts] == ["acrn.bin", "acrn.32.out"]
    assert all(a.size > 100_000 for a in result.artefacts)
    assert result.make.objects > 100
    assert {Phase.VALIDATING, Phase.COMPILING, Phase.LINKING} <= set(phases)
