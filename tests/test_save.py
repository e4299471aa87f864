"""Saving edits: advisory lock, atomic replace, crashes and races."""

from __future__ import annotations

import errno
import fcntl
import os
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

from acrn_ivshmem import xmlio
from acrn_ivshmem.errors import ConcurrentEditError, InputError, UsageError
from acrn_ivshmem.xmlio import locked, save_atomic

OLD = b'<?xml version="1.0"?>\n<acrn-config>\n</acrn-config>\n'
NEW = b'<?xml version="1.0"?>\n<acrn-config>\n  <hv/>\n</acrn-config>\n'
LOCK_NAME = ".scenario.xml.acrn-shm.lock"
# save_atomic's temp file names, which locked() cleans up.
TEMP_NAME = re.compile(r"\.scenario\.xml\.[0-9a-f]{8}\.tmp")

# Lock, read, append one line inside the root element, save; all in a
# fresh process. Waits for stdin to close so that all start together.
APPEND_SCRIPT = """
import sys
from acrn_ivshmem.errors import ConcurrentEditError
from acrn_ivshmem.xmlio import locked, read_bytes, save_atomic
path, tag, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
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

# Says "ready" once imported, then saves the bytes of argv[2] to argv[1].
WRITER_SCRIPT = """
import sys
from acrn_ivshmem.xmlio import locked, read_bytes, save_atomic
path, source = sys.argv[1], sys.argv[2]
with open(source, "rb") as stream:
    new = stream.read()
print("ready", flush=True)
with locked(path):
    save_atomic(path, new, read_bytes(path))
