"""Pair a launch script's ivshmem devices with the scenario's regions.

Used by the ISM51x rules. A device and a region pair up by name first,
then (for what is left) by slot, so that a renamed region reads as "name
differs" rather than as one missing and one extra device.
"""

from __future__ import annotations

from typing import NamedTuple

from ..model.syntax import (
    LaunchScript, Region, Scenario, ScriptIvshmem, parse_vbdf,
)
from ..plan.acrn_dm import slot_text, vm_regions


class Expected(NamedTuple):
    """A region the VM belongs to, as its launch script should show it
    (``size``: MB as acrn-dm gets it, else the size text as written)."""

    region: Region
    name: str
    land: str | None
    size: str
    slot: tuple[int, int] | None
    vbdf: str

    @property
    def slot_text(self) -> str:
        """The slot as acrn-shm writes it (``8`` or ``8:1``)."""
        return "(automatic)" if self.slot is None else slot_text(*self.slot)


class Match(NamedTuple):
    """Paired (device, region) tuples, devices and regions left over."""

    pairs: list[tuple[ScriptIvshmem, Expected]]
    extra: list[ScriptIvshmem]
    missing: list[Expected]


def expected(scenario: Scenario, vm_name: str) -> list[Expected]:
    """The regions of ``vm_name`` with the slot its own VBDF gives."""
    found = []
    for region, vbdf in vm_regions(scenario, vm_name):
        facts = scenario.resolved.region(region)
        bdf = parse_vbdf(vbdf.text) if vbdf is not None else None
        found.append(Expected(
            region, facts.name or "", facts.provider,
            str(facts.size_mb) if facts.size_mb is not None
            else region.size.text if region.size else "",
            (bdf.device, bdf.function) if bdf is not None else None,
            vbdf.text.strip() if vbdf is not None else ""))
    return found


def match(script: LaunchScript, scenario: Scenario,
          vm_name: str) -> Match:
    """Pair the script's devices with the regions of ``vm_name``."""
    regions = expected(scenario, vm_name)
    devices = list(script.devices)
    pairs = []
    for device in list(devices):
        for region in regions:
            if region.name == device.name:
                pairs.append((device, region))
                devices.remove(device)
                regions.remove(region)
                break
    for device in list(devices):
        for region in regions:
            if region.slot is not None and region.slot == (
                    device.device, device.function):
                pairs.append((device, region))
                devices.remove(device)
                regions.remove(region)
                break
    return Match(pairs, devices, regions)
