"""The model built from real and small XMLs: kinds, regions, boards."""

from __future__ import annotations

import pytest

from acrn_ivshmem.io.xmlio import Loc
from acrn_ivshmem.model.loader import load, split_legacy
from acrn_ivshmem.model.syntax import (
    Bdf, Board, LaunchConfig, Scenario, Value, VmKind, parse_vbdf,
)


def scenario_of(tmp_path, text: str) -> Scenario:
    path = tmp_path / "s.xml"
    path.write_text(text, encoding="utf-8")
    model = load(str(path)).model
    assert isinstance(model, Scenario)
    return model


@pytest.mark.parametrize("vm_type, kind", [
    ("PRE_STD_VM", VmKind.PRE_LAUNCHED), ("PRE_RT_VM", VmKind.PRE_LAUNCHED),
    ("SAFETY_VM", VmKind.PRE_LAUNCHED), ("SOS_VM", VmKind.SERVICE),
    ("SERVICE_VM", VmKind.SERVICE), ("POST_STD_VM", VmKind.POST_LAUNCHED),
    ("POST_RT_VM", VmKind.POST_LAUNCHED), ("KATA_VM", VmKind.POST_LAUNCHED),
    ("NO_SUCH_VM", VmKind.UNKNOWN),
])
def test_legacy_vm_types(tmp_path, vm_type, kind):
    scenario = scenario_of(tmp_path, (
        "<acrn-config><hv><FEATURES><IVSHMEM><IVSHMEM_ENABLED>n"
        "</IVSHMEM_ENABLED></IVSHMEM></FEATURES></hv>"
        f"<vm id='4'><vm_type>{vm_type}</vm_type></vm></acrn-config>"))
    assert scenario.format == "legacy"
    (vm,) = scenario.vms
    assert (vm.id, vm.name, vm.kind) == (4, None, kind)


@pytest.mark.parametrize("load_order, kind", [
    ("PRE_LAUNCHED_VM", VmKind.PRE_LAUNCHED),
    ("SERVICE_VM", VmKind.SERVICE),
    ("POST_LAUNCHED_VM", VmKind.POST_LAUNCHED),
])
def test_v3_load_orders(tmp_path, load_order, kind):
    scenario = scenario_of(tmp_path, (
        f"<acrn-config><vm id='1'><load_order>{load_order}</load_order>"
        "<vm_type>RTVM</vm_type><name>VM_A</name></vm></acrn-config>"))
    assert scenario.format == "v3"
    assert scenario.vms[0].kind == kind
    assert scenario.vms[0].name == "VM_A"


def test_v3_region_from_real_file(acrn_data):
    scenario = load(str(acrn_data / "v3.3/whl-ipc-i5/hybrid_rt.xml")).model
    (region,) = scenario.regions
    assert region.name == Value("shm_region_0", Loc(29, 17))
    assert region.provider == Value("Hypervisor", Loc(30, 24))
    assert region.size == Value("2", Loc(31, 25))
    assert region.region_id is None
    assert region.land == "hv"
    assert [(m.vm.text, m.vbdf.text, m.loc) for m in region.members] == [
        ("PRE_RT_VM0", "00:08.0", Loc(33, 13)),
        ("POST_STD_VM1", "00:08.0", Loc(37, 13))]
    assert [vm.kind for vm in scenario.vms] == [
        VmKind.PRE_LAUNCHED, VmKind.SERVICE, VmKind.POST_LAUNCHED,
        VmKind.POST_LAUNCHED]


def test_legacy_region_from_real_file(acrn_data):
    scenario = load(str(acrn_data / "v2.7/whl-ipc-i5/hybrid_rt.xml")).model
    assert scenario.format == "legacy"
    assert scenario.board_name == "whl-ipc-i5"
    assert scenario.ivshmem_enabled == Value("y", Loc(31, 26))
    (region,) = scenario.regions
    # <IVSHMEM_REGION>hv:/shm_region_0, 2, 0:2</IVSHMEM_REGION> at 32:9
    assert region.provider == Value("hv:/", Loc(32, 25))
    assert region.name == Value("shm_region_0", Loc(32, 29))
    assert region.size == Value("2", Loc(32, 43))
    assert [m.vm for m in region.members] == [
        Value("0", Loc(32, 46)), Value("2", Loc(32, 48))]
    assert not region.malformed
    assert scenario.vm_for("2").name == "POST_STD_VM1"
    assert scenario.vm_for(" 0 ").name == "PRE_RT_VM0"
    assert scenario.vm_for("x") is None


