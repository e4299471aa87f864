"""QEMU command lines, libvirt XML and host preparation
(:mod:`acrn_ivshmem.plan.qemu`).

``tests/test_qemu/`` holds the scenarios, a fake procfs (``proc/``)
and the golden outputs (``golden/``); refresh the goldens with
``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import mmap
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from acrn_ivshmem.emit.libvirt_xml import libvirt_xml
from acrn_ivshmem.errors import AcrnShmError, InputError, UsageError
from acrn_ivshmem.host.prep import PrepItem, PrepStatus, host_prep
from acrn_ivshmem.io.xmlio import parse_file
from acrn_ivshmem.plan import qemu
from acrn_ivshmem.plan.qemu import (
    Doorbell, ShmDevice, parse_addr, plan_for_vm, plan_from_file,
    standalone_plan,
)
from acrn_ivshmem.upgrade.scenario import upgrade

DATA = Path(__file__).parent / "test_qemu"
GOLDEN = DATA / "golden"
PROC = str(DATA / "proc")
MULTI = str(DATA / "multi_v3.xml")
LEGACY = str(DATA / "legacy.xml")
MIB = 1024 * 1024

# Region names and directories a user could type; none may run a
# command, and each must reach QEMU unchanged.
PAYLOADS = [
    "$(touch pwned)", "`touch pwned`", "a;touch pwned", "a|touch pwned",
    "a&&touch pwned", "a||touch pwned", "'; touch pwned; '",
    '"; touch pwned; "', "a b", "$HOME", "${HOME}", "a\\b", "x\\", "*",
    "?", "~", "~root", "-rf", "--help", "a,b", "a,,b", ",", ",lead",
    "trail,", "a=b", "id=evil", "a,share=off", "ü名", "a'\"b", "!x", "#c",
    "{a,b}", "a>b", "<b", "a&", "(a)", " ", "é\u200b",
]


def plan_text(plan) -> str:
    """The golden text of a plan: command line, then warnings."""
    return (plan.command_line() + "\n--- warnings\n"
            + "".join(f"{warning}\n" for warning in plan.warnings))


def xml_text(plan) -> str:
    """The golden text of a plan's libvirt XML."""
    rendered = libvirt_xml(plan)
    return (rendered.text + "--- warnings\n"
            + "".join(f"{warning}\n" for warning in rendered.warnings))


