"""Atheris fuzz target for acrn-shm check-launch.

An input is ``LENGTH OPTIONS... SCRIPT...``: byte 0 (modulo 64) is the
number of option bytes that follow, from which the scenario (a real v3
one), the VM (``--vm``, or none: from the script) and the rules enabled
are drawn; the rest is the script, any bytes. See ``harness.py``
(``Harness.check_launch``) for the property checked.

Run it with ``fuzz/run --target check_launch``; or directly::

    python fuzz/fuzz_check_launch.py -max_total_time=60 CORPUS_DIR
    python fuzz/fuzz_check_launch.py CRASH_FILE     # reproduce one input
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["acrn_ivshmem"]):
    import harness

from acrn_ivshmem.lint.config import LintConfig

HEADER = 64
CONFIGS = (LintConfig(), LintConfig(select=("ISM511", "ISM512")),
           LintConfig(ignore=("ISM513",), severity=(("ISM516", "warning"),)))

COMPANIONS = harness.Companions()
HARNESS = harness.Harness(COMPANIONS)
#: The VMs post-launched in some real scenario, for --vm.
VMS = sorted({name for path in COMPANIONS.v3
              for name, _settings in HARNESS.launch_inputs(
                  path).scenario.dm_settings})


pick = harness.pick


def test_one_input(data: bytes) -> None:
    _none, header, script = harness.split(data, 0, HEADER)
    fdp = atheris.FuzzedDataProvider(header)
    scenario = pick(fdp, COMPANIONS.v3)
    choice = fdp.ConsumeIntInRange(0, 3)
    vm = (None if choice == 0 else pick(fdp, VMS) if choice < 3
          else harness.fsdecode(fdp.ConsumeBytes(16)))
    HARNESS.check_launch(script, scenario, vm, pick(fdp, CONFIGS))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
