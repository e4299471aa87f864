"""ISM401 launch-shm-region-format: launch XML regions read hv:/name,MB.

What it does
    Checks each non-empty ``shm_region`` of a v2.x launch XML: a
    ``hv:/`` or ``dm:/`` prefix, a name of ASCII letters, digits and
    '_', one comma, a decimal size in MB, and no spaces.

Why it matters
    ACRN v2.x compares the text with the scenario's regions character by
    character, so a space or a size in bytes (as some ACRN samples show,
    ``hv:/shm_region_0,2097152``) is refused with a vague message.

Example (fails)
    <shm_region>hv:/shm_region_0, 2097152</shm_region>

Use instead (passes)
    <shm_region>hv:/shm_region_0,2</shm_region>
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import LaunchConfig, Scenario
from ..units import MIB

CODE = "ISM401"
NAME = "launch-shm-region-format"
SEVERITY = "error"
TARGET = "launch"
NEEDS_BOARD = False
PATTERN = re.compile(r"(hv|dm):/[A-Za-z0-9_]{1,27},([0-9]+)")
SIZES = tuple(2 ** power for power in range(1, 10))


def check(launch: LaunchConfig,
          scenario: Scenario | None) -> Iterator[Finding]:
    """Yield a finding per malformed ``shm_region`` value."""
    for vm in launch.vms:
        for value in vm.shm_regions:
            match = PATTERN.fullmatch(value.text)
            if not match:
                yield Finding(
                    value.loc,
                    f"shm_region {quoted(value.text)} is not of the form "
                    f"'hv:/NAME,MB' or 'dm:/NAME,MB' (no spaces, size in "
                    f"decimal MB)",
                    "write it like 'hv:/shm_region_0,2'")
            elif int(match.group(2)) not in SIZES:
                size = int(match.group(2))
                hint = "use a power of two from 2 to 512 (MB)"
                if size >= MIB and size % MIB == 0:
                    hint = (f"{quoted(size)} looks like bytes; write "
                            f"{quoted(size >> 20)} (MB)")
                yield Finding(
                    value.loc,
                    f"shm_region {quoted(value.text)} size {quoted(size)} is "
                    f"not a power of two from 2 to 512 (MB)", hint)
