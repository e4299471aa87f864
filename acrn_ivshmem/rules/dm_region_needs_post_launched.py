"""ISM210 dm-region-needs-post-launched: device-model regions join post VMs.

What it does
    Checks that every VM of a region provided by the device model
    (``PROVIDED_BY`` Device Model, or a legacy ``dm:/`` string) is a
    post-launched VM.

Why it matters
    Device-model memory is a POSIX shared-memory object in the Service
    VM that acrn-dm maps into the VMs it launches; pre-launched VMs and
    the Service VM itself never get it. ACRN does not check this.

Example (fails)
    <PROVIDED_BY>Device Model</PROVIDED_BY> ... <VM_NAME>PRE_RT_VM0</VM_NAME>

Use instead (passes)
    <PROVIDED_BY>Hypervisor</PROVIDED_BY> ... <VM_NAME>PRE_RT_VM0</VM_NAME>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario, VmKind

CODE = "ISM210"
NAME = "dm-region-needs-post-launched"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per non-post-launched VM of a device-model region."""
    for region in scenario.regions:
        if region.malformed or region.land != "dm":
            continue
        for member in region.members:
            if member.vm is None:
                continue
            vm = scenario.vm_for(member.vm.text)
            if vm is None or vm.kind in (VmKind.POST_LAUNCHED,
                                         VmKind.UNKNOWN):
                continue
            yield Finding(
                member.vm.loc,
                f"region {region.label} is provided by the device model "
                f"but VM {vm.label} is {vm.kind.value}; only "
                f"post-launched VMs can use it",
                "provide the region from the hypervisor ('Hypervisor' / "
                "'hv:/'), or share it only between post-launched VMs")
