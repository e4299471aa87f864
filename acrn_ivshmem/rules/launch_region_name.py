"""ISM516 launch-region-name: a device on a region's slot has another name.

What it does
    Reports an ``ivshmem`` device whose name matches no region of the
    VM but whose slot is the VM's VBDF in a region: the region was most
    likely renamed in one place only.

Why it matters
    The hypervisor matches ``hv:/`` devices by name; with the old name
    acrn-dm cannot start the VM.

Example (fails)
    -s 8,ivshmem,hv:/shm_old,2   # region at 00:08.0 is shm_region_0

Use instead (passes)
    -s 8,ivshmem,hv:/shm_region_0,2
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM516"
NAME = "launch-region-name"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for device, region in found.pairs:
        if device.name != region.name:
            yield Finding(
                device.loc,
                f"ivshmem device on slot {shortened(device.slot)} is named "
                f"{quoted(device.name)} but VM {quoted(vm_name)} has region "
                f"{quoted(region.name)} there",
                f"use {shortened(region.name)}")
