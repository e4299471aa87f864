"""Plan the acrn-dm parameters of one post-launched VM.

:func:`plan` turns a v3 :class:`~acrn_ivshmem.model.syntax.Scenario` (and, for
``add_cpus``, a board) into the ordered acrn-dm parameters that ACRN's
launch script generator (``misc/config_tools/launch_config/
launch_cfg_gen.py@v3.3``) would give the VM, with two differences:

* each IVSHMEM device takes its slot from **this VM's** VBDF in the
  region (ACRN takes the region's first VBDF), keeping a non-zero
  function as ``slot:func``; the region id is passed as the third option
  from ACRN v3.3 on;
* explicit slots (IVSHMEM, PCI vUARTs, a VGA passthrough on slot 2) are
  all reserved before automatic slots (3..29) are handed out, and a
  clash is reported as a :class:`SlotClash`, never renumbered;
* no text from an input is ever shell code: a parameter word is literal
  text, except for :class:`Ref` parts, plain ``${name}`` references to
  the variables the script's initialisation sets itself (``mac``, the
  ``dir_*`` folders of mounted partitions). Values that pass through a
  helper's output must be :data:`SHELL_WORD` words (the shell splits
  that output); ``customized_parameters`` words may hold anything
  printable (the script single-quotes them); anything else is refused
  (:class:`UnsafeValue`).

The plan is data: :mod:`acrn_ivshmem.emit.launch_script` renders it as
a script and the ISM501 rule reports its clashes.
"""

from __future__ import annotations

import re
import shlex

from ..errors import UsageError, located, quoted, shortened
from ..io.xmlio import Loc
from ..model.syntax import (
    REGION_NAME, VM_NAME, Board, DeviceModelSettings, Region, Scenario, Value,
    is_decimal, parse_vbdf,
)
from ..record import frozen

__all__ = ["DmParam", "Plan", "Ref", "SlotClash", "UnsafeValue", "Word",
           "plan", "vm_regions", "word_text"]

#: acrn-dm parses slots in decimal; 0 hostbridge, 1 LPC, 2 GPU and 31
#: (GPU LPC bridge) are never handed out automatically.
AUTO_SLOTS = tuple(range(3, 30))
OVMF = "/usr/share/acrn/bios/OVMF.fd"
_TAP = re.compile(r"[A-Za-z0-9_-]{1,15}")
#: Characters a shell word needs no quoting for. Values that pass
#: through a helper's output are split into words by the shell, so they
#: may only hold these.
SHELL_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
_BDF = re.compile(r"([0-9a-fA-F]{2}):([0-1][0-9a-fA-F])\.([0-7])")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: What the script's initialisation runs for a virtio-net device: the
#: first NIC's MAC address seeds the VM's (ACRN takes ``${mac:0:17}``).
MAC_INIT = ("mac=$(cat /sys/class/net/e*/address)", "mac=${mac:0:17}")


@frozen
class Ref:
    """``${name}`` in a parameter: a variable the script sets itself."""

    name: str

    def __post_init__(self):
        if not _VARIABLE.fullmatch(self.name):
            raise ValueError(f"not a shell variable name: {self.name!r}")


#: One word of a parameter: literal text, or a tuple of literal parts
#: and :class:`Ref` parts.
Word = str | tuple[str | Ref, ...]


def word_text(word: Word) -> str:
    """The word as acrn-dm sees it, a :class:`Ref` as ``${name}``."""
    if isinstance(word, str):
        return word
    return "".join(part if isinstance(part, str) else f"${{{part.name}}}"
                   for part in word)


@frozen
class DmParam:
    """One acrn-dm parameter line.

    ``helper`` is the script function that prints it (``add_cpus``,
    ``add_virtual_device``, ...), or None for plain ``words``; for a
    helper, ``words`` are its arguments. ``ivshmem`` marks IVSHMEM
    devices (for ``--ivshmem-args``).
    """

    words: tuple[Word, ...]
    helper: str | None = None
    ivshmem: bool = False

    def acrn_dm_args(self) -> tuple[str, ...]:
        """The acrn-dm arguments this line stands for (``-s`` form)."""
        if self.helper != "add_virtual_device":
            raise ValueError("only virtual devices have a raw form")
        return ("-s", ",".join(word_text(word) for word in self.words))


