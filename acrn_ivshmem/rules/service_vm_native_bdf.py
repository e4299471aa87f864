"""ISM304 service-vm-native-bdf: Service VM VBDFs avoid native devices.

What it does
    Checks that no IVSHMEM or PCI vUART VBDF of the Service VM is the BDF
    of a PCI device of the board (from the board XML's ``PCI_DEVICE``
    list and device tree). Needs the board XML.

Why it matters
    The Service VM sees the board's devices at their native addresses,
    so a virtual device there collides with a real one. ACRN's default
    ``00:08.0`` is a native device on many Intel boards, and ACRN's
    check is a case-sensitive text search.

Example (fails, on a board with a device at 00:08.0)
    <VM_NAME>ACRN_Service_VM</VM_NAME><VBDF>00:08.0</VBDF>

Use instead (passes)
    <VM_NAME>ACRN_Service_VM</VM_NAME><VBDF>00:0b.0</VBDF>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, VmKind, parse_vbdf
from ._vbdfs import vbdf_uses

CODE = "ISM304"
NAME = "service-vm-native-bdf"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = True


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per Service VM VBDF that a native device uses."""
    if board is None:
        return
    for use in vbdf_uses(scenario):
        vm = scenario.vm_named(use.vm_name)
        bdf = parse_vbdf(use.vbdf.text)
        if vm is None or bdf is None or vm.kind != VmKind.SERVICE:
            continue
        if bdf in board.native_bdfs:
            free = next((
                f"00:{device:02x}.0" for device in range(0x08, 0x20)
                if (0, device, 0) not in board.native_bdfs), None)
            yield Finding(
                use.vbdf.loc,
                f"{use.owner} VBDF {quoted(use.vbdf.text)} of Service VM "
                f"{quoted(use.vm_name)} is the native PCI device {bdf} of "
                f"board {quoted(board.name)}",
                f"pick a VBDF that the board does not use, e.g. {quoted(free)}"
                if free else "pick a VBDF that the board does not use")
