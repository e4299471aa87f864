"""``acrn-shm check-launch``: drift between a launch script and scenario.

Scripts are written by ``launch-script`` into ``tmp_path`` and then
changed one way per test; ``tests/test_check_launch/`` holds a
hand-written raw-form script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ACRN_DATA, run_acrn_shm
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.emit.launch import check_parsed
from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.model.script_reader import parse_script
from acrn_ivshmem.upgrade.launch_inputs import load_for_launch

HERE = Path(__file__).resolve().parent / "test_check_launch"
WHL = ACRN_DATA / "v3.3" / "whl-ipc-i5"
WAAG = WHL / "hybrid_rt_launch_1user_vm_waag.xml"
LINE = "    $(add_virtual_device 8 ivshmem hv:/shm_region_0,2)\n"

pytestmark = pytest.mark.skipif(not ACRN_DATA.is_dir(),
                                reason=f"{ACRN_DATA} is missing")


@pytest.fixture
def script(tmp_path) -> Path:
    """POST_STD_VM1's script as acrn-shm writes it."""
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL / "whl-ipc-i5.xml"),
         "--vm", "POST_STD_VM1"], tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "launch_user_vm_id1.sh"
    path.write_text(result.stdout)
    assert result.stdout.count(LINE) == 1
    return path


def check(path: Path, *extra: str):
    return run_acrn_shm(["check-launch", str(path), "--scenario",
                         str(WAAG), *extra], path.parent)


def line_of(path: Path, text: str) -> int:
    return path.read_text().splitlines().index(text.rstrip("\n")) + 1


def test_in_sync_script_passes(script):
    result = check(script)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "no problems in 1 file\n", "")


@pytest.mark.parametrize("new, code, message", [
    ("    $(add_virtual_device 8 ivshmem hv:/shm_region_0,4)\n", "ISM513",
     "ivshmem device 'shm_region_0' has size '4' but region "
     "'shm_region_0' is 2 MB"),
    ("    $(add_virtual_device 8 ivshmem dm:/shm_region_0,2)\n", "ISM514",
     "ivshmem device 'shm_region_0' has dm:/ but region 'shm_region_0' "
     "is hv:/"),
    ("    $(add_virtual_device 9 ivshmem hv:/shm_region_0,2)\n", "ISM515",
     "ivshmem device 'shm_region_0' is on slot '9' but VM 'POST_STD_VM1' "
     "has VBDF 00:08.0 (slot 8) in region 'shm_region_0'"),
    ("    $(add_virtual_device 8 ivshmem hv:/shm_old,2)\n", "ISM516",
     "ivshmem device on slot 8 is named 'shm_old' but VM 'POST_STD_VM1' "
     "has region 'shm_region_0' there"),
])
def test_each_drift_at_its_line(script, new, code, message):
    """One changed device: one diagnostic at the device's line."""
    script.write_text(script.read_text().replace(LINE, new))
    result = check(script)
    line = line_of(script, new)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        f"{script}:{line}:7: {code} [error] {message}")
    assert result.stdout.endswith("1 error in 1 file\n")


@pytest.mark.parametrize("config, expected", [
    ('ignore = ["ISM513"]\n', "no problems in 1 file\n"),
    ('ignore = ["ISM51"]\n', "no problems in 1 file\n"),
    ('severity = { ISM513 = "warning" }\n', "{script}:{line}:7: ISM513 "
     "[warning] ivshmem device 'shm_region_0' has size '4' but region "
     "'shm_region_0' is 2 MB\n    hint: use 2\n1 warning in 1 file\n"),
])
def test_pyproject_configures_script_rules(script, config, expected):
    """[tool.acrn-shm] of the nearest pyproject.toml, as lint reads it."""
    new = LINE.replace(",2)", ",4)")
    script.write_text(script.read_text().replace(LINE, new))
    (script.parent / "pyproject.toml").write_text(
        "[tool.acrn-shm]\n" + config)
    result = check(script)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, expected.format(script=script, line=line_of(script, new)), "")


