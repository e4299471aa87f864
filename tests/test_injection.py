"""Shell injection: hostile region and VM names in a real v3.3 scenario.

Each payload is put into a copy of ACRN's whl-ipc-i5 ``hybrid_rt.xml``
as a region name or as a VM name (escaped for XML), and ``acrn-shm
launch-script``, ``qemu-args`` and ``host-prep --check`` run on it. A
payload is either refused (exact exit code and message naming
``file:line:column``) or reaches the output only quoted: the emitted
words are parsed back by bash in a sandbox folder, where a payload that
escaped its quotes would create ``CANARY`` or expand to something else.

The matrix runs the real ``acrn-shm`` entry point in this process
(``cli.main`` with ``sys.argv`` set; the schemas are compiled once);
``test_real_processes_agree`` checks that separate processes say the
same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import ACRN_DATA, run_acrn_shm
from test_build import (
    BOARD,
    FAKE_V2,
    FAKE_V3,
    LEGACY,
    V3,
    environ,  # noqa: F401 - a fixture
)
from test_qemu import qemu_options

from acrn_ivshmem import cli
from acrn_ivshmem.build.plan import BuildRequest, plan_build
from acrn_ivshmem.errors import InputError, shortened

WHL = ACRN_DATA / "v3.3" / "whl-ipc-i5"
REGION = "<NAME>shm_region_0</NAME>"
VM = "POST_STD_VM1"

PAYLOADS = [
    "$(touch CANARY)",
    "`touch CANARY`",
    "a;touch CANARY",
    "a|touch CANARY",
    "a&&touch CANARY",
    "a>CANARY",
    "a\ntouch CANARY",
    "a\tb",
    "a'b",
    'a"b',
    "'; touch CANARY; '",
    "${IFS}touch${IFS}CANARY",
    "$HOME",
    "*",
    "a b",
    "a\\b",
    "-opt",
    "--help",
    "a,share=off,mem-path=/etc/passwd",
    "../CANARY",
    "x" * 200,
    "r\u00e9gion",
    "\u5171\u6709",
    "a\u202eb",
    # Parameter operators and other expansions (issue 14, item 1).
    "${a:=x}",
    "${a@P}",
    "${b:-${c:=$(touch CANARY)}}",
    "$((1+2))",
    "<(touch CANARY)",
    "$'\\x41'",
    "{a,b}",
    "~root",
]
IDS = [f"p{n:02}" for n in range(len(PAYLOADS))]

# Names that are odd but allowed everywhere; their scripts must work.
ODD_REGIONS = ["_", "0", "R" * 27, "shm_Region_9"]
ODD_VMS = ["a-b", "_", "Z" * 15, "x-", "9"]

# qemu-args for POST_STD_VM1 of the unmodified scenario.
QEMU_LINE = (
    "-object memory-backend-file,id=shm-shm_region_0,size=2M,share=on,"
    "mem-path=/dev/shm/shm_region_0 -device ivshmem-plain,"
    "id=ivshmem-shm_region_0,memdev=shm-shm_region_0,addr=08.0\n")

pytestmark = pytest.mark.skipif(not WHL.is_dir(),
                                reason=f"{WHL} is missing")


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """The current folder, where a payload run by a shell leaves CANARY;
    holds the board, the scenario copies and ``shm/``."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    (folder / "shm").mkdir()
    shutil.copy(WHL / "whl-ipc-i5.xml", folder / "board.xml")
    monkeypatch.chdir(folder)
    yield folder
    assert not (folder / "CANARY").exists()


@pytest.fixture
def acrn_shm(capsys, monkeypatch):
    """Run ``acrn-shm ARGV`` in this process; (exit code, stdout, stderr)."""
    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["acrn-shm", *argv])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def shown(text: str) -> str:
    """``text`` as messages show it: control characters as ``\\xNN``,
    cut to 80 characters."""
    return shortened(text)


def scenario_with(folder: Path, old: str, new: str) -> Path:
    """A copy of hybrid_rt.xml with every ``old`` replaced by ``new``."""
    text = (WHL / "hybrid_rt.xml").read_text()
    assert old in text
    path = folder / "scenario.xml"
    path.write_text(text.replace(old, new))
    return path