def test_split_legacy_keeps_positions_across_lines():
    legacy = split_legacy(Value("\n  dm:/a ,4,\n 1: 3", Loc(5, 20)))
    assert legacy.prefix == Value("dm:/", Loc(6, 3))
    assert legacy.fields == (
        Value("dm:/a", Loc(6, 3)), Value("4", Loc(6, 10)),
        Value("1: 3", Loc(7, 2)))


def test_empty_legacy_region_is_no_region(acrn_data):
    scenario = load(str(acrn_data / "v2.7/whl-ipc-i5/shared.xml")).model
    assert scenario.format == "legacy"
    assert scenario.regions == ()
    assert scenario.ivshmem_enabled.text == "n"


@pytest.mark.parametrize("text, bdf", [
    ("00:08.0", Bdf(0, 8, 0)), ("0:0A.7", Bdf(0, 10, 7)),
    ("ff:1f.1", Bdf(255, 31, 1)), ("00:8.0", None), ("00:20.0", None),
    ("00:08.8", None), ("00:08:0", None), (" 00:08.0", None), (None, None),
])
def test_parse_vbdf(text, bdf):
    assert parse_vbdf(text) == bdf


def test_board_native_bdfs(acrn_data):
    board = load(str(acrn_data / "v3.3/whl-ipc-i5/whl-ipc-i5.xml")).model
    assert isinstance(board, Board)
    assert board.name == "whl-ipc-i5"
    for bdf in (Bdf(0, 0, 0), Bdf(0, 2, 0), Bdf(0, 0x12, 0),
                Bdf(0, 0x14, 2), Bdf(0, 0x1f, 3)):
        assert bdf in board.native_bdfs
    assert Bdf(0, 8, 0) not in board.native_bdfs
    assert str(Bdf(0, 0x1f, 3)) == "00:1f.3"


def test_board_device_tree_behind_bridges(tmp_path):
    path = tmp_path / "b.xml"
    path.write_text(
        "<acrn-config board='b'><BIOS_INFO/><devices><bus type='system'>"
        "<bus type='pci' address='0x0'>"
        "<device address='0x1c0000'><vendor>0x8086</vendor>"
        "<bus type='pci' address='0x3'><device address='0x10001'>"
        "<vendor>0x10ec</vendor></device></bus></device>"
        "<device address='0x10000'/>"  # ACPI placeholder: no vendor
        "<device address='0x2ffff'><vendor>0x8086</vendor></device>"
        "</bus></bus></devices></acrn-config>")
    board = load(str(path)).model
    assert board.native_bdfs == {Bdf(0, 0x1c, 0), Bdf(3, 1, 1)}


def test_launch_xml(acrn_data):
    model = load(str(acrn_data / "v2.7/whl-ipc-i5/"
                     "hybrid_rt_launch_1user_vm_waag.xml")).model
    assert isinstance(model, LaunchConfig)
    assert model.scenario_name == "hybrid_rt"
    (vm,) = model.vms
    assert (vm.id_text, vm.vm_name, vm.shm_regions) == (
        "1", "POST_STD_VM1", ())


def test_pci_vuarts(tmp_path):
    scenario = scenario_of(tmp_path, """<acrn-config>
  <hv>
    <vuart_connections>
      <vuart_connection>
        <name>c1</name>
        <type>pci</type>
        <endpoint><vm_name>A</vm_name><vbdf>00:10.0</vbdf></endpoint>
        <endpoint><vm_name>B</vm_name><vbdf>00:11.0</vbdf></endpoint>
      </vuart_connection>
      <vuart_connection>
        <name>c2</name>
        <type>legacy</type>
        <endpoint><vm_name>A</vm_name><io_port>0x2F8</io_port></endpoint>
      </vuart_connection>
    </vuart_connections>
  </hv>
</acrn-config>""")
    assert [(e.connection, e.vm.text, e.vbdf.text, e.loc)
            for e in scenario.pci_vuarts] == [
        ("c1", "A", "00:10.0", Loc(7, 9)), ("c1", "B", "00:11.0", Loc(8, 9))]


def test_model_is_frozen(acrn_data):
    scenario = load(str(acrn_data / "v3.3/whl-ipc-i5/hybrid_rt.xml")).model
    with pytest.raises(AttributeError):
        scenario.regions = ()
