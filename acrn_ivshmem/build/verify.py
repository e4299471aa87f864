"""Check what make built: the images exist, and the generated
``ivshmem_cfg.h`` lists exactly the scenario's hypervisor-provided
regions, sizes and (ACRN 3.3) region ids (:class:`IvshmemMismatch`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import AcrnShmError, quoted
from .plan import BuildPlan, ShmRegion, read_text

#: The images a successful hypervisor build leaves in ``<out>/hypervisor``.
ARTEFACTS = ("acrn.bin", "acrn.32.out")



class ArtefactError(AcrnShmError):
    """make succeeded, but an image or the generated config is missing."""


class IvshmemMismatch(AcrnShmError):
    """The generated ``ivshmem_cfg.h`` differs from the scenario;
    ``differences`` has one line per difference."""

    def __init__(self, header: str, scenario: str,
                 differences: tuple[str, ...]):
        super().__init__(f"{header}: the generated IVSHMEM configuration "
                         f"differs from {scenario}: "
                         + "; ".join(differences))
        self.differences = differences


@dataclass(frozen=True)
class Artefact:
    """A built image: file name, absolute path and size in bytes."""

    name: str
    path: str
    size: int


def list_artefacts(plan: BuildPlan) -> tuple[Artefact, ...]:
    """The images in ``<out>/hypervisor``; raise :class:`ArtefactError`
    when one is missing."""
    artefacts = []
    for name in ARTEFACTS:
        path = os.path.join(plan.hv_dir, name)
        if not os.path.isfile(path):
            raise ArtefactError(f"{path}: missing although make succeeded")
        artefacts.append(Artefact(name, path, os.path.getsize(path)))
    return tuple(artefacts)


def ivshmem_header_path(plan: BuildPlan) -> str:
    """Where the build generated ``ivshmem_cfg.h``.

    ACRN 2.4 and later: ``configs/scenarios/<scenario>/``; 2.2-2.3 (with
    ``TARGET_DIR``): ``configs/scenarios/<scenario>/<board>/``.
    """
    folder = os.path.join(plan.hv_dir, "configs", "scenarios",
                          plan.scenario_name)
    for candidate in (os.path.join(folder, "ivshmem_cfg.h"),
                      os.path.join(folder, plan.board_name,
                                   "ivshmem_cfg.h")):
        if os.path.isfile(candidate):
            return candidate
    raise ArtefactError(f"{folder}: no ivshmem_cfg.h although make "
                        "succeeded")


_NAME_MACRO = re.compile(r'^\s*#define\s+(IVSHMEM_SHM_REGION_\d+)\s+"([^"]*)"',
                         re.M)
_REGIONS_MACRO = re.compile(r"^\s*#define\s+IVSHMEM_SHM_REGIONS\b(.*)$",
                            re.M)
_FIELD = re.compile(r'\.(name|size|region_id)\s*=\s*("[^"]*"|\w+)')


def parse_ivshmem_header(text: str) -> tuple[ShmRegion, ...]:
    """The regions of ``IVSHMEM_SHM_REGIONS`` in a generated header.

    Reads both the ACRN 2.x and 3.x layouts; no macro means no region.
    """
    names = dict(_NAME_MACRO.findall(text))
    match = _REGIONS_MACRO.search(text)
    if match is None:
        return ()
    body_lines = [match.group(1)]
    rest = text[match.end():].splitlines()[1:]
    previous = match.group(1)
    for line in rest:
        if not previous.rstrip().endswith("\\"):
            break
        body_lines.append(line)
        previous = line
    body = re.sub(r"/\*.*?\*/", "", "\n".join(body_lines), flags=re.S)
    regions = []
    for block in re.findall(r"\{(.*?)\}", body, re.S):
        fields = dict(_FIELD.findall(block))
        name = fields.get("name", "")
        name = name.strip('"') if name.startswith('"') else names.get(
            name, name)
        size = re.sub(r"[uUlL]+$", "", fields.get("size", "0"))
        region_id = fields.get("region_id")
        regions.append(ShmRegion(
            name, int(size, 0),
            int(region_id, 0) if region_id is not None else None))
    return tuple(regions)


def compare_regions(generated: tuple[ShmRegion, ...],
                    expected: tuple[ShmRegion, ...]) -> tuple[str, ...]:
    """What differs between the header's regions and the scenario's,
    one message per difference (names and sizes; region ids where the
    header has them)."""
    built = {region.name: region for region in generated}
    wanted = {region.name: region for region in expected}
    differences = []
    for name, region in wanted.items():
        got = built.get(name)
        if got is None:
            differences.append(f"{quoted(name)} ({region.size_text}) is "
                               "missing")
            continue
        if got.size != region.size:
            differences.append(f"{quoted(name)} is {got.size_text}, not "
                               f"{region.size_text}")
        if got.region_id is not None and got.region_id != region.region_id:
            differences.append(f"{quoted(name)} has region id "
                               f"{got.region_id}, "
                               f"not {region.region_id}")
    for name, region in built.items():
        if name not in wanted:
            differences.append(f"{quoted(name)} ({region.size_text}) is not a "
                               "hypervisor-provided region of the scenario")
    return tuple(differences)


def check_ivshmem_config(plan: BuildPlan) -> tuple[str, tuple[ShmRegion,
                                                              ...]]:
    """The header's path and regions, when they match the scenario;
    else raise :class:`IvshmemMismatch`."""
    header = ivshmem_header_path(plan)
    generated = parse_ivshmem_header(read_text(header))
    differences = compare_regions(generated, plan.expected_regions)
    if differences:
        raise IvshmemMismatch(header, plan.request.scenario, differences)
    return header, generated