def test_missing_and_extra(script):
    """A dropped device is missing at acrn-dm; a new one is extra."""
    text = script.read_text().replace(LINE, "").replace(
        "    POST_STD_VM1\n)",
        "    -s 9,ivshmem,hv:/shm_region_9,2\n    POST_STD_VM1\n)")
    script.write_text(text)
    anchor = line_of(script, "dm_params=(")
    extra = line_of(script, "    -s 9,ivshmem,hv:/shm_region_9,2")
    result = check(script)
    assert result.returncode == 1
    assert result.stdout == (
        f"{script}:{anchor}:1: ISM511 [error] region 'shm_region_0' (hv, "
        "2 MB, slot 8) lists VM 'POST_STD_VM1' but the script has no "
        "ivshmem device for it\n"
        "    hint: add: add_virtual_device 8 ivshmem hv:/shm_region_0,2\n"
        f"{script}:{extra}:5: ISM512 [error] ivshmem device "
        "'shm_region_9' (slot 9) is not a region of the scenario that "
        "lists VM 'POST_STD_VM1'\n"
        "    hint: remove it from the script or add the VM to the region\n"
        "2 errors in 1 file\n")


def test_raw_form_with_continuations():
    """-s arguments over continued lines; comments are not read."""
    path = HERE / "raw_form.sh"
    result = check(path, "--vm", "POST_STD_VM1")
    assert (result.returncode, result.stdout) == (
        0, "no problems in 1 file\n")
    parsed = parse_script(path.read_text(), str(path))
    assert [(d.loc, d.slot, d.provider, d.name, d.size)
            for d in parsed.devices] == [
        ((8, 3), "8", "hv", "shm_region_0", "2")]


def test_raw_form_drift_json(tmp_path):
    """The lint formats work here too (json shown)."""
    path = tmp_path / "raw.sh"
    path.write_text((HERE / "raw_form.sh").read_text().replace(
        "-s 8,ivshmem,hv:/shm_region_0,2", "-s 8,ivshmem,hv:/shm_region_0,8"))
    result = check(path, "--vm", "POST_STD_VM1", "-f", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout) == [{
            "path": str(path), "line": 8, "column": 3, "code": "ISM513",
            "severity": "error",
            "message": "ivshmem device 'shm_region_0' has size '8' but "
            "region 'shm_region_0' is 2 MB", "hint": "use 2"}]


def test_plain_script_names_its_vm_last():
    """No header: the VM is acrn-dm's last argument (POST_STD_VM1, in
    sync); a commented-out acrn-dm line is not read."""
    result = check(HERE / "plain_acrn_dm.sh")
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "no problems in 1 file\n", "")


PLAIN = (HERE / "plain_acrn_dm.sh").read_text()
DM_LINE = "acrn-dm -m \"${mem_size}\""
VM1_LAST = "    POST_STD_VM1 > /var/log/acrn-dm.log 2>&1\n"


@pytest.mark.parametrize("before, last", [
    ("", "    POST_STD_VM2\n"),
    ("", "    'POST_STD_VM2' &\n"),
    ("", '    "POST"_STD_VM2 >> log; echo done\n'),
    ("vm_name=POST_STD_VM2\n", '    "$vm_name" 2>/dev/null\n'),
    ("export VM=POST_STD_VM2\n", "    ${VM} || exit 1\n"),
    ("vm=POST_STD_VM2; vm=POST_STD_VM2\n", "    $vm\n"),
])
def test_vm_from_acrn_dm_last_argument(tmp_path, before, last):
    """The last argument as bash would pass it: quotes removed, a
    variable the script sets once, redirections and separators not
    counted. POST_STD_VM2 has no region, so its ivshmem device is
    extra (ISM512)."""
    path = tmp_path / "plain.sh"
    path.write_text(PLAIN.replace("mem_size=", before + "mem_size=")
                    .replace(VM1_LAST, last))
    result = check(path)
    assert (result.returncode, result.stderr) == (1, "")
    line = line_of(path, "    -s 8,ivshmem,hv:/shm_region_0,2 \\")
    assert result.stdout == (
        f"{path}:{line}:5: ISM512 [error] ivshmem device 'shm_region_0' "
        "(slot 8) is not a region of the scenario that lists VM "
        "'POST_STD_VM2'\n"
        "    hint: remove it from the script or add the VM to the region\n"
        "1 error in 1 file\n")


def test_vm_from_the_array_acrn_dm_takes(script, tmp_path):
    """A script like ACRN v3's without its header: the VM is the last
    element of the dm_params array acrn-dm is given."""
    path = tmp_path / "no_header.sh"
    path.write_text(script.read_text().replace(
        "# Launch script for VM name: POST_STD_VM1\n", ""))
    result = check(path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "no problems in 1 file\n", "")


