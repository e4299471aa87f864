"""Stress: two processes, both directions at once, kill -9 and restart.

``tests/test_channel_stress/peer.py`` is one side: it sends numbered
messages of random sizes (1 byte to a quarter of the ring) and checks
every message of the other side byte for byte (number, epoch, CRC-32),
its first one after a restart against what it had released. This test
starts both, kills either at random moments with SIGKILL and restarts
it, then lets both finish: nothing may be lost, repeated or garbled
within a writer's epoch, and every restart must be seen.

The suite runs a small count; ``ACRN_SHM_STRESS_MESSAGES`` (messages
per writer epoch, default 3000) and ``ACRN_SHM_STRESS_KILLS`` (default
4) scale it, e.g. 10000000 and 8 for the full run.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from acrn_ivshmem.channel import Region, init_region

PEER = Path(__file__).parent / "test_channel_stress" / "peer.py"
COUNT = int(os.environ.get("ACRN_SHM_STRESS_MESSAGES", "3000"))
KILLS = int(os.environ.get("ACRN_SHM_STRESS_KILLS", "4"))
SEED = int(os.environ.get("ACRN_SHM_STRESS_SEED", "2026"))
#: A small region, so that the rings wrap all the time: rings of 6 KiB.
REGION = 16 * 1024


class Side:
    """The current process of one peer and what its killed ones left."""

    def __init__(self, peer: int, argv: list[str]):
        self.peer = peer
        self.argv = argv
        self.killed = 0
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        line = self.process.stdout.readline()
        assert line.startswith("attached "), (line, self.stderr())
        self.epoch = int(line.split()[1])

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.poll() is not \
            None else ""

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(30)
        # Killed by us, not ended by a failed check before that.
        assert code == -signal.SIGKILL, (code, self.process.stderr.read())
        self.process.stdout.close()
        self.process.stderr.close()
        self.killed += 1
        self.start()

    def finish(self, seconds: float) -> dict:
        out, err = self.process.communicate(timeout=seconds)
        assert (self.process.returncode, err) == (0, ""), err
        return json.loads(out)


def test_kill_and_restart_either_side(tmp_path):
    path = tmp_path / "region"
    with Region.open_file(path, create_size=REGION) as made:
        init_region(made, "stress")
    state_path = tmp_path / "state"
    state_path.write_bytes(bytes(4096))
    sides = [Side(peer, [sys.executable, str(PEER), str(path), str(peer),
                         str(COUNT), str(SEED), str(state_path)])
             for peer in (0, 1)]
    rng = random.Random(SEED)
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 0.6))
            rng.choice(sides).kill()
        with open(state_path, "r+b") as file:
            state = mmap.mmap(file.fileno(), 4096)
            state[16:24] = (1).to_bytes(8, "little")  # no more kills
            state.close()
        results = [side.finish(600 + COUNT / 1000) for side in sides]
    finally:
        for side in sides:
            side.process.kill()
            side.process.wait()
            side.process.stdout.close()
            side.process.stderr.close()
    seconds = time.monotonic() - started
    for side, result, other in zip(sides, results, reversed(sides),
                                   strict=True):
        # Each side's epoch counts its restarts; the other side read its
        # last epoch to the end and saw it start (its EPOCH record).
        assert result["epoch"] == side.epoch == side.killed + 1
        assert result["sent"] == COUNT
        assert other.epoch in result["reader_epochs_seen"]
    for result, other_result in zip(results, reversed(results), strict=True):
        if other_result["writer_epochs_seen"]:
            assert other_result["writer_epochs_seen"][-1] == result["epoch"]
    assert sum(side.killed for side in sides) == KILLS
    print(f"\nstress: {COUNT} messages per epoch, {KILLS} kills, "
          f"{seconds:.1f} s: " + json.dumps(results))
