"""End to end: two QEMU guests share an ACRN region, with and without
doorbells, using the flags of ``acrn-shm qemu-args``; and two guests run
acrn-shm's guest tool on a region added with ``add-region``.

The guests are a Debian cloud kernel and a busybox initramfs built
here; ``test_e2e_qemu/init.sh`` is their ``/init`` (busybox's devmem
reads and writes BAR2). For the guest tool, ``guest_tool.sh`` is /init
and the initramfs also holds the Python running the tests, the standard
library modules the tool imports and ``acrn_ivshmem/guest.py``. Each
prints ``IVE`` lines on the serial port, and those (not QEMU's exit
status) are the verdict. ``.ci/install-e2e`` installs QEMU,
busybox-static and the kernel (``.ci/cache/vmlinuz``, or
``$ACRN_SHM_E2E_KERNEL``); without them these tests skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PROJECT, run_acrn_shm

# Read at import: the autouse fixture clears ACRN_* before each test.
KERNEL = Path(os.environ.get("ACRN_SHM_E2E_KERNEL")
              or PROJECT / ".ci" / "cache" / "vmlinuz")
QEMU = shutil.which("qemu-system-x86_64")
BUSYBOX = Path("/bin/busybox")
INIT = Path(__file__).with_suffix("") / "init.sh"
SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
REGION = "shm_region_0"  # 2 MB, PRE_RT_VM0 and POST_STD_VM1 at 00:08.0
GUEST_SECONDS = 40  # a guest takes 2-4 s under TCG on a 2-core host
MIB = 1024 * 1024


def _static_elf(path: Path) -> bool:
    """True if ``path`` is a 64-bit ELF without an interpreter."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            if head[:5] != b"\x7fELF\x02":
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            entsize, count = struct.unpack_from("<HH", head, 54)
            file.seek(phoff)
            table = file.read(entsize * count)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, n * entsize)[0] != 3
               for n in range(count))  # 3 is PT_INTERP


def _missing() -> str | None:
    if QEMU is None:
        return "qemu-system-x86_64 is not installed"
    if not KERNEL.is_file():
        return f"no guest kernel at {KERNEL}"
    if not _static_elf(BUSYBOX):
        return f"{BUSYBOX} is not a static busybox (busybox-static)"
    return None


MISSING = _missing()
# CI installs everything (.ci/install-e2e) and sets this: no silent skip.
if MISSING is not None and os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
    MISSING = None
    pytestmark = pytest.mark.usefixtures("fail_missing_e2e_tools")
else:
    pytestmark = pytest.mark.skipif(
        MISSING is not None, reason=f"{MISSING}; run .ci/install-e2e")


@pytest.fixture
def fail_missing_e2e_tools():
    """Fail (not skip) when CI lacks what the e2e tests need."""
    missing = _missing()
    if missing is not None:
        pytest.fail(f"{missing}; .ci/install-e2e should have installed it")


def accelerator() -> str:
    """KVM only with real VT-x/AMD-V: a /dev/kvm alone may be PVM,
    which opens fine and then cannot run a stock kernel."""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as file:
        flags = set(file.read().split())
    if flags & {"vmx", "svm"} and os.access("/dev/kvm", os.W_OK):
        return "kvm"
    return "tcg"


# ---------------------------------------------------------------------------
# The guest image


def newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A newc cpio archive of ``(name, mode, data, rdev)`` entries."""
    out = bytearray()
    trailer = [("TRAILER!!!", 0, b"", 0)]
    for number, (name, mode, data, rdev) in enumerate(entries + trailer):
        raw = name.encode() + b"\0"
        fields = (number + 1, mode, 0, 0, 1, 0, len(data), 0, 0,
                  os.major(rdev), os.minor(rdev), len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % field for field in fields)
        out += raw + b"\0" * (-(110 + len(raw)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return bytes(out)


@pytest.fixture(scope="session")
def initramfs(tmp_path_factory) -> Path:
    """busybox, /init and /dev/console (no devtmpfs is mounted yet when
    the kernel opens it)."""
    directory = 0o040755
    image = newc([
        ("bin", directory, b"", 0),
        ("dev", directory, b"", 0),
        ("dev/console", 0o020600, b"", os.makedev(5, 1)),
        ("proc", directory, b"", 0),
        ("sys", directory, b"", 0),
        ("bin/busybox", 0o100755, BUSYBOX.read_bytes(), 0),
        ("init", 0o100755, INIT.read_bytes(), 0),
    ])
    path = tmp_path_factory.mktemp("guest") / "initramfs.cpio"
    path.write_bytes(image)
    return path


#: The guest tool's own files, as ``pip install`` would place them.
GUEST_TOOL = ("__init__.py", "guest.py", "errors.py")
GUEST_TOOL_INIT = Path(__file__).with_suffix("") / "guest_tool.sh"
#: Lists the files of every module the guest tool can import (its own
#: imports, also those inside functions, and argparse's lazy ones).
_CLOSURE = """
import ast, importlib, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
names = {"shutil", "locale", "gettext", "runpy", "encodings.ascii",
         "encodings.latin_1"}