"""


def lock_message(path) -> str:
    return f"{path}: another acrn-shm edit holds the lock; try again"


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
    assert others(scenario) == {LOCK_NAME}


def test_save_through_symlink_replaces_the_target(scenario, tmp_path):
    link = tmp_path / "link.xml"
    link.symlink_to(scenario)
    with locked(str(link)):
        save_atomic(str(link), NEW, OLD)
    assert link.is_symlink()
    assert scenario.read_bytes() == NEW
    # One lock per real file, whatever name it was reached by.
    assert others(scenario) == {LOCK_NAME}
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
    def interrupted(_seconds):
        assert len(others(scenario)) == 1  # the temp file exists here
        raise KeyboardInterrupt

    monkeypatch.setenv("ACRN_SHM_TEST_WRITE_DELAY", "5")
    monkeypatch.setattr(xmlio.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(str(scenario), NEW, OLD)
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_bad_test_delay_is_refused(scenario, monkeypatch, value):
    monkeypatch.setenv("ACRN_SHM_TEST_WRITE_DELAY", value)
    with pytest.raises(UsageError) as caught:
        save_atomic(str(scenario), NEW, OLD)
    assert str(caught.value) == (
        f"ACRN_SHM_TEST_WRITE_DELAY: not a number of seconds: {value!r}")
    assert scenario.read_bytes() == OLD
    assert others(scenario) == set()


# --- locked ------------------------------------------------------------------

def test_lock_file_is_private_kept_and_reusable(scenario):
    old_umask = os.umask(0)  # 0o600 must come from locked, not the umask
    try:
        with locked(str(scenario)):
            lock = scenario.parent / LOCK_NAME
            assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
    # Kept: deleting it would let a waiter lock a file nobody else sees.
    assert others(scenario) == {LOCK_NAME}
    inode = lock.stat().st_ino
    with locked(str(scenario), timeout=0):
        pass
    assert lock.stat().st_ino == inode
    assert scenario.read_bytes() == OLD


def test_existing_lock_file_is_left_as_it_is(scenario):
    lock = scenario.parent / LOCK_NAME
    lock.write_bytes(b"")
    lock.chmod(0o644)
    with locked(str(scenario)):
        pass
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644


def test_held_lock_times_out_with_exact_message(scenario):
    with locked(str(scenario)):
        start = time.monotonic()
        with pytest.raises(ConcurrentEditError) as caught, \
                locked(str(scenario), timeout=0.3):
            pytest.fail("entered a lock that is held")
        waited = time.monotonic() - start
    assert str(caught.value) == lock_message(scenario)
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


def test_lock_refuses_a_planted_symlink(scenario, tmp_path):
    victim = tmp_path / "victim"
    (scenario.parent / LOCK_NAME).symlink_to(victim)
    with pytest.raises(InputError) as caught, locked(str(scenario)):
        pytest.fail("locked through a symlink")
    assert str(caught.value) == (
        f"{scenario}: cannot open lock file {LOCK_NAME}: "
        f"{os.strerror(errno.ELOOP)}")
    assert not victim.exists()


def test_lock_failure_is_a_clear_error(scenario, monkeypatch):
    def no_locks(_fd, _operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(xmlio.fcntl, "flock", no_locks)
    with pytest.raises(InputError) as caught, locked(str(scenario)):
        pytest.fail("entered without a lock")
    assert str(caught.value) == (
        f"{scenario}: cannot lock {LOCK_NAME}: No locks available")


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
            LOCK_NAME, *kept, ".scenario.xml.deadbeef.tmp",
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
    assert others(scenario) == {LOCK_NAME}


def test_save_holds_its_temp_file_against_cleanups(scenario, monkeypatch):
    seen = []

    def pause(_seconds):
        (name,) = others(scenario)
        assert TEMP_NAME.fullmatch(name), name
        with open(scenario.parent / name, "rb") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another process's lock and cleanup, while this save writes.
        with locked(str(scenario), timeout=0):
            seen.append(others(scenario) - {LOCK_NAME})

    monkeypatch.setenv("ACRN_SHM_TEST_WRITE_DELAY", "5")
    monkeypatch.setattr(xmlio.time, "sleep", pause)
    save_atomic(str(scenario), NEW, OLD)
    assert len(seen) == 1 and len(seen[0]) == 1
    assert scenario.read_bytes() == NEW
    assert others(scenario) == {LOCK_NAME}


# --- many processes ----------------------------------------------------------

@pytest.mark.parametrize("timeout", [10.0, 0.05])
def test_twenty_processes_lose_no_update(scenario, timeout):
    # Each save sleeps 20 ms inside the lock, so the writers overlap and
    # with the short timeout some of them give up.
    env = dict(os.environ, ACRN_SHM_TEST_WRITE_DELAY="0.02")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_SCRIPT, str(scenario), f"w{n:02}",
             str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=scenario.parent)
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
    for n, (code, out, err) in enumerate(results):
        if (code, out, err) == (0, "saved\n", ""):
            saved.add(f"w{n:02}")
        else:
            assert (code, out, err) == (3, lock_message(scenario) + "\n", "")
            refused.add(f"w{n:02}")
    text = scenario.read_text()
    found = re.findall(r"<writer>(w\d\d)</writer>", text)
    assert len(found) == len(saved)
    assert set(found) == saved
    assert text.startswith(OLD.decode().replace("</acrn-config>\n", ""))
    assert text.endswith("</acrn-config>\n")
    assert others(scenario) == {LOCK_NAME}
    if timeout == 10.0:
        assert not refused
    else:
        assert saved


# --- crashes -----------------------------------------------------------------

def test_sigkill_leaves_old_or_new_never_a_mix(scenario, tmp_path):
    # A killed writer may leave its temp file, under a name the next
    # lock holder recognises and removes.
    delay = 0.2
    env = dict(os.environ, ACRN_SHM_TEST_WRITE_DELAY=str(delay))
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
            [sys.executable, "-c", WRITER_SCRIPT, str(scenario), str(source)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
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
        left = others(scenario) - {LOCK_NAME}
        assert all(TEMP_NAME.fullmatch(name) for name in left), left
        leftovers |= left
        # The kernel dropped the dead writer's lock; taking it removes
        # the dead writer's temp file.
        with locked(str(scenario), timeout=0):
            assert others(scenario) == {LOCK_NAME}
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


def unprivileged(action) -> str:
    """Run ``action()`` as a user without root's override; its result."""
    if os.geteuid() != 0:
        return action()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, report, never return to pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
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


def test_read_only_folder_is_a_clear_error(open_folder):
    path = open_folder / "scenario.xml"
    path.write_bytes(OLD)
    path.chmod(0o644)

    def try_save() -> str:
        try:
            save_atomic(str(path), NEW, OLD)
        except InputError as exc:
            return str(exc)
        return "saved"

    def try_lock() -> str:
        try:
            with locked(str(path), timeout=0):
                return "locked"
        except InputError as exc:
            return str(exc)

    open_folder.chmod(0o555)
    try:
        saving = unprivileged(try_save)
        locking = unprivileged(try_lock)
    finally:
        open_folder.chmod(0o755)
    assert saving == (f"{path}: cannot create a temporary file beside it: "
                      "Permission denied; nothing written")
    assert locking == (f"{path}: cannot open lock file {LOCK_NAME}: "
                       "Permission denied")
    assert path.read_bytes() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(open_folder) == ["scenario.xml"]
