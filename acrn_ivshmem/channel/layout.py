"""The channel's on-memory format, version 1.0: offsets, sizes, checks.

``docs/channel-format.md`` is the specification; this module is its
Python transcription and the one place that knows the numbers. All
integers are little-endian. A region is::

    0x0000  header (256 bytes: magic, version, sizes, name, ring table,
            CRC-32)
    0x0100  peer 0's state slot   (128 bytes, written by peer 0 only)
    0x0180  peer 1's state slot   (128 bytes, written by peer 1 only)
    0x0200  ring 0 head           (8 bytes in 128, written by peer 0)
    0x0280  ring 0 tail           (written by peer 1)
    0x0300  ring 1 head           (written by peer 1)
    0x0380  ring 1 tail           (written by peer 0)
    0x1000  ring 0's data (peer 0 -> peer 1), then ring 1's

Nothing here touches shared memory: :func:`encode_header` makes bytes
and :func:`parse_header` checks bytes that were copied out.
"""

from __future__ import annotations

import binascii
import struct
import sys
from dataclasses import dataclass

from ..errors import quoted
from .errors import ChannelError, CorruptRegion

#: The first 8 bytes of a region that holds a channel.
MAGIC = b"IVSHMCHN"
#: Readers refuse another major version; a higher minor version only
#: adds fields in bytes that version 1.0 keeps zero and ignores.
VERSION_MAJOR = 1
VERSION_MINOR = 0
#: Bytes before the first ring: the header, the state table, the
#: counters and zero padding to a page.
HEADER_SIZE = 0x1000
#: The part of the header the CRC covers (the CRC is its last 4 bytes).
HEADER_BYTES = 0x100
PEERS = 2
NAME_SIZE = 64
#: One counter or state slot per block of this size, so that the two
#: peers never write the same cache line (128 bytes also keeps apart
#: the line pairs that Intel's adjacent-line prefetcher fetches).
LINE = 128
SLOT_OFFSETS = (0x100, 0x180)
#: (head, tail) of ring 0 (peer 0 -> 1) and ring 1 (peer 1 -> 0).
COUNTER_OFFSETS = ((0x200, 0x280), (0x300, 0x380))
#: Ring offsets and capacities are multiples of this.
RING_ALIGN = 64
MIN_RING = 256
MIN_REGION = HEADER_SIZE + 2 * MIN_RING

# Header fields: magic, major, minor, header size, region size, peers,
# flags, name, (offset, capacity) of each ring; then zeros to the CRC.
_FIELDS = struct.Struct("<8sHHIQII64sQQQQ")
_CRC = struct.Struct("<I")
_CRC_AT = HEADER_BYTES - _CRC.size

# The state slot of a peer: status (epoch << 8 | state), heartbeat,
# doorbell, waiting. Words of 8 bytes, each written in one store.
SLOT_STATUS, SLOT_HEARTBEAT, SLOT_DOORBELL, SLOT_WAITING = 0, 8, 16, 24
FREE, ATTACHED, DETACHED = 0, 1, 2
STATE_NAMES = {FREE: "free", ATTACHED: "attached", DETACHED: "detached"}
#: ``doorbell`` word: this bit, then the value for the BAR0 doorbell
#: register (ivshmem peer id << 16 | vector) in the low 32 bits.
DOORBELL_PRESENT = 1 << 32
#: ``waiting`` bits: blocked until its inbound ring has data / until
#: its outbound ring has room.
WAIT_DATA, WAIT_ROOM = 1, 2

#: A record: payload length and kind (4 bytes each), then the payload
#: padded with zeros to a multiple of 8.
RECORD = struct.Struct("<II")
RECORD_HEADER = RECORD.size
#: Record kinds: one message; skip to offset 0; a writer's new epoch
#: (payload: the epoch, 8 bytes); many messages (payload: their count,
#: 4 bytes, then that many 4-byte lengths, then the messages).
MESSAGE, WRAP, EPOCH, BATCH = 1, 2, 3, 4
EPOCH_PAYLOAD = struct.Struct("<Q")
BATCH_COUNT = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    """A checked region header.

    ``name`` is the region's name; ``region_size`` the bytes the channel
    uses from offset 0 (at most the mapping); ``rings`` the (offset,
    capacity) of ring 0 (peer 0 to peer 1) and ring 1; ``version``
    (major, minor).
    """

    name: str
    region_size: int
    rings: tuple[tuple[int, int], tuple[int, int]]
    version: tuple[int, int] = (VERSION_MAJOR, VERSION_MINOR)

    def max_message(self, ring: int) -> int:
        """The longest message ring ``ring`` carries (bytes)."""
        return max_message(self.rings[ring][1])


def max_message(capacity: int) -> int:
    """The longest message a ring of ``capacity`` bytes carries: half
    of it less a record header, so that a record and the wrap before it
    always fit in an empty ring."""
    return capacity // 2 - RECORD_HEADER


def record_size(length: int) -> int:
    """The ring bytes a message of ``length`` bytes takes."""
    return RECORD_HEADER + ((length + 7) & ~7)


def check_machine() -> None:
    """Refuse a CPU where this Python implementation is not safe.

    It relies on x86-64: one 8-byte store or load per counter
    (CPython's memoryview 'Q' item access), and total store order
    (docs/channel-format.md, "Memory ordering").
    """
    import platform

    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64") or sys.byteorder != "little" \
            or struct.calcsize("Q") != 8:
        raise ChannelError(
            f"the Python channel needs an x86-64 CPU (this is "
            f"{quoted(machine)}): it relies on its total store order; "
            "use the C header (ivshmem_channel.h) here")


