"""ISM402 launch-shm-region-unknown: launch regions exist in the scenario.

What it does
    Checks that each ``shm_region`` of a v2.x launch XML names a region
    of the scenario (found beside the launch XML from its ``scenario``
    attribute) that lists this VM, with the same prefix and size.
    Skipped when the scenario cannot be found.

Why it matters
    The hypervisor only creates an ``hv:/`` device whose name and size
    match a region for that VM; otherwise acrn-dm fails with
    "Invalid argument" and no reason.

Example (fails, the scenario says 'hv:/shm_region_0, 2, 0:2')
    <shm_region>hv:/shm_region_0,4</shm_region>

Use instead (passes)
    <shm_region>hv:/shm_region_0,2</shm_region>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import LaunchConfig, Scenario, VmKind, decimal_int

CODE = "ISM402"
NAME = "launch-shm-region-unknown"
SEVERITY = "error"
TARGET = "launch"
NEEDS_BOARD = False


def check(launch: LaunchConfig,
          scenario: Scenario | None) -> Iterator[Finding]:
    """Yield a finding per launch region the scenario does not give."""
    if scenario is None or not scenario.is_legacy:
        return
    service = next((vm.id for vm in scenario.vms
                    if vm.kind == VmKind.SERVICE and vm.id is not None), 0)
    for launch_vm in launch.vms:
        try:
            vm_id = int(launch_vm.id_text or "") + service
        except ValueError:
            continue
        allowed = {
            f"{region.provider.text}{region.name.text},{region.size.text}"
            for region in scenario.regions
            if not region.malformed and region.provider is not None
            and region.name is not None and region.size is not None
            and any(member.vm is not None
                    and decimal_int(member.vm.text) == vm_id
                    for member in region.members)}
        for value in launch_vm.shm_regions:
            if value.text in allowed:
                continue
            yield Finding(
                value.loc,
                f"shm_region {quoted(value.text)} is not a region of scenario "
                f"{quoted(scenario.path)} that lists VM id {vm_id}",
                "use one of: " + ", ".join(sorted(allowed)) if allowed
                else f"add VM {vm_id} to a region of the scenario first")
