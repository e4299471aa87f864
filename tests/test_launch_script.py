"""Launch scripts (``acrn-shm launch-script``): goldens, shell safety.

Goldens live in ``tests/test_launch_script/golden/``, one per
post-launched VM of every ACRN v3.3 scenario in ``../shared/acrn-data``
plus the legacy v2.7 whl-ipc-i5 hybrid_rt with its launch XML; refresh
them with ``UPDATE_GOLDEN=1`` and review the diff. Every golden must
pass ``bash -n`` and shellcheck (CI installs shellcheck and sets
``ACRN_SHM_REQUIRE_TOOLS=1`` so that a missing tool fails there).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import ACRN_DATA, run_acrn_shm
from test_injection import dm_params

from acrn_ivshmem.emit.launch import gated_scripts, write_scripts
from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.lint.engine import Linter
from acrn_ivshmem.upgrade.launch_inputs import load_for_launch

HERE = Path(__file__).resolve().parent / "test_launch_script"
GOLDEN = HERE / "golden"
V33 = ACRN_DATA / "v3.3"
WHL = V33 / "whl-ipc-i5"
WHL_BOARD = WHL / "whl-ipc-i5.xml"
WAAG = WHL / "hybrid_rt_launch_1user_vm_waag.xml"
REQUIRE_TOOLS = bool(os.environ.get("ACRN_SHM_REQUIRE_TOOLS"))

pytestmark = pytest.mark.skipif(not ACRN_DATA.is_dir(),
                                reason=f"{ACRN_DATA} is missing")


def _cases() -> list[tuple[str, str]]:
    """(scenario path relative to acrn-data, VM name) of every post VM."""
    cases = []
    if not V33.is_dir():
        return cases
    for path in sorted(V33.glob("*/*.xml")):
        if path.stem == path.parent.name:
            continue
        inputs = load_for_launch(str(path), None)
        # ACRN's shared_launch_1user_vm_hardrt.xml names two VMs
        # POST_STD_VM1; scripts are asked for by name, so one golden.
        names = dict.fromkeys(
            name for name, _settings in inputs.scenario.dm_settings)
        cases.extend((f"v3.3/{path.parent.name}/{path.name}", name)
                     for name in names)
    return cases


CASES = _cases()


def check_golden(path: Path, actual: str):
    """Compare with (or, with UPDATE_GOLDEN=1, rewrite) a golden file."""
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert path.is_file(), f"{path} missing; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text()


def script_for(relative: str, vm_name: str) -> str:
    path = ACRN_DATA / relative
    board = path.parent / f"{path.parent.name}.xml"
    inputs = load_for_launch(str(path), str(board))
    (script,) = write_scripts(inputs, [vm_name], (3, 3),
                              f"{path.name} + {board.name}")
    return script.text


def test_every_v33_post_launched_vm_is_covered():
    """64 post-launched VM names in the 17 v3.3 scenarios that have any."""
    assert len(CASES) == 64
    assert len({scenario for scenario, _vm in CASES}) == 17


@pytest.mark.parametrize("relative, vm_name", CASES)
def test_v33_golden(relative, vm_name):
    """Each VM's script equals its reviewed golden file."""
    golden = GOLDEN / relative.replace(".xml", "") / f"{vm_name}.sh"
    check_golden(golden, script_for(relative, vm_name))


def test_the_launch_gate_is_callable_without_the_cli():
    """gated_scripts: lint, plan and render as launch-script does."""
    relative, vm_name = CASES[0]
    path = ACRN_DATA / relative
    board = path.parent / f"{path.parent.name}.xml"
    linter = Linter()
    inputs = load_for_launch(str(path), str(board), (), linter)
    gate = gated_scripts(inputs, linter, str(path), str(board), (),
                         [vm_name], (3, 3))
    assert (gate.errors, gate.clashes, gate.files) == ((), (), 1)
    (script,) = gate.scripts
    golden = GOLDEN / relative.replace(".xml", "") / f"{vm_name}.sh"
    assert script.text == golden.read_text()


