"""ISM216 ambiguous-region-id: a VM's regions have different ids.

What it does
    Warns when two regions that share a VM end up with the same id and
    at least one of them has no ``IVSHMEM_REGION_ID`` (ACRN's default id
    is 0). It reports the region without one, the later one when
    neither has, at its start tag. ``--fix`` gives each reported region
    the lowest id no region has. Two explicit ids that
    are equal are ISM212; legacy (v2.x) scenarios have no region ids and
    are skipped.

Why it matters
    A guest tells its IVSHMEM devices apart by PCI subsystem id, which
    ACRN v3.3 takes from the region id. Two regions of one VM with id 0
    look alike there, and which one a program opens then depends on PCI
    slot order.

Example (warns)
    two regions shared by POST_STD_VM1, neither with an
    <IVSHMEM_REGION_ID>

Use instead (passes)
    <IVSHMEM_REGION_ID>1</IVSHMEM_REGION_ID> in the second region

Fix safety
    Safe: it only adds an id to a region that has none and never changes
    an id the file gives; the region that keeps id 0 is the first of its
    VM's regions, so a guest program that opens id 0 keeps finding the
    region it found first, and the others become ones it can tell apart.
    ACRN v3.0 to v3.2 do not know the element and reject a file that has
    it: for those, ignore this rule (``ignore = ["ISM216"]``) and do not
    add ids.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..diagnostics import SAFE, Finding, TextFix
from ..model.syntax import Board, Region, Scenario, lowest_free_id

CODE = "ISM216"
NAME = "ambiguous-region-id"
SEVERITY = "warning"
TARGET = "scenario"
NEEDS_BOARD = False


def check(scenario: Scenario, board: Board | None) -> Iterator[Finding]:
    """Yield a fixable finding per region without an id whose id 0 is
    also that of a region sharing a VM with it."""
    if scenario.is_legacy:
        return
    regions = [r for r in scenario.regions if r.id_number is not None]
    used = {region.id_number for region in regions}
    # Regions that keep id 0: explicit zeros, then those without an id
    # in document order, unless they clash with one kept before.
    zeros = [r for r in regions
             if r.region_id is not None and r.id_number == 0]
    for region in regions:
        if region.region_id is not None:
            continue
        mine = _vm_names(region)
        clashes = [(other, sorted(mine & _vm_names(other)))
                   for other in zeros]
        clashes = [(other, shared) for other, shared in clashes if shared]
        if not clashes:
            zeros.append(region)
            continue
        other, shared = min(clashes, key=lambda clash: clash[0].loc)
        number = lowest_free_id(used)
        used.add(number)
        element = f"<IVSHMEM_REGION_ID>{number}</IVSHMEM_REGION_ID>"
        yield Finding(
            region.loc,
            f"region {region.label} has no IVSHMEM_REGION_ID, so its id "
            f"is 0 like that of region {other.label} at line "
            f"{other.loc.line}; VM '{shared[0]}' has both and cannot tell "
            f"them apart",
            f"give it an id of its own, e.g. {element} (acrn-shm lint "
            f"--fix does it; ACRN v3.3 only)",
            TextFix(region.vms_loc, "<IVSHMEM_VMS",
                    f"{element}\n<IVSHMEM_VMS", SAFE)
            if region.vms_loc is not None else None)


def _vm_names(region: Region) -> set[str]:
    return {member.vm.text.strip() for member in region.members
            if member.vm is not None and member.vm.text.strip()}
