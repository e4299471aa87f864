"""Generate valid, lint-clean ACRN v3 scenarios of a chosen size.

The benchmark needs scenarios with a known number of VMs and IVSHMEM
regions that are still *valid*, so that the time measured is the time
of a clean lint, not of error reporting. They are grown from a real
file, ACRN v3.3 ``whl-ipc-i5/shared.xml`` (a Service VM and six
post-launched VMs), and checked against its real board XML:

* VMs: the Service VM (id 0) is kept; then the post-launched VMs of the
  source in document order (``POST_STD_VM1`` with its GPU and audio
  passthrough, ``POST_RT_VM1``, ``POST_STD_VM2``..``POST_STD_VM5``); more
  VMs are clones of the first plain post-launched standard VM, renumbered
  (``id`` 7, 8, ... named ``POST_STD_VM6``, ``POST_STD_VM7``, ...) with
  their own virtio-net interface. Ids stay 0..N-1 and N never exceeds
  the scenario's ``MAX_VM_NUM`` (16).
* Board limits are respected: clones run on the pCPUs the standard VMs
  of the source already share (0 and 1; the real-time VM keeps 2 and 3
  to itself) and every pCPU id exists on the board; the post-launched
  VMs together get at most half of the board's RAM (each VM keeps its
  own size or the largest power of two of MB that fits its share,
  whichever is smaller), so the Service VM keeps the rest.
* vUART connections naming a VM that is not generated are dropped.
* Regions: region r is ``shm_region_<r>``, provided by the Hypervisor,
  ``2 ** (1 + r % 4)`` MB (2, 4, 8, 16, 2, ...: powers of two), with
  region id r (so that no VM has two of id 0, ISM216), and shared by
  *every* VM of the scenario (so the IVSHMEM section holds VMs x regions
  entries, the largest input for a given size). Each VM
  reaches region r at VBDF ``00:<08 + r>.0``: distinct per VM, inside
  ACRN's default pool 00:08.0-00:0f.0, in the post-launched range
  03..1e, and free of the board's native devices (checked). At most 8
  regions: ACRN's hypervisor holds 8 regions (``mem_regions[8]``).

:func:`generate` returns the XML text; :func:`write` writes one file;
:func:`write_grid` writes one file per (VMs, regions) pair. Running this
module writes a grid into a folder (``python bench/scenarios.py DIR``).
"""

from __future__ import annotations

import copy
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

PROJECT = Path(__file__).resolve().parent.parent
DATA = PROJECT.parent / "shared" / "acrn-data" / "v3.3"
SOURCE = DATA / "whl-ipc-i5" / "shared.xml"
BOARD = DATA / "whl-ipc-i5" / "whl-ipc-i5.xml"

MAX_REGIONS = 8
FIRST_VBDF_DEVICE = 0x08
VM_COUNTS = (2, 4, 8, 16)
REGION_COUNTS = (0, 1, 2, 4, 8)


class Generated(NamedTuple):
    """One generated scenario file and what it holds."""

    path: Path
    vms: int
    regions: int
    members: int  # IVSHMEM_VM entries: vms x regions


class BoardLimits(NamedTuple):
    """What the board offers: pCPU ids, RAM (MB), native bus-0 BDFs."""

    pcpus: frozenset[int]
    ram_mb: int
    native_bdfs: frozenset[str]