def where(path: Path, marker: str, offset: int = 0) -> str:
    """``LINE:COLUMN`` of ``marker[offset]`` in ``path``."""
    text = path.read_text()
    start = text.index(marker) + offset
    line = text.count("\n", 0, start) + 1
    return f"{line}:{start - text.rfind(chr(10), 0, start)}"


def shell_words(line: str, folder: Path) -> list[str]:
    """The words bash makes of ``line``, run in ``folder`` (a payload that
    escaped its quotes would create CANARY there, or expand)."""
    script = folder / "words.sh"
    script.write_text(f"set -- {line}\nprintf '%s\\0' \"$@\"\n")
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", str(script)], cwd=folder,
        capture_output=True, env={"PATH": os.environ["PATH"],
                                  "HOME": str(folder), "LC_ALL": "C.UTF-8"})
    script.unlink()
    assert (result.returncode, result.stderr) == (0, b"")
    assert not (folder / "CANARY").exists()
    return [word.decode() for word in result.stdout.split(b"\0")[:-1]]


def lint_refusal(path: Path, name: str) -> str:
    """What launch-script prints for region name ``name``: ISM207 for a
    character outside [A-Za-z0-9_], ISM208 for more than 27 bytes."""
    findings = []
    bad = re.search(r"[^A-Za-z0-9_]", name)
    if bad:
        findings.append(
            f"ISM207 [error] region name '{shown(name)}' contains "
            f"'{shown(bad.group())}'; only ASCII letters, digits and '_' "
            "are allowed\n"
            f"    hint: e.g. '{shown(re.sub(r'[^A-Za-z0-9_]', '_', name))}'\n")
    size = len(name.encode())
    if size > 27:
        findings.append(
            f"ISM208 [error] region name '{shown(name)}' is {size} bytes; "
            f"with 'hv:/' and the final NUL it needs {size + 5} of ACRN's "
            "32-byte field (names up to 27 bytes)\n"
            "    hint: shorten it to at most 27 characters\n")
    count = f"{len(findings)} error{'s' if len(findings) > 1 else ''}"
    return ("".join(f"{path}:29:17: {finding}" for finding in findings)
            + f"{count} in 1 file\n"
            f"acrn-shm: {path} has errors; no launch script written\n")


# --- launch-script -----------------------------------------------------------

@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_region_name_payload_never_reaches_a_launch_script(
        sandbox, acrn_shm, payload):
    scenario = scenario_with(sandbox, REGION, f"<NAME>{escape(payload)}"
                             "</NAME>")
    assert acrn_shm("launch-script", str(scenario), "--board", "board.xml",
                    "-o", "out") == (1, "", lint_refusal(scenario, payload))
    # With the lint findings suppressed, the planner refuses on its own.
    scenario.write_text(scenario.read_text().replace(
        "<NAME>", "<!-- acrn-shm: ignore ISM207,ISM208 --><NAME>", 1))
    column = len("          <!-- acrn-shm: ignore ISM207,ISM208 --><NAME>")
    assert acrn_shm("launch-script", str(scenario), "--board", "board.xml",
                    "-o", "out") == (2, "", (
        f"acrn-shm: error: {scenario}:29:{column + 1}: VM 'POST_STD_VM1': "
        f"region name '{shown(payload)}' cannot be put in a launch script "
        "safely: [A-Za-z0-9_]{1,27}\n"))
    assert not (sandbox / "out").exists()


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_vm_name_payload_never_reaches_a_launch_script(
        sandbox, acrn_shm, payload):
    scenario = scenario_with(sandbox, VM, escape(payload))
    # Located at the VM's name.
    at = where(scenario, f"<name>{escape(payload)}</name>", len("<name>"))
    allowed = ("acrn-dm would take a leading '-' for an option"
               if payload in ("-opt", "--help")
               else "1-15 letters, digits, '_' or '-'")
    for extra in ([], [f"--vm={payload}"]):
        assert acrn_shm("launch-script", str(scenario), "--board",
                        "board.xml", "-o", "out", *extra) == (2, "", (
            f"acrn-shm: error: {scenario}:{at}: VM '{shown(payload)}': "
            f"VM name '{shown(payload)}' cannot be put in a launch script "
            f"safely: {allowed}\n"))
    assert not (sandbox / "out").exists()


