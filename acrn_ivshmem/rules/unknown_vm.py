"""ISM203 unknown-vm: every VM of a region exists in the scenario.

What it does
    Checks that each VM named in a region (``VM_NAME`` in v3, a VM id in
    a legacy string) is a ``vm`` of the scenario.

Why it matters
    ACRN v3 never checks it: a typo in ``VM_NAME`` builds fine and the
    region simply lacks that VM, so the peer never sees the memory.

Example (fails)
    <VM_NAME>POST_STD_VM9</VM_NAME>   (no such VM)

Use instead (passes)
    <VM_NAME>POST_STD_VM1</VM_NAME>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, is_decimal

CODE = "ISM203"
NAME = "unknown-vm"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per member that names no VM of the scenario."""
    if scenario.is_legacy:
        known = ", ".join(vm.id_text or "?" for vm in scenario.vms)
        what = "VM id"
    else:
        known = ", ".join(quoted(vm.name) for vm in scenario.vms if vm.name)
        what = "VM"
    for region in scenario.regions:
        if region.malformed:
            continue
        for member in region.members:
            ref = member.vm
            if ref is None or not ref.text:
                continue
            if scenario.is_legacy and not is_decimal(ref.text):
                continue  # ISM104 reports it
            if scenario.vm_for(ref.text) is None:
                yield Finding(
                    ref.loc,
                    f"region {region.label} names {what} {quoted(ref.text)}, "
                    f"which is not in the scenario",
                    f"use one of: {known}" if known else
                    "add the VM to the scenario")
