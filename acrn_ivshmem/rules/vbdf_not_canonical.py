"""ISM306 vbdf-not-canonical: VBDFs are written like '00:0a.0'.

What it does
    Warns when a VBDF that parses is not written in the canonical form
    ACRN's own tools produce: two lowercase hex digits of bus, two of
    device, one function digit. ``--fix`` rewrites it.

Why it matters
    ACRN compares VBDFs as text: its duplicate check misses ``00:0A.0``
    against ``00:0a.0``, its range check lets the upper-case ``00:1F.0``
    through, and its static allocator only parses the lowercase
    two-digit form, so ``0:0A.0`` in a Service VM region crashes the
    build with a Python traceback.

Example (warns)
    <VBDF>0:0A.0</VBDF>

Use instead (passes)
    <VBDF>00:0a.0</VBDF>

Fix safety
    Safe: the value means the same PCI address.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import SAFE, Finding, TextFix
from ..errors import quoted
from ..model.syntax import Board, Scenario, parse_vbdf
from ._vbdfs import vbdf_uses

CODE = "ISM306"
NAME = "vbdf-not-canonical"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a fixable finding per VBDF not in canonical spelling."""
    for use in vbdf_uses(scenario):
        bdf = parse_vbdf(use.vbdf.text)
        if bdf is None or str(bdf) == use.vbdf.text:
            continue
        yield Finding(
            use.vbdf.loc,
            f"{use.owner} VBDF {quoted(use.vbdf.text)} of VM "
            f"{quoted(use.vm_name)} is "
            f"not written as ACRN writes it: {quoted(bdf)}",
            f"write {quoted(bdf)} (acrn-shm lint --fix does it)",
            TextFix(use.vbdf.loc, use.vbdf.text, str(bdf), SAFE))
