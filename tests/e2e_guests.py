"""Booting the end-to-end tests' QEMU guests (also used by bench/).

What boots them (:data:`TOOLS`, or :data:`MISSING` saying what is not
there): a kernel (``$ACRN_SHM_E2E_KERNEL``, ``.ci/cache/vmlinuz``,
``/boot/vmlinuz-*``), a static busybox and QEMU, which
``.ci/install-e2e`` installs, with the kernel's vfio modules in
``<kernel>.modules/``. :func:`python_initramfs` packs busybox, an
``/init`` and the host's own Python with the standard library modules a
guest program needs; :class:`Guests` starts QEMU processes under
``timeout`` and reads the lines their ``/init`` prints on the serial
console; :class:`ServerProcess` is ``acrn-shm ivshmem-server`` in a
process of its own. Nothing here imports pytest.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acrn_ivshmem.host import qemu_lab
from acrn_ivshmem.errors import UsageError

PROJECT = Path(__file__).resolve().parent.parent
GUEST_SECONDS = 40  # a guest takes 2-4 s under TCG on a 2-core host

# Read at import: the tests' autouse fixture clears ACRN_* before each
# test. CI installs acrn-shm from a copy, where qemu-try cannot see the
# checkout's .ci/cache, so the tests name it.
GUEST_KERNEL = (os.environ.get(qemu_lab.KERNEL_ENV)
                or str(PROJECT / ".ci" / "cache" / "vmlinuz"))
#: The vfio modules in the order busybox insmod loads them (each needs
#: the ones before; the kernel package has no modules.dep).
VFIO_MODULES = ("irqbypass", "vfio", "vfio_iommu_type1", "vfio_virqfd",
                "vfio-pci-core", "vfio-pci")

#: What a channel guest needs of the package: the channel and its imports.
CHANNEL_PACKAGE = ("__init__.py", "errors.py", "guest.py", *sorted(
    f"channel/{path.name}"
    for path in (PROJECT / "acrn_ivshmem" / "channel").glob("*.py")))
#: The /init of the channel guests (tests/test_e2e_channel.py, bench/).
CHANNEL_INIT = PROJECT / "tests" / "test_e2e_channel" / "channel_init.sh"
#: The guest doorbell's route: a vIOMMU (before the ivshmem device) for
#: vfio-pci, and the kernel parameter that turns it on.
Q35_IOMMU = ["-M", "q35", "-device", "intel-iommu"]
IOMMU_PARAMS = {"intel_iommu": "on", "ivvfio": "1"}


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


def vfio_modules() -> tuple[list[Path], str | None]:
    """The guest kernel's vfio modules (``<kernel>.modules/*.ko``) in
    load order, or ``[]`` and what is missing."""
    if TOOLS is None:
        return [], MISSING
    folder = Path(TOOLS.kernel + ".modules")
    paths = [folder / f"{name}.ko" for name in VFIO_MODULES]
    absent = [path.name for path in paths if not path.is_file()]
    if absent:
        return [], (f"{folder} lacks {', '.join(absent)} (the vfio modules "
                    f"of {TOOLS.kernel})")
    return paths, None


#: Lists the files of every module the given files can import (their
#: own imports, also those inside functions, and a few lazy ones).
_CLOSURE = """
import ast, importlib, sys
names = {"shutil", "locale", "gettext", "runpy", "encodings.ascii",
         "encodings.latin_1"}
for source in sys.argv[1:]:
    tree = ast.parse(open(source, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif (isinstance(node, ast.ImportFrom) and node.module
              and not node.level):
            names.add(node.module)
for name in sorted(names):
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # the package's own modules: copied, not found here
for module in list(sys.modules.values()):
    if getattr(module, "__file__", None):
        print(module.__file__)
"""


def python_files(sources) -> list[Path]:
    """The Python running the tests (with its shared libraries) and the
    standard library modules the files ``sources`` import: what a guest
    with a plain ``python3`` has. Each keeps its path."""
    python = Path(os.path.realpath(sys.executable))  # a venv's base
    listed = subprocess.run(
        [str(python), "-I", "-c", _CLOSURE, *map(str, sources)],
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


def compiled(source: bytes, name: str) -> bytes:
    """``source`` as a .pyc that Python takes without looking at the
    source's time (the initramfs has none): compiling the standard
    library at every import would cost the guest seconds under TCG."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "module.py")
        with open(path, "wb") as file:
            file.write(source)
        pyc = py_compile.compile(
            path, cfile=path + "c", dfile="/" + name, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with open(pyc, "rb") as file:
            return file.read()


def python_initramfs(init: Path, package: tuple[str, ...],
                     extra: dict[str, Path] | None = None,
                     modules: list[Path] = ()) -> bytes:
    """busybox, ``init`` as /init, the host's python3 and the standard
    library the guest program needs, the package files ``package``
    (paths under ``acrn_ivshmem/``) in /opt, ``extra`` files (name in
    the image: host path; executable) and kernel ``modules`` in
    /lib/vfio. No
    acrn-shm install, no pip."""
    directory = 0o040755
    entries = {}

    def add(name: str, mode: int, data: bytes = b"", rdev: int = 0):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]),
                               (directory, b"", 0))
        entries[name] = (mode, data, rdev)
        if name.endswith(".py") and name != "opt/guest.py":
            add(importlib.util.cache_from_source(name), 0o100644,
                compiled(data, name))

    add("dev/console", 0o020600, rdev=os.makedev(5, 1))
    for folder in ("proc", "sys", "tmp", "bin"):
        add(folder, directory)
    add("bin/busybox", 0o100755, Path(TOOLS.busybox).read_bytes())
    add("init", 0o100755, init.read_bytes())
    sources = [PROJECT / "acrn_ivshmem" / name for name in package]
    extra = extra or {}
    scanned = [*sources, *(path for path in extra.values()
                           if path.suffix == ".py")]
    for path in python_files(scanned):
        add(str(path).lstrip("/"), 0o100755, path.read_bytes())
    add("usr/bin/python3", 0o120777,
        os.path.realpath(sys.executable).encode())
    for name, source in zip(package, sources):
        add(f"opt/acrn_ivshmem/{name}", 0o100644, source.read_bytes())
    for name, source in extra.items():
        add(name, 0o100755, source.read_bytes())
    for module in modules:
        add(f"lib/vfio/{module.name}", 0o100644, module.read_bytes())
    return qemu_lab.newc([(name, *entry)
                          for name, entry in sorted(entries.items())])


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


def qemu_args(*argv: str, warning: str = "") -> list[str]:
    """The flags ``acrn-shm qemu-args ARGV`` prints, as argv words; it
    says ``warning`` (a line) on stderr, or nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", "qemu-args", *argv],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb"))
    assert (result.returncode, result.stderr) == (
        0, f"acrn-shm: warning: {warning}\n" if warning else ""), result
    assert result.stdout.count("\n") == 1, result.stdout
    return shlex.split(result.stdout)


class ServerProcess:
    """``acrn-shm ivshmem-server`` in a process of its own."""

    def __init__(self, socket_path: str, shm_name: str, size_mb: int = 2):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "acrn_ivshmem", "ivshmem-server",
             "--socket", socket_path, "--size", str(size_mb),
             "--vectors", "1", "--shm", shm_name],
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
