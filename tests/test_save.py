"""Saving edits: advisory lock, atomic replace, crashes and races.

The writer is delayed or interrupted at a chosen step of the save
through ``xmlio.step_hook`` (set here, or in a child process by the
script it runs), never through the environment.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from acrn_ivshmem.errors import ConcurrentEditError, InputError
from acrn_ivshmem.io import xmlio
from acrn_ivshmem.io.xmlio import locked, save_atomic

OLD = b'<?xml version="1.0"?>\n<acrn-config>\n</acrn-config>\n'
NEW = b'<?xml version="1.0"?>\n<acrn-config>\n  <hv/>\n</acrn-config>\n'
# save_atomic's temp file names, which locked() cleans up.
TEMP_NAME = re.compile(r"\.scenario\.xml\.[0-9a-f]{8}\.tmp")

# The step of save_atomic after the fsync of the temporary file, just
# before the last check and the rename (see its docstring).
SYNCED = 206

# Lock, read, append one line inside the root element, save (sleeping
# 20 ms before the rename); all in a fresh process. Waits for stdin to
# close so that all start together.
APPEND_SCRIPT = """
import sys, time
from acrn_ivshmem.io import xmlio
from acrn_ivshmem.errors import ConcurrentEditError
from acrn_ivshmem.io.xmlio import locked, read_bytes, save_atomic
path, tag, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
xmlio.step_hook = lambda step: step == 206 and time.sleep(0.02)
sys.stdin.read()
try:
    with locked(path, timeout):
        old = read_bytes(path)
        line = f"  <writer>{tag}</writer>\\n</acrn-config>".encode()
        save_atomic(path, old.replace(b"</acrn-config>", line), old)
except ConcurrentEditError as exc:
    print(exc)
    sys.exit(3)
print("saved")
"""

# Says "ready" once imported, then saves the bytes of argv[2] to argv[1],
# sleeping argv[3] seconds before the rename.
WRITER_SCRIPT = """
import sys, time
from acrn_ivshmem.io import xmlio
from acrn_ivshmem.io.xmlio import locked, read_bytes, save_atomic
path, source, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
xmlio.step_hook = lambda step: step == 206 and time.sleep(delay)
with open(source, "rb") as stream:
    new = stream.read()
print("ready", flush=True)
with locked(path):
    save_atomic(path, new, read_bytes(path))
"""


USER = pwd.getpwuid(os.geteuid()).pw_name


def lock_message(path, pid: int) -> str:
    return (f"{path}: another acrn-shm edit holds the lock (process {pid} "
            f"of user {USER}); try again")


def changed_message(path) -> str:
    return f"{path}: changed on disk since it was read; nothing written"


@pytest.fixture
def scenario(tmp_path) -> Path:
    """``scenario.xml`` holding OLD, alone in its own folder."""
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "scenario.xml"
    path.write_bytes(OLD)
    return path


def others(path: Path) -> set[str]:
    """Names in ``path``'s folder other than the file itself."""
    return set(os.listdir(path.parent)) - {path.name}


def big_document(filler: str, lines: int = 4000) -> bytes:
    """A ~256 KiB scenario whose every line differs between fillers."""
    body = "".join(f"  <!-- {filler * 48} {n:05} -->\n" for n in range(lines))
    return (f'<?xml version="1.0"?>\n<acrn-config>\n{body}</acrn-config>\n'
            .encode())


# --- save_atomic -------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o640, 0o644, 0o755, 0o400], ids=oct)
def test_save_replaces_content_and_keeps_mode(scenario, mode):
    scenario.chmod(mode)
    before = scenario.stat()
    save_atomic(str(scenario), NEW, OLD)
    after = scenario.stat()
    assert scenario.read_bytes() == NEW
    assert stat.S_IMODE(after.st_mode) == mode
    # A new inode: the file was renamed into place, not rewritten.
    assert after.st_ino != before.st_ino
    assert others(scenario) == set()


def test_save_without_expected_skips_the_check(scenario):
    scenario.write_bytes(b"<acrn-config>edited elsewhere</acrn-config>\n")
    save_atomic(str(scenario), NEW, None)
    assert scenario.read_bytes() == NEW
    assert others(scenario) == set()


