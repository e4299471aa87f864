"""``acrn-shm channel``: every command as a real process.

Golden transcripts (argv, exit status, stdout, stderr) live in
``tests/test_channel_cli/``; ``UPDATE_GOLDEN=1`` rewrites them (review
the diff). Plans run from the project folder over the bundled scenarios
and ACRN's own (``../shared/acrn-data``); stat runs over a region whose
every word the test sets. Send and receive run as two processes over a
file in /dev/shm (or a temporary folder).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acrn_ivshmem import channel
from acrn_ivshmem.channel import Channel, Region, init_region, layout
from acrn_ivshmem.cli.channel import escape_message, is_text_line

from conftest import PROJECT, run_acrn_shm
from test_channel_doorbell import initialised, serving, sock_dir  # noqa: F401
from test_guest import sysfs  # noqa: F401 - the fake sysfs fixture

DATA = Path(__file__).parent / "test_channel_cli"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
MIB = 1 << 20
V33 = "../shared/acrn-data/v3.3"
V27 = "../shared/acrn-data/v2.7"


def transcript(argv: list[str], result) -> str:
    return (f"$ acrn-shm {' '.join(argv)}\n"
            f"exit: {result.returncode}\n"
            f"--- stdout\n{result.stdout}"
            f"--- stderr\n{result.stderr}")


def check_golden(name: str, argv: list[str], cwd: Path) -> None:
    actual = transcript(argv, run_acrn_shm(argv, cwd))
    golden = DATA / f"{name}.txt"
    if UPDATE:
        golden.write_text(actual, encoding="utf-8")
    assert actual == golden.read_text(encoding="utf-8")


def acrn(argv: list[str], cwd: Path, stdin: bytes | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess:
    """``acrn-shm ARGV`` with bytes in and out."""
    return subprocess.run(
        [sys.executable, "-m", "acrn_ivshmem", *argv], cwd=cwd,
        input=stdin, capture_output=True, timeout=timeout,
        env=dict(os.environ, COLUMNS="100", NO_COLOR="1", TERM="dumb"))


@pytest.fixture
def start():
    """Start ``acrn-shm ARGV`` in the background; killed at the end of
    the test if it still runs."""
    started = []

    def begin(argv: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.PIPE)
        proc = subprocess.Popen(
            [sys.executable, "-m", "acrn_ivshmem", *argv], cwd=cwd,
            stderr=subprocess.PIPE, **kwargs)
        started.append(proc)
        return proc
    yield begin
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def fail_line(result) -> tuple[int, bytes, str]:
    return (result.returncode, result.stdout,
            result.stderr.decode() if isinstance(result.stderr, bytes)
            else result.stderr)


@pytest.fixture
def shm(tmp_path) -> Path:
    """A folder for regions: in /dev/shm where there is one."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        import tempfile

        folder = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="chcli-"))
        yield folder
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
    else:
        yield tmp_path


def make_region(path: Path, name: str = "ring", size: int = MIB) -> None:
    with Region.open_file(path, create_size=size) as region:
        init_region(region, name)


# --------------------------------------------------------------------------
# plan


PLANS = {
    "plan-v3.3-text": ["channel", "plan", f"{V33}/whl-ipc-i5/hybrid_rt.xml",
                       "--board", f"{V33}/whl-ipc-i5/whl-ipc-i5.xml"],
    "plan-v3.3-json": ["channel", "plan", f"{V33}/whl-ipc-i5/hybrid_rt.xml",
                       "-f", "json"],
    "plan-v3.3-cfl-text": ["channel", "plan",
                           f"{V33}/cfl-k700-i7/hybrid_rt.xml"],
    "plan-v2.7-text": ["channel", "plan", f"{V27}/whl-ipc-i5/hybrid_rt.xml"],
    "plan-v2.7-launch-json": [
        "channel", "plan", f"{V27}/whl-ipc-i5/hybrid_rt.xml", "--launch",
        f"{V27}/whl-ipc-i5/hybrid_rt_launch_1user_vm_waag.xml",
        "--format", "json"],
    "plan-v2.7-no-region": ["channel", "plan",
                            f"{V27}/generic_board/hybrid.xml"],
    "plan-v2.7-shared-qemu-dir": ["channel", "plan",
                                  f"{V27}/whl-ipc-i5/hybrid_rt.xml",
                                  "--shm-dir", "/dev/hugepages"],
}
BUNDLED = {
    "plan-dm-land-text": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                          "-b", "board-xmls/demo-nuc.xml"],
    "plan-dm-land-json": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                          "--output-format", "json"],
    "plan-dm-land-3.2": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                         "--acrn-version", "3.2"],
    "plan-dm-land-legacy": ["channel", "plan",
                            "scenario-xmls/dm_land_legacy.xml", "--launch",
                            "scenario-xmls/dm_land_legacy_launch.xml"],
    "plan-hybrid-rt-legacy": ["channel", "plan",
                              "scenario-xmls/hybrid_rt.xml"],
    "plan-hybrid-rt-v3-json": ["channel", "plan",
                               "scenario-xmls/hybrid_rt_v3.xml", "-f",
                               "json"],
    # Errors: one line, exit 2.
    "plan-missing": ["channel", "plan", "scenario-xmls/none.xml"],
    "plan-board-as-scenario": ["channel", "plan", "board-xmls/demo-nuc.xml"],
    "plan-scenario-as-board": ["channel", "plan",
                               "scenario-xmls/dm_land_v3.xml", "--board",
                               "scenario-xmls/hybrid_rt_v3.xml"],
    "plan-bad-format": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                        "-f", "xml"],
    "plan-bad-version": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                         "--acrn-version", "three"],
    "plan-launch-for-v3": ["channel", "plan", "scenario-xmls/dm_land_v3.xml",
                           "--launch",
                           "scenario-xmls/dm_land_legacy_launch.xml"],
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_plan_of_acrn_scenarios(name, acrn_data):
    check_golden(name, PLANS[name], PROJECT)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_plan_of_bundled_scenarios(name):
    check_golden(name, BUNDLED[name], PROJECT)


