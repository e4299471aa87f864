"""ISM003 unknown-element: every element is one ACRN knows there.

What it does
    Reports each element of a scenario whose name no ACRN version of the
    file's format knows under its parent: a misspelt ``<IVSHMEN>`` or
    ``<ivshmem>`` under ``FEATURES``, an invented ``<SIZE>`` in a v3
    region, a stray element anywhere in ``hv`` or a ``vm``. The names
    are those of ACRN's schemas and shipped scenarios (v2.2 to v2.7 for
    legacy files, v3.0 to v3.3 for v3 files). Nothing inside such an
    element is checked. An element that ISM001 already reports is not
    reported again.

Why it matters
    ACRN's schema declares every element of a scenario and refuses the
    file when it meets one it does not know (v2.2 and v2.3, which had no
    schema, ignore it). acrn-shm reads elements by their exact name too,
    so the regions of a misspelt ``IVSHMEM`` are checked by no rule and
    used by no VM: the file looked clean while sharing nothing.

Example (fails)
    <FEATURES>
      <IVSHMEN>
        <IVSHMEM_REGION>...</IVSHMEM_REGION>
      </IVSHMEN>
    </FEATURES>

Use instead (passes)
    <FEATURES>
      <IVSHMEM>
        <IVSHMEM_REGION>...</IVSHMEM_REGION>
      </IVSHMEM>
    </FEATURES>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM003"
NAME = "unknown-element"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each element ACRN does not know there."""
    version = "v2.x" if scenario.is_legacy else "v3.x"
    for note in scenario.element_notes:
        if note.kind != "unknown":
            continue
        hint = (f"did you mean <{note.suggestion}>?" if note.suggestion
                else "remove it, or correct its name")
        yield Finding(
            note.loc,
            f"<{note.name}> is no element ACRN {version} knows in "
            f"<{note.parent}>; ACRN's schema refuses it and acrn-shm does "
            "not read it",
            hint)