def check_name(name: str) -> bytes:
    """``name`` as the header stores it (UTF-8), or ChannelError."""
    if not isinstance(name, str):
        raise ChannelError(f"region name {name!r} is not text")
    bad = next((char for char in name if ord(char) < 0x20
                or 0x7F <= ord(char) <= 0x9F), None)
    if bad is not None:
        raise ChannelError(f"region name {quoted(name)} has a control "
                           f"character (U+{ord(bad):04X})")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ChannelError(f"region name {quoted(name)} is not valid "
                           "UTF-8 text") from None
    if not 1 <= len(encoded) < NAME_SIZE:
        raise ChannelError(f"region name {quoted(name)} is {len(encoded)} "
                           f"bytes of UTF-8; give 1 to {NAME_SIZE - 1}")
    return encoded


def default_rings(region_size: int) -> tuple[tuple[int, int],
                                             tuple[int, int]]:
    """Two equal rings filling a region of ``region_size`` bytes."""
    if region_size < MIN_REGION:
        raise ChannelError(f"a region of {region_size} bytes is too small "
                           f"for a channel: give {MIN_REGION} or more")
    capacity = (region_size - HEADER_SIZE) // 2 // RING_ALIGN * RING_ALIGN
    return ((HEADER_SIZE, capacity), (HEADER_SIZE + capacity, capacity))


def encode_header(name: str, region_size: int,
                  rings: tuple[tuple[int, int], tuple[int, int]]
                  | None = None) -> bytes:
    """The 256 header bytes of a new region (magic included)."""
    encoded = check_name(name)
    if rings is None:
        rings = default_rings(region_size)
    _check_rings(rings, region_size, ChannelError)
    fields = _FIELDS.pack(
        MAGIC, VERSION_MAJOR, VERSION_MINOR, HEADER_SIZE, region_size,
        PEERS, 0, encoded, rings[0][0], rings[0][1], rings[1][0],
        rings[1][1])
    body = fields + bytes(_CRC_AT - len(fields))
    return body + _CRC.pack(binascii.crc32(body))


def parse_header(data: bytes, mapped: int, where: str) -> Header:
    """Check the first :data:`HEADER_BYTES` of a region of ``mapped``
    bytes; ``where`` names it in messages.

    Raises :class:`ChannelError` when there is no channel header (the
    magic is missing: a region never initialised, or another use of
    it), and :class:`CorruptRegion` when the header is broken.
    """
    if len(data) < HEADER_BYTES or mapped < MIN_REGION:
        raise ChannelError(f"{where}: {mapped} bytes is too small for a "
                           f"channel ({MIN_REGION} or more)")
    (magic, major, minor, header_size, region_size, peers, flags, name,
     *ring_words) = _FIELDS.unpack_from(data)
    if magic != MAGIC:
        raise ChannelError(f"{where}: no channel header (the first bytes "
                           f"are {magic.hex(' ')}, not "
                           f"{MAGIC.hex(' ')}); initialise it first")
    if major != VERSION_MAJOR:
        raise ChannelError(f"{where}: channel layout version {major}."
                           f"{minor}; this library reads "
                           f"{VERSION_MAJOR}.x")
    (crc,) = _CRC.unpack_from(data, _CRC_AT)
    if binascii.crc32(data[:_CRC_AT]) != crc:
        raise CorruptRegion(f"{where}: the channel header's CRC-32 does "
                            "not match its bytes")
    if header_size != HEADER_SIZE or peers != PEERS or flags:
        raise CorruptRegion(
            f"{where}: header size {header_size}, {peers} peers, flags "
            f"{flags:#x}; layout 1 has {HEADER_SIZE}, {PEERS}, 0")
    if not MIN_REGION <= region_size <= mapped:
        raise CorruptRegion(f"{where}: the header's region size "
                            f"{region_size} is not {MIN_REGION} to the "
                            f"{mapped} bytes mapped")
    rings = ((ring_words[0], ring_words[1]), (ring_words[2], ring_words[3]))
    _check_rings(rings, region_size, CorruptRegion, where)
    text, _, padding = name.partition(b"\0")
    try:
        decoded = text.decode("utf-8")
        check_name(decoded)
    except (UnicodeDecodeError, ChannelError):
        raise CorruptRegion(f"{where}: the header's name {text!r} is not "
                            "1 to 63 bytes of printable UTF-8") from None
    if padding.strip(b"\0"):
        raise CorruptRegion(f"{where}: bytes after the name's NUL are "
                            "not zero")
    return Header(decoded, region_size, rings, (major, minor))


def _check_rings(rings, region_size: int, error: type,
                 where: str = "") -> None:
    prefix = f"{where}: " if where else ""
    end = HEADER_SIZE
    for offset, capacity in sorted(rings):
        if (offset % RING_ALIGN or capacity % RING_ALIGN
                or capacity < MIN_RING or offset < end
                or offset + capacity > region_size):
            raise error(
                f"{prefix}ring at {offset:#x} of {capacity:#x} bytes: "
                f"rings are {RING_ALIGN}-byte aligned, {MIN_RING} bytes "
                f"or more, after {HEADER_SIZE:#x}, apart, and inside the "
                f"{region_size:#x} bytes of the region")
        end = offset + capacity
