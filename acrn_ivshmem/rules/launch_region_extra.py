"""ISM512 launch-region-extra: the script has a device the VM has no region.

What it does
    Checks that every ``ivshmem`` device of the launch script matches
    (by name, or failing that by slot) a region that lists the VM.

Why it matters
    An ``hv:/`` device the hypervisor has no region for makes acrn-dm
    fail to start the VM; a ``dm:/`` one silently creates a shared
    memory object no other VM is configured to use.

Example (fails)
    -s 9,ivshmem,hv:/old_region,2   # no such region for this VM

Use instead (passes)
    (remove the line, or add the VM to the region in the scenario)
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted, shortened
from ..model.syntax import LaunchScript, Scenario
from ._script_match import match

CODE = "ISM512"
NAME = "launch-region-extra"
SEVERITY = "error"
TARGET = "script"
NEEDS_BOARD = False


def check(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Iterator[Finding]:
    """Yield a finding per case (see the module doc)."""
    found = match(script, scenario, vm_name)
    for device in found.extra:
        yield Finding(
            device.loc,
            f"ivshmem device {quoted(device.name)} (slot "
            f"{shortened(device.slot)}) is not a region of the scenario "
            f"that lists VM {quoted(vm_name)}",
            "remove it from the script or add the VM to the region")
