"""Two QEMU guests on one region: bytes and a doorbell cross.

The command ``acrn-shm qemu-try``. A region of a scenario (or a bare
``--name``/``--size`` region) is given to two small guests, each with
the QEMU flags :mod:`acrn_ivshmem.plan.qemu` plans for its VM: by default an
``ivshmem-doorbell`` device at the VM's VBDF, served by acrn-shm's own
ivshmem server; with ``plain`` the ``ivshmem-plain`` device on a
``memory-backend-file`` that ``qemu-args`` prints. Each guest writes a
message into BAR2, reads the other's, and (doorbell) rings the other
and waits for its ring; then the host reads both messages in the
region's memory. :func:`render` tells what each guest wrote and read.

The guests are what :mod:`acrn_ivshmem.host.qemu_lab` finds (QEMU, a
kernel, a static busybox, KVM or TCG) with :data:`GUEST_INIT` as
``/init``, and no driver: busybox's ``devmem`` reaches the BARs, and a
doorbell is seen in the MSI-X Pending Bit Array. QEMU is never trusted
to exit: every guest is killed at the deadline, and only the lines the
guests print on their serial console count.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import UsageError, escaped, located, quoted
from ..model.resolved import load_scenario
from ..model.syntax import Scenario
from ..plan.qemu import (
    Doorbell, QemuPlan, ShmDevice, plan_for_vm, region_named, standalone_plan,
)
from ..runtime.ivshmem_server import IvshmemServer
from ..shm import MAX_SOCKET_PATH
from .prep import PrepStatus, host_prep
from .qemu_lab import Tools, guest_initramfs, qemu_command

__all__ = [
    "DEFAULT_TIMEOUT", "GUEST_INIT", "GuestOutcome", "MESSAGE_SIZE",
    "Trial", "TrialEvent", "TrialGuest", "TrialResult", "describe",
    "make_work_dir", "message_offset", "message_words", "plan_trial",
    "remove_work", "render", "run_trial",
]

#: Characters of QEMU's last line shown when it exits (its messages
#: carry a whole -device option, longer than a quoted value may be).
QEMU_LINE_SHOWN = 400
#: Bytes of each guest's message slot in BAR2 (16 devmem words).
MESSAGE_SIZE = 64
DEFAULT_TIMEOUT = 120.0
_LABELS = ("A", "B")

#: /init of the guests: busybox only, no driver. The kernel command line
#: sets ivrole (a or b), ivnonce (0x%08X), ivmsg (16 comma-separated
#: 0x%08X words: this guest's message) and ivbell (1: ring the peer
#: through an ivshmem-doorbell device; 0: ivshmem-plain, no doorbell).
#: In BAR2, guest N keeps a ready word at 4*N and its message at
#: 0x40 + 0x40*N. Each step prints an "IVT ..." line on the console; the
#: last is "IVT done rc=N".
GUEST_INIT = r"""#!/bin/busybox sh
# shellcheck shell=dash
# Word splitting of devmem output and of ivmsg, a built printf format
# and kernel-set iv* variables are all intended here.
# shellcheck disable=SC2046,SC2059,SC2086,SC2154
/bin/busybox mkdir -p /proc /sys /dev /bin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "IVT $*"; }
finish() { say "done rc=$1"; poweroff -f; }
fail() { say "fail $*"; finish 1; }
say boot

dev=
for d in /sys/bus/pci/devices/*; do
    if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]
    then
        [ -z "$dev" ] || fail "more than one ivshmem device"
        dev=$d
    fi
done
[ -n "$dev" ] || fail "no ivshmem device (PCI 1af4:1110)"
say "device ${dev##*/}"

