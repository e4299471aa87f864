"""bench/channel_bench.py runs end to end and prints every figure.

With tiny message counts, so that it is quick; the figures themselves
are not asserted (they depend on the machine): only that each one is
measured and printed beside its goal and its anchors.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile

import pytest
from conftest import PROJECT

from acrn_ivshmem.channel import ChannelError
from acrn_ivshmem.channel.bench import find_compiler, run

SPEC = importlib.util.spec_from_file_location(
    "channel_bench", PROJECT / "bench" / "channel_bench.py")
channel_bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(channel_bench)

NUMBER = r"[0-9]+\.[0-9]+"


def test_every_figure_is_printed(tmp_path, capsys, monkeypatch):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        bench = channel_bench.Bench(True, shutil.which("cc") or "gcc",
                                    str(tmp_path), shm)
        monkeypatch.setattr(bench, "count",
                            lambda size, full: 2000 if size == 64 else 50)
        monkeypatch.setattr(channel_bench.Bench, "memcpy",
                            lambda self, span: 1e9 if span == 65536 else 5e8)
        channel_bench.report(bench)
    lines = capsys.readouterr().out.splitlines()
    shapes = [re.sub(NUMBER, "N", re.sub(r" {2,}", " | ", line.strip()))
              for line in lines]
    assert shapes[0].startswith("channel bench: ")
    goal = r" \| (ok|BELOW GOAL) \((N|[0-9]+%|Nx)\)"
    ring_goal = (r" \| (ok|BELOW GOAL) \([0-9]+%; [0-9]+% of the ring "
                 r"memcpy, [0-9]+% of the handoff\)")
    expected = [
        "",
        "anchors (two processes, one write per message)",
        "C | Python",
        r"memcpy of 64 KiB blocks, one thread, cache-hot \(ratios use it\) \| "
        r"N GB/s \| -",
        r"memcpy of 64 KiB blocks round a 1022 KiB buffer \(the ring\) \| "
        r"N GB/s \| -",
        r"64 KiB blocks handed to another process through 1022 KiB, no "
        r"channel \| N GB/s \| -",
        "UNIX socket pair, 64 B | N M msg/s | N M msg/s",
        "pipe, 64 B | N M msg/s | N M msg/s",
        "UNIX socket pair, 64 KiB | N GB/s | N GB/s",
        "pipe, 64 KiB | N GB/s | N GB/s",
        "",
        "channel throughput, one way between two processes",
        "measured | goal",
        r"C, 64 B, ivch_send \(a publish each\) \| N M msg/s \| >= 10 M "
        "msg/s" + goal,
        r"C, 64 B, ivch_write \+ a publish per 64 \| N M msg/s \| >= 10 M "
        "msg/s" + goal,
        r"C, 64 KiB \| N GB/s \| >= 80% of cache-hot memcpy" + ring_goal,
        r"Python, 64 B, send_batch/recv_batch \| N M msg/s \| >= 5x the "
        "Python socket pair" + goal,
        r"Python, 64 KiB, recv_batch_into \| N GB/s \| >= 50% of cache-hot "
        "memcpy" + ring_goal,
        "",
        "64 KiB, one way, round by round (each round measures the three "
        "back to back; medians above)",
        "handoff, no channel | C channel | Python channel",
        r"round 1 \| N GB/s \([0-9]+%\) \| N GB/s \([0-9]+%\) \| "
        r"N GB/s \([0-9]+%\)",
        "",
        "latency, 64-byte ping-pong round trip",
        "median | p99",
        "C channel, polling | N µs | N µs",
        "C channel, doorbell (eventfd) | N µs | N µs",
        "C UNIX socket pair | N µs | N µs",
        "Python channel, polling | N µs | N µs",
        "Python channel, doorbell (ivshmem server) | N µs | N µs",
        "Python UNIX socket pair | N µs | N µs",
    ]
    assert len(shapes) == 1 + len(expected)
    for shape, pattern in zip(shapes[1:], expected, strict=True):
        if "\\|" in pattern:
            assert re.fullmatch(pattern, shape), (shape, pattern)
        else:
            assert shape == pattern


def test_the_handoff_anchor_runs(tmp_path):
    """The third anchor (no channel, a block copied in by one process
    and out by another) runs, and refuses a buffer smaller than a
    block."""
    compiler = find_compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        bench = channel_bench.Bench(True, compiler, str(tmp_path), shm)
    out = run([bench.c, "handoff", 65536, 65536 * 200, 4 * 65536])
    assert re.fullmatch(NUMBER + "\n", out) and float(out) > 0
    with pytest.raises(ChannelError) as caught:
        run([bench.c, "handoff", 65536, 65536, 4096])
    assert str(caught.value).startswith("failed (1): ")


def test_the_cpu_bench_prints_each_way(capsys):
    spec = importlib.util.spec_from_file_location(
        "channel_cpu", PROJECT / "bench" / "channel_cpu.py")
    channel_cpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(channel_cpu)
    assert channel_cpu.main(["--batches", "20", "--runs", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("CPU time per 64 KiB message, both sides in one "
                        "process, best of 2 runs of 20 batches of 4:")
    shapes = [re.sub(NUMBER, "N", re.sub(r" {2,}", " | ", line.strip()))
              for line in lines[1:]]
    assert shapes == ["send_batch of 4, recv_into each | N µs",
                      "send_batch of 4, recv_batch_into of 4 | N µs",
                      "the two slice copies alone, round the ring | N µs"]
