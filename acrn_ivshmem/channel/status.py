"""A snapshot of a channel region: its header, both peers and both rings.

:func:`region_status` reads, without attaching, what
``acrn-shm channel stat`` shows: the checked header, each peer's state
slot (state, epoch, heartbeat count, doorbell, what it waits for) and
each ring's counters and fill. Every word is read in one 8-byte load,
as a peer would; nothing is written, so a status can be taken while
both peers run.

A heartbeat is a count, not a time stamp (docs/channel-format.md,
"State table"), so its age can only be bounded by watching it: with
``watch`` seconds, each attached peer's count is followed until it
moves (its last beat is then at most that long ago) or the time is up
(then at least that long ago).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import layout
from .region import Region

__all__ = ["PeerStatus", "RegionStatus", "RingStatus", "region_status"]


@dataclass(frozen=True)
class PeerStatus:
    """One state slot.

    ``state`` is ``free``, ``attached``, ``detached`` or ``unknown(N)``;
    ``doorbell`` the slot's doorbell word (0: the peer polls);
    ``waiting`` the bits of what it blocks on (1 data, 2 room).
    ``age_at_most`` / ``age_at_least``: seconds since its last heartbeat,
    as far as watching it could tell (both None when not watched).
    """

    peer: int
    state: str
    epoch: int
    heartbeat: int
    doorbell: int
    waiting: int
    age_at_most: float | None = None
    age_at_least: float | None = None

    @property
    def alive(self) -> bool | None:
        """Attached with a moving heartbeat (None: not watched)."""
        if self.state != "attached":
            return False
        if self.age_at_most is None and self.age_at_least is None:
            return None
        return self.age_at_most is not None

    def as_dict(self) -> dict:
        """The JSON form (``acrn-shm channel stat -f json``)."""
        bell = None
        if self.doorbell & layout.DOORBELL_PRESENT:
            bell = {"ivshmem_peer": self.doorbell >> 16 & 0xFFFF,
                    "vector": self.doorbell & 0xFFFF}
        return {"peer": self.peer, "state": self.state, "epoch": self.epoch,
                "heartbeat": self.heartbeat,
                "heartbeat_age": (
                    {"at_most": self.age_at_most}
                    if self.age_at_most is not None
                    else {"at_least": self.age_at_least}
                    if self.age_at_least is not None else None),
                "alive": self.alive, "doorbell": bell,
                "waiting": [what for bit, what in ((layout.WAIT_DATA, "data"),
                                                   (layout.WAIT_ROOM, "room"))
                            if self.waiting & bit]}


@dataclass(frozen=True)
class RingStatus:
    """One ring: ``writer`` sends into it, the other peer reads.

    ``used`` is ``head - tail`` (bytes published, not yet released), or
    None when the counters break the format (``valid`` False).
    """

    ring: int
    offset: int
    capacity: int
    head: int
    tail: int

    @property
    def writer(self) -> int:
        """The peer that writes this ring (ring ``p``: peer ``p``)."""
        return self.ring

    @property
    def valid(self) -> bool:
        """Counters as the format allows them."""
        return (not self.head & 7 and not self.tail & 7
                and self.tail <= self.head <= self.tail + self.capacity)

    @property
    def used(self) -> int | None:
        """Bytes taken by unreleased records (None if not valid)."""
        return self.head - self.tail if self.valid else None

    @property
    def max_message(self) -> int:
        """The longest message this ring carries."""
        return layout.max_message(self.capacity)

    def as_dict(self) -> dict:
        """The JSON form."""
        return {"ring": self.ring, "from_peer": self.writer,
                "to_peer": 1 - self.writer, "offset": self.offset,
                "capacity": self.capacity, "max_message": self.max_message,
                "head": self.head, "tail": self.tail, "used": self.used,
                "valid": self.valid}


@dataclass(frozen=True)
class RegionStatus:
    """A region's header, peers and rings at one moment."""

    where: str
    mapped: int
    header: layout.Header
    peers: tuple[PeerStatus, PeerStatus]
    rings: tuple[RingStatus, RingStatus]

    def as_dict(self) -> dict:
        """The JSON form."""
        major, minor = self.header.version
        return {"region": self.where, "name": self.header.name,
                "version": f"{major}.{minor}",
                "region_size": self.header.region_size,
                "mapped": self.mapped,
                "peers": [peer.as_dict() for peer in self.peers],
                "rings": [ring.as_dict() for ring in self.rings]}


def _peer(words, peer: int) -> PeerStatus:
    base = layout.SLOT_OFFSETS[peer] // 8
    status = words[base + layout.SLOT_STATUS // 8]
    state = status & 0xFF
    return PeerStatus(
        peer, layout.STATE_NAMES.get(state, f"unknown({state})"),
        status >> 8, words[base + layout.SLOT_HEARTBEAT // 8],
        words[base + layout.SLOT_DOORBELL // 8],
        words[base + layout.SLOT_WAITING // 8])


def region_status(region: Region, watch: float = 0.0,
                  step: float = 0.005) -> RegionStatus:
    """The status of the channel in ``region`` (its header checked:
    raises :class:`~acrn_ivshmem.channel.ChannelError` without one).

    ``watch``: follow attached peers' heartbeats for up to that many
    seconds (0: do not), polling every ``step`` seconds.
    """
    header = region.header()
    words = region.words
    peers = [_peer(words, peer) for peer in (0, 1)]
    rings = []
    for index, (offset, capacity) in enumerate(header.rings):
        head_at, tail_at = layout.COUNTER_OFFSETS[index]
        head = words[head_at // 8]
        tail = words[tail_at // 8]
        rings.append(RingStatus(index, offset, capacity, head, tail))
    if watch > 0:
        peers = _watch(words, peers, watch, step)
    return RegionStatus(region.where, region.size, header, tuple(peers),
                        tuple(rings))


def _watch(words, peers: list[PeerStatus], watch: float,
           step: float) -> list[PeerStatus]:
    """Bound each attached peer's heartbeat age by watching its count."""
    watched = {peer.peer: peer.heartbeat for peer in peers
               if peer.state == "attached"}
    moved: dict[int, float] = {}
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        for index, beat in watched.items():
            if index not in moved and words[
                    layout.SLOT_OFFSETS[index] // 8
                    + layout.SLOT_HEARTBEAT // 8] != beat:
                moved[index] = elapsed
        if len(moved) == len(watched) or elapsed >= watch:
            break
        time.sleep(min(step, watch - elapsed))
    result = []
    for peer in peers:
        if peer.peer in moved:
            peer = PeerStatus(peer.peer, peer.state, peer.epoch,
                              peer.heartbeat, peer.doorbell, peer.waiting,
                              age_at_most=round(moved[peer.peer], 3))
        elif peer.peer in watched:
            peer = PeerStatus(peer.peer, peer.state, peer.epoch,
                              peer.heartbeat, peer.doorbell, peer.waiting,
                              age_at_least=watch)
        result.append(peer)
    return result
