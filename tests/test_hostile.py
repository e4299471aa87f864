"""Hostile XML against whole ``acrn-shm`` processes.

``test_xmlio.py`` drives the loader in-process; here each case is a
real ``acrn-shm lint FILE`` process (for some also ``add-region``) on a
copy of ACRN's whl-ipc-i5 ``hybrid_rt.xml`` made hostile, with its
board beside it. Each process must give the exact exit code and output
(2 and one ``file:line:column`` line when refused; 0 when the odd file
is handled), stay below 200 MB peak RSS and 1 s of CPU (user + system,
from ``os.wait4``; CPU rather than wall time, which a loaded machine
stretches), open no canary file and connect nowhere: the entities and
DTDs point at a canary file watched with inotify and at a localhost
listener that must never see a connection. The entity cases also run
under a Python audit hook that records opens of the canary, sockets and
new processes.

The schemas' validation results of the handled cases are cached in this
process first (the cache is keyed by the file's bytes), so that their
CPU time measures the file, not compiling the XSDs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ACRN_DATA

from acrn_ivshmem.io.xmlio import MAX_BYTES
from acrn_ivshmem.lint.config import LintConfig
from acrn_ivshmem.lint.engine import lint

WHL = ACRN_DATA / "v3.3" / "whl-ipc-i5"
NAME = b"<NAME>shm_region_0</NAME>"
BOM = b"\xef\xbb\xbf"
MAX_RSS_MB = 200
MAX_CPU_S = 1.0
DOCTYPE = ("a DOCTYPE declaration is not allowed (acrn-shm reads no DTDs "
           "or entities)")
EDIT = ["add-region", "--vms", "PRE_RT_VM0,POST_STD_VM1"]

pytestmark = pytest.mark.skipif(not WHL.is_dir(),
                                reason=f"{WHL} is missing")


@dataclass(frozen=True)
class Target:
    """Where a hostile file may reach out to: ``port`` of the localhost
    listener, ``canary`` (a file path)."""

    port: int
    canary: Path


def real() -> bytes:
    """The unmodified scenario."""
    return (WHL / "hybrid_rt.xml").read_bytes()


def laughs() -> bytes:
    """Billion laughs: &lol9; would expand to 10**9 'lol's."""
    entities = [b'  <!ENTITY lol "lol">\n'] + [
        b'  <!ENTITY lol%d "%s">\n' % (
            level, (b"&lol%s;" % (b"%d" % (level - 1) if level > 1 else b""))
            * 10) for level in range(1, 10)]
    return (b"<!DOCTYPE acrn-config [\n" + b"".join(entities) + b"]>\n"
            + real().replace(NAME, b"<NAME>&lol9;</NAME>"))


def file_entity(target: Target) -> bytes:
    return (b'<!DOCTYPE acrn-config [\n  <!ENTITY secret SYSTEM "file://%s">'
            b"\n]>\n" % bytes(target.canary)
            + real().replace(NAME, b"<NAME>&secret;</NAME>"))


def http_entity(target: Target) -> bytes:
    return (b'<!DOCTYPE acrn-config [\n  <!ENTITY remote SYSTEM '
            b'"http://127.0.0.1:%d/entity.xml">\n]>\n' % target.port
            + real().replace(NAME, b"<NAME>&remote;</NAME>"))


def parameter_entity(target: Target) -> bytes:
    return (b'<!DOCTYPE acrn-config [\n  <!ENTITY %% remote SYSTEM '
            b'"http://127.0.0.1:%d/remote.dtd">\n  %%remote;\n]>\n'
            % target.port + real())


def external_dtd(target: Target) -> bytes:
    return (b'<!DOCTYPE acrn-config SYSTEM "http://127.0.0.1:%d/acrn.dtd">'
            b"\n" % target.port + real())


def quadratic(_target: Target) -> bytes:
    # One 100 kB entity used 100,000 times: 10 GB once expanded.
    return (b'<!DOCTYPE acrn-config [\n  <!ENTITY a "' + b"x" * 100_000
            + b'">\n]>\n'
            + real().replace(NAME, b"<NAME>" + b"&a;" * 100_000 + b"</NAME>"))


def deep(_target: Target) -> bytes:
    return real().replace(
        b"<hv>\n", b"<hv>\n" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"\n", 1)


def latin1_declared(_target: Target) -> bytes:
    return (b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + real().replace(
        b"<hv>\n", b"<hv>\n    <!-- r\xe9gion partag\xe9e -->\n", 1))


CASES = {
    # name: (build, exit code, stdout, stderr with {path}, edit stderr)
    "file_entity": (
        file_entity, 2, "", f"{{path}}:1:1: {DOCTYPE}", "same"),
    "http_entity": (http_entity, 2, "", f"{{path}}:1:1: {DOCTYPE}", None),
    "parameter_entity": (
        parameter_entity, 2, "", f"{{path}}:1:1: {DOCTYPE}", None),
    "external_dtd": (external_dtd, 2, "", f"{{path}}:1:1: {DOCTYPE}", None),
    "billion_laughs": (
        lambda _t: laughs(), 2, "", f"{{path}}:1:1: {DOCTYPE}", "same"),
    "billion_laughs_after_comment": (
        lambda _t: b"<!-- regions -->\n" + laughs(), 2, "",
        f"{{path}}:2:1: {DOCTYPE}", None),
    "billion_laughs_utf16": (
        lambda _t: b"\xff\xfe" + laughs().decode().encode("utf-16-le"), 2,
        "", f"{{path}}:1:1: {DOCTYPE}", None),
    "quadratic_blowup": (quadratic, 2, "", f"{{path}}:1:1: {DOCTYPE}", None),
    "file_50mb": (
        None, 2, "", f"{{path}}: file is {50 * 1024 * 1024} bytes; the "
        f"limit is {MAX_BYTES} bytes", "same"),
    "nesting_10000": (
        deep, 2, "", "{path}:3:765: not well-formed XML: Excessive depth in "
        "document: 256, use XML_PARSE_HUGE option", None),
    "nul_byte": (
        lambda _t: real().replace(b"<BUILD_TYPE>debug",
                                  b"<BUILD_TYPE>deb\x00ug"), 2, "",
        "{path}:3:20: not well-formed XML: Invalid character: Char 0x0 out "
        "of allowed range",
        "same"),
    "latin1_undeclared": (
        lambda _t: real().replace(b"<BUILD_TYPE>debug",
                                  b"<BUILD_TYPE>d\xe9bug"), 2, "",
        "{path}:3:18: not well-formed XML: Invalid bytes in character "
        "encoding", None),
    "latin1_declared": (
        latin1_declared, 0, "no problems in 1 file\n", None, None),
    "bom_utf8": (lambda _t: BOM + real(), 0, "no problems in 1 file\n",
                 None, None),
    "bom_utf16": (
        lambda _t: b"\xff\xfe" + real().decode().encode("utf-16-le"), 0,
        "no problems in 1 file\n", None,
        "{path}: cannot edit a file encoded as 'utf-16-le'"),
    "crlf": (lambda _t: real().replace(b"\n", b"\r\n"), 0,
             "no problems in 1 file\n", None, None),
}


@dataclass(frozen=True)
class Run:
    """A finished process: exit code, output and what it cost."""

    code: int
    stdout: str
    stderr: str
    rss_mb: float
    cpu_s: float
    wall_s: float


# Forks (a real fork, not vfork) and execs ``python ARGV[2:]``, waits
# with os.wait4 and writes the exit status and rusage to ARGV[1]. Linux
# adds the memory high-water mark of the process that calls exec to the
# new program's ru_maxrss: spawned from pytest, a child would be charged
# with pytest's own peak; from here, with this small process's.
LAUNCHER = r"""
import json, os, sys, time
start = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as stream:
    json.dump({"code": os.waitstatus_to_exitcode(status),
               "rss_kb": usage.ru_maxrss,
               "cpu_s": usage.ru_utime + usage.ru_stime,
               "wall_s": time.monotonic() - start}, stream)
