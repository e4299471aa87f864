"""The per-peer state table: who is attached, since when, and alive.

Each peer owns one slot of four 8-byte words (docs/channel-format.md,
"State table") and is the only one to write it:

- ``status``: ``epoch << 8 | state``, so that a reader gets the state
  and the epoch of one moment in one load. The epoch counts the peer's
  attaches (its restarts): 1 for the first.
- ``heartbeat``: a count the peer raises while it is attached. The
  other side calls it dead when the count has not moved for a while;
  counting, not time, needs no clock shared between VMs.
- ``doorbell``: how to interrupt the peer, or 0 (poll it).
- ``waiting``: non-zero while the peer blocks on its doorbell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import ChannelError
from .layout import (
    ATTACHED, DETACHED, SLOT_DOORBELL, SLOT_HEARTBEAT, SLOT_OFFSETS,
    SLOT_STATUS, SLOT_WAITING, STATE_NAMES,
)


@dataclass(frozen=True)
class PeerInfo:
    """What the state table says of a peer.

    ``state`` is ``"free"`` (never attached since the region was
    initialised), ``"attached"``, ``"detached"`` (left cleanly) or
    ``"unknown(N)"``; ``epoch`` its attach count; ``alive`` whether its
    heartbeat moved within the liveness time (False unless attached).
    """

    peer: int
    state: str
    epoch: int
    alive: bool


class Slot:
    """The word indexes of one peer's slot in the region's words."""

    def __init__(self, words, peer: int):
        base = SLOT_OFFSETS[peer] // 8
        self.words = words
        self.peer = peer
        self.status = base + SLOT_STATUS // 8
        self.heartbeat = base + SLOT_HEARTBEAT // 8
        self.doorbell = base + SLOT_DOORBELL // 8
        self.waiting = base + SLOT_WAITING // 8

    def read_status(self) -> tuple[int, int]:
        """(state, epoch), from one load."""
        status = self.words[self.status]
        return status & 0xFF, status >> 8


class Watch:
    """Follows another peer's heartbeat to tell whether it is alive.

    ``liveness`` is how long (seconds of this side's clock) the count
    may stay still before the peer is taken for dead.
    """

    def __init__(self, slot: Slot, liveness: float):
        self.slot = slot
        self.liveness = liveness
        self._beat = slot.words[slot.heartbeat]
        self._moved = time.monotonic()

    def info(self) -> PeerInfo:
        """The peer's state now."""
        state, epoch = self.slot.read_status()
        beat = self.slot.words[self.slot.heartbeat]
        now = time.monotonic()
        if beat != self._beat:
            self._beat = beat
            self._moved = now
        alive = state == ATTACHED and now - self._moved < self.liveness
        return PeerInfo(self.slot.peer,
                        STATE_NAMES.get(state, f"unknown({state})"),
                        epoch, alive)


def attach(slot: Slot, doorbell: int, *, liveness: float, takeover: bool,
           where: str) -> int:
    """Take ``slot`` for this process; return its new epoch.

    A slot left attached is watched for ``liveness`` seconds first: a
    heartbeat that moves means another process holds this peer
    (:class:`ChannelError`), unless ``takeover``. The new status is
    stored last, after the other words.
    """
    state, epoch = slot.read_status()
    if state == ATTACHED and not takeover:
        before = slot.words[slot.heartbeat]
        deadline = time.monotonic() + liveness
        while time.monotonic() < deadline:
            time.sleep(min(0.01, liveness))
            if slot.words[slot.heartbeat] != before:
                raise ChannelError(
                    f"{where}: peer {slot.peer} is in use by another "
                    f"process (epoch {epoch}, heartbeat moving); stop it, "
                    "or take it over")
    epoch += 1
    if epoch >= 1 << 56:
        raise ChannelError(f"{where}: peer {slot.peer} has used every "
                           "epoch; initialise the region again")
    words = slot.words
    words[slot.waiting] = 0
    words[slot.doorbell] = doorbell
    words[slot.heartbeat] = (words[slot.heartbeat] + 1) & (2 ** 64 - 1)
    words[slot.status] = epoch << 8 | ATTACHED
    return epoch


def detach(slot: Slot, epoch: int) -> None:
    """Mark the peer as left cleanly (keeping its epoch)."""
    slot.words[slot.waiting] = 0
    slot.words[slot.status] = epoch << 8 | DETACHED

