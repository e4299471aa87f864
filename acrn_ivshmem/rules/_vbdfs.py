"""Every VBDF of a scenario with its VM, for the VBDF rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ..errors import quoted
from ..model.syntax import Scenario, Value


class VbdfUse(NamedTuple):
    """A VBDF as used by one VM: in a region or a PCI vUART endpoint."""

    vm_name: str
    vbdf: Value
    owner: str
    region_index: int | None


def vbdf_uses(scenario: Scenario) -> Iterator[VbdfUse]:
    """Yield each PCI vUART VBDF, then each IVSHMEM VBDF, in document order."""
    uses = []
    for index, region in enumerate(scenario.regions):
        for member in region.members:
            if member.vm is None or member.vbdf is None:
                continue
            uses.append(VbdfUse(member.vm.text, member.vbdf,
                                f"region {region.label}", index))
    for endpoint in scenario.pci_vuarts:
        if endpoint.vm is None or endpoint.vbdf is None:
            continue
        uses.append(VbdfUse(endpoint.vm.text, endpoint.vbdf,
                            f"vUART connection {quoted(endpoint.connection)}",
                            None))
    # vUART endpoints first: a region member that takes a vUART's VBDF is
    # the later use, so findings land inside the IVSHMEM block.
    uses.sort(key=lambda use: (use.region_index is not None,
                               use.vbdf.loc))
    yield from uses
