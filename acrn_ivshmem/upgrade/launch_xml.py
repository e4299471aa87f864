"""Convert the settings of one v2.x launch XML VM to v3 ``<vm>`` settings.

ACRN v2.x kept a post-launched VM's Device Model settings in a launch
XML (``<user_vm>``, ``<uos>`` before v2.7); v3 keeps them in the
scenario's ``<vm>``. :func:`convert_launch_vm` reads one such element
and returns what it adds to the v3 VM, following what ACRN's own
upgrader converts (``misc/config_tools/scenario_config/upgrader.py``):

==================================  ======================================
launch XML                          v3 ``<vm>``
==================================  ======================================
``mem_size`` (MB)                   ``memory/size``
``user_vm_type``                    ``os_type`` (``WINDOWS`` -> Windows OS)
``rtos_type`` Soft RT / Hard RT     ``vm_type`` RTVM (+ ``lapic_passthrough``
                                    for Hard RT)
``vbootloader`` ovmf / Enable       ``vbootloader`` y (no / Disable -> n)
``vuart0`` Enable / Disable         ``vuart0`` y / n
``enable_ptm``                      ``PTM``
``cpu_affinity/pcpu_id``            ``cpu_affinity/pcpu/pcpu_id``
``passthrough_devices/*``,          ``pci_devs/pci_dev``
``sriov/*``
``console_vuart`` Enable            ``console_vuart`` PCI
``virtio_devices/network``          ``virtio_devices/network``
``tap[,vhost]``                     (``interface_name``, vhost framework)
``virtio_devices/block``            ``virtio_devices/block``
``virtio_devices/console``          ``virtio_devices/console``
``[@]stdio|pty|tty|file:port[=p]``  (``use_type``, ``backend_type``, path)
==================================  ======================================

Everything else that carries a value is refused, with the reason, so
that the caller can stop and name it: ``poweroff_channel``,
``allow_trigger_s5`` ``y``, ``usb_xhci``, ``communication_vuarts``,
virtio input and GPU devices, socket consoles, a MAC address on a
network device, values outside the lists above and unknown elements.
ACRN's upgrader drops several of these with a log line; acrn-shm does
not drop a setting silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from ..errors import quoted
from ..model.syntax import is_decimal

__all__ = ["LaunchSettings", "convert_launch_vm"]

_SKIPPED = ("vm_name", "shm_regions")
_ENABLE = {"Enable": "y", "Disable": "n"}
_BOOTLOADER = {"ovmf": "y", "Enable": "y", "no": "n", "Disable": "n"}
_TAP = re.compile(r"[A-Za-z0-9_-]+")
_CONSOLE = re.compile(
    r"(?P<at>@?)(?P<backend>stdio|pty|tty|file|sock)"
    r"(?::(?P<port>[^=,]+))?(?:=(?P<path>[^,]+))?")
_CONSOLE_PATH = {"tty": "tty_device_path", "file": "output_file_path"}
_VHOST = "Kernel based (Virtual Host)"


@dataclass
class LaunchSettings:
    """What one launch XML VM adds to (or changes in) its v3 ``<vm>``.

    ``elements`` are complete v3 elements (``memory``, ``os_type``,
    ``vbootloader``, ``vuart0``, ``PTM``, ``virtio_devices``) that
    replace any element of the same tag; ``pci_devs`` are appended to
    the scenario's own; ``refusals`` pair a launch element with why it
    cannot be converted.
    """

    rt: bool = False
    lapic_passthrough: bool = False
    pcpu_ids: list[str] = field(default_factory=list)
    pci_devs: list[str] = field(default_factory=list)
    pci_console: bool = False
    elements: list[etree._Element] = field(default_factory=list)
    refusals: list[tuple[etree._Element, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the launch VM carries no setting at all."""
        return not (self.rt or self.pcpu_ids or self.pci_devs
                    or self.pci_console or self.elements or self.refusals)


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _leaf(tag: str, text: str) -> etree._Element:
    element = etree.Element(tag)
    element.text = text
    return element


def convert_launch_vm(element: etree._Element) -> LaunchSettings:
    """Convert one ``<user_vm>``/``<uos>`` element (see module doc)."""
    settings = LaunchSettings()
    for child in element:
        if not isinstance(child.tag, str) or child.tag in _SKIPPED:
            continue
        handler = _HANDLERS.get(child.tag)
        if handler is not None:
            handler(settings, child)
        elif any(_text(node) for node in child.iter()):
            settings.refusals.append(
                (child, "not a launch setting acrn-shm converts"))
    return settings


def _choice(tag: str, table: dict[str, str]):
    def handle(settings: LaunchSettings, child: etree._Element):
        text = _text(child)
        if not text:
            return
        if text not in table:
            allowed = ", ".join(quoted(key) for key in table)
            settings.refusals.append(
                (child, f"{quoted(text)} is not one of {allowed}"))
            return
        settings.elements.append(_leaf(tag, table[text]))
    return handle


def _user_vm_type(settings: LaunchSettings, child: etree._Element):
    text = _text(child)
    if text:
        settings.elements.append(_leaf(
            "os_type",
            "Windows OS" if text == "WINDOWS" else "Non-Windows OS"))


