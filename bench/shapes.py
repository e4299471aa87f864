"""Generate ACRN XMLs of one unusual shape, grown to a chosen size.

Each shape stresses one dimension that a careless algorithm pays for
more than linearly: many attributes on one element, one long line,
many small elements, deep nesting, many comments, one long text, many
regions, many VMs, many vUART connections, a long region name, many
suppression comments, a long legacy region string, a board with many
PCI devices. :func:`generate` writes the shape at size ``n`` as a v3
scenario (for ``lint`` and ``add-region``) or a legacy (v2.x) one (for
``upgrade``); every scenario, whatever its shape, has the VMs ``VM0``
(the Service VM) and ``VM1`` that ``add-region`` can share a new
region between. The "board" shape is a board XML in both cases.

The files are well-formed; they need not lint clean ("regions" breaks
ACRN's limit of 8 regions on purpose), and past acrn-shm's limits they
are refused. Their size grows in proportion to ``n``: the "line",
"text", "names" and "legacy-fields" shapes count bytes or fields, the
others items. Unread padding sits in ``<PAD>`` inside ``<hv>``.

``python bench/shapes.py SHAPE N [legacy]`` prints one file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _vm(index: int, legacy: bool) -> str:
    if legacy:
        kind = "SOS_VM" if index == 0 else "POST_STD_VM"
        return (f'<vm id="{index}"><vm_type>{kind}</vm_type>'
                f"<name>VM{index}</name></vm>")
    kind = "SERVICE_VM" if index == 0 else "POST_LAUNCHED_VM"
    return (f'<vm id="{index}"><load_order>{kind}</load_order>'
            f"<name>VM{index}</name></vm>")


def _region(legacy: bool, name: str, vms: range, size: int = 2) -> str:
    if legacy:
        ids = ":".join(str(vm) for vm in vms)
        return f"<IVSHMEM_REGION>hv:/{name}, {size}, {ids}</IVSHMEM_REGION>"
    members = "".join(
        f"<IVSHMEM_VM><VM_NAME>VM{vm}</VM_NAME>"
        f"<VBDF>00:{8 + vm % 8:02x}.0</VBDF></IVSHMEM_VM>" for vm in vms)
    return (f"<IVSHMEM_REGION><NAME>{name}</NAME>"
            f"<PROVIDED_BY>Hypervisor</PROVIDED_BY>"
            f"<IVSHMEM_SIZE>{size}</IVSHMEM_SIZE>"
            f"<IVSHMEM_VMS>{members}</IVSHMEM_VMS></IVSHMEM_REGION>")


def _scenario(legacy: bool, regions: list[str] | None = None, vms: int = 2,
              padding: str = "", root_attributes: str = "",
              vuarts: str = "", newline: str = "\n") -> bytes:
    # One element a line, two spaces a level (as ACRN writes them), or
    # all on one line when ``newline`` is empty.
    if regions is None:
        regions = [_region(legacy, "shm_region_0", range(2))]
    enabled = ["<IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>"] if legacy else []
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             f"<acrn-config{root_attributes}>", "  <hv>",
             "    <FEATURES>", "      <IVSHMEM>",
             *("        " + line for line in enabled + regions),
             "      </IVSHMEM>", "    </FEATURES>",
             *(["    " + part for part in (vuarts, padding) if part]),
             "  </hv>",
             *("  " + _vm(index, legacy) for index in range(vms)),
             "</acrn-config>", ""]
    if not newline:
        lines = [line.strip() for line in lines]
    return newline.join(lines).encode()


def attributes(n: int, legacy: bool = False) -> bytes:
    """The root element with ``n`` attributes (the structure check reads
    the root's attributes; it skips those of unknown elements)."""
    names = "".join(f' a{i}="{i}"' for i in range(n))
    return _scenario(legacy, root_attributes=names)


def line(n: int, legacy: bool = False) -> bytes:
    """The whole file on one line of about ``n`` bytes: an element with
    text every 64 bytes."""
    chunk = "<p>" + "x" * 57 + "</p>"
    return _scenario(legacy, padding=f"<PAD>{chunk * (n // 64)}</PAD>",
                     newline="")


def elements(n: int, legacy: bool = False) -> bytes:
    """``n`` small elements, one a line."""
    return _scenario(legacy, padding="<PAD>" + "\n<p/>" * n + "\n</PAD>")


def depth(n: int, legacy: bool = False) -> bytes:
    """``n`` elements nested in one another."""
    return _scenario(legacy, padding="<d>" * n + "</d>" * n)


def comments(n: int, legacy: bool = False) -> bytes:
    """``n`` comments, one a line."""
    return _scenario(legacy,
                     padding="<PAD>" + "\n<!-- c -->" * n + "\n</PAD>")


def text(n: int, legacy: bool = False) -> bytes:
    """One element whose text is ``n`` bytes (lines of 64 bytes)."""
    return _scenario(legacy,
                     padding=f"<PAD>{('x' * 63 + chr(10)) * (n // 64)}</PAD>")


def regions(n: int, legacy: bool = False) -> bytes:
    """``n`` regions, each shared by VM0 and VM1."""
    return _scenario(legacy, [_region(legacy, f"shm_region_{i}", range(2))
                              for i in range(n)])


def vms(n: int, legacy: bool = False) -> bytes:
    """``n`` VMs (at least 2), all sharing one region."""
    count = max(n, 2)
    return _scenario(legacy, [_region(legacy, "shm_region_0",
                                      range(count))], count)


def vuarts(n: int, legacy: bool = False) -> bytes:
    """``n`` post-launched VMs, each with a PCI vUART to the Service VM
    (a legacy file has the VMs only: its vUARTs are another format)."""
    count = max(n, 2)
    connections = "" if legacy else "<vuart_connections>" + "".join(
        f"<vuart_connection><name>c{vm}</name><type>pci</type>"
        f"<endpoint><vm_name>VM0</vm_name><vbdf>00:{16 + vm % 8:02x}.0"
        f"</vbdf></endpoint><endpoint><vm_name>VM{vm}</vm_name>"
        f"<vbdf>00:10.0</vbdf></endpoint></vuart_connection>"
        for vm in range(1, count)) + "</vuart_connections>"
    return _scenario(legacy, vms=count, vuarts=connections)


def names(n: int, legacy: bool = False) -> bytes:
    """A region whose name is ``n`` characters long."""
    return _scenario(legacy, [_region(legacy, "r" * max(n, 1), range(2))])


def suppressions(n: int, legacy: bool = False) -> bytes:
    """``n`` regions of a wrong size (3 MB), each after a comment that
    silences that finding: as many suppressions as findings."""
    code = "ISM102" if legacy else "ISM201"
    found = []
    for i in range(n):
        found += [f"<!-- acrn-shm: ignore {code} -->",
                  _region(legacy, f"shm_region_{i}", range(2), size=3)]
    return _scenario(legacy, found)


def legacy_fields(n: int, legacy: bool = False) -> bytes:
    """A legacy region string of ``n`` comma-separated fields, one a
    line (a v3 file gets the same text as a region name)."""
    body = ",\n".join(["hv:/shm_region_0", "2", "0:1"]
                      + ["x"] * max(n - 3, 0))
    if legacy:
        region = f"<IVSHMEM_REGION>{body}</IVSHMEM_REGION>"
    else:
        region = _region(False, body, range(2))
    return _scenario(legacy, [region])


def board(n: int, legacy: bool = False) -> bytes:
    """A board XML with ``n`` PCI devices on bus 0 (``legacy`` makes no
    difference)."""
    devices = "".join(
        f'\n      <device address="0x{(8 + i % 24) << 16 | i // 24:x}">'
        f"<vendor>0x8086</vendor><identifier>0x{i % 65536:04x}"
        f"</identifier></device>" for i in range(n))
    return (f'<acrn-config board="shape">\n  <BIOS_INFO>x</BIOS_INFO>\n'
            f'  <devices>\n    <bus type="pci" address="0x0">{devices}\n'
            f"    </bus>\n  </devices>\n</acrn-config>\n").encode()


GENERATORS: dict[str, Callable[..., bytes]] = {
    "attributes": attributes, "line": line, "elements": elements,
    "depth": depth, "comments": comments, "text": text,
    "regions": regions, "vms": vms, "vuarts": vuarts, "names": names,
    "suppressions": suppressions, "legacy-fields": legacy_fields,
    "board": board,
}
#: Every shape, in the order the benchmark prints them.
SHAPES = tuple(GENERATORS)


def generate(shape: str, n: int, legacy: bool = False) -> bytes:
    """The XML of ``shape`` at size ``n`` (see the module doc)."""
    return GENERATORS[shape](n, legacy)


if __name__ == "__main__":
    sys.stdout.buffer.write(generate(sys.argv[1], int(sys.argv[2]),
                                     len(sys.argv) > 3))
