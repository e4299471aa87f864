"""ISM107 legacy-region-acrn-pattern: ACRN's schema accepts the string.

What it does
    Warns when a well-formed legacy ``IVSHMEM_REGION`` string does not
    match the pattern of ACRN v2.5-v2.7's schema: at most one space
    around each field and VM ids of one digit. ``--fix`` rewrites
    spacing problems as ``hv:/name, size, id:id``.

Why it matters
    ACRN's Python checks strip spaces, but its schema validation (run
    when xmlschema is installed) rejects ``hv:/r,  2,0:2`` or
    ``hv:/r, 2 , 0 : 2``; VM ids of ten and more cannot be written at
    all in the legacy format.

Example (warns)
    <IVSHMEM_REGION>hv:/shm_region_0,   2,0 :  2</IVSHMEM_REGION>

Use instead (passes)
    <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION>

Fix safety
    Safe: only spaces change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..diagnostics import SAFE, Finding, TextFix
from ..errors import quoted
from ..model.syntax import Board, Scenario, is_decimal

CODE = "ISM107"
NAME = "legacy-region-acrn-pattern"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = False
# ACRN v2.5-v2.7 IVSHMEMRegionType, without its empty alternative.
ACRN_PATTERN = re.compile(
    r"((hv)|(dm)):/\w+,\s?\d+\s?,\s?\d\s?(:\s?\d\s?)+")


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per string ACRN's schema pattern refuses."""
    for facts in scenario.resolved.regions:
        region, legacy = facts.syntax, facts.syntax.legacy
        if legacy is None or region.malformed or region.name is None:
            continue
        raw = legacy.raw
        if ACRN_PATTERN.fullmatch(raw.text):
            continue
        ids = [m.vm.text for m in region.members if m.vm is not None]
        prefix = legacy.prefix.text if legacy.prefix else ""
        if (prefix not in ("hv:/", "dm:/") or not facts.size_decimal
                or not all(is_decimal(i) for i in ids)
                or not re.fullmatch(r"\w+", region.name.text)):
            continue  # other rules report what is wrong
        canonical = (f"{prefix}{region.name.text}, {region.size.text}, "
                     f"{':'.join(ids)}")
        if ACRN_PATTERN.fullmatch(canonical):
            yield Finding(
                raw.loc,
                f"region string {quoted(raw.text)} does not match ACRN's "
                f"schema pattern (at most one space around each field)",
                f"write {quoted(canonical)} (acrn-shm lint --fix does it)",
                TextFix(raw.loc, raw.text, canonical, SAFE))
        else:
            yield Finding(
                raw.loc,
                f"region string {quoted(raw.text)} does not match ACRN's "
                f"schema pattern: VM ids must be single digits",
                "ACRN v2.x cannot validate regions of VMs with ids of 10 "
                "and more; renumber the VMs or upgrade to the v3 format")