for node in ast.walk(tree):
    if isinstance(node, ast.Import):
        names |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        names.add(node.module)
for name in sorted(names):
    importlib.import_module(name)
for module in list(sys.modules.values()):
    if getattr(module, "__file__", None):
        print(module.__file__)
"""


def python_files() -> list[Path]:
    """The Python running the tests (with its shared libraries) and the
    standard library modules the guest tool needs: what a guest with a
    plain ``python3`` has. Each keeps its path."""
    python = Path(os.path.realpath(sys.executable))  # a venv's base
    listed = subprocess.run(
        [str(python), "-I", "-c", _CLOSURE,
         str(PROJECT / "acrn_ivshmem" / "guest.py")],
        capture_output=True, text=True, check=True).stdout.split()
    stdlib = Path(os.path.dirname(os.__file__)).resolve()
    files = {python} | {Path(name) for name in listed
                        if Path(name).resolve().is_relative_to(stdlib)
                        and "packages" not in name
                        and not name.endswith("sitecustomize.py")}
    for binary in [python, *(f for f in files if f.suffix == ".so")]:
        needed = subprocess.run(["ldd", str(binary)], capture_output=True,
                                text=True, check=True).stdout
        files |= {Path(path) for path in re.findall(
            r"(/\S+\.so[.\d]*) \(0x", needed)}
    return sorted(files)


@pytest.fixture(scope="session")
def guest_tool_initramfs(tmp_path_factory) -> Path:
    """busybox, ``guest_tool.sh`` as /init, the host's python3 and the
    guest tool in /opt (no acrn-shm install, no pip)."""
    directory = 0o040755
    entries = {}

    def add(name: str, mode: int, data: bytes = b"", rdev: int = 0):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]),
                               (directory, b"", 0))
        entries[name] = (mode, data, rdev)

    add("dev/console", 0o020600, rdev=os.makedev(5, 1))
    for folder in ("proc", "sys", "tmp", "bin"):
        add(folder, directory)
    add("bin/busybox", 0o100755, BUSYBOX.read_bytes())
    add("init", 0o100755, GUEST_TOOL_INIT.read_bytes())
    for path in python_files():
        add(str(path).lstrip("/"), 0o100755, path.read_bytes())
    add("usr/bin/python3", 0o120777,
        os.path.realpath(sys.executable).encode())
    for name in GUEST_TOOL:
        add(f"opt/acrn_ivshmem/{name}", 0o100644,
            (PROJECT / "acrn_ivshmem" / name).read_bytes())
    image = newc([(name, *entry) for name, entry in sorted(entries.items())])
    path = tmp_path_factory.mktemp("guest-tool") / "initramfs.cpio"
    path.write_bytes(image)
    return path


# ---------------------------------------------------------------------------
# Guests and the server


class Guests:
    """QEMU processes of one test, each under ``timeout`` in its own
    process group; :meth:`kill_all` ends what is left."""

    def __init__(self, directory: Path, initramfs: Path,
                 seconds: int = GUEST_SECONDS):
        self.directory = directory
        self.initramfs = initramfs
        self.seconds = seconds
        self.accel = accelerator()
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, device_args: list[str], **params: str):
        """Boot guest ``name``; ``params`` go on the kernel command line."""
        extra = " ".join(f"{key}={value}" for key, value in params.items())
        with open(self.directory / f"{name}.qemu.txt", "wb") as output:
            self.processes[name] = subprocess.Popen(
                ["timeout", "-k", "5", str(self.seconds), QEMU,
                 "-accel", self.accel, "-m", "256", "-nodefaults",
                 "-no-user-config", "-display", "none", "-no-reboot",
                 "-serial", f"file:{self.directory / name}.log",
                 "-kernel", str(KERNEL), "-initrd", str(self.initramfs),
                 "-append", f"console=ttyS0 panic=-1 quiet {extra}",
                 *device_args],
                stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)

    def results(self, name: str) -> list[str]:
        """Wait for guest ``name``; return its ``IVE`` lines."""
        self.processes[name].wait(self.seconds + 10)
        return [line.strip() for line in self.log(name).splitlines()
                if line.startswith("IVE ")]

    def log(self, name: str) -> str:
        """The serial log, then QEMU's own output (for failures)."""
        texts = []
        for suffix in (".log", ".qemu.txt"):
            path = self.directory / f"{name}{suffix}"
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "\n--- qemu ---\n".join(texts)

    def kill_all(self):
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def guests(tmp_path, initramfs):
    running = Guests(tmp_path, initramfs)
    yield running
    running.kill_all()


