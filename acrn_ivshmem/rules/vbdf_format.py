"""ISM301 vbdf-format: a VBDF is written bb:dd.f.

What it does
    Checks that each ``VBDF`` of a region member and each ``vbdf`` of a
    PCI vUART endpoint matches ACRN's syntax: 1-2 hex digits of bus, a
    colon, 2 hex digits of device (00-1f), a dot, a function 0-7.

Why it matters
    ACRN v3.0 accepted any character in place of the dot, and ACRN's
    static allocator crashes on forms its schema allows; a VBDF that does
    not parse gets no device at all.

Example (fails)
    <VBDF>00:8.0</VBDF>

Use instead (passes)
    <VBDF>00:08.0</VBDF>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario, parse_vbdf
from ._vbdfs import vbdf_uses

CODE = "ISM301"
NAME = "vbdf-format"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per VBDF that does not parse."""
    for use in vbdf_uses(scenario):
        if parse_vbdf(use.vbdf.text) is None:
            yield Finding(
                use.vbdf.loc,
                f"{use.owner} VBDF {quoted(use.vbdf.text)} of VM "
                f"{quoted(use.vm_name)} is not of the form bb:dd.f (hex bus, "
                f"device 00-1f, function 0-7)",
                "write it like '00:08.0'")
