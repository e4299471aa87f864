"""ISM515 launch-region-slot: a device's slot is not the VM's VBDF.

What it does
    Compares the slot of each matched ``ivshmem`` device with the
    device (and function) of the VM's own ``VBDF`` in the region.
    Regions without a VBDF are not compared.

Why it matters
    The guest finds the device at another PCI address than the
    scenario says, and the slot may collide with another device of the
    VM; ACRN's own generator takes the region's first VBDF, not the
    VM's.

Example (fails)
    -s 9,ivshmem,hv:/shm_region_0,2   # VBDF 00:08.0

Use instead (passes)
    -s 8,ivshmem,hv:/shm_region_0,2
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM515"
NAME = "launch-region-slot"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for device, region in found.pairs:
        if region.slot is not None and (device.device, device.function) \
                != region.slot:
            yield Finding(
                device.loc,
                f"ivshmem device {quoted(device.name)} is on slot "
                f"{quoted(device.slot)} but VM {quoted(vm_name)} has VBDF "
                f"{shortened(region.vbdf)} (slot {region.slot_text}) in "
                f"region {quoted(region.name)}",
                f"use slot {region.slot_text}")
