"""Where each end of a channel is: a scenario's regions, VM by VM.

:func:`plan_channels` lists, for every VM that shares an IVSHMEM region
of a scenario (legacy v2.x or v3), the region's name and size, which
channel peer the VM is (its place among the region's VMs: the first is
peer 0, the second peer 1) and how the VM reaches the region:

* under ACRN: its VBDF, and for a post-launched VM the acrn-dm device
  (``-s 8,ivshmem,hv:/shm_region_0,2``) exactly as ``acrn-shm
  launch-script`` writes it (the launch planner,
  :mod:`acrn_ivshmem.launch_plan`); pre-launched VMs and the Service VM
  get the device from the hypervisor at that VBDF;
* under QEMU: the backing file and PCI address ``acrn-shm qemu-args``
  gives the VM (the QEMU planner, :mod:`acrn_ivshmem.qemu`).

So a channel's two ends come from the same source as the launch
scripts and the QEMU command lines. A legacy scenario is converted to
v3 in memory first (with its launch XMLs, as ``launch-script`` does).
This is configuration side: the channel runtime never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import quoted
from ..upgrade.launch_inputs import load_for_launch
from ..plan.acrn_dm import plan as plan_launch
from ..plan.acrn_dm import word_text
from ..lint.config import LintConfig
from ..lint.engine import Linter
from ..model.syntax import Bdf, Scenario, VmKind
from ..plan.qemu import DEFAULT_SHM_DIR, QemuPlan, plan_for_vm

__all__ = ["ChannelEnd", "ChannelPlan", "PlannedRegion", "plan_channels"]

_PROVIDERS = {"hv": "Hypervisor", "dm": "Device Model"}


@dataclass(frozen=True)
class ChannelEnd:
    """One VM of a region.

    ``peer``: the channel peer (0, 1; None for a third VM and after:
    a channel has two peers). ``vbdf``: the device's address in the VM
    under ACRN (``bb:dd.f``). ``acrn_dm``: the acrn-dm arguments of a
    post-launched VM's device (None: the hypervisor creates it).
    ``qemu_file`` and ``qemu_addr``: the backing file and ``addr=`` of
    the VM's ivshmem-plain device under QEMU.
    """

    vm: str
    kind: str
    peer: int | None
    vbdf: str
    acrn_dm: tuple[str, ...] | None
    qemu_file: str
    qemu_addr: str

    def as_dict(self) -> dict:
        """The JSON form."""
        return {"vm": self.vm, "kind": self.kind, "peer": self.peer,
                "vbdf": self.vbdf,
                "acrn_dm": list(self.acrn_dm) if self.acrn_dm else None,
                "qemu": {"mem_path": self.qemu_file,
                         "addr": self.qemu_addr}}


@dataclass(frozen=True)
class PlannedRegion:
    """A region and its VMs, in the scenario's order."""

    name: str
    size_mb: int | None
    provider: str
    region_id: int | None
    ends: tuple[ChannelEnd, ...]

    def as_dict(self) -> dict:
        """The JSON form."""
        return {"name": self.name, "size_mb": self.size_mb,
                "provider": self.provider, "region_id": self.region_id,
                "vms": [end.as_dict() for end in self.ends]}


@dataclass(frozen=True)
class ChannelPlan:
    """Every shared region of a scenario; ``notes`` are one-line
    remarks (a third VM in a region, a VBDF on a native device)."""

    scenario: str
    legacy: bool
    regions: tuple[PlannedRegion, ...]
    notes: tuple[str, ...]

    def as_dict(self) -> dict:
        """The JSON form (``acrn-shm channel plan -f json``)."""
        return {"scenario": self.scenario,
                "format": "v2" if self.legacy else "v3",
                "regions": [region.as_dict() for region in self.regions],
                "notes": list(self.notes)}