def dm_params(script: str, folder: Path,
              env: dict[str, str] | None = None) -> list[str]:
    """The words of the script's dm_params array, evaluated by bash in
    ``folder`` (with ``env``) with helper stubs that print what the real
    ones print."""
    array = re.search(r"^dm_params=\(\n.*?^\)$", script,
                      re.S | re.M).group(0)
    probe = folder / "probe.sh"
    probe.write_text(
        "mac=00:00:00:00:00:00\n"
        "add_cpus() { local IFS=,; echo \"--cpu_affinity $*\"; }\n"
        "add_virtual_device() { echo \"-s $1,$2${3:+,$3}\"; }\n"
        "add_passthrough_device() { echo \"-s $1,passthru,$2\"; }\n"
        "add_interrupt_storm_monitor() { echo \"--intr_monitor $1\"; }\n"
        "add_logger_settings() { echo \"--logger_setting $1\"; }\n"
        f"{array}\nprintf '%s\\0' \"${{dm_params[@]}}\"\n")
    result = subprocess.run(["bash", "--norc", "--noprofile", str(probe)],
                            cwd=folder, capture_output=True, env=env)
    probe.unlink()
    assert (result.returncode, result.stderr) == (0, b"")
    return [word.decode() for word in result.stdout.split(b"\0")[:-1]]


@pytest.mark.parametrize("region, vm", [
    *((region, VM) for region in ODD_REGIONS),
    *(("shm_region_0", vm) for vm in ODD_VMS),
])
def test_odd_but_allowed_names_make_working_scripts(
        sandbox, acrn_shm, region, vm):
    scenario = scenario_with(sandbox, REGION, f"<NAME>{region}</NAME>")
    scenario.write_text(scenario.read_text().replace(VM, vm))
    code, script, err = acrn_shm("launch-script", str(scenario), "--board",
                                 "board.xml", f"--vm={vm}")
    assert (code, err) == (0, "")
    assert f"\n# Launch script for VM name: {vm}\n" in script
    checked = subprocess.run(["bash", "-n"], input=script.encode(),
                             capture_output=True)
    assert (checked.returncode, checked.stderr) == (0, b"")
    words = dm_params(script, sandbox)
    assert words[-1] == vm
    assert f"8,ivshmem,hv:/{region},2" in words


# --- qemu-args and host-prep -------------------------------------------------

def check_qemu_words(words: list[str], path: str) -> None:
    """``-object memory-backend-file,... -device ivshmem-plain,...`` with
    exactly the expected options, the backing file being ``path``."""
    assert [words[0], words[2]] == ["-object", "-device"] and len(words) == 4
    backend = qemu_options(words[1])
    device = qemu_options(words[3])
    assert backend[0] == "memory-backend-file"
    assert device[0] == "ivshmem-plain"
    backend_keys = dict(option.split("=", 1) for option in backend[1:])
    device_keys = dict(option.split("=", 1) for option in device[1:])
    assert [option.split("=")[0] for option in backend[1:]] == [
        "id", "size", "share", "mem-path"]
    assert [option.split("=")[0] for option in device[1:]] == [
        "id", "memdev", "addr"]
    assert backend_keys["mem-path"] == path
    assert (backend_keys["size"], backend_keys["share"]) == ("2M", "on")
    assert device_keys["memdev"] == backend_keys["id"]
    assert device_keys["addr"] == "08.0"
    for key in (backend_keys["id"], device_keys["id"]):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", key), key


