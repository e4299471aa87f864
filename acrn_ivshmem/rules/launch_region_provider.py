"""ISM514 launch-region-provider: a device's hv:/ or dm:/ is not its region's.

What it does
    Compares the prefix of each matched ``ivshmem`` device with the
    region's ``PROVIDED_BY`` (``hv:/`` for Hypervisor, ``dm:/`` for
    Device Model); a device without a prefix (the ACRN v2.0 form) is
    reported too.

Why it matters
    With the wrong prefix acrn-dm creates a private ``/dev/shm`` object
    instead of using the hypervisor's region (or asks the hypervisor for
    a region it does not have): the VMs do not share memory.

Example (fails)
    -s 8,ivshmem,dm:/shm_region_0,2   # scenario: Hypervisor

Use instead (passes)
    -s 8,ivshmem,hv:/shm_region_0,2
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM514"
NAME = "launch-region-provider"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for device, region in found.pairs:
        if device.provider != region.land:
            shown = f"{device.provider}:/" if device.provider else \
                "no prefix"
            yield Finding(
                device.loc,
                f"ivshmem device {quoted(device.name)} has {shown} but region "
                f"{quoted(region.name)} is {region.land}:/",
                f"use {region.land}:/{shortened(region.name)}")
