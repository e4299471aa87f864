"""The channel's exceptions, in acrn-shm's one error family."""

from __future__ import annotations

from ..errors import AcrnShmError


class ChannelError(AcrnShmError):
    """A channel cannot be used: no header, a bad or corrupted region,
    a peer slot in use, a message too long, a doorbell that failed.

    The message is one line and names the region where one is known.
    """


class CorruptRegion(ChannelError):
    """The region's bytes break the format (docs/channel-format.md):
    a bad header, a counter that went back or too far, a bad record.

    Raised by every later call too: a channel stays broken once its
    peer has written something impossible.
    """


class ChannelTimeout(ChannelError, TimeoutError):
    """A send found the ring full, or a receive found it empty, until
    the deadline."""
