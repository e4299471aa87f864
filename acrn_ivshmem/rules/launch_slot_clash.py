"""ISM501 launch-slot-clash: a post-launched VM's devices need one slot each.

What it does
    Plans the acrn-dm devices of every post-launched VM of a v3 scenario
    the way ``acrn-shm launch-script`` writes them and reports an
    IVSHMEM region or PCI vUART whose VBDF gives a slot that another
    device of the VM already has (VBDFs that differ only in the bus
    give the same slot), or a slot acrn-dm keeps for the host bridge
    (0), the LPC bridge (1) or a passed-through GPU (2).

Why it matters
    acrn-dm refuses to start a VM with two devices on one slot. ACRN's
    generator would renumber or collide silently; acrn-shm reports it.

Example (fails: both are slot 8 of POST_STD_VM1)
    <IVSHMEM_VM><VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:08.0</VBDF>
    ... <endpoint><vm_name>POST_STD_VM1</vm_name><vbdf>01:08.0</vbdf>

Use instead (passes)
    <endpoint><vm_name>POST_STD_VM1</vm_name><vbdf>00:09.0</vbdf>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import AcrnShmError, quoted
from ..model.syntax import Board, Scenario
from ..plan.acrn_dm import plan

CODE = "ISM501"
NAME = "launch-slot-clash"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per slot clash of each post-launched VM."""
    for vm_name, _settings in scenario.dm_settings:
        try:
            planned = plan(scenario, vm_name)
        except AcrnShmError:
            continue  # unsafe values are reported by launch-script
        for clash in planned.clashes:
            yield Finding(clash.loc or scenario.root_loc,
                          f"VM {quoted(vm_name)}: {clash.message}", clash.hint)
