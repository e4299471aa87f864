"""ISM305 vbdf-host-bridge: no device at 00:00.0 in any VM.

What it does
    Checks that no IVSHMEM or PCI vUART VBDF of a pre-launched VM or the
    Service VM is ``00:00.0``.

Why it matters
    Every VM's virtual host bridge sits at 00:00.0; ACRN does not check
    it for pre-launched VMs, and the guest then finds no host bridge.
    (Post-launched VMs are covered by ISM303.)

Example (fails)
    <VM_NAME>PRE_RT_VM0</VM_NAME><VBDF>00:00.0</VBDF>

Use instead (passes)
    <VM_NAME>PRE_RT_VM0</VM_NAME><VBDF>00:08.0</VBDF>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Bdf, Board, Scenario, VmKind, parse_vbdf
from ._vbdfs import vbdf_uses

CODE = "ISM305"
NAME = "vbdf-host-bridge"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
HOST_BRIDGE = Bdf(0, 0, 0)


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per pre-launched or Service VM VBDF at 00:00.0."""
    for use in vbdf_uses(scenario):
        vm = scenario.vm_named(use.vm_name)
        if vm is None or vm.kind not in (VmKind.PRE_LAUNCHED,
                                         VmKind.SERVICE):
            continue
        if parse_vbdf(use.vbdf.text) == HOST_BRIDGE:
            yield Finding(
                use.vbdf.loc,
                f"{use.owner} VBDF {quoted(use.vbdf.text)} of VM "
                f"{quoted(use.vm_name)} is the virtual host bridge's address",
                "use a free device such as '00:08.0'")