def test_plan_matches_the_launch_script_and_qemu_args(tmp_path):
    # The acrn-dm device and the QEMU flags come from the same planners
    # as launch-script --ivshmem-args and qemu-args.
    scenario = PROJECT / "scenario-xmls" / "dm_land_v3.xml"
    planned = json.loads(run_acrn_shm(
        ["channel", "plan", str(scenario), "-f", "json"], tmp_path).stdout)
    for region in planned["regions"]:
        for end in region["vms"]:
            qemu = run_acrn_shm(["qemu-args", "--scenario", str(scenario),
                                 "--vm", end["vm"], "--region",
                                 region["name"]], tmp_path).stdout
            assert f"mem-path={end['qemu']['mem_path']} " in qemu
            assert f"addr={end['qemu']['addr']}\n" in qemu
            if end["acrn_dm"] is None:
                continue
            script = run_acrn_shm(
                ["launch-script", str(scenario), "--board",
                 str(PROJECT / "board-xmls" / "demo-nuc.xml"), "--vm",
                 end["vm"], "--ivshmem-args"], tmp_path).stdout
            assert " ".join(end["acrn_dm"]) in script.split("\n")


def test_plan_of_a_legacy_scenario_with_ivshmem_off(tmp_path, acrn_data):
    text = (acrn_data / "v2.7" / "whl-ipc-i5" / "hybrid_rt.xml").read_text()
    (tmp_path / "off.xml").write_text(text.replace(
        "<IVSHMEM_ENABLED>y</IVSHMEM_ENABLED>",
        "<IVSHMEM_ENABLED>n</IVSHMEM_ENABLED>"))
    result = run_acrn_shm(["channel", "plan", "off.xml"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "off.xml: no VM shares a region\nnote: IVSHMEM_ENABLED is 'n', "
        "so ACRN v2.x ignores every IVSHMEM_REGION\n", "")


def test_plan_notes_a_third_vm_and_a_native_service_vm_bdf(tmp_path):
    text = (PROJECT / "scenario-xmls" / "dm_land_v3.xml").read_text()
    three = text.replace(
        "<VM_NAME>ACRN_Service_VM</VM_NAME>\n              <VBDF>00:0b.0",
        "<VM_NAME>ACRN_Service_VM</VM_NAME>\n              <VBDF>00:1f.0",
        1).replace(
        """            <IVSHMEM_VM>
              <VM_NAME>POST_STD_VM2</VM_NAME>
              <VBDF>00:08.0</VBDF>
            </IVSHMEM_VM>""", """            <IVSHMEM_VM>
              <VM_NAME>POST_STD_VM2</VM_NAME>
              <VBDF>00:08.0</VBDF>
            </IVSHMEM_VM>
            <IVSHMEM_VM>
              <VM_NAME>POST_RT_VM1</VM_NAME>
              <VBDF>00:0c.0</VBDF>
            </IVSHMEM_VM>""")
    assert three != text
    (tmp_path / "three.xml").write_text(three)
    result = run_acrn_shm(["channel", "plan", "three.xml", "--board",
                           str(PROJECT / "board-xmls" / "demo-nuc.xml")],
                          tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    planned = json.loads(run_acrn_shm(["channel", "plan", "three.xml", "-f",
                                       "json"], tmp_path).stdout)
    assert [(end["vm"], end["peer"]) for region in planned["regions"]
            for end in region["vms"]] == [
        ("POST_STD_VM1", 0), ("POST_RT_VM1", 1), ("ACRN_Service_VM", 0),
        ("POST_STD_VM2", 1), ("POST_RT_VM1", None)]
    assert lines[-2:] == [
        "note: hv_log: VBDF 00:1f.0 of the Service VM is a native device "
        "of the board (ISM304)",
        "note: hv_log: a channel has two peers; POST_RT_VM1 share the "
        "region but not its channel"]


# --------------------------------------------------------------------------
# init, send, recv


def test_init_then_send_and_recv_as_two_processes(shm, start):
    ring = shm / "ring"
    result = acrn(["channel", "init", str(ring), "--size", "1",
                   "--name", "ring"], shm)
    assert fail_line(result) == (
        0, f"{ring}: channel 'ring', 1048576 bytes: two rings of 522240 "
        "bytes, messages up to 261112 bytes\n".encode(), "")
    assert ring.stat().st_size == MIB
    assert ring.stat().st_mode & 0o777 == 0o600
    # The receiver waits first; the sender comes later.
    receiver = start(["channel", "recv", str(ring), "--peer", "1",
                      "--count", "4", "--timeout", "30"], shm)
    time.sleep(0.3)
    lines = "hello\n\nwörld\twith tab\nlast, without a newline"
    sender = acrn(["channel", "send", str(ring), "--peer", "0"], shm,
                  stdin=lines.encode())
    assert fail_line(sender) == (0, b"", "")
    out, err = receiver.communicate(timeout=30)
    assert (receiver.returncode, out.decode(), err) == (
        0, "hello\n\nwörld\twith tab\nlast, without a newline\n", b"")


def test_many_lines_cross_in_order(shm, start, tmp_path):
    # 3 MB of lines through a 1 MiB region: the sender waits for room.
    ring = shm / "ring"
    make_region(ring)
    lines = [f"line {index} " + "x" * (index % 300)
             for index in range(20000)]
    with open(tmp_path / "out", "wb") as out:
        receiver = start(["channel", "recv", str(ring), "-p", "1", "-c",
                          str(len(lines)), "-t", "30"], shm, stdout=out)
        sender = acrn(["channel", "send", str(ring), "-p", "0"], shm,
                      stdin=("\n".join(lines) + "\n").encode())
        _, err = receiver.communicate(timeout=60)
    assert (sender.returncode, sender.stderr) == (0, b"")
    assert (receiver.returncode, err) == (0, b"")
    assert (tmp_path / "out").read_text().splitlines() == lines


def test_binary_file_round_trip(shm, tmp_path, start):
    ring = shm / "ring"
    make_region(ring)
    data = os.urandom(3 * MIB + 12345)
    (tmp_path / "data.bin").write_bytes(data)
    receiver = start(["channel", "recv", str(ring), "--peer", "1",
                      "--output", str(tmp_path / "out.bin"), "--timeout",
                      "30"], shm)
    sender = acrn(["channel", "send", str(ring), "--peer", "0", "--file",
                   str(tmp_path / "data.bin"), "--frame", "100000"], shm)
    out, err = receiver.communicate(timeout=60)
    assert fail_line(sender) == (0, b"", "")
    assert (receiver.returncode, out, err) == (0, b"", b"")
    assert (tmp_path / "out.bin").read_bytes() == data
    # 32 frames of 100000 bytes, the last one shorter, then the end.
    with channel.open_file(ring, 1, heartbeat=0) as chan:
        assert chan.recv_batch(timeout=0) == []


def test_file_frames_and_the_end_message(shm, tmp_path):
    ring = shm / "ring"
    make_region(ring)
    (tmp_path / "data").write_bytes(b"abcdefghij")
    result = acrn(["channel", "send", str(ring), "-p", "0", "--file",
                   str(tmp_path / "data"), "--frame", "4"], shm)
    assert result.returncode == 0
    with channel.open_file(ring, 1, heartbeat=0) as chan:
        assert chan.recv_batch(timeout=1) == [b"abcd", b"efgh", b"ij", b""]
    # Frames never exceed the channel's limit.
    (tmp_path / "big").write_bytes(b"z" * 300000)
    result = acrn(["channel", "send", str(ring), "-p", "0", "--file",
                   str(tmp_path / "big"), "--frame", "1000000"], shm)
    assert result.returncode == 0
    with channel.open_file(ring, 1, heartbeat=0) as chan:
        got = chan.recv_batch(timeout=1)
        got += chan.recv_batch(timeout=1)
        assert [len(message) for message in got] == [261112, 38888, 0]


def test_send_file_times_out_on_a_full_ring(shm, tmp_path):
    """Frames are read straight into the ring: the frame that finds no
    room is never sent, nor half of it."""
    ring = shm / "ring"
    make_region(ring)
    (tmp_path / "big").write_bytes(bytes(range(256)) * 8000)
    result = acrn(["channel", "send", str(ring), "-p", "0", "--file",
                   str(tmp_path / "big"), "--frame", "100000", "-t", "0.2"],
                  shm)
    assert fail_line(result) == (
        1, b"", f"acrn-shm: channel 'ring' ({ring}): ring 0 stayed full "
        "for 0.2 s; 5 message(s) sent\n")
    with channel.open_file(ring, 1, heartbeat=0) as chan:
        got = chan.recv_batch(timeout=1)
        assert b"".join(got) == (tmp_path / "big").read_bytes()[:500000]
        assert chan.recv_batch(timeout=0) == []


def test_send_from_stdin_file_dash(shm):
    ring = shm / "ring"
    make_region(ring)
    result = acrn(["channel", "send", str(ring), "-p", "0", "--file", "-"],
                  shm, stdin=b"\x00\x01binary\n")
    assert result.returncode == 0
    with channel.open_file(ring, 1, heartbeat=0) as chan:
        assert chan.recv_batch(timeout=1) == [b"\x00\x01binary\n", b""]


def test_recv_refuses_a_non_text_message_and_leaves_it(shm):
    ring = shm / "ring"
    make_region(ring)
    with channel.open_file(ring, 0, heartbeat=0) as chan:
        for message in (b"text", b"bin\x00ary\xff", b"back\\slash",
                        "é\u0085".encode()):
            chan.send(message)
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0"],
                  shm)
    assert fail_line(result) == (
        2, b"text\n", f"acrn-shm: error: channel 'ring' ({ring}): message "
        "2 (8 bytes) is not a line of text; it stays in the ring: receive "
        "it with --escape or --output FILE\n")
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0",
                   "--escape"], shm)
    assert fail_line(result) == (
        0, b"bin\\x00ary\\xff\nback\\\\slash\n\xc3\xa9\\x85\n", "")


