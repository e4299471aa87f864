"""ISM208 region-name-length: 'hv:/' + name fits ACRN's 32-byte field.

What it does
    Checks that the region name, with its 4-byte ``hv:/`` or ``dm:/``
    prefix and the terminating NUL, fits the 32-byte name field of the
    hypervisor and acrn-dm: at most 27 bytes of name.

Why it matters
    ACRN v2.x counted the prefix but not the NUL (it allowed 28
    characters); a longer name is cut or refused when the VM starts.

Example (fails)
    <NAME>inter_vm_shared_memory_region_0</NAME>    (31 characters)

Use instead (passes)
    <NAME>inter_vm_shm_region_0</NAME>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM208"
NAME = "region-name-length"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False
FIELD_BYTES = 32
PREFIX_BYTES = len("hv:/")


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per name longer than the field allows."""
    limit = FIELD_BYTES - PREFIX_BYTES - 1
    for region in scenario.regions:
        name = region.name
        if name is None or not name.text:
            continue
        size = len(name.text.encode("utf-8"))
        if size > limit:
            yield Finding(
                name.loc,
                f"region name {quoted(name.text)} is {size} bytes; with "
                "'hv:/' "
                f"and the final NUL it needs {size + PREFIX_BYTES + 1} of "
                f"ACRN's {FIELD_BYTES}-byte field (names up to {limit} "
                f"bytes)",
                f"shorten it to at most {limit} characters")