# Physical start of BAR $1 (line $1 + 1 of the resource file).
bar() { set -- $(sed -n "$(($1 + 1))p" "$dev/resource"); echo "$1"; }
rd() { devmem "$(printf 0x%x "$1")" 32; }
wr() { devmem "$(printf 0x%x "$1")" 32 "$2"; }
byte() { od -An -tu1 -j "$1" -N1 "$dev/config" | tr -d ' '; }
# Wait (up to ivwait seconds) until the word at $1 reads $2.
wait_word() {
    tries=0
    while [ "$(rd "$1")" != "$2" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt $((ivwait * 50)) ] || return 1
        usleep 20000
    done
}

bar0=$(bar 0)
bar2=$(bar 2)
[ "$bar2" != 0x0000000000000000 ] || fail "BAR2 is not mapped"
if [ "$ivbell" = 1 ]; then
    id=$(($(rd $((bar0 + 8)))))
else
    case "$ivrole" in a) id=0 ;; *) id=1 ;; esac
fi
peer=$((1 - id))
say "id $id"

at=$((bar2 + 64 + 64 * id))
for word in $(echo "$ivmsg" | tr , ' '); do
    wr "$at" "$word"
    at=$((at + 4))
done
say "wrote $((64 + 64 * id))"

if [ "$ivbell" = 1 ]; then
    # Walk the capability list to MSI-X (id 0x11).
    cap=$(byte 52)
    while [ "$cap" -ne 0 ] && [ "$(byte "$cap")" -ne 17 ]; do
        cap=$(byte $((cap + 1)))
    done
    [ "$cap" -ne 0 ] || fail "no MSI-X capability"
    set -- $(od -An -tu4 -j $((cap + 8)) -N4 "$dev/config")
    pba=$(($(bar $(($1 & 7))) + ($1 & ~7)))
    # MSI-X Enable + Function Mask: with no driver a ring only sets the
    # Pending Bit, which is polled. A ring to a peer without MSI-X is
    # dropped, so this comes before the ready word.
    control=$(($(byte $((cap + 3))) | 0xc0))
    printf "\\$(printf %03o $control)" \
        | dd of="$dev/config" bs=1 seek=$((cap + 3)) count=1 conv=notrunc \
            2>/dev/null
    [ "$(byte $((cap + 3)))" -eq "$control" ] || fail "MSI-X not enabled"
fi

wr $((bar2 + 4 * id)) "$(printf 0x%08X $((ivnonce + id)))"
say "ready"
wait_word $((bar2 + 4 * peer)) "$(printf 0x%08X $((ivnonce + peer)))" \
    || fail "the other guest never wrote its message"
words=
at=$((bar2 + 64 + 64 * peer))
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do
    words="$words $(rd "$at")"
    at=$((at + 4))
done
say "read $((64 + 64 * peer))$words"

if [ "$ivbell" = 1 ]; then
    wr $((bar0 + 12)) $((peer << 16))
    say "rang $peer"
    tries=0
    until [ $(($(rd "$pba") & 1)) -eq 1 ]; do
        tries=$((tries + 1))
        [ "$tries" -lt $((ivwait * 50)) ] || fail "no doorbell from peer $peer"
        usleep 20000
    done
    say "doorbell $peer"
fi
finish 0
"""


# --------------------------------------------------------------------------
# The trial


@dataclass(frozen=True)
class TrialGuest:
    """One of the two guests: ``label`` A or B, the scenario VM it
    stands for (None for a bare region), its one-device plan and the
    message it writes."""

    label: str
    vm: str | None
    plan: QemuPlan
    message: bytes

    @property
    def device(self) -> ShmDevice:
        """The region's device in this guest."""
        return self.plan.devices[0]

    @property
    def name(self) -> str:
        """How the report names the guest."""
        return self.vm if self.vm is not None else f"guest {self.label}"


@dataclass(frozen=True)
class Trial:
    """Two guests on region ``region`` of ``size_mb`` MB, both with an
    ``ivshmem-doorbell`` device (``doorbell``) or ``ivshmem-plain``;
    ``work`` holds the region's memory, the console logs and the
    image; ``socket`` is the server's (doorbell only)."""

    region: str
    size_mb: int
    doorbell: bool
    guests: tuple[TrialGuest, TrialGuest]
    work: str
    socket: str | None
    warnings: tuple[str, ...] = ()

    @property
    def memory_path(self) -> str:
        """The file that holds the region's memory."""
        return os.path.join(self.work, self.region)