def test_escape_and_text_lines():
    assert is_text_line("wörld\tx".encode())
    for bad in (b"a\nb", b"\xff", b"\x7f", "\u009b".encode(), b"\r"):
        assert not is_text_line(bad)
    assert escape_message(b"a\\b\n\t\r\x01\xff\xc3") == (
        "a\\\\b\\n\\t\\r\\x01\\xff\\xc3")
    assert escape_message("ok ü".encode()) == "ok ü"


def test_recv_timeouts_and_counts(shm):
    ring = shm / "ring"
    make_region(ring)
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0.2"],
                  shm)
    assert fail_line(result) == (
        1, b"", f"acrn-shm: channel 'ring' ({ring}): no message for 0.2 s;"
        " received none\n")
    with channel.open_file(ring, 0, heartbeat=0) as chan:
        for message in (b"one", b"two", b"three"):
            chan.send(message)
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0.2",
                   "-c", "5"], shm)
    assert fail_line(result) == (
        1, b"one\ntwo\nthree\n", f"acrn-shm: channel 'ring' ({ring}): no "
        "message for 0.2 s; received 3 of 5\n")
    with channel.open_file(ring, 0, heartbeat=0) as chan:
        for message in (b"four", b"five", b"six"):
            chan.send(message)
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-c", "2"],
                  shm)
    assert fail_line(result) == (0, b"four\nfive\n", "")
    # Without --count, a timeout after messages is the end: exit 0.
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0.1"],
                  shm)
    assert fail_line(result) == (0, b"six\n", "")