CASES = {
    "v3-post-vm1": lambda: plan_text(plan_from_file(MULTI, "POST_VM1")),
    "v3-post-vm2": lambda: plan_text(plan_from_file(MULTI, "POST_VM2")),
    "v3-pre-vm0-master": lambda: plan_text(plan_from_file(
        MULTI, "PRE_VM0", master=True)),
    "v3-hugepages-asked": lambda: plan_text(plan_from_file(
        MULTI, "PRE_VM0", hugepages=True, proc=PROC)),
    "v3-hugetlbfs-dir": lambda: plan_text(plan_from_file(
        MULTI, "POST_VM2", "/mnt/huge", hugepages=True, proc=PROC)),
    "legacy-post-vm1": lambda: plan_text(plan_from_file(
        LEGACY, "POST_STD_VM1")),
    "legacy-by-id": lambda: plan_text(plan_from_file(LEGACY, "2")),
    "legacy-1g-pages": lambda: plan_text(plan_from_file(
        LEGACY, "ACRN_Service_VM", "/mnt/huge 1g", proc=PROC)),
    "standalone-plain": lambda: plan_text(standalone_plan("shm0", 2)),
    "standalone-addr-master": lambda: plan_text(standalone_plan(
        "ring", 16, "/tmp/shm", master=True, addr="0x0c.2")),
    "standalone-machine-slot": lambda: plan_text(standalone_plan(
        "low", 2, addr="2")),
    "standalone-doorbell": lambda: plan_text(standalone_plan(
        "bell", 4, doorbell=Doorbell("/run/ivshmem.sock", 4), master=True,
        addr="05")),
    "standalone-hostile": lambda: plan_text(standalone_plan(
        "a,b c'$(x)", 2, "/tmp/d,ir")),
    "libvirt-v3-post-vm1": lambda: xml_text(plan_from_file(
        MULTI, "POST_VM1", master=True)),
    "libvirt-doorbell": lambda: xml_text(standalone_plan(
        "bell", 4, doorbell=Doorbell("/run/ivshmem.sock", 4), addr="05")),
    "libvirt-doorbell-no-size": lambda: xml_text(standalone_plan(
        "bell", doorbell=Doorbell("/run/ivshmem.sock"))),
    "libvirt-hostile": lambda: xml_text(standalone_plan(
        "<a&b>'\"]]>", 2)),
    "libvirt-other-dir": lambda: xml_text(standalone_plan(
        "shm0", 2, "/mnt/huge", hugepages=True, proc=PROC)),
    "libvirt-hugepages-asked": lambda: xml_text(plan_from_file(
        MULTI, "PRE_VM0", hugepages=True, proc=PROC)),
    "libvirt-small-for-1g-pages": lambda: xml_text(plan_from_file(
        LEGACY, "ACRN_Service_VM", "/mnt/huge 1g", proc=PROC)),
    "v3-doorbell-region": lambda: plan_text(plan_from_file(
        MULTI, "POST_VM1", region="shm_d", master=True,
        doorbell=Doorbell("/run/shm_d.sock", 2))),
    "libvirt-v3-doorbell-region": lambda: xml_text(plan_from_file(
        MULTI, "POST_VM2", region="shm_c",
        doorbell=Doorbell("/run/shm_c.sock"))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    actual = CASES[name]()
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


def test_no_stray_golden_files():
    assert sorted(path.stem for path in GOLDEN.iterdir()) == sorted(CASES)


# --------------------------------------------------------------------------
# Plans from scenarios


def test_v3_plan_devices():
    plan = plan_from_file(MULTI, "POST_VM1")
    assert plan.vm == "POST_VM1"
    assert plan.shm_dir == "/dev/shm"
    assert plan.devices == (
        ShmDevice("shm_b", 4, "/dev/shm/shm_b", "shm_b", 0x08, 0),
        ShmDevice("shm_a", 2, "/dev/shm/shm_a", "shm_a", 0x09, 0),
        ShmDevice("shm_d", 2, "/dev/shm/shm_d", "shm_d", 0x0B, 0,
                  multifunction=True),
        ShmDevice("shm_c", 8, "/dev/shm/shm_c", "shm_c", 0x0B, 1),
    )
    assert plan.args()[:4] == (
        "-object", "memory-backend-file,id=shm-shm_b,size=4M,share=on,"
        "mem-path=/dev/shm/shm_b",
        "-device", "ivshmem-plain,id=ivshmem-shm_b,memdev=shm-shm_b,"
        "addr=08.0")


def test_every_region_is_share_on_and_plain():
    for vm in ("PRE_VM0", "POST_VM1", "POST_VM2"):
        args = plan_from_file(MULTI, vm).args()
        objects = [args[i + 1] for i, arg in enumerate(args)
                   if arg == "-object"]
        devices = [args[i + 1] for i, arg in enumerate(args)
                   if arg == "-device"]
        assert objects and len(objects) == len(devices)
        assert all(",share=on," in text for text in objects)
        assert all(text.startswith("ivshmem-plain,") for text in devices)


def test_legacy_vbdfs_match_the_upgrader():
    result = upgrade(parse_file(LEGACY))
    for vm in ("PRE_RT_VM0", "ACRN_Service_VM", "POST_STD_VM1",
               "POST_STD_VM2"):
        plan = plan_from_file(LEGACY, vm)
        ours = sorted((device.name, f"00:{device.addr}")
                      for device in plan.devices)
        theirs = sorted((a.region, a.vbdf) for a in result.assignments
                        if a.vm_name == vm)
        assert ours == theirs


def test_real_acrn_v33_scenario(acrn_data):
    path = (acrn_data / "v3.3" / "whl-ipc-i5"
            / "hybrid_rt_launch_1user_vm_waag.xml")
    plan = plan_from_file(str(path), "POST_STD_VM1")
    assert plan.command_line() == (
        "-object memory-backend-file,id=shm-shm_region_0,size=2M,share=on,"
        "mem-path=/dev/shm/shm_region_0 -device ivshmem-plain,"
        "id=ivshmem-shm_region_0,memdev=shm-shm_region_0,addr=08.0")
    assert plan.warnings == ()


def test_real_acrn_v27_scenario(acrn_data):
    path = acrn_data / "v2.7" / "whl-ipc-i5" / "hybrid_rt.xml"
    plan = plan_from_file(str(path), "PRE_RT_VM0")
    assert [(d.name, d.size_mb, d.addr) for d in plan.devices] == [
        ("shm_region_0", 2, "08.0")]


def test_v3_default_vbdf_skips_the_vms_explicit_ones(tmp_path):
    # Without VBDFs, ACRN's populator picks the lowest free of 08..0f.
    path = mutate(tmp_path, ("<VBDF>00:09.0</VBDF>", ""),
                  ("<VBDF>00:0b.1</VBDF>", "<VBDF>00:08.0</VBDF>"))
    plan = plan_from_file(path, "POST_VM1")
    assert [(d.name, d.addr) for d in plan.devices] == [
        ("shm_c", "08.0"), ("shm_a", "09.0"), ("shm_b", "0a.0"),
        ("shm_d", "0b.0")]


def test_ids_are_sanitised_and_unique(tmp_path):
    path = mutate(tmp_path, ("<NAME>shm_a</NAME>", "<NAME>a b</NAME>"),
                  ("<NAME>shm_b</NAME>", "<NAME>a_b</NAME>"),
                  ("<NAME>shm_c</NAME>", "<NAME>a?b</NAME>"),
                  ("<NAME>shm_d</NAME>", "<NAME>.x</NAME>"))
    plan = plan_from_file(path, "POST_VM1")
    assert [(d.name, d.memdev_id, d.device_id) for d in plan.devices] == [
        ("a_b", "shm-a_b", "ivshmem-a_b"),
        ("a b", "shm-a_b-2", "ivshmem-a_b-2"),
        (".x", "shm-.x", "ivshmem-.x"),
        ("a?b", "shm-a_b-3", "ivshmem-a_b-3"),
    ]


def test_bus_and_function_warnings(tmp_path):
    path = mutate(tmp_path, ("<VBDF>00:0B.0</VBDF>", "<VBDF>01:0c.0</VBDF>"))
    plan = plan_from_file(path, "POST_VM1")
    assert plan.warnings == (
        "region 'shm_d': VBDF 01:0c.0 is on bus 01; QEMU puts the device "
        "on bus 0 at 0c.0",
        "region 'shm_d' has region id '5', which QEMU cannot show as the "
        "PCI subsystem id: find the device by its address 0c.0 instead",
        "region 'shm_c' is function 1 of slot 0b, which has no function 0; "
        "guests do not scan such a slot",
    )


def test_region_id_zero_is_no_warning(tmp_path):
    path = mutate(tmp_path, ("<IVSHMEM_REGION_ID>5</IVSHMEM_REGION_ID>",
                             "<IVSHMEM_REGION_ID>0</IVSHMEM_REGION_ID>"))
    assert plan_from_file(path, "POST_VM1").warnings == ()


def test_one_region_keeps_its_address_among_all(tmp_path):
    # shm_b has no VBDF: its default skips the VM's other regions' VBDFs
    # even when only shm_b is asked for.
    path = mutate(tmp_path, ("<VBDF>00:0b.1</VBDF>", "<VBDF>00:08.0</VBDF>"))
    plan = plan_from_file(path, "POST_VM1", region="shm_b")
    assert plan.devices == (
        ShmDevice("shm_b", 4, "/dev/shm/shm_b", "shm_b", 0x0A, 0),)


def test_a_region_of_a_slot_with_other_functions(tmp_path):
    # shm_d alone still sits at 0b.0; it is alone in the slot now.
    plan = plan_from_file(MULTI, "POST_VM1", region="shm_d")
    assert plan.devices == (
        ShmDevice("shm_d", 2, "/dev/shm/shm_d", "shm_d", 0x0B, 0),)


def test_doorbell_for_a_scenario_region():
    bell = Doorbell("/run/ivshmem.sock", 4)
    plan = plan_from_file(MULTI, "PRE_VM0", "/mnt/huge", hugepages=True,
                          proc=PROC, doorbell=bell)
    # The server owns the memory: no backing file, no page warnings.
    assert (plan.devices, plan.warnings) == ((ShmDevice(
        "shm_a", 2, None, "shm_a", 0x08, 0, doorbell=bell),), ())
    assert plan.command_line() == (
        "-chardev socket,id=shmchr-shm_a,path=/run/ivshmem.sock -device "
        "ivshmem-doorbell,id=ivshmem-shm_a,chardev=shmchr-shm_a,vectors=4,"
        "addr=08.0")


def test_plan_for_vm_takes_a_model():
    from acrn_ivshmem.model.loader import load
    scenario = load(MULTI).model
    assert plan_for_vm(scenario, "POST_VM2") == plan_from_file(
        MULTI, "POST_VM2")


# --------------------------------------------------------------------------
# Errors


def mutate(tmp_path: Path, *changes: tuple[str, str],
           source: str = MULTI) -> str:
    """A copy of ``source`` with each (old, new) replaced once."""
    text = Path(source).read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / Path(source).name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(AcrnShmError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_unknown_vm():
    assert error_of(plan_from_file, MULTI, "NOPE") == (
        f"{MULTI}: no VM named 'NOPE'; the VMs are: 'PRE_VM0', "
        "'ACRN_Service_VM', 'POST_VM1', 'POST_VM2'")
    assert error_of(plan_from_file, LEGACY, "9") == (
        f"{LEGACY}: no VM named '9'; the VMs (or id) are: 'PRE_RT_VM0', "
        "'ACRN_Service_VM', 'POST_STD_VM1', 'POST_STD_VM2'")


def test_vm_in_no_region():
    assert error_of(plan_from_file, MULTI, "ACRN_Service_VM") == (
        f"{MULTI}: VM 'ACRN_Service_VM' is in no IVSHMEM region; the "
        "regions are: 'shm_a' ('PRE_VM0', 'POST_VM1'); 'shm_b' "
        "('POST_VM1', 'POST_VM2'); 'shm_c' ('POST_VM1', 'POST_VM2'); "
        "'shm_d' ('POST_VM1', 'POST_VM2')")


def test_scenario_without_regions(tmp_path):
    text = Path(MULTI).read_text(encoding="utf-8")
    start = text.index("<IVSHMEM>") + len("<IVSHMEM>")
    path = tmp_path / "none.xml"
    path.write_text(text[:start] + text[text.index("</IVSHMEM>"):],
                    encoding="utf-8")
    assert error_of(plan_from_file, str(path), "POST_VM1") == (
        f"{path}: VM 'POST_VM1' is in no IVSHMEM region: the scenario "
        "has none")


def test_legacy_disabled(tmp_path):
    path = mutate(tmp_path, ("<IVSHMEM_ENABLED>y", "<IVSHMEM_ENABLED>n"),
                  source=LEGACY)
    assert error_of(plan_from_file, path, "POST_STD_VM1") == (
        f"{path}: IVSHMEM_ENABLED is 'n', so ACRN v2.x ignores every "
        "IVSHMEM_REGION: set it to 'y'")


def test_legacy_malformed(tmp_path):
    path = mutate(tmp_path, ("dm:/shm_1, 4, 2:3", "dm:/shm_1, 4"),
                  source=LEGACY)
    assert error_of(plan_from_file, path, "POST_STD_VM1") == (
        f"{path}:8:9: cannot read IVSHMEM_REGION 'dm:/shm_1, 4': run "
        "'acrn-shm lint' on the file")


@pytest.mark.parametrize("size, message", [
    ("3", "the size of region 'shm_a' is 3 MB; QEMU needs a power of two "
          "(1, 2, 4, ... MB): other sizes make it abort"),
    ("0", "the size of region 'shm_a' is 0 MB; QEMU needs a power of two "
          "(1, 2, 4, ... MB): other sizes make it abort"),
    ("2M", "region 'shm_a' has size '2M'; expected a number of MB"),
    ("", "region 'shm_a' has size ''; expected a number of MB"),
])
def test_bad_region_size(tmp_path, size, message):
    path = mutate(tmp_path, ("<IVSHMEM_SIZE>2</IVSHMEM_SIZE>",
                             f"<IVSHMEM_SIZE>{size}</IVSHMEM_SIZE>"))
    assert error_of(plan_from_file, path, "PRE_VM0") == (
        f"{path}:6:9: {message}")


def test_bad_vbdf(tmp_path):
    path = mutate(tmp_path, ("<VBDF>00:09.0</VBDF>", "<VBDF>0:9</VBDF>"))
    assert error_of(plan_from_file, path, "POST_VM1") == (
        f"{path}:17:21: VBDF '0:9' of VM 'POST_VM1' in region 'shm_a' is "
        "not 'bb:dd.f'")


def test_two_regions_at_one_address(tmp_path):
    path = mutate(tmp_path, ("<VBDF>00:09.0</VBDF>", "<VBDF>00:0b.0</VBDF>"))
    assert error_of(plan_from_file, path, "POST_VM1") == (
        f"{path}:50:9: regions 'shm_a' and 'shm_d' are both at 0b.0 of "
        "this VM; QEMU needs one device per address")


def test_two_regions_with_one_name(tmp_path):
    path = mutate(tmp_path, ("<NAME>shm_b</NAME>", "<NAME>shm_a</NAME>"))
    assert error_of(plan_from_file, path, "POST_VM1") == (
        f"{path}:21:9: VM 'POST_VM1' is in two regions named 'shm_a'; "
        "under QEMU both would be '/dev/shm/shm_a'")


def test_unknown_provider(tmp_path):
    path = mutate(tmp_path, ("<PROVIDED_BY>Hypervisor", "<PROVIDED_BY>Xen"))
    assert error_of(plan_from_file, path, "PRE_VM0") == (
        f"{path}:6:9: region 'shm_a' is provided by 'Xen'; expected "
        "'Hypervisor' or 'Device Model'")


@pytest.mark.parametrize("name, why", [
    ("..", "it must be one file name"),
    ("a/b", "it must be one file name"),
    ("../../etc/passwd", "it must be one file name"),
])
def test_region_name_that_is_no_file_name(tmp_path, name, why):
    path = mutate(tmp_path, ("<NAME>shm_a</NAME>", f"<NAME>{name}</NAME>"))
    assert error_of(plan_from_file, path, "PRE_VM0") == (
        f"{path}:6:9: region name '{name}' cannot be the backing file's "
        f"name: {why} (not empty, '.', '..', and without '/')")


def test_region_name_with_newline(tmp_path):
    path = mutate(tmp_path, ("<NAME>shm_a</NAME>", "<NAME>a\nb</NAME>"))
    assert error_of(plan_from_file, path, "PRE_VM0") == (
        f"{path}:6:9: region name 'a\\x0ab' contains a control character; "
        "QEMU command lines cannot carry it")


def test_doorbell_needs_one_region():
    assert error_of(plan_from_file, MULTI, "POST_VM1",
                    doorbell=Doorbell("/s")) == (
        f"{MULTI}: VM 'POST_VM1' is in 4 regions ('shm_a', 'shm_b', "
        "'shm_c', 'shm_d'); an ivshmem server serves one region: choose "
        "it with --region NAME")


def test_doorbell_of_a_scenario_is_checked():
    assert error_of(plan_from_file, MULTI, "PRE_VM0",
                    doorbell=Doorbell("/s", 65)) == (
        "65 vectors asked; ivshmem-server hands out 1 to 64")


def test_unknown_region():
    assert error_of(plan_from_file, MULTI, "PRE_VM0", region="shm_x") == (
        f"{MULTI}: no region named 'shm_x'; the regions are: 'shm_a', "
        "'shm_b', 'shm_c', 'shm_d'")
    assert error_of(plan_from_file, MULTI, "PRE_VM0", region="shm_b") == (
        f"{MULTI}: VM 'PRE_VM0' is not in region 'shm_b'; its regions "
        "are: 'shm_a'")


def test_not_a_scenario():
    board = DATA.parent / "test_cli" / "board.xml"
    assert error_of(plan_from_file, str(board), "VM") == (
        f"{board}: is a board XML; give a scenario XML")
    with pytest.raises(InputError):
        plan_from_file(str(DATA / "missing.xml"), "VM")


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "x", "size_mb": 3},
     "the size of 'x' is 3 MB; QEMU needs a power of two (1, 2, 4, ... MB)"
     ": other sizes make it abort"),
    ({"name": "x", "size_mb": 0},
     "the size of 'x' is 0 MB; QEMU needs a power of two (1, 2, 4, ... MB)"
     ": other sizes make it abort"),
    ({"name": "x", "size_mb": -2},
     "the size of 'x' is -2 MB; QEMU needs a power of two (1, 2, 4, ... MB)"
     ": other sizes make it abort"),
    ({"name": "x"}, "give the size of 'x' in MB (a power of two)"),
    ({"name": "", "size_mb": 2},
     "region name '' cannot be the backing file's name: it must be one "
     "file name (not empty, '.', '..', and without '/')"),
    ({"name": ".", "size_mb": 2},
     "region name '.' cannot be the backing file's name: it must be one "
     "file name (not empty, '.', '..', and without '/')"),
    ({"name": "x\x00", "size_mb": 2},
     "region name 'x\\x00' contains a control character; QEMU command "
     "lines cannot carry it"),
    ({"name": "x", "size_mb": 2, "shm_dir": "/tmp/\n"},
     "shm directory '/tmp/\\x0a' contains a control character; QEMU "
     "command lines cannot carry it"),
    ({"name": "x", "size_mb": 2, "addr": "zz"},
     "PCI address 'zz' is not 'dd' or 'dd.f' (hex device 00-1f, function "
     "0-7)"),
    ({"name": "x", "size_mb": 2, "addr": "20"},
     "PCI address '20' is not 'dd' or 'dd.f' (hex device 00-1f, function "
     "0-7)"),
    ({"name": "x", "size_mb": 2, "addr": "08.8"},
     "PCI address '08.8' is not 'dd' or 'dd.f' (hex device 00-1f, "
     "function 0-7)"),
    ({"name": "x", "doorbell": Doorbell("")},
     "the doorbell needs the ivshmem server's socket path"),
    ({"name": "x", "doorbell": Doorbell("/s", 0)},
     "0 vectors asked; ivshmem-server hands out 1 to 64"),
    ({"name": "x", "doorbell": Doorbell("/s", 65)},
     "65 vectors asked; ivshmem-server hands out 1 to 64"),
    ({"name": "x", "doorbell": Doorbell("/" + "s" * 107)},
     f"socket path '/{'s' * 78}\u2026' is 108 bytes; Unix sockets allow "
     "at most 107: use a shorter directory"),
])
def test_standalone_errors(kwargs, message):
    with pytest.raises(UsageError) as info:
        standalone_plan(**kwargs)
    assert str(info.value) == message


