"""ISM207 region-name-chars: names use ASCII letters, digits and '_'.

What it does
    Checks that each region name is non-empty and made only of ASCII
    letters, digits and underscores.

Why it matters
    ACRN's schema pattern ``\\w`` is Unicode-aware in the validator it
    uses, so ``région`` passes there but takes more bytes than the C
    field allows; a ``-`` or a space is refused by ACRN only after the
    scenario was written. The name also becomes a file name under
    ``/dev/shm`` for device-model regions.

Example (fails)
    <NAME>shm-region-0</NAME>

Use instead (passes)
    <NAME>shm_region_0</NAME>
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM207"
NAME = "region-name-chars"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_]")


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per empty name or name with a disallowed character."""
    for region in scenario.regions:
        name = region.name
        if name is None or (region.malformed and not name.text):
            continue
        if not name.text:
            yield Finding(name.loc, "region name is empty",
                          "name the region, e.g. 'shm_region_0'")
            continue
        bad = _BAD_CHAR.search(name.text)
        if bad:
            yield Finding(
                name.loc,
                f"region name {quoted(name.text)} contains "
                f"{quoted(bad.group())}; "
                f"only ASCII letters, digits and '_' are allowed",
                f"e.g. {quoted(_BAD_CHAR.sub('_', name.text))}")
