"""ISM212 duplicate-region-id: no two regions have the same id.

What it does
    Checks that no two regions of a scenario give the same number in
    ``IVSHMEM_REGION_ID`` and reports every later one at its id (``7``
    and ``007`` are one id). Regions without the element (ACRN's default
    id 0) are the business of ISM216.

Why it matters
    ACRN v3.3 builds each region's id into ``ivshmem_cfg.h``, and the
    hypervisor (acrn-dm for Device Model regions) writes it into the
    device's PCI subsystem id: it is how a guest tells its regions
    apart. ACRN checks no uniqueness, so two regions with one id build
    and look alike. Only ACRN v3.3 knows the element: v3.0 to v3.2
    reject it as unknown, and legacy (v2.x) scenarios have no ids.

Example (fails)
    <IVSHMEM_REGION_ID>1</IVSHMEM_REGION_ID> in two regions

Use instead (passes)
    <IVSHMEM_REGION_ID>1</IVSHMEM_REGION_ID> in one region and
    <IVSHMEM_REGION_ID>2</IVSHMEM_REGION_ID> in the other
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Region, Scenario, lowest_free_id

CODE = "ISM212"
NAME = "duplicate-region-id"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each explicit id an earlier region has."""
    used = {region.id_number for region in scenario.regions} - {None}
    first: dict[int, Region] = {}
    for region in scenario.regions:
        number = region.id_number
        if region.region_id is None or number is None:
            continue  # no id of its own, or one ISM211 reports
        owner = first.setdefault(number, region)
        if owner is region:
            continue
        yield Finding(
            region.region_id.loc,
            f"region {region.label} id '{region.region_id.text}' is "
            f"already the id of region {owner.label} at line "
            f"{owner.region_id.loc.line}",
            f"give every region its own id, e.g. "
            f"{lowest_free_id(used)} here")