def test_a_count_inside_a_batch_record_receives_it_again(shm):
    # A receiver releases whole records: stopping inside a batch (one
    # record for many messages, as send_batch and ivch_write make) leaves
    # the batch to the next receiver, from its start (at least once).
    ring = shm / "ring"
    make_region(ring)
    with channel.open_file(ring, 0, heartbeat=0) as chan:
        chan.send_batch([b"a", b"b", b"c"])
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-c", "2"],
                  shm)
    assert fail_line(result) == (0, b"a\nb\n", "")
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0"],
                  shm)
    assert fail_line(result) == (0, b"a\nb\nc\n", "")
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0"],
                  shm)
    assert result.returncode == 1


def test_send_makes_a_record_per_line(shm):
    ring = shm / "ring"
    make_region(ring)
    result = acrn(["channel", "send", str(ring), "-p", "0"], shm,
                  stdin=b"a\nb\nc\n")
    assert result.returncode == 0
    for expected in (b"a\n", b"b\n", b"c\n"):
        result = acrn(["channel", "recv", str(ring), "-p", "1", "-c", "1"],
                      shm)
        assert fail_line(result) == (0, expected, "")


def test_send_times_out_on_a_full_ring(shm):
    ring = shm / "ring"
    make_region(ring)
    line = b"y" * 200000 + b"\n"
    result = acrn(["channel", "send", str(ring), "-p", "0", "-t", "0.2"],
                  shm, stdin=line * 5)
    assert fail_line(result) == (
        1, b"", f"acrn-shm: channel 'ring' ({ring}): ring 0 stayed full "
        "for 0.2 s; 2 message(s) sent\n")


def test_ctrl_c_exits_130_and_detaches(shm, start):
    ring = shm / "ring"
    make_region(ring)
    receiver = start(["channel", "recv", str(ring), "--peer", "1"], shm)
    deadline = time.monotonic() + 30
    with Region.open_file(ring) as region:
        while channel.region_status(region).peers[1].state != "attached":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        receiver.send_signal(signal.SIGINT)
        out, err = receiver.communicate(timeout=30)
        assert (receiver.returncode, out, err) == (130, b"", b"")
        assert channel.region_status(region).peers[1].state == "detached"


def test_ctrl_c_while_attaching_is_held_until_it_is_attached(
        shm, monkeypatch):
    """A Ctrl-C that comes while the channel is being opened is held
    until it is whole (else views of the half-made channel keep the
    region mapped: "cannot close exported pointers exist", exit 2), and
    then arrives, and the channel detaches."""
    from acrn_ivshmem.cli import channel as cli_channel

    ring = shm / "ring"
    make_region(ring)
    steps = []

    def attach_interrupted(*args):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # a Ctrl-C not held would interrupt this
        chan = channel.open_file(ring, 1, heartbeat=0)
        steps.append("attached")
        return chan

    monkeypatch.setattr(cli_channel, "_attach", attach_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with cli_channel._open_channel(str(ring), None, "/sys", 1, None,
                                       False):
            time.sleep(1)
            steps.append("not interrupted")
    assert steps == ["attached"]
    with Region.open_file(ring) as region:
        assert channel.region_status(region).peers[1].state == "detached"
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == set()


def test_a_held_peer_is_refused(shm):
    ring = shm / "ring"
    make_region(ring)
    with channel.open_file(ring, 1, heartbeat=0.02):
        result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0"],
                      shm)
    assert fail_line(result) == (
        2, b"", f"acrn-shm: error: channel 'ring' ({ring}): peer 1 is in "
        "use by another process (epoch 1, heartbeat moving); stop it, or "
        "take it over\n")


