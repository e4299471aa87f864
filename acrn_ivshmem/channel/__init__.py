"""Message channels over ivshmem shared memory (runtime side).

A region (QEMU backing file, ivshmem server memory, a guest's BAR2)
starts with a small named header and holds two single-producer,
single-consumer rings of length-prefixed messages, one per direction,
and a state table of the two peers. ``docs/channel-format.md`` is the
format; ``docs/channel.md`` the guide. Standard library only: nothing
here imports the configuration side of acrn_ivshmem (lxml, the model,
the rules), so that it runs in a minimal guest::

    from acrn_ivshmem import channel

    region = channel.Region.open_file("/dev/shm/ring", create_size=1 << 20)
    channel.init_region(region, "ring")
    region.close()
    with channel.open_file("/dev/shm/ring", peer=0) as chan:
        chan.send(b"hello")
        reply = chan.recv(timeout=5)

:func:`c_header` is the same format in C99 (``ivshmem_channel.h``).
"""

from __future__ import annotations

import importlib.resources
import os

from .channel import (WAIT_CAP, Channel, connect, open_device, open_file,
                      open_guest)
from .doorbell import Backoff, ServerDoorbell, full_fence
from .errors import ChannelError, ChannelTimeout, CorruptRegion
from .guest_doorbell import GuestDoorbell, guest_doorbell
from .layout import Header, max_message
from .peers import PeerInfo
from .region import (
    Region, find_guest_device, find_guest_region, init_region,
)
from .status import PeerStatus, RegionStatus, RingStatus, region_status

__all__ = [
    "Backoff", "C_HEADER", "Channel", "ChannelError", "ChannelTimeout",
    "CorruptRegion", "GuestDoorbell", "Header", "PeerInfo", "PeerStatus",
    "Region", "RegionStatus", "RingStatus", "ServerDoorbell", "WAIT_CAP",
    "c_header", "connect", "find_guest_device", "find_guest_region",
    "full_fence", "guest_doorbell", "init_region", "max_message",
    "open_device", "open_file", "open_guest", "region_status",
    "write_c_header",
]

#: The file name of the C implementation shipped in this package.
C_HEADER = "ivshmem_channel.h"


def c_header() -> str:
    """The text of the header-only C99 implementation."""
    return importlib.resources.files(__package__).joinpath(
        C_HEADER).read_text(encoding="utf-8")


def write_c_header(folder: str | os.PathLike) -> str:
    """Write :data:`C_HEADER` into ``folder`` (which must exist); return
    its path. Raises :class:`ChannelError`."""
    path = os.path.join(os.fspath(folder), C_HEADER)
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(c_header())
    except OSError as exc:
        raise ChannelError(f"{path}: cannot write: {exc.strerror}") from None
    return path
