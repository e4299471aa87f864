"""The fuzz property of launch-script and check-launch, on mutated real
inputs (hypothesis; derandomized and bounded like test_properties).

``harness.Harness.launch_script`` writes the scripts of a mutated
scenario (or of a real legacy scenario with a mutated launch XML)
without linting it first, and ``harness.check_launch_script`` reads
each script line by line: input text only in vetted shell words or
single quotes, the array's words exactly the planned ones, the same
text twice. ``harness.Harness.check_launch`` reads mutated launch
scripts. The last tests show that the line-by-line check does fail on
a script that lets input text expand.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_properties import (
    EXAMPLES,
    checker,
    companions,
    harness,
    mutated,
    seed,
)

from acrn_ivshmem.emit.launch import write_scripts
from acrn_ivshmem.upgrade.launch_inputs import load_for_launch

SCRIPTS = [str(path) for path in harness.real_scripts()]
#: Shell syntax a mutation puts into a script.
SHELL = ["$(", "${", ")", "}", "'", '"', "`", "\\\n", "\n", "#", " ", ";",
         "<<E\n", "\nE\n", "acrn-dm ", "POST_STD_VM1", "=(", "[@]", "&",
         "\x1b", "\udcff"]
VERSIONS = ((3, 3), (3, 0), (2, 7))


@EXAMPLES
@given(st.data())
def test_launch_script_of_mutated_inputs(data):
    found = companions()
    xml = data.draw(mutated(), label="xml")
    board = data.draw(st.sampled_from([None, *found.boards]), label="board")
    _regions, names, _ids = harness.names_in(xml)
    vm = data.draw(st.none() | st.sampled_from(names or ["POST_STD_VM1"]),
                   label="vm")
    version = data.draw(st.sampled_from(VERSIONS), label="version")
    if data.draw(st.booleans(), label="as launch XML"):
        checker().launch_script(xml, board, vm, version, scenario=data.draw(
            st.sampled_from(found.legacy)))
    else:
        checker().launch_script(xml, board, vm, version, data.draw(
            st.lists(st.sampled_from(found.launches), max_size=2)))


@st.composite
def mutated_script(draw) -> bytes:
    """A test launch script with one to three insertions, deletions or
    truncations."""
    text = seed(draw(st.sampled_from(SCRIPTS), label="script"))
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("insert", "delete", "truncate")))
        if kind == "insert":
            text = (text[:index] + draw(st.sampled_from(SHELL)).encode(
                "utf-8", "surrogateescape") + text[index:])
        elif kind == "delete":
            text = text[:index] + text[index + draw(st.integers(1, 40)):]
        else:
            text = text[:index]
    return text


@EXAMPLES
@given(st.data())
def test_check_launch_of_mutated_scripts(data):
    found = companions()
    script = data.draw(mutated_script() | st.binary(max_size=200),
                       label="script")
    checker().check_launch(
        script, data.draw(st.sampled_from(found.v3), label="scenario"),
        data.draw(st.none() | st.just("POST_STD_VM1"), label="vm"))


def tampered(old: str, new: str, tmp_path) -> harness.Script:
    """POST_STD_VM1's script of hybrid_rt, with a mounted partition,
    with ``old`` made ``new``."""
    whl = harness.SEED_FOLDERS[0] / "v3.3" / "whl-ipc-i5"
    scenario = tmp_path / "s.xml"
    scenario.write_text((whl / "hybrid_rt.xml").read_text().replace(
        "<block>./win10-ltsc.img</block>", "<block>/dev/sda1:a.img</block>"))
    (script,) = write_scripts(load_for_launch(
        str(scenario), str(whl / "whl-ipc-i5.xml")),
        ["POST_STD_VM1"], (3, 3), "t")
    assert old in script.text
    return dataclasses.replace(script, text=script.text.replace(old, new))


def test_the_line_check_passes_what_is_written(tmp_path):
    harness.check_launch_script(tampered("", "", tmp_path))


@pytest.mark.parametrize("old, new, problem", [
    ("-m 4096M", '"-m" "4096M"',
     "array line '    \"-m\" \"4096M\"' for ('-m', '4096M')"),
    ("-m 4096M", "-m $((4096))M",
     "array line '    -m $((4096))M' for ('-m', '4096M')"),
    ("mac_seed=${mac}-", "mac_seed=${mac:0:17}-",
     "array line '    $(add_virtual_device 3 virtio-net "
     "\"tap=WaaG,mac_seed=${mac:0:17}-POST_STD_VM1\")' for ('3', "
     "'virtio-net', ('tap=WaaG,mac_seed=', Ref(name='mac'), "
     "'-POST_STD_VM1'))"),
    ("probe_modules\n", "probe_modules\n$(reboot)\n",
     "init line '$(reboot)'"),
    ("vm_type=STANDARD_VM", "vm_type=\"$x\"", "VM description"),
    ('acrn-dm "${dm_params[@]}"', 'acrn-dm ${dm_params[@]}',
     "acrn-dm call"),
    ('unmount_partition "${dir_sda1}"', "unmount_partition ${dir_sda1}",
     "deinit line 'unmount_partition ${dir_sda1}'"),
    ("dir_sda1=$(", "dir_sdb=$(", "dir_sda1 is not set"),
])
def test_the_line_check_finds_expansions(tmp_path, old, new, problem):
    with pytest.raises(harness.Violation) as violation:
        harness.check_launch_script(tampered(old, new, tmp_path))
    assert str(violation.value) == (
        f"launch script for 'POST_STD_VM1': {problem}")