@frozen
class SlotClash:
    """Two devices on one slot, or a device on a reserved slot."""

    loc: Loc | None
    message: str
    hint: str


@frozen
class Plan:
    """The parameters of one VM's acrn-dm call and what the script needs.

    ``init`` are commands run before acrn-dm (``probe_modules``,
    ``mac=...``, partition mounts), ``deinit`` after it; ``cpu_table``
    lists (pCPU id, APIC id) of the VM's pCPUs.
    """

    vm_name: str
    vm_type: str
    scheduler: str
    own_pcpu: bool
    params: tuple[DmParam, ...]
    init: tuple[str, ...]
    deinit: tuple[str, ...]
    cpu_table: tuple[tuple[int, int], ...]
    clashes: tuple[SlotClash, ...]


def vm_regions(scenario: Scenario, vm_name: str
               ) -> list[tuple[Region, Value | None]]:
    """The regions that list ``vm_name``, with that VM's own VBDF.

    Device Model regions come first, then Hypervisor regions, each in
    document order (ACRN's order).
    """
    found = []
    members = scenario.members_of(vm_name)
    for land in ("dm", "hv"):
        last = None
        for region, member in members:
            if region.land == land and region is not last:
                found.append((region, member.vbdf))
                last = region
    return found


def settings_of(scenario: Scenario, vm_name: str) -> DeviceModelSettings:
    """The Device Model settings of post-launched VM ``vm_name``."""
    settings = scenario.settings_of(vm_name)
    if settings is not None:
        return settings
    names = ", ".join(name for name, _settings in scenario.dm_settings)
    raise UsageError(located(
        scenario.path, None, None,
        f"{quoted(vm_name)} is not a post-launched VM of the scenario; "
        f"post-launched VMs: {names or 'none'}"))


class UnsafeValue(UsageError):
    """A value :func:`plan` refuses to put in a launch script.

    ``str()`` names the scenario and the line of the value (``loc``
    when it is known, else the line of the VM's ``<vm>``); ``message``
    is the same without them, and ``text`` the text of the input that
    holds the value, for callers that know the files it came from (a
    converted legacy scenario's launch XML).
    """

    def __init__(self, message: str, loc: Loc | None = None,
                 text: str = "", path: str | None = None,
                 where: Loc | None = None):
        where = loc or where
        super().__init__(message if path is None or where is None
                         else located(path, where.line, where.column,
                                      message))
        self.message = message
        self.loc = loc
        self.text = text


def _refuse(vm_name: str, what: str, value: str, allowed: str,
            loc: Loc | None = None, text: str | None = None):
    raise UnsafeValue(
        f"VM {quoted(vm_name)}: {what} {quoted(value)} cannot be put in "
        f"a launch script safely: {allowed}", loc,
        value if text is None else text)


def _word(vm_name: str, what: str, value: str,
          text: str | None = None) -> str:
    """``value`` if it is a :data:`SHELL_WORD` (``text``: the input text
    that holds it, when that is more than the value)."""
    if not SHELL_WORD.fullmatch(value):
        _refuse(vm_name, what, value, "use letters, digits and "
                "_ @ % + = : , . / - only", text=text)
    return value


