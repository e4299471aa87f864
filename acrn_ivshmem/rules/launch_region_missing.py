"""ISM511 launch-region-missing: a VM's region is missing from its script.

What it does
    Checks that every IVSHMEM region the scenario lists the VM in has
    an ``ivshmem`` device in the VM's launch script. Reported at the
    ``acrn-dm`` call.

Why it matters
    The guest never sees the shared memory: the application waits for
    a PCI device that acrn-dm was not told to create. Scripts written by
    hand, or generated before a region was added, drift this way
    (ACRN issue #6207).

Example (fails)
    # scenario: shm_region_0 lists POST_STD_VM1 at 00:08.0
    acrn-dm ... -s 0:0,hostbridge POST_STD_VM1

Use instead (passes)
    acrn-dm ... -s 0:0,hostbridge -s 8,ivshmem,hv:/shm_region_0,2 POST_STD_VM1
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM511"
NAME = "launch-region-missing"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for region in found.missing:
        yield Finding(
            script.anchor,
            f"region {quoted(region.name)} ({region.land}, "
            f"{shortened(region.size)} MB, slot {region.slot_text}) lists VM "
            f"{quoted(vm_name)} but the script has no ivshmem device for it",
            "add: add_virtual_device "
            f"{region.slot_text} ivshmem {region.land}:/"
            f"{shortened(region.name)},{shortened(region.size)}")