@pytest.mark.parametrize("last, shown", [
    ('    "$1"\n', '"$1"'),
    ("    $(hostname)\n", "$(hostname)"),
    ("    -d\n", "-d"),
    # Set twice, to different names.
    ("    $mem_size\n", "$mem_size"),
])
def test_vm_name_not_known_from_acrn_dm(tmp_path, last, shown):
    path = tmp_path / "plain.sh"
    path.write_text(PLAIN.replace("mem_size=4096M\n",
                                  "mem_size=4096M\nmem_size=2048M\n")
                    .replace(VM1_LAST, last))
    result = check(path)
    line = line_of(path, DM_LINE + " -s 0:0,hostbridge -s 1:0,lpc \\")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"acrn-shm: error: {path}:{line}:1: no '# Launch script for VM "
        f"name:' header, and acrn-dm's last argument '{shown}' is not a "
        "VM name; say which VM with --vm\n")


def test_no_header_needs_vm():
    """A comment line ends a command even after a backslash: in
    raw_form.sh acrn-dm's last argument is the OVMF path (what bash
    would run), which names no VM: exit 2, one line."""
    result = check(HERE / "raw_form.sh")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"acrn-shm: error: {HERE / 'raw_form.sh'}:4:1: no '# Launch script "
        "for VM name:' header, and acrn-dm's last argument "
        "'/usr/share/acrn/bios/OVMF.fd' is not a VM name; say which VM "
        "with --vm\n")


def test_missing_script(tmp_path):
    result = check(tmp_path / "nope.sh", "--vm", "POST_STD_VM1")
    assert (result.returncode, result.stderr) == (
        2, f"acrn-shm: error: {tmp_path / 'nope.sh'}: no such file\n")


@pytest.mark.parametrize("text, where, problem", [
    ("#!/bin/sh\n  exec acrn-dm 2>&1\n", ":2:8",
     ", and acrn-dm has no argument"),
    ("#!/bin/sh\necho 'acrn-dm POST_STD_VM1'\n"
     "cat <<EOF\nacrn-dm POST_STD_VM1\nEOF\n", "", " and no acrn-dm call"),
])
def test_no_vm_from_acrn_dm(tmp_path, text, where, problem):
    path = tmp_path / "s.sh"
    path.write_text(text)
    result = check(path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"acrn-shm: error: {path}{where}: no '# Launch script for VM name:' "
        f"header{problem}; say which VM with --vm\n")


@pytest.mark.parametrize("text, name", [
    # Here-documents, strings and comments are not commands.
    ("cat <<'E'\nacrn-dm X1\nE\necho 'acrn-dm X2' # acrn-dm X3\n"
     "acrn-dm -A VM_A\n", "VM_A"),
    ("cat <<-E\n\tacrn-dm X1\n\tE\nacrn-dm VM_A\n", "VM_A"),
    # A ')' inside quotes inside $( ) does not end it.
    ('x="$(echo ")" \'(\')"; acrn-dm -m "$(f ")")" VM_A\n', "VM_A"),
    # Array elements over lines, with comments and substitutions.
    ("p=(\n  $(add_cpus 1 2) # cpus\n  -m 1M\n  'VM_A'\n)\n"
     'echo "acrn-dm ${p[*]}"\nacrn-dm "${p[@]}"\n', "VM_A"),
    ("p=(-m 1M)\np+=(VM_A)\nacrn-dm ${p[@]}\n", "VM_A"),
    # A variable set once (also by export), not twice to two values.
    ("export VM=VM_A\nsudo -E acrn-dm -m 1M \"$VM\"\n", "VM_A"),
    ("a=VM_A\na=VM_B\nacrn-dm $a\n", None),
    ("a=$b\nacrn-dm $a\n", None),
    # Globs and braces could expand; a name cannot start with '-'.
    ("acrn-dm VM_*\n", None),
    ("acrn-dm {VM_A,VM_B}\n", None),
    ("acrn-dm -VM\n", None),
    # Two calls that agree, then two that do not.
    ("acrn-dm VM_A\nacrn-dm 'VM_A'\n", "VM_A"),
    ("acrn-dm VM_A || acrn-dm VM_B\n", None),
    # Unclosed quotes and substitutions end at the end of the text.
    ("acrn-dm VM_A \"$(x '\n", None),
])
def test_acrn_dm_last_argument(text, name):
    script = parse_script(text, "s.sh")
    assert script.dm_call is not None
    assert script.vm_name == name


@settings(max_examples=300, deadline=None, derandomize=True,
          database=None)
@given(st.text(st.sampled_from(list("acrndm- \t\n\\'\"`$(){}[]@*#;&|<>=E"
                                    "x0_")), max_size=80))
