"""The QEMU-side commands through the real CLI: qemu-args, libvirt-xml,
host-prep, guest, ivshmem-server (their libraries: test_qemu,
test_guest, test_ivshmem_server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import PROJECT, TESTS, run_acrn_shm

SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"


def test_qemu_args_for_a_scenario_vm(tmp_path):
    result = run_acrn_shm(["qemu-args", "--scenario", str(SCENARIO),
                           "--vm", "POST_STD_VM1", "--shm-dir", "/srv/shm"],
                          tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        "-object memory-backend-file,id=shm-shm_region_0,size=2M,share=on,"
        "mem-path=/srv/shm/shm_region_0 -device ivshmem-plain,"
        "id=ivshmem-shm_region_0,memdev=shm-shm_region_0,addr=08.0\n")


def test_qemu_args_doorbell(tmp_path):
    result = run_acrn_shm(["qemu-args", "--name", "bell", "--size", "2",
                           "--doorbell", "--socket", "/tmp/b.sock",
                           "--vectors", "2"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "-chardev socket,id=shmchr-bell,path=/tmp/b.sock -device "
        "ivshmem-doorbell,id=ivshmem-bell,chardev=shmchr-bell,vectors=2\n",
        "")


def test_qemu_args_needs_a_source(tmp_path):
    result = run_acrn_shm(["qemu-args"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "acrn-shm: error: give --scenario S.xml --vm NAME, or "
        "--name N --size MB\n")
    result = run_acrn_shm(["qemu-args", "--name", "x", "--size", "2",
                           "--vectors", "2"], tmp_path)
    assert (result.returncode, result.stderr) == (
        2, "acrn-shm: error: --socket and --vectors need --doorbell\n")


def test_qemu_args_doorbell_for_a_scenario_region(tmp_path):
    result = run_acrn_shm(["qemu-args", "--scenario", str(SCENARIO),
                           "--vm", "POST_STD_VM1", "--doorbell",
                           "--socket", "/tmp/b.sock"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "-chardev socket,id=shmchr-shm_region_0,path=/tmp/b.sock "
        "-device ivshmem-doorbell,id=ivshmem-shm_region_0,"
        "chardev=shmchr-shm_region_0,vectors=1,addr=08.0\n", "")


def test_qemu_args_region_of_a_scenario(tmp_path):
    result = run_acrn_shm(["qemu-args", "--scenario", str(SCENARIO),
                           "--vm", "POST_STD_VM1", "--region",
                           "shm_region_0", "--shm-dir", "/srv"], tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.endswith("mem-path=/srv/shm_region_0 -device "
                                  "ivshmem-plain,id=ivshmem-shm_region_0,"
                                  "memdev=shm-shm_region_0,addr=08.0\n")


@pytest.mark.parametrize("argv, message", [
    (["--scenario", str(SCENARIO), "--vm", "POST_STD_VM1", "--size", "2"],
     "--addr and --size are for --name; a scenario gives them"),
    (["--scenario", str(SCENARIO), "--vm", "POST_STD_VM1", "--doorbell"],
     "--doorbell needs --socket PATH (the ivshmem-server socket)"),
    (["--name", "x", "--size", "2", "--region", "x"],
     "--vm and --region are for --scenario"),
    (["--scenario", str(SCENARIO), "--vm", "POST_STD_VM1", "--region",
      "shm_video"],
     f"{SCENARIO}: no region named 'shm_video'; the regions are: "
     "'shm_region_0'"),
])
def test_qemu_args_refusals(tmp_path, argv, message):
    result = run_acrn_shm(["qemu-args", *argv], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {message}\n")


def test_libvirt_xml_hugepages_names_no_ignored_option(tmp_path):
    result = run_acrn_shm(["libvirt-xml", "--name", "r0", "--size", "2",
                           "--hugepages"], tmp_path)
    assert (result.returncode, result.stderr) == (
        0, "acrn-shm: warning: libvirt's <shmem> has no huge-page setting: "
        "it maps /dev/shm/<name> in normal pages\n")


def test_libvirt_xml(tmp_path):
    result = run_acrn_shm(["libvirt-xml", "--scenario", str(SCENARIO),
                           "--vm", "POST_STD_VM1"], tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        '<shmem name="shm_region_0">\n'
        '  <model type="ivshmem-plain"/>\n'
        '  <size unit="M">2</size>\n'
        '  <address type="pci" domain="0x0000" bus="0x00" slot="0x08" '
        'function="0x0"/>\n'
        '</shmem>\n')


def test_host_prep_check_then_create(tmp_path):
    folder = tmp_path / "shm"
    folder.mkdir()
    argv = ["host-prep", "--name", "r0", "--size", "2", "--shm-dir",
            str(folder)]
    checked = run_acrn_shm(argv + ["--check"], tmp_path)
    assert (checked.returncode, checked.stderr) == (1, "")
    assert checked.stdout == (
        f"problem: {folder}/r0: missing\n"
        "run as root:\n"
        f"  truncate -s 2M {folder}/r0\n"
        f"  chmod 660 {folder}/r0\n")
    assert not (folder / "r0").exists()
    made = run_acrn_shm(argv, tmp_path)
    assert (made.returncode, made.stderr) == (0, "")
    assert made.stdout == (
        f"created: {folder}/r0: 2 MiB, mode 660\n")
    assert (folder / "r0").stat().st_size == 2 * 1024 * 1024


def test_guest_help_names_the_command(tmp_path):
    result = run_acrn_shm(["guest", "--help"], tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: acrn-shm guest [-h] ")
    assert " ".join(result.stdout.split()[-21:]) == (
        "Example: acrn-shm guest read -d 00:08.0 --length 64 (also: "
        "python3 -m acrn_ivshmem.guest read ...; the module needs Python's "
        "standard library only)")
    result = run_acrn_shm(["guest", "read"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("usage: acrn-shm guest read [-h] ")


def test_guest_list_on_a_fake_sysfs(tmp_path):
    result = run_acrn_shm(["guest", "--sysfs",
                           str(TESTS / "test_guest" / "sys"), "list"],
                          tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "ADDRESS", "REGION_ID", "SIZE", "PHYS", "MSIX", "DRIVER"]


def test_ivshmem_server_starts_and_stops(tmp_path):
    sock = tmp_path / "s.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "acrn_ivshmem", "ivshmem-server",
         "--socket", str(sock), "--size", "2", "--vectors", "2"],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=dict(os.environ))
    try:
        line = server.stderr.readline()
        assert line == (f"acrn-shm: ivshmem server listening on {sock} "
                        "(2 MB, 2 vector(s))\n")
        assert sock.exists()
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=10)
        server.stderr.close()
    assert status == 0
    deadline = time.monotonic() + 5
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sock.exists()