def _customized(vm_name: str, text: str) -> list[str]:
    """The words of ``customized_parameters``, split as the shell would
    split them; each reaches acrn-dm as it is (the script quotes it)."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        _refuse(vm_name, "customized_parameters", text,
                f"it cannot be split into words ({error})")
    for word in words:
        if not word.isprintable():
            _refuse(vm_name, "customized_parameters word", word,
                    "printable characters only (no control, format or "
                    "line separator character)", text=text)
    return words


class _Slots:
    """Explicit slots first, then automatic ones, as devices are added."""

    def __init__(self):
        self.taken: dict[tuple[int, int], str] = {}
        self.clashes: list[SlotClash] = []
        self.free = list(AUTO_SLOTS)

    def reserve(self, device: int, function: int, label: str,
                loc: Loc | None, allowed: tuple[int, ...] = ()):
        key = (device, function)
        if (device in (0, 1, 2) and device not in allowed) \
                or device > 31:
            self.clashes.append(SlotClash(
                loc, f"{label} wants slot {device}, which acrn-dm "
                "gives to the host bridge (0), the LPC bridge (1) or the "
                "GPU (2), or which does not exist (> 31)",
                "give it a VBDF with a device number from 03 to 1e"))
        elif key in self.taken:
            self.clashes.append(SlotClash(
                loc, f"{label} wants slot {slot_text(*key)}, which "
                f"{self.taken[key]} already has", "give each device of "
                "the VM its own VBDF device number"))
        else:
            self.taken[key] = label
        if device in self.free:
            self.free.remove(device)

    def auto(self, label: str) -> str:
        for device in self.free:
            if (device, 0) not in self.taken:
                self.free.remove(device)
                self.taken[(device, 0)] = label
                return str(device)
        self.clashes.append(SlotClash(
            None, f"no free slot is left for {label} (3..29 are all "
            "taken)", "remove a device from the VM"))
        return "?"


def _reserve_vbdf(slots: _Slots, vbdf: Value | None,
                  label: str) -> str | None:
    """Reserve the slot of a device's VBDF for ``label``; its slot text,
    or None without a readable VBDF."""
    bdf = parse_vbdf(vbdf.text) if vbdf is not None else None
    if bdf is None:
        return None
    slots.reserve(bdf.device, bdf.function, label, vbdf.loc)
    return slot_text(bdf.device, bdf.function)


def slot_text(device: int, function: int) -> str:
    """An acrn-dm slot as acrn-shm writes it: ``8``, or ``8:1``."""
    return str(device) if function == 0 else f"{device}:{function}"


def plan(scenario: Scenario, vm_name: str, board: Board | None = None,
         acrn_version: tuple[int, int] = (3, 3)) -> Plan:
    """Plan the acrn-dm parameters of post-launched VM ``vm_name``.

    Without a board there is no ``add_cpus`` (APIC ids come from the
    board). Values that would reach the script unsafely raise
    :class:`UnsafeValue` naming the file and the line of the value (or
    of the VM's ``<vm>``).
    """
    settings = settings_of(scenario, vm_name)
    try:
        return _plan(scenario, vm_name, settings, board, acrn_version)
    except UnsafeValue as exc:
        vm = scenario.vm_named(vm_name)
        raise UnsafeValue(exc.message, exc.loc, exc.text, scenario.path,
                          vm.loc if vm else scenario.root_loc) from None


def _plan(scenario: Scenario, vm_name: str, settings: DeviceModelSettings,
          board: Board | None, acrn_version: tuple[int, int]) -> Plan:
    if not VM_NAME.fullmatch(vm_name):
        _refuse(vm_name, "VM name", vm_name,
                "1-15 letters, digits, '_' or '-'")
    if vm_name.startswith("-"):
        # acrn-dm takes the VM name last, after its options.
        _refuse(vm_name, "VM name", vm_name,
                "acrn-dm would take a leading '-' for an option")
    _word(vm_name, "vm_type", settings.vm_type)
    if scenario.scheduler:
        _word(vm_name, "scheduler", scenario.scheduler)
    rt = settings.vm_type == "RTVM"
    regions = vm_regions(scenario, vm_name)
    slots = _Slots()
    vga = [dev for dev in settings.pci_devs if _is_vga(dev)]

    # Explicit slots, reserved before any automatic one.
    slots.reserve(0, 0, "the host bridge", None, (0,))
    if not rt:
        slots.reserve(1, 0, "the LPC bridge", None, (1,))
    ivshmem_slots = [
        _reserve_vbdf(slots, vbdf, f"IVSHMEM region {region.label}")
        for region, vbdf in regions]
    vuart_slots = [
        (index, _reserve_vbdf(slots, vbdf, f"PCI vUART {index}"))
        for index, vbdf in settings.pci_vuarts]
    if vga:
        slots.reserve(2, 0, "the VGA passthrough device", None, (2,))

    params: list[DmParam] = []
    init = ["probe_modules"]
    deinit: list[str] = []

    def plain(*words: str):
        params.append(DmParam(tuple(words)))

    def device(slot: str | None, kind: str, *options: Word,
               label: str = "", ivshmem: bool = False):
        chosen = slot if slot is not None else slots.auto(label or kind)
        params.append(DmParam((chosen, kind, *options),
                              "add_virtual_device", ivshmem))

    if settings.os_type == "Windows OS":
        plain("--windows")
    cpu_table = _cpu_table(settings, board, vm_name)
    if cpu_table:
        ids = (sorted(apic for _cpu, apic in cpu_table)
               if acrn_version >= (3, 0)
               else sorted(cpu for cpu, _apic in cpu_table))
        params.append(DmParam(tuple(str(i) for i in ids), "add_cpus"))
    memory = settings.memory_mb or "1024"
    if not is_decimal(memory):
        _refuse(vm_name, "memory size", memory, "a whole number of MB")
    plain("-m", f"{int(memory)}M")
    if scenario.ssram and rt:
        plain("--ssram")
    if settings.vbootloader:
        plain("--ovmf", OVMF)
    if not rt:
        device("1:0", "lpc")
    if settings.vuart0:
        plain("-l", "com1,stdio")
    device("0:0", "hostbridge")
    for (region, _vbdf), slot in zip(regions, ivshmem_slots):
        facts = scenario.resolved.region(region)
        name, size = region.name, region.size
        if name is None or not REGION_NAME.fullmatch(name.text):
            _refuse(vm_name, "region name",
                    name.text if name else "", "[A-Za-z0-9_]{1,27}",
                    name.loc if name else None)
        if facts.size_mb is None:
            _refuse(vm_name, f"size of region {region.label}",
                    size.text if size else "", "a whole number of MB",
                    size.loc if size else None)
        options = f"{region.land}:/{name.text},{facts.size_mb}"
        if acrn_version >= (3, 3) and facts.region_id_explicit:
            if facts.region_id is None:
                _refuse(vm_name, f"region id of {region.label}",
                        region.region_id.text, "0..65535",
                        region.region_id.loc)
            options += f",{facts.region_id}"
        device(slot, "ivshmem", options,
               label=f"IVSHMEM region {region.label}", ivshmem=True)
    if settings.console_vuart == "PCI":
        device(None, "uart", "vuart_idx:0", label="the PCI console vUART")
    for index, slot in vuart_slots:
        device(slot, "uart", f"vuart_idx:{index}",
               label=f"PCI vUART {index}")
    virtio: list[tuple[str, Word]] = []
    bus_ports = [_word(vm_name, "USB device", dev.split(" ")[0])
                 for dev in settings.usb_devs]
    if bus_ports:
        device(None, "xhci", ",".join(bus_ports))
    for backend_file, input_id in settings.inputs:
        _word(vm_name, "virtio input device", backend_file)
        options = backend_file + (
            f",id:{_word(vm_name, 'virtio input id', input_id)}"
            if input_id else "")
        virtio.append(("virtio-input", options))
    for console in settings.consoles:
        virtio.append(("virtio-console", _console(vm_name, console)))
    for framework, interface in settings.networks:
        if not _TAP.fullmatch(interface):
            _refuse(vm_name, "virtio network interface", interface,
                    "1-15 letters, digits, '_' or '-'")
        if interface.startswith("-"):
            # create_tap hands it to ip(8) as an argument.
            _refuse(vm_name, "virtio network interface", interface,
                    "ip would take a leading '-' for an option")
        options = f"tap={interface}"
        if framework == "Kernel based (Virtual Host)":
            options += ",vhost"
        if MAC_INIT[0] not in init:
            init.extend(MAC_INIT)
        virtio.append(("virtio-net", (f"{options},mac_seed=", Ref("mac"),
                                      f"-{vm_name}")))
    mounts: dict[str, str] = {}
    for block in settings.blocks:
        device_path, _colon, image = block.rpartition(":")
        if not device_path:
            virtio.append(("virtio-blk", _word(vm_name, "block", block)))
            continue
        _word(vm_name, "block device", device_path, block)
        if device_path.startswith("-"):
            # mount_partition hands it to mount(8) as its first argument.
            _refuse(vm_name, "block device", device_path,
                    "mount would take a leading '-' for an option",
                    text=block)
        _word(vm_name, "block image", image, block)
        variable = mounts.get(device_path)
        if variable is None:
            # Named after the last part of the path; '/' or '//' has none.
            last = device_path.rstrip("/").rsplit("/", 1)[-1]
            variable = "dir_" + (re.sub(r"[^A-Za-z0-9_]", "_", last)
                                 or "partition")
            base, number = variable, 2
            while variable in mounts.values():
                variable, number = f"{base}_{number}", number + 1
            mounts[device_path] = variable
            init.append(f"{variable}=$(mount_partition {device_path})")
            deinit.append(f'unmount_partition "${{{variable}}}"')
        virtio.append(("virtio-blk", (Ref(variable), f"/{image}")))
    if settings.gpu is not None:
        virtio.append(("virtio-gpu", _gpu(vm_name, settings.gpu)))
    for cid in settings.vsocks:
        if not is_decimal(cid):
            _refuse(vm_name, "vsock cid", cid, "a decimal number")
        virtio.append(("vhost-vsock", f"cid={cid}"))
    for index, (kind, options) in enumerate(virtio):
        if rt and index == 0:
            plain("--virtio_poll", "1000000")
        device(None, kind, *([options] if options else []))
    storm_monitor = False
    for text in settings.pci_devs:
        match = _BDF.match(text)
        if match is None:
            continue
        bdf = "0000:" + ":".join(match.group(1, 2)).lower() + \
            f".{match.group(3)}"
        if _is_vga(text):
            slot = "2"
        else:
            slot = slots.auto(f"passthrough device {bdf[5:]}")
        params.append(DmParam((slot, bdf), "add_passthrough_device"))
        if slot != "2" and not storm_monitor:
            params.append(DmParam(("10000", "10", "1", "100"),
                                  "add_interrupt_storm_monitor"))
            storm_monitor = True
    if rt:
        plain("--rtvm")
        if settings.lapic_passthrough:
            plain("--lapic_pt")
    params.append(DmParam(("console=4", "kmsg=3", "disk=5"),
                          "add_logger_settings"))
    if settings.customized_parameters:
        plain(*_customized(vm_name, settings.customized_parameters))
    plain(vm_name)
    return Plan(vm_name, settings.vm_type, scenario.scheduler or "",
                settings.own_pcpu, tuple(params), tuple(init),
                tuple(deinit), cpu_table, tuple(slots.clashes))


def _is_vga(text: str) -> bool:
    return "VGA compatible controller" in text


def _cpu_table(settings: DeviceModelSettings, board: Board | None,
               vm_name: str) -> tuple[tuple[int, int], ...]:
    if not settings.pcpus or board is None:
        return ()
    if not board.apic_ids:
        raise UnsafeValue(
            f"VM {quoted(vm_name)} is pinned to pCPUs "
            f"{', '.join(settings.pcpus)}: a board XML with "
            "processors/thread entries is needed for their APIC ids",
            text=settings.pcpus[0])
    apic_of = dict(board.apic_ids)
    table = []
    for text in sorted(set(settings.pcpus), key=lambda t: (len(t), t)):
        if not is_decimal(text) or int(text) not in apic_of:
            raise UnsafeValue(
                f"VM {quoted(vm_name)} is pinned to pCPU {quoted(text)}, "
                f"which board {board.path} does not have", text=text)
        table.append((int(text), apic_of[int(text)]))
    return tuple(table)


def _console(vm_name: str, console) -> str:
    at = "@" if console.use_type == "Virtio console" else ""
    backend = console.backend or "stdio"
    if backend in ("stdio", "pty"):
        return f"{at}{backend}:{backend}_port"
    path = _word(vm_name, f"{shortened(backend)} console path",
                 console.path or "")
    if backend == "file":
        return f"{at}file:file_port={path}"
    if backend == "tty":
        return f"{at}tty:tty_port={path}"
    if backend in ("sock server", "sock client"):
        port = path.rsplit("/", 1)[-1].split(".")[0]
        return f"socket:{port}={path}:{backend[5:]}"
    _refuse(vm_name, "virtio console backend", backend,
            "stdio, pty, file, tty, sock server or sock client")
    return ""


def _gpu(vm_name: str, gpu) -> str:
    display_type, displays = gpu
    params = []
    for display in displays:
        if display_type == "Window":
            params.append(
                f"geometry={display.resolution}+"
                f"{display.horizontal_offset}+{display.vertical_offset}")
        elif display_type == "Full screen":
            params.append(f"geometry=fullscreen:{display.monitor_id}")
    if not params:
        return ""
    return _word(vm_name, "virtio GPU display", ",".join(params))