def test_legacy_golden():
    """v2.7 hybrid_rt + its launch XML: converted, then written."""
    folder = ACRN_DATA / "v2.7" / "whl-ipc-i5"
    inputs = load_for_launch(
        str(folder / "hybrid_rt.xml"), str(folder / "whl-ipc-i5.xml"),
        [str(folder / "hybrid_rt_launch_1user_vm_waag.xml")])
    (script,) = write_scripts(inputs, ["POST_STD_VM1"], (2, 7),
                              "hybrid_rt.xml + launch + whl-ipc-i5.xml")
    assert script.file_name == "launch_user_vm_id1.sh"
    check_golden(GOLDEN / "v2.7" / "whl-ipc-i5" / "hybrid_rt" /
                 "POST_STD_VM1.sh", script.text)
    # v2.x acrn-dm takes pCPU ids, not APIC ids.
    assert "    $(add_cpus 0 1)\n" in script.text
    assert "    $(add_virtual_device 8 ivshmem hv:/shm_region_0,2)\n" \
        in script.text


def test_acrn_generator_line_for_post_std_vm1():
    """The line ACRN's own generator writes for this fixture region."""
    text = script_for("v3.3/whl-ipc-i5/hybrid_rt_launch_1user_vm_waag.xml",
                      "POST_STD_VM1")
    lines = [line.strip() for line in text.splitlines()]
    assert "$(add_virtual_device 8 ivshmem hv:/shm_region_0,2)" in lines
    start = lines.index("dm_params=(")
    assert lines[start + 1:start + 10] == [
        "--windows", "$(add_cpus 0 2)", "-m 4096M",
        "--ovmf /usr/share/acrn/bios/OVMF.fd",
        "$(add_virtual_device 1:0 lpc)", "-l 'com1,stdio'",
        "$(add_virtual_device 0:0 hostbridge)",
        "$(add_virtual_device 8 ivshmem hv:/shm_region_0,2)",
        '$(add_virtual_device 3 virtio-net '
        '"tap=WaaG,mac_seed=${mac}-POST_STD_VM1")']


def all_golden_scripts() -> list[Path]:
    return sorted(GOLDEN.rglob("*.sh"))


def test_goldens_pass_bash_n():
    """Every golden script parses (bash -n)."""
    scripts = all_golden_scripts()
    assert len(scripts) == 65
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)],
                                capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)


