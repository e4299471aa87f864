"""ISM202 too-many-hv-regions: at most 8 hypervisor-provided regions.

What it does
    Counts the regions whose memory the hypervisor provides
    (``PROVIDED_BY`` Hypervisor; in a legacy scenario every region) and
    reports each one past the eighth.

Why it matters
    The hypervisor keeps regions in a fixed array of 8 entries. ACRN v3
    has no check for it, so a ninth region fails deep in the C compile;
    ACRN v2.3-v2.7 had the check in Python.

Example (fails)
    nine <IVSHMEM_REGION> elements with PROVIDED_BY Hypervisor

Use instead (passes)
    at most eight, or provide some from the device model between
    post-launched VMs (<PROVIDED_BY>Device Model</PROVIDED_BY>)
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM202"
NAME = "too-many-hv-regions"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
LIMIT = 8


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding for every hypervisor region past the limit."""
    count = 0
    for region in scenario.regions:
        # ACRN v2.x reserves every legacy region, dm:/ ones included.
        if not scenario.is_legacy and region.land != "hv":
            continue
        count += 1
        if count > LIMIT:
            yield Finding(
                region.loc,
                f"region {region.label} is hypervisor region number "
                f"{count}; at most {LIMIT} are allowed",
                "remove regions, or move some between post-launched VMs "
                "to the device model")