"""


def run(argv: list[str], cwd: Path) -> Run:
    """Run ``python ARGV`` in ``cwd``, measured by LAUNCHER."""
    handle, report = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        result = subprocess.run(
            [sys.executable, "-c", LAUNCHER, report, *argv], cwd=cwd,
            stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
            env=dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb"))
        assert result.returncode == 0, result
        usage = json.loads(Path(report).read_text())
    finally:
        os.unlink(report)
    return Run(usage["code"], result.stdout.decode(), result.stderr.decode(),
               usage["rss_kb"] / 1024, usage["cpu_s"], usage["wall_s"])


def check_cost(name: str, result: Run) -> None:
    print(f"{name}: peak RSS {result.rss_mb:.1f} MB, CPU {result.cpu_s:.2f}"
          f" s, wall {result.wall_s:.2f} s")
    assert result.rss_mb < MAX_RSS_MB, result
    assert result.cpu_s < MAX_CPU_S, result


class Listener:
    """A localhost TCP listener that accepts (and closes) connections in
    a thread and remembers them."""

    def __init__(self):
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.seen: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, address = self.server.accept()
                connection.close()
                self.seen.append(address)

    def close(self):
        if self.stop.is_set():
            return
        self.stop.set()
        self.thread.join()
        # Connections the thread had no time for wait in the backlog.
        self.server.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                connection, address = self.server.accept()
                connection.close()
                self.seen.append(address)
        self.server.close()


class Canary:
    """A file with a secret line; inotify counts every open of it."""

    IN_OPEN = 0x20

    def __init__(self, path: Path):
        self.path = path
        self.secret = f"canary-{os.getpid()}-{time.time_ns()}"
        path.write_text(self.secret + "\n")
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        watch = libc.inotify_add_watch(self.fd, bytes(path), self.IN_OPEN)
        assert watch >= 0, os.strerror(ctypes.get_errno())

    def opens(self) -> int:
        """How many times the canary was opened since the last call."""
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(self.fd, 4096)
                while data:
                    _wd, mask, _cookie, size = struct.unpack_from("iIII",
                                                                  data)
                    count += bool(mask & self.IN_OPEN)
                    data = data[16 + size:]
        return count

    def close(self):
        os.close(self.fd)


@pytest.fixture
def target(tmp_path):
    """Where a hostile file may point, and a check that nobody went."""
    listener = Listener()
    canary = Canary(tmp_path / "canary.txt")

    def untouched(result: Run) -> None:
        listener.close()
        assert listener.seen == []
        assert canary.opens() == 0
        assert canary.secret not in result.stdout + result.stderr

    try:
        yield Target(listener.port, canary.path), untouched
    finally:
        listener.close()
        canary.close()


def write_case(name: str, folder: Path, target: Target) -> Path:
    """``folder/name/scenario.xml`` made hostile, its board beside it."""
    case = folder / name
    case.mkdir()
    shutil.copy(WHL / "whl-ipc-i5.xml", case / "whl-ipc-i5.xml")
    path = case / "scenario.xml"
    build = CASES[name][0]
    if build is not None:
        path.write_bytes(build(target))
        return path
    # 50 MiB: the scenario with a giant comment, written in pieces.
    data = real()
    body, tail = data.rsplit(b"</acrn-config>", 1)
    filler = 50 * 1024 * 1024 - len(data) - len(b"<!--" b"-->")
    with open(path, "wb") as stream:
        stream.write(body + b"<!--")
        piece = b"x" * (1024 * 1024)
        while filler > 0:
            stream.write(piece[:filler])
            filler -= len(piece)
        stream.write(b"-->" + b"</acrn-config>" + tail)
    return path


@pytest.mark.parametrize("name", CASES)
def test_lint_process_refuses_or_handles(name, tmp_path, target):
    where, untouched = target
    path = write_case(name, tmp_path, where)
    _build, code, stdout, stderr, _edit = CASES[name]
    if code != 2:
        assert not lint([str(path)], None, LintConfig()).errors
    result = run(["-m", "acrn_ivshmem", "lint", str(path)], path.parent)
    expected = "" if stderr is None else (
        f"acrn-shm: error: {stderr.format(path=path)}\n")
    assert (result.code, result.stdout, result.stderr) == (
        code, stdout, expected)
    check_cost(name, result)
    untouched(result)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][4]])
def test_edit_process_refuses_and_keeps_every_byte(name, tmp_path, target):
    where, untouched = target
    path = write_case(name, tmp_path, where)
    _build, _code, _stdout, stderr, edit = CASES[name]
    message = (stderr if edit == "same" else edit).format(path=path)
    before = path.read_bytes()
    inode = path.stat().st_ino
    result = run(["-m", "acrn_ivshmem", EDIT[0], str(path), *EDIT[1:]],
                 path.parent)
    assert (result.code, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {message}\n")
    check_cost(f"{name} (add-region)", result)
    assert path.read_bytes() == before
    assert path.stat().st_ino == inode
    assert sorted(os.listdir(path.parent)) == [
        "scenario.xml", "whl-ipc-i5.xml"]
    untouched(result)


# Runs acrn-shm (argv[3:]) with an audit hook; writes to argv[2] the
# opens of the canary (argv[1]) and of the scenario (the last argument),
# and every network or new-process event.
AUDITED = r"""
import json, os, sys