def message_offset(peer_id: int) -> int:
    """Where guest ``peer_id`` writes its message in BAR2."""
    return MESSAGE_SIZE + MESSAGE_SIZE * peer_id


def _message(name: str) -> bytes:
    """``hello from NAME`` in UTF-8, cut at a character to leave room
    for the NUL that ends it."""
    text = f"hello from {name}"
    while len(text.encode()) >= MESSAGE_SIZE:
        text = text[:-1]
    return text.encode()


def make_work_dir(keep: str | None) -> str:
    """``keep`` (created; it must be new or empty), or a new temporary
    folder."""
    if keep is None:
        return tempfile.mkdtemp(prefix="acrn-shm-try-")
    try:
        os.makedirs(keep, exist_ok=True)
        if os.listdir(keep):
            raise UsageError(f"--keep {quoted(keep)} is not empty; give a "
                             "new or empty folder")
    except OSError as exc:
        raise UsageError(f"--keep {quoted(keep)}: {exc.strerror}") from None
    return keep


def plan_trial(work: str, *, scenario: str | None = None,
               region: str | None = None, vms: tuple[str, ...] = (),
               name: str | None = None, size_mb: int | None = None,
               plain: bool = False) -> Trial:
    """The two guests on a region of ``scenario`` (``region``, needed
    when it has several; ``vms``, two members, default its first two)
    or on a bare region ``name`` of ``size_mb`` MB. Their memory and
    files go in ``work``. Raises :class:`UsageError`."""
    socket = None if plain else os.path.join(work, "ivshmem.sock")
    if socket is not None and len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise UsageError(f"{quoted(socket)} is too long for a Unix socket "
                         f"({MAX_SOCKET_PATH} bytes at most); keep the "
                         "files in a shorter folder")
    doorbell = None if socket is None else Doorbell(socket)
    if scenario is None:
        if name is None or size_mb is None:
            raise UsageError("give --scenario S.xml, or --name N --size MB")
        plan = standalone_plan(name, size_mb, work, doorbell=doorbell)
        guests = tuple(TrialGuest(label, None, plan,
                                  _message(f"guest {label}"))
                       for label in _LABELS)
        return Trial(name, size_mb, not plain, guests, work, socket,
                     plan.warnings)
    if name is not None or size_mb is not None:
        raise UsageError("--name and --size are for a bare region; a "
                         "scenario gives them")
    model = load_scenario(
        scenario, refusal="{path}: is not a scenario XML").model
    chosen = _choose_region(model, region)
    members = _choose_vms(model, chosen, vms)
    guests, warnings = [], []
    for label, vm in zip(_LABELS, members):
        plan = plan_for_vm(model, vm, work, region=chosen,
                           doorbell=doorbell)
        guests.append(TrialGuest(label, vm, plan, _message(vm)))
        warnings += [w for w in plan.warnings if w not in warnings]
    size = guests[0].device.size_mb or 0
    return Trial(chosen, size, not plain, tuple(guests), work, socket,
                 tuple(warnings))


def _choose_region(scenario: Scenario, region: str | None) -> str:
    if region is not None:
        return region
    names = [item.name.text for item in scenario.regions
             if item.name is not None]
    if len(names) == 1:
        return names[0]
    listed = ", ".join(quoted(name) for name in names)
    message = (f"has {len(names)} regions ({listed}); choose one with "
               "--region NAME" if names else "has no IVSHMEM region")
    raise UsageError(located(scenario.path, None, None, message))


