"""End to end, with real QEMU guests.

``acrn-shm qemu-try`` on a region of ``scenario-xmls/hybrid_rt_v3.xml``
(ivshmem-doorbell, acrn-shm's server) and on a bare region
(ivshmem-plain), and on a VBDF QEMU refuses; two guests that ring each
other through ``acrn-shm ivshmem-server`` in its own process, with the
flags of ``qemu-args --doorbell``; and acrn-shm's guest tool in two
guests on a region added with ``add-region``.

The guests are a kernel (what ``acrn-shm qemu-try`` finds:
``$ACRN_SHM_E2E_KERNEL``, ``.ci/cache/vmlinuz``, ``/boot/vmlinuz-*``)
and a busybox initramfs
built by :mod:`acrn_ivshmem.host.qemu_lab`, whose ``/init`` is qemu-try's
(:data:`~acrn_ivshmem.host.qemu_try.GUEST_INIT`) or, for the guest tool,
``test_e2e_qemu/guest_tool.sh`` with the host's Python and
``acrn_ivshmem/guest.py``. The lines the guests print on their serial
console are the verdict, not QEMU's exit status. ``.ci/install-e2e``
installs QEMU, busybox-static and the kernel; without them these tests
skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import PROJECT, run_acrn_shm

from acrn_ivshmem.errors import UsageError
from acrn_ivshmem.host import qemu_lab
from acrn_ivshmem.host.qemu_try import (
    GUEST_INIT, message_offset, message_words,
)

SCENARIO = PROJECT / "scenario-xmls" / "hybrid_rt_v3.xml"
GUEST_SECONDS = 40  # a guest takes 2-4 s under TCG on a 2-core host
MIB = 1024 * 1024


# Read at import: the autouse fixture clears ACRN_* before each test.
# CI installs acrn-shm from a copy, where qemu-try cannot see the
# checkout's .ci/cache, so the tests name it.
GUEST_KERNEL = (os.environ.get(qemu_lab.KERNEL_ENV)
                or str(PROJECT / ".ci" / "cache" / "vmlinuz"))


def guest_environ() -> dict[str, str]:
    """The variable naming the tests' guest kernel, if there is one."""
    if os.path.isfile(GUEST_KERNEL):
        return {qemu_lab.KERNEL_ENV: GUEST_KERNEL}
    return {}


def _find_tools() -> tuple[qemu_lab.Tools | None, str | None]:
    try:
        return qemu_lab.find_tools(environ=guest_environ()), None
    except UsageError as exc:
        return None, str(exc)


TOOLS, MISSING = _find_tools()
# CI installs everything (.ci/install-e2e) and sets this: no silent skip.
if MISSING is not None and os.environ.get("ACRN_SHM_REQUIRE_TOOLS"):
    pytestmark = pytest.mark.usefixtures("fail_missing_e2e_tools")
else:
    pytestmark = pytest.mark.skipif(
        MISSING is not None, reason=f"{MISSING}; or run .ci/install-e2e")


@pytest.fixture
def fail_missing_e2e_tools():
    """Fail (not skip) when CI lacks what the e2e tests need."""
    pytest.fail(f"{MISSING}; .ci/install-e2e should have installed it")