def board_limits(board: Path = BOARD) -> BoardLimits:
    """Read pCPU ids, total RAM and the native PCI BDFs of ``board``."""
    root = ET.parse(board).getroot()
    pcpus = frozenset(int(e.text, 0) for e in root.iter("cpu_id"))
    if not pcpus:
        # Older board XMLs: CPU_PROCESSOR_INFO is "0, 1, 2, 3".
        text = root.findtext("CPU_PROCESSOR_INFO") or ""
        pcpus = frozenset(int(n) for n in re.findall(r"\d+", text))
    mem = re.search(r"(\d+)\s*kB", root.findtext("TOTAL_MEM_INFO") or "")
    if not pcpus or mem is None:
        raise ValueError(f"{board}: no CPU or memory information")
    native = frozenset(re.findall(r"^\s*([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])",
                                  root.findtext("PCI_DEVICE") or "",
                                  re.MULTILINE))
    return BoardLimits(pcpus, int(mem.group(1)) // 1024, native)


def vbdf(region: int) -> str:
    """The VBDF at which every VM reaches region number ``region``."""
    return f"00:{FIRST_VBDF_DEVICE + region:02x}.0"


def generate(vms: int, regions: int, source: Path = SOURCE,
             board: Path = BOARD) -> str:
    """A v3 scenario with ``vms`` VMs and ``regions`` shared regions.

    Raises ValueError when the counts do not fit ACRN or the board.
    """
    root = ET.parse(source).getroot()
    limits = board_limits(board)
    max_vms = int(root.findtext("hv/CAPACITIES/MAX_VM_NUM") or 16)
    if not 2 <= vms <= max_vms:
        raise ValueError(f"vms must be 2..{max_vms}, not {vms}")
    if not 0 <= regions <= MAX_REGIONS:
        raise ValueError(f"regions must be 0..{MAX_REGIONS}, not {regions}")
    clash = {vbdf(r) for r in range(regions)} & limits.native_bdfs
    if clash:
        raise ValueError(f"{board}: VBDFs {sorted(clash)} are native")

    kept = _pick_vms(root, vms)
    for vm in root.findall("vm"):
        root.remove(vm)
    for vm in kept:
        root.append(vm)
    _check_pcpus(kept, limits)
    _fit_memory(kept, limits)
    names = {vm.findtext("name") for vm in kept}
    _drop_vuarts(root, names)
    _fill_ivshmem(root, [vm.findtext("name") for vm in kept], regions)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write(folder: Path, vms: int, regions: int, source: Path = SOURCE,
          board: Path = BOARD) -> Generated:
    """Write ``generate(vms, regions)`` to ``folder`` and describe it."""
    path = Path(folder) / f"scale_{vms:02d}vm_{regions}reg.xml"
    path.write_text(generate(vms, regions, source, board), encoding="utf-8")
    return Generated(path, vms, regions, vms * regions)


def write_grid(folder: Path, vm_counts=VM_COUNTS,
               region_counts=REGION_COUNTS, source: Path = SOURCE,
               board: Path = BOARD) -> list[Generated]:
    """One file per (VMs, regions) pair, in that order."""
    return [write(folder, v, r, source, board)
            for v in vm_counts for r in region_counts]


def _pick_vms(root: ET.Element, count: int) -> list[ET.Element]:
    vms = root.findall("vm")
    service = [vm for vm in vms
               if vm.findtext("load_order") == "SERVICE_VM"]
    posts = [vm for vm in vms
             if vm.findtext("load_order") == "POST_LAUNCHED_VM"]
    if len(service) != 1 or not posts:
        raise ValueError("the source needs one Service VM and "
                         "post-launched VMs")
    template = next(
        (vm for vm in posts if vm.findtext("vm_type") == "STANDARD_VM"
         and vm.find("pci_devs") is None
         and vm.findtext("os_type") != "Windows OS"), None)
    if template is None:
        raise ValueError("the source has no plain standard VM to clone")
    chosen = [copy.deepcopy(vm) for vm in service + posts][:count]
    taken = {vm.findtext("name") for vm in chosen}
    number = 0
    while len(chosen) < count:
        number += 1
        name = f"POST_STD_VM{number}"
        if name in taken:
            continue
        clone = copy.deepcopy(template)
        clone.find("name").text = name
        interface = clone.find("virtio_devices/network/interface_name")
        if interface is not None:
            interface.text = f"YaaG{len(chosen)}"
        chosen.append(clone)
        taken.add(name)
    for index, vm in enumerate(chosen):
        vm.set("id", str(index))
    return chosen


def _check_pcpus(vms: list[ET.Element], limits: BoardLimits) -> None:
    owned: dict[int, str] = {}
    for vm in vms:
        ids = {int(t) for t in _texts(vm, "cpu_affinity/pcpu/pcpu_id")}
        unknown = ids - limits.pcpus
        if unknown:
            raise ValueError(f"{vm.findtext('name')}: pCPUs "
                             f"{sorted(unknown)} are not on the board")
        if vm.findtext("vm_type") == "RTVM":
            for pcpu in ids:
                owned[pcpu] = vm.findtext("name")
    for vm in vms:
        if vm.findtext("vm_type") == "RTVM":
            continue
        for pcpu in _texts(vm, "cpu_affinity/pcpu/pcpu_id"):
            if int(pcpu) in owned:
                raise ValueError(f"{vm.findtext('name')} shares pCPU "
                                 f"{pcpu} with {owned[int(pcpu)]}")


def _fit_memory(vms: list[ET.Element], limits: BoardLimits) -> None:
    sized = [vm.find("memory/size") for vm in vms
             if vm.findtext("load_order") == "POST_LAUNCHED_VM"]
    sized = [element for element in sized if element is not None]
    if not sized:
        return
    share = limits.ram_mb // 2 // len(sized)
    cap = 1 << (share.bit_length() - 1) if share > 0 else 0
    if cap < 128:
        raise ValueError(f"{len(sized)} post-launched VMs do not fit "
                         f"{limits.ram_mb} MB of RAM")
    for element in sized:
        element.text = str(min(int(element.text), cap))


def _drop_vuarts(root: ET.Element, names: set[str]) -> None:
    parent = root.find("hv/vuart_connections")
    if parent is None:
        return
    for connection in parent.findall("vuart_connection"):
        if any(name not in names
               for name in _texts(connection, "endpoint/vm_name")):
            parent.remove(connection)


def _fill_ivshmem(root: ET.Element, names: list[str], regions: int) -> None:
    features = root.find("hv/FEATURES")
    ivshmem = features.find("IVSHMEM")
    if ivshmem is None:
        ivshmem = ET.SubElement(features, "IVSHMEM")
    ivshmem.clear()
    for number in range(regions):
        region = ET.SubElement(ivshmem, "IVSHMEM_REGION")
        ET.SubElement(region, "NAME").text = f"shm_region_{number}"
        ET.SubElement(region, "PROVIDED_BY").text = "Hypervisor"
        ET.SubElement(region, "IVSHMEM_SIZE").text = str(
            2 ** (1 + number % 4))
        ET.SubElement(region, "IVSHMEM_REGION_ID").text = str(number)
        members = ET.SubElement(region, "IVSHMEM_VMS")
        for name in names:
            member = ET.SubElement(members, "IVSHMEM_VM")
            ET.SubElement(member, "VM_NAME").text = name
            ET.SubElement(member, "VBDF").text = vbdf(number)


def _texts(element: ET.Element, path: str) -> list[str]:
    return [(e.text or "").strip() for e in element.findall(path)]


def main(argv: list[str]) -> int:
    """Write the default grid into the folder named by ``argv[0]``."""
    if len(argv) != 1:
        print("usage: python bench/scenarios.py DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    for item in write_grid(folder):
        print(f"{item.path}  {item.vms} VMs, {item.regions} regions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
