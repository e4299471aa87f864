"""A two-way message channel between peer 0 and peer 1 of a region.

Peer ``p`` writes ring ``p`` and reads ring ``1 - p``. Opening a
channel attaches this process as one peer (a new epoch in the state
table), resumes both rings where the counters stand, and starts the
writer's epoch with an EPOCH record, so that the reader sees exactly
where a restarted writer's messages begin.
"""

from __future__ import annotations

import os
import threading
import time

from ..errors import quoted
from . import peers
from .doorbell import Backoff, ServerDoorbell, full_fence, server_doorbell
from .errors import ChannelError, ChannelTimeout, CorruptRegion
from .layout import DOORBELL_PRESENT, WAIT_DATA, WAIT_ROOM, check_machine
from .peers import PeerInfo, Slot, Watch
from .guest_doorbell import guest_doorbell
from .region import Region, find_guest_device, init_region
from .ring import RingReader, RingWriter

__all__ = ["Channel", "connect", "open_file", "open_guest"]

#: The longest a doorbell wait sleeps before it looks at the counters
#: again, whatever the doorbell does (a lost or never-sent ring costs at
#: most this).
WAIT_CAP = 0.1


class Channel:
    """This process as peer ``peer`` (0 or 1) of the channel in
    ``region``.

    ``name``, when given, must be the region's name. ``doorbell``: a
    doorbell (:class:`ServerDoorbell`) or None to poll with
    ``backoff`` (a :class:`Backoff`). ``heartbeat``: seconds between
    heartbeats (a daemon thread; 0 for none, then call
    :meth:`heartbeat` yourself); ``liveness``: how long a peer's
    heartbeat may stand still before it is taken for dead; ``takeover``:
    attach even if another process seems to hold this peer. ``owned``:
    objects (region, doorbell) that :meth:`close` closes too.

    Attributes: ``name``, ``peer``, ``epoch`` (this side's),
    ``peer_epoch`` (the epoch of the writer of the messages the last
    receive returned), ``max_message`` (the most bytes a message this
    side sends may have: its own ring's limit), ``max_received`` (the
    most a received one may have: the other ring's limit; the two rings
    may differ in size).

    Raises :class:`ChannelError` (:class:`CorruptRegion` for a broken
    region) from every call; after a :class:`CorruptRegion` the channel
    refuses every further send and receive. One thread at a time may
    use a channel (besides its heartbeat thread).
    """

    def __init__(self, region: Region, peer: int, *, name: str | None = None,
                 doorbell=None, backoff: Backoff | None = None,
                 heartbeat: float = 0.1, liveness: float = 1.0,
                 takeover: bool = False, owned: tuple = ()):
        self._owned = owned
        self._closed = True
        check_machine()
        if peer not in (0, 1):
            raise ChannelError(f"peer {peer!r}: a channel has peers 0 "
                               "and 1")
        header = region.header()
        if name is not None and header.name != name:
            raise ChannelError(f"{region.where}: holds channel "
                               f"{quoted(header.name)}, not {quoted(name)}")
        self.name = header.name
        self.peer = peer
        self.where = f"channel {quoted(self.name)} ({region.where})"
        words = region.words
        self._words = words
        self._own = Slot(words, peer)
        self._other = Slot(words, 1 - peer)
        self._doorbell = doorbell
        self._backoff = backoff or Backoff()
        self._writer = RingWriter(region, peer, header.rings[peer],
                                  f"{self.where} ring {peer}")
        try:
            self._reader = RingReader(region, 1 - peer,
                                      header.rings[1 - peer],
                                      f"{self.where} ring {1 - peer}")
        except BaseException:
            self._writer.close()
            raise
        self.max_message = self._writer.max_message
        self.max_received = self._reader.max_message
        self._broken: CorruptRegion | None = None
        try:
            self.epoch = peers.attach(
                self._own, doorbell.word if doorbell is not None else 0,
                liveness=liveness, takeover=takeover, where=self.where)
        except BaseException:
            self._writer.close()
            self._reader.close()
            raise
        self._closed = False
        self._watch = Watch(self._other, liveness)
        self._stop = threading.Event()
        self._beater = None
        try:
            self._marker = not self._writer.write_epoch(self.epoch)
            self._writer.publish()
        except BaseException:
            self.close()
            raise
        if heartbeat > 0:
            self._beater = threading.Thread(
                target=self._beat, args=(heartbeat,), daemon=True,
                name=f"heartbeat of peer {peer}")
            self._beater.start()

    # -- sending -------------------------------------------------------

    def send(self, data, timeout: float | None = None) -> None:
        """Send one message (bytes-like, up to :attr:`max_message`),
        waiting for room until ``timeout`` seconds (None: forever).
        Raises :class:`ChannelTimeout` when it is still full then."""
        if self._broken is None and not self._closed and not self._marker:
            # The common case, a ring with room: one copy and a publish.
            writer = self._writer
            try:
                written = writer.write_one(data)
            except CorruptRegion as exc:
                self._broken = exc
                raise
            if written:
                writer.publish()
                if self._doorbell is not None:
                    self._notify(WAIT_DATA)
                return
        if not self.send_batch((data,), timeout):
            raise ChannelTimeout(f"{self.where}: ring {self.peer} still "
                                 f"full after {timeout} s")

    def send_batch(self, messages, timeout: float | None = None) -> int:
        """Send the messages of a list or tuple in order, publishing
        many per counter store; return how many were sent: all, or
        fewer when ``timeout`` seconds (None: forever; 0: only what
        fits now) passed while the ring was full. A message longer than
        :attr:`max_message` raises :class:`ChannelError`; the ones
        before it are sent."""
        self._usable()
        deadline = None if timeout is None else time.monotonic() + timeout
        writer = self._writer
        sent = 0
        try:
            while True:
                if self._marker:
                    self._marker = not writer.write_epoch(self.epoch)
                try:
                    if not self._marker:
                        sent = writer.write(messages, sent)
                finally:  # what was written before an error is sent
                    if writer.publish():
                        self._notify(WAIT_DATA)
                if sent == len(messages):
                    return sent
                if not self._wait(WAIT_ROOM, deadline, writer.refresh):
                    return sent
        except CorruptRegion as exc:
            self._broken = exc
            raise

    def reserve(self, size: int, timeout: float | None = None) -> memoryview:
        """Room in the ring for a message of up to ``size`` bytes: a
        writable memoryview to write its bytes into (``readinto``,
        ``recv_into``, slice assignment), waiting for room until
        ``timeout`` seconds (None: forever). :meth:`commit` sends what
        was written; until then nothing else can be sent. The message is
        never copied. Raises :class:`ChannelTimeout` when the ring stays
        full, :class:`ChannelError` for a size above
        :attr:`max_message`."""
        self._usable()
        deadline = None if timeout is None else time.monotonic() + timeout
        writer = self._writer
        try:
            while True:
                if self._marker:
                    self._marker = not writer.write_epoch(self.epoch)
                view = None if self._marker else writer.reserve(size)
                if view is not None:
                    return view
                if not self._wait(WAIT_ROOM, deadline, writer.refresh):
                    raise ChannelTimeout(
                        f"{self.where}: ring {self.peer} still full after "
                        f"{timeout} s")
        except CorruptRegion as exc:
            self._broken = exc
            raise

    def commit(self, length: int) -> None:
        """Send the first ``length`` bytes written into the room of
        :meth:`reserve` as one message (the view it gave is released)."""
        self._usable()
        self._writer.commit(length)
        if self._writer.publish():
            self._notify(WAIT_DATA)

    # -- receiving -----------------------------------------------------

    def recv(self, timeout: float | None = None) -> bytes:
        """One message, waiting until ``timeout`` seconds (None:
        forever). Raises :class:`ChannelTimeout` when none came."""
        messages = self.recv_batch(1, timeout)
        if not messages:
            raise ChannelTimeout(f"{self.where}: no message in "
                                 f"{timeout} s")
        return messages[0]

    def recv_batch(self, max_messages: int = 1024,
                   timeout: float | None = None, *,
                   release: bool = True) -> list[bytes]:
        """Up to ``max_messages`` messages: those published, as soon as
        there is one, or [] after ``timeout`` seconds (None: forever; 0:
        do not wait). All come from one writer epoch,
        :attr:`peer_epoch`.

        With ``release=False`` their room stays taken until
        :meth:`release` (or a later receive that releases): a process
        that dies before then leaves them to be read again by the next
        one (at least once, instead of at most once). Room goes back a
        record at a time: when ``max_messages`` cuts a BATCH record, the
        part returned comes again to a receiver that takes over before
        the rest was returned, even after a release.
        """
        self._usable()
        if max_messages < 1:
            raise ChannelError(f"max_messages {max_messages!r}: give 1 or "
                               "more")
        deadline = None if timeout is None else time.monotonic() + timeout
        reader = self._reader
        try:
            while True:
                found = reader.read(max_messages) if reader.poll() else []
                if release:
                    self.release()
                if found:
                    return found
                if reader.poll():
                    continue  # an EPOCH or WRAP record was read
                if not self._wait(WAIT_DATA, deadline, reader.poll):
                    return []
        except CorruptRegion as exc:
            self._broken = exc
            raise

    def recv_into(self, buffer, timeout: float | None = None, *,
                  release: bool = True) -> int:
        """Copy one message into ``buffer`` (a writable bytes-like
        object, such as a bytearray or a memoryview) and return its
        length, waiting until ``timeout`` seconds (None: forever).

        The copy goes from the ring straight into ``buffer``: no bytes
        object is made, which is what large messages gain from. Raises
        :class:`ChannelTimeout` when none came, :class:`ChannelError`
        when the message is longer than ``buffer`` (it stays: a later
        receive returns it), TypeError for a read-only buffer.
        ``release`` as in :meth:`recv_batch`."""
        view = self._writable(buffer, "recv_into")
        # The same wait loop as recv_batch and recv_batch_into, written
        # out: a shared helper taking the read as a function cost 0.5 us
        # of a 64 KiB message's 7 us (bench/channel_cpu.py).
        deadline = None if timeout is None else time.monotonic() + timeout
        reader = self._reader
        try:
            while True:
                # The head is loaded only once the records seen so far
                # are read: while the writer streams, this side does not
                # pull the writer's counter line across for each message.
                size = reader.read_into(view)
                if release and reader.release():
                    self._notify(WAIT_ROOM)
                if size is not None:
                    return size
                if reader.poll():
                    continue  # published since, or an EPOCH or WRAP read
                if not self._wait(WAIT_DATA, deadline, reader.poll):
                    raise ChannelTimeout(f"{self.where}: no message in "
                                         f"{timeout} s")
        except CorruptRegion as exc:
            self._broken = exc
            raise

    def recv_batch_into(self, buffer, max_messages: int = 1024,
                        timeout: float | None = None, *,
                        release: bool = True) -> list[int]:
        """Copy up to ``max_messages`` messages into ``buffer`` (a
        writable bytes-like object) back to back, from offset 0, and
        return their lengths: as many as are published and fit, as soon
        as there is one, or [] after ``timeout`` seconds (None: forever;
        0: do not wait). All come from one writer epoch,
        :attr:`peer_epoch`.

        Each message is copied once, from the ring into ``buffer``, and
        the loop over them runs in one call: the form for a stream of
        large messages. A first message longer than ``buffer`` raises
        :class:`ChannelError` (it stays: a later receive returns it);
        TypeError for a read-only buffer. ``release`` as in
        :meth:`recv_batch`."""
        view = self._writable(buffer, "recv_batch_into")
        if max_messages < 1:
            raise ChannelError(f"max_messages {max_messages!r}: give 1 or "
                               "more")
        deadline = None if timeout is None else time.monotonic() + timeout
        reader = self._reader
        try:
            while True:
                sizes = reader.read_batch_into(view, max_messages)
                if release and reader.release():
                    self._notify(WAIT_ROOM)
                if sizes:
                    return sizes
                if reader.poll():
                    continue  # published since, or an EPOCH or WRAP read
                if not self._wait(WAIT_DATA, deadline, reader.poll):
                    return []
        except CorruptRegion as exc:
            self._broken = exc
            raise

    def _writable(self, buffer, call: str) -> memoryview:
        """A flat byte view of a buffer to receive into (the channel
        checked first)."""
        if self._closed or self._broken is not None:
            self._usable()
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError(f"{call} needs a writable buffer")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return view

    def release(self) -> None:
        """Give back the room of every message received so far."""
        self._usable()
        if self._reader.release():
            self._notify(WAIT_ROOM)

    @property
    def doorbell(self):
        """The doorbell this side rings and waits on
        (:class:`ServerDoorbell`, :class:`GuestDoorbell`), or None when
        it polls."""
        return self._doorbell

    @property
    def peer_epoch(self) -> int:
        """The epoch of the peer that wrote the messages last returned
        (0 before its first EPOCH record was read)."""
        return self._reader.epoch

    # -- peers ---------------------------------------------------------

    @property
    def peer_info(self) -> PeerInfo:
        """The other peer as the state table shows it now."""
        self._usable()
        return self._watch.info()

    def heartbeat(self) -> None:
        """Raise this peer's heartbeat (with ``heartbeat=0``, call this
        more often than the other side's liveness time)."""
        self._usable()
        at = self._own.heartbeat
        self._words[at] = (self._words[at] + 1) & (2 ** 64 - 1)

    def _beat(self, seconds: float) -> None:
        words, at = self._words, self._own.heartbeat
        while not self._stop.wait(seconds):
            words[at] = (words[at] + 1) & (2 ** 64 - 1)

    # -- waiting -------------------------------------------------------

    def _notify(self, bit: int) -> None:
        """Ring the other peer if it waits for ``bit``."""
        if self._doorbell is None:
            return
        full_fence()  # the counter store before the load of `waiting`
        other = self._other
        if self._words[other.waiting] & bit:
            word = self._words[other.doorbell]
            if word & DOORBELL_PRESENT:
                self._doorbell.ring(word)

    def _wait(self, bit: int, deadline: float | None, ready) -> bool:
        """Wait until ``ready()`` (True) or the deadline (False)."""
        backoff = self._backoff
        backoff.reset()
        words, own = self._words, self._own
        while True:
            if ready():
                return True
            remaining = (None if deadline is None
                         else deadline - time.monotonic())
            if remaining is not None and remaining <= 0:
                return False
            if (self._doorbell is None or not
                    self._words[self._other.doorbell] & DOORBELL_PRESENT):
                backoff.pause(remaining)
                continue
            # Both sides have doorbells: say we wait, then look again, so
            # that a ring is sent for anything published after the look.
            words[own.waiting] = bit
            full_fence()
            try:
                if ready():
                    return True
                self._doorbell.wait(WAIT_CAP if remaining is None
                                    else min(WAIT_CAP, remaining))
            finally:
                words[own.waiting] = 0

    # -- life cycle ----------------------------------------------------

    def _usable(self) -> None:
        if self._closed:
            raise ChannelError(f"{self.where}: the channel is closed")
        if self._broken is not None:
            raise CorruptRegion(str(self._broken))

    def close(self) -> None:
        """Detach (state ``detached``: the other side sees a clean
        leave), stop the heartbeat, and close what the channel owns.
        Messages received without release stay unreleased."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._beater is not None:
            self._beater.join()
        peers.detach(self._own, self.epoch)
        self._writer.close()
        self._reader.close()
        for thing in self._owned:
            thing.close()
        self._owned = ()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _opened(region: Region, peer: int, doorbell, **options) -> Channel:
    """A channel that owns ``region`` and ``doorbell``; both are closed
    if it cannot be opened."""
    owned = tuple(thing for thing in (doorbell, region) if thing is not None)
    try:
        return Channel(region, peer, doorbell=doorbell, owned=owned,
                       **options)
    except BaseException:
        for thing in owned:
            thing.close()
        raise


def open_file(path: str | os.PathLike, peer: int, *,
              server: str | None = None, **options) -> Channel:
    """Peer ``peer`` of the channel in the host file ``path`` (a QEMU
    ``memory-backend-file``, e.g. ``/dev/shm/NAME``).

    With ``server`` (an ivshmem server's socket that serves this same
    file), ring and wait on its doorbells; when it is not there, poll,
    after one warning line. ``options`` go to :class:`Channel`.
    """
    region = Region.open_file(path)
    try:
        bell = server_doorbell(server)
        if bell is not None:
            _same_file(bell, path)
    except BaseException:
        region.close()
        raise
    return _opened(region, peer, bell, **options)


def _same_file(bell: ServerDoorbell, path) -> None:
    served = os.fstat(bell.shm_fd)
    mine = os.stat(path)
    if (served.st_dev, served.st_ino) != (mine.st_dev, mine.st_ino):
        bell.close()
        raise ChannelError(f"{bell.where} serves other memory than "
                           f"{quoted(os.fspath(path))}")


def connect(socket_path: str, peer: int, *, init: str | None = None,
            **options) -> Channel:
    """Peer ``peer`` of the channel in an ivshmem server's memory, with
    its doorbells.

    ``init``: first write a channel header of that name (for a server
    whose memory is a fresh memfd; one side only). ``options`` go to
    :class:`Channel`.
    """
    bell = ServerDoorbell.connect(socket_path)
    try:
        region = Region.from_fd(bell.shm_fd, os.fstat(bell.shm_fd).st_size,
                                bell.where)
    except BaseException:
        bell.close()
        raise
    try:
        if init is not None:
            init_region(region, init)
    except BaseException:
        region.close()
        bell.close()
        raise
    return _opened(region, peer, bell, **options)


def open_guest(name: str, peer: int, *, sysfs: str = "/sys",
               doorbell: str = "auto", dev: str = "/dev",
               **options) -> Channel:
    """Inside a guest: peer ``peer`` of the channel named ``name``,
    found by scanning the ivshmem devices' BAR2 headers.

    ``doorbell``: ``"auto"`` rings and waits through the device's
    doorbell (:class:`~acrn_ivshmem.channel.GuestDoorbell`: MSI-X,
    vfio-pci, an IOMMU, root) when it can, else polls after one warning
    line naming what is missing; ``"on"`` raises that as a
    :class:`ChannelError`; ``"off"`` polls. ``dev`` is where ``vfio/``
    is. ``options`` go to :class:`Channel`.
    """
    return open_device(find_guest_device(name, sysfs), peer,
                       doorbell=doorbell, dev=dev, name=name, **options)


def open_device(device, peer: int, *, doorbell: str = "auto",
                dev: str = "/dev", **options) -> Channel:
    """Inside a guest: peer ``peer`` of the channel in ``device`` (an
    ivshmem device of :func:`acrn_ivshmem.guest.find_devices`, say the
    one ``select_device`` picks by PCI address or region id).
    ``doorbell``, ``dev`` and ``options`` as in :func:`open_guest`."""
    region = Region.from_device(device)
    try:
        bell = guest_doorbell(device, doorbell, dev=dev)
    except BaseException:
        region.close()
        raise
    return _opened(region, peer, bell, **options)