def plan_channels(scenario_path: str, board_path: str | None = None,
                  launch_paths: Sequence[str] = (),
                  shm_dir: str = DEFAULT_SHM_DIR,
                  acrn_version: tuple[int, int] = (3, 3),
                  config: LintConfig | None = None) -> ChannelPlan:
    """Plan the channel ends of every region of the scenario at
    ``scenario_path``.

    ``board_path`` (optional) is checked to be a board, and a Service
    VM VBDF on one of its native devices is noted; ``launch_paths`` are
    a legacy scenario's launch XMLs; ``shm_dir`` the folder of QEMU's
    backing files; ``acrn_version`` decides whether acrn-dm gets the
    region id; ``config`` what a legacy scenario's conversion is checked
    with (default: every rule at its own severity). Raises
    :class:`~acrn_ivshmem.errors.AcrnShmError` (one line naming the
    file) for files that cannot be read or planned.
    """
    linter = Linter(config)
    inputs = load_for_launch(scenario_path, board_path, launch_paths, linter)
    scenario = inputs.scenario
    notes: list[str] = []
    original = linter.load(scenario_path).model
    if inputs.legacy and original.regions and not scenario.regions:
        enabled = original.ivshmem_enabled
        notes.append(
            f"IVSHMEM_ENABLED is "
            f"{quoted(enabled.text) if enabled is not None else 'missing'}"
            ", so ACRN v2.x ignores every IVSHMEM_REGION")
    qemu_plans: dict[str, QemuPlan] = {}
    dm_args: dict[str, dict[str, tuple[str, ...]]] = {}
    regions = []
    for region in scenario.regions:
        name = region.name.text if region.name is not None else ""
        ends = []
        facts = scenario.resolved.region(region)
        members = [member for member in facts.members
                   if member.syntax.vm is not None]
        for index, member in enumerate(members):
            ref = member.syntax.vm.text
            vm = scenario.vm_for(ref)
            vm_name = vm.name if vm is not None and vm.name else ref.strip()
            kind = vm.kind if vm is not None else VmKind.UNKNOWN
            if vm_name not in qemu_plans:
                qemu_plans[vm_name] = plan_for_vm(scenario, vm_name, shm_dir)
            device = next(device for device in qemu_plans[vm_name].devices
                          if device.name == name)
            # ACRN's default (the QEMU planner's choice) when none is given
            bdf = member.vbdf or Bdf(0, device.slot or 0, device.function)
            acrn_dm = None
            if kind is VmKind.POST_LAUNCHED:
                if vm_name not in dm_args:
                    dm_args[vm_name] = _ivshmem_args(
                        scenario, vm_name, inputs.board, acrn_version)
                acrn_dm = dm_args[vm_name].get(name)
            elif region.land == "dm":
                notes.append(
                    f"{name}: VM {quoted(vm_name)} is {kind.value}; a "
                    "Device Model region reaches post-launched VMs only")
            if (inputs.board is not None and kind is VmKind.SERVICE
                    and bdf in inputs.board.native_bdfs):
                notes.append(
                    f"{name}: VBDF {bdf} of the Service VM is a native "
                    "device of the board (ISM304)")
            ends.append(ChannelEnd(
                vm_name, kind.value, index if index < 2 else None,
                str(bdf), acrn_dm, device.mem_path or "",
                device.addr or ""))
        if len(members) > 2:
            extra = ", ".join(end.vm for end in ends[2:])
            notes.append(f"{name}: a channel has two peers; {extra} "
                         "share the region but not its channel")
        regions.append(PlannedRegion(
            name, facts.size_mb,
            _PROVIDERS.get(facts.provider, "") if facts.provider else (
                region.provider.text),
            facts.region_id if facts.region_id_explicit else None,
            tuple(ends)))
    return ChannelPlan(scenario_path, inputs.legacy, tuple(regions),
                       tuple(notes))


def _ivshmem_args(scenario: Scenario, vm_name: str, board,
                  acrn_version: tuple[int, int]
                  ) -> dict[str, tuple[str, ...]]:
    """The acrn-dm arguments of each ivshmem device of a post-launched
    VM, by region name, from the launch planner."""
    found = {}
    for param in plan_launch(scenario, vm_name, board, acrn_version).params:
        if param.ivshmem:
            options = word_text(param.words[2])
            name = options.split(":/", 1)[1].split(",", 1)[0]
            found[name] = param.acrn_dm_args()
    return found
