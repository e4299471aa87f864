"""ISM101 legacy-region-prefix: a legacy region starts with hv:/ or dm:/.

What it does
    Checks that each legacy ``IVSHMEM_REGION`` string starts with
    ``hv:/`` (memory provided by the hypervisor) or ``dm:/`` (provided by
    the device model, ACRN v2.5 and later).

Why it matters
    ACRN's v2.x Python checks never look at the prefix, but acrn-dm
    refuses an ivshmem device whose name has neither prefix, so the VM
    fails to start long after the build succeeded.

Example (fails)
    <IVSHMEM_REGION>shm_region_0, 2, 0:2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM101"
NAME = "legacy-region-prefix"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per legacy region without a valid prefix."""
    for region in scenario.regions:
        legacy = region.legacy
        if legacy is None:
            continue
        if legacy.prefix is None:
            yield Finding(
                legacy.fields[0].loc,
                f"region {quoted(legacy.fields[0].text)} has no 'hv:/' or "
                f"'dm:/' prefix",
                f"write {quoted('hv:/' + legacy.fields[0].text)} (hypervisor) "
                f"or {quoted('dm:/' + legacy.fields[0].text)} (device model)")
        elif legacy.prefix.text not in ("hv:/", "dm:/"):
            yield Finding(
                legacy.prefix.loc,
                f"region prefix {quoted(legacy.prefix.text)} is not 'hv:/' or "
                f"'dm:/'",
                "use 'hv:/' for hypervisor memory, 'dm:/' for device "
                "model memory")