def control_or_path_refusal(payload: str) -> str | None:
    """The qemu-args/host-prep refusal of region name ``payload``."""
    if re.search(r"[\x00-\x1f\x7f-\x9f]", payload):
        return (f"region name '{shown(payload)}' contains a control "
                "character; QEMU command lines cannot carry it")
    if "/" in payload:
        return (f"region name '{payload}' cannot be the backing file's "
                "name: it must be one file name (not empty, '.', '..', "
                "and without '/')")
    return None


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_region_name_payload_is_one_quoted_qemu_value(
        sandbox, acrn_shm, payload):
    scenario = scenario_with(sandbox, REGION, f"<NAME>{escape(payload)}"
                             "</NAME>")
    code, out, err = acrn_shm("qemu-args", "--scenario", str(scenario),
                              "--vm", VM)
    refusal = control_or_path_refusal(payload)
    if refusal is not None:
        assert (code, out, err) == (
            2, "", f"acrn-shm: error: {scenario}:28:9: {refusal}\n")
        return
    assert (code, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    check_qemu_words(shell_words(out, sandbox), f"/dev/shm/{payload}")


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_region_name_payload_is_quoted_in_host_prep_commands(
        sandbox, acrn_shm, payload):
    scenario = scenario_with(sandbox, REGION, f"<NAME>{escape(payload)}"
                             "</NAME>")
    shm = sandbox / "shm"
    code, out, err = acrn_shm("host-prep", "--scenario", str(scenario),
                              "--vm", VM, "--shm-dir", str(shm), "--check")
    refusal = control_or_path_refusal(payload)
    if refusal is not None:
        assert (code, out, err) == (
            2, "", f"acrn-shm: error: {scenario}:28:9: {refusal}\n")
        return
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[0] == f"problem: {shm}/{payload}: missing"
    assert lines[1] == "run as root:"
    commands = [shell_words(line, sandbox) for line in lines[2:]]
    assert commands == [["truncate", "-s", "2M", f"{shm}/{payload}"],
                        ["chmod", "660", f"{shm}/{payload}"]]
    assert os.listdir(shm) == []


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_vm_name_payload_stays_out_of_qemu_args(sandbox, acrn_shm, payload):
    scenario = scenario_with(sandbox, VM, escape(payload))
    assert acrn_shm("qemu-args", "--scenario", str(scenario),
                    f"--vm={payload}") == (0, QEMU_LINE, "")


# --- the same in separate processes ------------------------------------------

@pytest.mark.parametrize("payload", ["$(touch CANARY)", "-opt"])
def test_real_processes_agree(sandbox, acrn_shm, payload):
    for old, new, argv in [
        (REGION, f"<NAME>{escape(payload)}</NAME>",
         ["launch-script", "scenario.xml", "--board", "board.xml"]),
        (REGION, f"<NAME>{escape(payload)}</NAME>",
         ["qemu-args", "--scenario", "scenario.xml", "--vm", VM]),
        (VM, escape(payload),
         ["launch-script", "scenario.xml", "--board", "board.xml"]),
    ]:
        scenario_with(sandbox, old, new)
        result = run_acrn_shm(argv, sandbox)
        assert (result.returncode, result.stdout, result.stderr) == \
            acrn_shm(*argv), argv


# --- build: names ACRN's make puts in makefiles and shell commands -----------

BUILD_PAYLOADS = ["$(shell touch CANARY)", "a;touch CANARY",
                  "`touch CANARY`", "a b", "${a@P}", "a\nb"]


@pytest.mark.parametrize("payload", BUILD_PAYLOADS)
def test_board_and_scenario_names_never_reach_make(tmp_path, request,
                                                   payload):
    """ACRN's make reads the board name from the board XML (v3) and the
    scenario name from the scenario's root (v2.x): refused before make
    runs, at the root's line."""
    env = request.getfixturevalue("environ")  # test_build's
    board = tmp_path / "board.xml"
    board.write_text(BOARD.read_text().replace(
        'board="demo-nuc"', f'board="{escape(payload, {chr(10): "&#10;"})}"'))
    legacy = tmp_path / "legacy.xml"
    legacy.write_text(LEGACY.read_text().replace(
        'scenario="hybrid_rt"',
        f'scenario="{escape(payload, {chr(10): "&#10;"})}"'))
    for tree, board_path, scenario, what, path in (
            (FAKE_V3, board, V3, "board", board),
            (FAKE_V2, BOARD, legacy, "scenario", legacy)):
        with pytest.raises(InputError) as refused:
            plan_build(BuildRequest(str(tree), str(board_path),
                                    str(scenario)), env)
        assert str(refused.value) == (
            f"{path}:4:1: ACRN would name the {what} '{shown(payload)}', "
            "which its make would expand in makefiles and shell commands; "
            "use only letters, digits and _ . + -")
    assert not (tmp_path / "CANARY").exists()