def qemu_try(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """``acrn-shm qemu-try ARGV`` with the tests' kernel and its own
    temporary folder (``tmp_path/tmp``)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return run_acrn_shm(["qemu-try", *argv], tmp_path,
                        ACRN_SHM_E2E_KERNEL=TOOLS.kernel,
                        TMPDIR=str(tmp_path / "tmp"))


def seconds(report: str) -> str:
    """The time a qemu-try report says the trial took."""
    return re.search(r"^passed in (\S+) s", report, re.M).group(1)


def masked(text: str) -> str:
    """``text`` with every time (``2.7 s``) as ``N s``."""
    return re.sub(r"\b\d+\.\d s\b", "N s", text)


# ---------------------------------------------------------------------------
# The guest image


@pytest.fixture(scope="session")
def initramfs(tmp_path_factory) -> Path:
    """busybox with qemu-try's /init."""
    path = tmp_path_factory.mktemp("guest") / "initramfs.cpio"
    path.write_bytes(qemu_lab.guest_initramfs(TOOLS.busybox,
                                              GUEST_INIT.encode()))
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
    add("bin/busybox", 0o100755, Path(TOOLS.busybox).read_bytes())
    add("init", 0o100755, GUEST_TOOL_INIT.read_bytes())
    for path in python_files():
        add(str(path).lstrip("/"), 0o100755, path.read_bytes())
    add("usr/bin/python3", 0o120777,
        os.path.realpath(sys.executable).encode())
    for name in GUEST_TOOL:
        add(f"opt/acrn_ivshmem/{name}", 0o100644,
            (PROJECT / "acrn_ivshmem" / name).read_bytes())
    image = qemu_lab.newc([(name, *entry)
                           for name, entry in sorted(entries.items())])
    path = tmp_path_factory.mktemp("guest-tool") / "initramfs.cpio"
    path.write_bytes(image)
    return path


# ---------------------------------------------------------------------------
# Guests and the server


class Guests:
    """QEMU processes of one test, each under ``timeout`` in its own
    process group; :meth:`kill_all` ends what is left."""

    def __init__(self, directory: Path, initramfs: Path,
                 seconds: int = GUEST_SECONDS,
                 memory_mb: int = qemu_lab.GUEST_MB):
        self.directory = directory
        self.initramfs = initramfs
        self.seconds = seconds
        self.memory_mb = memory_mb
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, device_args: list[str], **params: str):
        """Boot guest ``name``; ``params`` go on the kernel command line."""
        argv = qemu_lab.qemu_command(
            TOOLS, str(self.initramfs), str(self.directory / f"{name}.log"),
            params, device_args, self.memory_mb)
        with open(self.directory / f"{name}.qemu.txt", "wb") as output:
            self.processes[name] = subprocess.Popen(
                ["timeout", "-k", "5", str(self.seconds), *argv],
                stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)

    def results(self, name: str, prefix: str = "IVE ") -> list[str]:
        """Wait for guest ``name``; return its lines that start with
        ``prefix`` (without it)."""
        self.processes[name].wait(self.seconds + 10)
        return [line.strip()[len(prefix):]
                for line in self.log(name).splitlines()
                if line.startswith(prefix)]

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


def qemu_args(*argv: str, warning: str = "") -> list[str]:
    """The flags ``acrn-shm qemu-args ARGV`` prints, as argv words; it
    says ``warning`` (a line) on stderr, or nothing."""
    result = run_acrn_shm(["qemu-args", *argv], PROJECT)
    assert (result.returncode, result.stderr) == (
        0, f"acrn-shm: warning: {warning}\n" if warning else ""), result
    assert result.stdout.count("\n") == 1, result.stdout
    return shlex.split(result.stdout)


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


def test_qemu_try_on_a_scenario_region(tmp_path):
    """docs/getting-started.md's trial: bytes and a doorbell cross
    between the two VMs of shm_region_0, each at its VBDF 00:08.0."""
    keep = tmp_path / "try"
    result = qemu_try(tmp_path, "--scenario", str(SCENARIO), "--keep",
                      str(keep))
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    assert masked(result.stdout) == (
        "trying region 'shm_region_0' (2 MB) as ivshmem-doorbell between "
        "guest A (VM 'PRE_RT_VM0') at 00:08.0 and guest B (VM "
        "'POST_STD_VM1') at 00:08.0; "
        f"{TOOLS.accel.name.upper()}: {TOOLS.accel.reason}\n"
        "guest A (VM 'PRE_RT_VM0') at 0000:00:08.0, peer 0, N s:\n"
        "  wrote 'hello from PRE_RT_VM0' at 0x40\n"
        "  read  'hello from POST_STD_VM1' at 0x80\n"
        "  rang peer 1 and got a ring from peer 1\n"
        "guest B (VM 'POST_STD_VM1') at 0000:00:08.0, peer 1, N s:\n"
        "  wrote 'hello from POST_STD_VM1' at 0x80\n"
        "  read  'hello from PRE_RT_VM0' at 0x40\n"
        "  rang peer 0 and got a ring from peer 0\n"
        "the host reads both messages in the region's memory "
        f"({keep}/shm_region_0)\n"
        f"passed in N s (QEMU {TOOLS.qemu_version}, kernel "
        f"{TOOLS.kernel})\n")
    memory = (keep / "shm_region_0").read_bytes()
    assert (len(memory), memory[message_offset(0):][:22],
            memory[message_offset(1):][:24]) == (
        2 * MIB, b"hello from PRE_RT_VM0\0", b"hello from POST_STD_VM1\0")
    assert sorted(path.name for path in keep.iterdir()) == [
        "A.cmdline", "A.log", "A.qemu.txt", "B.cmdline", "B.log",
        "B.qemu.txt", "initramfs.cpio", "shm_region_0"]
    print(f"qemu-try doorbell e2e: {seconds(result.stdout)} s "
          f"({TOOLS.accel.name})")