def qemu_args(*argv: str) -> list[str]:
    """The flags ``acrn-shm qemu-args ARGV`` prints, as argv words."""
    result = run_acrn_shm(["qemu-args", *argv], PROJECT)
    assert (result.returncode, result.stderr) == (0, ""), result
    assert result.stdout.count("\n") == 1, result.stdout
    return shlex.split(result.stdout)


def words(value: int) -> str:
    """``value`` as devmem prints a 32-bit word."""
    return f"0x{value:08X}"


def unix_connections(path: str) -> tuple[bool, int]:
    """Whether ``path`` is listening, and how many peers connected to
    it (accepted or not yet), from /proc/net/unix."""
    listening, connected = False, 0
    with open("/proc/net/unix", encoding="utf-8", errors="replace") as file:
        for line in file:
            fields = line.split()
            if len(fields) == 8 and fields[7] == path:
                if fields[3] == "00010000":  # __SO_ACCEPTCON
                    listening = True
                else:
                    connected += 1
    return listening, connected


def wait_until(condition, what: str, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class ServerProcess:
    """``acrn-shm ivshmem-server`` in a process of its own."""

    def __init__(self, socket_path: str, shm_name: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "acrn_ivshmem", "ivshmem-server",
             "--socket", socket_path, "--size", "2", "--vectors", "1",
             "--shm", shm_name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)

    def stop(self) -> tuple[int | None, str]:
        """Send SIGTERM (killed if it lingers); return the exit status
        (None if killed) and what it wrote on stderr."""
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(10)
        except subprocess.TimeoutExpired:
            status = None
            self.process.kill()
            self.process.wait()
        errors = self.process.stderr.read()
        self.process.stderr.close()
        return status, errors


# ---------------------------------------------------------------------------
# Tests


def test_two_guests_share_a_scenario_region(guests, tmp_path):
    started = time.monotonic()
    shm_dir = tmp_path / "shm"
    shm_dir.mkdir()
    marker = secrets.randbits(31) | 1
    answer = marker ^ 0x5A5A5A5A
    for name, vm, scenario in (("a", "PRE_RT_VM0", "plain-a"),
                               ("b", "POST_STD_VM1", "plain-b")):
        flags = qemu_args("--scenario", str(SCENARIO), "--vm", vm,
                          "--shm-dir", str(shm_dir))
        guests.start(name, flags, ivscen=scenario,
                      ivmarker=words(marker), ivanswer=words(answer))
    head = ["IVE device 0000:00:08.0", "IVE bar2 size=0x200000"]
    assert guests.results("a") == head + [
        f"IVE answer {words(answer)}", "IVE done rc=0"], guests.log("a")
    assert guests.results("b") == head + [
        f"IVE marker {words(marker)}", "IVE done rc=0"], guests.log("b")
    data = (shm_dir / REGION).read_bytes()
    assert (len(data), data[:8]) == (2 * MIB,
                                     struct.pack("<II", marker, answer))
    print(f"plain e2e: {time.monotonic() - started:.1f} s "
          f"({guests.accel})")


def test_two_guests_ring_each_other_through_the_server(guests):
    started = time.monotonic()
    # A short directory: socket paths are limited to 107 bytes.
    sock_dir = tempfile.mkdtemp(prefix="ivs-e2e-")
    socket_path = os.path.join(sock_dir, "ivshmem.sock")
    shm_name = f"acrn-shm-e2e-{os.getpid()}-{secrets.token_hex(4)}"
    shm_file = Path("/dev/shm") / shm_name
    marker = secrets.randbits(30) | 1
    server = ServerProcess(socket_path, shm_name)
    try:
        wait_until(lambda: unix_connections(socket_path)[0],
                   "the server to listen")
        flags = qemu_args("--name", "doorbell", "--size", "2", "--doorbell",
                          "--socket", socket_path, "--vectors", "1")
        # Peer ids follow connection order: B connects after A.
        guests.start("a", flags, ivscen="doorbell", ivmarker=words(marker))
        wait_until(lambda: unix_connections(socket_path)[1] == 1,
                   "guest A to connect")
        guests.start("b", flags, ivscen="doorbell", ivmarker=words(marker))
        results = {name: guests.results(name) for name in ("a", "b")}
        data = shm_file.read_bytes()
    finally:
        guests.kill_all()
        stopped = server.stop()
        socket_left = os.path.exists(socket_path)
        shm_file.unlink(missing_ok=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    for name, me, peer in (("a", 0, 1), ("b", 1, 0)):
        lines = results[name]
        assert re.fullmatch(r"IVE device 0000:00:[01][0-9a-f]\.0",
                            lines[0]), guests.log(name)
        assert lines[1:] == [
            "IVE bar2 size=0x200000", f"IVE ivposition={me}",
            f"IVE doorbell from peer {peer}", "IVE done rc=0",
        ], guests.log(name)
    assert (len(data), data[8:16]) == (
        2 * MIB, struct.pack("<II", marker, marker + 1))
    assert (stopped[0], socket_left) == (0, False), stopped[1]
    print(f"doorbell e2e: {time.monotonic() - started:.1f} s "
          f"({guests.accel})")


def test_guest_tool_in_two_real_guests(tmp_path, guest_tool_initramfs):
    """docs/getting-started.md, section 5, in two real guests: the
    scenario gains shm_video (8 MB, 00:09.0 in both VMs), QEMU takes the
    flags of ``acrn-shm qemu-args``, and ``python3 -m acrn_ivshmem.guest``
    lists, writes and reads the region through BAR2."""
    started = time.monotonic()
    scenario = tmp_path / "my-scenario.xml"
    shutil.copy(SCENARIO, scenario)
    added = run_acrn_shm(["add-region", str(scenario), "--name",
                          "shm_video", "--size", "8", "--vms",
                          "PRE_RT_VM0,POST_STD_VM1"], PROJECT)
    assert added.returncode == 0, added
    shm_dir = tmp_path / "shm"
    shm_dir.mkdir()
    guests = Guests(tmp_path, guest_tool_initramfs, seconds=120)
    try:
        for name, vm in (("a", "PRE_RT_VM0"), ("b", "POST_STD_VM1")):
            guests.start(name, qemu_args("--scenario", str(scenario),
                                         "--vm", vm, "--shm-dir",
                                         str(shm_dir)),
                         ivscen=f"tool-{name}")
        results = {name: guests.results(name) for name in ("a", "b")}
    finally:
        guests.kill_all()
    # QEMU has no region ids and no MSI-X on ivshmem-plain; no driver.
    listing = [
        "IVE list ADDRESS       REGION_ID  SIZE       PHYS                "
        "MSIX  DRIVER",
        "IVE list 0000:00:08.0  -          2 MiB      0xfe800000          "
        "no    -",
        "IVE list 0000:00:09.0  -          8 MiB      0xfe000000          "
        "no    -",
    ]
    assert results["a"] == listing + [
        "IVE write wrote 5 bytes at 0x0 of 0000:00:09.0",
        "IVE read world at 16", "IVE done rc=0"], guests.log("a")
    assert results["b"] == listing + [
        "IVE read hello at 0",
        "IVE write wrote 5 bytes at 0x10 of 0000:00:09.0",
        "IVE done rc=0"], guests.log("b")
    video = (shm_dir / "shm_video").read_bytes()
    assert (len(video), video[:5], video[16:21]) == (
        8 * MIB, b"hello", b"world")
    print(f"guest tool e2e: {time.monotonic() - started:.1f} s "
          f"({guests.accel})")
