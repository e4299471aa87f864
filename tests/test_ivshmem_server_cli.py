"""``acrn-shm ivshmem-server``'s options as QEMU's own server has them
(``-m DIR``, ``-p PIDFILE``), and its one-line refusals."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import run_acrn_shm

MIB = 1024 * 1024
COMMAND = [sys.executable, "-m", "acrn_ivshmem", "ivshmem-server"]


@pytest.fixture
def folder():
    """A short directory: Unix socket paths are limited to 107 bytes."""
    path = tempfile.mkdtemp(prefix="ivcli-")
    yield Path(path)
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


class Running:
    """The command until it says it listens; stopped by SIGTERM."""

    def __init__(self, *options: str, folder: Path):
        self.socket = folder / "s"
        self.process = subprocess.Popen(
            [*COMMAND, "--socket", str(self.socket), "--size", "2",
             *options], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.first_line = self.process.stderr.readline()

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        rest = self.process.stderr.read()
        self.process.stderr.close()
        return status, rest


# ---------------------------------------------------------------------------
# --pidfile (QEMU's -p)


def test_pidfile_is_written_once_listening_and_removed_on_exit(folder):
    pidfile = folder / "server.pid"
    server = Running("--pidfile", str(pidfile), folder=folder)
    try:
        assert server.first_line.startswith("acrn-shm: ivshmem server "
                                            "listening on ")
        assert pidfile.read_text() == f"{server.process.pid}\n"
        assert pidfile.stat().st_mode & 0o777 == 0o644
    finally:
        status, rest = server.stop()
    assert (status, rest) == (0, "")
    assert sorted(os.listdir(folder)) == []


def test_pidfile_symlink_is_replaced_never_followed(folder):
    target = folder / "precious"
    target.write_text("keep me\n")
    pidfile = folder / "server.pid"
    pidfile.symlink_to(target)
    server = Running("--pidfile", str(pidfile), folder=folder)
    try:
        assert not pidfile.is_symlink()
        assert pidfile.read_text() == f"{server.process.pid}\n"
    finally:
        status, _ = server.stop()
    assert status == 0
    assert target.read_text() == "keep me\n"
    assert os.listdir(folder) == ["precious"]


def test_pidfile_another_server_took_over_is_left_alone(folder):
    pidfile = folder / "server.pid"
    server = Running("--pidfile", str(pidfile), folder=folder)
    try:
        replacement = folder / "other"
        replacement.write_text("4242\n")
        os.rename(replacement, pidfile)
    finally:
        status, _ = server.stop()
    assert status == 0
    assert pidfile.read_text() == "4242\n"


@pytest.mark.parametrize("where, problem", [
    ("missing/server.pid", "No such file or directory"),
    ("a-folder", "Is a directory"),
])
def test_pidfile_that_cannot_be_written_is_one_line(folder, where, problem):
    (folder / "a-folder").mkdir()
    pidfile = folder / where
    result = run_acrn_shm(["ivshmem-server", "--socket", str(folder / "s"),
                           "--size", "2", "--pidfile", str(pidfile)], folder)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {pidfile}: cannot write the pid file: "
        f"{problem}\n")
    assert os.listdir(folder) == ["a-folder"]  # no socket, no temp file


# ---------------------------------------------------------------------------
# --mem-dir (QEMU's -m)


def test_mem_dir_makes_an_unnamed_file_or_dir_name(folder):
    memory = folder / "mem"
    memory.mkdir()
    server = Running("--mem-dir", str(memory), folder=folder)
    try:
        assert server.first_line.startswith("acrn-shm: ivshmem server")
        assert os.listdir(memory) == []
    finally:
        assert server.stop() == (0, "")
    server = Running("--mem-dir", str(memory), "--shm", "r0", folder=folder)
    try:
        assert (memory / "r0").stat().st_size == 2 * MIB
    finally:
        assert server.stop() == (0, "")
    assert os.listdir(memory) == ["r0"]  # kept, as /dev/shm/NAME is


def test_mem_dir_that_is_missing_is_one_line(folder):
    memory = folder / "none"
    result = run_acrn_shm(["ivshmem-server", "--socket", str(folder / "s"),
                           "--size", "2", "--mem-dir", str(memory)], folder)
    assert (result.returncode, result.stderr) == (
        2, f"acrn-shm: error: {memory}: No such file or directory\n")


# ---------------------------------------------------------------------------
# Values the host cannot hold


def test_size_past_what_the_host_can_back_is_one_line(folder):
    # 8796093022208 MB is 8 EiB: ftruncate overflowed ("internal error").
    fields = dict(line.split(":") for line in
                  Path("/proc/meminfo").read_text().splitlines())
    room = sum(int(fields[name].split()[0]) * 1024
               for name in ("MemTotal", "SwapTotal"))
    result = run_acrn_shm(["ivshmem-server", "--socket", str(folder / "s"),
                           "--size", "8796093022208"], folder)
    assert (result.returncode, result.stderr) == (
        2, "acrn-shm: error: shared memory of 8796093022208 MiB is more "
        f"than the {room // MIB} MiB of RAM and swap this host has\n")
    assert os.listdir(folder) == []


def test_vectors_the_open_file_limit_cannot_hold_are_one_line(folder):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    result = subprocess.run(
        [*COMMAND, "--socket", str(folder / "s"), "--size", "2",
         "--vectors", "1024"], capture_output=True, text=True, timeout=60,
        preexec_fn=limit)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "acrn-shm: error: 1024 vector(s) take 1025 fds per peer, and the "
        "open-file limit of 256 (ulimit -n) leaves ")
    assert result.stderr.endswith(": not one peer fits\n")
    assert os.listdir(folder) == []