def test_goldens_pass_shellcheck():
    """Every golden script passes shellcheck with no finding at all."""
    if shutil.which("shellcheck") is None:
        if REQUIRE_TOOLS:
            pytest.fail("shellcheck is required here but not installed")
        pytest.skip("shellcheck is not installed (apt-get install "
                    "shellcheck)")
    result = subprocess.run(
        ["shellcheck", "--shell=bash", *map(str, all_golden_scripts())],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[:3000]


# --------------------------------------------------------------------------
# Two regions, each VM its own VBDF; region ids by acrn-dm version

TWO_REGIONS = """          <IVSHMEM_VMS>
            <IVSHMEM_VM>
              <VM_NAME>PRE_RT_VM0</VM_NAME>
              <VBDF>00:08.0</VBDF>
            </IVSHMEM_VM>
            <IVSHMEM_VM>
              <VM_NAME>POST_STD_VM1</VM_NAME>
              <VBDF>00:08.0</VBDF>
            </IVSHMEM_VM>
          </IVSHMEM_VMS>
        </IVSHMEM_REGION>
        <IVSHMEM_REGION>
          <NAME>shm_region_1</NAME>
          <PROVIDED_BY>Device Model</PROVIDED_BY>
          <IVSHMEM_SIZE>4</IVSHMEM_SIZE>
          <IVSHMEM_REGION_ID>7</IVSHMEM_REGION_ID>
          <IVSHMEM_VMS>
            <IVSHMEM_VM>
              <VM_NAME>POST_STD_VM1</VM_NAME>
              <VBDF>00:0a.0</VBDF>
            </IVSHMEM_VM>
            <IVSHMEM_VM>
              <VM_NAME>POST_STD_VM2</VM_NAME>
              <VBDF>00:0c.0</VBDF>
            </IVSHMEM_VM>
          </IVSHMEM_VMS>"""


def two_regions(tmp_path: Path) -> Path:
    text = WAAG.read_text()
    old = TWO_REGIONS.split("        </IVSHMEM_REGION>")[0]
    assert text.count(old) == 1
    target = tmp_path / "two_regions.xml"
    target.write_text(text.replace(old, TWO_REGIONS))
    return target


@pytest.mark.parametrize("version, expected", [
    ("3.3", {
        "POST_STD_VM1": "POST_STD_VM1: -s 10,ivshmem,dm:/shm_region_1,4,7 "
        "-s 8,ivshmem,hv:/shm_region_0,2",
        "POST_STD_VM2": "POST_STD_VM2: -s 12,ivshmem,dm:/shm_region_1,4,7"}),
    ("3.2", {
        "POST_STD_VM1": "POST_STD_VM1: -s 10,ivshmem,dm:/shm_region_1,4 "
        "-s 8,ivshmem,hv:/shm_region_0,2",
        "POST_STD_VM2": "POST_STD_VM2: -s 12,ivshmem,dm:/shm_region_1,4"}),
])
def test_each_vm_gets_its_own_slot(tmp_path, version, expected):
    """VMs of one region take their own VBDF's slot; id from 3.3 on."""
    scenario = two_regions(tmp_path)
    result = run_acrn_shm(
        ["launch-script", str(scenario), "--board", str(WHL_BOARD),
         "--ivshmem-args", "--acrn-version", version], tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == list(expected.values())


def test_ivshmem_args_one_vm(tmp_path):
    """With one VM the raw arguments are printed bare, ready to paste."""
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL_BOARD),
         "--vm", "POST_STD_VM1", "--ivshmem-args"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "-s 8,ivshmem,hv:/shm_region_0,2\n", "")


def test_scripts_written_to_folder(tmp_path):
    """-o writes ACRN's file names, executable, and says so."""
    out = tmp_path / "out"
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL_BOARD), "-o",
         str(out)], tmp_path)
    assert result.returncode == 0
    assert result.stderr == (
        f"wrote {out}/launch_user_vm_id1.sh (POST_STD_VM1)\n"
        f"wrote {out}/launch_user_vm_id2.sh (POST_STD_VM2)\n")
    script = out / "launch_user_vm_id1.sh"
    assert script.stat().st_mode & 0o777 == 0o755
    assert script.read_text() == script_for(
        "v3.3/whl-ipc-i5/hybrid_rt_launch_1user_vm_waag.xml",
        "POST_STD_VM1")


# --------------------------------------------------------------------------
# Slot clashes and refusals


def clashing(tmp_path: Path) -> Path:
    """two_regions with shm_region_1 on slot 8 of POST_STD_VM1 too."""
    scenario = two_regions(tmp_path)
    scenario.write_text(scenario.read_text().replace(
        "<VBDF>00:0a.0</VBDF>", "<VBDF>01:08.0</VBDF>"))
    return scenario


def test_slot_clash_is_a_diagnostic(tmp_path):
    """Two devices on slot 8 of one VM: ISM501, exit 1, nothing written."""
    scenario = clashing(tmp_path)
    out = tmp_path / "out"
    result = run_acrn_shm(
        ["launch-script", str(scenario), "--board", str(WHL_BOARD), "-o",
         str(out)], tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"{scenario}:39:21: ISM501 [error] VM 'POST_STD_VM1': IVSHMEM "
        "region 'shm_region_0' wants slot 8, which IVSHMEM region "
        "'shm_region_1' already has\n"
        "    hint: give each device of the VM its own VBDF device number\n"
        "1 error in 1 file\n"
        f"acrn-shm: {scenario} has errors; no launch script written\n")
    assert not out.exists()