def _choose_vms(scenario: Scenario, region: str,
                vms: tuple[str, ...]) -> tuple[str, str]:
    if vms:
        if len(vms) != 2 or vms[0] == vms[1]:
            raise UsageError(f"--vms takes two different VMs, not "
                             f"{quoted(','.join(vms))}")
        return vms[0], vms[1]
    found = region_named(scenario, region)
    members = []
    for member in found.members:
        vm = scenario.vm_for(member.vm.text) if member.vm else None
        ref = (vm.name or vm.id_text) if vm else None
        if ref and ref not in members:
            members.append(ref)
    if len(members) < 2:
        raise UsageError(located(
            scenario.path, found.loc.line, found.loc.column,
            f"region {quoted(region)} has {len(members)} VM(s); two are "
            "needed to share it"))
    return members[0], members[1]


# --------------------------------------------------------------------------
# Running it


@dataclass(frozen=True)
class TrialEvent:
    """Progress: each guest's stage, seconds since the start."""

    stages: tuple[tuple[str, str], ...]
    elapsed: float


@dataclass(frozen=True)
class GuestOutcome:
    """What one guest did, from its console lines (``IVT ...``).

    ``read`` is the message it read (None if it read none); ``rang``
    and ``heard`` the peers it rang and got a ring from; ``failure``
    the guest's own reason, or the host's (a timeout, QEMU's error).
    """

    guest: TrialGuest
    lines: tuple[str, ...]
    address: str | None = None
    peer_id: int | None = None
    wrote_at: int | None = None
    read_at: int | None = None
    read: bytes | None = None
    rang: int | None = None
    heard: int | None = None
    done: int | None = None
    failure: str | None = None
    seconds: float = 0.0
    console: str = ""


