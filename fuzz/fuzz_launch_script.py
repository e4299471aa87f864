"""Atheris fuzz target for acrn-shm launch-script.

An input is ``MODE LENGTH OPTIONS... XML...``: byte 0 picks whether the
XML is the scenario (v3, or legacy with real launch XMLs) or a launch
XML given with ``--launch`` to a real legacy scenario; byte 1 (modulo
64) the number of option bytes that follow, from which the board, the
VM and the ACRN version are drawn; the rest is the XML. See
``harness.py`` (``Harness.launch_script``, ``check_launch_script``) for
the property checked.

Run it with ``fuzz/run --target launch_script``; or directly::

    python fuzz/fuzz_launch_script.py -max_total_time=60 CORPUS_DIR
    python fuzz/fuzz_launch_script.py CRASH_FILE    # reproduce one input
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["acrn_ivshmem"]):
    import harness

MODES = ("scenario", "launch")
HEADER = 64
VERSIONS = ((3, 3), (3, 3), (3, 0), (2, 7))

COMPANIONS = harness.Companions()
HARNESS = harness.Harness(COMPANIONS)


pick = harness.pick


def vm_name(fdp: atheris.FuzzedDataProvider, names: list[str]):
    """None (every VM) when the option bytes run out, else a name of the
    XML or any text."""
    choice = fdp.ConsumeIntInRange(0, 3)
    if choice == 0 or (choice < 3 and not names):
        return None
    if choice < 3:
        return pick(fdp, names)
    return harness.fsdecode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)))


def test_one_input(data: bytes) -> None:
    mode, header, xml = harness.split(data, len(MODES), HEADER)
    fdp = atheris.FuzzedDataProvider(header)
    board = pick(fdp, [*COMPANIONS.boards, None])
    _regions, names, _ids = harness.names_in(xml)
    vm = vm_name(fdp, names)
    version = pick(fdp, VERSIONS)
    if MODES[mode] == "launch" and COMPANIONS.legacy:
        HARNESS.launch_script(xml, board, vm, version,
                              scenario=pick(fdp, COMPANIONS.legacy))
        return
    launches = [pick(fdp, COMPANIONS.launches)
                for _ in range(fdp.ConsumeIntInRange(0, 2))
                if COMPANIONS.launches]
    HARNESS.launch_script(xml, board, vm, version, launches)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