def _rtos_type(settings: LaunchSettings, child: etree._Element):
    text = _text(child)
    if text in ("", "no"):
        return
    if text not in ("Soft RT", "Hard RT"):
        settings.refusals.append(
            (child, f"{quoted(text)} is not 'no', 'Soft RT' or 'Hard RT'"))
        return
    settings.rt = True
    settings.lapic_passthrough = text == "Hard RT"


def _mem_size(settings: LaunchSettings, child: etree._Element):
    text = _text(child)
    if not text:
        return
    if not is_decimal(text) or int(text) == 0:
        settings.refusals.append(
            (child, f"{quoted(text)} is not a whole number of MB"))
        return
    memory = etree.Element("memory")
    memory.append(_leaf("size", str(int(text))))
    settings.elements.append(memory)


def _cpu_affinity(settings: LaunchSettings, child: etree._Element):
    for pcpu in child:
        text = _text(pcpu)
        if not text:
            continue
        if pcpu.tag != "pcpu_id" or not is_decimal(text):
            settings.refusals.append(
                (pcpu, f"{quoted(text)} is not a pCPU id"))
            continue
        settings.pcpu_ids.append(text)


def _devices(settings: LaunchSettings, child: etree._Element):
    for device in child:
        text = _text(device)
        if text:
            settings.pci_devs.append(text)


def _console_vuart(settings: LaunchSettings, child: etree._Element):
    text = _text(child)
    if text in ("", "Disable"):
        return
    if text == "Enable":
        settings.pci_console = True
        return
    settings.refusals.append(
        (child, f"{quoted(text)} is not 'Enable' or 'Disable'"))


def _no_value(*allowed: str, reason: str):
    def handle(settings: LaunchSettings, child: etree._Element):
        values = [_text(node) for node in child.iter() if _text(node)]
        if any(value not in allowed for value in values):
            settings.refusals.append((child, reason))
    return handle


def _virtio_devices(settings: LaunchSettings, child: etree._Element):
    virtio = etree.Element("virtio_devices")
    for device in child:
        text = _text(device)
        if not text:
            continue
        converter = _VIRTIO.get(device.tag)
        if converter is None:
            settings.refusals.append(
                (device, "acrn-shm does not convert this virtio device: "
                 "v3 describes it differently"))
            continue
        converted, reason = converter(text)
        if converted is None:
            settings.refusals.append((device, reason))
        else:
            virtio.append(converted)
    if len(virtio):
        settings.elements.append(virtio)


def _network(text: str):
    fields = [part.strip() for part in text.split(",")]
    name, options = fields[0], fields[1:]
    if not _TAP.fullmatch(name):
        return None, (f"tap name {quoted(name)} has characters v3 does not "
                      "allow (letters, digits, '_', '-')")
    if any(option != "vhost" for option in options):
        return None, ("only 'tap[,vhost]' converts: v3 derives MAC "
                      "addresses from the VM name")
    network = etree.Element("network")
    if options:
        network.append(_leaf("virtio_framework", _VHOST))
    network.append(_leaf("interface_name", name))
    return network, ""


def _block(text: str):
    return _leaf("block", text), ""


def _console(text: str):
    match = _CONSOLE.fullmatch(text)
    if match is None or match["backend"] == "sock":
        return None, ("only one '[@]stdio|pty|tty|file:port[=path]' "
                      "console converts (v3 splits socket consoles into "
                      "client and server)")
    backend = match["backend"]
    console = etree.Element("console")
    console.append(_leaf(
        "use_type", "Virtio console" if match["at"] else
        "Virtio serial port"))
    console.append(_leaf("backend_type", backend))
    if backend in _CONSOLE_PATH:
        if not match["path"]:
            return None, f"a {backend} console needs '=path'"
        console.append(_leaf(_CONSOLE_PATH[backend], match["path"]))
    return console, ""


_VIRTIO = {"network": _network, "block": _block, "console": _console}

_HANDLERS = {
    "user_vm_type": _user_vm_type,
    "rtos_type": _rtos_type,
    "mem_size": _mem_size,
    "vbootloader": _choice("vbootloader", _BOOTLOADER),
    "vuart0": _choice("vuart0", _ENABLE),
    "enable_ptm": _choice("PTM", {"y": "y", "n": "n"}),
    "cpu_affinity": _cpu_affinity,
    "passthrough_devices": _devices,
    "sriov": _devices,
    "console_vuart": _console_vuart,
    "virtio_devices": _virtio_devices,
    "poweroff_channel": _no_value(
        reason="v3 has no power-off channel setting; ACRN v3 launch "
        "scripts do not pass one"),
    "allow_trigger_s5": _no_value(
        "n", reason="v3 has no allow_trigger_s5 setting"),
    "usb_xhci": _no_value(
        reason="v3 lists xHCI devices by the board's USB descriptions"),
    "communication_vuarts": _no_value(
        reason="launch XML PCI vUARTs have no peer to pair with in "
        "v3's vuart_connections"),
}