def test_qemu_try_plain_on_a_bare_region(tmp_path):
    result = qemu_try(tmp_path, "--name", "demo", "--size", "4", "--plain")
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    lines = masked(result.stdout).splitlines()
    # QEMU chooses the slot; no server, so no peer ids and no rings.
    assert [re.sub(r" at 0000:00:0[0-9a-f]\.0", " at SLOT", line)
            for line in lines[1:]] == [
        "guest A at SLOT, N s:",
        "  wrote 'hello from guest A' at 0x40",
        "  read  'hello from guest B' at 0x80",
        "guest B at SLOT, N s:",
        "  wrote 'hello from guest B' at 0x80",
        "  read  'hello from guest A' at 0x40",
        "the host reads both messages in the region's memory",
        f"passed in N s (QEMU {TOOLS.qemu_version}, kernel {TOOLS.kernel})",
    ]
    assert lines[0].startswith("trying region 'demo' (4 MB) as "
                               "ivshmem-plain between guest A and guest B;")
    # A pass leaves no file behind.
    assert list((tmp_path / "tmp").iterdir()) == []
    print(f"qemu-try plain e2e: {seconds(result.stdout)} s "
          f"({TOOLS.accel.name})")


def test_qemu_try_reports_what_qemu_refuses(tmp_path):
    """B's VBDF is slot 1, the pc machine's ISA bridge: QEMU exits at
    once, and A is stopped rather than left waiting for it."""
    scenario = tmp_path / "slot1.xml"
    text = SCENARIO.read_text(encoding="utf-8")
    last = text.rindex("<VBDF>00:08.0</VBDF>")
    scenario.write_text(text[:last] + "<VBDF>00:01.0</VBDF>"
                        + text[last + 20:], encoding="utf-8")
    result = qemu_try(tmp_path, "--scenario", str(scenario))
    assert (result.returncode, result.stderr) == (1, (
        "acrn-shm: warning: 'shm_region_0' is at slot 01, where QEMU puts "
        "the ISA bridge (pc) or VGA (q35); QEMU fails if that device is "
        "there: use slot 03-1e\n"))
    work, = (tmp_path / "tmp").iterdir()  # kept after a failure
    assert masked(result.stdout).splitlines()[1:] == [
        "guest A (VM 'PRE_RT_VM0'), N s:",
        "  failed: stopped when guest B failed (no line from /init: the "
        "kernel did not get that far)",
        f"  its console: {work}/A.log",
        "guest B (VM 'POST_STD_VM1'), N s:",
        "  failed: QEMU exited with status 1: 'qemu-system-x86_64: -device "
        "ivshmem-doorbell,id=ivshmem-shm_region_0,chardev=shmchr-"
        "shm_region_0,vectors=1,addr=01.0: PCI: slot 1 function 0 not "
        "available for ivshmem-doorbell, in use by PIIX3,id=(null)'",
        f"  its console: {work}/B.log",
        f"failed in N s; the files are in {work}",
    ]


