"""``acrn-shm qemu-try`` without booting anything
(:mod:`acrn_ivshmem.host.qemu_try`, :mod:`acrn_ivshmem.host.qemu_lab`).

Finding QEMU, a kernel and a static busybox; the accelerator; the guest
image; planning a trial from a scenario or a bare region; running one
with ``test_qemu_try/fake_qemu.py`` standing in for QEMU (it plays the
guests' /init on the plain device's file), and the command's output,
live status line and exit codes. Real guests: ``test_e2e_qemu.py``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT, TESTS

from acrn_ivshmem.errors import UsageError, quoted
from acrn_ivshmem.host import qemu_lab, qemu_try
from acrn_ivshmem.host.qemu_lab import Accel, Tools
from acrn_ivshmem.host.qemu_try import (
    GUEST_INIT, message_offset, message_words, plan_trial, render, run_trial,
)

DATA = TESTS / "test_qemu_try"
SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
MULTI = TESTS / "test_qemu" / "multi_v3.xml"
LEGACY = TESTS / "test_qemu" / "legacy.xml"


def elf(path: Path, *segment_types: int) -> Path:
    """A 64-bit ELF header with program headers of ``segment_types``
    (3 is PT_INTERP: a dynamic executable)."""
    head = bytearray(64)
    head[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", head, 32, 64)
    struct.pack_into("<HH", head, 54, 56, len(segment_types))
    table = b"".join(struct.pack("<I", kind) + bytes(52)
                     for kind in segment_types)
    path.write_bytes(bytes(head) + table)
    path.chmod(0o755)
    return path


def masked(text: str) -> str:
    """``text`` with every time (``2.7 s``) as ``N s``."""
    return re.sub(r"\b\d+\.\d s\b", "N s", text)


# --------------------------------------------------------------------------
# What the machine has


@pytest.fixture
def no_kernels(tmp_path, monkeypatch):
    """No checkout kernel and an empty /boot."""
    monkeypatch.setattr(qemu_lab, "CHECKOUT_KERNEL", tmp_path / "none")
    boot = tmp_path / "boot"
    boot.mkdir()
    monkeypatch.setattr(qemu_lab, "BOOT", str(boot))
    return boot


def test_kernel_search_order(tmp_path, no_kernels, monkeypatch):
    for name in ("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64",
                 "vmlinuz-5.10.0-30-amd64", "config-6.1.0-10-amd64"):
        (no_kernels / name).write_bytes(b"k")
    # /boot: the newest version, by number (10 after 9).
    newest = str(no_kernels / "vmlinuz-6.1.0-10-amd64")
    assert qemu_lab.find_kernel(environ={}) == (newest, "")
    checkout = tmp_path / "cache-vmlinuz"
    checkout.write_bytes(b"k")
    monkeypatch.setattr(qemu_lab, "CHECKOUT_KERNEL", checkout)
    assert qemu_lab.find_kernel(environ={}) == (str(checkout), "")
    env = {"ACRN_SHM_E2E_KERNEL": newest}
    assert qemu_lab.find_kernel(environ=env) == (newest, "")
    assert qemu_lab.find_kernel(str(checkout), env) == (str(checkout), "")


def test_kernel_given_but_missing_is_an_error(tmp_path, no_kernels):
    missing = str(tmp_path / "vmlinuz")
    with pytest.raises(UsageError) as info:
        qemu_lab.find_kernel(missing, {})
    assert str(info.value) == f"--kernel '{missing}' is not a readable file"
    with pytest.raises(UsageError) as info:
        qemu_lab.find_kernel(None, {"ACRN_SHM_E2E_KERNEL": missing})
    assert str(info.value) == (
        f"$ACRN_SHM_E2E_KERNEL '{missing}' is not a readable file")


def test_no_kernel_says_where_it_looked(no_kernels, monkeypatch):
    (no_kernels / "vmlinuz-6.1.0-10-amd64").write_bytes(b"k")
    monkeypatch.setattr(qemu_lab.os, "access", lambda path, mode: False)
    assert qemu_lab.find_kernel(environ={}) == (None, (
        "no guest kernel (--kernel, $ACRN_SHM_E2E_KERNEL, .ci/cache/vmlinuz "
        f"of a checkout, {no_kernels}/vmlinuz-*; {no_kernels}/"
        "vmlinuz-6.1.0-10-amd64 is not readable: pass a copy with "
        "--kernel)"))


def test_static_elf(tmp_path):
    assert qemu_lab.static_elf(elf(tmp_path / "static", 1, 1))
    assert not qemu_lab.static_elf(elf(tmp_path / "dynamic", 1, 3))
    assert not qemu_lab.static_elf(tmp_path / "missing")
    (tmp_path / "script").write_text("#!/bin/sh\n" * 10)
    assert not qemu_lab.static_elf(tmp_path / "script")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(elf(tmp_path / "x", 1, 1).read_bytes()[:80])
    assert not qemu_lab.static_elf(truncated)
    python = os.path.realpath(sys.executable)
    assert not qemu_lab.static_elf(python)  # a real dynamic executable


def test_busybox_must_be_static(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(qemu_lab, "_BUSYBOXES", (str(tmp_path / "no"),))
    assert qemu_lab.find_busybox() == (None, "no busybox")
    elf(tmp_path / "busybox", 1, 3)
    assert qemu_lab.find_busybox() == (
        None, f"{tmp_path}/busybox is not a static busybox")
    static = elf(tmp_path / "static-busybox", 1)
    monkeypatch.setattr(qemu_lab, "_BUSYBOXES", (str(static),))
    assert qemu_lab.find_busybox() == (str(static), "")


@pytest.mark.parametrize("flags, kvm, usable, expected", [
    ("fpu vmx sse", True, True, Accel("kvm", "VT-x/AMD-V and KVM")),
    ("fpu svm sse", True, True, Accel("kvm", "VT-x/AMD-V and KVM")),
    # PVM: /dev/kvm without VT-x/AMD-V cannot run a stock kernel.
    ("fpu sse", True, True, Accel("tcg", "no VT-x/AMD-V in /proc/cpuinfo")),
    ("fpu vmx", False, True, Accel("tcg", "no KVM")),
    ("fpu vmx", True, False, Accel("tcg", "no access to KVM")),
])
def test_accelerator(tmp_path, monkeypatch, flags, kvm, usable, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    device = tmp_path / "kvm"
    if kvm:
        device.write_text("")
    monkeypatch.setattr(qemu_lab.os, "access", lambda path, mode: usable)
    chosen = qemu_lab.choose_accel("auto", str(cpuinfo), str(device))
    assert chosen == Accel(expected.name,
                           expected.reason.replace("KVM", str(device)))


def test_accelerator_asked_for():
    assert qemu_lab.choose_accel("tcg") == Accel("tcg", "asked for")
    assert qemu_lab.choose_accel("kvm") == Accel("kvm", "asked for")
    with pytest.raises(UsageError) as info:
        qemu_lab.choose_accel("hvf")
    assert str(info.value) == "--accel 'hvf': choose auto, kvm or tcg"


def test_missing_tools_are_one_line_with_the_packages(
        tmp_path, no_kernels, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(qemu_lab, "_BUSYBOXES", ())
    with pytest.raises(UsageError) as info:
        qemu_lab.find_tools(environ={})
    assert str(info.value) == (
        "cannot boot the guests: no qemu-system-x86_64 on PATH; no busybox; "
        "no guest kernel (--kernel, $ACRN_SHM_E2E_KERNEL, .ci/cache/vmlinuz "
        f"of a checkout, {no_kernels}/vmlinuz-*); install the Debian "
        "packages: sudo apt-get install --no-install-recommends "
        "qemu-system-x86 busybox-static linux-image-cloud-amd64")
    fake_bin(tmp_path)
    (no_kernels / "vmlinuz-6.1").write_bytes(b"k")
    tools = qemu_lab.find_tools(environ={})
    assert (tools.qemu, tools.kernel, tools.busybox, tools.qemu_version) == (
        f"{tmp_path}/qemu-system-x86_64", f"{no_kernels}/vmlinuz-6.1",
        f"{tmp_path}/busybox", "9.1.0")


# --------------------------------------------------------------------------
# The guest image and command line


def test_newc_layout():
    archive = qemu_lab.newc([("init", 0o100755, b"hi\n", 0)])
    # ino, mode, uid, gid, nlink, mtime, size, 4 device numbers,
    # name size (with its NUL), check: 8 hex digits each.
    header = (b"070701" + b"00000001" + b"000081ED" + b"0" * 16
              + b"00000001" + b"00000000" + b"00000003" + b"0" * 32
              + b"00000005" + b"00000000")
    assert archive[:110] == header
    # Name and data each padded to 4 bytes, then the trailer.
    assert archive[110:120] == b"init\0\0hi\n\0"
    assert archive[120:126] == b"070701"
    assert archive[230:241] == b"TRAILER!!!\0"
    assert len(archive) % 4 == 0


def test_guest_image_as_busybox_cpio_lists_it(tmp_path):
    busybox, why = qemu_lab.find_busybox()
    if busybox is None:
        pytest.skip(f"{why} (apt-get install busybox-static)")
    image = tmp_path / "initramfs.cpio"
    image.write_bytes(qemu_lab.guest_initramfs(busybox, b"#!/bin/sh\n"))
    with image.open("rb") as archive:
        listed = subprocess.run([busybox, "cpio", "-tv"], stdin=archive,
                                capture_output=True, text=True, check=True)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [
        ("drwxr-xr-x", "bin"), ("drwxr-xr-x", "dev"),
        ("crw-------", "dev/console"), ("drwxr-xr-x", "proc"),
        ("drwxr-xr-x", "sys"), ("-rwxr-xr-x", "bin/busybox"),
        ("-rwxr-xr-x", "init")]
    extracted = tmp_path / "x"
    extracted.mkdir()
    with image.open("rb") as archive:
        subprocess.run([busybox, "cpio", "-id"], stdin=archive,
                       cwd=extracted, capture_output=True, check=True)
    assert (extracted / "init").read_bytes() == b"#!/bin/sh\n"
    assert (extracted / "bin" / "busybox").read_bytes() == Path(
        busybox).read_bytes()


def test_guest_init_passes_shellcheck(tmp_path):
    if shutil.which("shellcheck") is None:
        if os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
            pytest.fail("shellcheck is required here but not installed")
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "init"
    script.write_text(GUEST_INIT)
    done = subprocess.run(["shellcheck", str(script)], capture_output=True,
                          text=True)
    assert (done.returncode, done.stdout) == (0, "")


def test_qemu_command():
    tools = Tools("/usr/bin/qemu-system-x86_64", "/boot/vmlinuz", "/bb",
                  Accel("tcg", "test"))
    argv = qemu_lab.qemu_command(tools, "/w,x/initramfs", "/w,x/A.log",
                                 {"ivrole": "a", "ivwait": "9"},
                                 ("-device", "ivshmem-plain"))
    assert argv == [
        "/usr/bin/qemu-system-x86_64", "-accel", "tcg", "-m", "128",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-chardev", "file,id=console,path=/w,,x/A.log", "-serial",
        "chardev:console", "-kernel", "/boot/vmlinuz", "-initrd",
        "/w,x/initramfs", "-append",
        "console=ttyS0 panic=-1 quiet ivrole=a ivwait=9", "-device",
        "ivshmem-plain"]


def test_message_words_are_little_endian_and_padded():
    words = message_words(b"hello")
    assert words[:2] == ["0x6C6C6568", "0x0000006F"]
    assert words[2:] == ["0x00000000"] * 14


# --------------------------------------------------------------------------
# Planning a trial


def test_trial_on_a_scenario_region(tmp_path):
    trial = plan_trial(str(tmp_path), scenario=str(MULTI), region="shm_c")
    a, b = trial.guests
    assert (trial.region, trial.size_mb, trial.doorbell, trial.socket) == (
        "shm_c", 8, True, f"{tmp_path}/ivshmem.sock")
    # shm_c's members in order, each at its own VBDF.
    assert [(g.label, g.vm, g.device.addr, g.message) for g in (a, b)] == [
        ("A", "POST_VM1", "0b.1", b"hello from POST_VM1"),
        ("B", "POST_VM2", "09.0", b"hello from POST_VM2")]
    assert a.plan.command_line() == (
        f"-chardev socket,id=shmchr-shm_c,path={tmp_path}/ivshmem.sock "
        "-device ivshmem-doorbell,id=ivshmem-shm_c,chardev=shmchr-shm_c,"
        "vectors=1,addr=0b.1")
    assert trial.memory_path == f"{tmp_path}/shm_c"


def test_trial_plain_chosen_vms(tmp_path):
    trial = plan_trial(str(tmp_path), scenario=str(MULTI), region="shm_d",
                       vms=("POST_VM2", "POST_VM1"), plain=True)
    assert trial.socket is None
    assert [g.plan.command_line() for g in trial.guests] == [
        f"-object memory-backend-file,id=shm-shm_d,size=2M,share=on,"
        f"mem-path={tmp_path}/shm_d -device ivshmem-plain,id=ivshmem-shm_d,"
        f"memdev=shm-shm_d,addr={addr}" for addr in ("0a.0", "0b.0")]
    assert trial.warnings == (
        "region 'shm_d' has region id '5', which QEMU cannot show as the "
        "PCI subsystem id: find the device by its address 0a.0 instead",
        "region 'shm_d' has region id '5', which QEMU cannot show as the "
        "PCI subsystem id: find the device by its address 0b.0 instead")


def test_trial_on_a_legacy_scenario(tmp_path):
    trial = plan_trial(str(tmp_path), scenario=str(LEGACY), region="shm_2")
    # The region's first two VMs by id; each VM counts its regions from
    # 00:08.0 (PRE_RT_VM0 is in shm_0 too).
    assert [(g.vm, g.device.addr) for g in trial.guests] == [
        ("PRE_RT_VM0", "09.0"), ("ACRN_Service_VM", "08.0")]


def test_trial_on_a_bare_region(tmp_path):
    trial = plan_trial(str(tmp_path), name="demo", size_mb=4)
    assert [(g.name, g.device.addr, g.message) for g in trial.guests] == [
        ("guest A", None, b"hello from guest A"),
        ("guest B", None, b"hello from guest B")]


def test_message_fits_its_slot():
    name = "é" * 40  # 80 bytes of UTF-8
    message = qemu_try._message(name)
    assert message == ("hello from " + "é" * 26).encode()
    assert len(message) == 63  # and the NUL that ends it


def region_error(tmp_path, **kwargs) -> str:
    with pytest.raises(UsageError) as info:
        plan_trial(str(tmp_path), **kwargs)
    return str(info.value)


def test_trial_refusals(tmp_path):
    assert region_error(tmp_path, scenario=str(MULTI)) == (
        f"{MULTI}: has 4 regions ('shm_a', 'shm_b', 'shm_c', 'shm_d'); "
        "choose one with --region NAME")
    assert region_error(tmp_path, scenario=str(MULTI), region="x") == (
        f"{MULTI}: no region named 'x'; the regions are: 'shm_a', 'shm_b', "
        "'shm_c', 'shm_d'")
    assert region_error(tmp_path, scenario=str(MULTI), region="shm_a",
                        vms=("PRE_VM0",)) == (
        "--vms takes two different VMs, not 'PRE_VM0'")
    assert region_error(tmp_path, scenario=str(MULTI), region="shm_a",
                        vms=("PRE_VM0", "POST_VM2")) == (
        f"{MULTI}: VM 'POST_VM2' is not in region 'shm_a'; its regions are: "
        "'shm_b', 'shm_c', 'shm_d'")
    assert region_error(tmp_path, scenario=str(SCENARIO), size_mb=2) == (
        "--name and --size are for a bare region; a scenario gives them")
    assert region_error(tmp_path, name="x") == (
        "give --scenario S.xml, or --name N --size MB")
    assert region_error(tmp_path, name="x", size_mb=3) == (
        "the size of 'x' is 3 MB; QEMU needs a power of two (1, 2, 4, ... "
        "MB): other sizes make it abort")
    deep = tmp_path / ("d" * 100)
    assert region_error(deep, name="x", size_mb=2) == (
        f"{quoted(f'{deep}/ivshmem.sock')} is too long for a Unix socket "
        "(107 bytes "
        "at most); keep the files in a shorter folder")


def test_region_with_one_vm(tmp_path):
    text = MULTI.read_text(encoding="utf-8").replace(
        "<VM_NAME>PRE_VM0</VM_NAME>", "<VM_NAME>POST_VM1</VM_NAME>", 1)
    scenario = tmp_path / "one.xml"
    scenario.write_text(text, encoding="utf-8")
    assert region_error(tmp_path, scenario=str(scenario),
                        region="shm_a") == (
        f"{scenario}:6:9: region 'shm_a' has 1 VM(s); two are needed to "
        "share it")


def test_work_dir(tmp_path):
    assert qemu_try.make_work_dir(str(tmp_path / "new")) == str(
        tmp_path / "new")
    (tmp_path / "new" / "x").write_text("")
    with pytest.raises(UsageError) as info:
        qemu_try.make_work_dir(str(tmp_path / "new"))
    assert str(info.value) == (
        f"--keep '{tmp_path}/new' is not empty; give a new or empty folder")


# --------------------------------------------------------------------------
# Running a trial with a stand-in QEMU


def fake_bin(folder: Path) -> Path:
    """``folder`` with the stand-in QEMU and a static "busybox"."""
    qemu = folder / "qemu-system-x86_64"
    qemu.write_text(f'#!/bin/sh\nexec "{sys.executable}" '
                    f'"{DATA / "fake_qemu.py"}" "$@"\n')
    qemu.chmod(0o755)
    elf(folder / "busybox", 1)
    return folder


@pytest.fixture
def tools(tmp_path) -> Tools:
    folder = tmp_path / "bin"
    folder.mkdir()
    fake_bin(folder)
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"k")
    return Tools(str(folder / "qemu-system-x86_64"), str(kernel),
                 str(folder / "busybox"), Accel("tcg", "test"), "9.1.0")


def trial_in(tmp_path: Path, **kwargs):
    work = tmp_path / "work"
    work.mkdir()
    return plan_trial(str(work), plain=True, **kwargs)


def test_a_trial_that_passes(tmp_path, tools):
    trial = trial_in(tmp_path, scenario=str(SCENARIO))
    events = []
    result = run_trial(trial, tools, events.append, timeout=60)
    assert result.passed, render(result)
    work = tmp_path / "work"
    assert masked(render(result, kept=True)) == (
        "guest A (VM 'PRE_RT_VM0') at 0000:00:08.0, N s:\n"
        "  wrote 'hello from PRE_RT_VM0' at 0x40\n"
        "  read  'hello from POST_STD_VM1' at 0x80\n"
        "guest B (VM 'POST_STD_VM1') at 0000:00:08.0, N s:\n"
        "  wrote 'hello from POST_STD_VM1' at 0x80\n"
        "  read  'hello from PRE_RT_VM0' at 0x40\n"
        "the host reads both messages in the region's memory "
        f"({work}/shm_region_0)\n"
        f"passed in N s (QEMU 9.1.0, kernel {tools.kernel})\n")
    assert result.memory == (
        b"hello from PRE_RT_VM0".ljust(64, b"\0"),
        b"hello from POST_STD_VM1".ljust(64, b"\0"))
    # The region's file, made as host-prep makes it, before the guests.
    memory = work / "shm_region_0"
    assert (memory.stat().st_size, stat.S_IMODE(memory.stat().st_mode)) == (
        2 << 20, 0o600)
    # B has just been started when the first event comes; A, started
    # first, may be further on (a loaded machine). Each guest's stages
    # come in the order /init reports them.
    assert events[0].stages[1] == ("B", "booting the kernel")
    order = ["booting the kernel", "looking for the device", "writing",
             "getting ready", "waiting for the other guest", "ringing",
             "waiting for the doorbell", "finishing", "done"]
    for index, label in enumerate("AB"):
        seen = [order.index(event.stages[index][1]) for event in events]
        assert seen == sorted(seen), (label, seen)
    assert events[-1].stages == (("A", "done"), ("B", "done"))
    assert (work / "A.cmdline").read_text().startswith(
        f"{tools.qemu} -accel tcg -m 128 ")
    assert GUEST_INIT.encode() in (work / "initramfs.cpio").read_bytes()


def test_a_guest_qemu_refuses_stops_the_other(tmp_path, tools, monkeypatch):
    monkeypatch.setenv("FAKE_QEMU", "refuse")
    trial = trial_in(tmp_path, name="demo", size_mb=2)
    result = run_trial(trial, tools, timeout=60)
    work = tmp_path / "work"
    assert not result.passed
    text = masked(render(result))
    assert text.endswith(
        "guest B, N s:\n"
        "  failed: QEMU exited with status 1: 'qemu-system-x86_64: -device "
        "ivshmem-plain: PCI: slot 1 function 0 not available'\n"
        f"  its console: {work}/B.log\n"
        f"failed in N s; the files are in {work}\n")
    # A is not left waiting for B, which never comes.
    assert re.search(r"\A.*\n(.*\n)?  failed: stopped when guest B failed "
                     r"\(", text), text


def test_a_guest_that_hangs_is_killed_at_the_deadline(tmp_path, tools,
                                                      monkeypatch):
    monkeypatch.setenv("FAKE_QEMU", "hang")
    trial = trial_in(tmp_path, name="demo", size_mb=2)
    result = run_trial(trial, tools, timeout=1)
    assert [o.failure for o in result.outcomes] == [
        "still running after 1 s, killed (no line from /init: the kernel "
        "did not get that far)"] * 2
    assert [o.seconds < 5 for o in result.outcomes] == [True, True]


def test_a_message_that_does_not_cross(tmp_path, tools, monkeypatch):
    monkeypatch.setenv("FAKE_QEMU", "misread")
    trial = trial_in(tmp_path, name="demo", size_mb=2)
    result = run_trial(trial, tools, timeout=60)
    assert result.problems == (
        "guest B read 'Hello from guest A', not 'hello from guest A'",)
    assert masked(render(result)).splitlines()[-2:] == [
        "guest B read 'Hello from guest A', not 'hello from guest A'",
        f"failed in N s; the files are in {tmp_path}/work"]


# --------------------------------------------------------------------------
# The command


def run_command(tmp_path: Path, tools: Tools, *argv: str, tty: bool = False
                ) -> tuple[int, str, str]:
    """``acrn-shm qemu-try ARGV`` with the stand-ins on PATH; (status,
    stdout, stderr), or with ``tty`` (status, terminal output, "")."""
    env = dict(os.environ, PATH=f"{Path(tools.qemu).parent}:/usr/bin:/bin",
               ACRN_SHM_E2E_KERNEL=tools.kernel, TMPDIR=str(tmp_path),
               COLUMNS="200", TERM="xterm")
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "acrn_ivshmem", "qemu-try", *argv]
    if not tty:
        done = subprocess.run(command, env=env, cwd=tmp_path, timeout=120,
                              capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr
    primary, secondary = pty.openpty()
    process = subprocess.Popen(command, env=env, cwd=tmp_path,
                               stdin=secondary, stdout=secondary,
                               stderr=secondary)
    os.close(secondary)
    output = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        try:
            chunk = os.read(primary, 65536) if ready else b""
        except OSError:  # the terminal closed
            chunk = b""
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return process.wait(60), output.decode("utf-8", "replace"), ""


def test_command_output(tmp_path, tools):
    status, out, err = run_command(tmp_path, tools, "--name", "demo",
                                   "--size", "2", "--plain", "--accel",
                                   "tcg")
    assert (status, err) == (0, "")
    assert masked(out) == (
        "trying region 'demo' (2 MB) as ivshmem-plain between guest A and "
        "guest B; TCG: asked for\n"
        "guest A at 0000:00:08.0, N s:\n"
        "  wrote 'hello from guest A' at 0x40\n"
        "  read  'hello from guest B' at 0x80\n"
        "guest B at 0000:00:08.0, N s:\n"
        "  wrote 'hello from guest B' at 0x80\n"
        "  read  'hello from guest A' at 0x40\n"
        "the host reads both messages in the region's memory\n"
        f"passed in N s (QEMU 9.1.0, kernel {tools.kernel})\n")
    # A pass leaves nothing in the temporary folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bin", "vmlinuz"]


def test_command_shows_progress_on_a_terminal(tmp_path, tools):
    status, out, _ = run_command(tmp_path, tools, "--name", "demo",
                                 "--size", "2", "--plain", "--accel", "tcg",
                                 tty=True)
    assert status == 0, out
    # rich redraws the status line in place while the guests run.
    assert re.search(r"A: \w[^\r\n]*B: \w[^\r\n]*\[\d+ s\]", out), out
    assert "\x1b[2K" in out
    assert "passed in " in out


def test_command_failure_exit_status(tmp_path, tools, monkeypatch):
    monkeypatch.setenv("FAKE_QEMU", "refuse")
    status, out, err = run_command(tmp_path, tools, "--name", "demo",
                                   "--size", "2", "--plain", "--accel",
                                   "tcg")
    work, = (p for p in tmp_path.iterdir() if p.name.startswith(
        "acrn-shm-try-"))
    assert (status, err) == (1, "")
    assert out.endswith(f"the files are in {work}\n")


@pytest.mark.parametrize("argv, message", [
    (["--name", "demo"], "give --scenario S.xml, or --name N --size MB"),
    (["--scenario", str(SCENARIO), "--region", "nope"],
     f"{SCENARIO}: no region named 'nope'; the regions are: "
     "'shm_region_0'"),
    (["--name", "x", "--size", "2", "--accel", "hvf"],
     "--accel 'hvf': choose auto, kvm or tcg"),
    (["--name", "x", "--size", "2", "--kernel", "/nonexistent"],
     "--kernel '/nonexistent' is not a readable file"),
    (["--name", "x", "--size", "2", "--timeout", "0"],
     "--timeout 0: give seconds, more than 0"),
])
def test_command_usage_errors(tmp_path, tools, argv, message):
    status, out, err = run_command(tmp_path, tools, *argv)
    assert (status, out, err) == (2, "", f"acrn-shm: error: {message}\n")
    # Nothing is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "vmlinuz"]


def test_command_keep_must_be_empty(tmp_path, tools):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    status, out, err = run_command(tmp_path, tools, "--name", "x", "--size",
                                   "2", "--keep", "full")
    assert (status, out, err) == (
        2, "", "acrn-shm: error: --keep 'full' is not empty; give a new or "
        "empty folder\n")


def test_message_offsets_match_the_guest_init():
    assert (message_offset(0), message_offset(1)) == (0x40, 0x80)
    assert "at=$((bar2 + 64 + 64 * id))" in GUEST_INIT
    assert "at=$((bar2 + 64 + 64 * peer))" in GUEST_INIT


def test_a_stray_peer_of_the_server_is_caught(tmp_path):
    # Peer ids come from the server: a third peer that joined first
    # moves both guests' messages.
    trial = plan_trial(str(tmp_path), name="demo", size_mb=2)
    outcomes = tuple(qemu_try.GuestOutcome(
        guest, (), peer_id=peer, read=b"", done=0)
        for guest, peer in zip(trial.guests, (1, 2)))
    assert qemu_try._judge(trial, outcomes, (b"", b"")) == [
        "the guests are peers [1, 2], not 0 and 1"]
