"""ISM215 namespaced-element: scenario elements have no XML namespace.

What it does
    Reports each element of a scenario that is in an XML namespace,
    through a prefix (``<x:IVSHMEM xmlns:x="...">``) or a default
    namespace declared on it or above it (``<FEATURES xmlns="...">``).
    Only the outermost such element is reported; what is inside it is
    in the namespace too.

Why it matters
    ACRN's elements have no namespace: ACRN's schema refuses an element
    in one, and acrn-shm, like ACRN's scripts, looks elements up by
    their plain name, so a namespaced ``IVSHMEM`` and its regions are
    invisible to every check and to every VM.

Example (fails)
    <FEATURES xmlns:acrn="https://projectacrn.org">
      <acrn:IVSHMEM>...</acrn:IVSHMEM>
    </FEATURES>

Use instead (passes)
    <FEATURES>
      <IVSHMEM>...</IVSHMEM>
    </FEATURES>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM215"
NAME = "namespaced-element"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each outermost element in a namespace."""
    for note in scenario.element_notes:
        if note.kind != "namespaced":
            continue
        plain = note.name.rpartition(":")[2]
        yield Finding(
            note.loc,
            f"<{note.name}> in <{note.parent}> is in XML namespace "
            f"'{note.namespace}'; ACRN's schema refuses it and acrn-shm "
            "does not read it",
            f"write <{plain}> without a prefix, and declare no default "
            "namespace (xmlns=...) on it or above it")