INIT_ERRORS = [
    (["init", "new", "--name", "ring"],
     "new: give --size for a new or empty file"),
    (["init", "sized", "--name", "ring", "--size", "2"],
     "sized: is 1048576 bytes, not 2097152 (--size 2); nothing written"),
    (["init", "new", "--name", "ring", "--size", "0"],
     "--size 0: give 1 MB or more"),
    (["init", "new", "--name", "ring", "--size", "512K"],
     "--size '512K' is not a whole number of MB"),
    (["init", "new", "--name", "a\nb", "--size", "1"],
     r"region name 'a\x0ab' has a control character (U+000A)"),
    (["init", "new", "--name", "x" * 64, "--size", "1"],
     "region name '" + "x" * 64 + "' is 64 bytes of UTF-8; give 1 to 63"),
    (["init", "--name", "ring"],
     "give PATH (a host file, made if missing) or --device BDF|id=N"),
    (["init", "new", "--device", "00:08.0", "--name", "ring"],
     "give PATH or --device, not both"),
    (["init", "link", "--name", "ring", "--size", "1"],
     "link: cannot open: Too many levels of symbolic links"),
    (["init", "held", "--name", "ring"],
     "held: peer 0 of channel 'held' is attached (epoch 1); stop it, or "
     "initialise with force"),
]


@pytest.mark.parametrize(("argv", "line"), INIT_ERRORS)
def test_init_errors(argv, line, tmp_path):
    (tmp_path / "sized").write_bytes(bytes(MIB))
    (tmp_path / "target").write_bytes(b"")
    (tmp_path / "link").symlink_to("target")
    make_region(tmp_path / "held", "held")
    with channel.open_file(tmp_path / "held", 0, heartbeat=0):
        result = acrn(["channel", *argv], tmp_path)
    assert fail_line(result) == (2, b"", f"acrn-shm: error: {line}\n")
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "target").read_bytes() == b""


def test_init_force_and_an_existing_file(tmp_path):
    make_region(tmp_path / "held", "held")
    with channel.open_file(tmp_path / "held", 0, heartbeat=0):
        result = acrn(["channel", "init", "held", "--name", "again",
                       "--force"], tmp_path)
    assert fail_line(result) == (
        0, b"held: channel 'again', 1048576 bytes: two rings of 522240 "
        b"bytes, messages up to 261112 bytes\n", "")
    (tmp_path / "two").write_bytes(bytes(2 * MIB))
    result = acrn(["channel", "init", "two", "--name", "x", "-s", "2M"],
                  tmp_path)
    assert result.returncode == 0
    with Region.open_file(tmp_path / "two") as region:
        assert region.header().name == "x"


SEND_RECV_ERRORS = [
    (["send", "ring", "-p", "0", "--frame", "0"],
     "--frame 0: give 1 byte or more"),
    (["send", "ring", "-p", "0", "--timeout", "-1"],
     "--timeout -1: give 0 or more seconds"),
    (["send", "ring", "-p", "2"], "peer 2: a channel has peers 0 and 1"),
    (["send", "ring", "-p", "0", "--file", "missing"],
     "missing: cannot read: No such file or directory"),
    (["send", "-p", "0"], "give TARGET (a file, or a region name in a "
     "guest) or --device BDF|id=N"),
    (["send", "ring", "-p", "0", "-d", "00:08.0"],
     "give TARGET or --device, not both"),
    (["send", "elsewhere", "-p", "0", "--server", "s.sock", "--sysfs",
      "emptysys"], "--server is for a host file TARGET (the ivshmem server's "
     "doorbells)"),
    (["recv", "ring", "-p", "1", "--count", "0"],
     "--count 0: give 1 or more"),
    (["recv", "ring", "-p", "1", "--timeout", "-2"],
     "--timeout -2: give 0 or more seconds"),
    (["recv", "ring", "-p", "1", "--escape", "-o", "out"],
     "--escape is for lines on stdout, not --output"),
    (["recv", "ring", "-p", "1", "-o", "link"],
     "link: is a symbolic link; nothing written"),
    (["recv", "ring", "-p", "1", "-o", "."],
     ".: cannot write: Is a directory"),
    (["recv", "blank", "-p", "1"], "blank: no channel header (the first "
     "bytes are 00 00 00 00 00 00 00 00, not 49 56 53 48 4d 43 48 4e); "
     "initialise it first"),
    (["recv", "elsewhere", "-p", "1", "--sysfs", "emptysys"],
     "no ivshmem device holds channel 'elsewhere'; devices: none (on the "
     "host, give the backing file: a path such as /dev/shm/elsewhere or "
     "./elsewhere)"),
    (["recv", "./missing", "-p", "1"],
     "./missing: cannot open: No such file or directory"),
]


@pytest.mark.parametrize(("argv", "line"), SEND_RECV_ERRORS)
def test_send_and_recv_errors(argv, line, tmp_path):
    make_region(tmp_path / "ring")
    (tmp_path / "blank").write_bytes(bytes(MIB))
    (tmp_path / "link").symlink_to("nowhere")
    (tmp_path / "emptysys" / "bus" / "pci" / "devices").mkdir(parents=True)
    result = acrn(["channel", *argv], tmp_path, stdin=b"")
    assert fail_line(result) == (2, b"", f"acrn-shm: error: {line}\n")
    assert not (tmp_path / "nowhere").exists()


