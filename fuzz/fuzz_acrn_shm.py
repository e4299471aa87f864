"""Atheris fuzz target for acrn-shm lint, add-region, remove-region,
set-region and upgrade.

An input is ``COMMAND LENGTH OPTIONS... XML...``: byte 0 picks the
command, byte 1 (modulo 64) the number of option bytes that follow,
from which the command's options are drawn (board, output format,
region name, size, VMs, provider, region id, VBDFs, upgrade mode); the
rest is the XML file. See ``harness.py`` for the property checked.

Run it with ``fuzz/run``; or directly (libFuzzer flags)::

    python fuzz/fuzz_acrn_shm.py -max_total_time=60 CORPUS_DIR
    python fuzz/fuzz_acrn_shm.py CRASH_FILE       # reproduce one input
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["acrn_ivshmem"]):
    import harness

COMMANDS = ("lint", "add-region", "remove-region", "set-region", "upgrade")
SIZES = (2, 4, 8, 16, 32, 64, 128, 256, 512)
HEADER = 64
#: Output formats, weighted: SARIF output is the same for every input
#: but for its results, and costs more than a lint to build.
LINT_FORMATS = ("text", "text", "text", "text", "text", "json", "github",
                "sarif")

COMPANIONS = harness.Companions()
harness.memoize_board_structure(COMPANIONS)
# The lint command covers an unedited input; edits lint their output.
HARNESS = harness.Harness(COMPANIONS, lint_before=False)


def text(fdp: atheris.FuzzedDataProvider, limit: int = 24) -> str:
    """An option value as the shell would pass any bytes."""
    return harness.fsdecode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(
        0, limit)))


pick = harness.pick


# Option pickers: an exhausted FuzzedDataProvider gives 0s, and 0
# always picks a plausible value, so that short option bytes give edits
# that work; other values pick odd and hostile ones.


def region_name(fdp, regions: list[str], default: str | None) -> str | None:
    choice = fdp.ConsumeIntInRange(0, 5)
    if choice <= 1:
        if default is None and choice == 0:
            return None  # add-region picks a free name
        return pick(fdp, regions) if regions else "shm_region_0"
    if choice == 2:
        return f"fz_{fdp.ConsumeIntInRange(0, 99)}"
    return text(fdp)


def vm_list(fdp, names: list[str], ids: list[str]) -> str | None:
    choice = fdp.ConsumeIntInRange(0, 7)
    if choice == 7:
        return None
    if choice == 6:
        return text(fdp)
    refs = names if choice < 4 else ids
    count = 2 + fdp.ConsumeIntInRange(0, 3) if choice < 5 else 1
    chosen = []
    for index in range(count):
        if not refs or fdp.ConsumeIntInRange(0, 9) == 9:
            chosen.append(text(fdp, 12))
        else:
            chosen.append(refs[(index + fdp.ConsumeIntInRange(
                0, len(refs) - 1)) % len(refs)])
    return pick(fdp, (",", ", ", " ,", ",,")).join(chosen)


def region_options(fdp, names: list[str], ids: list[str],
                   for_set: bool) -> dict:
    size_choice = fdp.ConsumeIntInRange(0, 3)
    size = (pick(fdp, SIZES) if size_choice < 2
            else fdp.ConsumeInt(4) if size_choice == 2
            else None if for_set else 2)
    provider = pick(fdp, (None if for_set else "hv", "dm", "hv",
                          "Hypervisor", "device model", text(fdp, 8)))
    region_id = (fdp.ConsumeIntInRange(-1, 9) if fdp.ConsumeBool()
                 else None)
    vbdf = []
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        vm = pick(fdp, names) if names and fdp.ConsumeIntInRange(
            0, 3) else text(fdp, 8)
        value = (f"00:{fdp.ConsumeIntInRange(0, 0x1f):02x}."
                 f"{fdp.ConsumeIntInRange(0, 7)}" if fdp.ConsumeIntInRange(
                     0, 3) else text(fdp, 10))
        vbdf.append(f"{vm}={value}" if fdp.ConsumeIntInRange(0, 5)
                    else value)
    return {"name": None, "size": size,
            "vms": vm_list(fdp, names, ids), "provider": provider,
            "region_id": region_id, "vbdf": vbdf or None}


def split(data: bytes) -> tuple[int, bytes, bytes]:
    """The command index, the option bytes and the XML of an input."""
    return harness.split(data, len(COMMANDS), HEADER)


def test_one_input(data: bytes) -> None:
    command, header, xml = split(data)
    fdp = atheris.FuzzedDataProvider(header)
    boards = [None, *COMPANIONS.boards]
    name = COMMANDS[command]
    if name == "lint":
        HARNESS.lint(xml, pick(fdp, boards), pick(fdp, LINT_FORMATS),
                     fix=fdp.ConsumeBool())
    elif name == "upgrade":
        board = pick(fdp, boards)
        mode = fdp.ConsumeIntInRange(0, 3)
        if mode == 1 and COMPANIONS.launches:
            HARNESS.upgrade(xml, [pick(fdp, COMPANIONS.launches)], board)
        elif mode == 2 and COMPANIONS.legacy:
            HARNESS.upgrade(xml, board=board,
                            scenario=pick(fdp, COMPANIONS.legacy))
        elif mode == 3 and COMPANIONS.v3:
            HARNESS.upgrade(xml, board=board, into=pick(fdp, COMPANIONS.v3))
        else:
            HARNESS.upgrade(xml, board=board)
    else:
        regions, names, ids = harness.names_in(xml)
        board = pick(fdp, boards)
        if name == "add-region":
            options = region_options(fdp, names, ids, for_set=False)
            options["name"] = region_name(fdp, regions, None)
            HARNESS.add_region(xml, options, board)
        elif name == "remove-region":
            HARNESS.remove_region(
                xml, region_name(fdp, regions, "shm_region_0"), board)
        else:
            HARNESS.set_region(
                xml, region_name(fdp, regions, "shm_region_0"),
                region_options(fdp, names, ids, for_set=True), board)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
