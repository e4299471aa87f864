"""One single-producer, single-consumer ring of records.

The writer owns ``head``, the reader owns ``tail``: each counts the
bytes written (read) since the region was initialised and only grows.
A record starts at ``counter % capacity``; records never straddle the
end of the ring (a WRAP record sends the reader to offset 0 instead).
A BATCH record carries many messages behind one table of lengths, so
that Python moves them with a few copies instead of a loop per message.

Ordering (docs/channel-format.md, "Memory ordering"): the writer copies
a record's bytes, *then* stores ``head``; the reader loads ``head``,
*then* reads the records below it, *then* stores ``tail``. Each counter
is one aligned 8-byte store or load through a ``'Q'`` memoryview, so it
is never torn; x86-64 keeps stores in order with stores and loads with
loads, so a reader that sees a head sees every byte below it. The store
of ``head`` is the commit point: a writer killed before it leaves
bytes that no reader looks at, and the next writer overwrites them.

The reader trusts nothing it loads: a counter that goes back or beyond
the ring, and a record with a bad kind or length, raise
:class:`CorruptRegion` before any byte outside the published records
is read. Every record read advances ``tail`` by 8 bytes or more, so a
read ends after at most ``capacity / 8`` records.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from itertools import accumulate, islice, pairwise, repeat
from operator import add

from .errors import ChannelError, CorruptRegion
from .layout import (
    BATCH, BATCH_COUNT, COUNTER_OFFSETS, EPOCH, EPOCH_PAYLOAD, MESSAGE, RECORD,
    RECORD_HEADER, WRAP, max_message, record_size,
)

_PADS = tuple(bytes(count) for count in range(8))
_WRAP = RECORD.pack(0, WRAP)
#: A MESSAGE record's header as a little-endian word, less its length.
_MESSAGE_KIND = MESSAGE << 32
#: Messages of this size or more go alone, in a MESSAGE record copied
#: straight between the caller's bytes and the ring.
_BIG = 4096
#: The reader copies runs of small MESSAGE records out in spans of this
#: size, then slices them.
_SPAN = 65536
#: The most messages one BATCH record takes.
_RUN = 65536
if array("I").itemsize != 4:  # pragma: no cover - no such Linux target
    raise ImportError("array('I') is not 4 bytes here")


class _Ring:
    """What a writer and a reader of ring ``index`` share."""

    def __init__(self, region, index: int, ring: tuple[int, int],
                 name: str):
        offset, capacity = ring
        self.name = name
        self.capacity = capacity
        self.max_message = max_message(capacity)
        self._data = region.view[offset:offset + capacity]
        #: The ring as 8-byte words: a record header (length, then kind)
        #: read or written as one word, with no tuple or bytes made.
        self._headers = self._data.cast("Q")
        self._words = region.words
        head_at, tail_at = COUNTER_OFFSETS[index]
        self._head_at, self._tail_at = head_at // 8, tail_at // 8

    def _corrupt(self, what: str) -> CorruptRegion:
        return CorruptRegion(f"{self.name}: {what}")

    def _check_counters(self, head: int, tail: int) -> None:
        """At opening: refuse counters that break the format (and drop
        the view of the region first)."""
        if (head & 7 or tail & 7 or tail > head
                or head - tail > self.capacity):
            self.close()
            raise self._corrupt(
                f"head {head} and tail {tail} are not multiples of 8 "
                f"with tail <= head <= tail + {self.capacity}")

    def close(self) -> None:
        """Drop the views of the region (before it is unmapped)."""
        self._headers.release()
        self._data.release()


class RingWriter(_Ring):
    """Writes records into a ring and publishes them.

    :meth:`write` copies as many messages as fit and returns how many;
    :meth:`publish` makes them visible. The writer resumes at the
    ``head`` found in memory: a restarted writer loses nothing that was
    published and overwrites what was not.
    """

    def __init__(self, region, index: int, ring: tuple[int, int],
                 name: str):
        super().__init__(region, index, ring, name)
        #: (offset, size, view) of the room :meth:`reserve` gave, until
        #: :meth:`commit`.
        self._reserved: tuple[int, int, memoryview] | None = None
        self._head = self._words[self._head_at]
        self._tail = self._words[self._tail_at]
        self._check_counters(self._head, self._tail)
        self._published = self._head

    def close(self) -> None:
        """Drop the views of the region, a reserved room's too."""
        if self._reserved is not None:
            self._reserved[2].release()
            self._reserved = None
        super().close()

    def refresh(self) -> bool:
        """Load the reader's ``tail``; True when it moved."""
        tail = self._words[self._tail_at]
        if tail == self._tail:
            return False
        if tail & 7 or tail < self._tail or tail > self._published:
            raise self._corrupt(
                f"tail went from {self._tail} to {tail} (head "
                f"{self._published}): it only grows, in steps of 8, up "
                "to head")
        self._tail = tail
        return True

    def _room(self) -> tuple[int, int, int]:
        """(offset of head, bytes to the end, free bytes)."""
        offset = self._head % self.capacity
        return (offset, self.capacity - offset,
                self.capacity - (self._head - self._tail))

    def _put(self, offset: int, parts) -> int:
        """Copy ``parts`` (bytes-like) to ``offset``; return the end."""
        data = self._data
        for part in parts:
            end = offset + len(part)
            data[offset:end] = part
            offset = end
        return offset

    def write(self, messages, start: int = 0) -> int:
        """Copy ``messages[start:]`` into the ring while they fit (not
        published yet); return the index of the first one not written.

        Runs of small messages become BATCH records; a message alone, or
        of :data:`_BIG` bytes or more, a MESSAGE record. Raises
        :class:`ChannelError` for a message longer than
        :attr:`max_message` (the ones before it are written), TypeError
        for one that is not bytes-like with 1-byte items.
        """
        count = len(messages)
        index = start
        small = min(_BIG, self.max_message + 1)
        if self._reserved is not None and index < count:
            self._refuse_while_reserved()
        while index < count:
            message = messages[index]
            size = len(message)
            if size < small and index + 1 < count:
                offset, contiguous, free = self._room()
                room = min(free, contiguous)
                sizes = list(map(len, islice(
                    messages, index, index + min(_RUN, room // 4 + 1))))
                if max(sizes) >= small:
                    sizes = sizes[:next(at for at, size in enumerate(sizes)
                                        if size >= small)]
                # A BATCH record of k messages takes 12 + 4k + their
                # bytes, rounded up to 8: fit it in the room and in
                # max_message.
                budget = min(room, self.max_message + RECORD_HEADER) - 12
                fit = len(sizes)
                if sum(sizes) + 4 * fit > budget:
                    fit = bisect_right(
                        list(accumulate(map(add, sizes, repeat(4)))), budget)
                if fit >= 2:
                    index = self._write_batch(messages, index, fit, sizes,
                                              offset)
                    continue
            if not self._put_message(message, size):
                break
            index += 1
        return index

    def write_one(self, message) -> bool:
        """Copy one message (bytes-like) into the ring in a MESSAGE
        record, not published yet: True, or False when the ring has no
        room for it now. The path of a large message: one copy, from
        the caller's bytes into the ring, and no object made for the
        record header. Raises as :meth:`write`."""
        if self._reserved is not None:
            self._refuse_while_reserved()
        return self._put_message(message, len(message))

    def _refuse_while_reserved(self) -> None:
        raise ChannelError(f"{self.name}: room is reserved for a message; "
                           "commit it before sending another")

    def reserve(self, size: int) -> memoryview | None:
        """Room for a message of up to ``size`` bytes: a writable view of
        the ring where its bytes go (written by the caller, say by a
        ``readinto``, instead of copied from a bytes object), or None
        when the ring has no room for it now. :meth:`commit` makes what
        was written a record; nothing else may be written before."""
        if self._reserved is not None:
            self._refuse_while_reserved()
        if size < 0 or size > self.max_message:
            raise ChannelError(
                f"{self.name}: room for {size} bytes: give 0 to the "
                f"{self.max_message} bytes a message of this ring has")
        offset = self._room_for(record_size(size))
        if offset is None:
            return None
        start = offset + RECORD_HEADER
        view = self._data[start:start + size]
        self._reserved = (offset, size, view)
        return view

    def commit(self, length: int) -> None:
        """Make the first ``length`` bytes written in the room of
        :meth:`reserve` a MESSAGE record (not published yet); the view
        it gave is released."""
        if self._reserved is None:
            raise ChannelError(f"{self.name}: commit with no room "
                               "reserved")
        offset, size, view = self._reserved
        if not 0 <= length <= size:
            raise ChannelError(f"{self.name}: commit of {length} bytes "
                               f"in room reserved for {size}")
        view.release()
        self._reserved = None
        end = offset + RECORD_HEADER + length
        self._headers[offset >> 3] = length | _MESSAGE_KIND
        if length & 7:
            self._data[end:end + (-length & 7)] = _PADS[-length & 7]
        self._head += record_size(length)

    def _put_message(self, message, size: int) -> bool:
        """A MESSAGE record of ``message`` (``size`` items): True when
        it is written, False when the ring is full for now."""
        if size > self.max_message:
            raise ChannelError(
                f"{self.name}: a message of {size} bytes is longer "
                f"than the {self.max_message} bytes this ring carries")
        total = RECORD_HEADER + ((size + 7) & ~7)
        offset = self._room_for(total)
        if offset is None:
            return False
        if type(message) is not bytes and type(message) is not bytearray:
            if memoryview(message).nbytes != size:
                raise TypeError("messages must be bytes-like with one "
                                "byte per item")
        data = self._data
        start = offset + RECORD_HEADER
        end = start + size
        data[start:end] = message
        self._headers[offset >> 3] = size | _MESSAGE_KIND
        if size & 7:
            data[end:offset + total] = _PADS[-size & 7]
        self._head += total
        return True

    def _write_batch(self, messages, index: int, fit: int, sizes,
                     offset: int) -> int:
        payload = b"".join(islice(messages, index, index + fit))
        used = sum(sizes[:fit])
        if len(payload) != used:
            raise TypeError("messages must be bytes-like with one byte "
                            "per item")
        length = BATCH_COUNT.size + 4 * fit + used
        self._put(offset, (RECORD.pack(length, BATCH),
                           BATCH_COUNT.pack(fit),
                           array("I", sizes[:fit]).tobytes(), payload,
                           _PADS[-length & 7]))
        self._head += record_size(length)
        return index + fit

    def write_epoch(self, epoch: int) -> bool:
        """Write the EPOCH record that starts a writer's epoch; False
        when it does not fit yet."""
        total = RECORD_HEADER + EPOCH_PAYLOAD.size
        offset = self._room_for(total)
        if offset is None:
            return False
        self._put(offset, (RECORD.pack(EPOCH_PAYLOAD.size, EPOCH),
                           EPOCH_PAYLOAD.pack(epoch)))
        self._head += total
        return True

    def _room_for(self, total: int) -> int | None:
        """The offset of room for a record of ``total`` bytes at the
        head (a WRAP record written first when it would straddle the
        end), or None when the ring is full for now."""
        capacity = self.capacity
        while True:
            head = self._head
            offset = head % capacity
            contiguous = capacity - offset
            free = capacity - (head - self._tail)
            if total <= free and total <= contiguous:
                return offset
            if total > contiguous and free >= contiguous:
                self._data[offset:offset + RECORD_HEADER] = _WRAP
                self._head = head + contiguous
            elif not self.refresh():
                return None

    def publish(self) -> bool:
        """Store ``head``: everything written becomes visible (the
        commit point). True when there was something to publish."""
        if self._head == self._published:
            return False
        self._words[self._head_at] = self._head
        self._published = self._head
        return True


class RingReader(_Ring):
    """Reads published records and releases their room.

    :meth:`read` returns messages and advances a local ``tail``;
    :meth:`release` stores it, which lets the writer reuse the room. A
    reader resumes at the ``tail`` in memory: messages read and not
    released before a crash are read again by the next reader. Part of
    a BATCH record returned keeps ``tail`` at its start until the rest
    has been returned too.
    """

    def __init__(self, region, index: int, ring: tuple[int, int],
                 name: str):
        super().__init__(region, index, ring, name)
        self._tail = self._words[self._tail_at]
        self._head = self._words[self._head_at]
        self._check_counters(self._head, self._tail)
        self._released = self._tail
        self._left: list[bytes] = []
        self._left_end = 0
        self._failed: CorruptRegion | None = None
        #: The epoch of the writer whose messages the last read returned
        #: (0 until an EPOCH record has been read).
        self.epoch = 0

    def poll(self) -> bool:
        """Load ``head``; True when messages are waiting to be read."""
        head = self._words[self._head_at]
        if head != self._head:
            if (head & 7 or head < self._head
                    or head - self._released > self.capacity):
                raise self._corrupt(
                    f"head went from {self._head} to {head} (tail "
                    f"{self._released}): it only grows, in steps of 8, "
                    f"up to tail + {self.capacity}")
            self._head = head
        return self._head != self._tail or bool(self._left)

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` messages from the records published so far
        (without loading ``head`` again: call :meth:`poll` first).

        Stops before an EPOCH record that follows messages, so that the
        messages returned all come from writer epoch :attr:`epoch`. A
        broken record after some good ones: those are returned, and the
        next read raises.
        """
        if self._failed is not None:
            raise self._failed
        out = self._left[:limit]
        if out:
            del self._left[:limit]
            if self._left:
                return out
            self._tail = self._left_end
        head = self._head
        tail = self._tail
        try:
            while tail < head and len(out) < limit:
                tail, stop = self._record(out, limit, head, tail)
                if stop:
                    break
        except CorruptRegion as exc:
            if not out:
                raise
            self._failed = exc  # `tail` is after the last good record
        self._tail = tail
        return out

    def read_into(self, buffer: memoryview) -> int | None:
        """Copy the next published message into ``buffer`` (a writable
        memoryview of bytes); its length, or None when there is none.
        The writer's head is loaded only when every record below the
        head last loaded has been read.
        A MESSAGE record goes straight from the ring into ``buffer``,
        with no bytes object between. Raises :class:`ChannelError` for a
        message longer than ``buffer``, which stays to be read again."""
        tail = self._tail
        if tail == self._head:
            self.poll()  # every record seen is read: load the head
        if tail < self._head and self._failed is None and not self._left:
            # A MESSAGE record that passes every check goes straight
            # from the ring into `buffer`; anything else takes the
            # general path, which raises the precise error.
            data = self._data
            offset = tail % self.capacity
            header = self._headers[offset >> 3]
            size, kind = header & 0xFFFFFFFF, header >> 32
            total = RECORD_HEADER + ((size + 7) & ~7)
            if (kind == MESSAGE and size <= self.max_message
                    and total <= self._head - tail
                    and offset + total <= self.capacity):
                self._fits(size, buffer)  # it stays in the ring
                start = offset + RECORD_HEADER
                buffer[:size] = data[start:start + size]
                self._tail = tail + total
                return size
        before = self._tail
        found = self.read(1)
        if not found:
            return None
        (message,) = found
        if len(message) > buffer.nbytes:
            if not self._left:  # read(1) passed the whole record
                self._left_end, self._tail = self._tail, before
            self._left.insert(0, message)
            self._fits(len(message), buffer)
        buffer[:len(message)] = message
        return len(message)

    def read_batch_into(self, buffer: memoryview, limit: int) -> list[int]:
        """Copy up to ``limit`` published messages into ``buffer`` back
        to back, each straight from the ring; return their lengths
        ([] when there is none). Stops at the first message that does
        not fit in what is left of ``buffer`` (the first one raises as
        in :meth:`read_into`), and before any record but a MESSAGE or
        WRAP once it has messages, so all come from one writer epoch
        and anything unusual is read alone, by :meth:`read_into`."""
        sizes: list[int] = []
        if self._tail == self._head:
            self.poll()  # every record seen is read: load the head
        tail, head = self._tail, self._head
        if self._failed is not None or self._left or tail >= head:
            size = self.read_into(buffer)
            return [] if size is None else [size]
        data, headers, capacity = self._data, self._headers, self.capacity
        max_message, room, at = self.max_message, buffer.nbytes, 0
        while tail < head and len(sizes) < limit:
            offset = tail % capacity
            header = headers[offset >> 3]
            size, kind = header & 0xFFFFFFFF, header >> 32
            total = RECORD_HEADER + ((size + 7) & ~7)
            if (kind == MESSAGE and size <= max_message
                    and total <= head - tail
                    and offset + total <= capacity
                    and at + size <= room):
                start = offset + RECORD_HEADER
                buffer[at:at + size] = data[start:start + size]
                at += size
                tail += total
                sizes.append(size)
            elif (kind == WRAP and not size and offset
                  and capacity - offset <= head - tail):
                tail += capacity - offset
            elif (kind == BATCH and size <= max_message
                  and total <= head - tail
                  and offset + total <= capacity):
                # Its messages lie back to back: one copy for all, when
                # they all fit (else the batch is read alone, later).
                try:
                    lengths, start = self._batch_lengths(offset, size)
                except CorruptRegion:
                    if sizes:  # those are good: the next call raises
                        break
                    raise
                if (len(lengths) > limit - len(sizes)
                        or at + size - start > room):
                    break
                start += offset + RECORD_HEADER
                end = offset + RECORD_HEADER + size
                buffer[at:at + end - start] = data[start:end]
                at += end - start
                tail += total
                sizes += lengths
            else:
                break
        self._tail = tail
        if not sizes:  # the record there is not a plain message
            size = self.read_into(buffer)
            return [] if size is None else [size]
        return sizes

    def _fits(self, size: int, buffer: memoryview) -> None:
        if size > buffer.nbytes:
            raise ChannelError(
                f"{self.name}: the next message has {size} bytes; the "
                f"buffer holds {buffer.nbytes}")

    def _record(self, out: list, limit: int, head: int,
                tail: int) -> tuple[int, bool]:
        """Read the record at ``tail``: (the new tail, whether to stop
        here)."""
        capacity = self.capacity
        data = self._data
        offset = tail % capacity
        available = head - tail
        size, kind = RECORD.unpack_from(data, offset)
        if kind == MESSAGE and size < _BIG:
            self._check_record(size, kind, offset, available)
            return tail + self._read_span(
                out, limit, offset, min(available, capacity - offset)), False
        if kind == MESSAGE:
            total = self._check_record(size, kind, offset, available)
            out.append(data[offset + RECORD_HEADER:
                            offset + RECORD_HEADER + size].tobytes())
            return tail + total, False
        if kind == BATCH:
            total = self._check_record(size, kind, offset, available)
            messages = self._batch(offset, size)
            wanted = limit - len(out)
            if len(messages) > wanted:
                out += messages[:wanted]
                self._left = messages[wanted:]
                self._left_end = tail + total
                return tail, True
            out += messages
            return tail + total, False
        if kind == WRAP:
            if size or offset == 0:
                raise self._corrupt(
                    f"wrap record at offset {offset:#x} with length {size} "
                    "(a wrap has length 0 and never starts the ring)")
            skip = capacity - offset
            if skip > available:
                raise self._corrupt(
                    f"wrap record at offset {offset:#x} skips {skip} bytes; "
                    f"only {available} are published")
            return tail + skip, False
        if kind == EPOCH:
            if out:
                return tail, True
            total = self._check_record(size, kind, offset, available)
            if size != EPOCH_PAYLOAD.size:
                raise self._corrupt(
                    f"epoch record at offset {offset:#x} has length {size}, "
                    f"not {EPOCH_PAYLOAD.size}")
            (self.epoch,) = EPOCH_PAYLOAD.unpack_from(
                data, offset + RECORD_HEADER)
            return tail + total, False
        raise self._corrupt(f"record at offset {offset:#x} has kind {kind} "
                            "(1 to 4 expected)")

    def _read_span(self, out: list, limit: int, offset: int,
                   span: int) -> int:
        """Append the run of small MESSAGE records at ``offset`` (the
        first one checked) within ``span`` bytes; return the bytes
        read. Stops at any record that is not one; the caller checks
        that one."""
        span = min(span, _SPAN)
        blob = self._data[offset:offset + span].tobytes()
        words = memoryview(blob).cast("I")
        small = min(_BIG, self.max_message + 1)
        add_one = out.append
        wanted = limit - len(out)
        at = 0
        while at < span:
            size = words[at >> 2]
            if words[(at >> 2) + 1] != MESSAGE or size >= small:
                break
            end = at + RECORD_HEADER + size
            if end > span:
                break
            add_one(blob[at + RECORD_HEADER:end])
            at = (end + 7) & ~7
            wanted -= 1
            if not wanted:
                break
        words.release()
        return at

    def _batch(self, offset: int, size: int) -> list[bytes]:
        """The messages of the (checked) BATCH record at ``offset``."""
        payload = self._data[offset + RECORD_HEADER:
                             offset + RECORD_HEADER + size].tobytes()
        lengths, start = self._batch_lengths(offset, size, payload)
        ends = list(accumulate(lengths, initial=start))
        return [payload[begin:end] for begin, end in pairwise(ends)]

    def _batch_lengths(self, offset: int, size: int, source=None,
                       at: int = 0) -> tuple[array, int]:
        """The message lengths of the BATCH record at ``offset`` (its
        ``size`` checked against the ring), whose payload starts at
        ``at`` of ``source`` (a copy of it; None: the ring), and where
        its messages start in the payload. The lengths are copied out
        and checked: a writer that changes the ring afterwards cannot
        move a read outside the record."""
        if source is None:
            source, at = self._data, offset + RECORD_HEADER
        (count,) = (BATCH_COUNT.unpack_from(source, at)
                    if size >= BATCH_COUNT.size else (0,))
        start = BATCH_COUNT.size + 4 * count
        if not count or start > size:
            raise self._corrupt(
                f"batch record at offset {offset:#x} of {size} bytes "
                f"counts {count} messages")
        lengths = array("I")
        lengths.frombytes(source[at + BATCH_COUNT.size:at + start])
        if sum(lengths) != size - start:
            raise self._corrupt(
                f"batch record at offset {offset:#x}: its {count} "
                f"lengths add up to {sum(lengths)}, not the "
                f"{size - start} bytes it holds")
        return lengths, start

    def _check_record(self, size: int, kind: int, offset: int,
                      available: int) -> int:
        if kind in (MESSAGE, BATCH) and size > self.max_message:
            raise self._corrupt(
                f"record at offset {offset:#x} holds {size} bytes; this "
                f"ring carries at most {self.max_message}")
        total = record_size(size)
        if total > available or offset + total > self.capacity:
            raise self._corrupt(
                f"record at offset {offset:#x} of kind {kind} needs "
                f"{total} bytes; {min(available, self.capacity - offset)} "
                "are published before the end of the ring")
        return total

    def release(self) -> bool:
        """Store ``tail``: the writer may reuse the room of everything
        read. True when it moved."""
        if self._tail == self._released:
            return False
        self._words[self._tail_at] = self._tail
        self._released = self._tail
        return True