canary, report, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
seen = {"canary": [], "scenario": 0, "network": [], "processes": []}
NETWORK = ("socket.", "urllib.", "http.client.", "ftplib.", "ssl.")
PROCESSES = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
             "os.spawn", "os.fork", "os.forkpty")

def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        name = os.path.abspath(os.fsdecode(args[0]))
        if name == canary:
            seen["canary"].append(event)
        elif name == os.path.abspath(argv[-1]):
            seen["scenario"] += 1
    elif event.startswith(NETWORK):
        seen["network"].append(event)
    elif event in PROCESSES:
        seen["processes"].append(event)

sys.addaudithook(hook)
from acrn_ivshmem import cli
sys.argv = ["acrn-shm", *argv]
try:
    cli.main()
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
with open(report, "w") as stream:
    json.dump(seen, stream)
sys.exit(code)
"""


@pytest.mark.parametrize("name", ["file_entity", "http_entity",
                                  "parameter_entity", "external_dtd"])
def test_audit_hook_sees_no_canary_socket_or_process(name, tmp_path, target):
    where, untouched = target
    path = write_case(name, tmp_path, where)
    report = tmp_path / "audit.json"
    result = run(["-c", AUDITED, str(where.canary), str(report), "lint",
                  str(path)], path.parent)
    assert (result.code, result.stdout, result.stderr) == (
        2, "", f"acrn-shm: error: {path}:1:1: {DOCTYPE}\n")
    check_cost(f"{name} (audited)", result)
    seen = json.loads(report.read_text())
    # The hook was live: it saw the scenario being read.
    assert seen["scenario"] >= 1
    assert {key: seen[key] for key in ("canary", "network", "processes")} \
        == {"canary": [], "network": [], "processes": []}
    untouched(result)


def test_the_listener_and_the_canary_notice_a_visit(tmp_path):
    # The checks above would pass if these saw nothing at all.
    listener = Listener()
    canary = Canary(tmp_path / "canary.txt")
    try:
        result = run(["-c", "import socket, sys; "
                      "print(open(sys.argv[1]).read().strip()); "
                      "socket.create_connection(('127.0.0.1', "
                      "int(sys.argv[2]))).close()",
                      str(canary.path), str(listener.port)], tmp_path)
        listener.close()
        assert (result.code, result.stdout) == (0, canary.secret + "\n")
        assert len(listener.seen) == 1
        assert canary.opens() == 1
    finally:
        listener.close()
        canary.close()
