"""ISM513 launch-region-size: a script device's size differs from its region.

What it does
    Compares the size (MB) of each matched ``ivshmem`` device with the
    region's ``IVSHMEM_SIZE``.

Why it matters
    The hypervisor refuses an ``hv:/`` device whose size is not the
    configured one, and for ``dm:/`` the first VM to start fixes the
    size, so the second fails.

Example (fails)
    -s 8,ivshmem,hv:/shm_region_0,4   # scenario: 2 MB

Use instead (passes)
    -s 8,ivshmem,hv:/shm_region_0,2
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM513"
NAME = "launch-region-size"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for device, region in found.pairs:
        if device.size.strip() != region.size:
            yield Finding(
                device.loc,
                f"ivshmem device {quoted(device.name)} has size "
                f"{quoted(device.size)} but region {quoted(region.name)} is "
                f"{shortened(region.size)} MB",
                f"use {shortened(region.size)}")
