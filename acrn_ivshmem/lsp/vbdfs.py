"""The VBDFs of one VM: which devices use them and which are free.

A VM's IVSHMEM devices and PCI vUARTs sit on the VM's own virtual PCI
bus, so only that VM's devices (and, for the Service VM, the board's
native devices, which it sees too) take a VBDF away.
"""

from __future__ import annotations

from typing import NamedTuple

from .engine import (
    AUTO_DEVICES, Bdf, Board, Scenario, VmKind, parse_vbdf, vbdf_uses,
)


class VbdfTable(NamedTuple):
    """``uses``: (VBDF as written, who uses it, its 1-based line and
    column); ``native``: the board's devices the VM sees; ``free``: the
    VBDFs from 00:08.0 to 00:1e.0 that nothing of the VM uses."""

    uses: list[tuple[str, str, tuple[int, int]]]
    native: frozenset[Bdf]
    free: list[str]


def table(scenario: Scenario, board: Board | None, vm_name: str,
          skip: tuple[int, int] | None = None) -> VbdfTable:
    """The VBDFs of VM ``vm_name``; ``skip`` leaves out the use at that
    place (the VBDF being typed)."""
    uses = [(use.vbdf.text, use.owner, tuple(use.vbdf.loc))
            for use in vbdf_uses(scenario)
            if use.vm_name == vm_name and tuple(use.vbdf.loc) != skip]
    vm = scenario.vm_named(vm_name)
    native: frozenset[Bdf] = frozenset()
    if vm is not None and vm.kind == VmKind.SERVICE and board is not None:
        native = board.native_bdfs
    taken = {parse_vbdf(text.strip()) for text, _, _ in uses} | native
    free = [str(Bdf(0, device, 0)) for device in AUTO_DEVICES
            if Bdf(0, device, 0) not in taken]
    return VbdfTable(uses, native, free)