def test_longest_socket_path_is_accepted():
    path = "/" + "s" * 106
    plan = standalone_plan("x", doorbell=Doorbell(path))
    assert plan.args() == (
        "-chardev", f"socket,id=shmchr-x,path={path}", "-device",
        "ivshmem-doorbell,id=ivshmem-x,chardev=shmchr-x,vectors=1")


@pytest.mark.parametrize("text, expected", [
    ("8", (8, 0)), ("08", (8, 0)), ("0x8", (8, 0)), ("08.0", (8, 0)),
    ("1f.7", (0x1F, 7)), ("0X0a.3", (0x0A, 3)), (" 0c ", (0x0C, 0)),
])
def test_parse_addr(text, expected):
    assert parse_addr(text) == expected


# --------------------------------------------------------------------------
# Quoting: names are data, never shell or QEMU syntax


def qemu_options(text: str) -> list[str]:
    """Split a QEMU option string as QEMU does (``,,`` is a comma)."""
    parts, current, index = [], "", 0
    while index < len(text):
        if text[index] == ",":
            if text[index + 1:index + 2] == ",":
                current += ","
                index += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += text[index]
        index += 1
    return parts + [current]


def through_shell(line: str, cwd: Path) -> list[str]:
    """The words ``sh`` makes of ``line``."""
    result = subprocess.run(["sh", "-c", "printf '%s\\0' " + line],
                            cwd=cwd, capture_output=True, timeout=30,
                            check=True)
    return result.stdout.decode("utf-8").split("\0")[:-1]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_region_name(tmp_path, payload):
    plan = standalone_plan(payload, 2, "/dev/shm")
    line = plan.command_line()
    assert "\n" not in line
    assert through_shell(line, tmp_path) == list(plan.args())
    assert not list(tmp_path.iterdir())
    memory = qemu_options(plan.args()[1])
    assert memory[0] == "memory-backend-file"
    assert memory[1].startswith("id=shm-")
    assert memory[2:] == ["size=2M", "share=on",
                          f"mem-path=/dev/shm/{payload}"]
    device = qemu_options(plan.args()[3])
    assert device == ["ivshmem-plain", f"id={plan.devices[0].device_id}",
                      f"memdev={plan.devices[0].memdev_id}"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_directory_and_socket(tmp_path, payload):
    plan = standalone_plan("shm", 2, f"/tmp/{payload}")
    assert through_shell(plan.command_line(), tmp_path) == list(plan.args())
    assert qemu_options(plan.args()[1])[-1] == (
        f"mem-path=/tmp/{payload}/shm")
    bell = standalone_plan("shm", doorbell=Doorbell(f"/run/{payload}"))
    assert through_shell(bell.command_line(), tmp_path) == list(bell.args())
    assert qemu_options(bell.args()[1]) == [
        "socket", "id=shmchr-shm", f"path=/run/{payload}"]
    assert not list(tmp_path.iterdir())


def test_qemu_ids_are_well_formed():
    # QEMU's id_wellformed(): a letter, then letters, digits, '-._'.
    for payload in PAYLOADS:
        device = standalone_plan(payload, 2).devices[0]
        for qemu_id in (device.memdev_id, device.device_id,
                        device.chardev_id):
            assert qemu_id[0].isascii() and qemu_id[0].isalpha()
            assert all(ch.isascii() and (ch.isalnum() or ch in "-._")
                       for ch in qemu_id), qemu_id


def test_hostile_names_in_a_scenario(tmp_path):
    names = ["$(touch pwned)", "a;touch pwned", "a,share=off", "`id`"]
    changes = [(f"<NAME>shm_{letter}</NAME>",
                f"<NAME>{name.replace('&', '&amp;')}</NAME>")
               for letter, name in zip("abcd", names)]
    path = mutate(tmp_path, *changes)
    plan = plan_from_file(path, "POST_VM1")
    assert sorted(device.name for device in plan.devices) == sorted(names)
    assert through_shell(plan.command_line(), tmp_path) == list(plan.args())
    paths = [qemu_options(arg)[-1] for arg in plan.args()
             if arg.startswith("memory-backend-file,")]
    assert sorted(paths) == sorted(f"mem-path=/dev/shm/{name}"
                                   for name in names)
    assert {p.name for p in tmp_path.iterdir()} == {"multi_v3.xml"}


def test_command_line_is_shlex_join():
    plan = plan_from_file(MULTI, "POST_VM1")
    assert plan.command_line() == shlex.join(plan.args())
    assert shlex.split(plan.command_line()) == list(plan.args())


# --------------------------------------------------------------------------
# libvirt


def test_libvirt_xml_escapes_and_parses():
    from lxml import etree
    name = "<a&b>'\"]]>"
    rendered = libvirt_xml(standalone_plan(name, 2))
    element = etree.fromstring(rendered.text)
    assert element.tag == "shmem"
    assert element.get("name") == name
    assert element.find("model").get("type") == "ivshmem-plain"
    assert element.find("size").text == "2"
    assert element.find("size").get("unit") == "M"


def test_libvirt_xml_one_element_per_device():
    from lxml import etree
    rendered = libvirt_xml(plan_from_file(MULTI, "POST_VM1"))
    devices = etree.fromstring(f"<devices>{rendered.text}</devices>")
    assert [(s.get("name"), s.find("address").get("slot"),
             s.find("address").get("function"),
             s.find("address").get("multifunction"))
            for s in devices] == [
        ("shm_b", "0x08", "0x0", None), ("shm_a", "0x09", "0x0", None),
        ("shm_d", "0x0b", "0x0", "on"), ("shm_c", "0x0b", "0x1", None)]


# --------------------------------------------------------------------------
# Host preparation


def fake_proc(tmp_path: Path, shm_dir: Path, fstype: str = "tmpfs",
              options: str = "rw", free: int = 0, total: int = 0) -> str:
    """A procfs with one mount (``shm_dir``) and huge page counters."""
    proc = tmp_path / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    (proc / "mounts").write_text(
        f"/dev/vda / ext4 rw 0 0\nnone {shm_dir} {fstype} {options} 0 0\n")
    (proc / "meminfo").write_text(
        f"HugePages_Total:    {total}\nHugePages_Free:     {free}\n"
        "Hugepagesize:       2048 kB\n")
    (proc / "sys" / "vm" / "nr_hugepages").write_text(f"{total}\n")
    return str(proc)


@pytest.fixture
def shm(tmp_path) -> Path:
    """An empty directory standing in for /dev/shm."""
    path = tmp_path / "shm"
    path.mkdir()
    return path


def test_prep_creates_missing_files(tmp_path, shm):
    plan = standalone_plan("r0", 2, str(shm))
    report = host_prep(plan, proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(shm / "r0"), PrepStatus.CREATED, "2 MiB, mode 660"),)
    assert report.commands == ()
    assert report.ready
    info = (shm / "r0").stat()
    assert (info.st_size, info.st_mode & 0o777) == (2 * MIB, 0o660)


