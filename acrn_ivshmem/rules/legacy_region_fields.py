"""ISM102 legacy-region-fields: name, size and VM ids, comma-separated.

What it does
    Checks that each legacy ``IVSHMEM_REGION`` string has exactly three
    non-empty comma-separated fields: the name, the size in MB and the
    VM ids.

Why it matters
    ACRN v2.x puts a string with another number of fields into an error
    bucket and reports only the first such problem per run; acrn-shm's
    other checks cannot read such a string either.

Example (fails)
    <IVSHMEM_REGION>hv:/shm_region_0, 2 0:2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM102"
NAME = "legacy-region-fields"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
_WHAT = ("name", "size", "VM ids")


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per legacy string without three non-empty fields."""
    for region in scenario.regions:
        legacy = region.legacy
        if legacy is None:
            continue
        fields = legacy.fields
        if len(fields) != 3:
            yield Finding(
                fields[0].loc,
                f"region {quoted(legacy.raw.text.strip())} has {len(fields)} "
                f"comma-separated field{'s' if len(fields) != 1 else ''}; "
                f"expected 3 (name, size in MB, VM ids)",
                "write it like 'hv:/shm_region_0, 2, 0:2'")
            continue
        for field, what in zip(fields, _WHAT):
            if not field.text:
                yield Finding(
                    field.loc,
                    f"region {quoted(legacy.raw.text.strip())} has an empty "
                    f"{what} field",
                    "write it like 'hv:/shm_region_0, 2, 0:2'")
