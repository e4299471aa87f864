"""ISM214 repeated-element: elements ACRN allows once appear once.

What it does
    Reports each later copy of an element that ACRN allows only once
    under its parent: a second ``NAME``, ``IVSHMEM_SIZE`` or
    ``PROVIDED_BY`` in a region, a second ``VM_NAME`` or ``VBDF`` in an
    ``IVSHMEM_VM``, a second ``IVSHMEM_ENABLED``, ``FEATURES`` or
    ``hv``, a VM's second ``name`` or ``load_order``, and so on across
    the scenario. Elements that may repeat (``IVSHMEM_REGION``,
    ``IVSHMEM_VM``, ``vm``, ...) are fine. A second ``IVSHMEM`` is
    ISM213's; an element that ISM001 already reports is not reported
    again.

Why it matters
    ACRN's schema refuses the file. Tools that read such a file anyway,
    acrn-shm among them, take the first copy and never look at the
    others, so a size or VM written in the second copy is silently
    ignored.

Example (fails)
    <IVSHMEM_REGION>
      <NAME>shm_region_0</NAME>
      <IVSHMEM_SIZE>2</IVSHMEM_SIZE>
      <IVSHMEM_SIZE>8</IVSHMEM_SIZE>
      ...

Use instead (passes)
    <IVSHMEM_REGION>
      <NAME>shm_region_0</NAME>
      <IVSHMEM_SIZE>8</IVSHMEM_SIZE>
      ...
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..model.syntax import Board, Scenario

CODE = "ISM214"
NAME = "repeated-element"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding at each later copy of a once-only element."""
    for note in scenario.element_notes:
        if note.kind != "repeated" or (note.name, note.parent) == (
                "IVSHMEM", "FEATURES"):
            continue
        yield Finding(
            note.loc,
            f"another <{note.name}> in <{note.parent}> (the first is at "
            f"line {note.first.line}); ACRN's schema allows one, and "
            "acrn-shm reads only the first",
            "keep one: merge the two, then delete this one")
