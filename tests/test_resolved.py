"""The resolved model: typed facts read once from the syntax model, the
one policy for missing and malformed values, and the load_* entries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ACRN_DATA, positions, run_acrn_shm
from hypothesis import given, settings
from hypothesis import strategies as st

from acrn_ivshmem.build.plan import ShmRegion, expected_regions
from acrn_ivshmem.errors import InputError, UsageError
from acrn_ivshmem.io.xmlio import Loc, parse_file
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint
from acrn_ivshmem.model.loader import load
from acrn_ivshmem.model.resolved import (
    EMPTY, MISSING, NOT_DECIMAL, NOT_VBDF, OUT_OF_RANGE, TOO_LONG, load_board,
    load_launch, load_scenario, resolve, resolve_size,
)
from acrn_ivshmem.model.syntax import Bdf, Scenario, Value, VmKind
from acrn_ivshmem.plan.qemu import plan_from_file
from acrn_ivshmem.units import MIB

PROJECT = Path(__file__).resolve().parent.parent
V3 = ACRN_DATA / "v3.3" / "whl-ipc-i5"
V27 = ACRN_DATA / "v2.7" / "whl-ipc-i5"
REASONS = (MISSING, EMPTY, NOT_DECIMAL, TOO_LONG)


def facts_of(region) -> tuple:
    return (region.name, region.provider, region.provider_explicit,
            region.size_mb, region.size_reason, region.size_explicit,
            region.region_id, region.region_id_reason,
            region.region_id_explicit,
            [(m.vm.name if m.vm else None, m.vbdf) for m in region.members])


def scenario_of(tmp_path, ivshmem: str, vms: str) -> Scenario:
    path = tmp_path / "s.xml"
    path.write_text(f"<acrn-config><hv><FEATURES><IVSHMEM>{ivshmem}"
                    f"</IVSHMEM></FEATURES></hv>{vms}</acrn-config>",
                    encoding="utf-8")
    return load_scenario(str(path)).model


def v3_scenario(tmp_path, region: str) -> Scenario:
    return scenario_of(
        tmp_path, f"<IVSHMEM_REGION>{region}</IVSHMEM_REGION>",
        "<vm id='0'><load_order>SERVICE_VM</load_order><name>SOS</name></vm>"
        "<vm id='1'><load_order>POST_LAUNCHED_VM</load_order><name>U</name>"
        "</vm>")


def legacy_scenario(tmp_path, text: str) -> Scenario:
    return scenario_of(
        tmp_path, "<IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>"
        f"<IVSHMEM_REGION>{text}</IVSHMEM_REGION>",
        "<vm id='0'><vm_type>SERVICE_VM</vm_type></vm>"
        "<vm id='1'><vm_type>POST_STD_VM</vm_type></vm>")


# --- real ACRN files ---------------------------------------------------------

def test_v33_hybrid_rt(acrn_data):
    scenario = load_scenario(str(V3 / "hybrid_rt.xml")).model
    assert scenario.resolved is resolve(scenario)  # made once
    assert [(vm.id, vm.name, vm.kind) for vm in scenario.vms] == [
        (0, "PRE_RT_VM0", VmKind.PRE_LAUNCHED),
        (1, "ACRN_Service_VM", VmKind.SERVICE),
        (2, "POST_STD_VM1", VmKind.POST_LAUNCHED),
        (3, "POST_STD_VM2", VmKind.POST_LAUNCHED)]
    (region,) = scenario.resolved.regions
    assert facts_of(region) == (
        "shm_region_0", "hv", True, 2, None, True, 0, None, False,
        [("PRE_RT_VM0", Bdf(0, 8, 0)), ("POST_STD_VM1", Bdf(0, 8, 0))])
    # The syntax stays reachable for messages and edits.
    assert region.syntax.size == Value("2", Loc(31, 25))
    assert region.members[1].syntax.vbdf.loc == Loc(39, 21)


def test_v27_hybrid_rt(acrn_data):
    scenario = load_scenario(str(V27 / "hybrid_rt.xml"), fmt="legacy").model
    (region,) = scenario.resolved.regions
    # Legacy: no VBDFs and no region id in the string.
    assert facts_of(region) == (
        "shm_region_0", "hv", True, 2, None, True, 0, None, False,
        [("PRE_RT_VM0", None), ("POST_STD_VM1", None)])
    assert region.syntax.size == Value("2", Loc(32, 43))


def test_v33_shared_has_no_regions(acrn_data):
    scenario = load_scenario(str(V3 / "shared.xml")).model
    assert scenario.resolved.regions == ()
    assert [vm.kind for vm in scenario.vms] == [VmKind.SERVICE] + [
        VmKind.POST_LAUNCHED] * 6


def test_board_native_bdfs(acrn_data):
    board = load_board(str(V3 / "whl-ipc-i5.xml")).model
    assert len(board.native_bdfs) == 19
    assert sorted(board.native_bdfs)[:5] == [
        Bdf(0, 0, 0), Bdf(0, 2, 0), Bdf(0, 0x12, 0), Bdf(0, 0x14, 0),
        Bdf(0, 0x14, 2)]


def test_device_model_sample():
    scenario = load_scenario(
        str(PROJECT / "scenario-xmls" / "dm_land_v3.xml")).model
    assert [facts_of(r) for r in scenario.resolved.regions] == [
        ("dm_ring", "dm", True, 4, None, True, 1, None, True,
         [("POST_STD_VM1", Bdf(0, 9, 0)), ("POST_RT_VM1", Bdf(0, 10, 0))]),
        ("hv_log", "hv", True, 2, None, True, 2, None, True,
         [("ACRN_Service_VM", Bdf(0, 11, 0)), ("POST_STD_VM2", Bdf(0, 8, 0))]),
    ]


# --- malformed values --------------------------------------------------------

@pytest.mark.parametrize("element, size", [
    ("<IVSHMEM_SIZE>4</IVSHMEM_SIZE>", (4, None, True)),
    ("<IVSHMEM_SIZE> 0004 </IVSHMEM_SIZE>", (4, None, True)),
    ("<IVSHMEM_SIZE>3</IVSHMEM_SIZE>", (3, None, True)),
    ("", (2, None, False)),  # ACRN's default
    ("<IVSHMEM_SIZE></IVSHMEM_SIZE>", (None, EMPTY, True)),
    ("<IVSHMEM_SIZE>4M</IVSHMEM_SIZE>", (None, NOT_DECIMAL, True)),
    ("<IVSHMEM_SIZE>-2</IVSHMEM_SIZE>", (None, NOT_DECIMAL, True)),
    ("<IVSHMEM_SIZE>\u0664</IVSHMEM_SIZE>", (None, NOT_DECIMAL, True)),
    ("<IVSHMEM_SIZE>" + "9" * 1001 + "</IVSHMEM_SIZE>",
     (None, TOO_LONG, True)),
])
def test_v3_sizes(tmp_path, element, size):
    scenario = v3_scenario(
        tmp_path, f"<NAME>r</NAME>{element}<IVSHMEM_VMS><IVSHMEM_VM>"
        "<VM_NAME>U</VM_NAME><VBDF>00:08.0</VBDF></IVSHMEM_VM></IVSHMEM_VMS>")
    (region,) = scenario.resolved.regions
    assert (region.size_mb, region.size_reason, region.size_explicit) == size


@pytest.mark.parametrize("element, region_id", [
    ("", (0, None, False)),
    ("<IVSHMEM_REGION_ID>7</IVSHMEM_REGION_ID>", (7, None, True)),
    ("<IVSHMEM_REGION_ID>65535</IVSHMEM_REGION_ID>", (65535, None, True)),
    ("<IVSHMEM_REGION_ID>65536</IVSHMEM_REGION_ID>",
     (None, OUT_OF_RANGE, True)),
    ("<IVSHMEM_REGION_ID>-1</IVSHMEM_REGION_ID>", (None, NOT_DECIMAL, True)),
    ("<IVSHMEM_REGION_ID/>", (None, EMPTY, True)),
])
def test_v3_region_ids(tmp_path, element, region_id):
    scenario = v3_scenario(tmp_path, f"<NAME>r</NAME>{element}")
    (region,) = scenario.resolved.regions
    assert (region.region_id, region.region_id_reason,
            region.region_id_explicit) == region_id


@pytest.mark.parametrize("element, provider", [
    ("", ("hv", False)),
    ("<PROVIDED_BY>Hypervisor</PROVIDED_BY>", ("hv", True)),
    ("<PROVIDED_BY>Device Model</PROVIDED_BY>", ("dm", True)),
    ("<PROVIDED_BY>hypervisor</PROVIDED_BY>", (None, True)),
])
def test_v3_providers(tmp_path, element, provider):
    scenario = v3_scenario(tmp_path, f"<NAME>r</NAME>{element}")
    (region,) = scenario.resolved.regions
    assert (region.provider, region.provider_explicit) == provider


@pytest.mark.parametrize("vbdf, parsed", [
    ("<VBDF>00:0a.0</VBDF>", Bdf(0, 10, 0)),
    ("<VBDF>1:1F.7</VBDF>", Bdf(1, 0x1F, 7)),
    ("<VBDF> 00:08.0</VBDF>", None),  # ACRN's pattern takes no blanks
    ("<VBDF>00:20.0</VBDF>", None),
    ("", None),
])
def test_v3_members(tmp_path, vbdf, parsed):
    scenario = v3_scenario(
        tmp_path, "<NAME>r</NAME><IVSHMEM_VMS><IVSHMEM_VM><VM_NAME>U"
        f"</VM_NAME>{vbdf}</IVSHMEM_VM><IVSHMEM_VM><VM_NAME>nobody"
        "</VM_NAME></IVSHMEM_VM></IVSHMEM_VMS>")
    (region,) = scenario.resolved.regions
    assert [(m.vm.name if m.vm else None, m.vbdf)
            for m in region.members] == [("U", parsed), (None, None)]


@pytest.mark.parametrize("text, size, malformed", [
    ("hv:/a, 4, 0:1", (4, None), False),
    ("hv:/a, 0x4, 0:1", (None, NOT_DECIMAL), False),
    ("hv:/a, , 0:1", (None, EMPTY), False),
    ("hv:/a", (None, MISSING), True),  # no default in a legacy string
])
def test_legacy_sizes(tmp_path, text, size, malformed):
    (region,) = legacy_scenario(tmp_path, text).resolved.regions
    assert (region.size_mb, region.size_reason) == size
    assert region.syntax.malformed is malformed
    assert region.region_id == 0 and not region.region_id_explicit


def test_legacy_members_by_id(tmp_path):
    (region,) = legacy_scenario(tmp_path, "dm:/a, 2, 1 : 7").resolved.regions
    assert region.provider == "dm"
    assert [(m.syntax.vm.text, m.vm.id if m.vm else None)
            for m in region.members] == [("1", 1), ("7", None)]


LONG_DIGITS = st.builds(lambda digit, count, tail: digit * count + tail,
                        st.sampled_from("0123456789"),
                        st.integers(990, 1010), st.text("0123456789",
                                                       max_size=3))


@given(st.text(max_size=40) | LONG_DIGITS)
def test_any_size_text_is_a_number_or_a_reason(text):
    for legacy in (False, True):
        size, reason = resolve_size(Value(text, Loc(1, 1)), legacy)
        if size is None:
            assert reason in REASONS
        else:
            assert reason is None and size == int(text)
            assert text.isascii() and text.isdecimal()


def test_absent_size_is_a_default_or_missing():
    assert resolve_size(None, legacy=False) == (2, None)
    assert resolve_size(None, legacy=True) == (None, MISSING)


# --- load_scenario, load_board, load_launch ----------------------------------

def test_load_refuses_other_kinds():
    board = str(PROJECT / "board-xmls" / "demo-nuc.xml")
    scenario = str(PROJECT / "scenario-xmls" / "hybrid_rt.xml")
    launch = str(PROJECT / "scenario-xmls" / "dm_land_legacy_launch.xml")
    with pytest.raises(UsageError) as caught:
        load_scenario(board)
    assert str(caught.value) == (
        f"{board}: expected a scenario XML, found a board XML")
    with pytest.raises(UsageError) as caught:
        load_board(scenario)
    assert str(caught.value) == (
        f"{scenario}: expected a board XML, found a legacy XML")
    with pytest.raises(UsageError) as caught:
        load_launch(scenario, refusal="{quoted} is a {kind}")
    assert str(caught.value) == f"'{scenario}' is a legacy"
    with pytest.raises(InputError) as caught:
        load_scenario(scenario, fmt="v3", error=InputError)
    assert str(caught.value) == (
        f"{scenario}: expected a scenario XML, found a legacy XML")
    assert isinstance(load_launch(launch).model.vms, tuple)
    assert load_board(parse_file(board)).model.native_bdfs


def test_load_fills_a_refusal_once(tmp_path):
    odd = tmp_path / "{kind}"
    odd.mkdir()
    board = odd / "b.xml"
    shutil.copy(PROJECT / "board-xmls" / "demo-nuc.xml", board)
    with pytest.raises(UsageError) as caught:
        load_scenario(str(board))
    assert str(caught.value) == (
        f"{board}: expected a scenario XML, found a board XML")


def test_load_reads_through_the_given_loader():
    seen = []

    def via(path):
        seen.append(path)
        return load(path)

    path = str(PROJECT / "scenario-xmls" / "dm_land_v3.xml")
    assert load_scenario(path, via=via).model.format == "v3"
    assert seen == [path]


def test_unreadable_input_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<acrn-config>", encoding="utf-8")
    with pytest.raises(InputError):
        load_scenario(str(bad))


# --- one policy where consumers disagreed ------------------------------------

def without_size(tmp_path, acrn_data) -> Path:
    for name in ("hybrid_rt.xml", "whl-ipc-i5.xml"):
        shutil.copy(V3 / name, tmp_path / name)
    scenario = tmp_path / "hybrid_rt.xml"
    text = scenario.read_text(encoding="utf-8")
    assert text.count("<IVSHMEM_SIZE>2</IVSHMEM_SIZE>") == 1
    scenario.write_text(text.replace("<IVSHMEM_SIZE>2</IVSHMEM_SIZE>", ""),
                        encoding="utf-8")
    return scenario


def test_missing_v3_size_is_acrns_default_everywhere(tmp_path, acrn_data):
    # ACRN's populator makes it 2 MB before the build; lint passes it and
    # build expected 2 MB, but launch-script and qemu-args refused it
    # ("size of region 'shm_region_0' '' cannot be put in a launch
    # script safely"): they now use the size the hypervisor is built with.
    scenario = without_size(tmp_path, acrn_data)
    assert positions([scenario], tmp_path / "whl-ipc-i5.xml") == []
    assert expected_regions(load(str(scenario)).model) == (
        ShmRegion("hv:/shm_region_0", 2 * MIB, 0),)
    done = run_acrn_shm(
        ["launch-script", "hybrid_rt.xml", "--board", "whl-ipc-i5.xml",
         "--vm", "POST_STD_VM1", "--ivshmem-args"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "-s 8,ivshmem,hv:/shm_region_0,2\n", "")
    plan = plan_from_file(str(scenario), "POST_STD_VM1")
    assert [(d.name, d.size_mb) for d in plan.devices] == [
        ("shm_region_0", 2)]


def test_check_launch_reads_the_size_as_a_number(tmp_path, acrn_data):
    # A size of '02' is 2 MB: the script acrn-shm writes says 2, and
    # check-launch compared that with the text '02' (ISM513 on its own
    # script).
    scenario = without_size(tmp_path, acrn_data)
    text = scenario.read_text(encoding="utf-8")
    scenario.write_text(text.replace(
        "<IVSHMEM_VMS>", "<IVSHMEM_SIZE>02</IVSHMEM_SIZE><IVSHMEM_VMS>", 1),
        encoding="utf-8")
    done = run_acrn_shm(
        ["launch-script", "hybrid_rt.xml", "--board", "whl-ipc-i5.xml",
         "--vm", "POST_STD_VM1", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_acrn_shm(
        ["check-launch", "out/launch_user_vm_id1.sh", "--scenario",
         "hybrid_rt.xml"], tmp_path)
    assert (done.returncode, done.stdout) == (0, "no problems in 1 file\n")


def test_a_size_int_cannot_read_is_a_finding(tmp_path):
    # 5000 digits: int() refuses more than 4300, and lint stopped with
    # an internal error; it is a size that is not allowed.
    path = tmp_path / "s.xml"
    path.write_text((PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text(
        encoding="utf-8").replace("<IVSHMEM_SIZE>4<",
                                  "<IVSHMEM_SIZE>" + "9" * 5000 + "<"),
        encoding="utf-8")
    assert (22, 25, "ISM201") in positions([path])
    done = run_acrn_shm(["graph", "s.xml"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "size 99999" in done.stdout


def test_upgrade_reads_a_long_size_as_a_number(tmp_path, acrn_data):
    # The upgrade stopped with an internal error (int() of 5000 digits).
    text = (V27 / "hybrid_rt.xml").read_text(encoding="utf-8")
    assert text.count("hv:/shm_region_0, 2, 0:2") == 1
    (tmp_path / "s.xml").write_text(text.replace(
        "hv:/shm_region_0, 2, 0:2", "hv:/shm_region_0, " + "9" * 5000
        + ", 0:2"), encoding="utf-8")
    done = run_acrn_shm(["upgrade", "s.xml", "-o", "v3.xml"], tmp_path)
    shown = "9" * 79 + "\u2026"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"acrn-shm: error: s.xml:32:25: cannot convert IVSHMEM_REGION "
        f"'hv:/shm_region_0, {'9' * 61}\u2026': size {shown} MB is not one "
        "of 2, 4, 8, 16, 32, 64, 128, 256, 512\n")
    assert not (tmp_path / "v3.xml").exists()


@pytest.mark.parametrize("text, message", [
    ("65536", "region 'dm_ring' id '65536' is above 65535; the guest sees "
     "it as a 16-bit PCI subsystem id"),
    ("9" * 5000, f"region 'dm_ring' id '{'9' * 79}\u2026' is above 65535; "
     "the guest sees it as a 16-bit PCI subsystem id"),
    ("0x10", "region 'dm_ring' id '0x10' is not a decimal integer from 0 "
     "to 65535"),
    ("65535", None),
])
def test_region_id_rule_reads_the_facts(tmp_path, text, message):
    path = tmp_path / "s.xml"
    path.write_text((PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text(
        encoding="utf-8").replace("<IVSHMEM_REGION_ID>1<",
                                  f"<IVSHMEM_REGION_ID>{text}<"),
        encoding="utf-8")
    result = lint([str(path)], None, LintConfig(select=("ISM211",)))
    assert [(d.line, d.column, d.message) for d in result.diagnostics] == (
        [(23, 30, message)] if message else [])


def test_a_vm_id_int_cannot_read_names_no_vm(tmp_path, acrn_data):
    # Legacy VM ids of 5000 digits stopped lint (ISM204, ISM205), regions,
    # graph and upgrade with an internal error; they name no VM.
    text = (V27 / "hybrid_rt.xml").read_text(encoding="utf-8")
    (tmp_path / "s.xml").write_text(text.replace(
        "hv:/shm_region_0, 2, 0:2", "hv:/shm_region_0, 2, 0:" + "9" * 5000),
        encoding="utf-8")
    scenario = load_scenario(str(tmp_path / "s.xml")).model
    (region,) = scenario.resolved.regions
    assert [m.vm.name if m.vm else None for m in region.members] == [
        "PRE_RT_VM0", None]
    assert (32, 48, "ISM203") in positions([tmp_path / "s.xml"])
    for argv in (["regions", "s.xml"], ["graph", "s.xml"]):
        done = run_acrn_shm(argv, tmp_path)
        assert done.returncode == 0, done.stderr
    done = run_acrn_shm(["upgrade", "s.xml", "-o", "v3.xml"], tmp_path)
    assert (done.returncode, done.stderr) == (2, (
        "acrn-shm: error: s.xml:32:25: cannot convert IVSHMEM_REGION "
        f"'hv:/shm_region_0, 2, 0:{'9' * 56}\u2026': VM id {'9' * 79}\u2026 "
        "is not a VM of this scenario\n"))


def test_qemu_takes_region_id_00_for_0(tmp_path):
    path = tmp_path / "s.xml"
    path.write_text((PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text(
        encoding="utf-8").replace("<IVSHMEM_REGION_ID>2<",
                                  "<IVSHMEM_REGION_ID>00<"), encoding="utf-8")
    assert plan_from_file(str(path), "POST_STD_VM2").warnings == ()


def test_qemu_reads_a_vbdf_as_acrn_does(tmp_path):
    # ACRN's pattern and lint (ISM301) refuse a VBDF with blanks; the
    # QEMU planner stripped them and placed the device anyway.
    path = tmp_path / "s.xml"
    path.write_text((PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text(
        encoding="utf-8").replace("<VBDF>00:09.0<", "<VBDF> 00:09.0<"),
        encoding="utf-8")
    (region, _) = load_scenario(str(path)).model.resolved.regions
    assert [(m.vbdf, m.vbdf_reason) for m in region.members] == [
        (None, NOT_VBDF), (Bdf(0, 10, 0), None)]
    assert (27, 21, "ISM301") in positions([path])
    with pytest.raises(UsageError) as caught:
        plan_from_file(str(path), "POST_STD_VM1")
    assert str(caught.value) == (
        f"{path}:27:21: VBDF ' 00:09.0' of VM 'POST_STD_VM1' in region "
        "'dm_ring' is not 'bb:dd.f'")


@pytest.mark.parametrize("element, reason", [
    ("", MISSING), ("<VBDF> </VBDF>", EMPTY), ("<VBDF>0:9</VBDF>", NOT_VBDF),
    ("<VBDF>00:09.0</VBDF>", None),
])
def test_vbdf_reasons(tmp_path, element, reason):
    scenario = v3_scenario(
        tmp_path, "<NAME>r</NAME><IVSHMEM_VMS><IVSHMEM_VM><VM_NAME>U"
        f"</VM_NAME>{element}</IVSHMEM_VM></IVSHMEM_VMS>")
    (member,) = scenario.resolved.regions[0].members
    assert member.vbdf_reason == reason
    assert (member.vbdf is None) == (reason is not None)


SIZE_TEXT = st.text(st.sampled_from("0123456789 +-.xMk\u0664"), max_size=8) | (
    st.integers(0, 10 ** 6).map(str)) | LONG_DIGITS


@settings(max_examples=40, deadline=None)
@given(SIZE_TEXT)
def test_region_size_rule_follows_the_facts(tmp_path_factory, text):
    # Whatever the size text, lint reports ISM201 exactly when the
    # resolved size is not one ACRN takes, and never stops.
    folder = tmp_path_factory.mktemp("size")
    scenario = v3_scenario(
        folder, f"<NAME>r</NAME><IVSHMEM_SIZE>{text}</IVSHMEM_SIZE>")
    (region,) = scenario.resolved.regions
    result = lint([scenario.path], None, LintConfig(select=("ISM201",)))
    assert not result.errors
    assert bool(result.diagnostics) == (
        region.size_mb not in (2, 4, 8, 16, 32, 64, 128, 256, 512))
