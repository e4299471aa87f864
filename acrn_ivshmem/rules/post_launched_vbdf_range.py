"""ISM303 post-launched-vbdf-range: device 03..1e in post-launched VMs.

What it does
    Checks that the device number of each VBDF of a post-launched VM
    (IVSHMEM members and PCI vUART endpoints) is from 0x03 to 0x1e,
    compared as a number.

Why it matters
    acrn-dm reserves slot 0 (host bridge), 1 (LPC), 2 (GPU) and 31.
    ACRN compares the hex text, so the upper-case ``00:1F.0`` passes
    its check and then collides with the reserved slot.

Example (fails)
    <VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:1F.0</VBDF>

Use instead (passes)
    <VM_NAME>POST_STD_VM1</VM_NAME><VBDF>00:08.0</VBDF>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, VmKind, parse_vbdf
from ._vbdfs import vbdf_uses

CODE = "ISM303"
NAME = "post-launched-vbdf-range"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
FIRST, LAST = 0x03, 0x1E


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per post-launched VBDF outside 03..1e."""
    for use in vbdf_uses(scenario):
        vm = scenario.vm_named(use.vm_name)
        bdf = parse_vbdf(use.vbdf.text)
        if vm is None or bdf is None or vm.kind != VmKind.POST_LAUNCHED:
            continue
        if not FIRST <= bdf.device <= LAST:
            yield Finding(
                use.vbdf.loc,
                f"{use.owner} VBDF {quoted(use.vbdf.text)} of post-launched "
                f"VM {quoted(use.vm_name)} has device {bdf.device:#04x}; "
                f"allowed are {FIRST:#04x} to {LAST:#04x}",
                "acrn-dm reserves devices 00, 01, 02 and 1f; pick a free "
                "device from 03 to 1e, e.g. '00:08.0'")