def test_any_text_is_read(text):
    """Any text gives a script: locations inside it, a VM name or None."""
    script = parse_script("acrn-dm " + text, "s.sh")
    lines = ("acrn-dm " + text).count("\n") + 1
    for loc in [script.anchor, script.dm_call,
                *(device.loc for device in script.devices)]:
        assert loc is None or 1 <= loc.line <= lines and loc.column >= 1
    assert script.vm_name is None or re.fullmatch(
        r"[A-Za-z0-9_][A-Za-z0-9_-]{0,14}", script.vm_name)


@pytest.mark.parametrize("vm, header", [
    ("POST\x06VM", ""),
    (None, "# Launch script for VM name: POST\x1b[2JVM\n"),
])
def test_unknown_vm_shown_on_one_line(vm, header):
    """Found by fuzz_check_launch: a control character in the VM name
    (from --vm or the header) went into the message as it was (the CLI
    escapes it, other callers did not)."""
    script = parse_script(header + PLAIN, "s.sh")
    with pytest.raises(UsageError) as refused:
        check_parsed(script, load_for_launch(str(WAAG), None), vm)
    shown = "POST\\x06VM" if vm else "POST\\x1b[2JVM"
    assert str(refused.value) == (
        f"{WAAG}: '{shown}' is not a post-launched VM of the scenario; "
        "post-launched VMs: POST_STD_VM1, POST_STD_VM2")


def test_lines_end_at_newlines_only(script):
    """Found by fuzz_check_launch: a form feed, \\x1c or U+2028 counted
    as a line end, so findings were put below the script's last line."""
    text = script.read_text()
    script.write_text(text.replace("# Run it as root",
                                   "# \x0c\x1c\u2028\x85 Run it as root"))
    script.write_text(script.read_text().replace(LINE, ""))
    anchor = script.read_text().split("\n").index("dm_params=(") + 1
    result = check(script)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{script}:{anchor}:1: ISM511 ")


def test_arrays_do_not_nest():
    """Found in review: each "=(" inside an array recursed once more."""
    script = parse_script("a=(" * 20000 + "\nacrn-dm VM_A\n", "s.sh")
    assert (script.dm_call, script.vm_name) == (None, None)


@pytest.mark.parametrize("comment, reported", [
    ("    # acrn-shm: ignore ISM513\n", False),
    ("    # acrn-shm: ignore ISM514, ism513\n", False),
    ("    # acrn-shm: ignore ISM514\n", True),
    ("    # a comment that is no suppression\n", True),
])
def test_inline_suppression_in_the_script(script, comment, reported):
    """``# acrn-shm: ignore CODE`` silences CODE on the next command, as
    the XML comment does on the next element for lint; before,
    check-launch ignored it and reported ISM513, exit 1."""
    new = LINE.replace(",2)", ",4)")
    script.write_text(script.read_text().replace(LINE, comment + new))
    result = check(script)
    expected = (
        (1, f"{script}:{line_of(script, new)}:7: ISM513 [error] ivshmem "
         "device 'shm_region_0' has size '4' but region 'shm_region_0' is "
         "2 MB\n    hint: use 2\n1 error in 1 file\n") if reported
        else (0, "no problems in 1 file\n"))
    assert (result.returncode, result.stdout) == expected


def test_inline_suppression_of_a_missing_device(script):
    """A suppression before ``dm_params=(``, where a missing device is
    reported (ISM511), silences it."""
    text = script.read_text().replace(LINE, "")
    text = text.replace("dm_params=(", "# acrn-shm: ignore ISM511\n"
                        "dm_params=(", 1)
    script.write_text(text)
    result = check(script)
    assert (result.returncode, result.stdout) == (
        0, "no problems in 1 file\n")


def test_suppression_spans_the_next_command():
    """Comment lines gather codes, blank lines keep them, and the next
    command takes them from its first line to the end of its last."""
    parsed = parse_script(
        "# acrn-shm: ignore ISM513\n"
        "# acrn-shm: ignore ism515\n"
        "\n"
        "acrn-dm -s 8,ivshmem,hv:/a,4 \\\n"
        "   -s 9,ivshmem,hv:/b,2\n"
        "-s 10,ivshmem,hv:/c,2\n", "x.sh")
    assert [(sorted(s.codes), s.first, s.last, s.loc)
            for s in parsed.suppressions] == [
        (["ISM513", "ISM515"], (4, 1), (5, 24), (1, 1))]
