"""A QEMU plan as libvirt ``<shmem>`` elements (``acrn-shm libvirt-xml``).

libvirt always backs an ``ivshmem-plain`` device with
``/dev/shm/<name>`` in normal pages; where the plan asks for another
folder or huge pages, the output says so in its warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ..errors import quoted
from ..plan.qemu import DEFAULT_SHM_DIR, QemuPlan

__all__ = ["LibvirtXml", "libvirt_xml"]


@dataclass(frozen=True)
class LibvirtXml:
    """``<shmem>`` elements for a libvirt domain's ``<devices>``, and
    the ways libvirt will differ from the QEMU plan."""

    text: str
    warnings: tuple[str, ...]


def libvirt_xml(plan: QemuPlan) -> LibvirtXml:
    """The libvirt ``<shmem>`` element of every device of ``plan``.

    libvirt always backs an ``ivshmem-plain`` device with
    ``/dev/shm/<name>`` in normal pages, so another ``shm_dir`` or huge
    pages are a warning (and QEMU's page warnings of the plan do not
    apply). Names are XML-escaped by the serializer.
    """
    warnings = [warning for warning in plan.warnings
                if warning not in plan.page_warnings]
    if any(device.doorbell is None for device in plan.devices):
        if plan.shm_dir.rstrip("/") != DEFAULT_SHM_DIR:
            warnings.append(f"libvirt always uses {DEFAULT_SHM_DIR}/<name>; "
                            f"the shm directory {quoted(plan.shm_dir)} is "
                            "not used")
        if plan.hugepages:
            warnings.append("libvirt's <shmem> has no huge-page setting: "
                            "it maps /dev/shm/<name> in normal pages")
    parts = []
    for device in plan.devices:
        shmem = etree.Element("shmem", name=device.name)
        if device.master:
            shmem.set("role", "master")
        model = ("ivshmem-doorbell" if device.doorbell is not None
                 else "ivshmem-plain")
        etree.SubElement(shmem, "model", type=model)
        if device.size_mb is not None:
            size = etree.SubElement(shmem, "size", unit="M")
            size.text = str(device.size_mb)
        if device.doorbell is not None:
            etree.SubElement(shmem, "server", path=device.doorbell.socket)
            etree.SubElement(shmem, "msi",
                             vectors=str(device.doorbell.vectors),
                             ioeventfd="on")
        if device.slot is not None:
            address = etree.SubElement(
                shmem, "address", type="pci", domain="0x0000", bus="0x00",
                slot=f"0x{device.slot:02x}",
                function=f"0x{device.function:x}")
            if device.multifunction:
                address.set("multifunction", "on")
        etree.indent(shmem, space="  ")
        parts.append(etree.tostring(shmem, encoding="unicode") + "\n")
    return LibvirtXml("".join(parts), tuple(warnings))