@dataclass(frozen=True)
class TrialResult:
    """Both guests' outcomes, what the host read, and what did not
    cross although both guests finished (``problems``)."""

    trial: Trial
    tools: Tools
    outcomes: tuple[GuestOutcome, GuestOutcome]
    memory: tuple[bytes, bytes]
    problems: tuple[str, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """True when both messages and (doorbell) both rings crossed."""
        return not self.problems and all(
            outcome.failure is None for outcome in self.outcomes)


_STAGES = {"boot": "looking for the device", "device": "writing",
           "id": "writing", "wrote": "getting ready", "ready":
           "waiting for the other guest", "read": "ringing",
           "rang": "waiting for the doorbell", "doorbell": "finishing",
           "fail": "failed", "done": "done"}


@dataclass
class _Running:
    guest: TrialGuest
    process: subprocess.Popen
    console: str
    output: str
    started: float
    lines: list[str] = field(default_factory=list)
    ended: float | None = None
    stopped: str | None = None  # why the host killed it
    _read: int = 0  # bytes of the console already split into lines

    def poll(self, now: float) -> None:
        """Take the console's new whole lines; note when QEMU ended."""
        exited = self.process.poll() is not None
        try:
            with open(self.console, "rb") as file:
                file.seek(self._read)
                new = file.read()
        except OSError:
            new = b""
        # A line still being written is taken once QEMU is gone.
        whole = new if exited else new[:new.rfind(b"\n") + 1]
        self._read += len(whole)
        self.lines += [line.strip()[4:] for line in
                       whole.decode("utf-8", "replace").splitlines()
                       if line.startswith("IVT ")]
        if self.ended is None and exited:
            self.ended = now

    def stage(self) -> str:
        if self.ended is not None and not self.lines:
            return "QEMU exited"
        if not self.lines:
            return "booting the kernel"
        return _STAGES.get(self.lines[-1].split()[0], "running")

    @property
    def failed(self) -> bool:
        """Ended without its last line saying it succeeded."""
        return self.ended is not None and (
            not self.lines or self.lines[-1] != "done rc=0")

    def kill(self, now: float, why: str) -> None:
        if self.process.poll() is None:
            self.stopped = why
            self.ended = now
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()


def run_trial(trial: Trial, tools: Tools,
              on_event: Callable[[TrialEvent], None] | None = None,
              timeout: float = DEFAULT_TIMEOUT,
              clock: Callable[[], float] = time.monotonic) -> TrialResult:
    """Boot both guests, follow their consoles, judge what crossed.

    Doorbell: the server starts first, and B only once A is connected,
    so A is peer 0 and B peer 1. Plain: the backing file is made first
    (as ``host-prep`` does). A guest that fails ends the trial, and
    every guest still running then, or at ``timeout`` seconds, is
    killed. ``on_event`` gets a :class:`TrialEvent` when a stage
    changes and once a second. Raises :class:`UsageError` when the
    memory cannot be had.
    """
    started = clock()
    deadline = started + timeout
    initramfs = os.path.join(trial.work, "initramfs.cpio")
    with open(initramfs, "wb") as file:
        file.write(guest_initramfs(tools.busybox, GUEST_INIT.encode()))
    nonce = secrets.randbits(30) | 1
    server = thread = None
    running: list[_Running] = []
    try:
        if trial.doorbell:
            server = IvshmemServer(trial.socket, trial.size_mb << 20, 1,
                                   trial.region, shm_dir=trial.work)
            server.start()
            thread = threading.Thread(target=server.serve_forever,
                                      name="ivshmem-server", daemon=True)
            thread.start()
        else:
            _prepare_memory(trial)
        for guest in trial.guests:
            running.append(_start(trial, tools, guest, initramfs, nonce,
                                  max(1, int(deadline - clock())), clock))
            if server is not None and guest is trial.guests[0]:
                _wait_for_peer(server, running[0], deadline, clock)
            if running[0].failed:
                break
        _follow(running, deadline, on_event, started, clock)
    finally:
        failed = next((item.guest.label for item in running if item.failed),
                      None)
        why = (f"stopped when guest {failed} failed" if failed else
               f"still running after {timeout:.0f} s, killed")
        for guest in running:
            guest.kill(clock(), why)
        if server is not None:
            server.shutdown()
            thread.join(10)
            server.close()
    memory = _read_memory(trial)
    now = clock()
    for item in running:
        item.poll(now)  # the last lines, written as QEMU ended
    outcomes = tuple(_outcome(item, now) for item in running)
    if len(outcomes) < 2:
        outcomes += (GuestOutcome(trial.guests[1], (), failure=(
            "not started: guest A failed first")),)
    problems = _judge(trial, outcomes, memory)
    return TrialResult(trial, tools, outcomes, memory, tuple(problems),
                       clock() - started)


def _prepare_memory(trial: Trial) -> None:
    report = host_prep(trial.guests[0].plan, mode=0o600)
    for item in report.items:
        if item.status not in (PrepStatus.OK, PrepStatus.CREATED,
                               PrepStatus.GROWN, PrepStatus.WARNING):
            raise UsageError(f"{item.subject}: {item.message}")


def _start(trial: Trial, tools: Tools, guest: TrialGuest, initramfs: str,
           nonce: int, wait: int, clock) -> _Running:
    console = os.path.join(trial.work, f"{guest.label}.log")
    output = os.path.join(trial.work, f"{guest.label}.qemu.txt")
    params = {"ivrole": guest.label.lower(), "ivnonce": f"0x{nonce:08X}",
              "ivmsg": ",".join(message_words(guest.message)),
              "ivbell": "1" if trial.doorbell else "0",
              "ivwait": str(wait)}
    argv = qemu_command(tools, initramfs, console, params, guest.plan.args())
    with open(os.path.join(trial.work, f"{guest.label}.cmdline"), "w",
              encoding="utf-8") as file:
        file.write(shlex.join(argv) + "\n")
    with open(output, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return _Running(guest, process, console, output, clock())


def message_words(message: bytes) -> list[str]:
    """``message`` as the 16 ``0x%08X`` words /init writes with
    devmem (little-endian, NUL-padded)."""
    padded = message.ljust(MESSAGE_SIZE, b"\0")
    return [f"0x{value:08X}" for value in
            struct.unpack(f"<{MESSAGE_SIZE // 4}I", padded)]


def _wait_for_peer(server: IvshmemServer, first: _Running, deadline: float,
                   clock) -> None:
    # Peer ids follow connection order: B may connect once A has.
    while not server.peer_ids():
        first.poll(clock())
        if first.ended is not None or clock() >= deadline:
            return
        time.sleep(0.01)


def _follow(running: list[_Running], deadline: float, on_event,
            started: float, clock) -> None:
    shown = None
    while True:
        now = clock()
        for guest in running:
            guest.poll(now)
        stages = tuple((guest.guest.label, guest.stage())
                       for guest in running)
        # A new stage, or the clock's next whole second.
        if on_event is not None and (stages, int(now - started)) != shown:
            on_event(TrialEvent(stages, now - started))
            shown = stages, int(now - started)
        if now >= deadline or any(guest.failed for guest in running) or all(
                guest.ended is not None for guest in running):
            return
        time.sleep(0.05)


def _read_memory(trial: Trial) -> tuple[bytes, bytes]:
    try:
        with open(trial.memory_path, "rb") as file:
            data = file.read(message_offset(2))
    except OSError:
        return b"", b""
    return (data[message_offset(0):message_offset(1)],
            data[message_offset(1):message_offset(2)])


def _outcome(item: _Running, now: float) -> GuestOutcome:
    values: dict = {}
    for line in item.lines:
        word, _, rest = line.partition(" ")
        fields = rest.split()
        try:
            if word == "device" and fields:
                values["address"] = fields[0]
            elif word == "id":
                values["peer_id"] = int(fields[0])
            elif word == "wrote":
                values["wrote_at"] = int(fields[0])
            elif word == "read":
                values["read_at"] = int(fields[0])
                values["read"] = b"".join(struct.pack("<I", int(w, 16))
                                          for w in fields[1:])
            elif word == "rang":
                values["rang"] = int(fields[0])
            elif word == "doorbell":
                values["heard"] = int(fields[0])
            elif word == "fail":
                values["failure"] = rest
            elif word == "done":
                values["done"] = int(rest.partition("=")[2])
        except (IndexError, ValueError):
            values["failure"] = f"garbled console line {quoted(line)}"
    if "done" not in values and "failure" not in values:
        values["failure"] = _host_failure(item)
    if values.get("done", 0) != 0 and "failure" not in values:
        values["failure"] = f"/init ended with status {values['done']}"
    end = item.ended if item.ended is not None else now
    return GuestOutcome(item.guest, tuple(item.lines), seconds=max(
        0.0, end - item.started), console=item.console, **values)


def _host_failure(item: _Running) -> str:
    if item.stopped is not None:
        return f"{item.stopped} ({_last(item)})"
    status = item.process.returncode
    try:
        with open(item.output, encoding="utf-8", errors="replace") as file:
            said = [line.strip() for line in file if line.strip()]
    except OSError:
        said = []
    if said:
        # QEMU's own words, whole: they say what it refused. Escaped, and
        # cut only where a line is far longer than QEMU ever writes.
        return (f"QEMU exited with status {status}: "
                f"'{escaped(said[-1][:QEMU_LINE_SHOWN])}'")
    return f"QEMU exited with status {status} ({_last(item)})"


def _last(item: _Running) -> str:
    if not item.lines:
        return "no line from /init: the kernel did not get that far"
    return f"last step: {quoted(item.lines[-1])}"


def _judge(trial: Trial, outcomes: tuple[GuestOutcome, ...],
           memory: tuple[bytes, bytes]) -> list[str]:
    """What did not cross, beyond the guests' own failures (which
    :func:`render` shows with each guest)."""
    if any(outcome.failure is not None for outcome in outcomes):
        return []
    ids = sorted(outcome.peer_id for outcome in outcomes
                 if outcome.peer_id is not None)
    if ids != [0, 1]:
        # Another peer of the server took an id: the offsets are off.
        return [f"the guests are peers {ids}, not 0 and 1"]
    problems = []
    for outcome, other in zip(outcomes, outcomes[::-1]):
        name = outcome.guest.name
        wanted = outcome.guest.device.addr
        if wanted is not None and outcome.address != f"0000:00:{wanted}":
            problems.append(f"{name}: the device is at {outcome.address}, "
                            f"not 00:{wanted}")
        if _text(outcome.read) != other.guest.message:
            problems.append(f"{name} read {_shown(_text(outcome.read))}, not "
                            f"{_shown(other.guest.message)}")
        if trial.doorbell and other.peer_id is not None and (
                outcome.rang, outcome.heard) != (other.peer_id,
                                                 other.peer_id):
            problems.append(f"{name}: no doorbell crossed with peer "
                            f"{other.peer_id}")
    if not problems:
        for outcome in outcomes:
            seen = _text(memory[outcome.peer_id])
            if seen != outcome.guest.message:
                problems.append(
                    f"the host reads {_shown(seen)} where "
                    f"{outcome.guest.name} wrote "
                    f"{_shown(outcome.guest.message)}")
    return problems


def _text(data: bytes | None) -> bytes | None:
    return None if data is None else data.split(b"\0", 1)[0]


def _shown(data: bytes | None) -> str:
    if data is None:
        return "nothing"
    return quoted(data.decode("utf-8", "replace"))


# --------------------------------------------------------------------------
# The report


def describe(trial: Trial, tools: Tools) -> str:
    """The line printed before the guests boot."""
    model = "ivshmem-doorbell" if trial.doorbell else "ivshmem-plain"
    places = " and ".join(_guest_name(guest) + (
        f" at 00:{guest.device.addr}" if guest.device.addr else "")
        for guest in trial.guests)
    return (f"trying region {quoted(trial.region)} ({trial.size_mb} MB) "
            f"as {model} between {places}; {tools.accel.name.upper()}: "
            f"{tools.accel.reason}\n")


def _guest_name(guest: TrialGuest) -> str:
    if guest.vm is None:
        return f"guest {guest.label}"
    return f"guest {guest.label} (VM {quoted(guest.vm)})"


def render(result: TrialResult, kept: bool = False) -> str:
    """What each guest wrote, read, rang and heard, and the verdict;
    ``kept``: name the folder of the files on a pass too."""
    trial = result.trial
    lines = []
    for outcome in result.outcomes:
        guest = outcome.guest
        where = f" at {outcome.address}" if outcome.address else ""
        peer = ("" if outcome.peer_id is None or not trial.doorbell
                else f", peer {outcome.peer_id}")
        lines.append(f"{_guest_name(guest)}{where}{peer}, "
                     f"{outcome.seconds:.1f} s:")
        if outcome.wrote_at is not None:
            lines.append(f"  wrote {_shown(guest.message)} at "
                         f"{outcome.wrote_at:#x}")
        if outcome.read is not None:
            lines.append(f"  read  {_shown(_text(outcome.read))} at "
                         f"{outcome.read_at:#x}")
        if outcome.rang is not None:
            lines.append(f"  rang peer {outcome.rang}" + (
                "" if outcome.heard is None
                else f" and got a ring from peer {outcome.heard}"))
        if outcome.failure is not None:
            lines.append(f"  failed: {outcome.failure}")
            lines.append(f"  its console: {outcome.console}")
    lines += result.problems
    if result.passed:
        lines.append("the host reads both messages in the region's memory"
                     + (f" ({trial.memory_path})" if kept else ""))
        lines.append(f"passed in {result.seconds:.1f} s (QEMU "
                     f"{result.tools.qemu_version or '?'}, kernel "
                     f"{result.tools.kernel})")
    else:
        lines.append(f"failed in {result.seconds:.1f} s; the files are "
                     f"in {trial.work}")
    return "".join(f"{line}\n" for line in lines)


def remove_work(trial: Trial) -> None:
    """Remove the trial's temporary folder (after a pass)."""
    shutil.rmtree(trial.work, ignore_errors=True)