@pytest.mark.parametrize("config", [
    'severity = { ISM501 = "warning" }\n', 'ignore = ["ISM5"]\n'])
def test_slot_clash_follows_pyproject_like_lint(tmp_path, config):
    """ISM501 as a warning (or ignored) in pyproject.toml does not stop
    the scripts; before, launch-script linted with the defaults and
    refused what lint, reading the same pyproject.toml, passed."""
    scenario = clashing(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.acrn-shm]\n" + config)
    result = run_acrn_shm(
        ["launch-script", str(scenario), "--board", str(WHL_BOARD),
         "--ivshmem-args"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "POST_STD_VM1: -s 8,ivshmem,dm:/shm_region_1,4,7 "
        "-s 8,ivshmem,hv:/shm_region_0,2\n"
        "POST_STD_VM2: -s 12,ivshmem,dm:/shm_region_1,4,7\n", "")


def test_slot_clash_suppressed_inline(tmp_path):
    """<!-- acrn-shm: ignore ISM501 --> silences the clash for
    launch-script as for lint; before, lint passed and the slot check
    after planning still refused with ISM501 at 39:21."""
    scenario = clashing(tmp_path)
    scenario.write_text(scenario.read_text().replace(
        "<IVSHMEM>", "<!-- acrn-shm: ignore ISM501 --><IVSHMEM>", 1))
    result = run_acrn_shm(["lint", str(scenario), "--board",
                           str(WHL_BOARD)], tmp_path)
    assert (result.returncode, result.stdout) == (
        0, "no problems in 1 file\n")
    out = tmp_path / "out"
    result = run_acrn_shm(
        ["launch-script", str(scenario), "--board", str(WHL_BOARD), "-o",
         str(out)], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "", f"wrote {out / 'launch_user_vm_id1.sh'} (POST_STD_VM1)\n"
        f"wrote {out / 'launch_user_vm_id2.sh'} (POST_STD_VM2)\n")


def test_unknown_vm_and_missing_board(tmp_path):
    """A VM that is not post-launched is one clear line, exit 2."""
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL_BOARD), "--vm",
         "PRE_RT_VM0"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"acrn-shm: error: {WAAG}: 'PRE_RT_VM0' is not a post-launched VM "
        "of the scenario; post-launched VMs: POST_STD_VM1, POST_STD_VM2\n")
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(tmp_path / "no.xml")],
        tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("acrn-shm: error: ")
    assert result.stderr.count("\n") == 1 and "no.xml" in result.stderr