def test_save_relative_path_in_current_folder(scenario, monkeypatch):
    monkeypatch.chdir(scenario.parent)
    with locked("scenario.xml"):
        save_atomic("scenario.xml", NEW, OLD)
    assert scenario.read_bytes() == NEW
    assert others(scenario) == set()


def test_save_through_symlink_replaces_the_target(scenario, tmp_path):
    link = tmp_path / "link.xml"
    link.symlink_to(scenario)
    with locked(str(link)):
        save_atomic(str(link), NEW, OLD)
        # One lock per real file, whatever name it was reached by.
        with pytest.raises(ConcurrentEditError), \
                locked(str(scenario), timeout=0):
            pytest.fail("locked the file under its other name")
    assert link.is_symlink()
    assert scenario.read_bytes() == NEW
    assert others(scenario) == set()
    assert sorted(os.listdir(tmp_path)) == ["configs", "link.xml"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_save_keeps_owner_when_root_edits_a_users_file(scenario):
    os.chown(scenario, 65534, 65534)
    save_atomic(str(scenario), NEW, OLD)
    info = scenario.stat()
    assert (info.st_uid, info.st_gid) == (65534, 65534)


@pytest.mark.parametrize("on_disk", [
    b"<acrn-config>\n  <vm/>\n</acrn-config>\n",  # edited
    OLD + b"\n",  # grown: what was read is only a prefix
    OLD[:-1],  # shrunk
], ids=["edited", "grown", "shrunk"])
def test_changed_on_disk_writes_nothing(scenario, on_disk):
    scenario.write_bytes(on_disk)
    inode = scenario.stat().st_ino
    with pytest.raises(ConcurrentEditError) as caught:
        save_atomic(str(scenario), NEW, OLD)
    assert str(caught.value) == changed_message(scenario)
    assert scenario.read_bytes() == on_disk
    assert scenario.stat().st_ino == inode
    assert others(scenario) == set()


def test_deleted_since_read_is_a_change_and_not_recreated(scenario):
    scenario.unlink()
    with pytest.raises(ConcurrentEditError) as caught:
        save_atomic(str(scenario), NEW, OLD)
    assert str(caught.value) == changed_message(scenario)
    assert os.listdir(scenario.parent) == []


def test_missing_file_is_not_created(scenario):
    scenario.unlink()
    with pytest.raises(InputError) as caught:
        save_atomic(str(scenario), NEW, None)
    assert str(caught.value) == f"{scenario}: no such file; nothing written"
    assert os.listdir(scenario.parent) == []


def test_failed_write_removes_temp_file(scenario, monkeypatch):
    def broken_fsync(_fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(xmlio.os, "fsync", broken_fsync)
    with pytest.raises(InputError) as caught:
        save_atomic(str(scenario), NEW, OLD)
    assert str(caught.value) == (
        f"{scenario}: cannot write: Input/output error; nothing written")
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


def test_interrupt_before_rename_removes_temp_file(scenario, monkeypatch):
    def interrupted(step):
        if step == SYNCED:
            assert len(others(scenario)) == 1  # the temp file exists here
            raise KeyboardInterrupt

    monkeypatch.setattr(xmlio, "step_hook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(str(scenario), NEW, OLD)
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


# --- locked ------------------------------------------------------------------

def can_flock(path: Path) -> bool:
    """Whether a new open file of ``path`` gets an exclusive flock now."""
    with open(path, "rb") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_lock_is_on_the_file_itself_and_leaves_nothing(scenario):
    before = scenario.stat()
    with locked(str(scenario)):
        assert others(scenario) == set()
        assert not can_flock(scenario)
    assert can_flock(scenario)
    after = scenario.stat()
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (
        before.st_ino, before.st_mode, before.st_mtime_ns)
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


def test_lock_moves_to_the_file_a_save_puts_in_place(scenario):
    inode = scenario.stat().st_ino
    with locked(str(scenario)):
        save_atomic(str(scenario), NEW, OLD)
        assert scenario.stat().st_ino != inode
        # A process that opens the new file now must still wait.
        assert not can_flock(scenario)
        with pytest.raises(ConcurrentEditError), \
                locked(str(scenario), timeout=0.05):
            pytest.fail("entered a lock that is held")
    assert can_flock(scenario)
    assert others(scenario) == set()


def test_a_waiter_on_the_replaced_file_locks_the_new_one(scenario):
    # The waiter opens the old file before the holder replaces it; when
    # it gets the old file's lock it must go on to lock the new file,
    # whose lock the holder keeps until its block ends.
    events = []
    holding = threading.Event()

    def wait_then_edit():
        holding.wait(5)
        with locked(str(scenario), timeout=5):
            events.append(("waiter in", scenario.read_bytes()))
            assert not can_flock(scenario)
            save_atomic(str(scenario), OLD, NEW)
            events.append(("waiter out", None))

    waiter = threading.Thread(target=wait_then_edit)
    waiter.start()
    try:
        with locked(str(scenario)):
            holding.set()
            time.sleep(0.2)  # the waiter polls the old file meanwhile
            save_atomic(str(scenario), NEW, OLD)
            time.sleep(0.2)  # and may see the new file: it must wait
            events.append(("holder out", None))
    finally:
        waiter.join()
    assert events == [("holder out", None), ("waiter in", NEW),
                      ("waiter out", None)]
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


def test_held_lock_times_out_naming_the_holder(scenario):
    with locked(str(scenario)):
        start = time.monotonic()
        with pytest.raises(ConcurrentEditError) as caught, \
                locked(str(scenario), timeout=0.3):
            pytest.fail("entered a lock that is held")
        waited = time.monotonic() - start
    assert str(caught.value) == lock_message(scenario, os.getpid())
    assert 0.3 <= waited < 2.0


def test_lock_waits_for_the_holder_to_finish(scenario):
    holding = threading.Event()

    def hold():
        with locked(str(scenario)):
            holding.set()
            time.sleep(0.4)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        start = time.monotonic()
        with locked(str(scenario), timeout=5):
            waited = time.monotonic() - start
    finally:
        holder.join()
    assert 0.2 < waited < 4


def test_lock_is_released_when_the_block_fails(scenario):
    with pytest.raises(RuntimeError), locked(str(scenario)):
        raise RuntimeError("edit failed")
    with locked(str(scenario), timeout=0):
        pass


def test_lock_never_touches_the_old_lock_file_name(scenario, tmp_path):
    # Earlier versions kept .NAME.acrn-shm.lock beside the file; a link
    # planted there now points nowhere that matters.
    victim = tmp_path / "victim"
    (scenario.parent / ".scenario.xml.acrn-shm.lock").symlink_to(victim)
    with locked(str(scenario)):
        save_atomic(str(scenario), NEW, OLD)
    assert not victim.exists()
    assert others(scenario) == {".scenario.xml.acrn-shm.lock"}


def test_lock_failure_is_a_clear_error(scenario, monkeypatch):
    def no_locks(_fd, _operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(xmlio.fcntl, "flock", no_locks)
    with pytest.raises(InputError) as caught, locked(str(scenario)):
        pytest.fail("entered without a lock")
    assert str(caught.value) == (
        f"{scenario}: cannot lock it for editing: No locks available")


# --- stale temp files -------------------------------------------------------

def test_lock_removes_only_stale_temp_files_of_its_file(scenario, tmp_path):
    folder = scenario.parent
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (folder / ".scenario.xml.0123abcd.tmp").write_bytes(b"<acrn-con")
    (folder / ".scenario.xml.89efcdab.tmp").write_bytes(b"")
    kept = {
        ".scenario.xml.0123ABCD.tmp": b"upper case",
        ".scenario.xml.0123abc.tmp": b"7 digits",
        ".scenario.xml.0123abcde.tmp": b"9 digits",
        ".scenario.xml.tmp": b"no digits",
        ".scenario.xml.0123abcd.tmp~": b"suffix",
        "scenario.xml.0123abcd.tmp": b"no dot",
        ".other.xml.0123abcd.tmp": b"another file's",
    }
    for name, data in kept.items():
        (folder / name).write_bytes(data)
    (folder / ".scenario.xml.deadbeef.tmp").mkdir()
    (folder / ".scenario.xml.cafef00d.tmp").symlink_to(victim)
    os.mkfifo(folder / ".scenario.xml.0badf00d.tmp")
    with locked(str(scenario)):
        assert others(scenario) == {
            *kept, ".scenario.xml.deadbeef.tmp",
            ".scenario.xml.cafef00d.tmp", ".scenario.xml.0badf00d.tmp"}
    for name, data in kept.items():
        assert (folder / name).read_bytes() == data
    assert victim.read_bytes() == b"keep"
    assert scenario.read_bytes() == OLD


def test_lock_keeps_a_live_writers_temp_file(scenario):
    temp = scenario.parent / ".scenario.xml.0123abcd.tmp"
    temp.write_bytes(b"being written")
    # flock locks belong to the open file: this one is a live writer's.
    with open(temp, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        with locked(str(scenario)):
            pass
        assert temp.read_bytes() == b"being written"
    with locked(str(scenario)):
        pass
    assert others(scenario) == set()


def test_save_holds_its_temp_file_against_cleanups(scenario, monkeypatch):
    seen = []

    def pause(step):
        if step != SYNCED:
            return
        (name,) = others(scenario)
        assert TEMP_NAME.fullmatch(name), name
        with open(scenario.parent / name, "rb") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another process's lock and cleanup, while this save writes.
        with locked(str(scenario), timeout=0):
            seen.append(others(scenario))

    monkeypatch.setattr(xmlio, "step_hook", pause)
    save_atomic(str(scenario), NEW, OLD)
    assert len(seen) == 1 and len(seen[0]) == 1
    assert scenario.read_bytes() == NEW
    assert others(scenario) == set()


# --- many processes ----------------------------------------------------------

@pytest.mark.parametrize("timeout", [10.0, 0.05])
def test_twenty_processes_lose_no_update(scenario, timeout):
    # Each save sleeps 20 ms inside the lock, so the writers overlap and
    # with the short timeout some of them give up.
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_SCRIPT, str(scenario), f"w{n:02}",
             str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=scenario.parent)
        for n in range(20)
    ]
    results = []
    try:
        for process in processes:
            process.stdin.close()  # go
        for process in processes:
            with process.stdout, process.stderr:
                out, err = process.stdout.read(), process.stderr.read()
            results.append((process.wait(timeout=60), out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    saved, refused = set(), set()
    pids = {process.pid for process in processes}
    for n, (code, out, err) in enumerate(results):
        if (code, out, err) == (0, "saved\n", ""):
            saved.add(f"w{n:02}")
        else:
            # The message names another writer as the holder.
            holder = re.search(r" \(process (\d+) of user ", out)
            assert holder and int(holder[1]) in pids - {processes[n].pid}
            assert (code, out, err) == (
                3, lock_message(scenario, int(holder[1])) + "\n", "")
            refused.add(f"w{n:02}")
    text = scenario.read_text()
    found = re.findall(r"<writer>(w\d\d)</writer>", text)
    assert len(found) == len(saved)
    assert set(found) == saved
    assert text.startswith(OLD.decode().replace("</acrn-config>\n", ""))
    assert text.endswith("</acrn-config>\n")
    assert others(scenario) == set()
    if timeout == 10.0:
        assert not refused
    else:
        assert saved


# --- crashes -----------------------------------------------------------------

def test_sigkill_leaves_old_or_new_never_a_mix(scenario, tmp_path):
    # A killed writer may leave its temp file, under a name the next
    # lock holder recognises and removes.
    delay = 0.2
    old = big_document("o")
    scenario.write_bytes(old)
    source = tmp_path / "new.xml"
    outcomes = []
    leftovers = set()
    trials = 30
    for trial in range(trials):
        new = big_document(chr(ord("a") + trial % 26) + str(trial))
        source.write_bytes(new)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(scenario), str(source),
             str(delay)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert writer.stdout.readline() == b"ready\n"
        # From before the lock to well after the rename.
        time.sleep(delay * 2.0 * trial / (trials - 1))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
        now = scenario.read_bytes()
        assert now in (old, new), f"trial {trial}: mixed or partial file"
        outcomes.append("new" if now == new else "old")
        old = now
        left = others(scenario)
        assert all(TEMP_NAME.fullmatch(name) for name in left), left
        leftovers |= left
        # The kernel dropped the dead writer's lock; taking it removes
        # the dead writer's temp file.
        with locked(str(scenario), timeout=0):
            assert others(scenario) == set()
    assert "old" in outcomes and "new" in outcomes, outcomes
    assert leftovers, "no kill landed between writing and renaming"
    assert scenario.read_bytes() == old


# --- read-only folder --------------------------------------------------------

@pytest.fixture
def open_folder():
    """A folder under the system temp folder that any user may enter.

    pytest's own tmp_path sits below a folder only its owner may enter,
    which would hide the file from the unprivileged user below.
    """
    folder = Path(tempfile.mkdtemp(prefix="acrn-shm-test-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o700)
    shutil.rmtree(folder)


NOBODY = 65534
AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="acting as another user (uid 65534) needs root")


def unprivileged(action) -> str:
    """Run ``action()`` as uid and gid 65534 (no root override) in a
    forked child; its result, or what it raised."""
    if os.geteuid() != 0:
        return action()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, report, never return to pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            result = action()
        except BaseException as exc:  # noqa: BLE001 - reported to parent
            result = f"child failed: {exc!r}"
        os.write(write_end, result.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        result = stream.read().decode()
    os.waitpid(pid, 0)
    return result


def saving(path: Path, data: bytes = NEW, expected: bytes = OLD):
    """An action for :func:`unprivileged`: save ``data``; "saved" or the
    message of the InputError."""
    def save() -> str:
        try:
            save_atomic(str(path), data, expected)
        except InputError as exc:
            return str(exc)
        return "saved"
    return save


def test_read_only_folder_is_a_clear_error(open_folder):
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    path.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)

    def try_lock() -> str:
        try:
            with locked(str(path), timeout=0):
                return "locked"
        except InputError as exc:
            return str(exc)

    open_folder.chmod(0o555)
    try:
        saved = unprivileged(saving(path))
        locking = unprivileged(try_lock)
    finally:
        open_folder.chmod(0o755)
    assert saved == (f"{path}: cannot create a temporary file beside it: "
                     "Permission denied; nothing written")
    # The lock needs nothing but the file: no lock file to create.
    assert locking == "locked"
    assert path.read_bytes() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(open_folder) == ["scenario.xml"]


@AS_ROOT
def test_lock_left_by_an_earlier_version_blocks_nobody(open_folder):
    # Earlier versions kept a lock file beside the scenario; one made by
    # root (mode 0600) locked the file's owner out for good.
    os.chown(open_folder, NOBODY, NOBODY)
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    os.chown(path, NOBODY, NOBODY)
    old_lock = open_folder / ".scenario.xml.acrn-shm.lock"
    old_lock.write_bytes(b"")
    old_lock.chmod(0o600)

    def edit() -> str:
        with locked(str(path), timeout=0):
            return saving(path)()

    assert unprivileged(edit) == "saved"
    assert path.read_bytes() == NEW
    assert sorted(os.listdir(open_folder)) == [
        ".scenario.xml.acrn-shm.lock", "scenario.xml"]


HOLD_SCRIPT = """
import sys
from acrn_ivshmem.io.xmlio import locked
with locked(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


@AS_ROOT
def test_another_users_lock_names_its_holder_and_ends_with_it(
        open_folder):
    os.chown(open_folder, NOBODY, NOBODY)
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    os.chown(path, NOBODY, NOBODY)

    def try_edit() -> str:
        try:
            with locked(str(path), timeout=0.1):
                return saving(path)()
        except ConcurrentEditError as exc:
            return str(exc)

    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        refused = unprivileged(try_edit)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert refused == lock_message(path, holder.pid)
    assert path.read_bytes() == OLD
    # Gone with its holder: nothing was left to block the next edit.
    assert unprivileged(try_edit) == "saved"
    assert os.listdir(open_folder) == ["scenario.xml"]


# --- owner, group and mode --------------------------------------------------

def user(uid: int) -> str:
    return pwd.getpwuid(uid).pw_name


def group(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


@AS_ROOT
@pytest.mark.parametrize("owner, mode, problem", [
    # Root's 0644 file in a folder the user owns: the user would become
    # its owner.
    ((0, 0), 0o644, "is not writable for you (mode 0644, owner root)"),
    # The user's own write-protected file.
    ((NOBODY, NOBODY), 0o444,
     f"is not writable for you (mode 0444, owner {user(NOBODY)})"),
    ((NOBODY, NOBODY), 0o555,
     f"is not writable for you (mode 0555, owner {user(NOBODY)})"),
    # Writable by anyone, but only root could give the new file back.
    ((0, 0), 0o666, "belongs to root:root, and a file you write cannot be "
     "given to them"),
    ((0, NOBODY), 0o664, f"belongs to root:{group(NOBODY)}, and a file you "
     "write cannot be given to them"),
    # The user's own file in a group the user is not in.
    ((NOBODY, 0), 0o644, f"belongs to {user(NOBODY)}:root, and a file "
     "you write cannot be given to them"),
], ids=["root-0644", "own-0444", "own-0555", "root-0666", "root-group-0664",
        "foreign-group"])
def test_unprivileged_save_that_would_change_owner_or_mode_is_refused(
        open_folder, owner, mode, problem):
    os.chown(open_folder, NOBODY, NOBODY)
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    os.chown(path, *owner)
    path.chmod(mode)
    before = path.stat()
    assert unprivileged(saving(path)) == f"{path}: {problem}; nothing written"
    after = path.stat()
    assert path.read_bytes() == OLD
    assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode) == (
        before.st_ino, before.st_uid, before.st_gid, before.st_mode)
    assert os.listdir(open_folder) == ["scenario.xml"]


@AS_ROOT
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o2664], ids=oct)
def test_unprivileged_save_of_own_file_keeps_owner_and_mode(open_folder,
                                                            mode):
    os.chown(open_folder, NOBODY, NOBODY)
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    inode = path.stat().st_ino
    assert unprivileged(saving(path)) == "saved"
    after = path.stat()
    assert path.read_bytes() == NEW
    assert after.st_ino != inode
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        NOBODY, NOBODY, mode)
    assert os.listdir(open_folder) == ["scenario.xml"]


@pytest.mark.parametrize("change, kept", [
    (lambda path: path.chmod(0o600), (None, None, 0o600)),
    (lambda path: path.chmod(0o755), (None, None, 0o755)),
    pytest.param(lambda path: os.chown(path, NOBODY, NOBODY),
                 (NOBODY, NOBODY, 0o644), marks=AS_ROOT),
    pytest.param(lambda path: os.chown(path, -1, NOBODY),
                 (None, NOBODY, 0o644), marks=AS_ROOT),
], ids=["chmod-0600", "chmod-0755", "chown", "chgrp"])
def test_chmod_or_chown_during_the_save_is_kept(scenario, monkeypatch,
                                                change, kept):
    scenario.chmod(0o644)
    me = scenario.stat()

    def meanwhile(step):
        if step == SYNCED:
            change(scenario)

    monkeypatch.setattr(xmlio, "step_hook", meanwhile)
    save_atomic(str(scenario), NEW, OLD)
    after = scenario.stat()
    uid, gid, mode = kept
    assert scenario.read_bytes() == NEW
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        me.st_uid if uid is None else uid, me.st_gid if gid is None else gid,
        mode)
    assert others(scenario) == set()


@pytest.mark.parametrize("step", [2, 3, 100, 204, 205, SYNCED])
def test_write_protection_made_during_the_save_is_kept(open_folder, step):
    # Made at any step up to the last check: the save is refused.
    if os.geteuid() == 0:
        os.chown(open_folder, NOBODY, NOBODY)
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    path.chmod(0o644)

    def save() -> str:
        xmlio.step_hook = (lambda now: now == step and path.chmod(0o444))
        try:
            return saving(path)()
        finally:
            xmlio.step_hook = None

    assert unprivileged(save) == (
        f"{path}: is not writable for you (mode 0444, owner "
        f"{user(path.stat().st_uid)}); nothing written")
    assert path.read_bytes() == OLD
    assert os.listdir(open_folder) == ["scenario.xml"]