def test_a_line_longer_than_a_message(tmp_path):
    make_region(tmp_path / "ring")
    result = acrn(["channel", "send", "ring", "-p", "0"], tmp_path,
                  stdin=b"ok\n" + b"z" * 261113 + b"\nnever\n")
    assert fail_line(result) == (
        2, b"", "acrn-shm: error: stdin line 2 is 261113 bytes; the "
        "channel's messages are at most 261112 (send binary data with "
        "--file)\n")
    with channel.open_file(tmp_path / "ring", 1, heartbeat=0) as chan:
        assert chan.recv_batch(timeout=0) == [b"ok"]


# --------------------------------------------------------------------------
# guest targets (a fake sysfs whose BAR2 files are plain files)


def test_guest_device_and_name_targets(sysfs, tmp_path):  # noqa: F811
    result = acrn(["channel", "init", "--device", "00:08.0", "--name",
                   "alpha", "--sysfs", sysfs], tmp_path)
    assert fail_line(result) == (
        0, b"0000:00:08.0: channel 'alpha', 2097152 bytes: two rings of "
        b"1046528 bytes, messages up to 523256 bytes\n", "")
    result = acrn(["channel", "init", "-d", "id=5", "--name", "beta",
                   "--size", "2", "--sysfs", sysfs], tmp_path)
    assert fail_line(result) == (
        2, b"", "acrn-shm: error: --size is for a file: a device's size is "
        "its BAR2\n")
    result = acrn(["channel", "send", "alpha", "--peer", "0", "--sysfs",
                   sysfs], tmp_path, stdin=b"by name\n")
    # By name, the guest doorbell is tried (00:08.0 has MSI-X): one line
    # says what it lacks, and the channel polls.
    assert fail_line(result) == (0, b"", (
        "acrn-shm: warning: 0000:00:08.0: the vfio-pci driver is not loaded "
        "(modules irqbypass, vfio, vfio_iommu_type1, vfio_virqfd, "
        "vfio-pci-core, vfio-pci); polling instead of the doorbell\n"))
    # By --device the same (id=5 is 00:08.0).
    result = acrn(["channel", "recv", "--device", "id=5", "--peer", "1",
                   "--count", "1", "--sysfs", sysfs], tmp_path)
    assert fail_line(result) == (0, b"by name\n", (
        "acrn-shm: warning: 0000:00:08.0: the vfio-pci driver is not loaded "
        "(modules irqbypass, vfio, vfio_iommu_type1, vfio_virqfd, "
        "vfio-pci-core, vfio-pci); polling instead of the doorbell\n"))
    result = acrn(["channel", "stat", "alpha", "--sysfs", sysfs],
                  tmp_path)
    assert result.returncode == 0
    assert result.stdout.decode().splitlines()[0] == (
        "channel 'alpha' in 0000:00:08.0: layout 1.0, 2097152 bytes "
        "(2097152 mapped)")
    result = acrn(["channel", "stat", "-d", "00:0c.0", "--sysfs", sysfs],
                  tmp_path)
    assert fail_line(result) == (
        2, b"", "acrn-shm: error: no ivshmem device matches '00:0c.0'; the "
        "devices are 0000:00:08.0, 0000:00:09.0, 0000:00:0a.0, "
        "0000:01:00.0\n")


# --------------------------------------------------------------------------
# stat