PAYLOADS = [
    "$(touch CANARY)", "`touch CANARY`", "a;touch CANARY", "a && touch "
    "CANARY", "a|touch CANARY", "'; touch CANARY; '", "a\ntouch CANARY",
    "${IFS}touch${IFS}CANARY", "a>CANARY",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_block_path_is_refused(tmp_path, payload):
    """A block path with shell syntax never reaches a script."""
    scenario = tmp_path / "hostile.xml"
    original = WAAG.read_text().replace(
        "<block>./win10-ltsc.img</block>",
        f"<block>{escape(payload)}</block>")
    scenario.write_text(original)
    result = run_acrn_shm(
        ["launch-script", str(scenario), "--board", str(WHL_BOARD),
         "--vm", "POST_STD_VM1", "-o", str(tmp_path / "out")], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    shown = payload.replace("\n", "\\x0a")
    # Located at the value, found among POST_STD_VM1's elements.
    assert result.stderr == (
        f"acrn-shm: error: {scenario}:162:14: VM 'POST_STD_VM1': block "
        f"'{shown}' cannot be put in a launch script safely: use letters, "
        "digits and _ @ % + = : , . / - only\n")
    assert scenario.read_text() == original
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_customized_parameters_stay_words(tmp_path, payload):
    """customized_parameters reach acrn-dm as quoted words, never code."""
    scenario = tmp_path / "hostile.xml"
    scenario.write_text(WAAG.read_text().replace(
        "<PTM>n</PTM>\n    <os_type>Windows OS",
        "<PTM>n</PTM>\n    <customized_parameters>--x "
        f"{escape(payload.replace(chr(39), ''))}</customized_parameters>"
        "\n    <os_type>Windows OS", 1))
    inputs = load_for_launch(str(scenario), str(WHL_BOARD))
    (script,) = write_scripts(inputs, ["POST_STD_VM1"], (3, 3), "t")
    words = dm_params(script.text, tmp_path)
    assert not (tmp_path / "CANARY").exists()
    start = words.index("--logger_setting") + 2
    assert words[start:] == [
        *shlex.split("--x " + payload.replace(chr(39), "")), "POST_STD_VM1"]


LEGACY = ACRN_DATA / "v2.7" / "whl-ipc-i5"


def test_legacy_launch_value_refused_where_it_is(tmp_path):
    """A value from a v2.7 launch XML is refused at its line in that
    file, not in the v3 conversion made in memory."""
    launch = tmp_path / "launch.xml"
    text = (LEGACY / "hybrid_rt_launch_1user_vm_waag.xml").read_text()
    marker = "./a/b.img\">"
    assert text.count(marker + "./win10-ltsc.img<") == 1
    launch.write_text(text.replace(marker + "./win10-ltsc.img<",
                                   marker + "./a$(touch CANARY).img<"))
    result = run_acrn_shm(
        ["launch-script", str(LEGACY / "hybrid_rt.xml"), "--launch",
         str(launch), "--board", str(LEGACY / "whl-ipc-i5.xml"), "-o",
         str(tmp_path / "out")], tmp_path)
    column = text.splitlines()[40].index(marker) + len(marker) + 1
    assert (result.returncode, result.stdout, result.stderr) == (2, "", (
        f"acrn-shm: error: {launch}:41:{column}: VM 'POST_STD_VM1': block "
        "'./a$(touch CANARY).img' cannot be put in a launch script "
        "safely: use letters, digits and _ @ % + = : , . / - only\n"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("old, new, message", [
    ("<vm_type>STANDARD_VM</vm_type>", "<vm_type>STANDARD VM</vm_type>",
     "vm_type 'STANDARD VM' cannot be put in a launch script safely: "
     "use letters, digits and _ @ % + = : , . / - only"),
    ("<SCHEDULER>SCHED_BVT</SCHEDULER>",
     "<SCHEDULER>$(reboot)</SCHEDULER>",
     "scheduler '$(reboot)' cannot be put in a launch script safely: "
     "use letters, digits and _ @ % + = : , . / - only"),
    ("<interface_name>WaaG</interface_name>",
     "<interface_name>-WaaG</interface_name>",
     "virtio network interface '-WaaG' cannot be put in a launch script "
     "safely: ip would take a leading '-' for an option"),
])
def test_values_the_schema_restricts_are_checked_again(tmp_path, old, new,
                                                       message):
    """Lint can be silenced; the script writer checks on its own, at the
    value's line."""
    scenario = tmp_path / "s.xml"
    # Changed in POST_STD_VM1 (from line 131), or in <hv>.
    head, vm = WAAG.read_text().split('<vm id="2">')
    where = head if "SCHEDULER" in old else vm
    assert old in where
    changed = where.replace(old, new, 1)
    scenario.write_text('<vm id="2">'.join(
        (changed, vm) if where is head else (head, changed)))
    inputs = load_for_launch(str(scenario), str(WHL_BOARD))
    with pytest.raises(UsageError) as refused:
        write_scripts(inputs, ["POST_STD_VM1"], (3, 3), "t")
    lines = scenario.read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1)
                if new in text)
    column = lines[line - 1].index(new) + new.index(">") + 2
    assert str(refused.value) == (
        f"{scenario}:{line}:{column}: VM 'POST_STD_VM1': {message}")


def test_partitions_each_get_a_folder(tmp_path):
    """Two partitions with one base name get two mount folders; one
    partition used twice is mounted once."""
    scenario = tmp_path / "s.xml"
    scenario.write_text(WAAG.read_text().replace(
        "<block>./win10-ltsc.img</block>",
        "<block>/dev/sda1:a.img</block><block>/dev/x/sda1:b.img</block>"
        "<block>/dev/sda1:c.img</block>"))
    inputs = load_for_launch(str(scenario), str(WHL_BOARD))
    (script,) = write_scripts(inputs, ["POST_STD_VM1"], (3, 3), "t")
    assert script.plan.init == (
        "probe_modules", "mac=$(cat /sys/class/net/e*/address)",
        "mac=${mac:0:17}", "dir_sda1=$(mount_partition /dev/sda1)",
        "dir_sda1_2=$(mount_partition /dev/x/sda1)")
    assert script.plan.deinit == ('unmount_partition "${dir_sda1}"',
                                  'unmount_partition "${dir_sda1_2}"')
    assert [line.strip() for line in script.text.splitlines()
            if "virtio-blk" in line] == [
        '$(add_virtual_device 4 virtio-blk "${dir_sda1}/a.img")',
        '$(add_virtual_device 5 virtio-blk "${dir_sda1_2}/b.img")',
        '$(add_virtual_device 6 virtio-blk "${dir_sda1}/c.img")']


@pytest.mark.parametrize(("device", "variable"), [
    ("./", "dir__"), ("/", "dir_partition"), ("//", "dir_partition"),
    ("/dev/sdb2/", "dir_sdb2")])
def test_partition_folder_names_are_never_bare(tmp_path, device, variable):
    """Found by fuzz_launch_script: a device path ending in '/' gave the
    folder variable the bare name 'dir_'."""
    scenario = tmp_path / "s.xml"
    scenario.write_text(WAAG.read_text().replace(
        "<block>./win10-ltsc.img</block>", f"<block>{device}:a.img</block>"))
    inputs = load_for_launch(str(scenario), str(WHL_BOARD))
    (script,) = write_scripts(inputs, ["POST_STD_VM1"], (3, 3), "t")
    assert script.plan.init[-1] == (
        f"{variable}=$(mount_partition {device})")
    assert script.plan.deinit == (f'unmount_partition "${{{variable}}}"',)


def test_v3_scenario_with_launch_xml_names_the_file(tmp_path):
    """Found by fuzz_launch_script: the line started with the option."""
    result = run_acrn_shm(
        ["launch-script", str(WAAG), "--board", str(WHL_BOARD), "--launch",
         str(LEGACY / "hybrid_rt_launch_1user_vm_waag.xml")], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", (
        f"acrn-shm: error: {WAAG}: is a v3 scenario; --launch is for "
        "legacy (v2.x) ones\n"))


def test_pcpu_the_board_lacks_is_located(tmp_path):
    """Found by fuzz_launch_script: no file and line in the message."""
    scenario = tmp_path / "s.xml"
    text = WAAG.read_text()
    old = "<pcpu_id>1</pcpu_id>\n      </pcpu>\n    </cpu_affinity>\n" \
        "    <memory>\n      <size>4096"
    assert text.count(old) == 1
    scenario.write_text(text.replace(old, old.replace(">1<", ">41<")))
    result = run_acrn_shm(["launch-script", str(scenario), "--board",
                           str(WHL_BOARD), "--vm", "POST_STD_VM1"],
                          tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", (
        f"acrn-shm: error: {scenario}:140:18: VM 'POST_STD_VM1' is pinned "
        f"to pCPU '41', which board {WHL_BOARD} does not have\n"))
