"""ISM209 provided-by: PROVIDED_BY is 'Hypervisor' or 'Device Model'.

What it does
    Checks that ``PROVIDED_BY`` of a v3 region is exactly ``Hypervisor``
    or ``Device Model`` (case and spacing matter). When the element is
    absent ACRN assumes ``Hypervisor``.

Why it matters
    ACRN's launch-script generator matches the exact text: with
    ``Device model`` a region silently vanished from every launch script.

Example (fails)
    <PROVIDED_BY>Device model</PROVIDED_BY>

Use instead (passes)
    <PROVIDED_BY>Device Model</PROVIDED_BY>
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import Finding
from ..errors import quoted
from ..model.syntax import Board, Scenario

CODE = "ISM209"
NAME = "provided-by"
SEVERITY = "error"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a finding per v3 region with another PROVIDED_BY text."""
    if scenario.is_legacy:
        return
    for region in scenario.regions:
        provider = region.provider
        if provider is None:
            continue
        if provider.text not in ("Hypervisor", "Device Model"):
            close = {"hypervisor": "Hypervisor",
                     "devicemodel": "Device Model"}.get(
                "".join(provider.text.split()).lower())
            yield Finding(
                provider.loc,
                f"region {region.label} PROVIDED_BY {quoted(provider.text)} "
                f"is not 'Hypervisor' or 'Device Model'",
                f"write {quoted(close)}" if close else
                "use 'Hypervisor' or 'Device Model'")
