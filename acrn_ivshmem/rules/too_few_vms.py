"""ISM204 too-few-vms: a region is shared by at least two VMs.

What it does
    Checks that each region lists at least two distinct VMs.

Why it matters
    Shared memory with one VM shares nothing. ACRN's documentation asks
    for two VMs, but only its GUI enforces it; the build accepts one.

Example (fails)
    <IVSHMEM_VMS>
      <IVSHMEM_VM><VM_NAME>PRE_RT_VM0</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
    </IVSHMEM_VMS>

Use instead (passes)
    <IVSHMEM_VMS>
      <IVSHMEM_VM><VM_NAME>PRE_RT_VM0</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
      <IVSHMEM_VM><VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM>
    </IVSHMEM_VMS>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.resolved import vm_key
from ..model.syntax import Board, Scenario

CODE = "ISM204"
NAME = "too-few-vms"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per region with fewer than two distinct VMs."""
    for region in scenario.regions:
        if region.malformed or region.vms_loc is None:
            continue
        if region.legacy is not None and not region.legacy.fields[2].text:
            continue  # ISM102 reports the empty field
        refs = {vm_key(member.vm.text, scenario.is_legacy)
                for member in region.members
                if member.vm is not None and member.vm.text}
        if len(refs) < 2:
            shown = ", ".join(sorted(quoted(ref) for ref in refs)) or "none"
            yield Finding(
                region.vms_loc,
                f"region {region.label} is shared by {len(refs)} distinct "
                f"VM{'s' if len(refs) != 1 else ''} ({shown}); at least 2 "
                f"are needed",
                "add the VM that should share the memory, or remove the "
                "region")