def stat_region(folder: Path) -> Channel:
    """A region with every state the text shows: peer 0 attached (its
    heartbeat still) with a doorbell, waiting for room; peer 1 detached
    after taking one of three messages."""
    path = folder / "ring"
    make_region(path, "shm_region_0", MIB)
    with channel.open_file(path, 1, heartbeat=0) as reader:
        pass
    held = channel.open_file(path, 0, heartbeat=0)
    held.send_batch([b"first", b"second", b"third"])
    with channel.open_file(path, 1, heartbeat=0) as reader:
        assert reader.recv(timeout=1) == b"first"
    slot = layout.SLOT_OFFSETS[0] // 8
    held._words[slot + layout.SLOT_DOORBELL // 8] = (
        layout.DOORBELL_PRESENT | 3 << 16 | 1)
    held._words[slot + layout.SLOT_WAITING // 8] = layout.WAIT_ROOM
    return held


STATS = {
    "stat-text": ["channel", "stat", "ring", "--watch", "0.1"],
    "stat-json": ["channel", "stat", "./ring", "-f", "json", "-w", "0.1"],
    "stat-unwatched": ["channel", "stat", "ring", "--watch", "0"],
}


@pytest.mark.parametrize("name", sorted(STATS))
def test_stat_golden(name, tmp_path):
    held = stat_region(tmp_path)
    try:
        check_golden(name, STATS[name], tmp_path)
    finally:
        held.close()


def test_stat_sees_a_live_peer(shm):
    make_region(shm / "ring")
    with channel.open_file(shm / "ring", 1, heartbeat=0.02):
        result = acrn(["channel", "stat", str(shm / "ring"), "-f", "json"],
                      shm)
    peers = json.loads(result.stdout)["peers"]
    assert result.returncode == 0
    assert (peers[1]["state"], peers[1]["alive"]) == ("attached", True)
    assert 0 <= peers[1]["heartbeat_age"]["at_most"] < 1.0
    assert peers[0]["heartbeat_age"] is None


def test_stat_of_a_corrupted_ring(tmp_path):
    make_region(tmp_path / "ring")
    with Region.open_file(tmp_path / "ring") as region:
        region.words[layout.COUNTER_OFFSETS[1][0] // 8] = 12345
    result = acrn(["channel", "stat", "ring", "-w", "0"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.decode().splitlines()[-1] == (
        "ring 1 (peer 1 -> peer 0): 522240 bytes at 0x80800, messages up to "
        "261112; head 12345 and tail 0 break the format (corrupted)")


STAT_ERRORS = [
    (["stat", "blank"], "blank: no channel header (the first bytes are 00 "
     "00 00 00 00 00 00 00, not 49 56 53 48 4d 43 48 4e); initialise it "
     "first"),
    (["stat", "small"], "small: 4096 bytes is too small for a channel "
     "(4608 or more)"),
    (["stat", "./none"], "./none: cannot open: No such file or directory"),
    (["stat", "."], ".: cannot open: Is a directory"),
    (["stat", "ring", "-f", "yaml"], "--format 'yaml': choose text or json"),
    (["stat", "ring", "-w", "-1"], "--watch -1: give 0 or more seconds"),
    (["stat", "bad-crc"], "bad-crc: the channel header's CRC-32 does not "
     "match its bytes"),
]


@pytest.mark.parametrize(("argv", "line"), STAT_ERRORS)
def test_stat_errors(argv, line, tmp_path):
    make_region(tmp_path / "ring")
    (tmp_path / "blank").write_bytes(bytes(MIB))
    (tmp_path / "small").write_bytes(bytes(4096))
    make_region(tmp_path / "bad-crc")
    with Region.open_file(tmp_path / "bad-crc") as region:
        region.view[0x40] ^= 1
    result = acrn(["channel", *argv], tmp_path)
    assert fail_line(result) == (2, b"", f"acrn-shm: error: {line}\n")


# --------------------------------------------------------------------------
# c-header, bench, help


def test_c_header(tmp_path):
    (tmp_path / "include").mkdir()
    result = acrn(["channel", "c-header", "-o", "include"], tmp_path)
    assert fail_line(result) == (
        0, b"wrote include/ivshmem_channel.h\n", "")
    written = (tmp_path / "include" / "ivshmem_channel.h").read_text()
    assert written == channel.c_header()
    assert acrn(["channel", "c-header"], tmp_path).stdout.decode() == (
        written)


C_HEADER_ERRORS = [
    (["-o", "linked"], "linked/ivshmem_channel.h: is a symbolic link, not a "
     "regular file; nothing written"),
    (["-o", "fifo"], "fifo/ivshmem_channel.h: is a FIFO, not a regular "
     "file; nothing written"),
    (["-o", "none"], "none: not a folder (-o takes the folder "
     "ivshmem_channel.h goes into)"),
]


@pytest.mark.parametrize(("argv", "line"), C_HEADER_ERRORS)
def test_c_header_refuses_links_and_fifos(argv, line, tmp_path):
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "ivshmem_channel.h").symlink_to("../elsewhere.h")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "ivshmem_channel.h")
    result = acrn(["channel", "c-header", *argv], tmp_path)
    assert fail_line(result) == (2, b"", f"acrn-shm: error: {line}\n")
    assert not (tmp_path / "elsewhere.h").exists()


def quick_counts(monkeypatch):
    from acrn_ivshmem.channel import bench

    monkeypatch.setattr(bench.Bench, "count",
                        lambda self, size, full: 2000 if size == 64 else 50)
    monkeypatch.setattr(bench.Bench, "memcpy", lambda self, span: 1e9)


def test_bench_prints_every_figure_beside_its_goal(monkeypatch, capsys,
                                                   shm):
    import shutil

    from acrn_ivshmem.cli.channel import run_bench

    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler")
    quick_counts(monkeypatch)
    make_region(shm / "ring", "kept", 2 * MIB)
    assert run_bench(str(shm / "ring"), None, "/sys", None, True, None,
                     False) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"; over {shm / 'ring'}; one run per throughput figure" in out[0]
    assert len(out) == 32
    goals = [line for line in out if "goal" in line or ">=" in line]
    assert [line.split("  ")[1].strip() for line in goals[1:]] == [
        "C, 64 B, ivch_send (a publish each)",
        "C, 64 B, ivch_write + a publish per 64", "C, 64 KiB",
        "Python, 64 B, send_batch/recv_batch",
        "Python, 64 KiB, recv_batch_into"]
    with Region.open_file(shm / "ring") as region:
        assert region.header().name == "kept"


BENCH_ERRORS = [
    (["ring", "--size", "4"], "--size is for fresh regions; a TARGET has "
     "its own size"),
    (["--size", "0"], "--size 0: give 1 MB or more"),
    (["small"], "a region of 65536 bytes has rings too small for "
     "65536-byte messages; give 1 MiB or more"),
    (["held"], "held: peer 0 is attached; the bench initialises the region "
     "again (--force to do it anyway)"),
    (["ring", "--cc", "no-such-cc"],
     "cannot run no-such-cc: No such file or directory"),
    (["ring", "--cc", "false"], "failed"),
]


@pytest.mark.parametrize(("argv", "line"), BENCH_ERRORS)
def test_bench_errors(argv, line, tmp_path):
    make_region(tmp_path / "ring")
    make_region(tmp_path / "small", size=65536)
    make_region(tmp_path / "held")
    with channel.open_file(tmp_path / "held", 0, heartbeat=0):
        result = acrn(["channel", "bench", *argv], tmp_path)
    if line == "failed":
        assert result.returncode == 2
        assert result.stderr.decode().startswith(
            "acrn-shm: error: failed (1): false -O2 -std=c99 ")
        assert result.stderr.decode().count("\n") == 1
        return
    assert fail_line(result) == (2, b"", f"acrn-shm: error: {line}\n")


HELP = ["channel", "channel init", "channel send", "channel recv",
        "channel stat", "channel bench", "channel c-header", "channel plan"]


@pytest.mark.parametrize("command", HELP)
def test_help(command, tmp_path):
    argv = [*command.split(), "--help"]
    check_golden("help-" + command.replace(" ", "-"), argv, tmp_path)
    shown = " ".join(run_acrn_shm(argv, tmp_path).stdout.split())
    assert f"Example: acrn-shm {command}" in shown


def test_bash_completes_channel_commands_and_formats(tmp_path):
    from test_cli_help import complete

    assert complete("acrn-shm ch", tmp_path) == ["check-launch", "channel"]
    assert complete("acrn-shm channel s", tmp_path) == ["send", "stat"]
    assert complete("acrn-shm channel stat ring -f ", tmp_path) == [
        "text", "json"]
    assert complete("acrn-shm channel plan s.xml --format j", tmp_path) == [
        "json"]


def test_a_closed_stdout_leaves_the_messages(shm):
    # recv | head: the reader went away before the first line; what was
    # not written is not released.
    ring = shm / "ring"
    make_region(ring)
    for line in (b"a", b"b"):
        with channel.open_file(ring, 0, heartbeat=0) as chan:
            chan.send(line)
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb") as closed:
        done = subprocess.run(
            [sys.executable, "-m", "acrn_ivshmem", "channel", "recv",
             str(ring), "-p", "1", "-t", "0"], stdout=closed,
            stderr=subprocess.PIPE, timeout=60)
    assert (done.returncode, done.stderr) == (0, b"")
    result = acrn(["channel", "recv", str(ring), "-p", "1", "-t", "0"], shm)
    assert fail_line(result) == (0, b"a\nb\n", "")


def test_channel_alone_prints_its_help(tmp_path):
    result = run_acrn_shm(["channel"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == run_acrn_shm(["channel", "--help"],
                                         tmp_path).stdout


def test_send_and_recv_on_the_server_doorbells(sock_dir, start):  # noqa: F811
    with serving(sock_dir, size=MIB):
        ring = initialised(sock_dir / "ring")
        socket_path = str(sock_dir / "s")
        receiver = start(["channel", "recv", str(ring), "-p", "1", "-c",
                          "1", "-t", "30", "--server", socket_path],
                         sock_dir)
        deadline = time.monotonic() + 30
        with Region.open_file(ring) as region:
            while not channel.region_status(region).peers[1].doorbell:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        sender = acrn(["channel", "send", str(ring), "-p", "0", "--server",
                       socket_path], sock_dir, stdin=b"rung\n")
        out, err = receiver.communicate(timeout=30)
    assert fail_line(sender) == (0, b"", "")
    assert (receiver.returncode, out, err) == (0, b"rung\n", b"")


def test_no_server_there_polls_after_one_line(tmp_path):
    make_region(tmp_path / "ring")
    result = acrn(["channel", "recv", "ring", "-p", "1", "-t", "0",
                   "--server", "nowhere.sock"], tmp_path)
    assert fail_line(result) == (
        1, b"", "acrn-shm: warning: ivshmem server 'nowhere.sock': No such "
        "file or directory; polling instead of the doorbell\n"
        "acrn-shm: channel 'ring' (ring): no message for 0 s; received "
        "none\n")


def test_bench_finds_a_guest_regions_bar2(sysfs):  # noqa: F811
    from acrn_ivshmem import guest
    from acrn_ivshmem.cli.channel import _resource2

    devices = guest.find_devices(sysfs)
    with Region.from_device(guest.select_device(devices, "0a.0")) as made:
        init_region(made, "beta")
    bar2 = str(Path(sysfs) / "bus" / "pci" / "devices" / "0000:00:0a.0"
               / "resource2")
    assert _resource2("beta", None, sysfs) == bar2
    assert _resource2(None, "00:0a.0", sysfs) == bar2


def test_plan_checks_a_conversion_as_pyproject_says(tmp_path):
    """A legacy scenario's conversion passes lint as pyproject.toml
    configures it: with ISM002 (no board) made an error, plan stops,
    exit 2; before, it checked with the defaults and printed the plan."""
    (tmp_path / "hybrid_rt.xml").write_bytes(
        (PROJECT / V27 / "whl-ipc-i5" / "hybrid_rt.xml").read_bytes())
    (tmp_path / "pyproject.toml").write_text(
        '[tool.acrn-shm]\nseverity = { ISM002 = "error" }\n')
    result = run_acrn_shm(["channel", "plan", "hybrid_rt.xml"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "acrn-shm: error: hybrid_rt.xml: the converted file would "
        "not pass ISM002: no board XML given or found beside the "
        "scenario; skipped ISM304, ISM307\n")