def test_prep_check_only_gives_commands(tmp_path, shm):
    plan = standalone_plan("r 0", 4, str(shm))
    report = host_prep(plan, create=False, proc=fake_proc(tmp_path, shm))
    target = shlex.quote(str(shm / "r 0"))
    assert report.items == (PrepItem(str(shm / "r 0"), PrepStatus.PROBLEM,
                                     "missing"),)
    assert report.commands == (f"truncate -s 4M {target}",
                               f"chmod 660 {target}")
    assert not report.ready
    assert not (shm / "r 0").exists()


def test_prep_without_rights_gives_commands(tmp_path, shm, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(qemu.os, "open", denied)
    report = host_prep(standalone_plan("r0", 2, str(shm)), mode=0o600,
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(shm / "r0"), PrepStatus.NEEDS_ROOT,
        "missing, and no right to create it"),)
    assert report.commands == (f"truncate -s 2M {shm / 'r0'}",
                               f"chmod 600 {shm / 'r0'}")


def test_prep_leaves_a_right_file_alone(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(b"keep" + bytes(2 * MIB - 4))
    target.chmod(0o664)
    report = host_prep(standalone_plan("r0", 2, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(str(target), PrepStatus.OK,
                                     "2 MiB, mode 664"),)
    assert target.read_bytes()[:4] == b"keep"


def test_prep_widens_the_mode(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(bytes(2 * MIB))
    target.chmod(0o600)
    report = host_prep(standalone_plan("r0", 2, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(target), PrepStatus.OK, "2 MiB, mode 600 widened to 660"),)
    assert target.stat().st_mode & 0o777 == 0o660


def test_prep_mode_of_someone_elses_file(tmp_path, shm, monkeypatch):
    target = shm / "r0"
    target.write_bytes(bytes(2 * MIB))
    target.chmod(0o600)

    def denied(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(qemu.os, "chmod", denied)
    report = host_prep(standalone_plan("r0", 2, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(target), PrepStatus.NEEDS_ROOT,
        f"2 MiB, mode 600 lacks 660 and the file belongs to uid "
        f"{target.stat().st_uid}"),)
    assert report.commands == (f"chmod 660 {target}",)


def test_prep_grows_a_smaller_unused_file(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(b"data" + bytes(MIB - 4))
    report = host_prep(standalone_plan("r0", 4, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(str(target), PrepStatus.GROWN,
                                     "from 1 MiB to 4 MiB"),)
    assert target.stat().st_size == 4 * MIB
    assert target.read_bytes()[:4] == b"data"


def test_prep_never_shrinks(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(bytes(8 * MIB))
    target.chmod(0o644)
    report = host_prep(standalone_plan("r0", 2, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(target), PrepStatus.WARNING,
        "is 8 MiB, larger than the 2 MiB asked: QEMU uses the start of it; "
        "left as is; mode 644 widened to 664"),)
    assert target.stat().st_size == 8 * MIB
    assert report.ready


def test_prep_never_resizes_a_file_in_use_maps(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(bytes(MIB))
    info = target.stat()
    proc = fake_proc(tmp_path, shm)
    (Path(proc) / "4242").mkdir()
    (Path(proc) / "4242" / "maps").write_text(
        f"7f0000000000-7f0000100000 rw-s 00000000 "
        f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x} "
        f"{info.st_ino}                    {target}\n")
    report = host_prep(standalone_plan("r0", 2, str(shm)), proc=proc)
    assert report.items == (PrepItem(
        str(target), PrepStatus.PROBLEM,
        "is 1 MiB, smaller than 2 MiB, but in use by pid 4242; not resized "
        "(QEMU refuses a smaller file)"),)
    assert target.stat().st_size == MIB


def test_prep_never_resizes_a_file_in_use_fd(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(bytes(MIB))
    proc = fake_proc(tmp_path, shm)
    (Path(proc) / "77" / "fd").mkdir(parents=True)
    (Path(proc) / "77" / "fd" / "3").symlink_to(target)
    report = host_prep(standalone_plan("r0", 2, str(shm)), proc=proc)
    assert report.items[0].status is PrepStatus.PROBLEM
    assert "in use by pid 77" in report.items[0].message
    assert target.stat().st_size == MIB


def test_prep_sees_a_real_mapping(tmp_path, shm):
    target = shm / "r0"
    target.write_bytes(bytes(MIB))
    with open(target, "r+b") as file, mmap.mmap(file.fileno(), MIB):
        file.close()
        report = host_prep(standalone_plan("r0", 2, str(shm)))
    assert report.items[0].status is PrepStatus.PROBLEM
    assert f"in use by pid {os.getpid()}" in report.items[0].message
    assert target.stat().st_size == MIB


def test_prep_refuses_symlinks(tmp_path, shm):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (shm / "r0").symlink_to(victim)
    report = host_prep(standalone_plan("r0", 2, str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert report.items == (PrepItem(
        str(shm / "r0"), PrepStatus.PROBLEM,
        "exists but is not a regular file (a symlink or device?); remove "
        "it or choose another name"),)
    assert victim.read_bytes() == b"precious"


def test_prep_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    report = host_prep(standalone_plan("r0", 2, str(missing)),
                       proc=fake_proc(tmp_path, missing))
    assert report.items == (PrepItem(str(missing), PrepStatus.PROBLEM,
                                     "the shm directory does not exist"),)
    assert report.commands == (f"mkdir -p {missing}",)


def test_prep_hugepages_without_hugetlbfs(tmp_path, shm):
    plan = standalone_plan("r0", 2, str(shm), hugepages=True,
                           proc=fake_proc(tmp_path, shm))
    report = host_prep(plan, proc=str(tmp_path / "proc"))
    assert report.items == (PrepItem(
        str(shm), PrepStatus.PROBLEM,
        "huge pages asked for, but this is not a hugetlbfs mount"),)
    assert report.commands == (
        f"mkdir -p {shm}",
        f"mount -t hugetlbfs -o pagesize=2M none {shm}")
    assert not (shm / "r0").exists()


def test_prep_hugetlbfs_short_of_pages(tmp_path, shm):
    proc = fake_proc(tmp_path, shm, "hugetlbfs", "rw,pagesize=2M", free=1,
                     total=3)
    plan = plan_from_file(MULTI, "POST_VM1", str(shm), hugepages=True,
                          proc=proc)
    assert not any("hugetlbfs" in warning for warning in plan.warnings)
    report = host_prep(plan, proc=proc)
    assert report.items[-1] == PrepItem(
        "hugepages", PrepStatus.NEEDS_ROOT,
        "1 free 2 MiB pages, 8 needed")
    assert report.commands == (
        "sh -c 'echo 10 > /proc/sys/vm/nr_hugepages'",)


def test_prep_hugetlbfs_enough_pages(tmp_path, shm):
    proc = fake_proc(tmp_path, shm, "hugetlbfs", "rw,pagesize=2M", free=1)
    report = host_prep(standalone_plan("r0", 2, str(shm)), proc=proc)
    assert report.items[-1] == PrepItem(
        "hugepages", PrepStatus.OK, "1 free 2 MiB pages, 1 needed")
    assert report.ready


def test_prep_hugetlbfs_other_page_size(tmp_path, shm):
    proc = fake_proc(tmp_path, shm, "hugetlbfs", "rw,pagesize=1024M")
    pages = tmp_path / "sys" / "kernel" / "mm" / "hugepages" / (
        "hugepages-1048576kB")
    pages.mkdir(parents=True)
    (pages / "free_hugepages").write_text("0\n")
    (pages / "nr_hugepages").write_text("2\n")
    report = host_prep(standalone_plan("r0", 2, str(shm)), proc=proc,
                       sysfs=str(tmp_path / "sys"))
    assert report.items[-1] == PrepItem(
        "hugepages", PrepStatus.NEEDS_ROOT,
        "0 free 1024 MiB pages, 1 needed")
    assert report.commands == ("sh -c 'echo 3 > /sys/kernel/mm/hugepages/"
                               "hugepages-1048576kB/nr_hugepages'",)


def test_prep_warns_when_the_directory_is_too_full(tmp_path, shm,
                                                  monkeypatch):
    class Full:
        f_bavail, f_frsize = 256, 4096

    monkeypatch.setattr(qemu.os, "statvfs", lambda path: Full)
    report = host_prep(plan_from_file(MULTI, "POST_VM2", str(shm)),
                       proc=fake_proc(tmp_path, shm))
    assert [item.status for item in report.items] == [
        PrepStatus.CREATED] * 3 + [PrepStatus.WARNING]
    assert report.items[-1] == PrepItem(
        str(shm), PrepStatus.WARNING,
        "1 MiB free, but the regions may take 14 MiB more once written")


def test_prep_commands_use_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = host_prep(standalone_plan("-r", 2, "-x"), create=False,
                       proc=fake_proc(tmp_path, tmp_path / "-x"))
    assert report.commands == (f"mkdir -p {tmp_path}/-x",)
    (tmp_path / "-x").mkdir()
    report = host_prep(standalone_plan("-r", 2, "-x"), create=False,
                       proc=str(tmp_path / "proc"))
    assert report.commands == (f"truncate -s 2M {tmp_path}/-x/-r",
                               f"chmod 660 {tmp_path}/-x/-r")


def test_prep_doorbell_has_no_file():
    report = host_prep(standalone_plan("x", doorbell=Doorbell("/s")))
    assert report.items == (PrepItem(
        "plan", PrepStatus.OK,
        "no backing file: the ivshmem server owns the memory"),)