def test_two_guests_ring_each_other_through_the_server(guests):
    """acrn-shm ivshmem-server as its own process, the flags of
    ``qemu-args --name --doorbell``, qemu-try's /init in the guests."""
    started = time.monotonic()
    # A short directory: socket paths are limited to 107 bytes.
    sock_dir = tempfile.mkdtemp(prefix="ivs-e2e-")
    socket_path = os.path.join(sock_dir, "ivshmem.sock")
    shm_name = f"acrn-shm-e2e-{os.getpid()}-{secrets.token_hex(4)}"
    shm_file = Path("/dev/shm") / shm_name
    nonce = f"0x{secrets.randbits(30) | 1:08X}"
    messages = {"a": b"ring from a", "b": b"ring from b"}
    server = ServerProcess(socket_path, shm_name)
    try:
        wait_until(lambda: unix_connections(socket_path)[0],
                   "the server to listen")
        flags = qemu_args("--name", "doorbell", "--size", "2", "--doorbell",
                          "--socket", socket_path, "--vectors", "1")
        for name in ("a", "b"):
            guests.start(name, flags, ivrole=name, ivnonce=nonce, ivbell="1",
                         ivwait="30",
                         ivmsg=",".join(message_words(messages[name])))
            # Peer ids follow connection order: B connects after A.
            wait_until(lambda: unix_connections(socket_path)[1] >= 1,
                       "guest A to connect")
        results = {name: guests.results(name, "IVT ") for name in "ab"}
        data = shm_file.read_bytes()
    finally:
        guests.kill_all()
        stopped = server.stop()
        socket_left = os.path.exists(socket_path)
        shm_file.unlink(missing_ok=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    for name, me, peer in (("a", 0, 1), ("b", 1, 0)):
        lines = results[name]
        assert lines[:1] == ["boot"], guests.log(name)
        assert re.fullmatch(r"device 0000:00:[01][0-9a-f]\.0",
                            lines[1]), guests.log(name)
        other = message_words(messages["ab"[peer]])
        assert lines[2:] == [
            f"id {me}", f"wrote {message_offset(me)}", "ready",
            f"read {message_offset(peer)} {' '.join(other)}",
            f"rang {peer}", f"doorbell {peer}", "done rc=0",
        ], guests.log(name)
    assert (len(data), data[message_offset(0):][:12],
            data[message_offset(1):][:12]) == (
        2 * MIB, b"ring from a\0", b"ring from b\0")
    assert (stopped[0], socket_left) == (0, False), stopped[1]
    print(f"doorbell e2e: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")


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
    # The initramfs holds a Python: 128 MB cannot unpack it.
    guests = Guests(tmp_path, guest_tool_initramfs, seconds=120,
                    memory_mb=256)
    try:
        for name, vm in (("a", "PRE_RT_VM0"), ("b", "POST_STD_VM1")):
            # add-region gave shm_video the next free region id, 1.
            flags = qemu_args(
                "--scenario", str(scenario), "--vm", vm, "--shm-dir",
                str(shm_dir), warning=(
                    "region 'shm_video' has region id '1', which QEMU "
                    "cannot show as the PCI subsystem id: find the device "
                    "by its address 09.0 instead"))
            guests.start(name, flags, ivscen=f"tool-{name}")
        results = {name: guests.results(name) for name in ("a", "b")}
    finally:
        guests.kill_all()
    # QEMU has no region ids and no MSI-X on ivshmem-plain; no driver.
    listing = [
        "list ADDRESS       REGION_ID  SIZE       PHYS                MSIX  "
        "DRIVER",
        "list 0000:00:08.0  -          2 MiB      0xfe800000          no    "
        "-",
        "list 0000:00:09.0  -          8 MiB      0xfe000000          no    "
        "-",
    ]
    assert results["a"] == listing + [
        "write wrote 5 bytes at 0x0 of 0000:00:09.0",
        "read world at 16", "done rc=0"], guests.log("a")
    assert results["b"] == listing + [
        "read hello at 0",
        "write wrote 5 bytes at 0x10 of 0000:00:09.0",
        "done rc=0"], guests.log("b")
    video = (shm_dir / "shm_video").read_bytes()
    assert (len(video), video[:5], video[16:21]) == (
        8 * MIB, b"hello", b"world")
    print(f"guest tool e2e: {time.monotonic() - started:.1f} s "
          f"({TOOLS.accel.name})")
